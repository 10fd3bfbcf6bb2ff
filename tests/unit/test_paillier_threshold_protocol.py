"""paillier-sum-v2: threshold decryption by m key holders that verify every client's
signature and form the product themselves; the issue-18 attacks are refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from secfl.errors import (
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    ProtocolAbort,
    SecflError,
)
from secfl.hazmat import paillier as hp
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import paillier_threshold as pt
from secfl.protocols import paillier_threshold_messages as m
from secfl.protocols.base import Party
from secfl.runtime.simulator import simulate_round

N_CLIENTS = 6
DIM = 40
BITS = 16


def seeded(tag: int) -> Csprng:
    return Csprng(seed=tag.to_bytes(32, "little"))


@pytest.fixture(scope="module")
def key():
    rng = seeded(101)
    p, q = tp.generate_safe_prime(512, rng=rng), tp.generate_safe_prime(512, rng=rng)
    return tp.deal_key(p, q, holders=5, threshold=3, rng=rng)


@pytest.fixture(scope="module")
def identities():
    rng = seeded(102)
    return {cid: SigningKey.generate(rng=rng) for cid in range(1, N_CLIENTS + 1)}


class Down(Party):
    """A key holder that is down: the request reaches it, nothing comes back."""

    def handle(self, data: bytes) -> None:
        return None


class WithDown(pt.ThresholdPaillierProtocol):
    """The protocol with the holders it does not run modelled as down."""

    def parties(self):
        out = dict(super().parties())
        for i in range(1, self.config.public_key.holders + 1):
            out.setdefault(pt.key_holder_party(i), Down())
        return out


def make(key, identities, *, holders=(1, 2, 3, 4, 5), min_clients=3, seed=7, ask_first=None):
    pk, shares = key
    cfg = pt.ThresholdPaillierConfig(
        public_key=pk,
        registry={c: k.verify_key() for c, k in identities.items()},
        bits=BITS,
        n_clients=N_CLIENTS,
        value_bits=12,
        min_clients=min_clients,
        ask_first=ask_first,
    )
    rng = seeded(seed)
    kh = [pt.ThresholdPaillierKeyHolder(cfg, shares[i - 1], rng=rng.spawn()) for i in holders]
    return WithDown(cfg, identities=identities, key_holders=kh, rng=rng), kh


def inputs(n=N_CLIENTS, seed=3):
    rng = seeded(seed)
    out = {}
    for cid in range(1, n + 1):
        signed = rng.integers_below(4096, DIM).astype(np.int64) - 2048
        out[cid] = signed.astype(np.uint16)  # two's complement over Z_2^16
    return out


def signed_inputs(proto, xs, round_id=1):
    """Honest clients' signed inputs for round ``round_id``, as the aggregator sees them."""
    server = proto.server(round_id=round_id, client_ids=frozenset(xs), dim=DIM)
    requests = server.start()
    out = {}
    for cid, x in xs.items():
        reply = proto.client(round_id=round_id, client_id=cid, value=x).handle(requests[cid])
        out[cid] = m.SignedInput.from_bytes(reply, size=proto.config.input_bytes(DIM))
    return out


def request(round_id, entries, dim=DIM):
    return m.DecryptRequest(round_id, dim, tuple(sorted(entries))).to_bytes()


def entries_of(signed, ids):
    return [(c, signed[c].ciphertexts, signed[c].signature) for c in ids]


# --------------------------------------------------------------------------------------
# Rounds


def test_round_decrypts_the_exact_sum_with_dropouts(key, identities) -> None:
    proto, _ = make(key, identities)
    xs = inputs()
    report = simulate_round(proto, xs, dropouts={2: "input"})
    assert report.aborted is None
    assert report.correct
    assert report.result is not None
    assert report.result.survivors == frozenset(xs) - {2}
    assert set(report.party_seconds) == {pt.key_holder_party(i) for i in range(1, 6)}
    assert all(sent > 0 for _, sent in report.party_bytes.values())


@pytest.mark.parametrize("present", [(1, 2, 3, 4), (2, 4, 5), (1, 5, 3)])
def test_key_holders_down_up_to_m_minus_t(key, identities, present) -> None:
    proto, _ = make(key, identities, holders=present)
    report = simulate_round(proto, inputs())
    assert report.correct


