import pickle

import numpy as np
import pytest
from phe import generate_paillier_keypair

from secfl import wire
from secfl.errors import (
    EncodingOverflow,
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    ProtocolAbort,
)
from secfl.hazmat.rng import Csprng
from secfl.protocols import paillier as pp
from secfl.protocols.base import KEY_HOLDER
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.runtime.simulator import simulate_round


@pytest.fixture(scope="module")
def keys():
    return generate_paillier_keypair(n_length=1024)


def setup(keys, *, n=5, bits=16, value_bits=None, min_clients=2):
    public, private = keys
    cfg = PaillierConfig(
        public_key=public, bits=bits, n_clients=n, value_bits=value_bits, min_clients=min_clients
    )
    holder = PaillierKeyHolder(cfg, private)
    return (
        cfg,
        holder,
        PaillierProtocol(cfg, key_holder=holder, rng=Csprng(seed=bytes(32))),
    )


def ring_inputs(n, d, bits, seed=1):
    rng = Csprng(seed=bytes([seed]) * 32)
    dt = np.uint16 if bits <= 16 else np.uint32
    return {c: (rng.uint64(d) & np.uint64((1 << bits) - 1)).astype(dt) for c in range(1, n + 1)}


def test_sum_over_ring_with_dropout(keys):
    _, _, p = setup(keys)
    ins = ring_inputs(5, 300, 16)
    rep = simulate_round(p, ins, dropouts={3: "input"})
    assert rep.correct
    assert rep.result is not None
    assert rep.result.dropped == {3}


def test_a_one_entry_vector_is_summed(keys):
    """The smallest sum the key holder decrypts holds one value (count 1)."""
    _, _, p = setup(keys)
    rep = simulate_round(p, ring_inputs(5, 1, 16))
    assert rep.correct


def test_negative_values_with_narrow_value_bits(keys):
    _, _, p = setup(keys, bits=16, value_bits=6)
    vals = {1: [-32, 31, 0], 2: [-1, -1, 5], 3: [7, -20, 31]}
    ins = {c: (np.array(v, dtype=np.int64) % 2**16).astype(np.uint16) for c, v in vals.items()}
    rep = simulate_round(p, ins)
    assert rep.correct
    assert rep.result is not None
    sums = (rep.result.aggregate.astype(np.int64) + 2**15) % 2**16 - 2**15
    assert sums.tolist() == [-26, 10, 36]


def test_input_outside_value_bits_is_encoding_overflow(keys):
    _, _, p = setup(keys, bits=16, value_bits=6)
    with pytest.raises(EncodingOverflow, match="value_bits=6"):
        p.client(round_id=1, client_id=1, value=np.array([32], dtype=np.uint16))


def test_key_holder_decrypts_once_and_never_a_single_input(keys):
    _cfg, holder, p = setup(keys)
    server = p.server(round_id=4, client_ids=frozenset({1, 2}), dim=3)
    reqs = server.start()
    c1 = p.client(round_id=4, client_id=1, value=np.array([1, 2, 3], dtype=np.uint16))
    one = c1.handle(reqs[1])
    # An aggregator forwarding one client's ciphertext as a "sum of 1" is refused.
    body = wire.Writer().u64(4).u32(1).u32(3).raw(bytes(one[16:])).getvalue()
    with pytest.raises(ProtocolAbort, match="sum of 1"):
        holder.handle(wire.frame(pp.MSG_ENCRYPTED_SUM, body))
    # The honest sum is decrypted once; a second request for the same round is refused.
    server.receive(1, one)
    server.receive(
        2,
        p.client(round_id=4, client_id=2, value=np.array([4, 5, 6], dtype=np.uint16)).handle(
            reqs[2]
        ),
    )
    to_holder = server.advance()
    assert set(to_holder) == {KEY_HOLDER}  # the key holder is a party of the session
    assert server.phase == "decrypt"
    server.receive(KEY_HOLDER, holder.handle(to_holder[KEY_HOLDER]))
    assert server.advance() == {}
    assert server.result.aggregate.tolist() == [5, 7, 9]
    again = p.server(round_id=4, client_ids=frozenset({1, 2}), dim=3)
    r2 = again.start()
    for c in (1, 2):
        again.receive(
            c, p.client(round_id=4, client_id=c, value=np.zeros(3, np.uint16)).handle(r2[c])
        )
    with pytest.raises(ProtocolAbort, match="already decrypted"):
        holder.handle(again.advance()[KEY_HOLDER])
    with pytest.raises(ProtocolAbort, match="did not answer"):
        again.advance()  # no answer by the deadline: the round aborts


def test_the_simulator_runs_the_key_holder_as_a_party_and_counts_its_cost(keys):
    _, _, p = setup(keys)
    rep = simulate_round(p, ring_inputs(3, 4, 16))
    assert rep.correct
    down, up = rep.party_bytes[KEY_HOLDER]
    assert down > 0
    assert up > 0
    assert rep.party_seconds[KEY_HOLDER] > 0


