"""Adversarial state machines that drive whole rounds (Hypothesis ``RuleBasedStateMachine``).

Each machine runs one round of a protocol between real sessions over a simulated network
that Hypothesis controls: packets are delivered in any order, lost, duplicated, delayed
past a phase's deadline (the server ``advance``\\ s while they are in flight) or tampered
with; clients crash in any phase; and, where the threat model has one, a deviating server
forges requests (split survivor views, invalid survivor lists, withheld envelopes, repeated
unmasking requests, replays of an older round, substituted keys, forged signatures).

Invariants, checked after every step and once more when the round is finished:

* :func:`secfl.audit.check_view` passes on the recorded transcript (what the server and
  the coalition saw is what the specification allows, and every honest client followed
  its rules);
* the server session never changes phase on a message it rejects, and never accepts a
  message replayed from another round;
* the round ends (a bounded number of deliveries and ``advance`` calls finishes it) with
  either the exact sum of its survivors' inputs or a :class:`~secfl.errors.SecflError`;
  no other exception escapes any session. The exact-sum check is waived only when a
  session accepted a tampered or forged message: no protocol here authenticates a
  message's content against the server or the network beyond what the threat model says
  (e.g. an honest-but-curious SecAgg server trusts the network with masked vectors).

The machines need Hypothesis (a dev dependency): ``pip install 'secfl[dev]'``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np

from secfl.audit._hypothesis import require_hypothesis

require_hypothesis()

from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from secfl import wire  # noqa: E402
from secfl.audit import _rounds as rounds  # noqa: E402
from secfl.audit._errors import AuditFailure  # noqa: E402
from secfl.audit.transcript import (  # noqa: E402
    SERVER,
    TranscriptRecorder,
    check_view,
    message_name,
)
from secfl.errors import SecflError  # noqa: E402
from secfl.hazmat.kex import KexPrivateKey  # noqa: E402
from secfl.hazmat.sign import SigningKey  # noqa: E402
from secfl.protocols import paillier as pl  # noqa: E402
from secfl.protocols import paillier_messages as pm  # noqa: E402
from secfl.protocols import secagg as sa  # noqa: E402
from secfl.protocols import secagg_messages as sm  # noqa: E402
from secfl.protocols.base import (  # noqa: E402
    KEY_HOLDER,
    AggregationProtocol,
    ClientSession,
    Phase,
    ServerSession,
)

__all__ = [
    "Deviation",
    "PaillierAudit",
    "PlainAudit",
    "SecAggActiveAudit",
    "SecAggHbcAudit",
    "SecAggPlusAudit",
    "deviations",
    "paillier_specs",
    "plain_specs",
    "secagg_specs",
]

F = TypeVar("F", bound=Callable[..., None])

_MAX_QUEUE = 48
_PICK = st.integers(0, 255)
_LOG_TAIL = 40
_FAULTS = st.one_of(st.just(0), st.integers(1, 6))  # network faults and crashes per round
_LIES = st.integers(0, 4)  # deviations of a malicious server per round


@dataclass(frozen=True)
class _Packet:
    src: int
    dst: int
    data: bytes
    forged: str | None = None  # what the adversary did to it (None: authentic)
    taints: bool = False  # accepting it voids the exact-sum guarantee
    replay: bool = False  # a message of another round
    genuine: bytes | None = None  # before the network tampered with an authentic packet

    def describe(self) -> str:
        name = message_name(self.data[3]) if len(self.data) >= 4 else "truncated frame"
        src, dst = _party_name(self.src), _party_name(self.dst)
        how = f" [{self.forged}]" if self.forged else ""
        return f"{name} {src} -> {dst}{how}"


def _party_name(party: int) -> str:
    if party == SERVER:
        return "server"
    return "key holder" if party == KEY_HOLDER else f"client {party}"


def _tracked(fn: F) -> F:
    """Mark the machine unclean while a step runs, so teardown does not mask its failure."""

    @functools.wraps(fn)
    def wrapper(self: _RoundMachine, *args: Any, **kwargs: Any) -> None:
        self._clean = False
        self.rule_steps += 1
        fn(self, *args, **kwargs)
        self._clean = True

    return wrapper  # type: ignore[return-value]


def _frame_type(data: bytes) -> int | None:
    try:
        return wire.unframe(data)[0]
    except SecflError:
        return None


class _RoundMachine(RuleBasedStateMachine):
    """A round over an adversarial network; subclasses build the sessions."""

    may_tamper: bool = True
    adversarial: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.ready = False
        self._clean = True
        self.queue: list[_Packet] = []
        self.crashed: set[int] = set()
        self.faults = 0  # how many more network faults and crashes may happen
        self.lies = 0  # how many more times a deviating server may deviate
        self.armed: list[Deviation] = []
        self._batch: list[_Packet] = []
        self._checked = (-1, -1, -1)  # transcript size at the last check_view
        self.tainted = False
        self.disturbed = False  # a fault, crash, replay or deviation happened
        self.outcome: str | None = None  # "done" or "aborted: <error>"
        self.log: list[str] = []
        self.steps = 0  # deliveries and advances
        self.rule_steps = 0  # rules run
        # set by _start()
        self.recorder = TranscriptRecorder()
        self.protocol: AggregationProtocol
        self.server: ServerSession
        self.clients: dict[int, ClientSession] = {}
        self.inputs: dict[int, np.ndarray] = {}
        self.bits = 0

    # ---- set-up shared by the subclasses
    def _start(
        self,
        protocol: AggregationProtocol,
        inputs: dict[int, np.ndarray],
        *,
        coalition: tuple[int, ...] = (),
        recorder: TranscriptRecorder | None = None,
    ) -> None:
        self.recorder = recorder or TranscriptRecorder(coalition=coalition)
        self.protocol = self.recorder.wrap(protocol)
        self.inputs = inputs
        self.bits = protocol.bits
        dim = next(iter(inputs.values())).size
        self.clients = {
            c: self.protocol.client(round_id=rounds.ROUND_ID, client_id=c, value=v)
            for c, v in inputs.items()
        }
        self.server = self.protocol.server(
            round_id=rounds.ROUND_ID, client_ids=frozenset(inputs), dim=dim
        )
        for c, req in self.server.start().items():
            self.queue.append(_Packet(SERVER, c, req))
        self.ready = True
        self._log(f"start: {len(inputs)} clients, protocol {protocol.name}")

    # ---- helpers
    def _log(self, line: str) -> None:
        self.log.append(line)

    def _fail(self, message: str) -> None:
        tail = "\n".join(f"    {s}" for s in self.log[-_LOG_TAIL:])
        raise AssertionError(f"{message}\n  schedule (last {_LOG_TAIL} events):\n{tail}")

    def _pick(self, pick: int) -> int:
        return pick % len(self.queue)

    @property
    def _collecting(self) -> bool:
        return self.outcome is None and self.server.phase not in (
            Phase.START,
            Phase.DONE,
            Phase.ABORTED,
        )

    def _deliver(self, pkt: _Packet) -> None:
        self.steps += 1
        self.disturbed |= pkt.forged is not None
        if pkt.dst == SERVER:
            before = self.server.phase
            try:
                self.server.receive(pkt.src, pkt.data)
            except SecflError as e:
                self._log(f"{pkt.describe()}: rejected ({type(e).__name__})")
                if self.server.phase != before:
                    self._fail(
                        f"the server moved from phase {before!r} to {self.server.phase!r} "
                        f"while rejecting a message ({type(e).__name__}: {e})"
                    )
                return
            self._log(f"{pkt.describe()}: accepted")
            if before in (Phase.DONE, Phase.ABORTED):
                self._fail(f"the server accepted {pkt.describe()} after the round ended")
            if pkt.replay:
                self._fail(
                    f"the server accepted a message replayed from round {rounds.ROUND_ID - 1}"
                )
            self.tainted |= pkt.taints
            return
        if pkt.dst in self.crashed:
            self._log(f"{pkt.describe()}: lost (client crashed)")
            return
        parties = self.protocol.parties()
        try:
            reply = (parties[pkt.dst] if pkt.dst in parties else self.clients[pkt.dst]).handle(
                pkt.data
            )
        except SecflError as e:
            self._log(f"{pkt.describe()}: refused ({type(e).__name__}: {str(e)[:80]})")
            return
        self._log(f"{pkt.describe()}: answered")
        self.tainted |= pkt.taints
        self._accepted_forgery(pkt)
        if reply is not None:
            self.queue.append(_Packet(pkt.dst, SERVER, reply))

    def _accepted_forgery(self, pkt: _Packet) -> None:
        """Hook: a client answered ``pkt`` (subclasses assert on forgeries)."""

    def _advance(self) -> None:
        self.steps += 1
        phase = self.server.phase
        try:
            out = self.server.advance()
        except SecflError as e:
            self.outcome = f"aborted: {type(e).__name__}: {e}"
            self._log(f"advance after {phase!r}: round aborted ({type(e).__name__}: {e})")
            return
        self._log(f"advance after {phase!r}: {len(out)} requests")
        self._requests_sent(out)
        if not out:
            self.outcome = "done"
        packets = [_Packet(SERVER, c, req) for c, req in sorted(out.items())]
        self.queue.extend(self._deviate(packets))

    def _deviate(self, packets: list[_Packet]) -> list[_Packet]:
        """Hook: a deviating server rewrites the requests it just produced."""
        return packets

    def _requests_sent(self, out: dict[int, bytes]) -> None:
        """Hook: the (honest) server just sent ``out`` (subclasses check its own floors)."""

    def _flush(self) -> None:
        budget = 4 * _MAX_QUEUE + 8 * len(self.clients)
        while self.queue and budget:
            budget -= 1
            self._deliver(self.queue.pop(0))
        if self.queue:
            self._fail("delivering the pending packets did not terminate")

    # ---- network rules
    @rule(pick=_PICK)
    @precondition(lambda self: bool(self.queue))
    @_tracked
    def deliver(self, pick: int) -> None:
        """Deliver one pending packet (any of them: reordering)."""
        self._deliver(self.queue.pop(self._pick(pick)))

    @rule()
    @precondition(lambda self: bool(self.queue))
    @_tracked
    def deliver_all(self) -> None:
        """Deliver every pending packet in order (a good network for a while)."""
        self._flush()

    @rule()
    @_tracked
    def wait(self) -> None:
        """Nothing happens for a while (always applicable, so a run never gets stuck)."""

    @rule()
    @precondition(lambda self: self._collecting)
    @_tracked
    def phase_completes(self) -> None:
        """Everything pending arrives, then the phase's deadline passes."""
        self._flush()
        if self._collecting:
            self._advance()

    @rule(pick=_PICK)
    @precondition(lambda self: self.faults > 0 and bool(self.queue))
    @_tracked
    def lose(self, pick: int) -> None:
        self.faults -= 1
        self.disturbed = True
        pkt = self.queue.pop(self._pick(pick))
        self._log(f"{pkt.describe()}: lost by the network")

    @rule(pick=_PICK)
    @precondition(lambda self: bool(self.queue) and len(self.queue) < _MAX_QUEUE)
    @_tracked
    def duplicate(self, pick: int) -> None:
        pkt = self.queue[self._pick(pick)]
        self.queue.append(pkt)
        self.disturbed = True
        self._log(f"{pkt.describe()}: duplicated")

    @rule(pick=_PICK, position=st.integers(0, 1 << 20), bit=st.integers(0, 7))
    @precondition(lambda self: self.faults > 0 and bool(self.queue) and self.may_tamper)
    @_tracked
    def tamper(self, pick: int, position: int, bit: int) -> None:
        self.faults -= 1
        i = self._pick(pick)
        pkt = self.queue[i]
        if not self._may_tamper_with(pkt):
            return
        self.disturbed = True
        data = bytearray(pkt.data)
        pos = position % len(data)
        data[pos] ^= 1 << bit
        genuine = pkt.data if pkt.forged is None else pkt.genuine
        if bytes(data) == genuine:  # flipped back: the authentic packet again
            self.queue[i] = replace(pkt, data=genuine, forged=None, taints=False, genuine=None)
        else:
            self.queue[i] = replace(
                pkt,
                data=bytes(data),
                forged=f"bit {bit} of byte {pos} flipped",
                taints=True,
                genuine=genuine,
            )
        self._log(f"{pkt.describe()}: byte {pos} bit {bit} flipped in flight")

    def _may_tamper_with(self, pkt: _Packet) -> bool:
        return True

    @rule(which=_PICK)
    @precondition(lambda self: self.faults > 0)
    @_tracked
    def crash(self, which: int) -> None:
        """A client goes silent for good (drops out in whatever phase it is)."""
        self.faults -= 1
        alive = sorted(set(self.clients) - self.crashed)
        if not alive:
            return
        self.disturbed = True
        c = alive[which % len(alive)]
        self.crashed.add(c)
        self._log(f"client {c} crashes in its phase {self.clients[c].phase!r}")

    @rule()
    @precondition(lambda self: self._collecting and (self.faults > 0 or not self.queue))
    @_tracked
    def deadline(self) -> None:
        """The phase's deadline passes: the server advances; whatever is still in flight
        arrives late (a fault, when anything is)."""
        if self.queue:
            self.faults -= 1
            self.disturbed = True
        self._advance()

    @rule(pick=_PICK, to=_PICK)
    @precondition(lambda self: self.faults > 0 and self.adversarial and bool(self._old_round()))
    @_tracked
    def replay_old_round(self, pick: int, to: int) -> None:
        """Deliver a message recorded in round ROUND_ID - 1 (same clients and identities)."""
        self.faults -= 1
        old = self._old_round()
        src, dst, data = old[pick % len(old)]
        if dst == SERVER:  # a client's old message, replayed to the server in its name
            pkt = _Packet(src, SERVER, data, forged="replayed from the previous round")
        else:  # an old request, replayed to some client
            c = sorted(self.clients)[to % len(self.clients)]
            pkt = _Packet(SERVER, c, data, forged="replayed from the previous round")
        pkt = replace(pkt, replay=True, taints=True)
        self.disturbed = True
        self._log(f"adversary replays {pkt.describe()}")
        self._deliver(pkt)

    def _old_round(self) -> list[tuple[int, int, bytes]]:
        return []

    # ---- invariants
    @invariant()
    def view_is_allowed(self) -> None:
        if not self.ready:
            return
        tr = self.recorder.transcript
        size = (len(tr.exchanges), len(tr.deliveries), len(tr.decryptions))
        if size == self._checked:
            return
        self._clean = False
        self._check_view()
        self._checked = size
        self._clean = True

    def _check_view(self) -> None:
        try:
            check_view(self.recorder.transcript)
        except AuditFailure as e:
            self._fail(str(e))

    def teardown(self) -> None:
        if not self.ready or not self._clean:
            return
        # Teardown is a good network: its deadlines cut nothing off (nothing is in flight).
        for _ in range(len(self.protocol.phases) + 3):
            self._flush()
            if self.outcome is not None:
                break
            if not self._collecting:
                self._fail(
                    f"the server is in phase {self.server.phase!r} but the round has no outcome"
                )
            self._advance()
        if self.outcome is None:
            self._fail("the round did not end after delivering everything and advancing each phase")
        self._flush()  # stale packets after the end must be refused cleanly
        self._check_view()
        if self.outcome != "done" and not self.disturbed:
            # Liveness: a protection that refuses honest rounds is no protection at all (and
            # a check that always fires hides every other check behind it).
            self._fail(
                f"an honest round (no fault, crash, replay or deviation) did not finish: "
                f"{self.outcome}"
            )
        self._check_outcome()

    def _check_outcome(self) -> None:
        if self.outcome != "done":
            return
        result = self.server.result
        if not result.survivors:
            self._fail("the round finished without a single survivor: a sum of nothing")
        if not result.survivors <= set(self.clients):
            self._fail(f"survivors {sorted(result.survivors)} include clients never invited")
        if result.survivors & result.dropped:
            self._fail("a client is both a survivor and a dropout in the result")
        if self.tainted:
            return
        want = rounds.expected_sum(self.inputs, result.survivors, bits=self.bits)
        if not np.array_equal(result.aggregate, want):
            self._fail(
                f"the round finished with a wrong aggregate over survivors "
                f"{sorted(result.survivors)}: got {result.aggregate.tolist()[:8]}, expected "
                f"{want.tolist()[:8]} (no tampered or forged message was accepted)"
            )
        self._log(f"round done: exact sum of {sorted(result.survivors)}")


