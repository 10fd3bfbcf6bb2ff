"""secagg-v3 (active mode): a client whose envelope does not open is named with evidence
and excluded, and the round completes; a false complaint names the complainant."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from secfl import wire
from secfl.audit.forgery import corrupt_envelopes
from secfl.errors import IntegrityError, ProtocolAbort, SecflError
from secfl.hazmat import aead, dleq
from secfl.hazmat.kex import KexPrivateKey, KexPublicKey
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import secagg
from secfl.protocols import secagg_messages as m
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel
from secfl.runtime.simulator import simulate_round

BITS, N, T, DIM, ROUND = 32, 7, 5, 6, 1


def seeded(i: int) -> Csprng:
    return Csprng(seed=bytes([i]) * 32)


def _setup() -> tuple[SecAggProtocol, dict[int, SigningKey], dict[int, np.ndarray]]:
    keys = seeded(60)
    ids = {c: SigningKey.generate(rng=keys) for c in range(1, N + 1)}
    cfg = SecAggConfig(bits=BITS, threshold=T, n_clients=N, threat_model=ThreatModel.ACTIVE)
    rng = seeded(61)
    ins = {c: (rng.uint64(DIM) & np.uint64(2**BITS - 1)).astype(np.uint32) for c in ids}
    return SecAggProtocol(cfg, rng=seeded(62), identities=ids), ids, ins


Rewrite = Callable[[secagg.SecAggClient, bytes], bytes]
"""(client session, honest reply) -> the reply a cheating client sends instead."""
Tamper = Callable[[int, bytes], bytes | None]
"""(client, request) -> the request a lying server sends instead (None: unchanged)."""


def _run(rewrite: Rewrite | None = None, *, tamper: Tamper | None = None):
    """One round by hand: every client's reply through ``rewrite``, every request through
    ``tamper`` (a lying server); a client that aborts drops out. Returns (server,
    rejected: cid -> error, inputs)."""
    protocol, _, ins = _setup()
    server = protocol.server(round_id=ROUND, client_ids=frozenset(ins), dim=DIM)
    clients = {c: _session(protocol, c, x) for c, x in ins.items()}
    rejected: dict[int, str] = {}
    requests = server.start()
    while requests:
        for c, request in sorted(requests.items()):
            if tamper is not None:
                request = tamper(c, request) or request
            try:
                reply = clients[c].handle(request)
            except SecflError as e:
                rejected[c] = f"refused: {e}"
                continue
            if reply is not None and rewrite is not None:
                reply = rewrite(clients[c], reply)
            if reply is None:
                continue
            try:
                server.receive(c, reply)
            except IntegrityError as e:
                rejected[c] = str(e)
        requests = server.advance()
    return server, rejected, ins


def _expected(ins: dict[int, np.ndarray], survivors: frozenset[int]) -> list[int]:
    total = sum(ins[c].astype(np.uint64) for c in survivors)
    return (np.asarray(total) % np.uint64(2**BITS)).astype(np.uint32).tolist()


def _session(protocol: SecAggProtocol, c: int, x: np.ndarray) -> secagg.SecAggClient:
    session = protocol.client(round_id=ROUND, client_id=c, value=x)
    assert isinstance(session, secagg.SecAggClient)
    return session


def _corrupting(cheater: int, victims: set[int] | None) -> Rewrite:
    """The cheater's SHARE_KEYS with the envelopes to ``victims`` (all if None) made
    unopenable and signed again: well formed, authenticated, not openable."""
    _, ids, _ = _setup()
    to = set(range(1, N + 1)) if victims is None else victims

    def rewrite(session: secagg.SecAggClient, reply: bytes) -> bytes:
        if session.id != cheater:
            return reply
        return corrupt_envelopes(reply, session, to, ids[session.id])

    return rewrite


@pytest.mark.parametrize("victims", [{2}, {1, 5}, None], ids=["one", "two", "every"])
def test_a_corrupted_envelope_names_its_sender_and_the_round_completes(victims) -> None:
    server, rejected, ins = _run(_corrupting(3, victims))
    result = server.result
    assert rejected == {}
    assert set(result.excluded) == {3}
    assert "does not open" in result.excluded[3]
    assert result.survivors == frozenset(ins) - {3}
    assert result.aggregate.tolist() == _expected(ins, result.survivors)
    proof = server.evidence[3]
    assert proof.sender == 3
    assert proof.recipient == min(victims or {1})
    _, ids, _ = _setup()
    registry = {c: k.verify_key() for c, k in ids.items()}
    proof.check(registry)  # anyone with the registry can check it


def test_evidence_that_is_altered_proves_nothing() -> None:
    server, _, _ = _run(_corrupting(3, {2}))
    proof = server.evidence[3]
    _, ids, _ = _setup()
    registry = {c: k.verify_key() for c, k in ids.items()}
    other = server.evidence[3].sender_keys
    for bad in (
        dataclasses.replace(proof, envelope=proof.envelope[:-1] + b"\0"),  # signature fails
        dataclasses.replace(proof, sender=4),  # another client did not sign it
        dataclasses.replace(proof, round_id=ROUND + 1),
        dataclasses.replace(proof, proof=bytes(64)),
        dataclasses.replace(proof, recipient_keys=other),  # not the complainant's keys
    ):
        with pytest.raises(IntegrityError):
            bad.check(registry)


def _complaining(complainant: int, about: int, *, proof: bytes | None = None) -> Rewrite:
    """The complainant's CHECK with a complaint about ``about``'s envelope (which opens),
    carrying the complainant's genuine channel secret and proof unless ``proof`` is given."""
    _, ids, _ = _setup()

    def rewrite(session: secagg.SecAggClient, reply: bytes) -> bytes:
        c = session.id
        if c != complainant or wire.unframe(reply)[0] != m.Check.TYPE:
            return reply
        context = secagg._complaint_context(ROUND, c, about)
        peer = session._peers[about].c_pk
        revealed, good = dleq.prove_exchange(session._c_sk, peer, context=context)
        complaint = m.Complaint(about, revealed, proof or good)
        body = m.Check(ROUND, (complaint,), b"").body()
        sig = ids[c].sign(secagg._check_message(ROUND, c, body))
        return m.Check(ROUND, (complaint,), sig).to_bytes()

    return rewrite


