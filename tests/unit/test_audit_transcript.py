import pickle
import struct

import numpy as np
import pytest

from secfl import wire
from secfl.audit import (
    AuditFailure,
    ShareKind,
    Transcript,
    TranscriptRecorder,
    Violation,
    check_view,
)
from secfl.audit import _rounds as rounds
from secfl.errors import InvalidArgument, SecflError
from secfl.hazmat import shamir
from secfl.hazmat.rng import Csprng
from secfl.protocols import paillier as pl
from secfl.protocols import secagg
from secfl.protocols.base import KEY_HOLDER
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, ThreatModel
from secfl.runtime.simulator import simulate_round


def inputs(n, d=8, bits=32):
    return rounds.random_inputs(Csprng(seed=bytes(32)), range(1, n + 1), bits=bits, dim=d)


def secagg_round(n=5, t=3, *, coalition=(), dropouts=None, active=False, degree=None):
    model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
    cfg = SecAggConfig(bits=32, threshold=t, n_clients=n, degree=degree, threat_model=model)
    recorder = TranscriptRecorder(coalition=coalition)
    protocol = recorder.wrap(rounds.secagg_protocol(cfg, Csprng(seed=bytes([7]) * 32)))
    report = simulate_round(protocol, inputs(n), dropouts=dropouts)
    return recorder.transcript, report


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dropouts": {2: "mask", 4: "share"}, "n": 7, "t": 4},
        {"dropouts": {5: "unmask"}},
        {"coalition": (1, 2)},
        {"active": True, "n": 5, "t": 3, "dropouts": {3: "mask"}},
        {"degree": 4, "n": 8, "t": 3, "coalition": (4, 5), "dropouts": {6: "mask"}},
    ],
)
def test_honest_rounds_pass(kwargs):
    tr, report = secagg_round(**kwargs)
    assert report.correct
    check_view(tr)
    assert tr.result is not None
    assert tr.round_id == 1


def test_transcript_decodes_what_the_server_saw():
    tr, _ = secagg_round(dropouts={2: "mask"})
    masked = tr.masked_inputs()
    assert sorted(masked) == [1, 3, 4, 5]
    shares = tr.revealed_shares()
    assert {s.owner for s in shares if s.kind is ShareKind.MASKING_KEY} == {2}
    assert {s.owner for s in shares if s.kind is ShareKind.SELF_MASK_SEED} == {1, 3, 4, 5}
    assert all(len(s.share) == 44 for s in shares)
    assert len(tr.emitted(secagg.MSG_ADVERTISE)) == 5
    assert all(d.accepted for d in tr.deliveries)


def _append_shares(frame, extra):
    """An UNMASK frame with more (owner, kind, share) entries, as a broken client sends."""
    body = bytes(wire.unframe(frame)[1])
    count = int.from_bytes(body[8:12], "big")
    tail = b"".join(struct.pack(">IB", u, k) + s for u, k, s in extra)
    return wire.frame(
        secagg.MSG_UNMASK, body[:8] + struct.pack(">I", count + len(extra)) + body[12:] + tail
    )


def test_revealing_both_shares_is_double_masking(monkeypatch):
    # A broken client that also reveals its share of s_u^SK for every survivor it holds.
    real = secagg.SecAggClient._on_unmask_request

    def both(self, data):
        held = dict(self._held)
        frame = real(self, data)
        extra = [(u, 1, both[shamir.SHARE_BYTES :]) for u, both in held.items()]
        return _append_shares(frame, extra)

    monkeypatch.setattr(secagg.SecAggClient, "_on_unmask_request", both)
    tr, _ = secagg_round()
    with pytest.raises(AuditFailure) as info:
        check_view(tr)
    rules = {v.rule for v in info.value.violations}
    assert {"double-masking", "one-share-per-owner", "survivor-key", "input-hidden"} <= rules
    assert "b_1" in str(info.value)


def test_coalition_shares_count_towards_the_threshold():
    # t = 3 of 4 holders; a coalition of 2 holds 2 shares of both secrets of everyone. One
    # honest reveal of s_u^SK for a survivor u then completes t shares: flagged.
    tr, _ = secagg_round(coalition=(4, 5))
    frame = next(f for c, f in tr.emitted(secagg.MSG_UNMASK) if c == 2)
    tampered = _append_shares(frame, [(1, 1, bytes(44))])
    i = next(i for i, e in enumerate(tr.exchanges) if e.response == frame)
    e = tr.exchanges[i]
    tr.exchanges[i] = type(e)(e.client, e.request, tampered, None)
    with pytest.raises(AuditFailure, match=r"survivor-key|double-masking"):
        check_view(tr)


def test_coalition_at_threshold_is_refused():
    tr, _ = secagg_round(coalition=(1, 2, 3))
    with pytest.raises(InvalidArgument, match="not below the threshold"):
        check_view(tr)


def test_unmasked_input_is_flagged(monkeypatch):
    monkeypatch.setattr(secagg._Masker, "add", lambda self, acc, seed, label, sign: None)
    tr, _ = secagg_round()
    with pytest.raises(AuditFailure, match="input-masked"):
        check_view(tr)


def test_client_answering_after_refusal_and_twice_is_flagged():
    tr, _ = secagg_round()
    first = tr.exchanges[0]
    tr.exchanges.insert(0, type(first)(first.client, first.request, None, "ProtocolAbort: x"))
    tr.exchanges.append(first)
    with pytest.raises(AuditFailure) as info:
        check_view(tr)
    assert {v.rule for v in info.value.violations} >= {"sticky-abort", "answer-once"}


