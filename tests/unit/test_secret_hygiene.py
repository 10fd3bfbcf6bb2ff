"""Issue 18, item 6: no secret in a repr, no pickling of secret buffers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from secfl.hazmat.prg import KeystreamBuffer
from secfl.hazmat.rng import Csprng


def test_the_keystream_buffer_neither_prints_nor_pickles_its_words():
    buf = KeystreamBuffer(4, np.dtype(np.uint32))
    words = buf.fill(bytes(range(32)), label=b"mask")
    text = repr(buf)
    assert all(str(int(w)) not in text for w in words)
    assert "secret" in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(buf)


def test_the_flower_node_state_repr_shows_no_seed_update_or_transcript():
    pytest.importorskip("flwr")
    from secfl.integrations._flower_client import _ClientState

    seed, value = bytes(range(1, 33)), b"\x07encoded-update\x07"
    state = _ClientState(seed=seed, value=value, transcript=[b"request-bytes"])
    text = repr(state)
    for secret in (seed, value, b"request-bytes"):
        assert repr(secret) not in text
        assert secret.hex() not in text


def test_secagg_peers_print_no_channel_key_and_held_shares_neither_print_nor_pickle():
    from secfl.protocols.secagg import SecAggConfig, SecAggProtocol

    n = 4
    protocol = SecAggProtocol(SecAggConfig(bits=16, threshold=2, n_clients=n), rng=Csprng())
    server = protocol.server(round_id=1, client_ids=frozenset(range(1, n + 1)), dim=2)
    clients = {
        c: protocol.client(round_id=1, client_id=c, value=np.zeros(2, np.uint16))
        for c in range(1, n + 1)
    }
    requests = server.start()
    for _ in range(3):  # advertise, share keys, masked input: shares are held by now
        for c, req in requests.items():
            server.receive(c, clients[c].handle(req))
        requests = server.advance()
    client = clients[1]
    for peer in client._peers.values():
        assert peer.channel
        assert peer.channel.hex() not in repr(peer)
        assert repr(peer.channel) not in repr(peer)
    held = client._held
    assert len(held) == n - 1
    assert repr(held) == f"<shares of {n - 1} owners>"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(held)
