"""A lying SecAgg server that *searches* for a schedule isolating one client's input.

The stateful machines (:mod:`secfl.audit.machines`) deviate one request at a time. This
adversary plans a whole round instead: over the complete graph it chooses, for every
holder w, which owners' share envelopes reach w (withholding the rest) and which survivor
list w is shown, and searches (simulated annealing on a model of the clients' public
rules, protocols/secagg-v2.md sections 5-7) for a plan under which the honest clients'
reveals give it one victim's self-mask seed b_u and the key s_v^SK of every client u
masked with. Nothing in the search names the known attack: its objective is "one input
unmasked", its moves are "withhold one envelope" and "toggle one name in one list".

The plan it finds is then run against real client sessions (:class:`SecAggProtocol`),
recorded, and judged by :func:`~secfl.audit.check_view`, so a wrong model can only make
the adversary weaker, never produce a false finding. In the active threat model the
model includes the consistency round (a client unmasks only with t + 1 signatures on the
exact list it was shown), and the executor forwards only such signatures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from secfl import wire
from secfl.audit import _rounds as rounds
from secfl.audit.transcript import Transcript, TranscriptRecorder
from secfl.errors import InvalidArgument, SecflError
from secfl.hazmat.rng import Csprng
from secfl.protocols import secagg as sa
from secfl.protocols import secagg_messages as sm
from secfl.protocols.secagg import SecAggConfig, ThreatModel

__all__ = ["IsolationPlan", "check_isolation", "run_plan", "search_isolation"]


@dataclass(frozen=True)
class IsolationPlan:
    """A lying server's schedule for one round over the complete graph of 1..n.

    ``holds[w]``: the owners whose share envelopes reach holder w (the rest are withheld);
    ``shown[w]``: the other clients w is told survived. ``victim``: the client whose input
    the plan unmasks if the model is right; ``progress`` in [0, 1] (1: unmasked).
    """

    victim: int
    holds: Mapping[int, frozenset[int]]
    shown: Mapping[int, frozenset[int]]
    progress: float


# ----------------------------------------------------------------------------- model
def _reveals(
    n: int, t: int, holds: Mapping[int, frozenset[int]], shown: Mapping[int, frozenset[int]]
) -> tuple[dict[int, int], dict[int, int], int]:
    """Per owner, how many holders reveal its b-share and its s-share; and how many
    clients the model says refuse (too few envelopes, a short list, a name not held)."""
    b_count = dict.fromkeys(range(1, n + 1), 0)
    s_count = dict.fromkeys(range(1, n + 1), 0)
    refusals = 0
    for w in range(1, n + 1):
        held, listed = holds[w], shown[w]
        if len(held) < t or len(listed) < t or not listed <= held:
            refusals += 1
            continue
        for v in held:
            if v in listed:
                b_count[v] += 1
            else:
                s_count[v] += 1
    return b_count, s_count, refusals


def _active_filter(
    n: int, t: int, shown: Mapping[int, frozenset[int]]
) -> dict[int, frozenset[int]]:
    """Active mode: a client unmasks only if t + 1 members of its full list signed that
    same list; the others drop out of the model (an empty list is refused)."""
    full = {w: shown[w] | {w} for w in range(1, n + 1)}
    out = {}
    for w in range(1, n + 1):
        signers = sum(1 for v in full[w] if full[v] == full[w])
        out[w] = shown[w] if signers >= t + 1 else frozenset()
    return out


def _progress(
    n: int,
    t: int,
    victim: int,
    holds: Mapping[int, frozenset[int]],
    shown: Mapping[int, frozenset[int]],
    active: bool,
) -> float:
    if active:
        shown = _active_filter(n, t, shown)
    b_count, s_count, refusals = _reveals(n, t, holds, shown)
    partners = holds[victim]  # the victim masks pairwise with the owners it holds
    if len(partners) < t:
        return -1.0
    need = t * (1 + len(partners))
    got = min(b_count[victim], t) + sum(min(s_count[v], t) for v in partners)
    return got / need - 0.05 * refusals


def search_isolation(
    n: int, t: int, *, active: bool, rng: Csprng, steps: int = 20_000
) -> IsolationPlan:
    """The best plan found for isolating one input of n clients at threshold t.

    Simulated annealing from "deliver everything, honest lists", one move at a time:
    withhold or deliver one envelope, or toggle one name in one client's list.
    """
    if not 2 <= t < n:
        raise InvalidArgument(f"need 2 <= t < n, got t={t}, n={n}")
    victim = 1 + int(rng.uint64(1)[0] % n)
    ids = range(1, n + 1)
    holds = {w: frozenset(v for v in ids if v != w) for w in ids}
    shown = dict(holds)
    score = _progress(n, t, victim, holds, shown, active)
    best = IsolationPlan(victim, dict(holds), dict(shown), score)
    draws = rng.uint64(4 * steps)
    t0 = 2.0 / (t * n)  # about two reveals' worth of progress
    for step in range(steps):
        temperature = t0 * (1.0 - step / steps) + 1e-4
        kind, w, v, coin = (int(x) for x in draws[4 * step : 4 * step + 4])
        w, v = 1 + w % n, 1 + v % n
        if v == w:
            continue
        new_holds, new_shown = holds, shown
        if kind % 2:
            new_holds = {**holds, w: holds[w] ^ {v}}
            new_shown = {**shown, w: shown[w] & new_holds[w]}
        else:
            new_shown = {**shown, w: (shown[w] ^ {v}) & holds[w]}
        new = _progress(n, t, victim, new_holds, new_shown, active)
        accept = new >= score or (coin / 2.0**64) < math.exp((new - score) / temperature)
        if accept:
            holds, shown, score = new_holds, new_shown, new
            if score > best.progress:
                best = IsolationPlan(victim, dict(holds), dict(shown), score)
                if score >= 1.0:
                    break
    return best


# ----------------------------------------------------------------------------- execution
def run_plan(plan: IsolationPlan, config: SecAggConfig, *, dim: int, rng: Csprng) -> Transcript:
    """Run one real round of ``config`` (complete graph) with the server following
    ``plan``: envelopes withheld, each client shown its own list (in active mode only the
    signatures on that exact list are forwarded). Returns the recorded transcript."""
    if config.degree is not None:
        raise InvalidArgument("the isolation search plans over the complete graph only")
    n, rid = config.n_clients, rounds.ROUND_ID
    recorder = TranscriptRecorder()
    protocol = recorder.wrap(rounds.secagg_protocol(config, rng.spawn()))
    inputs = rounds.random_inputs(rng, range(1, n + 1), bits=config.bits, dim=dim)
    server = protocol.server(round_id=rid, client_ids=frozenset(inputs), dim=dim)
    clients = {c: protocol.client(round_id=rid, client_id=c, value=x) for c, x in inputs.items()}
    active = config.threat_model is ThreatModel.ACTIVE
    signed: dict[int, bytes] = {}
    full = {w: tuple(sorted(plan.shown[w] | {w})) for w in clients}
    requests = server.start()
    while requests:
        for c, request in sorted(requests.items()):
            try:
                reply = clients[c].handle(_forge(request, c, plan, full, signed, rid, active))
            except SecflError:
                continue  # this client refuses: it drops out
            if reply is None:
                continue
            if _type(request) == sm.Survivors.TYPE and active:
                signed[c] = sm.SurvivorConsistency.from_bytes(reply, round_id=rid).signature
            try:
                server.receive(c, reply)
            except SecflError:
                continue
        try:
            requests = server.advance()
        except SecflError:
            break  # the honest server code gives up; what the clients sent is recorded
    return recorder.transcript


def _type(frame: bytes) -> int:
    return wire.unframe(frame)[0]


def _forge(
    request: bytes,
    to: int,
    plan: IsolationPlan,
    full: Mapping[int, tuple[int, ...]],
    signed: Mapping[int, bytes],
    rid: int,
    active: bool,
) -> bytes:
    kind = _type(request)
    if kind == sa.MSG_SHARES:
        envelopes = sm.Shares.from_bytes(request, round_id=rid, max_entries=1 << 16).envelopes
        kept = tuple((u, env) for u, env in envelopes if u in plan.holds[to])
        return sm.Shares(rid, kept).to_bytes()
    if kind == sa.MSG_SIGNED_SHARES:  # secagg-v3 (active): the envelopes with their signatures
        msg = sm.SignedShares.from_bytes(request, round_id=rid, max_entries=1 << 16)
        pairs = zip(msg.envelopes, msg.signatures, strict=True)
        keep = [(e, g) for e, g in pairs if e[0] in plan.holds[to]]
        return sm.SignedShares(rid, tuple(e for e, _ in keep), tuple(g for _, g in keep)).to_bytes()
    if kind == sa.MSG_MASK_REQUEST:  # ... and whom to mask with
        names = sm.MaskRequest.from_bytes(request, round_id=rid, max_clients=1 << 16).neighbours
        return sm.MaskRequest(rid, tuple(v for v in names if v in plan.holds[to])).to_bytes()
    if kind == sa.MSG_SURVIVORS:
        listed = tuple(sorted(plan.shown[to]))
        return sm.Survivors(rid, len(listed) + 1, listed).to_bytes()
    if kind == sa.MSG_SIGNATURES and active:
        entries = tuple((v, signed[v]) for v in full[to] if v in signed and full[v] == full[to])
        return sm.Signatures(rid, entries).to_bytes()
    return request


# (n, t) rounds the audit searches: HBC at t just above half the holders, ACTIVE at the
# smallest t above two thirds (the bounds of secagg-v1 section 4).
_HBC_SIZES = ((6, 3), (8, 4), (10, 5))
_ACTIVE_SIZES = ((7, 5), (10, 7))


def check_isolation(trials: int, seed: int) -> str:
    """The audit property: ``trials`` searches per mode and size (fresh seeds each).

    ACTIVE: no plan may unmask an input once run for real (``check_view`` passes), else
    :class:`~secfl.audit.AuditFailure`. HBC: secagg-v1 section 10.2 states that a lying
    server can isolate an input; the search must find and run such a plan (else
    ``AssertionError``: the search lost its strength, or the claim needs updating).
    """
    from secfl.audit._errors import AuditFailure
    from secfl.audit.transcript import check_view

    found = 0
    for trial in range(trials):
        for active, sizes in ((False, _HBC_SIZES), (True, _ACTIVE_SIZES)):
            for n, t in sizes:
                rng = rounds.derive(seed.to_bytes(8, "big"), f"isolation/{active}/{n}/{t}/{trial}")
                plan = max(  # a few restarts: annealing can stall on a plateau
                    (search_isolation(n, t, active=active, rng=rng.spawn()) for _ in range(3)),
                    key=lambda p: p.progress,
                )
                model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
                config = SecAggConfig(bits=16, threshold=t, n_clients=n, threat_model=model)
                transcript = run_plan(plan, config, dim=rounds.mask_dim(16), rng=rng)
                if active:
                    check_view(transcript)  # raises AuditFailure if an input was unmasked
                    continue
                if plan.progress >= 1.0:
                    try:
                        check_view(transcript)
                    except AuditFailure:
                        found += 1
    need = trials * len(_HBC_SIZES)
    if found < need:
        raise AssertionError(
            f"the lying server isolated an HBC input in {found} of {need} searches; "
            "secagg-v1 section 10.2 says it always can: the search lost its strength"
        )
    return (
        f"HBC: an input isolated in {found} of {need} searches (the limit of secagg-v1 "
        f"section 10.2); ACTIVE: none in {trials * len(_ACTIVE_SIZES)}"
    )
