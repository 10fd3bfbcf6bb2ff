"""Empirical privacy audit: canary clients, the server's view, a lower bound on epsilon.

Behind ``secfl audit --privacy``. ``canaries`` clients take part in every one of ``rounds``
rounds of the real chain (:class:`~secfl.pipeline.Pipeline` on the client, the protocol of
:func:`~secfl.pipeline.build_protocol` run by the in-memory simulator, the pipeline's
server side, and for the central Gaussian the :class:`~secfl.dp.GaussianMechanism` added to
the decoded sum). Canary i owns coordinate i of the update: it is *in* with probability 1/2
(drawn by the audit) and then sends ``clip_bound * e_i`` every round, else it sends a zero
update (the zero-out neighbour: it still adds its noise share, as the accountant assumes).
What the server sees is each round's decoded aggregate; canary i's score is the sum over
rounds of that aggregate's inner product with e_i. :func:`~secfl.audit.one_run.score_guesses`
turns the scores into guesses and the guesses into a lower bound on epsilon (Steinke, Nasr,
Jagielski 2023), which must not exceed the epsilon the accountant reports for a canary's
participation (every round). A lower bound above it proves, at the stated confidence, that
the noise actually added is less than what was accounted for.
"""

from __future__ import annotations

import enum
import hashlib
import math
import secrets
import shlex
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from secfl.audit._errors import AuditFailure, Violation
from secfl.audit.one_run import GuessOutcome, score_guesses
from secfl.dp.accounting import (
    AccountingMethod,
    DpEvent,
    GaussianEvent,
    Neighboring,
    ledger_epsilon,
)
from secfl.dp.mechanisms import GaussianMechanism, Placement
from secfl.errors import InvalidArgument, ProtocolAbort
from secfl.hazmat.rng import Csprng
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, PipelineConfig, build_protocol
from secfl.protocols.base import ProtocolName
from secfl.runtime.simulator import simulate_round

__all__ = [
    "AUDITED_PROTOCOLS",
    "PrivacyAuditConfig",
    "PrivacyAuditReport",
    "PrivacyMechanism",
    "run_privacy_audit",
]

AUDITED_PROTOCOLS: tuple[str, ...] = (
    ProtocolName.PLAIN,
    ProtocolName.SECAGG,
    ProtocolName.SECAGG_PLUS,
)
"""Protocols the privacy audit drives (Paillier releases the same sum; it needs keys)."""

_SEED_RANGE = 2**32
_RNG_LABEL = b"secfl privacy audit v1"


class PrivacyMechanism(enum.Enum):
    """The noise whose accounting the audit checks."""

    GAUSSIAN = "gaussian"
    """Central Gaussian: the server adds N(0, (z C)^2) to the decoded sum."""
    DDG = "ddg"
    """Distributed discrete Gaussian: every client adds a share (needs secagg / secagg+)."""
    SKELLAM = "skellam"
    """Distributed Skellam: every client adds a share (needs secagg / secagg+)."""


