"""paillier-sum-v2 (threshold Paillier) against a lying aggregator and lying key holders.

The checks behind ``secfl audit --protocol paillier-threshold`` (``docs/audit.md``). The
first two test the guarantee of ``protocols/paillier-sum-v2.md`` section 10.1: an
aggregator colluding with fewer than t key holders obtains decryptions only of products of
at least ``min_clients`` distinct registered clients' signed inputs of the round.

* :func:`check_aggregator_plan`: the aggregator *composes* its requests rather than
  replaying a known attack. A plan starts from any subset of the honest clients' signed
  inputs (of the round, or of the round before) and applies up to three of: replay an input
  of the round before, relabel an input under another client's id, raise it to a power,
  multiply two inputs, multiply by a fresh encryption of zero, list an input twice, strip a
  signature, add an unregistered client, and have a colluding client sign an input of the
  aggregator's choosing or a (re-randomised) copy of an honest one. Each of the five key
  holders receives one or two of the plan's requests. It must answer only requests of the
  guarantee's kind (a colluding client's signature counts: limit 2 of section 10.2), at
  most one per round, and must answer its first request of a round that is of that kind
  with pairwise distinct inputs (section 8.3); any set that gathers t answers must decrypt
  to the sum of its inputs' plaintexts; at most one set per round may gather them (3-of-5,
  no colluding holder: section 10.2, limit 1).
* :func:`check_lying_holders`: key holders lie (:data:`LIES`: a changed partial value, a
  broken proof, another holder's answer, an answer for another set, a genuine answer
  labelled with another set or round, garbage, two answers, a value that is not a unit of
  Z_{n^2}, a wrong index, a cut answer); the real aggregator must name exactly the liars
  and decrypt the exact sum, or, with more than m - t liars, end the round with
  InsufficientSurvivors.

* :func:`check_client_forgery`, :func:`check_request_forgery`: the aggregator's and the
  clients' own checks of what they receive; :func:`check_out_of_range_input`: a signed
  input that only decryption can find out of range ends the round cleanly;
  :func:`check_full_round`: the largest request and the shortest vector decrypt;
  :func:`check_config_bound`: the configuration's stated bounds;
  :func:`check_fresh_randomness`: no ciphertext repeats; :func:`check_key_generation`: key
  generation draws from the generator it is given.

Setup (a 3-of-5 key of two 512-bit safe primes, six identities, the clients' signed inputs)
is made once per process from fixed seeds, so runs are reproducible.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from secfl.audit._errors import AuditFailure, Violation
from secfl.errors import InsufficientSurvivors, IntegrityError, InvalidArgument, SecflError
from secfl.hazmat import paillier as hp
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import paillier_threshold as pt
from secfl.protocols import paillier_threshold_messages as m
from secfl.protocols.base import ServerSession

__all__ = [
    "BOUNDS",
    "FLAWS",
    "FORGERIES",
    "LIES",
    "OPS",
    "SHAPES",
    "Plan",
    "check_aggregator_plan",
    "check_client_forgery",
    "check_config_bound",
    "check_fresh_randomness",
    "check_full_round",
    "check_key_generation",
    "check_lying_holders",
    "check_out_of_range_input",
    "check_request_forgery",
]

HONEST = (1, 2, 3, 4, 5)
COLLUDER = 6
"""A client that signs whatever the aggregator asks it to (section 10.2, limit 2)."""
OUTSIDER = 77
"""An id outside the registry."""
DIM, BITS, VALUE_BITS, MIN_CLIENTS = 3, 16, 12, 3
ROUND, OLD_ROUND = 7, 6
HOLDERS, T = 5, 3

OPS = (
    "replay",  # the input of the round before, under its own id
    "relabel",  # an input under another client's id
    "power",  # an input raised to the power k (its plaintext times k)
    "combine",  # the product of two inputs, under the first one's id
    "rerandomize",  # an input times a fresh encryption of the zero vector
    "twice",  # an input listed a second time (the request is re-sorted, not deduplicated)
    "unsigned",  # an input with a zero signature
    "outsider",  # an input under an id outside the registry
    "colluder-own",  # the colluder signs an encryption of a value of the aggregator's choice
    "colluder-copy",  # the colluder signs an honest client's ciphertexts as its own
    "colluder-rerandomized",  # ... after re-randomising them
)

Entry = tuple[int, bytes, bytes]  # (client id, ciphertexts, signature)


def _seeded(label: str) -> Csprng:
    return Csprng(seed=label.encode().ljust(32, b"\0")[:32])


@dataclass(frozen=True)
class _World:
    """What the audit holds: the key, its shares, the config, the clients' inputs."""

    public: tp.ThresholdPublicKey
    shares: tuple[tp.KeyShare, ...]
    config: pt.ThresholdPaillierConfig
    identities: dict[int, SigningKey]
    values: dict[int, dict[int, np.ndarray]]  # round -> honest client -> signed plaintexts
    signed: dict[int, dict[int, Entry]]  # round -> honest client -> its signed input