# ----------------------------------------------------------------------------- recorded old rounds
def _record_round(
    protocol: AggregationProtocol, inputs: dict[int, np.ndarray], round_id: int
) -> list[tuple[int, int, bytes]]:
    """Every frame of one honest round, as (src, dst, frame) with 0 = server."""
    clients = {
        c: protocol.client(round_id=round_id, client_id=c, value=v) for c, v in inputs.items()
    }
    dim = next(iter(inputs.values())).size
    server = protocol.server(round_id=round_id, client_ids=frozenset(inputs), dim=dim)
    parties = protocol.parties()
    frames: list[tuple[int, int, bytes]] = []
    requests = server.start()
    for _ in range(len(protocol.phases) + 1):
        if not requests:
            break
        for c, req in sorted(requests.items()):
            frames.append((SERVER, c, req))
            reply = (parties[c] if c in parties else clients[c]).handle(req)
            if reply is not None:
                frames.append((c, SERVER, reply))
                server.receive(c, reply)
        requests = server.advance()
    return frames


# ----------------------------------------------------------------------------- plaintext
@dataclass(frozen=True)
class PlainSpec:
    n: int
    bits: int
    dim: int
    seed: bytes


@st.composite
def plain_specs(draw: st.DrawFn) -> PlainSpec:
    """Plaintext rounds: 1-5 clients, any modulus, short vectors."""
    return PlainSpec(
        n=draw(st.integers(1, 5)),
        bits=draw(st.sampled_from([8, 16, 13, 32, 64])),
        dim=draw(st.integers(1, 6)),
        seed=draw(st.binary(min_size=32, max_size=32)),
    )


