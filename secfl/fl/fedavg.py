"""Federated averaging (McMahan et al. 2017) with secure aggregation of the updates.

Each round: sample clients (a fixed count, or each with probability q: Poisson sampling,
the rate a privacy accountant needs), let each train locally from the global parameters,
clip and encode its update (new - global) through the :class:`~secfl.pipeline.Pipeline`,
aggregate with the chosen protocol in the in-memory runtime (with simulated dropouts), and
apply the average to the global parameters (server learning rate and momentum optional).
A round that aborts (too few survivors, a refusal) is recorded and leaves the global
parameters exactly as they were.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from secfl._text import plural
from secfl.dp.accounting import (
    AccountingMethod,
    DpEvent,
    Neighboring,
    RdpAccountant,
    noise_multiplier_for_epsilon,
)
from secfl.dp.clipping import AdaptiveClipConfig, AdaptiveClipper
from secfl.errors import InvalidArgument, SecflError
from secfl.fl.round import (
    RoundCore,
    RoundShape,
    Weighting,
    accounting_relation,
    encode_update,
    poisson_sampled,
    zero_contribution,
)
from secfl.hazmat.rng import Csprng
from secfl.paillier_keys import PaillierPrivateKey
from secfl.pipeline import (
    SECAGG_PLUS_CORRUPT,
    Pipeline,
    PipelineConfig,
    build_protocol,
    provisioned_survivors,
)
from secfl.protocols.base import AggregationProtocol, ProtocolName
from secfl.protocols.secagg import SecAggPhase, ThreatModel
from secfl.runtime.simulator import SimulationReport, simulate_round

__all__ = ["FedAvgConfig", "FederatedAveraging", "LocalUpdate", "RoundRecord", "Weighting"]

LocalUpdate = Callable[[int, np.ndarray], tuple[np.ndarray, int]]
"""``(client index, global parameters) -> (new local parameters, number of examples)``."""

Evaluate = Callable[[np.ndarray], Mapping[str, float]]


@dataclass(frozen=True)
class FedAvgConfig:
    """Options of a federated run (validated at construction).

    ``pipeline`` holds the protocol and the numeric chain (clip bound, ring, Paillier key
    size, distributed DP); the other fields say how rounds sample, weight, tolerate dropouts
    and move the global model.
    """

    rounds: int
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    clients_per_round: int | None = None
    sampling_rate: float | None = None
    weighting: Weighting = Weighting.UNIFORM
    example_cap: int = 1000
    server_lr: float = 1.0
    server_momentum: float = 0.0
    dropout: float = 0.0
    """The fraction of a round's clients the round tolerates losing (the protocol's survivor
    floor and SecAgg threshold are planned for it); without ``simulated_dropout`` the
    simulator also drops exactly floor(dropout * n) of each round's n clients."""
    simulated_dropout: float | None = None
    """The simulator drops each sampled client independently with this probability, at
    most ``dropout`` (with distributed DP a round where more than the tolerance drop
    aborts). Needed with ``dropout`` under add/remove-one DP: with a fixed count, one
    client's presence changes who else drops (distributed-dp-v1 section 10.5); and small
    enough that a round lost to dropouts is as unlikely as one above ``max_cohort``
    (FedAvg says how small)."""
    target_epsilon: float | None = None
    """Solve the noise multiplier so that ``rounds`` rounds cost at most this epsilon at
    ``pipeline.dp.delta`` (give ``DistributedDP(noise_multiplier=None)``)."""
    adaptive_clip: AdaptiveClipConfig | None = None
    """Adapt the clip bound each round (Andrew et al. 2021); ``pipeline.clip_bound`` is then
    unused. Each client's clipped-or-not bit travels inside the secure sum (and its noise)."""

    def __post_init__(self) -> None:
        for name in ("rounds", "example_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgument(f"{name} must be a whole number, got {value!r}")
        if self.clients_per_round is not None and (
            isinstance(self.clients_per_round, bool) or not isinstance(self.clients_per_round, int)
        ):
            raise InvalidArgument(
                f"clients_per_round must be a whole number, got {self.clients_per_round!r}"
            )
        if self.rounds < 1:
            raise InvalidArgument(f"rounds must be >= 1, got {self.rounds}")
        if not isinstance(self.pipeline, PipelineConfig):
            raise InvalidArgument(
                "pipeline must be a PipelineConfig, e.g. pipeline=PipelineConfig("
                f"protocol='secagg+', clip_bound=1.0), got {self.pipeline!r}"
            )
        if self.pipeline.threat_model is ThreatModel.ACTIVE:
            raise InvalidArgument(
                "FederatedAveraging runs every client in one process, so the active threat "
                "model's signatures would prove nothing here: keep the pipeline's default "
                "threat_model=ThreatModel.HONEST_BUT_CURIOUS (deploy with Flower's "
                "SecureAggregation and a registry for ThreatModel.ACTIVE)"
            )
        if self.clients_per_round is not None and self.sampling_rate is not None:
            raise InvalidArgument("give clients_per_round or sampling_rate, not both")
        if self.clients_per_round is not None and self.clients_per_round < 2:
            raise InvalidArgument("clients_per_round must be >= 2 (a sum of one is no secret)")
        if self.sampling_rate is not None and not 0.0 < self.sampling_rate <= 1.0:
            raise InvalidArgument(f"sampling_rate must be in (0, 1], got {self.sampling_rate}")
        if not isinstance(self.weighting, Weighting):
            raise InvalidArgument(f"weighting must be a Weighting, got {self.weighting!r}")
        if self.example_cap < 1:
            raise InvalidArgument(f"example_cap must be >= 1, got {self.example_cap}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidArgument(f"dropout must be in [0, 1), got {self.dropout}")
        p = self.simulated_dropout
        if p is not None and not (
            isinstance(p, int | float) and not isinstance(p, bool) and 0.0 <= p <= self.dropout
        ):
            raise InvalidArgument(
                f"simulated_dropout must be a number in [0, dropout={self.dropout}] (the "
                f"protocol is planned to tolerate losing dropout of a round), got {p!r}"
            )
        dp = self.pipeline.dp
        if self.target_epsilon is not None:
            if not (isinstance(self.target_epsilon, int | float) and self.target_epsilon > 0):
                raise InvalidArgument(f"target_epsilon must be > 0, got {self.target_epsilon!r}")
            if dp is None or dp.noise_multiplier is not None:
                raise InvalidArgument(
                    "target_epsilon solves the noise multiplier: give pipeline=PipelineConfig("
                    "dp=DistributedDP(noise_multiplier=None)), or drop target_epsilon and set "
                    "the noise multiplier yourself"
                )
        elif dp is not None and dp.noise_multiplier is None:
            raise InvalidArgument(
                "DistributedDP(noise_multiplier=None) needs FedAvgConfig(target_epsilon=...)"
            )
        limit = 0.5 - SECAGG_PLUS_CORRUPT
        if self.pipeline.protocol == ProtocolName.SECAGG_PLUS and self.dropout >= limit:
            raise InvalidArgument(
                f"dropout={self.dropout} is too high for secagg+: its sparse graph is planned "
                f"for a {SECAGG_PLUS_CORRUPT:.0%} corrupt-client budget and tolerates a "
                f"dropout below {limit:g}; lower dropout or use protocol 'secagg'"
            )
        if not self.server_lr > 0 or not 0.0 <= self.server_momentum < 1.0:
            raise InvalidArgument("server_lr must be > 0 and server_momentum in [0, 1)")


@dataclass(frozen=True)
class RoundRecord:
    """What one round did and cost."""

    round: int
    sampled: int
    """How many clients the round sampled. Like ``survivors`` and ``dropped``, an exact
    count the simulator reports, **not covered by epsilon** (under Poisson sampling it
    depends on who is in the data); the accounted output is the noised aggregate."""
    survivors: int
    dropped: int
    aborted: str | None
    seconds: float
    crypto_seconds: float
    bytes_sent: int
    fraction_clipped: float | None
    """The fraction of the round's clients whose update was clipped. Under DP only a
    released, accounted value: the noised estimate of adaptive clipping (its indicator
    travels inside the noisy secure sum), or ``None`` with a fixed clip bound. Without DP,
    the exact fraction."""
    clip_bound: float = 0.0
    """The L2 bound client updates were clipped to in this round."""
    epsilon: float | None = None
    """Cumulative epsilon (at the configured delta) after this round; None without DP."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    rejected: Mapping[int, str] = field(default_factory=dict)
    """Clients whose update was malformed (wrong shape, NaN/inf): left out of the round, or
    with distributed DP counted as zeros with their noise share (so that the share count
    does not depend on their data). A diagnostic of the simulated clients, **not covered by
    epsilon** (in a deployment each client knows only its own)."""
    encode_seconds: float = 0.0
    """CPU time of the clients' clipping, encoding and distributed-DP noise (apart from
    ``crypto_seconds``, which is the protocol's)."""
    unchanged: tuple[int, ...] = ()
    """Clients whose training left the parameters exactly as they were (an all-zero
    update): usually an optimizer that steps other parameters, or a zero learning rate. A
    diagnostic of the simulated clients, **not covered by epsilon**."""


WEAK_EPSILON = 10.0
"""Above this epsilon a run warns that its guarantee is weak (whatever the target)."""

_UNCHANGED = (
    "{n} client(s) {ids} returned parameters identical to the global ones (an all-zero "
    "update): does their train() step an optimizer over this model's parameters? An "
    "optimizer built for another model object, a zero learning rate or no optimizer.step() "
    "leave the model unchanged (RoundRecord.unchanged lists them)"
)


@dataclass(frozen=True)
class _Outcome:
    """What a round knows before (or without) an aggregate, for its record."""

    number: int
    sampled: int
    t0: float
    clipped: int
    rejected: Mapping[int, str]
    bound: float
    unchanged: tuple[int, ...] = ()
    encode_seconds: float = 0.0


def _check_survivable(config: FedAvgConfig, n_clients: int) -> None:
    """Refuse a dropout that leaves fewer survivors than SecAgg's threshold can unmask."""
    if config.pipeline.protocol != ProtocolName.SECAGG or config.sampling_rate is not None:
        return
    m = config.clients_per_round or n_clients
    survivors = m - math.floor(config.dropout * m)
    need = (m - 1) // 2 + 2  # threshold > half the m - 1 share holders, plus one input
    if survivors < need:
        raise InvalidArgument(
            f"dropout={config.dropout} with {m} clients per round leaves {survivors} "
            f"survivors, but secagg unmasks only with at least {need} (its threshold must "
            f"exceed half the clients): lower dropout or sample more clients per round"
        )


COHORT_MISS = 1e-9
"""``DistributedDP(max_cohort=K)`` must make a round above K (which fails, an event epsilon
does not cover) this unlikely over the run, relative to delta: the failure adds at most
(1 + e^epsilon) times its probability to delta (distributed-dp-v1 section 10.5)."""


def _binomial_pmf(n: int, k: int, log_q: float, log_not_q: float) -> float:
    """P[Binomial(n, q) = k], from log q and log(1 - q) (log space: no overflow)."""
    return math.exp(
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * log_q
        + (n - k) * log_not_q
    )


def _needed_max_cohort(n_clients: int, q: float, rounds: int, delta: float) -> int:
    """The smallest K with ``rounds`` x P[Binomial(n_clients + 1, q) > K] <= COHORT_MISS x
    delta: the add neighbour of this population has one client more."""
    n = n_clients + 1
    if q >= 1.0:
        return max(2, n)
    limit = COHORT_MISS * delta / rounds
    log_q, log_not_q = math.log(q), math.log1p(-q)
    spread = math.sqrt(n * q * (1.0 - q))
    top = min(n, math.ceil(n * q + 50.0 * spread + 50.0))  # P[above top] is far below limit
    tail = 0.0  # P[Binomial > k], from k = top down
    for k in range(top - 1, -1, -1):
        tail += _binomial_pmf(n, k + 1, log_q, log_not_q)
        if tail > limit:
            return max(2, k + 1)
    return 2


def _check_max_cohort(config: FedAvgConfig, n_clients: int) -> None:
    """Under add/remove neither the scale nor the noise shares may follow the cohort: refuse
    a run whose cohort's size depends on the data unless ``DistributedDP(max_cohort=...)``
    bounds it tightly and ``noise_clients`` sizes the shares."""
    dp = config.pipeline.dp
    if dp is None:
        return
    k = dp.max_cohort
    expected = config.clients_per_round or n_clients * (config.sampling_rate or 1.0)
    if k is not None and k < expected:
        raise InvalidArgument(
            f"DistributedDP(max_cohort={k}) is below the {expected:g} clients a round "
            f"samples{' on average' if config.sampling_rate else ''}: rounds above it fail"
        )
    if dp.neighboring is not Neighboring.ADD_OR_REMOVE_ONE or config.clients_per_round:
        return
    q = config.sampling_rate or 1.0
    need = _needed_max_cohort(n_clients, q, config.rounds, dp.delta)
    how = (
        f"Poisson sampling at rate {q}"
        if poisson_sampled(config.sampling_rate)
        else "every client in every round"
    )
    other = ", or neighboring=Neighboring.ZERO_OUT" + (
        " with a fixed cohort (clients_per_round)" if poisson_sampled(config.sampling_rate) else ""
    )
    m = dp.noise_clients or _suggested_noise_clients(config, n_clients)
    if k is None or k < need:
        given = "no max_cohort" if k is None else f"max_cohort={k}"
        raise InvalidArgument(
            f"add/remove-one DP with {how} and {given}: give DistributedDP(max_cohort={need}, "
            f"noise_clients={m}){other}. The fixed-point scale must be planned for a public "
            f"bound on the cohort, or the scale the aggregate reveals depends on who is in the "
            f"data: max_cohort={need} or more (for these {n_clients} clients and their add "
            f"neighbour, a round above it, which fails, has probability <= {COHORT_MISS:g} x "
            f"delta over {plural(config.rounds, 'round')})."
            + ("" if dp.noise_clients else " " + _NOISE_CLIENTS.format(m=m))
        )
    if dp.noise_clients is None:
        raise InvalidArgument(
            f"add/remove-one DP with {how}: give DistributedDP(noise_clients={m}){other}. "
            + _NOISE_CLIENTS.format(m=m)
        )


_NOISE_CLIENTS = (
    "The noise shares must be sized for a public count, not for each round's cohort: a "
    "client's presence changes the cohort's size, and shares sized for it change the variance "
    "of the sum even when that client drops out. noise_clients={m} sizes them for the "
    "survivors of an average round; a round with fewer survivors has less noise and is "
    "accounted with it."
)


def _suggested_noise_clients(config: FedAvgConfig, n_clients: int) -> int:
    """The survivors of an average round (its provisioned survivors where dropouts are not
    simulated as coins): a value to suggest, not to use."""
    cohort = max(2, round(n_clients * (config.sampling_rate or 1.0)))
    if config.simulated_dropout is not None:
        return max(2, math.floor(cohort * (1.0 - config.simulated_dropout)))
    return provisioned_survivors(cohort, config.dropout)


def _dropout_abort_probability(population: int, q: float, p: float, f: float) -> float:
    """P[a simulated round aborts for its dropouts]: of the n clients sampled from
    ``population`` at rate ``q``, more drop on coins of probability ``p`` than the
    n - provisioned_survivors(n, f) the round tolerates. (A round of fewer than 2 clients
    aborts too: that is not counted here, spec section 15, known issue 6.)"""
    from scipy import stats

    if q >= 1.0:
        cohorts, weights = np.array([population]), np.array([1.0])
    else:
        spread = math.sqrt(population * q * (1.0 - q))
        lo = max(2, math.floor(population * q - 50.0 * spread - 50.0))
        hi = min(population, math.ceil(population * q + 50.0 * spread + 50.0))
        cohorts = np.arange(lo, hi + 1)
        weights = stats.binom.pmf(cohorts, population, q)
    tolerated = np.array([n - provisioned_survivors(int(n), f) for n in cohorts])
    over = stats.binom.sf(tolerated, cohorts, p)  # P[more than tolerated drop]
    return float(np.sum(weights * over))


def _check_simulated_dropout(config: FedAvgConfig, n_clients: int) -> None:
    """Under add/remove a fixed number of simulated dropouts is a swap: refuse it. With
    coins, a round that loses more than the tolerance aborts, and whether it does can
    depend on one client's presence: bound it like a round above max_cohort."""
    f, p = config.dropout, config.simulated_dropout
    dp = config.pipeline.dp
    assert dp is not None
    q = config.sampling_rate or 1.0
    limit = COHORT_MISS * dp.delta / config.rounds

    def risk(p: float) -> float:  # over this population and its neighbours
        pops = (max(0, n_clients - 1), n_clients, n_clients + 1)
        return max(_dropout_abort_probability(pop, q, p, f) for pop in pops)

    def safe(p: float) -> float:  # a rate that meets the bound (0 always does)
        while risk(p) > limit:
            p = p / 2 if p > 1e-9 else 0.0
        return p

    bound = (
        f"a round that loses more clients than the tolerance aborts, and whether it does can "
        f"depend on one client's presence, which epsilon does not cover, so FedAvg bounds it "
        f"like a round above max_cohort, at {COHORT_MISS:g} x delta over "
        f"{plural(config.rounds, 'round')}"
    )
    if p is None:
        raise InvalidArgument(
            f"add/remove-one DP with dropout={f}: the simulator would drop exactly "
            f"floor(dropout x n) of each round's n clients, so one client's presence changes "
            f"who else drops (a swap of two updates, not an add/remove pair; "
            f"distributed-dp-v1 section 10.5). Give simulated_dropout={safe(f / 2):.2g}, or "
            f"dropout=0: each client then drops on its own coin; with coins, {bound}"
        )
    chance = risk(p)
    if chance > limit:
        raise InvalidArgument(
            f"simulated_dropout={p} with dropout={f}: {bound}, and the chance per round is "
            f"{chance:.2g}. Raise dropout (the tolerance) or lower simulated_dropout (e.g. "
            f"{safe(p):.2g})"
        )


def _small_round_probability(population: int, q: float) -> float:
    """P[a round samples at most one of ``population`` clients, each at rate ``q``]."""
    from scipy import stats

    return float(stats.binom.cdf(1, population, q))


def _check_small_rounds(config: FedAvgConfig, n_clients: int) -> None:
    """Under add/remove a round that samples fewer than 2 clients releases nothing, and
    whether it does can depend on one client's presence: bound its chance (over the other
    clients, for this population and its add neighbour) like a round above max_cohort
    (spec distributed-dp-v1 section 10.5, *Rounds with fewer than two clients*)."""
    dp = config.pipeline.dp
    assert dp is not None
    q = config.sampling_rate or 1.0
    limit = COHORT_MISS * dp.delta / config.rounds

    def risk(q: float) -> float:
        return max(_small_round_probability(pop, q) for pop in (n_clients - 1, n_clients))

    chance = risk(q)
    if chance <= limit:
        return
    if n_clients < 3:
        raise InvalidArgument(
            f"add/remove-one DP over {n_clients} clients: without one of them a round has "
            f"fewer than 2 clients and releases nothing, which shows that client's presence; "
            f"use at least 3 clients, or neighboring=Neighboring.ZERO_OUT without sampling_rate"
        )
    rate = math.ceil(q * 1000) / 1000  # the least rate, in thousandths, that meets the bound
    while rate < 1.0 and risk(rate) > limit:
        rate = round(rate + 0.001, 3)
    raise_it = (
        f"raise sampling_rate to {rate:g} or more, add clients, or train"
        if rate < 1.0
        else "add clients, or train"
    )
    raise InvalidArgument(
        f"sampling_rate={q} over {n_clients} clients: a round that samples fewer than 2 "
        f"clients releases nothing, and whether it does can depend on one client's presence, "
        f"which epsilon does not cover, so FedAvg holds its chance to {COHORT_MISS:g} x delta "
        f"over {plural(config.rounds, 'round')}; here it is {chance:.2g} per round: "
        f"{raise_it} every client every round (no sampling_rate)"
    )


TARGET_MISS = 0.01
"""Under Poisson sampling a target epsilon is solved for rounds this unlikely to be smaller
(all rounds together): a smaller cohort has fewer noise shares and, under add/remove, a
larger epsilon; the run warns if it ever exceeds the target."""


def _small_cohort(n_clients: int, q: float, rounds: int) -> int:
    """The largest k with P[some round samples fewer than k] <= TARGET_MISS, at least 2:
    each of ``rounds`` Poisson-sampled rounds draws Binomial(n_clients, q) clients."""
    if q >= 1.0:  # every client, every round
        return max(2, n_clients)
    per_round = TARGET_MISS / rounds
    log_q, log_not_q = math.log(q), math.log1p(-q)
    cdf, k = 0.0, 0
    for k in range(n_clients + 1):  # cdf = P[Binomial < k]
        term = _binomial_pmf(n_clients, k, log_q, log_not_q)
        if cdf + term > per_round:
            break
        cdf += term
    return max(2, k)


def _expected_pipeline(
    config: FedAvgConfig,
    pipeline: PipelineConfig,
    n_clients: int,
    dim: int,
    *,
    cohort: int | None = None,
) -> Pipeline:
    """The pipeline of a round of ``cohort`` sampled clients (default: the expected size;
    the numerics only, nothing secret)."""
    m = config.clients_per_round or n_clients
    if config.sampling_rate is not None:
        m = max(2, round(config.sampling_rate * n_clients))
    if cohort is not None:
        m = cohort
    adaptive = config.adaptive_clip
    shape = RoundShape(
        model_dim=dim,
        clip_bound=adaptive.initial_bound if adaptive is not None else pipeline.clip_bound,
        weighted=config.weighting is Weighting.EXAMPLES,
        example_cap=config.example_cap,
        adaptive=adaptive is not None,
    )
    return Pipeline(
        shape.pipeline_config(pipeline),
        n_clients=m,
        dim=shape.input_dim,
        dropout=config.dropout,
        rng=Csprng(),
    )


def _with_solved_noise(
    config: FedAvgConfig, *, n_clients: int, dim: int, relation: Neighboring
) -> FedAvgConfig:
    """``config`` (its target now met) with the smallest noise multiplier whose epsilon after
    ``config.rounds`` rounds is at most ``config.target_epsilon``.

    Each round is accounted as the run will account it: the distributed-DP event of the
    round's pipeline for its fewest survivors, Poisson-amplified at ``sampling_rate``. Under
    Poisson sampling the round is taken as small as :func:`_small_cohort` (the target then
    holds unless some round samples fewer, probability at most :data:`TARGET_MISS`); with a
    fixed ``clients_per_round``, that number.
    """
    base_dp, target = config.pipeline.dp, config.target_epsilon
    assert base_dp is not None
    assert target is not None
    q = config.sampling_rate or 1.0
    cohort = None
    if config.sampling_rate is not None:
        cohort = _small_cohort(n_clients, config.sampling_rate, config.rounds)

    def event(z: float) -> DpEvent:
        dp = dataclasses.replace(base_dp, noise_multiplier=z)
        pipe = _expected_pipeline(
            config, dataclasses.replace(config.pipeline, dp=dp), n_clients, dim, cohort=cohort
        )
        round_event = pipe.dp_event(survivors=pipe.min_survivors)
        assert round_event is not None
        return round_event

    with warnings.catch_warnings():  # the search tries weak plans; the solution is checked
        warnings.simplefilter("ignore")
        z = noise_multiplier_for_epsilon(
            target,
            delta=base_dp.delta,
            q=q,
            rounds=config.rounds,
            mechanism=event,
            neighboring=relation,
            method=AccountingMethod.RDP,  # the run's accountant (RoundCore) is RDP
        )
    dp = dataclasses.replace(base_dp, noise_multiplier=z)
    pipeline = dataclasses.replace(config.pipeline, dp=dp)
    return dataclasses.replace(config, pipeline=pipeline, target_epsilon=None)


class FederatedAveraging:
    """Runs FedAvg rounds over ``n_clients`` simulated clients; holds the global state.

    With protocol ``'paillier'`` this process holds the private key: ``paillier_keys``, or
    a key pair of ``config.pipeline.paillier_bits`` bits made on the first round and kept
    for the run.
    """

    def __init__(
        self,
        config: FedAvgConfig,
        *,
        initial: np.ndarray,
        n_clients: int,
        local_update: LocalUpdate,
        evaluate: Evaluate | None = None,
        rng: Csprng | None = None,
        paillier_keys: PaillierPrivateKey | None = None,
    ) -> None:
        params = np.asarray(initial)
        if params.ndim != 1 or params.dtype not in (np.float32, np.float64):
            raise InvalidArgument("initial parameters must be a 1-D float vector")
        if n_clients < 2:
            raise InvalidArgument(f"federated averaging needs >= 2 clients, got {n_clients}")
        if config.clients_per_round is not None and config.clients_per_round > n_clients:
            raise InvalidArgument(
                f"clients_per_round={config.clients_per_round} exceeds the {n_clients} clients"
            )
        _check_survivable(config, n_clients)
        relation = None
        if config.pipeline.dp is not None:  # a relation secfl can bound, before anything else
            relation = accounting_relation(
                config.pipeline.dp,
                sampling_rate=config.sampling_rate,
                fixed_cohort=config.clients_per_round is not None,
            )
        if relation is Neighboring.ADD_OR_REMOVE_ONE:
            _check_small_rounds(config, n_clients)  # needs only N, q, T and delta: first
            if config.dropout > 0:
                _check_simulated_dropout(config, n_clients)
        _check_max_cohort(config, n_clients)
        self.target_epsilon = config.target_epsilon
        """The target the noise multiplier was solved for (``config`` holds the solution)."""
        if config.target_epsilon is not None:
            assert relation is not None  # target_epsilon needs dp (FedAvgConfig checks)
            config = _with_solved_noise(
                config, n_clients=n_clients, dim=params.size, relation=relation
            )
        if config.pipeline.dp is not None:  # does the DP plan fit the ring? say so now
            _expected_pipeline(config, config.pipeline, n_clients, params.size)
        self.config = config
        self.params = params.copy()
        self.n_clients = n_clients
        self._local_update = local_update
        self._evaluate = evaluate
        self._rng = rng or Csprng()
        self.core = RoundCore(
            config.pipeline,
            weighting=config.weighting,
            example_cap=config.example_cap,
            server_lr=config.server_lr,
            server_momentum=config.server_momentum,
            adaptive_clip=config.adaptive_clip,
            sampling_rate=config.sampling_rate,
            paillier_keys=paillier_keys,
        )
        self.history: list[RoundRecord] = []
        self._warned_epsilon = False

    @property
    def accountant(self) -> RdpAccountant | None:
        """The privacy accountant (``None`` without DP)."""
        return self.core.accountant

    @property
    def clipper(self) -> AdaptiveClipper | None:
        """The adaptive clipper (``None`` with a fixed clip bound)."""
        return self.core.clipper

    def _sample(self) -> list[int]:
        cfg = self.config
        if cfg.sampling_rate is not None:
            u = self._rng.uniform(self.n_clients)
            return [int(i) for i in np.flatnonzero(u < cfg.sampling_rate)]
        m = cfg.clients_per_round or self.n_clients
        order = np.argsort(self._rng.uint64(self.n_clients), kind="stable")
        return sorted(int(i) for i in order[:m])

    def run_round(self) -> RoundRecord:
        """One round; the global parameters change only if it succeeds."""
        cfg = self.config
        t0 = time.perf_counter()
        number = len(self.history) + 1
        sampled = self._sample()
        shape = self.core.shape(self.params.size)
        if len(sampled) < 2:
            outcome = _Outcome(number, len(sampled), t0, 0, {}, shape.clip_bound)
            return self._record(outcome, None, "fewer than 2 clients sampled")
        cap = cfg.pipeline.dp.max_cohort if cfg.pipeline.dp is not None else None
        if cap is not None and len(sampled) > cap:
            outcome = _Outcome(number, len(sampled), t0, 0, {}, shape.clip_bound)
            return self._record(
                outcome,
                None,
                f"{len(sampled)} clients sampled, above DistributedDP(max_cohort={cap})",
            )
        round_rng = self._rng.spawn()  # the rotation seed, then the protocol's secrets
        pipeline = Pipeline(
            shape.pipeline_config(self.core.config),
            n_clients=len(sampled),
            dim=shape.input_dim,
            dropout=cfg.dropout,
            rng=round_rng,
        )
        protocol = build_protocol(pipeline, rng=round_rng, paillier=self.core.paillier_key_pair())
        inputs: dict[int, np.ndarray] = {}
        rejected: dict[int, str] = {}
        unchanged: list[int] = []
        clipped = 0
        encode_seconds = 0.0
        for idx in sampled:
            try:
                new, n_examples = self._local_update(idx, self.params.copy())
                delta = self._delta(idx, new)
                t_encode = time.process_time()
                out = encode_update(shape, pipeline, delta, examples=n_examples, rng=self._rng)
                encode_seconds += time.process_time() - t_encode
            except SecflError as e:  # a diagnostic; the round goes on
                rejected[idx] = str(e)
                if cfg.pipeline.dp is None:  # left out
                    continue
                out = zero_contribution(shape, pipeline, rng=self._rng)  # zeros and its share
            else:
                if not delta.any():
                    unchanged.append(idx)
            clipped += out.clipped
            inputs[idx + 1] = out.encoded  # protocol client ids start at 1
        if unchanged:
            warnings.warn(_UNCHANGED.format(n=len(unchanged), ids=unchanged[:5]), stacklevel=3)
        outcome = _Outcome(
            number,
            len(sampled),
            t0,
            clipped,
            rejected,
            shape.clip_bound,
            tuple(unchanged),
            encode_seconds,
        )
        if len(inputs) < 2:
            valid = plural(len(inputs), "valid client update")
            return self._record(outcome, None, f"only {valid}; a secure sum needs at least 2")
        dropouts = self._dropouts(protocol, list(inputs))
        report = simulate_round(protocol, inputs, dropouts=dropouts, round_id=number)
        if report.result is None:
            return self._record(outcome, report, report.aborted)
        step = self.core.step(
            self.params,
            pipeline,
            shape,
            report.result.aggregate,
            survivors=len(report.result.survivors),
            rng=self._rng,
        )
        if step.params is None:
            return self._record(outcome, report, step.aborted)
        self.params = step.params
        return self._record(outcome, report, None)

    def _delta(self, idx: int, new: np.ndarray) -> np.ndarray:
        arr = np.asarray(new)
        if arr.shape != self.params.shape or arr.dtype.kind != "f":
            raise InvalidArgument(
                f"client {idx} returned {arr.dtype} parameters of shape {arr.shape}; expected "
                f"floats of shape {self.params.shape}"
            )
        if not np.isfinite(arr).all():
            raise InvalidArgument(f"client {idx} returned NaN or inf parameters")
        delta: np.ndarray = arr.astype(np.float64) - self.params
        return delta

    def _dropouts(self, protocol: AggregationProtocol, ids: Sequence[int]) -> dict[int, str]:
        """Who drops out (after sharing keys): each client on its own coin of probability
        ``simulated_dropout``, or else exactly floor(dropout * n) of them."""
        phases = protocol.phases
        phase = SecAggPhase.MASK if SecAggPhase.MASK in phases else phases[0]  # keys shared
        p = self.config.simulated_dropout
        if p is not None:
            coins = self._rng.uniform(len(ids)) < p
            return {ids[int(i)]: phase for i in np.flatnonzero(coins)}
        n_drop = math.floor(self.config.dropout * len(ids))
        if n_drop == 0:
            return {}
        order = np.argsort(self._rng.uint64(len(ids)), kind="stable")
        return {ids[int(i)]: phase for i in order[:n_drop]}

    def _fraction_clipped(self, outcome: _Outcome, report: SimulationReport | None) -> float | None:
        """What :attr:`RoundRecord.fraction_clipped` may release (see there)."""
        if self.config.pipeline.dp is None:
            return outcome.clipped / outcome.sampled if outcome.sampled else 0.0
        clipper = self.core.clipper
        if clipper is None or report is None or report.result is None:
            return None  # no noised estimate this round (fixed bound, or no aggregate)
        return clipper.reports[-1].fraction_clipped  # the server step just made it

    def _record(
        self, outcome: _Outcome, report: SimulationReport | None, aborted: str | None
    ) -> RoundRecord:
        survivors = len(report.result.survivors) if report is not None and report.result else 0
        metrics = dict(self._evaluate(self.params)) if self._evaluate is not None else {}
        record = RoundRecord(
            round=outcome.number,
            sampled=outcome.sampled,
            survivors=0 if aborted else survivors,
            dropped=outcome.sampled if aborted else outcome.sampled - survivors,
            aborted=aborted,
            seconds=time.perf_counter() - outcome.t0,
            crypto_seconds=(report.server_seconds + sum(report.client_seconds)) if report else 0.0,
            bytes_sent=(sum(report.bytes_up.values()) + sum(report.bytes_down.values()))
            if report
            else 0,
            fraction_clipped=self._fraction_clipped(outcome, report),
            clip_bound=outcome.bound,
            epsilon=self.core.epsilon(),
            metrics=metrics,
            rejected=dict(outcome.rejected),
            unchanged=outcome.unchanged,
            encode_seconds=outcome.encode_seconds,
        )
        self.history.append(record)
        self._warn_if_weak(record)
        return record

    def _warn_if_weak(self, record: RoundRecord) -> None:
        """Warn once per run when the privacy guarantee has become weak."""
        eps, dp = record.epsilon, self.config.pipeline.dp
        if eps is None or dp is None or self._warned_epsilon:
            return
        limit = self.target_epsilon or WEAK_EPSILON
        if eps <= limit:
            return
        self._warned_epsilon = True
        why = (
            f"above the target {limit:g}"
            if self.target_epsilon
            else f"above {WEAK_EPSILON:g}, a weak guarantee"
        )
        warnings.warn(
            f"epsilon {eps:.3g} at delta {dp.delta:g} after round {record.round}, {why}: raise "
            f"the noise multiplier, sample fewer clients per round (sampling_rate) or train "
            f"fewer rounds",
            stacklevel=4,
        )

    def run(self, *, on_round: Callable[[RoundRecord], None] | None = None) -> list[RoundRecord]:
        """All configured rounds; ``on_round`` is called after each (e.g. a progress bar)."""
        for _ in range(self.config.rounds):
            record = self.run_round()
            if on_round is not None:
                on_round(record)
        return self.history