@functools.lru_cache(maxsize=1)
def _world() -> _World:
    rng = _seeded("audit paillier-sum-v2 key")
    p, q = tp.generate_safe_prime(512, rng=rng), tp.generate_safe_prime(512, rng=rng)
    public, shares = tp.deal_key(p, q, holders=HOLDERS, threshold=T, rng=rng)
    ids = _seeded("audit paillier-sum-v2 identities")
    identities = {c: SigningKey.generate(rng=ids) for c in (*HONEST, COLLUDER)}
    config = pt.ThresholdPaillierConfig(
        public_key=public,
        registry={c: k.verify_key() for c, k in identities.items()},
        bits=BITS,
        n_clients=len(identities),
        value_bits=VALUE_BITS,
        min_clients=MIN_CLIENTS,
    )
    proto = pt.ThresholdPaillierProtocol(
        config, identities=identities, rng=_seeded("audit paillier-sum-v2 clients")
    )
    draw = _seeded("audit paillier-sum-v2 inputs")
    values: dict[int, dict[int, np.ndarray]] = {}
    signed: dict[int, dict[int, Entry]] = {}
    for rid in (OLD_ROUND, ROUND):
        server = proto.server(round_id=rid, client_ids=frozenset(HONEST), dim=DIM)
        requests = server.start()
        values[rid], signed[rid] = {}, {}
        for c in HONEST:
            x = draw.integers_below(1 << VALUE_BITS, DIM).astype(np.int64) - (1 << 11)
            values[rid][c] = x
            reply = proto.client(round_id=rid, client_id=c, value=_ring(x)).handle(requests[c])
            assert reply is not None
            msg = m.SignedInput.from_bytes(reply, size=config.input_bytes(DIM))
            signed[rid][c] = (c, msg.ciphertexts, msg.signature)
    return _World(public, shares, config, identities, values, signed)


# ------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class Plan:
    """One request of a lying aggregator: for round ``round_id``, the signed inputs of the
    honest clients in ``base``, then ``ops``: (op, i, j, k) with i an honest client, j a
    client id and k an exponent or a value, as :data:`OPS` describes."""

    round_id: int
    base: tuple[int, ...]
    ops: tuple[tuple[str, int, int, int], ...]


def _ring(x: np.ndarray) -> np.ndarray:
    """Signed values as elements of Z_2^BITS (two's complement)."""
    return (x.astype(np.int64) % (1 << BITS)).astype(np.uint16)


def _vector(w: _World, cts: bytes) -> hp.CiphertextVector:
    pk = w.public.to_phe()
    return hp.ciphertexts_from_bytes(cts, pk, w.config.layout, count=DIM, n_summed=1)


def _encrypt(w: _World, x: np.ndarray, rng: Csprng) -> bytes:
    pk = w.public.to_phe()
    return hp.ciphertexts_to_bytes(hp.encrypt_vector(pk, x, w.config.layout, randomness=rng))


def _rerandomized(w: _World, cts: bytes, rng: Csprng) -> bytes:
    zero = _encrypt(w, np.zeros(DIM, np.int64), rng)
    return hp.ciphertexts_to_bytes(hp.add(_vector(w, cts), _vector(w, zero)))


def _colluder_signs(w: _World, round_id: int, cts: bytes) -> Entry:
    sig = w.identities[COLLUDER].sign(w.config.signed_message(round_id, COLLUDER, DIM, cts))
    return (COLLUDER, cts, sig)


Plain = dict[bytes, tuple[np.ndarray, int]]
"""Ciphertext string -> its values and how many packed vectors it sums (each adds the
layout's offset to every slot: an "encryption of zero" is one more summand)."""


def build_request(w: _World, plan: Plan) -> tuple[list[Entry], Plain]:
    """The plan's inputs (in increasing id; an id listed twice stays, for the holder to
    refuse) and what every ciphertext string in them holds, which the audit knows: it
    made or derived each one."""
    rid = plan.round_id
    plain: Plain = {
        w.signed[r][c][1]: (w.values[r][c], 1) for r in (OLD_ROUND, ROUND) for c in HONEST
    }
    entries: list[Entry] = [w.signed[rid][c] for c in plan.base]
    rng = _seeded(f"audit plan {plan}")

    def pick(c: int) -> Entry:
        """The first entry of honest client c, or its genuine input if it has none yet."""
        return next((e for e in entries if e[0] == c), w.signed[rid][c])

    def made(cts: bytes, x: np.ndarray, summands: int) -> bytes:
        plain[cts] = (x, summands)
        return cts

    for op, i, j, k in plan.ops:
        cid, cts, sig = pick(i)
        x, s = plain[cts]
        if op == "replay":
            entries.append(w.signed[OLD_ROUND if rid == ROUND else ROUND][i])
        elif op == "relabel":
            entries.append((j, cts, sig))
        elif op == "power":
            v = _vector(w, cts)
            out = v
            for _ in range(k - 1):
                out = hp.add(out, v)
            entries.append((cid, made(hp.ciphertexts_to_bytes(out), k * x, k * s), sig))
        elif op == "combine":
            other = pick(j if j in HONEST else i)[1]
            both = hp.ciphertexts_to_bytes(hp.add(_vector(w, cts), _vector(w, other)))
            y, r = plain[other]
            entries.append((cid, made(both, x + y, s + r), sig))
        elif op == "rerandomize":
            entries.append((cid, made(_rerandomized(w, cts, rng), x, s + 1), sig))
        elif op == "twice":
            entries.append((cid, cts, sig))
        elif op == "unsigned":
            entries.append((cid, cts, bytes(len(sig))))
        elif op == "outsider":
            entries.append((OUTSIDER, cts, sig))
        elif op == "colluder-own":
            mine = np.full(DIM, k - 3, dtype=np.int64)
            entries.append(_colluder_signs(w, rid, made(_encrypt(w, mine, rng), mine, 1)))
        elif op == "colluder-copy":
            entries.append(_colluder_signs(w, rid, cts))
        elif op == "colluder-rerandomized":
            entries.append(_colluder_signs(w, rid, made(_rerandomized(w, cts, rng), x, s + 1)))
        else:  # pragma: no cover - OPS lists every op
            raise ValueError(op)
    return sorted(entries, key=lambda e: e[0]), plain