@pytest.mark.parametrize("bad_proof", [False, True], ids=["genuine-proof", "forged-proof"])
def test_a_false_complaint_names_the_complainant(bad_proof) -> None:
    proof = bytes(32) + (1).to_bytes(32, "little") if bad_proof else None
    server, rejected, ins = _run(_complaining(4, 2, proof=proof))
    assert set(rejected) == {4}
    assert "complaint about client 2 is false" in rejected[4]
    result = server.result
    assert result.excluded == {}  # the accused is not excluded
    assert result.survivors == frozenset(ins) - {4}
    assert result.aggregate.tolist() == _expected(ins, result.survivors)


def test_an_envelope_changed_on_the_way_aborts_the_recipient() -> None:
    """The server relays signed envelopes: one it changed carries no valid signature, and
    the recipient aborts (it cannot tell the cheater, so it blames the relay)."""

    def tamper(c: int, request: bytes) -> bytes | None:
        if c != 1 or wire.unframe(request)[0] != m.SignedShares.TYPE:
            return None
        msg = m.SignedShares.from_bytes(request, round_id=ROUND, max_entries=N)
        (v, env), *rest = msg.envelopes
        bad = ((v, env[:-1] + bytes([env[-1] ^ 1])), *rest)
        return m.SignedShares(ROUND, bad, msg.signatures).to_bytes()

    server, rejected, _ = _run(tamper=tamper)
    assert rejected == {1: "refused: Ed25519 signature verification failed"}
    assert 1 not in server.result.survivors


def test_an_envelope_its_sender_did_not_sign_is_refused_when_it_arrives() -> None:
    def unsigned(session: secagg.SecAggClient, reply: bytes) -> bytes:
        if session.id != 6 or wire.unframe(reply)[0] != m.SignedShareKeys.TYPE:
            return reply
        msg = m.SignedShareKeys.from_bytes(reply, round_id=ROUND, max_entries=N)
        sigs = (bytes(64), *msg.signatures[1:])
        return m.SignedShareKeys(ROUND, msg.envelopes, sigs).to_bytes()

    server, rejected, ins = _run(unsigned)
    assert set(rejected) == {6}
    assert server.result.survivors == frozenset(ins) - {6}


def test_a_mask_request_naming_an_unopened_envelope_aborts() -> None:
    """A server that keeps the cheater in a complainant's mask set would make it mask
    with a client whose shares it does not hold: the complainant refuses."""
    protocol, _, ins = _setup()
    rewrite = _corrupting(3, {2})
    server = protocol.server(round_id=ROUND, client_ids=frozenset(ins), dim=DIM)
    clients = {c: _session(protocol, c, x) for c, x in ins.items()}
    requests = server.start()
    for _ in range(3):  # advertise, share, check
        for c, request in sorted(requests.items()):
            server.receive(c, rewrite(clients[c], clients[c].handle(request) or b""))
        requests = server.advance()
    everyone = tuple(v for v in sorted(ins) if v != 2)
    with pytest.raises(ProtocolAbort, match="does not hold"):
        clients[2].handle(m.MaskRequest(ROUND, everyone).to_bytes())


