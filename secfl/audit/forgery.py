"""Forged client messages: the server must refuse each one and stay where it was.

The state machines keep every client honest (a coalition only *pools* its view), so the
server's own checks of what clients send -- who may send, how often, to whom envelopes are
addressed, whether a share is revealed twice or of the wrong kind, whether a signature is
genuine and of this round -- are only reached by the wire fuzzer's random damage. Here one
client (``which``) sends a well-formed message with one deliberate flaw (``forgery``), in the
phase the flaw belongs to, during an otherwise honest round:

* the server refuses it with a :class:`~secfl.errors.SecflError` and does not change phase;
* the client's genuine message is then accepted, and the round ends with the exact sum of
  every input (the forgery left no trace in the server's state).

:func:`check_client_forgery` runs one case; :data:`FORGERIES` lists the flaws per protocol.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

import numpy as np

from secfl import wire
from secfl.audit import _rounds as rounds
from secfl.errors import IntegrityError, SecflError
from secfl.hazmat import aead, dleq, shamir
from secfl.hazmat import paillier as hp
from secfl.hazmat.kex import KexPrivateKey
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.sign import SigningKey
from secfl.protocols import paillier as pl
from secfl.protocols import paillier_messages as pm
from secfl.protocols import plaintext_messages as ptm
from secfl.protocols import secagg as sa
from secfl.protocols import secagg_messages as sm
from secfl.protocols.base import (
    KEY_HOLDER,
    AggregationProtocol,
    ClientSession,
    ProtocolName,
    ServerSession,
)

__all__ = [
    "FORGERIES",
    "REQUEST_FLAWS",
    "check_client_forgery",
    "check_request_forgery",
]

_COMMON = ("uninvited", "twice")
FORGERIES: dict[str, tuple[str, ...]] = {
    ProtocolName.PLAIN: (*_COMMON, "other-round"),
    ProtocolName.SECAGG: (
        *_COMMON,
        "invalid-key",
        "non-canonical-key",
        "copied-key",
        "twin-key",
        "doubled-key",
        "forged-key-signature",
        "replayed-key-signature",
        "misaddressed-envelope",
        "missing-envelope",
        "masked-other-round",
        "masked-twice",
        "forged-consistency",
        "share-revealed-twice",
        "wrong-share-kind",
        "share-not-held",
        "share-out-of-field",
        "missing-share",
        "corrupted-share",
        "dealt-bad-share",
        "corrupted-envelope",
        "unsigned-envelope",
        "false-complaint",
        "forged-complaint",
        "unsigned-complaint",
        "complaint-outsider",
        "twist-key",
    ),
    ProtocolName.PAILLIER: (
        *_COMMON,
        "other-round",
        "answer-other-round",
        "answer-twice",
        "answer-early",
        "empty-sum",
        "short-sum",
        "long-sum",
        "zero-ciphertext",
        "ciphertext-out-of-range",
        "ciphertext-not-unit",
    ),
}
# The phase (the type of the client's message) each flaw is sent in.
_SECAGG_PHASE = {
    "invalid-key": sa.MSG_ADVERTISE,
    "non-canonical-key": sa.MSG_ADVERTISE,
    "copied-key": sa.MSG_ADVERTISE,
    "twin-key": sa.MSG_ADVERTISE,
    "doubled-key": sa.MSG_ADVERTISE,
    "forged-key-signature": sa.MSG_ADVERTISE,
    "replayed-key-signature": sa.MSG_ADVERTISE,
    "misaddressed-envelope": sa.MSG_SHARE_KEYS,
    "missing-envelope": sa.MSG_SHARE_KEYS,
    "masked-other-round": sa.MSG_MASKED_INPUT,
    "masked-twice": sa.MSG_MASKED_INPUT,
    "unsigned-envelope": sa.MSG_SHARE_KEYS,
    "false-complaint": sa.MSG_CHECK,
    "forged-complaint": sa.MSG_CHECK,
    "unsigned-complaint": sa.MSG_CHECK,
    "complaint-outsider": sa.MSG_CHECK,
    "twist-key": sa.MSG_ADVERTISE,
    "forged-consistency": sa.MSG_CONSISTENCY,
    "share-revealed-twice": sa.MSG_UNMASK,
    "wrong-share-kind": sa.MSG_UNMASK,
    "share-not-held": sa.MSG_UNMASK,
    "share-out-of-field": sa.MSG_UNMASK,
    "missing-share": sa.MSG_UNMASK,
}
_ACTIVE_ONLY = (
    "forged-key-signature",
    "replayed-key-signature",
    "forged-consistency",
    "unsigned-envelope",
    "false-complaint",
    "forged-complaint",
    "unsigned-complaint",
    "complaint-outsider",
)
# X25519 u-coordinates of points of small order: 0 (order 2) and, on the curve itself
# rather than its twist (so that only the small-order check can refuse them), 1 (order 4)
# and a point of order 8.
_LOW_ORDER_POINTS = tuple(
    u.to_bytes(32, "little")
    for u in (0, 1, 325606250916557431795983626356110631294008115727848805560023387167927233504)
)
_P25519 = 2**255 - 19


def _non_canonical(key: bytes, which: int) -> bytes:
    """Another encoding of an X25519 point (u >= p): ``key`` with its unused top bit set
    (the same point, other bytes: a copy no byte comparison sees) or p itself (0 again)."""
    u = int.from_bytes(key, "little") + (1 << 255) if which % 2 else _P25519
    return u.to_bytes(32, "little")


R = rounds.ROUND_ID


def _other_round(which: int) -> int:
    return R + 1 if which % 2 else R - 1


# Requests a client must refuse: one field differs from what the client was configured with.
REQUEST_FLAWS: dict[str, tuple[str, ...]] = {
    ProtocolName.PLAIN: ("round", "dim", "bits", "type"),
    ProtocolName.SECAGG: (
        "mode",
        "dim",
        "bits",
        "threshold",
        "degree",
        "type",
        "keys-missing-entry",
        "keys-repeated-entry",
        "keys-extra-entry",
        "keys-more-members",
        "keys-wrong-point",
        "keys-outsider",
        "shares-unknown-sender",
        "shares-out-of-field",
        "signatures-unregistered",
        "envelope-signature",
        "mask-outsider",
        "mask-complained",
        "signed-shares-outsider",
    ),
    ProtocolName.PAILLIER: (
        "round",
        "dim",
        "bits",
        "value_bits",
        "n_clients",
        "fingerprint",
        "type",
    ),
}


def corrupt_envelopes(
    reply: bytes, sender: ClientSession, victims: Collection[int], key: SigningKey | None
) -> bytes:
    """The SHARE_KEYS of session ``sender`` (or, with its signing ``key``,
    SIGNED_SHARE_KEYS of secagg-v3) with its envelopes to ``victims`` made unopenable (the
    AEAD tag's last bit flipped) and signed again: a cheating client. Any other message is
    returned as is."""
    assert isinstance(sender, sa.SecAggClient)
    kind = sm.SignedShareKeys if key is not None else sm.ShareKeys
    if reply[3] != kind.TYPE:
        return reply
    rid = wire.Reader(wire.unframe(reply)[1]).u64()
    msg = kind.from_bytes(reply, round_id=rid, max_entries=1 << 16)
    envelopes, sigs = [], list(msg.signatures)
    for i, (v, env) in enumerate(msg.envelopes):
        if v in victims:
            env = env[:-1] + bytes([env[-1] ^ 1])
            if key is not None:
                to = sender._peers[v].c_pk.to_bytes()
                sigs[i] = key.sign(sa._envelope_message(rid, sender.id, v, to, env))
        envelopes.append((v, env))
    return kind(rid, tuple(envelopes), tuple(sigs)).to_bytes()


def _evidence_proves_only_itself(evidence: sa.EnvelopeEvidence, registry: dict[int, Any]) -> None:
    """Each part of the evidence is checked: with either advertisement's signature, the
    envelope's signature or the proof garbled, or the sender missing from the registry, it
    must be refused with an IntegrityError (nothing else, and never accepted)."""
    sender_c, sender_s, _ = evidence.sender_keys
    recipient_c, recipient_s, _ = evidence.recipient_keys
    zero = bytes(64)
    variants = {
        "sender's advertisement": (
            replace(evidence, sender_keys=(sender_c, sender_s, zero)),
            registry,
        ),
        "recipient's advertisement": (
            replace(evidence, recipient_keys=(recipient_c, recipient_s, zero)),
            registry,
        ),
        "envelope signature": (replace(evidence, envelope_signature=zero), registry),
        "proof": (replace(evidence, proof=zero), registry),
        "registry without the sender": (
            evidence,
            {c: k for c, k in registry.items() if c != evidence.sender},
        ),
    }
    for what, (variant, keys) in variants.items():
        try:
            variant.check(keys)
        except IntegrityError:
            continue
        raise AssertionError(f"evidence with a bad {what} still convicts its sender")


def _odd_sized_envelopes_convict(
    evidence: sa.EnvelopeEvidence, registry: dict[int, Any], sender_key: SigningKey
) -> None:
    """Evidence is not read from fixed-size wire records: an envelope sealed by its sender
    under the proven channel key, naming the right parties, but around a plaintext shorter
    or longer than two shares does not open, and judging it must say so (convict), never
    fail with anything but that verdict."""
    rid, u, v = evidence.round_id, evidence.sender, evidence.recipient
    to = evidence.recipient_keys[0]
    channel = evidence.channel_key()
    ad = sa._pair_info(b"share", rid, u, v) + struct.pack(">I", u)
    for tail in (0, 3, 2 * shamir.SHARE_BYTES + 2):
        plain = struct.pack(">II", u, v) + bytes(tail)
        env = aead.seal(channel, plain, associated_data=ad, rng=rounds.derive(b"", "odd"))
        sig = sender_key.sign(sa._envelope_message(rid, u, v, to, env))
        try:
            replace(evidence, envelope=env, envelope_signature=sig).check(registry)
        except SecflError as e:
            raise AssertionError(
                f"an envelope of {8 + tail} plaintext bytes was judged to open ({e})"
            ) from None


def _wrong_share(
    reply: bytes, session: sa.SecAggClient, holder: int, key: SigningKey | None
) -> bytes:
    """The dealer's SHARE_KEYS with the envelope to ``holder`` re-sealed around shares
    that are field elements but off the dealer's polynomials (every element + 1)."""
    kind = sm.SignedShareKeys if key is not None else sm.ShareKeys
    msg = kind.from_bytes(reply, round_id=R, max_entries=1 << 16)
    envelopes, sigs = list(msg.envelopes), list(msg.signatures)
    i = [v for v, _ in envelopes].index(holder)
    peer = session._peers[holder]
    plain = sa._open_envelope(peer.channel, R, session.id, holder, envelopes[i][1])
    moved = (np.frombuffer(plain, dtype="<u4").astype(np.int64) + 1) % shamir.PRIME
    inner = struct.pack(">II", session.id, holder) + moved.astype("<u4").tobytes()
    ad = sa._pair_info(b"share", R, session.id, holder) + struct.pack(">I", session.id)
    env = aead.seal(peer.channel, inner, associated_data=ad, rng=rounds.derive(b"", "reseal"))
    envelopes[i] = (holder, env)
    if key is not None:
        to = peer.c_pk.to_bytes()
        sigs[i] = key.sign(sa._envelope_message(R, session.id, holder, to, env))
    return kind(R, tuple(envelopes), tuple(sigs)).to_bytes()


class _Case:
    """One honest round, driven phase by phase, with one forged message injected."""

    def __init__(self, protocol: AggregationProtocol, inputs: dict[int, np.ndarray]) -> None:
        self.protocol = protocol
        self.inputs = inputs
        self.clients: dict[int, ClientSession] = {
            c: protocol.client(round_id=R, client_id=c, value=v) for c, v in inputs.items()
        }
        dim = next(iter(inputs.values())).size
        self.dim = dim
        self.server = protocol.server(round_id=R, client_ids=frozenset(inputs), dim=dim)
        self.injected = False

    def run(self, phase_of: int | None, sender: int, forge: _Forge) -> str:
        """``phase_of``: the message type to forge (``None``: the first client message)."""
        parties = self.protocol.parties()
        requests = self.server.start()
        for _ in range(len(self.protocol.phases) + 2):
            if not requests:
                break
            replies: list[tuple[int, bytes]] = []
            for c, req in sorted(requests.items()):
                reply = (parties[c] if c in parties else self.clients[c]).handle(req)
                if reply is not None:
                    replies.append((c, reply))
            forge.others.update((c, r) for c, r in replies if c != sender)
            for c, reply in replies:
                target = not self.injected and c == sender and c in self.clients
                if target and (phase_of is None or reply[3] == phase_of):
                    self._inject(forge, c, reply)
                self.server.receive(c, reply)
                if target and self.injected and forge.after:
                    self._refused(c, reply, "the same message a second time")
            requests = self.server.advance()
        if not self.injected:
            return "no such message in this configuration"
        result = self.server.result
        want = rounds.expected_sum(self.inputs, self.inputs, bits=self.protocol.bits)
        if result.survivors != frozenset(self.inputs) or not np.array_equal(result.aggregate, want):
            raise AssertionError(
                f"after refusing {forge.what}, the round did not end with the exact sum of "
                f"every input (survivors {sorted(result.survivors)})"
            )
        return f"refused {forge.what}"

    def run_answer(self, forgery: str, which: int) -> str:
        """Paillier: the aggregator gets the key holder's answer of another round, the
        answer twice, or a well-formed answer while it still collects inputs (before it
        asked); it must refuse on arrival and end the round with the exact sum."""
        parties = self.protocol.parties()
        requests = self.server.start()
        for i, (c, req) in enumerate(sorted(requests.items())):
            if forgery == "answer-early" and i == which % len(requests):
                zeros = np.zeros(self.dim, dtype=uint_dtype(self.protocol.bits))
                early = pm.DecryptedSum(R, zeros, self.protocol.bits).to_bytes()
                self._refused(KEY_HOLDER, early, forgery)
            self.server.receive(c, self.clients[c].handle(req) or b"")
        ((holder, request),) = self.server.advance().items()
        answer = parties[holder].handle(request) or b""
        if forgery == "answer-other-round":
            msg = pm.DecryptedSum.from_bytes(answer, bits=self.protocol.bits, dim=self.dim)
            self._refused(holder, replace(msg, round_id=_other_round(which)).to_bytes(), forgery)
            self.server.receive(holder, answer)
        else:
            self.server.receive(holder, answer)
            self._refused(holder, answer, forgery)
        self.server.advance()
        self.injected = True
        return self._exact(forgery)

    def run_sum(self, forgery: str) -> str:
        """Paillier: the key holder gets a malformed encrypted sum first (no values, or
        ciphertexts cut short or one byte too long): it must refuse it without spending the
        round, so that the genuine request is then decrypted."""
        parties = self.protocol.parties()
        requests = self.server.start()
        for c, req in sorted(requests.items()):
            self.server.receive(c, self.clients[c].handle(req) or b"")
        ((holder, request),) = self.server.advance().items()
        msg = pm.EncryptedSum.from_bytes(request)
        if forgery == "empty-sum":
            bad = replace(msg, count=0, ciphertexts=b"")
        elif forgery == "long-sum":
            bad = replace(msg, ciphertexts=msg.ciphertexts + b"\0")
        else:
            bad = replace(msg, ciphertexts=msg.ciphertexts[:-1])
        try:
            parties[holder].handle(bad.to_bytes())
        except SecflError:
            pass
        else:
            raise AssertionError(f"the key holder decrypted a {forgery.replace('-', ' ')}")
        try:
            answer = parties[holder].handle(request) or b""
        except SecflError as e:
            raise AssertionError(
                f"after refusing a {forgery.replace('-', ' ')}, the key holder refused the "
                f"genuine request of the round ({type(e).__name__}: {e})"
            ) from None
        self.server.receive(holder, answer)
        self.server.advance()
        self.injected = True
        return self._exact(forgery)

    def run_corrupted_share(self, n: int, t: int, which: int) -> str:
        """SecAgg: client ``d`` drops out after sharing its keys (even ``which``) or stays
        (odd); the first holder to unmask reveals a corrupted share of d's s^SK (or b). The
        round must end with the exact sum of the survivors or a SecflError, never with a
        wrong aggregate (a wrong b share is caught only by the other shares: secagg-v3
        section 6)."""
        dropped = which % n + 1 if which % 2 == 0 else 0
        owner = dropped or which % n + 1
        holder = min(c for c in self.clients if c != owner)
        requests = self.server.start()
        for _ in range(len(self.protocol.phases) + 2):
            if not requests:
                break
            for c, req in sorted(requests.items()):
                if c == dropped and req[3] in (sa.MSG_SHARES, sa.MSG_SIGNED_SHARES):
                    continue  # d goes silent after ShareKeys
                reply = self.clients[c].handle(req)
                if reply is None:
                    continue
                if c == holder and reply[3] == sa.MSG_UNMASK:
                    reply = self._corrupt(reply, owner)
                self.server.receive(c, reply)
            try:
                requests = self.server.advance()
            except SecflError:
                return "refused to unmask with a corrupted share"
        result = self.server.result
        survivors = result.survivors
        want = rounds.expected_sum(self.inputs, survivors, bits=self.protocol.bits)
        if not np.array_equal(result.aggregate, want):
            raise AssertionError(
                f"a corrupted share of client {owner}'s secret (from client {holder}) made the "
                f"round end with a wrong aggregate over {sorted(survivors)}"
            )
        return "the corrupted share was not used"

    def run_corrupted_envelope(self, which: int, *, active: bool) -> str:
        """SecAgg: a client's envelopes to one neighbour (or, for odd ``which``, to all)
        do not open, though well formed and, in active mode, signed by it. Active
        (secagg-v3): the round must exclude exactly that client, with evidence anyone can
        check, and end with the exact sum of all the others. HBC: the exact sum of the
        survivors or a SecflError."""
        n = len(self.clients)
        cheater = which % n + 1
        ids = rounds.identities(n)
        others = sorted(set(self.clients) - {cheater})
        victims = set(others) if which % 2 else {others[which // 2 % len(others)]}
        requests = self.server.start()
        try:
            for _ in range(len(self.protocol.phases) + 2):
                if not requests:
                    break
                for c, req in sorted(requests.items()):
                    try:
                        reply = self.clients[c].handle(req)
                    except SecflError:
                        continue  # HBC: a victim refuses its shares and drops out
                    if reply is not None and c == cheater:
                        key = ids[c] if active else None
                        reply = corrupt_envelopes(reply, self.clients[c], victims, key)
                    if reply is not None:
                        self.server.receive(c, reply)
                requests = self.server.advance()
        except SecflError:
            if active:
                raise AssertionError(
                    f"client {cheater}'s envelopes to {sorted(victims)} that do not open "
                    "ended the active round instead of excluding it"
                ) from None
            return "the round ended with a SecflError"
        result = self.server.result
        want = rounds.expected_sum(self.inputs, result.survivors, bits=self.protocol.bits)
        if not np.array_equal(result.aggregate, want):
            raise AssertionError(f"bad envelopes from client {cheater} gave a wrong aggregate")
        if not active:
            return "the round ended with the exact sum of the survivors"
        if set(result.excluded) != {cheater} or result.survivors != frozenset(others):
            raise AssertionError(
                f"bad envelopes from client {cheater}: excluded {sorted(result.excluded)}, "
                f"survivors {sorted(result.survivors)}; want {cheater} excluded, all others in"
            )
        evidence = getattr(self.server, "evidence", {}).get(cheater)
        if evidence is None:
            raise AssertionError(f"client {cheater} was excluded without evidence")
        registry = {c: k.verify_key() for c, k in ids.items()}
        evidence.check(registry)
        _evidence_proves_only_itself(evidence, registry)
        _odd_sized_envelopes_convict(evidence, registry, ids[cheater])
        return f"excluded client {cheater} with evidence; exact sum of the others"

    def run_dealt_bad_share(self, which: int, *, active: bool) -> str:
        """SecAgg: client ``d`` deals one holder an envelope that opens but holds a wrong
        share (re-sealed under the real channel key, signed in active mode), then drops out
        before masking (even ``which``: its s^SK is needed) or stays (odd: its b is). The
        server has more than t + 1 shares of d's secrets and must decode around the wrong
        one: the round ends with the exact sum of the survivors."""
        n = len(self.clients)
        dealer = which % n + 1
        holder = min(c for c in self.clients if c != dealer)
        drops = which % 2 == 0
        ids = rounds.identities(n)
        session = self.clients[dealer]
        assert isinstance(session, sa.SecAggClient)
        kind = sm.SignedShareKeys if active else sm.ShareKeys
        mask_phase = sa.MSG_MASK_REQUEST if active else sa.MSG_SHARES
        requests = self.server.start()
        for _ in range(len(self.protocol.phases) + 2):
            if not requests:
                break
            for c, req in sorted(requests.items()):
                if c == dealer and drops and req[3] == mask_phase:
                    continue  # d drops after sharing (and, active, after CHECK)
                reply = self.clients[c].handle(req)
                if reply is not None and c == dealer and reply[3] == kind.TYPE:
                    reply = _wrong_share(reply, session, holder, ids[c] if active else None)
                if reply is not None:
                    self.server.receive(c, reply)
            requests = self.server.advance()
        result = self.server.result
        if (dealer in result.survivors) == drops or result.excluded:
            raise AssertionError(f"dealer {dealer}: survivors {sorted(result.survivors)}")
        want = rounds.expected_sum(self.inputs, result.survivors, bits=self.protocol.bits)
        if not np.array_equal(result.aggregate, want):
            raise AssertionError(f"a wrong share dealt by client {dealer} spoiled the sum")
        return f"decoded around client {dealer}'s wrong share to client {holder}"

    @staticmethod
    def _corrupt(reply: bytes, owner: int) -> bytes:
        msg = sm.Unmask.from_bytes(reply, round_id=R, max_entries=1 << 16)
        entries = []
        for e in msg.entries:
            if e.owner == owner:  # one field element moved by 1: still a valid share
                share = shamir.shares_from_bytes(e.share, 1)
                share[0, 0] = (int(share[0, 0]) + 1) % shamir.PRIME
                e = replace(e, share=shamir.shares_to_bytes(share))
            entries.append(e)
        return replace(msg, entries=tuple(entries)).to_bytes()

    def _exact(self, what: str) -> str:
        result = self.server.result
        want = rounds.expected_sum(self.inputs, self.inputs, bits=self.protocol.bits)
        if result.survivors != frozenset(self.inputs) or not np.array_equal(result.aggregate, want):
            raise AssertionError(f"after {what}, the round did not end with the exact sum")
        return f"refused {what}"

    def _inject(self, forge: _Forge, c: int, honest: bytes) -> None:
        self.injected = True
        if forge.after:  # sent after the genuine message (see run)
            return
        forged = forge.make(c, honest)
        if forged is None:
            self.injected = False
            return
        src, data = forged
        self._refused(src, data, forge.what)

    def _refused(self, src: int, data: bytes, what: str) -> None:
        before = self.server.phase
        try:
            self.server.receive(src, data)
        except SecflError as e:
            if self.server.phase != before:
                raise AssertionError(
                    f"the server moved from phase {before!r} to {self.server.phase!r} while "
                    f"refusing {what} from client {src} ({type(e).__name__})"
                ) from None
            return
        raise AssertionError(f"the server accepted {what} from client {src} in phase {before!r}")


_Make = Callable[[int, bytes], "tuple[int, bytes] | None"]


class _Forge:
    """``make(sender, genuine) -> (claimed sender, frame)`` (``None``: not applicable); with
    ``after``, the genuine message itself is sent again after it was accepted."""

    def __init__(
        self,
        what: str,
        make: _Make | None = None,
        *,
        after: bool = False,
        others: dict[int, bytes] | None = None,
    ) -> None:
        self.what = what
        self.after = after
        self._make = make
        self.others = others if others is not None else {}
        """The other clients' genuine messages of the forged phase (run() fills it)."""

    def make(self, c: int, honest: bytes) -> tuple[int, bytes] | None:
        assert self._make is not None
        return self._make(c, honest)


def _common(forgery: str, n: int) -> _Forge | None:
    if forgery == "uninvited":
        return _Forge("a message from a client never invited", lambda c, h: (n + 1, h))
    if forgery == "twice":
        return _Forge("a second message of the same phase", after=True)
    return None


def _secagg_forge(
    forgery: str, spec: rounds.SecAggSpec, which: int, sessions: dict[int, Any]
) -> tuple[int | None, _Forge]:
    n, active = spec.n, spec.active
    ids = rounds.identities(n)
    phase = _SECAGG_PHASE.get(forgery)
    others: dict[int, bytes] = {}  # the other clients' genuine messages of that phase

    def advertise(c: int, honest: bytes) -> tuple[int, bytes] | None:
        msg = sm.Advertise.from_bytes(honest, round_id=R, signed=active)
        if forgery == "invalid-key":
            msg = replace(msg, c_pk=_LOW_ORDER_POINTS[which % len(_LOW_ORDER_POINTS)])
        elif forgery == "twist-key":  # u = 2 lies on the twist; signed by its sender
            msg = replace(msg, c_pk=(2).to_bytes(32, "little"))
            if active:
                own = ids[c].sign(sa._advertise_message(R, c, msg.c_pk, msg.s_pk))
                msg = replace(msg, signature=own)
        elif forgery in ("non-canonical-key", "copied-key", "twin-key", "doubled-key"):
            if forgery == "non-canonical-key":
                msg = replace(msg, s_pk=_non_canonical(msg.s_pk, which))
            elif forgery == "doubled-key":  # its channel key again as its masking key
                msg = replace(msg, s_pk=msg.c_pk)
            else:  # the channel key of a client whose ADVERTISE the server already has
                earlier = [d for d in others if d < c]
                if not earlier:
                    return None  # client 1 is first: nothing to copy yet
                victim = sm.Advertise.from_bytes(others[max(earlier)], round_id=R, signed=active)
                copy = victim.c_pk
                if forgery == "twin-key":  # plus the point of order 2: u -> 1/u
                    u = int.from_bytes(copy, "little")
                    copy = pow(u, _P25519 - 2, _P25519).to_bytes(32, "little")
                msg = replace(msg, c_pk=copy)
            if active:  # signed by its sender: only the key checks can refuse it
                own = ids[c].sign(sa._advertise_message(R, c, msg.c_pk, msg.s_pk))
                msg = replace(msg, signature=own)
        elif forgery == "forged-key-signature":  # another identity signs c's keys
            other = ids[c % n + 1]
            msg = replace(
                msg,
                signature=other.sign(sa._advertise_message(R, c, msg.c_pk, msg.s_pk)),
            )
        else:  # c's genuine signature from the previous round, on its keys of that round
            old = rounds.secagg_protocol(spec.config, rounds.derive(spec.seed, "old"))
            zero = np.zeros(spec.dim, dtype=uint_dtype(spec.bits))
            session = old.client(round_id=R - 1, client_id=c, value=zero)
            request = sm.AdvertiseRequest(
                R - 1,
                spec.config.threat_model.value,
                spec.dim,
                spec.bits,
                spec.threshold,
                0,
            )
            old_msg = sm.Advertise.from_bytes(
                session.handle(request.to_bytes()) or b"", round_id=R - 1, signed=True
            )
            msg = replace(old_msg, round_id=R)
        return c, msg.to_bytes()

    def share_keys(c: int, honest: bytes) -> tuple[int, bytes] | None:
        kind = sm.SignedShareKeys if active else sm.ShareKeys
        msg = kind.from_bytes(honest, round_id=R, max_entries=n)
        sigs = msg.signatures or (b"",) * len(msg.envelopes)
        entries = [(v, env, sig) for (v, env), sig in zip(msg.envelopes, sigs, strict=True)]
        i = which % len(entries)
        if forgery == "missing-envelope":
            entries.pop(i)
        elif forgery == "unsigned-envelope":  # another identity's signature on it
            v, env, _ = entries[i]
            to = sessions[c]._peers[v].c_pk.to_bytes()
            entries[i] = (v, env, ids[c % n + 1].sign(sa._envelope_message(R, c, v, to, env)))
        else:  # one envelope addressed to the sender itself, signed so by the sender
            env, own = entries[i][1], sessions[c]._c_sk.public_key().to_bytes()
            sig = ids[c].sign(sa._envelope_message(R, c, c, own, env)) if active else b""
            entries[i] = (c, env, sig)
            entries.sort()
        envelopes = tuple((v, env) for v, env, _ in entries)
        signatures = tuple(sig for _, _, sig in entries) if active else ()
        return c, kind(R, envelopes, signatures).to_bytes()

    def check(c: int, honest: bytes) -> tuple[int, bytes]:
        """CHECK (secagg-v3) with a complaint about an envelope that opens: with the
        genuine proof, with a genuine proof of another channel, or signed by another
        (for odd ``which`` with no complaint at all: only the signature can refuse it);
        or about a client whose envelope the complainant was never sent."""
        session = sessions[c]
        peers = sorted(session._peers)
        about = peers[which % len(peers)]
        proven = peers[(which + 1) % len(peers)] if forgery == "forged-complaint" else about
        revealed, proof = dleq.prove_exchange(
            session._c_sk,
            session._peers[proven].c_pk,
            context=sa._complaint_context(R, c, proven),
        )
        if forgery == "complaint-outsider":  # not a neighbour: no envelope to judge
            about = n + 1
        complaints: tuple[sm.Complaint, ...] = (sm.Complaint(about, revealed, proof),)
        if forgery == "unsigned-complaint" and which % 2:
            complaints = ()
        forged = sm.Check(R, complaints, b"")
        signer = ids[c % n + 1] if forgery == "unsigned-complaint" else ids[c]
        sig = signer.sign(sa._check_message(R, c, forged.body()))
        return c, replace(forged, signature=sig).to_bytes()

    def masked(c: int, honest: bytes) -> tuple[int, bytes]:
        msg = sm.MaskedInput.from_bytes(honest, bits=spec.bits, dim=spec.dim)
        return c, sm.MaskedInput(_other_round(which), msg.vector, spec.bits).to_bytes()

    def consistency(c: int, honest: bytes) -> tuple[int, bytes]:
        # c's genuine signature, but on a list without one other survivor
        others = sorted(set(range(1, n + 1)) - {c})
        listed = sorted(set(range(1, n + 1)) - {others[which % len(others)]})
        sig = ids[c].sign(sa._survivors_message(R, listed))
        return c, sm.SurvivorConsistency(R, sig).to_bytes()

    def unmask(c: int, honest: bytes) -> tuple[int, bytes] | None:
        msg = sm.Unmask.from_bytes(honest, round_id=R, max_entries=n)
        entries = list(msg.entries)
        i = which % len(entries)

        if forgery == "share-revealed-twice":
            if len(entries) < 2:
                return None
            j = (i + 1) % len(entries)
            entries[j] = entries[i]
        elif forgery == "wrong-share-kind":
            entries[i] = replace(entries[i], kind=1 - entries[i].kind)
        elif forgery == "share-not-held":
            entries[i] = replace(entries[i], owner=c)
        elif forgery == "share-out-of-field":  # its first element = p (not a field element)
            entries[i] = replace(
                entries[i], share=struct.pack("<I", shamir.PRIME) + entries[i].share[4:]
            )
        else:  # missing-share
            entries.pop(i)
        return c, replace(msg, entries=tuple(entries)).to_bytes()

    common = _common(forgery, n)
    if common is not None:
        return None, common
    if forgery == "masked-twice":  # the genuine masked input again: added twice, a wrong sum
        return sa.MSG_MASKED_INPUT, _Forge("a second masked input", after=True)
    makers = {
        sa.MSG_ADVERTISE: advertise,
        sa.MSG_SHARE_KEYS: share_keys,
        sa.MSG_CHECK: check,
        sa.MSG_MASKED_INPUT: masked,
        sa.MSG_CONSISTENCY: consistency,
        sa.MSG_UNMASK: unmask,
    }
    assert phase is not None
    make = makers[phase]
    if phase == sa.MSG_SHARE_KEYS and active:  # secagg-v3: active envelopes are signed
        phase = sa.MSG_SIGNED_SHARE_KEYS
    return phase, _Forge(forgery.replace("-", " "), make, others=others)


def _secagg_spec(seed: bytes, n: int, active: bool) -> rounds.SecAggSpec:
    holders = n - 1
    t = (2 * holders) // 3 + 1 if active else holders // 2 + 1
    return rounds.SecAggSpec(
        n=n,
        threshold=t,
        degree=None,
        bits=16,
        dim=4,
        active=active,
        adversarial=True,
        coalition=(),
        seed=seed,
    )


def check_client_forgery(
    protocol: str,
    forgery: str,
    *,
    seed: bytes,
    which: int = 0,
    n: int = 4,
    active: bool = False,
) -> str:
    """Run one honest round in which client ``which % n + 1`` also sends ``forgery``.

    Raises AssertionError when the server accepts it, changes phase while refusing it, or the
    round then fails to end with the exact sum; returns what happened (flaws that need the
    active mode are run in it).
    """
    if forgery == "corrupted-envelope":
        n = max(n, 5)  # active: after excluding one, t + 1 must remain
    if forgery == "corrupted-share" and which % 2:  # a wrong b share is caught only by a
        n = max(n, 5)  # share beyond the t needed: with exactly t it is undetectable
    if forgery == "dealt-bad-share":  # room to correct one wrong share: have >= t + 2
        n = max(n, 10 if active else 6)
    sender = which % n + 1
    if protocol == ProtocolName.SECAGG:
        spec = _secagg_spec(seed, n, active or forgery in _ACTIVE_ONLY)
        inputs = rounds.random_inputs(
            rounds.derive(seed, "inputs"), spec.clients, bits=spec.bits, dim=spec.dim
        )
        case = _Case(rounds.secagg_protocol(spec.config, rounds.derive(seed, "protocol")), inputs)
        if forgery == "corrupted-share":
            return case.run_corrupted_share(n, spec.threshold, which)
        if forgery == "corrupted-envelope":
            return case.run_corrupted_envelope(which, active=spec.active)
        if forgery == "dealt-bad-share":
            return case.run_dealt_bad_share(which, active=spec.active)
        phase, forge = _secagg_forge(forgery, spec, which, case.clients)
        return case.run(phase, sender, forge)
    if protocol == ProtocolName.PAILLIER:
        pspec = rounds.PaillierSpec(n=n, bits=16, value_bits=12, min_clients=2, dim=3, seed=seed)
        config = pspec.config
        proto = pl.PaillierProtocol(
            config,
            key_holder=rounds.paillier_holder(config),
            rng=rounds.derive(seed, "protocol"),
        )
        inputs = rounds.paillier_inputs(pspec, rounds.derive(seed, "inputs"))
        case = _Case(proto, inputs)

        def other_round(c: int, h: bytes) -> tuple[int, bytes]:
            size = len(wire.unframe(h)[1]) - 8  # the body after the round id
            ciphertexts = pm.Input.from_bytes(h, size=size).ciphertexts
            return c, pm.Input(_other_round(which), ciphertexts).to_bytes()

        if forgery.startswith("answer-"):
            return case.run_answer(forgery, which)
        if forgery.endswith("-sum"):
            return case.run_sum(forgery)

        def bad_ciphertext(c: int, h: bytes) -> tuple[int, bytes]:
            size = len(wire.unframe(h)[1]) - 8
            raw = pm.Input.from_bytes(h, size=size).ciphertexts
            nn = int(config.public_key.n)
            value = {"zero-ciphertext": 0, "ciphertext-out-of-range": nn * nn + 1}.get(forgery, nn)
            width = hp.ciphertext_bytes(config.public_key)
            first = value.to_bytes(width, "big") if value < 1 << (8 * width) else b"\xff" * width
            return c, pm.Input(R, first + raw[width:]).to_bytes()

        if "ciphertext" in forgery:
            return case.run(pl.MSG_INPUT, sender, _Forge(forgery.replace("-", " "), bad_ciphertext))
        forge = _common(forgery, n) or _Forge("an input of another round", other_round)
        return case.run(pl.MSG_INPUT, sender, forge)
    inputs = rounds.random_inputs(rounds.derive(seed, "inputs"), range(1, n + 1), bits=16, dim=4)
    case = _Case(rounds.plain_protocol(16), inputs)

    def plain_other_round(c: int, h: bytes) -> tuple[int, bytes]:
        vector = ptm.Input.from_bytes(h, bits=16, dim=4).vector
        return c, ptm.Input(_other_round(which), vector, 16).to_bytes()

    forge = _common(forgery, n) or _Forge("an input of another round", plain_other_round)
    return case.run(None, sender, forge)


def check_request_forgery(protocol: str, flaw: str, *, seed: bytes, delta: int) -> str:
    """A client receives its round's request with ``flaw`` (that field moved by ``delta``,
    never 0): it must refuse it with a SecflError and then be closed (refuse the genuine
    request too). The SecAgg request is also sent with a round id of another round."""
    d = delta if delta else 1
    n, dim = 4, 4
    if protocol == ProtocolName.SECAGG:
        spec = _secagg_spec(seed, n, False)
        inputs = rounds.random_inputs(rounds.derive(seed, "inputs"), spec.clients, bits=16, dim=dim)
        proto: AggregationProtocol = rounds.secagg_protocol(
            spec.config, rounds.derive(seed, "protocol")
        )
    elif protocol == ProtocolName.PAILLIER:
        pspec = rounds.PaillierSpec(n=n, bits=16, value_bits=12, min_clients=2, dim=dim, seed=seed)
        proto = pl.PaillierProtocol(pspec.config, rng=rounds.derive(seed, "protocol"))
        inputs = rounds.paillier_inputs(pspec, rounds.derive(seed, "inputs"))
    else:
        proto = rounds.plain_protocol(16)
        inputs = rounds.random_inputs(
            rounds.derive(seed, "inputs"), range(1, n + 1), bits=16, dim=dim
        )
    server = proto.server(round_id=R, client_ids=frozenset(inputs), dim=dim)
    genuine = server.start()[1]
    client = proto.client(round_id=R, client_id=1, value=inputs[1])
    if flaw == "signatures-unregistered":
        return _signatures_forgery(seed)
    if flaw in ("envelope-signature", "mask-outsider", "mask-complained", "signed-shares-outsider"):
        return _check_phase_forgery(seed, flaw)
    if flaw.startswith(("keys-", "shares-")):  # a KEYS or SHARES request: honest until then
        assert protocol == ProtocolName.SECAGG
        return _keys_forgery(proto, server, client, inputs, genuine, flaw, seed)
    forged = _flawed_request(protocol, genuine, flaw, d)
    try:
        client.handle(forged)
    except SecflError:
        pass
    else:
        raise AssertionError(f"client 1 answered a {protocol} request with another {flaw}")
    try:
        client.handle(genuine)
    except SecflError:
        return f"refused a request with another {flaw}"
    raise AssertionError(f"client 1 refused a request with another {flaw}, then answered again")


def _flawed_request(protocol: str, genuine: bytes, flaw: str, d: int) -> bytes:
    if flaw == "type":  # the same body under the next (or previous) message type
        return genuine[:3] + bytes([(genuine[3] + (1 if d > 0 else -1)) % 256]) + genuine[4:]
    if protocol == ProtocolName.SECAGG:
        req = sm.AdvertiseRequest.from_bytes(genuine, round_id=R)
        field = {"mode": "mode", "dim": "dim", "bits": "bits"}.get(flaw, flaw)
        value = getattr(req, field) + d
        if field == "mode":
            value = 1 - req.mode
        return replace(req, **{field: _moved(getattr(req, field), value)}).to_bytes()
    if protocol == ProtocolName.PAILLIER:
        preq = pm.Request.from_bytes(genuine)
        if flaw == "fingerprint":
            fp = bytearray(preq.fingerprint)
            fp[abs(d) % len(fp)] ^= 1
            return replace(preq, fingerprint=bytes(fp)).to_bytes()
        field = "round_id" if flaw == "round" else flaw
        changes: dict[str, Any] = {field: _moved(getattr(preq, field), getattr(preq, field) + d)}
        return replace(preq, **changes).to_bytes()
    qreq = ptm.Request.from_bytes(genuine)
    field = "round_id" if flaw == "round" else flaw
    return replace(
        qreq, **{field: _moved(getattr(qreq, field), getattr(qreq, field) + d)}
    ).to_bytes()


def _moved(old: int, new: int) -> int:
    """``new``, kept >= 0 and != ``old`` (a field moved below zero goes above instead)."""
    return new if new >= 0 and new != old else old + 1


def _signatures_forgery(seed: bytes) -> str:
    """Active mode: client 1's unmask request (the survivors' signatures on the list) with
    its last entry relabelled as an id outside the registry: it must refuse (a SecflError,
    nothing else)."""
    n = 4
    spec = _secagg_spec(seed, n, True)
    inputs = rounds.random_inputs(rounds.derive(seed, "inputs"), spec.clients, bits=16, dim=4)
    proto = rounds.secagg_protocol(spec.config, rounds.derive(seed, "protocol"))
    server = proto.server(round_id=R, client_ids=frozenset(inputs), dim=4)
    clients = {c: proto.client(round_id=R, client_id=c, value=v) for c, v in inputs.items()}
    requests = server.start()
    for _ in range(proto.phases.index(sa.UNMASK)):  # every phase before unmask: honest
        for c, request in sorted(requests.items()):
            server.receive(c, clients[c].handle(request) or b"")
        requests = server.advance()
    sigs = sm.Signatures.from_bytes(requests[1], round_id=R, max_entries=n)
    entries = (*sigs.entries[:-1], (n + 1, sigs.entries[-1][1]))
    try:
        clients[1].handle(replace(sigs, entries=entries).to_bytes())
    except SecflError:
        return "refused an unmask request with a signature from an unregistered id"
    raise AssertionError("client 1 answered an unmask request signed by an unregistered id")


def _check_phase_forgery(seed: bytes, flaw: str) -> str:
    """Active mode (secagg-v3), client 1: SIGNED_SHARES with one envelope's signature made
    by another identity (changed on the way: abort), or a MASK_REQUEST naming a client
    that is not its neighbour, or the neighbour whose envelope it complained of (client 2
    sent it one that does not open): it must refuse (a SecflError, nothing else)."""
    n = 5
    spec = _secagg_spec(seed, n, True)
    ids = rounds.identities(n)
    inputs = rounds.random_inputs(rounds.derive(seed, "inputs"), spec.clients, bits=16, dim=4)
    proto = rounds.secagg_protocol(spec.config, rounds.derive(seed, "protocol"))
    server = proto.server(round_id=R, client_ids=frozenset(inputs), dim=4)
    clients = {c: proto.client(round_id=R, client_id=c, value=v) for c, v in inputs.items()}
    requests = server.start()
    for _ in range(2):  # advertise, share keys (client 2 cheats on its envelope to 1)
        for c, request in sorted(requests.items()):
            reply = clients[c].handle(request) or b""
            if c == 2 and flaw == "mask-complained":
                reply = corrupt_envelopes(reply, clients[2], {1}, ids[2])
            server.receive(c, reply)
        requests = server.advance()
    if flaw == "signed-shares-outsider":  # the last envelope relabelled as from n + 1
        relayed = sm.SignedShares.from_bytes(requests[1], round_id=R, max_entries=n)
        envelopes = (*relayed.envelopes[:-1], (n + 1, relayed.envelopes[-1][1]))
        forged = replace(relayed, envelopes=envelopes).to_bytes()
    elif flaw == "envelope-signature":
        relayed = sm.SignedShares.from_bytes(requests[1], round_id=R, max_entries=n)
        u, env = relayed.envelopes[0]
        assert isinstance(clients[1], sa.SecAggClient)
        own = clients[1]._c_sk.public_key().to_bytes()
        other = ids[u % n + 1].sign(sa._envelope_message(R, u, 1, own, env))
        forged = replace(relayed, signatures=(other, *relayed.signatures[1:])).to_bytes()
    else:
        clients[1].handle(requests[1])  # CHECK (mask-complained: complains about 2)
        names = tuple(range(2, n + 1)) + ((n + 1,) if flaw == "mask-outsider" else ())
        forged = sm.MaskRequest(R, names).to_bytes()
    try:
        clients[1].handle(forged)
    except SecflError:
        return f"refused a request with {flaw.replace('-', ' ')}"
    raise AssertionError(f"client 1 answered a request with {flaw.replace('-', ' ')}")


def _out_of_field_envelope(sender: sa.SecAggClient, u: int, v: int, seed: bytes) -> bytes:
    """What client ``u`` (session ``sender``) would seal for ``v``, with one share element
    equal to the field prime: AEAD-valid, so only the recipient's share check can refuse it."""
    elements = np.zeros(2 * shamir.CHUNKS, dtype="<u4")
    elements[0] = shamir.PRIME
    plain = struct.pack(">II", u, v) + elements.tobytes()
    ad = sa._pair_info(b"share", R, u, v) + struct.pack(">I", u)
    channel = sender._peers[v].channel
    return aead.seal(channel, plain, associated_data=ad, rng=rounds.derive(seed, "seal"))


def _keys_forgery(
    proto: AggregationProtocol,
    server: ServerSession,
    client: ClientSession,
    inputs: dict[int, np.ndarray],
    request: bytes,
    flaw: str,
    seed: bytes,
) -> str:
    """Client 1 gets a KEYS request with one entry missing, one entry repeated in place of
    another, one entry more than m - 1 (a fresh client ranked last, its point consistent),
    that entry with m raised to n_clients + 1 to match,
    two neighbours' evaluation points swapped, or (active mode) an extra member outside the
    registry; or, after the genuine KEYS, a SHARES request with one envelope relabelled as
    from a client that is not its neighbour: it must refuse (a SecflError, nothing else)."""
    active = flaw == "keys-outsider"
    if active:  # the same round in the active mode
        spec = _secagg_spec(seed, len(inputs), True)
        proto = rounds.secagg_protocol(spec.config, rounds.derive(seed, "protocol"))
        server = proto.server(round_id=R, client_ids=frozenset(inputs), dim=4)
        request = server.start()[1]
        client = proto.client(round_id=R, client_id=1, value=inputs[1])
    others = {
        c: proto.client(round_id=R, client_id=c, value=v) for c, v in inputs.items() if c != 1
    }
    server.receive(1, client.handle(request) or b"")
    for c, session in others.items():
        server.receive(c, session.handle(request) or b"")
    keys_requests = server.advance()
    genuine = keys_requests[1]
    n = len(inputs)
    if flaw.startswith("shares-"):
        server.receive(1, client.handle(genuine) or b"")
        for c, session in others.items():
            server.receive(c, session.handle(keys_requests[c]) or b"")
        shares = sm.Shares.from_bytes(server.advance()[1], round_id=R, max_entries=n)
        if flaw == "shares-unknown-sender":
            # the last envelope relabelled: the same count, one sender not a neighbour
            envelopes = (*shares.envelopes[:-1], (n + 1, shares.envelopes[-1][1]))
        else:  # neighbour 2 seals (with its real channel key) a share element = p
            assert isinstance(others[2], sa.SecAggClient)
            envelopes = tuple(
                (u, _out_of_field_envelope(others[2], u, 1, seed) if u == 2 else env)
                for u, env in shares.envelopes
            )
        forged = replace(shares, envelopes=envelopes).to_bytes()
        try:
            client.handle(forged)
        except SecflError:
            return f"refused a SHARES request ({flaw})"
        raise AssertionError(f"client 1 answered a SHARES request with a flaw: {flaw}")
    keys = sm.Keys.from_bytes(genuine, round_id=R, max_clients=n, signed=active)
    entries = list(keys.entries)
    members = keys.members
    if flaw == "keys-missing-entry":
        entries.pop()
    elif flaw == "keys-repeated-entry":  # the first neighbour again, with a fresh key pair
        rogue = rounds.derive(seed, "repeated")
        c_pk = KexPrivateKey.generate(rng=rogue).public_key().to_bytes()
        s_pk = KexPrivateKey.generate(rng=rogue).public_key().to_bytes()
        entries[-1] = replace(entries[0], c_pk=c_pk, s_pk=s_pk)
    elif flaw == "keys-wrong-point":  # the first two neighbours' points swapped
        entries[0], entries[1] = (
            replace(entries[0], x=entries[1].x),
            replace(entries[1], x=entries[0].x),
        )
    elif flaw in ("keys-extra-entry", "keys-more-members"):
        # a fresh client ranked last; "more-members" also raises m to n_clients + 1
        rogue = rounds.derive(seed, "extra")
        c_pk = KexPrivateKey.generate(rng=rogue).public_key().to_bytes()
        s_pk = KexPrivateKey.generate(rng=rogue).public_key().to_bytes()
        entries.append(sm.KeyEntry(n + 1, members + 1, c_pk, s_pk, b""))
        if flaw == "keys-more-members":
            members += 1
    else:  # the last neighbour replaced by a client outside the registry (same point)
        outsider = n + 1
        rogue = rounds.derive(seed, "outsider")
        c_pk = KexPrivateKey.generate(rng=rogue).public_key().to_bytes()
        s_pk = KexPrivateKey.generate(rng=rogue).public_key().to_bytes()
        entries[-1] = sm.KeyEntry(outsider, entries[-1].x, c_pk, s_pk, bytes(64))
    forged = replace(keys, members=members, entries=tuple(entries)).to_bytes()
    try:
        client.handle(forged)
    except SecflError:
        return f"refused a KEYS request ({flaw})"
    raise AssertionError(f"client 1 answered a KEYS request with a flaw: {flaw}")