# ------------------------------------------------------------------- aggregator search
def _illegitimate(w: _World, rid: int, entries: Sequence[Entry]) -> str | None:
    """Why a request is *not* one the guarantee lets a holder answer, or None."""
    ids = [e[0] for e in entries]
    if len(set(ids)) != len(ids):
        return f"client ids {ids} repeat"
    if len(ids) < MIN_CLIENTS:
        return f"{len(ids)} inputs, fewer than min_clients = {MIN_CLIENTS}"
    for cid, cts, sig in entries:
        if cid in HONEST:
            if (cid, cts, sig) != w.signed[rid][cid]:
                return f"client {cid}'s entry is not its signed input of round {rid}"
        elif cid == COLLUDER:
            message = w.config.signed_message(rid, COLLUDER, DIM, cts)
            try:
                w.config.registry[COLLUDER].verify(sig, message)
            except SecflError:
                return f"the colluder never signed its entry for round {rid}"
        else:
            return f"client {cid} is not registered"
    return None


def check_aggregator_plan(plans: Sequence[Plan], deliveries: Sequence[tuple[int, int]]) -> None:
    """Deliver ``plans[p]``'s request to key holder h for each (h, p) in ``deliveries``,
    in order, with fresh holders, and judge every answer against section 10.1. Raises
    :class:`AuditFailure`."""
    w = _world()
    rng = _seeded(f"audit holders {plans} {deliveries}")
    holders = {
        s.index: pt.ThresholdPaillierKeyHolder(w.config, s, rng=rng.spawn()) for s in w.shares
    }
    built = [build_request(w, p) for p in plans]
    answers: dict[tuple[int, bytes], dict[int, tp.PartialDecryption]] = {}
    sets: dict[tuple[int, bytes], tuple[list[Entry], Plain]] = {}
    answered: dict[int, set[int]] = {h: set() for h in holders}  # holder -> round ids
    violations: list[Violation] = []
    for h, p in deliveries:
        plan, (entries, plain) = plans[p], built[p]
        frame = m.DecryptRequest(plan.round_id, DIM, tuple(entries)).to_bytes()
        why = _illegitimate(w, plan.round_id, entries)
        try:
            reply = holders[h].handle(frame)
        except SecflError as e:
            # A refusal is allowed, but of a request the guarantee lets a holder answer
            # only when the holder already answered this round or two inputs are equal
            # (an unre-randomised copy signed by the colluder: section 8.3, refusal 4).
            digests = {m.input_digest(cts) for _, cts, _ in entries}
            first = plan.round_id not in answered[h]
            if why is None and first and len(digests) == len(entries):
                violations.append(
                    Violation(
                        "answers-signed-sets",
                        f"key holder {h} refused the signed inputs of clients "
                        f"{[e[0] for e in entries]} for round {plan.round_id}: {e}",
                    )
                )
            continue
        if why is not None:
            violations.append(
                Violation("decrypt-only-signed-sets", f"key holder {h} answered a request: {why}")
            )
            continue
        if plan.round_id in answered[h]:
            violations.append(
                Violation(
                    "one-answer-per-round", f"key holder {h} answered round {plan.round_id} twice"
                )
            )
        answered[h].add(plan.round_id)
        msg = m.Partial.from_bytes(reply, size=w.config.partial_bytes(DIM))
        part = tp.PartialDecryption.from_bytes(msg.body, w.public, count=_count(w))
        answers.setdefault((plan.round_id, msg.set_digest), {})[h] = part
        sets[(plan.round_id, msg.set_digest)] = (entries, plain)
    decrypted: dict[int, int] = {}
    for (rid, digest), group in answers.items():
        if len(group) < T:
            continue
        decrypted[rid] = decrypted.get(rid, 0) + 1
        entries, plain = sets[(rid, digest)]
        summands = sum(plain[cts][1] for _, cts, _ in entries)
        got = _decrypt(w, entries, digest, list(group.values()), summands)
        want = sum((plain[cts][0] for _, cts, _ in entries), np.zeros(DIM, np.int64))
        if got is None or not np.array_equal(got, want):
            violations.append(
                Violation(
                    "decrypts-the-sum",
                    f"round {rid}: t answers for clients {[e[0] for e in entries]} do not "
                    "decrypt to the sum of their inputs",
                )
            )
    violations += [
        Violation("one-set-per-round", f"round {rid}: {count} different sets were decrypted")
        for rid, count in decrypted.items()
        if count > 1
    ]
    if violations:
        raise AuditFailure(violations)


def _count(w: _World) -> int:
    return w.config.layout.ciphertexts_for(DIM)