def test_fewer_than_t_key_holders_abort(key, identities) -> None:
    proto, _ = make(key, identities, holders=(1, 4))
    report = simulate_round(proto, inputs())
    assert report.result is None
    assert report.aborted is not None
    assert report.aborted.startswith("InsufficientSurvivors")


class Liar(Party):
    """A key holder that changes one partial decryption in its honest answer."""

    def __init__(self, honest: pt.ThresholdPaillierKeyHolder, nsq: int, width: int) -> None:
        self.honest, self.nsq, self.width = honest, nsq, width

    def handle(self, data: bytes) -> bytes:
        answer = bytearray(self.honest.handle(data))
        at = 8 + 8 + 32 + 4  # header, round id, set digest, index: the first value
        value = int.from_bytes(answer[at : at + self.width], "big")
        answer[at : at + self.width] = (value * value % self.nsq).to_bytes(self.width, "big")
        return bytes(answer)


def drive(proto, xs, parties):
    server = proto.server(round_id=1, client_ids=frozenset(xs), dim=DIM)
    for cid, req in server.start().items():
        server.receive(cid, proto.client(round_id=1, client_id=cid, value=xs[cid]).handle(req))
    for pid, req in server.advance().items():
        if pid in parties:
            server.receive(pid, parties[pid].handle(req))
    server.advance()
    return server


def test_a_lying_key_holder_is_named_and_excluded(key, identities) -> None:
    pk, _ = key
    proto, holders = make(key, identities)
    xs = inputs()
    parties = dict(proto.parties())
    liar_id = pt.key_holder_party(2)
    parties[liar_id] = Liar(holders[1], pk.n**2, pk.ciphertext_bytes)
    server = drive(proto, xs, parties)
    assert list(server.rejected_holders) == [2]
    assert "holder 2" in server.rejected_holders[2]
    expected = sum(x.astype(np.uint64) for x in xs.values()).astype(np.uint16)
    assert np.array_equal(server.result.aggregate, expected)
    # with only t - 1 honest holders left the round aborts, naming the liar
    fresh, holders = make(key, identities, holders=(1, 2, 3), seed=8)
    parties = {h.party_id: h for h in holders}
    parties[liar_id] = Liar(holders[1], pk.n**2, pk.ciphertext_bytes)
    with pytest.raises(InsufficientSurvivors, match=r"refused holders \[2\]"):
        drive(fresh, xs, parties)


# --------------------------------------------------------------------------------------
# The aggregator cannot pass off one client's ciphertext as a sum (issue 18)


def test_a_single_input_dressed_as_a_sum_is_refused(key, identities) -> None:
    proto, (h1, *_) = make(key, identities)
    signed = signed_inputs(proto, inputs())
    with pytest.raises(ProtocolAbort, match="at least 3 distinct clients"):
        h1.handle(request(1, entries_of(signed, [1])))
    with pytest.raises(ProtocolAbort, match="at least 3"):
        h1.handle(request(1, entries_of(signed, [1, 2])))
    # the refusal did not spend the round: an honest request still decrypts
    h1.handle(request(1, entries_of(signed, [1, 2, 3])))


def test_a_ciphertext_added_to_itself_is_refused(key, identities) -> None:
    proto, (h1, *_) = make(key, identities)
    signed = signed_inputs(proto, inputs())
    victim = signed[1]
    # listed twice under its own id: not canonical
    twice = m.DecryptRequest(1, DIM, tuple(entries_of(signed, [1, 1, 2]))).to_bytes()
    with pytest.raises(IntegrityError, match="once each"):
        h1.handle(twice)
    # under another client's id: client 2 never signed it, and identical inputs are refused
    forged = [(2, victim.ciphertexts, signed[2].signature), *entries_of(signed, [3, 4])]
    with pytest.raises(IntegrityError, match="client 2's signature"):
        h1.handle(request(1, forged))
    with pytest.raises(ProtocolAbort, match="identical"):
        h1.handle(request(1, [*entries_of(signed, [1, 3]), forged[0]]))
    # squared (the plaintext doubled) under its id: the signature no longer covers it
    pub = proto.config.public_key.to_phe()
    vec = hp.ciphertexts_from_bytes(
        victim.ciphertexts, pub, proto.config.layout, count=DIM, n_summed=1
    )
    doubled = hp.ciphertexts_to_bytes(hp.add(vec, vec))
    with pytest.raises(IntegrityError, match="client 1's signature"):
        h1.handle(request(1, [(1, doubled, victim.signature), *entries_of(signed, [2, 3])]))
    # re-signed by a colluding client (6) as its own: an identical input is refused
    copy_sig = identities[6].sign(proto.config.signed_message(1, 6, DIM, victim.ciphertexts))
    with pytest.raises(ProtocolAbort, match="identical"):
        h1.handle(request(1, [*entries_of(signed, [1, 2]), (6, victim.ciphertexts, copy_sig)]))