@lru_cache(maxsize=32)
def _old_plain(n: int, bits: int, dim: int) -> list[tuple[int, int, bytes]]:
    rng = rounds.derive(b"old", f"plain/{n}/{bits}/{dim}")
    inputs = rounds.random_inputs(rng, range(1, n + 1), bits=bits, dim=dim)
    return _record_round(rounds.plain_protocol(bits), inputs, rounds.ROUND_ID - 1)


class PlainAudit(_RoundMachine):
    """Plaintext baseline over an adversarial network (it protects nothing: only
    correctness, typed errors and session hygiene are audited)."""

    adversarial = True

    @initialize(spec=plain_specs(), faults=_FAULTS)
    @_tracked
    def setup(self, spec: PlainSpec, faults: int) -> None:
        self.faults = faults
        self.spec = spec
        inputs = rounds.random_inputs(
            rounds.derive(spec.seed, "inputs"),
            range(1, spec.n + 1),
            bits=spec.bits,
            dim=spec.dim,
        )
        self._start(rounds.plain_protocol(spec.bits), inputs)

    def _old_round(self) -> list[tuple[int, int, bytes]]:
        s = self.spec
        return _old_plain(s.n, s.bits, s.dim)


# ----------------------------------------------------------------------------- SecAgg
def secagg_specs(
    *, active: bool = False, sparse: bool = False
) -> st.SearchStrategy[rounds.SecAggSpec]:
    """SecAgg rounds: complete graph (3-6 clients) or SecAgg+ (6-8 clients, degree 2 or 4),
    any threshold the configuration accepts, several moduli, a coalition within the bound
    of the server's behaviour (see :class:`~secfl.audit._rounds.SecAggSpec`)."""

    @st.composite
    def build(draw: st.DrawFn) -> rounds.SecAggSpec:
        if sparse:
            n = draw(st.integers(6, 8))
            degree: int | None = draw(st.sampled_from([d for d in (2, 4) if d < n - 1]))
            holders = degree or n - 1
        else:
            n = draw(st.integers(4, 7) if active else st.integers(3, 6))
            degree, holders = None, n - 1
        low = (2 * holders) // 3 + 1 if active else holders // 2 + 1
        t = draw(st.integers(low, holders))
        bits = draw(st.sampled_from([16, 8, 13, 32, 64]))
        dim = rounds.mask_dim(bits, draw(st.integers(0, 2)))
        adversarial = active or (not sparse and draw(st.booleans()))
        cap = max(0, 2 * t - holders - 1) if adversarial else t - 1
        size = draw(st.integers(0, cap))
        coalition = tuple(sorted(draw(st.permutations(range(1, n + 1)))[:size]))
        return rounds.SecAggSpec(
            n=n,
            threshold=t,
            degree=degree,
            bits=bits,
            dim=dim,
            active=active,
            adversarial=adversarial,
            coalition=coalition,
            seed=draw(st.binary(min_size=32, max_size=32)),
        )

    return build()