def _decrypt(
    w: _World,
    entries: Sequence[Entry],
    digest: bytes,
    partials: list[tp.PartialDecryption],
    summands: int,
) -> np.ndarray | None:
    """What the aggregator recovers from verified partials of the product of ``entries``."""
    product = hp.sum_vectors([_vector(w, cts) for _, cts, _ in entries])
    cts = [int(c) for c in product.ciphertexts]
    context = pt._context(digest)  # what the holders' proofs bind
    try:
        valid, _ = tp.screen_partials(w.public, cts, partials, context=context)
        out = tp.combine_verified(w.public, cts, list(valid))
        decoded: np.ndarray = hp.decode_plaintexts(
            out.plaintexts, w.config.layout, count=DIM, n_summed=summands
        )
    except SecflError:
        return None
    return decoded


# ---------------------------------------------------------------------- lying holders
LIES = (
    "value",  # one partial value squared: the proof fails
    "proof",  # the proof's response moved by one
    "copy",  # another holder's genuine answer
    "other-set",  # an answer for another input set
    "other-set-high",  # the genuine answer labelled with a set digest of all ones
    "round-earlier",  # the genuine answer in a frame naming the round before
    "round-later",  # ... naming the next round
    "garbage",  # zero bytes of the right length
    "twice",  # the same answer delivered two times
    "zero",  # a partial value 0: not a unit
    "not-unit",  # a partial value n: not a unit
    "too-large",  # a partial value n^2: outside (0, n^2)
    "index",  # the answer claims holder m + 1
    "short",  # the answer cut by one byte
)


class _Liar:
    """A key holder that answers dishonestly (``lie``, one of :data:`LIES`)."""

    def __init__(self, honest: pt.ThresholdPaillierKeyHolder, lie: str, w: _World) -> None:
        self.honest, self.lie, self.w = honest, lie, w

    def handle(self, data: bytes) -> bytes:
        w = self.w
        answer = self.honest.handle(data)
        relabelled = {"other-set": 0, "other-set-high": 0, "round-earlier": -1, "round-later": 1}
        if self.lie in ("twice", "garbage", "copy", *relabelled):
            msg = m.Partial.from_bytes(answer, size=w.config.partial_bytes(DIM))
            if self.lie == "garbage":
                return bytes(len(answer))
            if self.lie in relabelled:  # the proof is genuine; only the label lies
                label = {"other-set": b"\0", "other-set-high": b"\xff"}.get(self.lie)
                digest = msg.set_digest if label is None else label * len(msg.set_digest)
                rid = msg.round_id + relabelled[self.lie]
                return m.Partial(rid, digest, msg.body).to_bytes()
            if self.lie == "copy":  # another holder's genuine answer
                other = next(s for s in w.shares if s.index != self.honest.index)
                return pt.ThresholdPaillierKeyHolder(w.config, other, rng=_seeded("copy")).handle(
                    data
                )
            return answer  # "twice": the driver delivers it two times
        msg = m.Partial.from_bytes(answer, size=w.config.partial_bytes(DIM))
        part = tp.PartialDecryption.from_bytes(msg.body, w.public, count=_count(w))
        n = w.public.n
        first = {
            "value": part.values[0] * part.values[0] % (n * n),
            "zero": 0,
            "not-unit": n,
            "too-large": n * n,
        }.get(self.lie)
        if first is not None:
            part = replace(part, values=(first, *part.values[1:]))
        elif self.lie == "proof":
            part = replace(part, response=part.response + 1)
        body = part.to_bytes(w.public)
        if self.lie == "index":
            body = (w.public.holders + 1).to_bytes(4, "big") + body[4:]
        elif self.lie == "short":
            body = body[:-1]
        return m.Partial(msg.round_id, msg.set_digest, body).to_bytes()


def check_lying_holders(liars: dict[int, str], dropped: Sequence[int]) -> None:
    """A round of the honest clients (``dropped`` of them silent) in which the key holders
    in ``liars`` lie: the real aggregator must name exactly them and decrypt the exact sum
    of the others' inputs, or, with fewer than t honest holders, end the round with
    :class:`InsufficientSurvivors` (never a wrong sum). Raises :class:`AuditFailure`."""
    enough = HOLDERS - len(liars) >= T
    w = _world()
    rng = _seeded(f"audit liars {sorted(liars.items())} {list(dropped)}")
    real = {s.index: pt.ThresholdPaillierKeyHolder(w.config, s, rng=rng.spawn()) for s in w.shares}
    proto = pt.ThresholdPaillierProtocol(w.config, identities=w.identities, rng=rng.spawn())
    server = proto.server(round_id=ROUND, client_ids=frozenset(HONEST), dim=DIM)
    assert isinstance(server, pt.ThresholdPaillierServer)
    for c, request in server.start().items():
        if c not in dropped:
            client = proto.client(round_id=ROUND, client_id=c, value=_ring(w.values[ROUND][c]))
            reply = client.handle(request)
            assert reply is not None
            server.receive(c, reply)
    violations = []
    try:
        requests = server.advance()
        while requests:  # DECRYPT (and DECRYPT_MORE when too few valid answers came)
            for pid, request in requests.items():
                index = pt.KEY_HOLDER_PARTY_BASE - pid
                lie = liars.get(index)
                answer = (real[index] if lie is None else _Liar(real[index], lie, w)).handle(
                    request
                )
                for _ in range(2 if lie == "twice" else 1):
                    server.receive(pid, answer)
            requests = server.advance()
        want = sum(
            (w.values[ROUND][c] for c in HONEST if c not in dropped), np.zeros(DIM, np.int64)
        )
        if not enough or not np.array_equal(server.result.aggregate, _ring(want)):
            violations.append(Violation("liars-excluded", f"liars {liars}: an aggregate"))
    except SecflError as e:
        if enough or not isinstance(e, InsufficientSurvivors):
            violations.append(
                Violation(
                    "liars-excluded", f"liars {liars}: the round ended: {type(e).__name__}: {e}"
                )
            )
    named = set(server.rejected_holders)
    if named != set(liars):
        violations.append(
            Violation(
                "liars-named", f"holders {sorted(liars)} lied; the aggregator named {sorted(named)}"
            )
        )
    if violations:
        raise AuditFailure(violations)