def test_a_client_side_protocol_has_no_key_holder(keys):
    cfg, _, _ = setup(keys)
    assert PaillierProtocol(cfg, rng=Csprng()).parties() == {}
    with pytest.raises(InvalidArgument, match="PaillierKeyHolder"):
        PaillierProtocol(cfg, key_holder=lambda b: b, rng=Csprng())  # type: ignore[arg-type]


def test_too_few_inputs_abort(keys):
    _, _, p = setup(keys, min_clients=3)
    rep = simulate_round(p, ring_inputs(4, 5, 16), dropouts={1: "input", 2: "input"})
    assert rep.aborted is not None
    assert "InsufficientSurvivors" in rep.aborted


def test_two_encryptions_of_same_vector_differ(keys):
    _, _, p = setup(keys)
    server = p.server(round_id=1, client_ids=frozenset({1, 2}), dim=4)
    req = server.start()[1]
    v = np.array([1, 2, 3, 4], dtype=np.uint16)
    a = p.client(round_id=1, client_id=1, value=v).handle(req)
    b = p.client(round_id=1, client_id=1, value=v).handle(req)
    assert a != b


def test_tampered_and_oversize_ciphertexts_rejected(keys):
    cfg, _, p = setup(keys)
    server = p.server(round_id=1, client_ids=frozenset({1, 2}), dim=4)
    req = server.start()
    good = p.client(round_id=1, client_id=1, value=np.ones(4, np.uint16)).handle(req[1])
    with pytest.raises(IntegrityError):
        server.receive(1, good + b"\x00")
    n2 = int(cfg.public_key.n) ** 2
    width = (2 * int(cfg.public_key.n).bit_length() + 7) // 8
    huge = wire.frame(
        pp.MSG_INPUT, wire.Writer().u64(1).raw((n2 + 1).to_bytes(width, "big")).getvalue()
    )
    with pytest.raises(IntegrityError):
        server.receive(1, huge)
    server.receive(1, good)  # state unchanged by the rejected messages
    with pytest.raises(ProtocolAbort, match="already"):
        server.receive(1, good)


def test_client_refuses_other_key_or_parameters(keys):
    _, _, p = setup(keys)
    other_pub, other_priv = generate_paillier_keypair(n_length=1024)
    ocfg = PaillierConfig(public_key=other_pub, bits=16, n_clients=5)
    op = PaillierProtocol(ocfg, key_holder=PaillierKeyHolder(ocfg, other_priv), rng=Csprng())
    req = op.server(round_id=1, client_ids=frozenset({1}), dim=3).start()[1]
    c = p.client(round_id=1, client_id=1, value=np.zeros(3, np.uint16))
    with pytest.raises(ProtocolAbort, match="public key"):
        c.handle(req)
    with pytest.raises(ProtocolAbort):
        c.handle(req)  # closed after a refusal


def test_config_validation(keys):
    public, private = keys
    with pytest.raises(InvalidArgument):
        PaillierConfig(public_key=public, bits=16, n_clients=5, value_bits=17)
    with pytest.raises(InvalidArgument):
        PaillierConfig(public_key=public, bits=16, n_clients=5, min_clients=6)
    with pytest.raises(EncodingOverflow):
        PaillierConfig(public_key=public, bits=64, n_clients=5)
    with pytest.raises(InvalidArgument):
        PaillierKeyHolder(
            PaillierConfig(
                public_key=generate_paillier_keypair(n_length=1024)[0], bits=8, n_clients=2
            ),
            private,
        )


def test_key_holder_refuses_pickle(keys):
    _, holder, _ = setup(keys)
    with pytest.raises(TypeError):
        pickle.dumps(holder)
    assert str(keys[1].p) not in repr(holder)


def test_insufficient_survivors_type():
    assert issubclass(InsufficientSurvivors, ProtocolAbort)


def test_key_holder_refusal_leaks_no_plaintext_and_spends_the_round(keys):
    _, holder, p = setup(keys, n=5)
    server = p.server(round_id=9, client_ids=frozenset({1}), dim=3)
    one = p.client(round_id=9, client_id=1, value=np.array([5, 0, 100], dtype=np.uint16))
    frame = one.handle(server.start()[1])
    # An aggregator claims a lone ciphertext is a sum of 5 (slot checks will fail).
    body = wire.Writer().u64(9).u32(5).u32(3).raw(bytes(frame[16:])).getvalue()
    with pytest.raises(IntegrityError) as err:
        holder.handle(wire.frame(pp.MSG_ENCRYPTED_SUM, body))
    assert not any(ch.isdigit() for ch in str(err.value).replace("n_summed", ""))
    # Issue 18, item 6: nothing decrypted rides along in the exception chain either.
    assert err.value.__context__ is None
    assert err.value.__cause__ is None
    with pytest.raises(ProtocolAbort, match="already decrypted"):
        holder.handle(wire.frame(pp.MSG_ENCRYPTED_SUM, body))