@lru_cache(maxsize=32)
def _old_secagg(config: sa.SecAggConfig, dim: int) -> list[tuple[int, int, bytes]]:
    rng = rounds.derive(b"old", f"secagg/{config}/{dim}")
    inputs = rounds.random_inputs(rng, range(1, config.n_clients + 1), bits=config.bits, dim=dim)
    return _record_round(rounds.secagg_protocol(config, rng.spawn()), inputs, rounds.ROUND_ID - 1)


def _read_survivors(frame: bytes) -> tuple[int, list[int]]:
    """The count and listed neighbours of a SURVIVORS frame (secagg-v2), read leniently
    (forged lists included)."""
    r = wire.Reader(wire.unframe(frame)[1])
    r.u64()
    total = r.u32()
    return total, [r.u32() for _ in range(r.u32())]


def _survivors_frame(ids: list[int], to: int) -> bytes:
    """SURVIVORS for client ``to`` claiming the survivor list ``ids`` (which may omit
    ``to``, be short or unsorted: to_bytes writes any list): the count is len(ids), the
    listed ids are those other than ``to``."""
    listed = tuple(u for u in ids if u != to)
    return sm.Survivors(rounds.ROUND_ID, len(ids), listed).to_bytes()


_Envelope = tuple[int, bytes, bytes]  # (sender, envelope, its signature or b"")


def _envelopes(frame: bytes) -> list[_Envelope]:
    """SHARES or, in active mode, SIGNED_SHARES (secagg-v3) as (sender, envelope, sig)."""
    signed = _frame_type(frame) == sa.MSG_SIGNED_SHARES
    kind = sm.SignedShares if signed else sm.Shares
    msg = kind.from_bytes(frame, round_id=rounds.ROUND_ID, max_entries=1 << 16)
    sigs = msg.signatures if signed else (b"",) * len(msg.envelopes)
    return [(u, env, sig) for (u, env), sig in zip(msg.envelopes, sigs, strict=True)]


def _shares_frame(like: bytes, entries: list[_Envelope]) -> bytes:
    """``entries`` in a frame of the same type as ``like``."""
    envelopes = tuple((u, env) for u, env, _ in entries)
    if _frame_type(like) == sa.MSG_SIGNED_SHARES:
        return sm.SignedShares(rounds.ROUND_ID, envelopes, tuple(g for *_, g in entries)).to_bytes()
    return sm.Shares(rounds.ROUND_ID, envelopes).to_bytes()


def _mask_request(frame: bytes) -> tuple[int, ...]:
    return sm.MaskRequest.from_bytes(
        frame, round_id=rounds.ROUND_ID, max_clients=1 << 16
    ).neighbours


def _signatures(frame: bytes) -> list[tuple[int, bytes]]:
    msg = sm.Signatures.from_bytes(frame, round_id=rounds.ROUND_ID, max_entries=1 << 16)
    return list(msg.entries)