def test_encryptions_of_zero_from_the_aggregator_are_refused(key, identities) -> None:
    proto, (h1, *_) = make(key, identities)
    cfg = proto.config
    signed = signed_inputs(proto, inputs())
    victim = signed[1]
    pub = cfg.public_key.to_phe()
    zero = hp.encrypt_vector(pub, np.zeros(DIM, np.int64), cfg.layout, randomness=seeded(9))
    vec = hp.ciphertexts_from_bytes(victim.ciphertexts, pub, cfg.layout, count=DIM, n_summed=1)
    rerandomized = hp.ciphertexts_to_bytes(hp.add(vec, zero))
    zeros = hp.ciphertexts_to_bytes(zero)
    # the victim's input times an encryption of zero, under the victim's signature
    with pytest.raises(IntegrityError, match="client 1's signature"):
        h1.handle(request(1, [(1, rerandomized, victim.signature), *entries_of(signed, [2, 3])]))
    # encryptions of zero as inputs of registered clients that never signed them
    fake = [(2, zeros, signed[2].signature), *entries_of(signed, [3])]
    with pytest.raises(IntegrityError, match="signature"):
        h1.handle(request(1, [(1, victim.ciphertexts, victim.signature), *fake]))
    # ... or of ids outside the registry
    with pytest.raises(ProtocolAbort, match="no identity"):
        h1.handle(request(1, [*entries_of(signed, [1, 2]), (77, zeros, bytes(64))]))


def test_one_decryption_per_round_and_signatures_bind_the_round(key, identities) -> None:
    proto, (h1, *_) = make(key, identities)
    xs = inputs()
    signed = signed_inputs(proto, xs)
    h1.handle(request(1, entries_of(signed, [1, 2, 3])))
    with pytest.raises(ProtocolAbort, match="already decrypted"):
        h1.handle(request(1, entries_of(signed, [2, 3, 4])))
    # round 1's signed inputs replayed in round 2
    with pytest.raises(IntegrityError, match="round 2"):
        h1.handle(request(2, entries_of(signed, [1, 2, 3])))


def test_malformed_requests_raise_typed_errors(key, identities) -> None:
    proto, (h1, *_) = make(key, identities)
    good = request(1, entries_of(signed_inputs(proto, inputs()), [1, 2, 3]))
    for bad in (good[:-1], good + b"\0", good[:4] + b"\x35" + good[5:], b""):
        with pytest.raises(IntegrityError):
            h1.handle(bad)


# --------------------------------------------------------------------------------------
# Aggregator and clients


def test_aggregator_rejects_unsigned_replayed_or_copied_inputs(key, identities) -> None:
    proto, _ = make(key, identities)
    xs = inputs()
    signed = signed_inputs(proto, xs)
    server = proto.server(round_id=1, client_ids=frozenset(xs), dim=DIM)
    server.start()
    server.receive(1, signed[1].to_bytes())
    with pytest.raises(ProtocolAbort, match="already sent"):
        server.receive(1, signed[1].to_bytes())
    with pytest.raises(IntegrityError, match="client 2's signature"):
        server.receive(2, signed[1].to_bytes())
    copy = m.SignedInput(
        1,
        signed[1].ciphertexts,
        identities[3].sign(proto.config.signed_message(1, 3, DIM, signed[1].ciphertexts)),
    )
    with pytest.raises(ProtocolAbort, match="copy"):
        server.receive(3, copy.to_bytes())
    old = signed_inputs(proto, xs, round_id=9)[4]
    with pytest.raises(ProtocolAbort, match="round 9"):
        server.receive(4, old.to_bytes())
    server.receive(2, signed[2].to_bytes())
    with pytest.raises(InsufficientSurvivors):
        server.advance()