def test_the_simulator_reports_the_excluded_cheater() -> None:
    protocol, _, ins = _setup()
    cheat = _corrupting(5, None)

    class Cheater(SecAggProtocol):
        def client(self, *, round_id, client_id, value):  # type: ignore[no-untyped-def]
            inner = super().client(round_id=round_id, client_id=client_id, value=value)
            original = inner._respond

            def respond(data: bytes) -> bytes | None:
                reply = original(data)
                return None if reply is None else cheat(inner, reply)

            inner._respond = respond  # type: ignore[method-assign]
            return inner

    cheating = Cheater(protocol.config, rng=seeded(62), identities=_setup()[1])
    report = simulate_round(cheating, ins)
    assert report.correct
    assert report.aborted is None
    assert report.rejected.keys() == {5}
    assert report.rejected[5].startswith("excluded: sent client 1 an envelope")


def _forgery(kind: str, which: int = 0) -> str:
    from secfl.audit import forgery

    return forgery.check_client_forgery("secagg", kind, seed=bytes(32), which=which, active=True)


def test_the_audit_fails_a_server_that_skips_the_envelope_signatures(monkeypatch) -> None:
    monkeypatch.setattr(secagg.VerifyKey, "verify", lambda self, sig, message: None)
    with pytest.raises(AssertionError, match="accepted unsigned envelope"):
        _forgery("unsigned-envelope")


def test_the_audit_fails_a_server_that_believes_every_complaint(monkeypatch) -> None:
    monkeypatch.setattr(secagg.EnvelopeEvidence, "check", lambda self, registry: None)
    with pytest.raises(AssertionError, match="accepted false complaint"):
        _forgery("false-complaint")


def test_the_audit_fails_a_round_that_aborts_on_a_bad_envelope(monkeypatch) -> None:
    """The v2 behaviour in active mode: the recipient aborts instead of complaining."""

    def strict(self, data):  # type: ignore[no-untyped-def]
        msg = m.SignedShares.from_bytes(data, round_id=self.round_id, max_entries=N)
        for (u, env), _ in zip(msg.envelopes, msg.signatures, strict=True):
            secagg._open_envelope(self._peers[u].channel, self.round_id, u, self.id, env)
        return original(self, data)

    original = secagg.SecAggClient._on_signed_shares
    monkeypatch.setattr(secagg.SecAggClient, "_on_signed_shares", strict)
    with pytest.raises(AssertionError, match=r"instead of excluding it|want 1 excluded"):
        _forgery("corrupted-envelope")


def _twin(key: bytes) -> bytes:
    """The same key plus the point of order 2: u -> 1/u (Montgomery)."""
    p = 2**255 - 19
    return pow(int.from_bytes(key, "little"), p - 2, p).to_bytes(32, "little")


@pytest.mark.parametrize("active", [False, True])
def test_a_torsion_twin_of_anothers_key_is_refused_at_advertise(active) -> None:
    """Another client's channel key plus a torsion point: other bytes, but every shared
    secret with it equals the original's, so complaints against its sender would reveal
    the channels of the client it copies. The server compares agreement classes."""
    protocol, ids, ins = _setup()
    if not active:
        hbc = SecAggConfig(bits=BITS, threshold=4, n_clients=N)
        protocol = SecAggProtocol(hbc, rng=seeded(62))
    server = protocol.server(round_id=ROUND, client_ids=frozenset(ins), dim=DIM)
    requests = server.start()
    first = m.Advertise.from_bytes(
        _session(protocol, 1, ins[1]).handle(requests[1]) or b"", round_id=ROUND, signed=active
    )
    server.receive(1, first.to_bytes())
    copier = m.Advertise.from_bytes(
        _session(protocol, 2, ins[2]).handle(requests[2]) or b"", round_id=ROUND, signed=active
    )
    twin = dataclasses.replace(copier, c_pk=_twin(first.c_pk))
    if active:
        signed = secagg._advertise_message(ROUND, 2, twin.c_pk, twin.s_pk)
        twin = dataclasses.replace(twin, signature=ids[2].sign(signed))
    with pytest.raises(IntegrityError, match="client 1's key"):
        server.receive(2, twin.to_bytes())