@dataclass(frozen=True)
class Deviation:
    """What a deviating SecAgg server does to the next requests of one kind it sends.

    ``kind``: ``split-view`` (one client gets a different, well-formed survivor list),
    ``forged-list`` (one client gets a survivor list its rules make it refuse: ``flaw``),
    ``withhold-envelope`` (one client's SHARES lacks one owner's envelope; active:
    SIGNED_SHARES, or its MASK_REQUEST leaves out one neighbour whose envelope it holds),
    ``substitute-key`` (active: a neighbour's key in one KEYS request is the server's own),
    ``reused-key`` (a neighbour's entry in one KEYS request reuses a public key of another
    neighbour or of the receiver itself), ``replayed-key`` (active: a neighbour's signed entry
    from the previous round), ``misrouted-envelope`` (one client's SHARES carries, under a
    neighbour's name, the envelope that neighbour addressed to someone else),
    ``forged-signatures`` (active: one client's SIGNATURES is ``flaw``\\ ed: too few, garbled,
    repeated, an outsider's, forged with the server's own key, or replayed from the previous
    round). ``which`` picks the client and the entry.
    """

    kind: str
    which: int
    flaw: str = ""


_LIST_FLAWS = ("omit-self", "too-short", "outsider", "unsorted", "no-shares")
_SIG_FLAWS = ("too-few", "garbled", "repeated", "outsider", "forged", "replayed")
_TARGETS = {
    "split-view": sa.MSG_SURVIVORS,
    "forged-list": sa.MSG_SURVIVORS,
    "withhold-envelope": sa.MSG_SHARES,
    "withhold-mask": sa.MSG_MASK_REQUEST,
    "mask-unheld": sa.MSG_MASK_REQUEST,
    "misrouted-envelope": sa.MSG_SHARES,
    "reused-key": sa.MSG_KEYS,
    "substitute-key": sa.MSG_KEYS,
    "replayed-key": sa.MSG_KEYS,
    "forged-signatures": sa.MSG_SIGNATURES,
}
# Forgeries an honest client must refuse whatever its mode: answering one fails the audit.
_MUST_REFUSE = ("reused", "replayed from round", "misrouted", "unheld")


def deviations(*, active: bool) -> st.SearchStrategy[Deviation]:
    """Deviations of a malicious SecAgg server (key and signature forgeries: active only)."""
    common = [
        st.builds(Deviation, st.just("split-view"), _PICK),
        st.builds(Deviation, st.just("forged-list"), _PICK, st.sampled_from(_LIST_FLAWS)),
        st.builds(Deviation, st.just("withhold-envelope"), _PICK),
        st.builds(Deviation, st.just("misrouted-envelope"), _PICK),
        st.builds(Deviation, st.just("reused-key"), _PICK),
    ]
    if active:
        common += [
            st.builds(Deviation, st.just("withhold-mask"), _PICK),
            st.builds(Deviation, st.just("mask-unheld"), _PICK),
            st.builds(Deviation, st.just("substitute-key"), _PICK),
            st.builds(Deviation, st.just("replayed-key"), _PICK),
            st.builds(
                Deviation,
                st.just("forged-signatures"),
                _PICK,
                st.sampled_from(_SIG_FLAWS),
            ),
        ]
    return st.one_of(common)


def _plans(*, active: bool) -> st.SearchStrategy[list[Deviation]]:
    # HBC: only adversarial specs use the plan, so it is never empty there. Active: an
    # empty plan sometimes, so that rounds also finish (active thresholds leave little
    # room for dropouts, and most deviations make their victim abort).
    return st.lists(deviations(active=active), min_size=0 if active else 1, max_size=3)