# ------------------------------------------------------------------- forged messages
FLAWS = ("round", "dim", "bits", "value-bits", "n-clients", "min-clients", "key", "type", "again")
"""What :func:`check_request_forgery` changes in the aggregator's request to a client
("again": the genuine request a second time, after the client answered it)."""


FORGERIES = {
    # forgery: when it arrives -- "before" its subject's genuine input (a forgery under the
    # subject's name, refusable only on its own merits), "after" it (a repeat or a copy,
    # refusable only once the original is in) or "late" (once the inputs are closed)
    "uninvited": "before",  # a registered client that was not invited sends its input
    "twice": "after",  # the subject's input a second time
    "second-input": "after",  # another input, validly signed, from the same client
    "other-round": "before",  # the subject's signed input of the round before
    "mislabelled-round": "before",  # the genuine input in a frame naming another round
    "foreign-signature": "before",  # the subject's ciphertexts, another's signature
    "unsigned": "before",  # the subject's ciphertexts with a zero signature
    "copy": "after",  # the subject's ciphertexts, signed by another client as its own
    "out-of-range": "before",  # a signed ciphertext >= n^2: the sender is named, left out
    "cut": "before",  # the subject's input frame cut short
    "holder-unasked": "before",  # a key holder's answer while inputs are collected
    "late": "late",  # the subject's genuine input, after the inputs closed
}
"""What :func:`check_client_forgery` sends the aggregator, besides the honest inputs."""


_FIELDS = {  # flaw -> (Request attribute, its width in bits on the wire)
    "round": ("round_id", 64),
    "dim": ("dim", 32),
    "bits": ("bits", 8),
    "value-bits": ("value_bits", 8),
    "n-clients": ("n_clients", 32),
    "min-clients": ("min_clients", 32),
}


def _genuine_request(w: _World, round_id: int) -> bytes:
    """The request the real aggregator sends every client of round ``round_id``."""
    server = pt.ThresholdPaillierServer(
        w.config, round_id=round_id, client_ids=frozenset(HONEST), dim=DIM
    )
    return server.start()[HONEST[0]]


def check_request_forgery(flaw: str, delta: int) -> None:
    """A client gets the round's request with one field moved by ``delta`` (mod its wire
    width), the key fingerprint changed, or the frame's type byte moved: it must refuse
    it, and then the genuine request too (a failed session stays closed). Raises
    :class:`AuditFailure`."""
    w = _world()
    cfg = w.config
    genuine = _genuine_request(w, ROUND)
    req = m.Request.from_bytes(genuine)
    if flaw in _FIELDS:
        attr, bits = _FIELDS[flaw]
        width = 1 << bits
        moved = (getattr(req, attr) + 1 + (delta - 1) % (width - 1)) % width  # never unchanged
        req = replace(req, **{attr: moved})
    elif flaw == "key":
        fp = req.fingerprint
        req = replace(req, fingerprint=bytes([fp[0] ^ (delta % 255 + 1)]) + fp[1:])
    forged = req.to_bytes()
    if flaw == "type":  # the same body under another message type
        forged = forged[:3] + bytes([(forged[3] + delta % 255 + 1) % 256]) + forged[4:]
    proto = pt.ThresholdPaillierProtocol(
        cfg, identities=w.identities, rng=_seeded(f"audit request {flaw} {delta}")
    )
    client = proto.client(round_id=ROUND, client_id=1, value=_ring(w.values[ROUND][1]))
    violations = []
    if flaw == "again":
        client.handle(genuine)
        forged = genuine
    for data, rule, what in (
        (forged, "client-checks-request", "accepted a request with a changed"),
        (genuine, "closed-after-refusal", "answered the genuine request after refusing a changed"),
    ):
        try:
            client.handle(data)
        except SecflError:
            continue
        violations.append(Violation(rule, f"client 1 {what} {flaw} (by {delta})"))
    if violations:
        raise AuditFailure(violations)