def test_a_client_refuses_keys_whose_twins_it_has_seen() -> None:
    """Even signed by its owner (a lying server with a corrupt client), a KEYS entry whose
    channel key is a twin of another entry's is refused."""
    protocol, ids, ins = _setup()
    server = protocol.server(round_id=ROUND, client_ids=frozenset(ins), dim=DIM)
    clients = {c: _session(protocol, c, x) for c, x in ins.items()}
    requests = server.start()
    for c, request in sorted(requests.items()):
        server.receive(c, clients[c].handle(request) or b"")
    keys = m.Keys.from_bytes(server.advance()[1], round_id=ROUND, max_clients=N, signed=True)
    entries = list(keys.entries)
    last = entries[-1]
    twin = _twin(entries[0].c_pk)
    signed = ids[last.client].sign(secagg._advertise_message(ROUND, last.client, twin, last.s_pk))
    entries[-1] = dataclasses.replace(last, c_pk=twin, signature=signed)
    with pytest.raises(ProtocolAbort, match="already in use"):
        clients[1].handle(dataclasses.replace(keys, entries=tuple(entries)).to_bytes())


def test_evidence_with_another_key_of_the_recipient_proves_nothing() -> None:
    """A corrupt recipient that signs a second advertisement and proves the secret of
    that key cannot turn an honest sender's envelope into evidence: the sender's signature
    names the key it sealed to."""
    server, _, _ = _run(_corrupting(3, {2}))
    proof = server.evidence[3]
    _, ids, _ = _setup()
    registry = {c: k.verify_key() for c, k in ids.items()}
    rng = seeded(70)
    other_c, other_s = KexPrivateKey.generate(rng=rng), KexPrivateKey.generate(rng=rng)
    c_pk, s_pk = other_c.public_key().to_bytes(), other_s.public_key().to_bytes()
    sig = ids[2].sign(secagg._advertise_message(ROUND, 2, c_pk, s_pk))
    sender_c = KexPublicKey.from_bytes(proof.sender_keys[0])
    context = secagg._complaint_context(ROUND, 2, 3)
    revealed, dl = dleq.prove_exchange(other_c, sender_c, context=context)
    forged = dataclasses.replace(
        proof, recipient_keys=(c_pk, s_pk, sig), revealed=revealed, proof=dl
    )
    with pytest.raises(IntegrityError):
        forged.check(registry)
    proof.check(registry)  # the genuine evidence still holds


def test_evidence_with_a_malformed_plaintext_raises_only_secfl_errors() -> None:
    """Evidence is read from anywhere, not only from fixed-size wire records."""
    channel = bytes(32)
    for size in (0, 8, 11, 8 + 88 + 4):
        plain = bytes(size)
        ad = secagg._pair_info(b"share", ROUND, 3, 2) + (3).to_bytes(4, "big")
        env = aead.seal(channel, plain, associated_data=ad, rng=seeded(71))
        with pytest.raises(IntegrityError):
            secagg._open_envelope(channel, ROUND, 3, 2, env)


@pytest.mark.parametrize("active", [False, True])
def test_a_wrong_revealed_share_of_a_survivor_is_decoded_around(active) -> None:
    """A holder reveals a wrong share of a survivor's b at unmasking. With t shares only,
    the server would rebuild a wrong b and report a wrong sum; with the others it finds
    the share off the polynomial and decodes around it (secagg-v3 section 6)."""
    n = 10
    holders = n - 1
    t = (2 * holders) // 3 + 1 if active else holders // 2 + 1
    model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
    keys = seeded(80)
    ids = {c: SigningKey.generate(rng=keys) for c in range(1, n + 1)} if active else None
    config = SecAggConfig(bits=BITS, threshold=t, n_clients=n, threat_model=model)
    protocol = SecAggProtocol(config, rng=seeded(81), identities=ids)
    rng = seeded(82)
    ins = {c: (rng.uint64(DIM) & np.uint64(2**BITS - 1)).astype(np.uint32) for c in range(1, n + 1)}
    server = protocol.server(round_id=ROUND, client_ids=frozenset(ins), dim=DIM)
    clients = {c: _session(protocol, c, x) for c, x in ins.items()}
    requests = server.start()
    while requests:
        for c, request in sorted(requests.items()):
            reply = clients[c].handle(request) or b""
            if c == 1 and reply[3] == m.Unmask.TYPE:  # client 1 lies about client 2's b
                msg = m.Unmask.from_bytes(reply, round_id=ROUND, max_entries=n)
                entries = [
                    dataclasses.replace(e, share=bytes(4) + e.share[4:]) if e.owner == 2 else e
                    for e in msg.entries
                ]
                reply = m.Unmask(ROUND, tuple(entries)).to_bytes()
            server.receive(c, reply)
        requests = server.advance()
    assert server.result.survivors == frozenset(ins)
    assert server.result.aggregate.tolist() == _expected(ins, server.result.survivors)