@dataclass(frozen=True, kw_only=True)
class PrivacyAuditConfig:
    """What to audit and with how many canaries; validated at construction.

    ``canaries`` is also the update's length (each canary owns a coordinate) and the number
    of clients per round; ``rounds``: every canary takes part in each. ``delta``: the delta
    of both the lower bound and the accounted epsilon; ``confidence``: of the lower bound.
    """

    mechanism: PrivacyMechanism = PrivacyMechanism.DDG
    noise_multiplier: float = 1.0
    canaries: int = 256
    rounds: int = 4
    protocol: str = ProtocolName.SECAGG_PLUS
    bits: int = 32
    clip_bound: float = 1.0
    delta: float = 1e-5
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not isinstance(self.mechanism, PrivacyMechanism):
            raise InvalidArgument(
                f"mechanism must be a PrivacyMechanism, got {self.mechanism!r}: one of "
                f"{[m.value for m in PrivacyMechanism]}"
            )
        z = self.noise_multiplier
        if (
            isinstance(z, bool)
            or not isinstance(z, int | float)
            or not (math.isfinite(z) and z > 0)
        ):
            raise InvalidArgument(f"noise_multiplier must be a number > 0, got {z!r}")
        for name, low in (("canaries", 4), ("rounds", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgument(f"{name} must be an int >= {low}, got {value!r}")
        if self.protocol not in AUDITED_PROTOCOLS:
            raise InvalidArgument(
                f"the privacy audit drives protocols {list(AUDITED_PROTOCOLS)}, not "
                f"{self.protocol!r} (Paillier releases the same sum as SecAgg)"
            )
        if self.mechanism is not PrivacyMechanism.GAUSSIAN and self.protocol == ProtocolName.PLAIN:
            raise InvalidArgument(
                f"distributed DP ({self.mechanism.value}) needs a secure protocol: choose "
                "secagg or secagg+ (plain shows the server each client's lightly noised update)"
            )
        if not 0 < self.delta < 1:
            raise InvalidArgument(f"delta must be in (0, 1), got {self.delta!r}")
        if not 0 < self.confidence < 1:
            raise InvalidArgument(
                f"confidence must be in (0, 1), e.g. 0.95, got {self.confidence!r}"
            )
        # The pipeline validates bits and clip_bound (and that the plan fits the ring).
        PipelineConfig(protocol=self.protocol, bits=self.bits, clip_bound=self.clip_bound)


@dataclass(frozen=True)
class PrivacyAuditReport:
    """The outcome of :func:`run_privacy_audit`.

    ``lower_bound``: the empirical epsilon lower bound at ``delta``, valid with probability
    ``confidence``; ``accounted_epsilon``: the tightest epsilon secfl accounts at ``delta``
    for a canary's participation in every round (``accounting``: PLD or RDP, the smaller).
    ``passed`` iff the lower bound does not exceed it. ``outcome``: the guesses behind the
    bound.
    """

    config: PrivacyAuditConfig
    outcome: GuessOutcome
    accounted_epsilon: float
    accounting: AccountingMethod
    included: int
    seed: int
    seed_drawn: bool
    seconds: float

    @property
    def lower_bound(self) -> float:
        return self.outcome.lower_bound

    @property
    def passed(self) -> bool:
        return self.lower_bound <= self.accounted_epsilon

    @property
    def verdict(self) -> str:
        return "consistent" if self.passed else "VIOLATION"

    @property
    def replay_command(self) -> str:
        """The ``secfl audit --privacy`` command line that reruns this audit exactly."""
        c = self.config
        words = ["secfl", "audit", "--privacy", "--mechanism", c.mechanism.value]
        words += ["--noise-multiplier", repr(c.noise_multiplier), "--canaries", str(c.canaries)]
        words += ["--rounds", str(c.rounds), "--protocol", c.protocol]
        if c.bits != PrivacyAuditConfig.bits:
            words += ["--bits", str(c.bits)]
        if c.clip_bound != PrivacyAuditConfig.clip_bound:
            words += ["--clip-bound", repr(c.clip_bound)]
        words += ["--delta", repr(c.delta), "--confidence", repr(c.confidence)]
        words += ["--seed", str(self.seed)]
        return shlex.join(words)

    def check(self) -> None:
        """Raise :class:`~secfl.audit.AuditFailure` (rule ``privacy-lower-bound``) if the
        lower bound exceeds the accounted epsilon."""
        if not self.passed:
            raise AuditFailure(
                [
                    Violation(
                        "privacy-lower-bound",
                        f"the empirical lower bound epsilon >= {self.lower_bound:.4g} "
                        f"(confidence {self.config.confidence:g}, delta {self.config.delta:g}) "
                        f"exceeds the accounted epsilon {self.accounted_epsilon:.4g}: the noise "
                        "the server's view carries is less than what was accounted for",
                    )
                ]
            )

    def to_json(self) -> dict[str, Any]:
        c, o = self.config, self.outcome
        return {
            "mechanism": c.mechanism.value,
            "protocol": c.protocol,
            "noise_multiplier": c.noise_multiplier,
            "lower_bound": o.lower_bound,
            "accounted_epsilon": self.accounted_epsilon,
            "accounting": self.accounting.value,
            "delta": c.delta,
            "confidence": c.confidence,
            "canaries": c.canaries,
            "included": self.included,
            "rounds": c.rounds,
            "guesses": o.guesses,
            "correct": o.correct,
            "bits": c.bits,
            "clip_bound": c.clip_bound,
            "relation": "zero-out",
            "verdict": self.verdict,
            "passed": self.passed,
            "seed": self.seed,
            "seed_drawn": self.seed_drawn,
            "replay": self.replay_command,
            "seconds": round(self.seconds, 3),
        }

    def format_text(self) -> str:
        c, o = self.config, self.outcome
        seed = f"{self.seed}, drawn" if self.seed_drawn else str(self.seed)
        rows = [
            ("mechanism", c.mechanism.value),
            ("protocol", c.protocol),
            ("noise_multiplier", f"{c.noise_multiplier:g}"),
            ("lower_bound", f"{o.lower_bound:.4f}"),
            ("accounted_epsilon", f"{self.accounted_epsilon:.4f} ({self.accounting.value})"),
            ("delta", f"{c.delta:g}"),
            ("confidence", f"{c.confidence:g}"),
            ("canaries", f"{c.canaries} ({self.included} in)"),
            ("rounds", str(c.rounds)),
            ("guesses", f"{o.guesses} ({o.correct} correct)"),
            ("relation", "zero-out (an out canary sends a zero update)"),
            ("verdict", self.verdict),
        ]
        lines = [f"{k:18s} {v}" for k, v in rows]
        lines.append("")
        lines.append(
            f"secfl audit --privacy: {self.verdict} in {self.seconds:.1f} s (seed {seed}); "
            f"epsilon >= {o.lower_bound:.3f} with confidence {c.confidence:g}, "
            f"accounted {self.accounted_epsilon:.3f}"
        )
        lines.append(f"replay: {self.replay_command}")
        return "\n".join(lines)


def _audit_rng(seed: int) -> Csprng:
    return Csprng(seed=hashlib.sha256(_RNG_LABEL + seed.to_bytes(8, "big")).digest())


def run_privacy_audit(
    config: PrivacyAuditConfig | None = None, *, seed: int | None = None
) -> PrivacyAuditReport:
    """Run ``config.rounds`` rounds with canary clients and report the empirical lower
    bound on epsilon next to the accounted one (it does not raise on a violation: call
    :meth:`PrivacyAuditReport.check`, or read ``passed``).

    ``seed``: every random choice of the run (which canaries are in, the rotation, the
    noise, the rounding, the protocol's secrets) comes from a :class:`Csprng` derived from
    it; ``None`` draws one and reports it (``seed_drawn``). An audit seed is never a
    production seed: whoever knows it can recompute every mask and noise draw.
    """
    config = PrivacyAuditConfig() if config is None else config
    if not isinstance(config, PrivacyAuditConfig):
        raise InvalidArgument(f"config must be a PrivacyAuditConfig, got {config!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidArgument(f"seed must be None or an integer >= 0, got {seed!r}")
    seed_drawn = seed is None
    if seed is None:
        seed = secrets.randbelow(_SEED_RANGE)
    started = time.perf_counter()
    rng = _audit_rng(seed)
    m, c = config.canaries, config.clip_bound
    included = (rng.uint64(m) & np.uint64(1)).astype(bool)

    central = config.mechanism is PrivacyMechanism.GAUSSIAN
    dp = None
    if not central:
        dp = DistributedDP(
            mechanism=DPMechanism(config.mechanism.value),
            noise_multiplier=config.noise_multiplier,
            delta=config.delta,
        )
    pipe_cfg = PipelineConfig(protocol=config.protocol, clip_bound=c, bits=config.bits, dp=dp)
    pipeline = Pipeline(pipe_cfg, n_clients=m, dim=m, rng=rng)
    server_noise = GaussianMechanism(
        noise_multiplier=config.noise_multiplier, clip_bound=c, placement=Placement.CENTRAL
    )
    updates = np.zeros((m, m))
    updates[np.flatnonzero(included), np.flatnonzero(included)] = c  # canary i: c * e_i
    # The experiment is zero-out (an out canary sends zeros and keeps its noise share): the
    # distributed mechanisms are held to their zero-out epsilon, the tightest that applies,
    # by the tightest method (PLD where it has the events).
    relation = Neighboring.ADD_OR_REMOVE_ONE if central else Neighboring.ZERO_OUT
    ledger: list[tuple[DpEvent, int]] = []
    scores = np.zeros(m)
    for round_id in range(1, config.rounds + 1):
        inputs = {i + 1: pipeline.client_side(updates[i], rng=rng).encoded for i in range(m)}
        protocol = build_protocol(pipeline, rng=rng)
        report = simulate_round(protocol, inputs, round_id=round_id, codec=pipeline.codec)
        if report.result is None or len(report.result.survivors) != m:
            raise ProtocolAbort(
                f"privacy audit round {round_id} did not sum every canary "
                f"({report.aborted or 'clients missing'}); the audit needs complete rounds"
            )
        aggregate = pipeline.server_side(report.result.aggregate)
        if central:
            aggregate = server_noise.add_noise(aggregate, rng=rng)
            ledger.append((GaussianEvent(config.noise_multiplier), 1))
        else:
            event = pipeline.dp_event(survivors=m)
            assert event is not None
            ledger.append((event, 1))
        scores += aggregate[:m]  # <aggregate, e_i> for every canary i
    outcome = score_guesses(scores, included, delta=config.delta, confidence=config.confidence)
    accounted, method = ledger_epsilon(ledger, delta=config.delta, neighboring=relation)
    return PrivacyAuditReport(
        config=config,
        outcome=outcome,
        accounted_epsilon=accounted,
        accounting=method,
        included=int(included.sum()),
        seed=seed,
        seed_drawn=seed_drawn,
        seconds=time.perf_counter() - started,
    )