def test_client_refuses_another_key_or_parameters(key, identities) -> None:
    proto, _ = make(key, identities)
    x = inputs()[1]
    req = m.Request.from_bytes(
        proto.server(round_id=1, client_ids=frozenset({1}), dim=DIM).start()[1]
    )
    changes = [
        {"fingerprint": bytes(16)},
        {"min_clients": 2},
        {"round_id": 2},
        {"dim": DIM + 1},
    ]
    for change in changes:
        fields = {**req.__dict__, **change}
        client = proto.client(round_id=1, client_id=1, value=x)
        with pytest.raises(ProtocolAbort):
            client.handle(m.Request(**fields).to_bytes())
        with pytest.raises(ProtocolAbort):
            client.handle(req.to_bytes())  # closed for good


def test_configuration_and_secrets(key, identities) -> None:
    pk, shares = key
    reg = {c: k.verify_key() for c, k in identities.items()}
    for bad in [
        {"min_clients": 1},
        {"min_clients": N_CLIENTS + 1},
        {"bits": 0},
        {"value_bits": 17},
        {"registry": {1: reg[1], 2: reg[1]}},
    ]:
        kwargs = {"public_key": pk, "registry": reg, "bits": BITS, "n_clients": N_CLIENTS}
        with pytest.raises(InvalidArgument):
            pt.ThresholdPaillierConfig(**{**kwargs, **bad})
    with pytest.raises(InvalidArgument, match="ThresholdPublicKey"):
        pt.ThresholdPaillierConfig(
            public_key=pk.to_phe(), registry=reg, bits=BITS, n_clients=N_CLIENTS
        )
    proto, (h1, *_) = make(key, identities)
    with pytest.raises(InvalidArgument, match="registry"):
        pt.ThresholdPaillierProtocol(proto.config, identities={1: identities[2]}, rng=seeded(1))
    with pytest.raises(TypeError):
        pickle.dumps(h1)
    assert str(shares[0].private_number()) not in repr(h1)
    assert issubclass(InsufficientSurvivors, SecflError)


def test_a_holder_answering_twice_is_named_and_the_rest_decrypt(key, identities) -> None:
    proto, holders = make(key, identities)
    xs = inputs()
    server = proto.server(round_id=1, client_ids=frozenset(xs), dim=DIM)
    for cid, req in server.start().items():
        server.receive(cid, proto.client(round_id=1, client_id=cid, value=xs[cid]).handle(req))
    outgoing = server.advance()
    for h in holders:
        answer = h.handle(outgoing[h.party_id])
        server.receive(h.party_id, answer)
        if h.index == 1:
            server.receive(h.party_id, answer)  # again
            server.receive(h.party_id, answer)  # and again
    server.advance()
    assert server.rejected_holders == {1: "it sent two answers for one round"}
    expected = sum(x.astype(np.uint64) for x in xs.values()).astype(np.uint16)
    assert np.array_equal(server.result.aggregate, expected)


def test_a_request_with_more_inputs_than_n_clients_is_refused(key, identities) -> None:
    proto, (h1, *_) = make(key, identities)
    signed = signed_inputs(proto, inputs())
    size = proto.config.input_bytes(DIM)
    extra = [(c, bytes(size), bytes(64)) for c in range(7, 9)]
    with pytest.raises(IntegrityError, match="at most 6"):
        h1.handle(request(1, [*entries_of(signed, range(1, 7)), *extra]))