class _SecAggAudit(_RoundMachine):
    """Shared rules of the SecAgg machines (the subclasses choose the configurations)."""

    spec: rounds.SecAggSpec

    def _setup(self, spec: rounds.SecAggSpec, faults: int, plan: list[Deviation]) -> None:
        self.spec = spec
        self.adversarial = spec.adversarial
        self.faults = faults
        self.armed = list(plan) if spec.adversarial else []
        inputs = rounds.random_inputs(
            rounds.derive(spec.seed, "inputs"),
            spec.clients,
            bits=spec.bits,
            dim=spec.dim,
        )
        protocol = rounds.secagg_protocol(spec.config, rounds.derive(spec.seed, "protocol"))
        self._start(protocol, inputs, coalition=spec.coalition)

    def _old_round(self) -> list[tuple[int, int, bytes]]:
        return _old_secagg(self.spec.config, self.spec.dim)

    def _may_tamper_with(self, pkt: _Packet) -> bool:
        # A tampered SURVIVORS frame can be another valid list: a split view, which only
        # an adversarial schedule (with its smaller coalition) may contain.
        return self.adversarial or _frame_type(pkt.data) != sa.MSG_SURVIVORS

    def _neighbours(self, v: int) -> list[int]:
        """N(v) as client v was told (the KEYS request it answered, secagg-v2)."""
        for e in self.recorder.transcript.answered(sa.MSG_KEYS):
            if e.client == v:
                keys = sm.Keys.from_bytes(
                    e.request,
                    round_id=rounds.ROUND_ID,
                    max_clients=self.spec.n,
                    signed=self.spec.active,
                )
                return [k.client for k in keys.entries]
        return []

    def _held(self, v: int) -> set[int]:
        """Whose shares client v holds: the senders in the SHARES it answered or, in active
        mode (secagg-v3), the neighbours of the MASK_REQUEST it answered (before it, those
        of its SIGNED_SHARES: the ones it could not open are filtered at that request)."""
        held: set[int] = set()
        for t in (sa.MSG_SHARES, sa.MSG_SIGNED_SHARES, sa.MSG_MASK_REQUEST):
            for e in self.recorder.transcript.answered(t):
                if e.client == v and t == sa.MSG_MASK_REQUEST:
                    held = set(_mask_request(e.request))
                elif e.client == v:
                    held = {u for u, *_ in _envelopes(e.request)}
        return held

    def _requests_sent(self, out: dict[int, bytes]) -> None:
        # The server enforces the round's floors itself (secagg-v1 section 8): it never goes
        # on to a phase with fewer clients than the threshold or the survivor floor allows.
        if not out:
            return
        msg_type = _frame_type(next(iter(out.values())))
        config = self.spec.config
        floors = {
            sa.MSG_KEYS: config.threshold + 1,
            sa.MSG_SHARES: config.threshold + 1,
            sa.MSG_SIGNED_SHARES: config.threshold + 1,
            sa.MSG_MASK_REQUEST: config.threshold + 1,
            sa.MSG_SURVIVORS: config.survivors_floor,
            sa.MSG_SIGNATURES: config.survivors_floor,
        }
        floor = floors.get(msg_type or -1, 0)
        if len(out) < floor:
            self._fail(
                f"the server went on to {message_name(msg_type or 0)} with "
                f"{len(out)} clients; the round needs at least {floor}"
            )

    # ---- a deviating server
    def _deviate(self, packets: list[_Packet]) -> list[_Packet]:
        if not packets:
            return packets
        msg_type = _frame_type(packets[0].data)
        self._batch = list(packets)  # what the server sent to everyone (misrouted envelopes)
        if msg_type == sa.MSG_SIGNED_SHARES:  # active (secagg-v3): SHARES is signed
            msg_type = sa.MSG_SHARES
        for plan in [p for p in self.armed if _TARGETS[p.kind] == msg_type]:
            self.armed.remove(plan)
            for k in range(len(packets)):  # the first client, from `which` on, it applies to
                i = (plan.which + k) % len(packets)
                forged = self._forge(plan, packets[i])
                if forged is not None:
                    packets[i] = forged
                    self._log(f"the server sends {forged.describe()}")
                    break
        return packets

    def _forge(self, plan: Deviation, pkt: _Packet) -> _Packet | None:
        v, t = pkt.dst, self.spec.threshold
        if plan.kind == "split-view":
            total, listed = _read_survivors(pkt.data)
            toggles = self._neighbours(v)
            if not toggles:
                return None
            flip = toggles[plan.which % len(toggles)]
            other = sorted(set(listed) ^ {flip})
            count = total + (1 if flip in other else -1)
            # A different well-formed list: within what the spec says stays private.
            data = sm.Survivors(rounds.ROUND_ID, count, tuple(other)).to_bytes()
            return replace(pkt, data=data, forged=f"split view {other}, others {listed}")
        if plan.kind == "forged-list":
            others = self._neighbours(v)
            base = [*others[:t], v]
            if plan.flaw == "omit-self":  # a count that leaves the client itself out
                data = sm.Survivors(rounds.ROUND_ID, len(others), tuple(others)).to_bytes()
                return replace(
                    pkt, data=data, forged=f"omit-self survivor count {others}", taints=True
                )
            if plan.flaw == "too-short":
                ids = sorted(base[-t:])
            elif plan.flaw == "outsider":
                ids = sorted({*base, max([*others, v, self.spec.n]) + 1})
            elif plan.flaw == "unsorted":
                ids = sorted(base, reverse=True)
            else:  # no-shares: a listed neighbour whose envelope never reached v
                missing = [u for u in others if u not in self._held(v)]
                if not missing:
                    return None
                ids = sorted({*base, missing[0]})
            data = _survivors_frame(ids, v)  # to_bytes writes even an unsorted list
            return replace(pkt, data=data, forged=f"{plan.flaw} survivor list {ids}", taints=True)
        if plan.kind == "withhold-envelope":
            entries = _envelopes(pkt.data)
            if len(entries) <= t:  # the client would refuse for too few holders: pointless
                return None
            gone, *_ = entries.pop(plan.which % len(entries))
            return replace(
                pkt,
                data=_shares_frame(pkt.data, entries),
                forged=f"client {gone}'s envelope withheld",
                taints=True,
            )
        if plan.kind in ("withhold-mask", "mask-unheld"):
            names = list(_mask_request(pkt.data))
            if plan.kind == "withhold-mask":  # mask with one held neighbour fewer
                if len(names) <= t:
                    return None
                gone = names.pop(plan.which % len(names))
                how = f"client {gone} left out of the mask request"
            else:  # a neighbour whose shares it does not hold (withheld or complained
                # of) or, if it holds every neighbour's, a client that is none of them
                unheld = sorted(set(self._neighbours(v)) - self._held(v) - set(names))
                unheld = unheld or [max([self.spec.n, v, *names]) + 1]
                names = sorted([*names, unheld[plan.which % len(unheld)]])
                how = f"mask request naming unheld client {names}"
            data = sm.MaskRequest(rounds.ROUND_ID, tuple(names)).to_bytes()
            return replace(pkt, data=data, forged=how, taints=True)
        if plan.kind == "misrouted-envelope":
            return self._misroute(plan, pkt)
        if plan.kind in ("substitute-key", "reused-key", "replayed-key"):
            return self._substitute_key(plan, pkt)
        return self._forge_signatures(plan, pkt)

    def _misroute(self, plan: Deviation, pkt: _Packet) -> _Packet | None:
        v = pkt.dst
        mine = _envelopes(pkt.data)
        if not mine:
            return None
        i = plan.which % len(mine)
        u = mine[i][0]
        for other in self._batch:  # u's envelope to another client w (with u's signature)
            if other.dst == v:
                continue
            theirs = {s: (s, env, sig) for s, env, sig in _envelopes(other.data)}
            if u in theirs:
                mine[i] = theirs[u]
                return replace(
                    pkt,
                    data=_shares_frame(pkt.data, mine),
                    forged=f"misrouted envelope: client {u}'s envelope to client {other.dst}",
                    taints=True,
                )
        return None

    def _substitute_key(self, plan: Deviation, pkt: _Packet) -> _Packet | None:
        keys = sm.Keys.from_bytes(
            pkt.data,
            round_id=rounds.ROUND_ID,
            max_clients=self.spec.n,
            signed=self.spec.active,
        )
        if not keys.entries:
            return None
        i = plan.which % len(keys.entries)
        victim = keys.entries[i].client
        entries = list(keys.entries)
        if plan.kind == "reused-key":
            own = [
                sm.Advertise.from_bytes(f, round_id=rounds.ROUND_ID, signed=self.spec.active)
                for c, f in self.recorder.transcript.emitted(sa.MSG_ADVERTISE)
                if c == pkt.dst
            ]
            donors = [(e.c_pk, e.s_pk) for e in entries if e.client != victim]
            donors += [(a.c_pk, a.s_pk) for a in own[:1]]
            c_pk, s_pk = donors[(plan.which // 2) % len(donors)]
            if plan.which % 2:
                entries[i] = replace(entries[i], s_pk=s_pk)
            else:
                entries[i] = replace(entries[i], c_pk=c_pk)
            what = f"client {victim}'s entry reused a key of another party"
        elif plan.kind == "replayed-key":
            old = [
                e
                for src, dst, frame in self._old_round()
                if src == SERVER and _frame_type(frame) == sa.MSG_KEYS
                for e in sm.Keys.from_bytes(
                    frame,
                    round_id=rounds.ROUND_ID - 1,
                    max_clients=self.spec.n,
                    signed=True,
                ).entries
                if e.client == victim
            ]
            if not old:
                return None
            entries[i] = old[0]
            what = f"client {victim}'s signed keys replayed from round {rounds.ROUND_ID - 1}"
        else:
            rogue = KexPrivateKey.generate(rng=rounds.derive(self.spec.seed, f"rogue/{plan.which}"))
            entries[i] = replace(entries[i], c_pk=rogue.public_key().to_bytes())
            what = f"client {victim}'s channel key substituted"
        return replace(
            pkt,
            data=replace(keys, entries=tuple(entries)).to_bytes(),
            forged=what,
            taints=True,
        )

    def _forge_signatures(self, plan: Deviation, pkt: _Packet) -> _Packet | None:
        sigs = _signatures(pkt.data)
        if not sigs:
            return None
        if plan.flaw == "too-few":
            sigs = sigs[: self.spec.threshold]
        elif plan.flaw == "garbled":
            v, sig = sigs[-1]
            sigs[-1] = (v, sig[:-1] + bytes([sig[-1] ^ 1]))
        elif plan.flaw == "repeated":
            sigs = [*sigs, sigs[0]]
        elif plan.flaw == "forged":  # the server signs the list in a survivor's name
            listed = [
                sorted({*_read_survivors(e.request)[1], pkt.dst})
                for e in self.recorder.transcript.answered(sa.MSG_SURVIVORS)
                if e.client == pkt.dst
            ]
            rogue = SigningKey.generate(rng=rounds.derive(self.spec.seed, "rogue-signer"))
            v, _ = sigs[plan.which % len(sigs)]
            message = sa._survivors_message(rounds.ROUND_ID, listed[0] if listed else [])
            sigs = [(w, rogue.sign(message) if w == v else sig) for w, sig in sigs]
        elif plan.flaw == "replayed":  # the signers' signatures of the previous round
            old: dict[int, bytes] = {}
            for src, _, frame in self._old_round():
                if src == SERVER and _frame_type(frame) == sa.MSG_SIGNATURES:
                    old.update(
                        sm.Signatures.from_bytes(
                            frame, round_id=rounds.ROUND_ID - 1, max_entries=self.spec.n
                        ).entries
                    )
            sigs = [(w, old.get(w, sig)) for w, sig in sigs]
        else:
            sigs = [*sigs, (self.spec.n + 1, sigs[0][1])]
        return replace(
            pkt,
            data=sm.Signatures(rounds.ROUND_ID, tuple(sigs)).to_bytes(),
            forged=f"{plan.flaw} signatures",
            taints=True,
        )

    @rule(to=_PICK)
    @precondition(lambda self: self.adversarial)
    @_tracked
    def ask_to_unmask_again(self, to: int) -> None:
        """Ask a client that already revealed its shares to reveal them again."""
        done = sorted(c for c, s in self.clients.items() if s.phase == sa.DONE)
        if not done:
            return
        v = done[to % len(done)]
        frame = _survivors_frame([*self._neighbours(v), v], v)
        if self.spec.active:
            frame = sm.Signatures(rounds.ROUND_ID, ()).to_bytes()
        pkt = _Packet(SERVER, v, frame, forged="second unmasking request", taints=True)
        self._log(f"the server sends {pkt.describe()}")
        self._deliver(pkt)

    def _accepted_forgery(self, pkt: _Packet) -> None:
        if not pkt.forged:
            return
        if _frame_type(pkt.data) == sa.MSG_KEYS and self.spec.active:
            self._fail(f"client {pkt.dst} accepted a KEYS request with {pkt.forged}")
        if any(word in pkt.forged for word in _MUST_REFUSE):
            self._fail(f"client {pkt.dst} accepted a request with {pkt.forged}")


class SecAggHbcAudit(_SecAggAudit):
    """SecAgg, complete graph, honest-but-curious mode: an honest server (coalition up to
    t - 1 clients) or a deviating one that follows ``plan`` (coalition up to 2t - n), over
    a faulty network."""

    @initialize(spec=secagg_specs(), faults=_FAULTS, plan=_plans(active=False))
    @_tracked
    def setup(self, spec: rounds.SecAggSpec, faults: int, plan: list[Deviation]) -> None:
        self._setup(spec, faults, plan)


class SecAggPlusAudit(_SecAggAudit):
    """SecAgg+ (sparse Harary graph), honest-but-curious server, faulty network, coalition
    up to t - 1 clients. (A deviating server is out of scope: secagg-v1 section 12 item 1.)"""

    @initialize(spec=secagg_specs(sparse=True), faults=_FAULTS)
    @_tracked
    def setup(self, spec: rounds.SecAggSpec, faults: int) -> None:
        self._setup(spec, faults, [])


class SecAggActiveAudit(_SecAggAudit):
    """SecAgg, complete graph, active mode: a deviating server that follows ``plan``, which
    may also substitute keys and forge the consistency signatures (coalition up to
    2t - n)."""

    @initialize(spec=secagg_specs(active=True), faults=_FAULTS, plan=_plans(active=True))
    @_tracked
    def setup(self, spec: rounds.SecAggSpec, faults: int, plan: list[Deviation]) -> None:
        self._setup(spec, faults, plan)


# ----------------------------------------------------------------------------- Paillier
@st.composite
def paillier_specs(draw: st.DrawFn) -> rounds.PaillierSpec:
    """Paillier rounds under the 1024-bit test key: 2-5 clients, several rings."""
    n = draw(st.integers(2, 5))
    bits = draw(st.sampled_from([16, 8, 32]))
    return rounds.PaillierSpec(
        n=n,
        bits=bits,
        value_bits=draw(st.integers(2, bits)),
        min_clients=draw(st.integers(2, n)),
        dim=draw(st.integers(1, 70)),
        seed=draw(st.binary(min_size=32, max_size=32)),
    )


@lru_cache(maxsize=32)
def _old_paillier(spec: rounds.PaillierSpec) -> list[tuple[int, int, bytes]]:
    rng = rounds.derive(b"old", f"paillier/{spec.n}/{spec.bits}/{spec.value_bits}/{spec.dim}")
    config = spec.config
    holder = rounds.paillier_holder(config)
    protocol = rounds.PaillierProtocol(config, key_holder=holder, rng=rng.spawn())
    return _record_round(protocol, rounds.paillier_inputs(spec, rng), rounds.ROUND_ID - 1)


class PaillierAudit(_RoundMachine):
    """Packed Paillier with an honest key holder and an aggregator that deviates: replays,
    names another key, asks for a second decryption or for one client's ciphertext."""

    adversarial = True

    @initialize(spec=paillier_specs(), faults=_FAULTS, lies=_LIES)
    @_tracked
    def setup(self, spec: rounds.PaillierSpec, faults: int, lies: int) -> None:
        self.faults, self.lies = faults, lies
        self.spec = spec
        config = spec.config
        protocol = rounds.PaillierProtocol(
            config,
            key_holder=rounds.paillier_holder(config),
            rng=rounds.derive(spec.seed, "protocol"),
        )
        inputs = rounds.paillier_inputs(spec, rounds.derive(spec.seed, "inputs"))
        self._start(protocol, inputs)
        self.decrypt = self.protocol.parties()[KEY_HOLDER].handle  # recorded

    def _old_round(self) -> list[tuple[int, int, bytes]]:
        return _old_paillier(replace(self.spec, seed=b""))

    def _requests_sent(self, out: dict[int, bytes]) -> None:
        # The aggregator enforces min_clients itself (paillier-sum-v1): it never asks the key
        # holder to decrypt a sum of fewer inputs (the key holder would refuse too).
        for frame in out.values():
            if _frame_type(frame) == pl.MSG_ENCRYPTED_SUM:
                n_summed = pm.EncryptedSum.from_bytes(frame).n_summed
                if n_summed < self.spec.min_clients:
                    self._fail(
                        f"the aggregator asked to decrypt a sum of {n_summed} inputs; "
                        f"min_clients = {self.spec.min_clients}"
                    )

    @rule(pick=_PICK, byte=st.integers(0, 15))
    @precondition(
        lambda self: (
            self.lies > 0 and any(_frame_type(p.data) == pl.MSG_REQUEST for p in self.queue)
        )
    )
    @_tracked
    def name_another_key(self, pick: int, byte: int) -> None:
        """Rewrite the key fingerprint in a request (the aggregator substitutes a key)."""
        self.lies -= 1
        idx = [
            i
            for i, p in enumerate(self.queue)
            if not p.forged and _frame_type(p.data) == pl.MSG_REQUEST
        ]
        if not idx:
            return
        i = idx[pick % len(idx)]
        pkt = self.queue[i]
        request = pm.Request.from_bytes(pkt.data)
        fingerprint = bytearray(request.fingerprint)
        fingerprint[byte] ^= 0xFF
        data = replace(request, fingerprint=bytes(fingerprint)).to_bytes()
        self.queue[i] = replace(pkt, data=data, forged="another key's fingerprint", taints=True)
        self._log(f"aggregator names another public key to client {pkt.dst}")

    def _accepted_forgery(self, pkt: _Packet) -> None:
        if pkt.forged == "another key's fingerprint":
            self._fail(f"client {pkt.dst} encrypted under a key the request named falsely")

    @rule()
    @precondition(lambda self: bool(self.recorder.transcript.decryptions))
    @_tracked
    def decrypt_again(self) -> None:
        """Ask the key holder to decrypt an already decrypted round once more."""
        self.disturbed = True
        request = self.recorder.transcript.decryptions[0].request
        try:
            self.decrypt(request)
        except SecflError as e:
            self._log(f"key holder refuses a second decryption ({type(e).__name__})")
            return
        self._log("key holder decrypted a round twice")

    @rule(which=_PICK)
    @precondition(lambda self: bool(self.recorder.transcript.emitted(pl.MSG_INPUT)))
    @_tracked
    def decrypt_one_input(self, which: int) -> None:
        """Ask the key holder to decrypt one client's ciphertext as a 'sum of 1'."""
        self.disturbed = True
        sent = self.recorder.transcript.emitted(pl.MSG_INPUT)
        c, frame = sent[which % len(sent)]
        size = len(wire.unframe(frame)[1]) - 8  # all of the body after the round id
        raw = pm.Input.from_bytes(frame, size=size).ciphertexts
        forged = pm.EncryptedSum(rounds.ROUND_ID + 1 + which, 1, self.spec.dim, raw)
        try:
            self.decrypt(forged.to_bytes())
        except SecflError as e:
            self._log(f"key holder refuses to decrypt client {c}'s input ({type(e).__name__})")
            return
        self._log(f"key holder decrypted client {c}'s input")
