"""Protocol defects found while building the audit, now fixed; these tests guard the fixes."""

import numpy as np
import pytest

from secfl.audit import _rounds as rounds
from secfl.errors import ProtocolAbort, SecflError
from secfl.protocols.base import KEY_HOLDER
from secfl.protocols.paillier import PaillierProtocol


def test_paillier_aggregator_closes_when_decryption_fails():
    spec = rounds.PaillierSpec(n=3, bits=16, value_bits=8, min_clients=2, dim=4, seed=bytes(32))
    protocol = PaillierProtocol(
        spec.config,
        key_holder=rounds.paillier_holder(spec.config),
        rng=rounds.derive(bytes(32), "p"),
    )
    server = protocol.server(round_id=1, client_ids=frozenset({1, 2, 3}), dim=4)
    requests = server.start()
    clients = {
        c: protocol.client(round_id=1, client_id=c, value=np.zeros(4, np.uint16)) for c in (1, 2, 3)
    }
    for c in (1, 2):
        server.receive(c, clients[c].handle(requests[c]))
    assert set(server.advance()) == {KEY_HOLDER}  # the key holder is unreachable: no answer
    with pytest.raises(SecflError, match="did not answer"):
        server.advance()  # the deadline closed the round with an error
    assert server.phase == "aborted"
    # Client 3 missed the deadline: its late input must not join a second advance().
    with pytest.raises(ProtocolAbort):
        server.receive(3, clients[3].handle(requests[3]))