def _forged(w: _World, forgery: str, which: int) -> tuple[int, bytes]:
    """(sender, message) of one forgery; ``which`` (an honest client) is its subject."""
    other = HONEST[which % len(HONEST)]  # another honest client
    _, cts, sig = w.signed[ROUND][which]
    size = w.config.input_bytes(DIM)

    def frame(cts: bytes, sig: bytes, rid: int = ROUND) -> bytes:
        return m.SignedInput(rid, cts, sig).to_bytes()

    if forgery == "uninvited":
        own = _encrypt(w, np.zeros(DIM, np.int64), _seeded("audit uninvited"))
        _, own, own_sig = _colluder_signs(w, ROUND, own)
        return COLLUDER, frame(own, own_sig)
    if forgery in ("twice", "late"):
        return which, frame(cts, sig)
    if forgery == "second-input":
        again = _encrypt(w, np.ones(DIM, np.int64), _seeded("audit second input"))
        key = w.identities[which]
        return which, frame(again, key.sign(w.config.signed_message(ROUND, which, DIM, again)))
    if forgery == "mislabelled-round":
        return which, frame(cts, sig, ROUND + 1)
    if forgery == "other-round":
        _, old, old_sig = w.signed[OLD_ROUND][which]
        return which, frame(old, old_sig, OLD_ROUND)
    if forgery == "foreign-signature":
        return which, frame(cts, w.signed[ROUND][other][2])
    if forgery == "unsigned":
        return which, frame(cts, bytes(len(sig)))
    if forgery == "copy":
        key = w.identities[other]
        return other, frame(cts, key.sign(w.config.signed_message(ROUND, other, DIM, cts)))
    if forgery == "out-of-range":  # every ciphertext 2^(8 bytes) - 1 >= n^2
        bad = b"\xff" * size
        key = w.identities[which]
        return which, frame(bad, key.sign(w.config.signed_message(ROUND, which, DIM, bad)))
    if forgery == "cut":
        return which, frame(cts, sig)[:-1]
    if forgery == "holder-unasked":
        return pt.key_holder_party(1 + which % HOLDERS), frame(cts, sig)
    raise ValueError(forgery)  # pragma: no cover - FORGERIES lists every forgery


def _honest_holders(
    proto: pt.ThresholdPaillierProtocol,
    server: ServerSession,
    requests: dict[int, bytes],
) -> None:
    """Deliver the aggregator's requests to its honest key holders until it is done."""
    parties = proto.parties()
    while requests:
        for pid, request in requests.items():
            answer = parties[pid].handle(request)
            assert answer is not None  # honest key holders always answer
            server.receive(pid, answer)
        requests = server.advance()


def check_client_forgery(forgery: str, which: int) -> None:
    """The aggregator gets every honest client's signed input and one forged message about
    client ``which``, delivered as :data:`FORGERIES` says: it must refuse the forgery,
    accept every genuine input (but a late one), and decrypt the exact sum of the inputs
    it accepted. Raises :class:`AuditFailure`."""
    w = _world()
    sender, message = _forged(w, forgery, which)
    when = FORGERIES[forgery]
    rng = _seeded(f"audit client forgery {forgery} {which}")
    holders = [pt.ThresholdPaillierKeyHolder(w.config, s, rng=rng.spawn()) for s in w.shares]
    proto = pt.ThresholdPaillierProtocol(
        w.config, identities=w.identities, key_holders=holders, rng=rng.spawn()
    )
    server = proto.server(round_id=ROUND, client_ids=frozenset(HONEST), dim=DIM)
    server.start()
    violations = []
    accepted: set[int] = set()

    def deliver(src: int, data: bytes, forged: bool) -> None:
        try:
            server.receive(src, data)
        except SecflError:
            if not forged:
                violations.append(
                    Violation("refuses-only-forgeries", f"client {src}'s genuine input refused")
                )
            return
        if forged:
            violations.append(
                Violation("refuses-forgeries", f"the aggregator accepted a {forgery!r} message")
            )
        else:
            accepted.add(src)

    for c in HONEST:
        genuine = m.SignedInput(ROUND, *w.signed[ROUND][c][1:]).to_bytes()
        if c == which and when == "before":
            deliver(sender, message, True)
        if not (c == which and when == "late"):
            deliver(c, genuine, False)
        if c == which and when == "after":
            deliver(sender, message, True)
    try:
        requests = server.advance()
        if when == "late":
            deliver(sender, message, True)
        _honest_holders(proto, server, requests)
        want = sum((w.values[ROUND][c] for c in sorted(accepted)), np.zeros(DIM, np.int64))
        if server.result.survivors != frozenset(accepted) or not np.array_equal(
            server.result.aggregate, _ring(want)
        ):
            violations.append(
                Violation("exact-sum", f"after a {forgery!r} message the sum is not the honest one")
            )
    except SecflError as e:
        violations.append(
            Violation("exact-sum", f"after a {forgery!r} message the round ended: {e}")
        )
    if violations:
        raise AuditFailure(violations)


# ------------------------------------------------------------------- parameter bounds
BOUNDS = ("bits", "min-clients", "ask-first", "value-bits", "registry-id", "registry-twice")
"""The :class:`ThresholdPaillierConfig` parameters :func:`check_config_bound` moves."""


def _near(offset: int, lo: int, hi: int) -> int:
    """Offsets 0..3 sit at the lower bound ``lo`` (lo - 2 .. lo + 1), 4..7 at the upper
    bound ``hi`` (hi - 1 .. hi + 2): just inside, on, and just outside each."""
    return lo - 2 + offset if offset < 4 else hi - 5 + offset