def test_plaintext_round_has_only_common_rules():
    recorder = TranscriptRecorder()
    report = simulate_round(recorder.wrap(PlaintextProtocol(bits=16)), inputs(3, bits=16))
    assert report.correct
    check_view(recorder.transcript)


def paillier_round(n=3, d=10):
    spec = rounds.PaillierSpec(n=n, bits=16, value_bits=8, min_clients=2, dim=d, seed=bytes(32))
    recorder = TranscriptRecorder()
    holder = rounds.paillier_holder(spec.config)
    protocol = recorder.wrap(
        pl.PaillierProtocol(spec.config, key_holder=holder, rng=Csprng(seed=bytes(32)))
    )
    values = rounds.paillier_inputs(spec, Csprng(seed=bytes([1]) * 32))
    report = simulate_round(protocol, values)
    return recorder.transcript, report, protocol.parties()[KEY_HOLDER].handle


def test_paillier_honest_round_passes_and_second_decryption_is_refused():
    tr, report, decrypt = paillier_round()
    assert report.correct
    check_view(tr)
    with pytest.raises(SecflError):
        decrypt(tr.decryptions[0].request)
    assert tr.decryptions[-1].error is not None
    check_view(tr)


def test_paillier_unobfuscated_and_repeated_ciphertexts_are_flagged():
    tr, _, _ = paillier_round()
    _, frame = tr.emitted(pl.MSG_INPUT)[0]
    body = bytes(wire.unframe(frame)[1])
    width = 256
    bare = (1 + 5 * tr.paillier_n).to_bytes(width, "big")  # 1 + m*n: no obfuscator
    forged = wire.frame(pl.MSG_INPUT, body[:8] + bare + body[8 + width :])
    i = next(i for i, e in enumerate(tr.exchanges) if e.response == frame)
    e = tr.exchanges[i]
    tr.exchanges[i] = type(e)(e.client, e.request, forged, None)
    other = next(x for x in tr.exchanges if x.client != e.client)
    tr.exchanges.append(type(e)(other.client, other.request, forged, None))
    with pytest.raises(AuditFailure) as info:
        check_view(tr)
    assert {v.rule for v in info.value.violations} >= {"input-encrypted", "rerandomized"}


def test_recorder_refuses_misuse():
    recorder = TranscriptRecorder()
    protocol = recorder.wrap(PlaintextProtocol(bits=8))
    with pytest.raises(InvalidArgument):
        recorder.wrap(PlaintextProtocol(bits=8))
    protocol.server(round_id=1, client_ids=frozenset({1}), dim=1)
    with pytest.raises(InvalidArgument, match=r"records round 1"):
        protocol.client(round_id=2, client_id=1, value=np.zeros(1, np.uint8))
    with pytest.raises(InvalidArgument):
        TranscriptRecorder(coalition=[0])
    with pytest.raises(InvalidArgument):
        check_view("not a transcript")


def test_transcript_holds_secrets():
    tr, _ = secagg_round()
    with pytest.raises(TypeError):
        pickle.dumps(tr)
    assert "exchanges=" in repr(tr)
    assert str(Violation("rule", "detail")) == "[rule] detail"
    assert isinstance(tr, Transcript)


def test_known_secagg_plus_split_view_attack_is_flagged():
    # secagg-v1 section 12 item 1 (unchanged in v2): on a sparse graph a lying server can
    # show each client its own survivor list so that u's holders reveal b_u while the
    # holders of each of u's neighbours reveal that neighbour's s^SK. No client check
    # fails; the view exposes x_u. Degree 2, t = 2, six clients: the smallest instance.
    n, t = 6, 2
    cfg = SecAggConfig(bits=32, threshold=t, n_clients=n, degree=2)
    recorder = TranscriptRecorder()
    protocol = recorder.wrap(rounds.secagg_protocol(cfg, Csprng(seed=bytes([3]) * 32)))
    values = inputs(n)
    clients = {c: protocol.client(round_id=1, client_id=c, value=v) for c, v in values.items()}
    server = protocol.server(round_id=1, client_ids=frozenset(values), dim=8)
    requests = server.start()
    for _ in range(3):  # advertise, share, mask
        for c, req in sorted(requests.items()):
            server.receive(c, clients[c].handle(req))
        requests = server.advance()
    neighbours = {c: s._neighbours for c, s in ((c, s._inner) for c, s in clients.items())}
    u = 1
    a, b = sorted(neighbours[u])
    hidden = {u: {a, b}}
    for v in neighbours[a] - {u}:
        hidden[v] = {a}
    for v in neighbours[b] - {u}:
        hidden[v] = {b}
    for c in clients:
        # secagg-v2: the count, and the neighbours of c the (lying) list keeps
        listed = sorted(neighbours[c] - hidden.get(c, set()))
        body = wire.Writer().u64(1).u32(n - len(hidden.get(c, ()))).u32(len(listed))
        body.raw(struct.pack(f">{len(listed)}I", *listed))
        clients[c].handle(wire.frame(secagg.MSG_SURVIVORS, body.getvalue()))  # all accept
    with pytest.raises(AuditFailure) as info:
        check_view(recorder.transcript)
    rules = {v.rule: v.detail for v in info.value.violations}
    assert set(rules) == {"input-hidden"}
    assert f"client {u}'s input" in rules["input-hidden"]