def test_an_out_of_range_input_is_refused_with_no_decrypted_value_in_the_chain(
    key, identities
) -> None:
    pk, _ = key
    proto, holders = make(key, identities)
    cfg = proto.config
    xs = inputs()
    server = proto.server(round_id=1, client_ids=frozenset(xs), dim=DIM)
    requests = server.start()
    for cid in (1, 2):
        reply = proto.client(round_id=1, client_id=cid, value=xs[cid]).handle(requests[cid])
        server.receive(cid, reply)
    pub = pk.to_phe()
    n_ct = cfg.layout.ciphertexts_for(DIM)
    cts = b"".join(
        pub.raw_encrypt(pk.n - 12345).to_bytes(pk.ciphertext_bytes, "big") for _ in range(n_ct)
    )
    sig = identities[3].sign(cfg.signed_message(1, 3, DIM, cts))
    server.receive(3, m.SignedInput(1, cts, sig).to_bytes())  # signed: a malicious client
    outgoing = server.advance()
    for h in holders:
        server.receive(h.party_id, h.handle(outgoing[h.party_id]))
    with pytest.raises(IntegrityError, match="well-formed") as info:
        server.advance()
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
    assert server.phase == "aborted"


# --------------------------------------------------------------------------------------
# Asking t holders first (ask_first)


def test_asking_t_first_leaves_the_other_holders_idle(key, identities) -> None:
    proto, _ = make(key, identities, ask_first=3)
    report = simulate_round(proto, inputs())
    assert report.correct
    busy = {pid for pid, (down, _) in report.party_bytes.items() if down}
    assert busy == {pt.key_holder_party(i) for i in (1, 2, 3)}


@pytest.mark.parametrize("case", ["down", "liar"])
def test_the_others_are_asked_when_too_few_valid_answers_came(key, identities, case) -> None:
    pk, _ = key
    present = (1, 3, 4, 5) if case == "down" else (1, 2, 3, 4, 5)
    proto, holders = make(key, identities, holders=present, ask_first=3)
    if case == "liar":
        honest = {h.index: h for h in holders}[2]
        parties = dict(proto.parties())
        parties[pt.key_holder_party(2)] = Liar(honest, pk.n**2, pk.ciphertext_bytes)
        proto.parties = lambda: parties  # type: ignore[method-assign]
    report = simulate_round(proto, inputs())
    assert report.correct
    busy = {pid for pid, (down, _) in report.party_bytes.items() if down}
    assert busy == {pt.key_holder_party(i) for i in (1, 2, 3, 4, 5)}


def test_asking_first_aborts_when_fewer_than_t_exist(key, identities) -> None:
    proto, _ = make(key, identities, holders=(1, 3), ask_first=4)
    report = simulate_round(proto, inputs())
    assert report.aborted is not None
    assert report.aborted.startswith("InsufficientSurvivors")


def test_ask_first_is_between_t_and_m(key, identities) -> None:
    for bad in (2, 6, 0):
        with pytest.raises(InvalidArgument, match="ask_first"):
            make(key, identities, ask_first=bad)


def test_a_client_signing_an_out_of_range_ciphertext_is_named_and_the_round_goes_on(
    key, identities
) -> None:
    """Issue 18, item 4: identified by its own signature, left out; the others' sum."""
    proto, _ = make(key, identities)
    xs = inputs()
    signed = signed_inputs(proto, xs)
    width = key[0].ciphertext_bytes
    zero = bytes(width) + bytes(signed[3].ciphertexts[width:])  # 0 is no ciphertext
    message = proto.config.signed_message(1, 3, DIM, zero)
    bad = m.SignedInput(1, zero, identities[3].sign(message))
    server = proto.server(round_id=1, client_ids=frozenset(xs), dim=DIM)
    server.start()
    with pytest.raises(IntegrityError, match="client 3 signed a malformed input") as err:
        server.receive(3, bad.to_bytes())
    assert err.value.__cause__ is None
    for cid in sorted(set(xs) - {3}):
        server.receive(cid, signed[cid].to_bytes())
    for pid, req in server.advance().items():
        server.receive(pid, proto.parties()[pid].handle(req))
    server.advance()
    survivors = sorted(set(xs) - {3})
    assert sorted(server.result.survivors) == survivors
    expected = sum(xs[c].astype(np.uint64) for c in survivors).astype(np.uint16)
    assert np.array_equal(server.result.aggregate, expected)