def check_config_bound(parameter: str, offset: int) -> None:
    """Build a config with ``parameter`` near one of its stated bounds (:func:`_near`): it
    must be accepted exactly when paillier-sum-v2 section 5 allows the value and refused
    with InvalidArgument otherwise. Raises :class:`AuditFailure`."""
    w = _world()
    cfg = w.config
    n, t, m_ = cfg.n_clients, w.public.threshold, w.public.holders
    registry = dict(cfg.registry)
    kwargs: dict[str, object] = {}
    if parameter == "bits":  # 1..64 (value_bits kept valid: at most bits)
        value = _near(offset, 1, 64)
        kwargs["bits"], allowed = value, 1 <= value <= 64
        kwargs["value_bits"] = VALUE_BITS if value >= VALUE_BITS else None
    elif parameter == "min-clients":  # 2..n_clients, from either end
        value = _near(offset, 2, n)
        kwargs["min_clients"], allowed = value, 2 <= value <= n
    elif parameter == "ask-first":  # t..m
        value = _near(offset, t, m_)
        kwargs["ask_first"], allowed = value, t <= value <= m_
    elif parameter == "value-bits":  # 1..bits
        value = _near(offset, 1, cfg.bits)
        kwargs["value_bits"], allowed = value, 1 <= value <= cfg.bits
    elif parameter == "registry-id":  # client ids 1..2^32-1
        cid = _near(offset, 1, (1 << 32) - 1)
        registry[cid] = SigningKey.generate(rng=_seeded(f"audit id {cid}")).verify_key()
        allowed = 1 <= cid < 1 << 32
    else:  # "registry-twice": one verify key under two ids
        registry[100 + offset] = registry[1 + offset % COLLUDER]
        allowed = False
    try:
        pt.ThresholdPaillierConfig(
            public_key=cfg.public_key,
            registry=registry,
            bits=kwargs.get("bits", cfg.bits),  # type: ignore[arg-type]
            n_clients=n,
            value_bits=kwargs.get("value_bits", cfg.value_bits),  # type: ignore[arg-type]
            min_clients=kwargs.get("min_clients", cfg.min_clients),  # type: ignore[arg-type]
            ask_first=kwargs.get("ask_first"),  # type: ignore[arg-type]
        )
        accepted = True
    except InvalidArgument:
        accepted = False
    if accepted != allowed:
        what = "accepted" if accepted else "refused"
        raise AuditFailure(
            [Violation("config-bounds", f"{parameter} at offset {offset} was {what}")]
        )


def check_fresh_randomness() -> None:
    """Two clients with the same input, each in two rounds, from one protocol object (one
    root generator, as deployed): no two of the four ciphertext strings are equal.
    Raises :class:`AuditFailure`."""
    w = _world()
    proto = pt.ThresholdPaillierProtocol(
        w.config, identities=w.identities, rng=_seeded("audit fresh randomness")
    )
    same = _ring(w.values[ROUND][1])
    seen: dict[bytes, tuple[int, int]] = {}
    violations = []
    for rid in (OLD_ROUND, ROUND):
        request = _genuine_request(w, rid)
        for c in (1, 2):
            reply = proto.client(round_id=rid, client_id=c, value=same).handle(request)
            assert reply is not None
            cts = m.SignedInput.from_bytes(reply, size=w.config.input_bytes(DIM)).ciphertexts
            if cts in seen:
                violations.append(
                    Violation(
                        "fresh-randomness",
                        f"client {c} in round {rid} repeats the ciphertexts of client "
                        f"{seen[cts][0]} in round {seen[cts][1]}",
                    )
                )
            seen[cts] = (c, rid)
    if violations:
        raise AuditFailure(violations)


# ------------------------------------------------------------------------- full rounds
def check_full_round(dim: int) -> None:
    """Every registered client (all n_clients, the colluder following the protocol) sends
    an input of ``dim`` values and every key holder is honest: the round must decrypt the
    exact sum (the largest set a holder may be asked, section 8.3 refusal 1, and the
    shortest vector). Raises :class:`AuditFailure`."""
    w = _world()
    everyone = frozenset(w.config.registry)
    rng = _seeded(f"audit full round {dim}")
    holders = [pt.ThresholdPaillierKeyHolder(w.config, s, rng=rng.spawn()) for s in w.shares]
    proto = pt.ThresholdPaillierProtocol(
        w.config, identities=w.identities, key_holders=holders, rng=rng.spawn()
    )
    server = proto.server(round_id=ROUND, client_ids=everyone, dim=dim)
    values = {
        c: rng.integers_below(1 << VALUE_BITS, dim).astype(np.int64) - (1 << 11)
        for c in sorted(everyone)
    }
    try:
        for c, request in server.start().items():
            reply = proto.client(round_id=ROUND, client_id=c, value=_ring(values[c])).handle(
                request
            )
            assert reply is not None
            server.receive(c, reply)
        _honest_holders(proto, server, server.advance())
    except SecflError as e:
        raise AuditFailure(
            [Violation("full-round", f"{len(everyone)} clients, dim {dim}: the round ended: {e}")]
        ) from None
    want = sum(values.values(), np.zeros(dim, np.int64))
    if server.result.survivors != everyone or not np.array_equal(
        server.result.aggregate, _ring(want)
    ):
        raise AuditFailure(
            [Violation("full-round", f"{len(everyone)} clients, dim {dim}: not the exact sum")]
        )


SHAPES = ("every-slot", "data", "padding-high", "padding-low")
"""Which slots of the sum the input of :func:`check_out_of_range_input` puts out of range:
every slot at its largest value, the data slots only (padding as an honest client's), or
in-range data with the padding slots one above, or one offset below, what the inputs give."""


def check_out_of_range_input(which: int, shape: str) -> None:
    """Client ``which`` signs a well-formed encryption chosen so that the slots of the sum
    that ``shape`` (:data:`SHAPES`) names decrypt out of range (no range proofs: section
    10.2, limit 3, so the aggregator cannot refuse it on arrival): the round must end with
    IntegrityError, never a sum, and neither the error's message nor its chain may carry a
    decrypted slot value (section 8.2). Raises :class:`AuditFailure`."""
    w = _world()
    cfg, layout = w.config, w.config.layout
    rng = _seeded(f"audit out of range {which} {shape}")
    holders = [pt.ThresholdPaillierKeyHolder(cfg, s, rng=rng.spawn()) for s in w.shares]
    pk = w.public.to_phe()
    others = [c for c in HONEST if c != which]
    honest = np.full(_count(w) * layout.slots_per_ciphertext, len(others) * layout.offset)
    honest[:DIM] += sum((w.values[ROUND][c] for c in others), np.zeros(DIM, np.int64))
    top = (1 << layout.slot_bits) - 1  # > n_summed * (2^value_bits - 1): out of range
    mine = np.full(honest.size, layout.offset)  # an honest input of zeros, to start with
    data, padding = slice(0, DIM), slice(DIM, None)
    if shape in ("every-slot", "data"):
        mine[data] = top - honest[data]
    if shape == "every-slot":
        mine[padding] = top - honest[padding]
    elif shape == "padding-high":  # one above the offsets' sum: within every slot's range
        mine[padding] = layout.offset + 1
    elif shape == "padding-low":
        mine[padding] = 0
    summed = {int(v) for v in honest + mine if v >= 1000}  # what the key decrypts to
    plaintexts = hp._pack(mine.astype(np.uint64), layout, _count(w))
    width = hp.ciphertext_bytes(pk)
    bad = b"".join(hp.encrypt_int(pk, int(x), rng=rng).to_bytes(width, "big") for x in plaintexts)
    signed = w.identities[which].sign(cfg.signed_message(ROUND, which, DIM, bad))
    proto = pt.ThresholdPaillierProtocol(
        cfg, identities=w.identities, key_holders=holders, rng=rng.spawn()
    )
    server = proto.server(round_id=ROUND, client_ids=frozenset(HONEST), dim=DIM)
    server.start()
    for c in HONEST:
        cts, sig = (bad, signed) if c == which else w.signed[ROUND][c][1:]
        server.receive(c, m.SignedInput(ROUND, cts, sig).to_bytes())
    rule = "out-of-range-input"
    try:
        _honest_holders(proto, server, server.advance())
    except IntegrityError as e:
        if e.__context__ is not None or e.__cause__ is not None:
            raise AuditFailure([Violation(rule, f"the refusal chains {e.__context__!r}")]) from None
        if any(str(v) in str(e) for v in summed):
            raise AuditFailure(
                [Violation(rule, f"the refusal names a decrypted value: {e}")]
            ) from None
        return
    except Exception as e:  # any other outcome is the violation
        raise AuditFailure(
            [Violation(rule, f"the round ended with {type(e).__name__}: {e}")]
        ) from None
    raise AuditFailure([Violation(rule, f"client {which}'s {shape} input gave a sum")])


# --------------------------------------------------------------------- key generation
class _Dictating(Csprng):
    """A generator whose first draws are given: a safe-prime search that starts at a given
    p' ends there at once, so :func:`check_key_generation` fixes the primes cheaply."""

    __slots__ = ("_given",)

    def __init__(self, given: Sequence[bytes], *, seed: bytes) -> None:
        super().__init__(seed=seed)
        self._given = list(given)

    def bytes(self, n: int) -> bytes:
        if self._given:
            out = self._given.pop(0)
            assert len(out) == n, "generate_safe_prime draws its start in one call"
            return out
        return super().bytes(n)


KEYGEN_BITS = 2048


@functools.lru_cache(maxsize=1)
def _keygen_primes() -> tuple[int, int]:
    """Two 1024-bit safe primes (fixed seed; about a second)."""
    rng = _seeded("audit paillier-sum-v2 keygen")
    half = KEYGEN_BITS // 2
    return tp.generate_safe_prime(half, rng=rng), tp.generate_safe_prime(half, rng=rng)


def _start_bytes(p: int) -> bytes:
    """The draw that makes generate_safe_prime start its search at p' = (p - 1) / 2."""
    half = KEYGEN_BITS // 2
    low = (p - 1) // 2 - (3 << (half - 3))  # p' = top two bits | a (half - 3)-bit draw
    return low.to_bytes((half - 3 + 7) // 8, "little")


def check_key_generation() -> None:
    """``generate_key`` draws every prime and every dealt value from the generator it is
    given (sections 3.1 and 3.2): two generators whose first draws dictate the same two safe primes
    and whose later draws differ must give keys of exactly those primes and different
    shares and verification bases. Raises :class:`AuditFailure`."""
    p, q = _keygen_primes()
    given = [_start_bytes(p), _start_bytes(q)]
    keys = [
        tp.generate_key(
            bits=KEYGEN_BITS,
            holders=HOLDERS,
            threshold=T,
            rng=_Dictating(given, seed=f"audit keygen {k}".encode().ljust(32, b"\0")),
        )
        for k in (1, 2)
    ]
    violations = []
    for k, (public, _) in enumerate(keys, 1):
        if public.n != p * q:
            violations.append(
                Violation("keygen-randomness", f"key {k}: n is not the product of its draws")
            )
    (pub1, shares1), (pub2, shares2) = keys
    if pub1.to_bytes() == pub2.to_bytes() or any(
        a._s == b._s for a, b in zip(shares1, shares2, strict=True)
    ):
        violations.append(
            Violation("keygen-randomness", "two dealings with different draws repeat a value")
        )
    if violations:
        raise AuditFailure(violations)
