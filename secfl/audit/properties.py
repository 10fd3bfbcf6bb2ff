"""The audit suite: every property, per protocol, runnable with a chosen budget.

Each :class:`AuditProperty` runs one Hypothesis property (a state machine, a ``@given``
property) or a fixed-seed statistical check, and raises on the first failure (Hypothesis
has minimized the counterexample by then: the exception carries it, as its message and
PEP 678 notes). :mod:`secfl.audit.runner` turns that into a report; ``tests/stateful`` and
``tests/properties`` run the same functions under pytest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

from secfl.audit._hypothesis import require_hypothesis
from secfl.encoding import MAX_BITS, MIN_BITS
from secfl.protocols.base import ProtocolName
from secfl.protocols.paillier_threshold import PROTOCOL_NAME as PAILLIER_THRESHOLD

require_hypothesis()

from hypothesis import HealthCheck, Phase, example, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test  # noqa: E402

from secfl.audit import _rounds as rounds  # noqa: E402
from secfl.audit import (  # noqa: E402
    bounds,
    forgery,
    fuzz,
    isolation,
    machines,
    randomness,
    registry,
    stats,
)
from secfl.audit import threshold as th  # noqa: E402
from secfl.hazmat import shamir  # noqa: E402
from secfl.protocols.base import PROTOCOLS  # noqa: E402

__all__ = ["STEPS", "AuditProperty", "Budget", "Tally", "all_properties", "audit_properties"]

STEPS = 30
"""Rules per state-machine example (stateful_step_count); teardown then finishes the round."""


@dataclass(frozen=True)
class Budget:
    """How much to run: Hypothesis examples (or statistical trials), steps, seed.

    ``stats_seed``: the seed of the fixed-seed statistical checks (``None``: ``seed``, or
    0 when ``seed`` is ``None``).
    """

    examples: int
    steps: int = STEPS
    seed: int | None = None
    stats_seed: int | None = None
    parent: settings | None = None  # None: Hypothesis' built-in "default" profile

    def settings(self) -> settings:
        # Not the ambient profile: `secfl audit --seed N` runs the same examples everywhere.
        return settings(
            self.parent or settings.get_profile("default"),
            max_examples=self.examples,
            stateful_step_count=self.steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            print_blob=False,
        )


@dataclass
class Tally:
    """What a property ran so far: examples (or trials) and state-machine rules."""

    examples: int = 0
    steps: int = 0


@dataclass(frozen=True)
class AuditProperty:
    """One audited property of one protocol; ``run`` raises on a failure."""

    protocol: str
    name: str
    checked: str
    run: Callable[[Budget, Tally], None]


def _stateful(machine: type[RuleBasedStateMachine]) -> Callable[[Budget, Tally], None]:
    def run(budget: Budget, tally: Tally) -> None:
        last: list[machines._RoundMachine] = []

        def factory() -> RuleBasedStateMachine:
            if last:  # count the finished example, then let it go
                tally.steps += last.pop().rule_steps
            m = machine()
            assert isinstance(m, machines._RoundMachine)
            tally.examples += 1
            last.append(m)
            return m

        if budget.seed is not None:
            factory = hypothesis_seed(budget.seed)(factory)
        try:
            # Documented: "anything which returns an instance ... a class or a function".
            as_class = cast(type[RuleBasedStateMachine], factory)
            run_state_machine_as_test(as_class, settings=budget.settings())
        finally:
            tally.steps += sum(m.rule_steps for m in last)

    return run


def _given(
    build: Callable[[Tally], Callable[[], None]], *, per: int = 1
) -> Callable[[Budget, Tally], None]:
    """``build(tally)`` returns a ``@given`` test that counts its examples in ``tally``;
    ``per``: run one example per ``per`` of the budget's (at least 5), for properties whose
    examples cost tens of times a state machine's step (public-key operations)."""

    def run(budget: Budget, tally: Tally) -> None:
        scaled = replace(budget, examples=max(5, budget.examples // per))
        test = scaled.settings()(build(tally))
        if budget.seed is not None:
            test = hypothesis_seed(budget.seed)(test)
        test()

    return run


def _wire_fuzz(protocol: str) -> Callable[[Budget, Tally], None]:
    targets = fuzz.fuzz_targets(protocol)

    def build(tally: Tally) -> Callable[[], None]:
        @given(
            target=st.sampled_from(targets),
            seed=st.binary(min_size=32, max_size=32),
            mutation=fuzz.mutations(),
        )
        def wire_fuzz(target: fuzz.FuzzTarget, seed: bytes, mutation: fuzz.Mutation) -> None:
            tally.examples += 1
            fuzz.check_mutated_frame(target, seed, mutation)

        return wire_fuzz

    return _given(build)


def _masks_cancel(*, sparse: bool) -> Callable[[Budget, Tally], None]:
    specs = machines.secagg_specs(sparse=sparse)

    def build(tally: Tally) -> Callable[[], None]:
        @given(spec=specs, drops=st.lists(st.integers(1, 8), max_size=3, unique=True))
        def masks_cancel(spec: rounds.SecAggSpec, drops: list[int]) -> None:
            tally.examples += 1
            stats.check_masks_cancel(spec, tuple(c for c in drops if c <= spec.n))

        return masks_cancel

    return _given(build)


def _request_forgery(protocol: str) -> Callable[[Budget, Tally], None]:
    flaws = forgery.REQUEST_FLAWS[protocol]

    def build(tally: Tally) -> Callable[[], None]:
        @given(
            flaw=st.sampled_from(flaws),
            seed=st.binary(min_size=32, max_size=32),
            delta=st.sampled_from([-1, 1, -2, 2, 7]),
        )
        def request_forgery(flaw: str, seed: bytes, delta: int) -> None:
            tally.examples += 1
            forgery.check_request_forgery(protocol, flaw, seed=seed, delta=delta)

        for flaw in flaws:  # each flaw at least once, moved both ways; then drawn
            for delta in (-1, 1):
                request_forgery = example(flaw=flaw, seed=bytes(32), delta=delta)(request_forgery)
        return request_forgery

    return _given(build)


def _client_forgery(protocol: str) -> Callable[[Budget, Tally], None]:
    kinds = forgery.FORGERIES[protocol]

    def build(tally: Tally) -> Callable[[], None]:
        @given(
            kind=st.sampled_from(kinds),
            seed=st.binary(min_size=32, max_size=32),
            which=st.integers(0, 7),
            n=st.integers(3, 6),
            active=st.booleans(),
        )
        def client_forgery(kind: str, seed: bytes, which: int, n: int, active: bool) -> None:
            tally.examples += 1
            forgery.check_client_forgery(protocol, kind, seed=seed, which=which, n=n, active=active)

        for kind in kinds:  # each forgery from an odd and an even sender, in both modes
            for which, active in itertools.product((0, 1), (False, True)):
                client_forgery = example(
                    kind=kind, seed=bytes(32), which=which, n=4, active=active
                )(client_forgery)
        return client_forgery

    return _given(build)


_SECAGG_EDGES = (
    "none",
    "threshold-below-bound",
    "threshold-above-holders",
    "threshold-zero",
    "bits",
    "too-few-clients",
    "dropout",
    "min-survivors",
    "degree",
    "active-sparse",
    "shamir-field",
)


@st.composite
def _secagg_params(draw: st.DrawFn) -> dict[str, object]:
    """A configuration at its bounds: the least valid one for a drawn mode and size, then
    (usually) one parameter moved to or across one of its bounds."""
    n = draw(st.integers(2, 12))
    active = draw(st.booleans())
    degree = None if active or n < 5 else draw(st.sampled_from([None, 2, 4, n - 1]))
    holders = n - 1 if degree is None or degree >= n - 1 else degree
    bound = 2 * holders // 3 + 1 if active else holders // 2 + 1
    p: dict[str, object] = {
        "n_clients": n,
        "threshold": draw(st.integers(bound, holders)),
        "degree": degree,
        "bits": 16,
        "active": active,
        "max_dropout": 0.0,
        "min_survivors": None,
    }
    edge = draw(st.sampled_from(_SECAGG_EDGES))
    if edge == "threshold-below-bound":
        p["threshold"] = bound - 1
    elif edge == "threshold-above-holders":
        p["threshold"] = holders + 1
    elif edge == "threshold-zero":
        p["threshold"] = draw(st.integers(-1, 1))
    elif edge == "bits":
        p["bits"] = draw(st.sampled_from([0, 1, 64, 65]))
    elif edge == "too-few-clients":
        p["n_clients"] = draw(st.integers(-1, 2))
    elif edge == "dropout":
        p["max_dropout"] = draw(st.sampled_from([-0.1, 0.1, 0.2, 1 / 3, 0.5, 0.99, 1.0]))
    elif edge == "min-survivors":
        p["min_survivors"] = draw(st.sampled_from([0, 1, 2, n, n + 1]))
    elif edge == "degree":
        p["degree"] = draw(st.sampled_from([-2, 0, 1, 2, 3, 4, n - 1, n, n + 1]))
    elif edge == "active-sparse":
        p["active"], p["degree"] = True, 2
        p["n_clients"] = max(n, 5)
    elif edge == "shamir-field":
        big = shamir.PRIME + draw(st.integers(-1, 1))
        p["n_clients"] = big
        p["degree"] = None
        p["threshold"] = draw(
            st.sampled_from([shamir.MAX_THRESHOLD, shamir.MAX_THRESHOLD + 1, big - 1])
        )
    return p


@st.composite
def _paillier_params(draw: st.DrawFn) -> dict[str, object]:
    """A valid configuration, then (usually) one parameter moved to or across a bound."""
    bits = draw(st.sampled_from([8, 16, 32, 64]))
    n = draw(st.integers(2, 8))
    p: dict[str, object] = {
        "bits": bits,
        "value_bits": draw(st.one_of(st.none(), st.integers(1, bits))),
        "n_clients": n,
        "min_clients": draw(st.integers(1, n)),
    }
    edge = draw(st.sampled_from(["none", "bits", "value_bits", "min_clients", "n_clients"]))
    if edge == "bits":
        p["bits"] = draw(st.sampled_from([0, 1, 64, 65]))
    elif edge == "value_bits":
        p["value_bits"] = draw(st.sampled_from([0, 1, bits, bits + 1, 63, 64, 65]))
    elif edge == "min_clients":
        p["min_clients"] = draw(st.sampled_from([0, 1, n, n + 1]))
    elif edge == "n_clients":
        p["n_clients"] = draw(st.sampled_from([2**20, 2**40, 2**60]))
    return p


@st.composite
def _packing_params(draw: st.DrawFn) -> dict[str, object]:
    value_bits = draw(st.integers(1, 64))
    n = draw(st.one_of(st.integers(1, 9), st.integers(1, 2**40)))
    need = (n * ((1 << value_bits) - 1)).bit_length()
    slot = draw(st.one_of(st.sampled_from([need - 1, need, need + 1, 64, 65]), st.integers(1, 70)))
    modulus_bits = draw(st.integers(2, 400))
    fit = (modulus_bits - 1) // max(slot, 1)
    return {
        "modulus_bits": modulus_bits,
        "value_bits": value_bits,
        "n_clients": n,
        "slot_bits": max(slot, 1),
        "slots_per_ciphertext": draw(
            st.one_of(st.sampled_from([max(fit, 1), fit + 1]), st.integers(1, 20))
        ),
    }


_PIPELINE_PARAMS = st.fixed_dictionaries(
    {
        "protocol": st.sampled_from([*PROTOCOLS, "secagg-v0"]),
        "active": st.booleans(),
        "clip_bound": st.sampled_from([1.0, 1e-9, 0.0, -1.0, math.inf, math.nan]),
        "bits": st.sampled_from([MIN_BITS - 1, MIN_BITS, 32, MAX_BITS, MAX_BITS + 1]),
        "dp": st.booleans(),
        "delta": st.sampled_from([1e-5, 0.5, 0.0, 1.0, -1e-5]),
        "beta": st.sampled_from([0.0, 0.5, 0.99, 1.0, -0.1]),
    }
)
_CLIP_PARAMS = st.fixed_dictionaries(
    {
        "initial_bound": st.sampled_from([0.5, 1.0, 2.0]),
        "target_quantile": st.sampled_from([0.5, 0.9, 0.0, 1.0, -0.1]),
        "learning_rate": st.sampled_from([0.2, 1e-9, 0.0, -1.0, math.inf, math.nan]),
        "count_noise_stddev": st.sampled_from([0.0, 1.0, -1.0, math.inf, math.nan]),
        "min_bound": st.sampled_from([0.0, 0.5, 1.0, 2.5, -1.0]),
        "max_bound": st.sampled_from([math.inf, 2.0, 1.0, 0.5]),
    }
)
_BOUND_PARAMS = {
    "secagg": _secagg_params(),
    "paillier": _paillier_params(),
    "packing": _packing_params(),
    "pipeline": _PIPELINE_PARAMS,
    "adaptive-clip": _CLIP_PARAMS,
}


def _bounds(kinds: Sequence[str]) -> Callable[[Budget, Tally], None]:
    given_run = _given_bounds(kinds)

    def run(budget: Budget, tally: Tally) -> None:
        for kind in kinds:  # the fixed grid around every bound, then Hypothesis' examples
            for params in bounds.grid(kind):
                bounds.check_bounds(kind, params)
        given_run(budget, tally)

    return run


def _given_bounds(kinds: Sequence[str]) -> Callable[[Budget, Tally], None]:
    def build(tally: Tally) -> Callable[[], None]:
        @given(case=st.one_of([st.tuples(st.just(k), _BOUND_PARAMS[k]) for k in kinds]))
        def parameter_bounds(case: tuple[str, dict[str, object]]) -> None:
            tally.examples += 1
            bounds.check_bounds(*case)

        return parameter_bounds

    return _given(build)


def _fixed(
    check: Callable[[int, int], str], *, per_trial: int, cap: int
) -> Callable[[Budget, Tally], None]:
    def run(budget: Budget, tally: Tally) -> None:
        tally.examples = max(1, min(cap, budget.examples // per_trial))
        seed = budget.stats_seed if budget.stats_seed is not None else budget.seed
        check(tally.examples, 0 if seed is None else seed)

    return run


def _uniform(protocol: str) -> Callable[[int, int], str]:
    return lambda trials, seed: stats.check_masked_uniform(protocol, trials=trials, seed=seed)


def _rerandomized(trials: int, seed: int) -> str:
    return stats.check_rerandomized(trials=trials, seed=seed)


def _fresh(protocol: str) -> Callable[[int, int], str]:
    return lambda trials, seed: randomness.check_fresh_randomness(
        protocol, trials=trials, seed=seed
    )


def _registry() -> str:
    registry.check_registry()
    return f"{len(registry.BAD_KEYS)} invalid keys and 4 aliases refused"


def _dp_noise(trials: int, seed: int) -> str:
    return randomness.check_dp_noise(trials=trials, seed=seed)


_INVARIANTS = (
    "; after every step: view within the spec; ends with the exact sum of at least one "
    "survivor, or a SecflError"
)
_FORGERY = (
    "one client sends a well-formed message with one deliberate flaw ({}): the server "
    "refuses it without changing phase, then ends the round with the exact sum"
)
_FRESH = (
    "two rounds of one protocol object: nothing random repeats across clients or rounds ({}); "
    "fixed seeds"
)
_SECAGG_FRESH = _FRESH.format(
    "public keys, AEAD nonces, self-mask seeds, Shamir coefficients, masked zero inputs"
)
_REQUEST = (
    "a client gets its round's request with one field changed ({}): it refuses, and stays closed"
)
_FUZZ = (
    "every message type mutated (flips, truncation, lying lengths and counts, other type, "
    "version, round): only SecflError, bounded memory, receiver consistent"
)


def _aggregator_search(tally: Tally) -> Callable[[], None]:
    plan = st.builds(
        th.Plan,
        round_id=st.sampled_from([th.ROUND, th.OLD_ROUND]),
        # every size 0..5 equally often (a plain list strategy draws mostly short ones, and
        # the sets a holder must answer have at least min_clients entries)
        base=st.permutations(th.HONEST).flatmap(
            lambda order: st.integers(0, len(order)).map(lambda k: tuple(sorted(order[:k])))
        ),
        ops=st.lists(
            st.tuples(
                st.sampled_from(th.OPS),
                st.sampled_from(th.HONEST),
                st.sampled_from((*th.HONEST, th.COLLUDER)),
                st.integers(2, 4),
            ),
            max_size=3,
        ).map(tuple),
    )
    deliveries = st.lists(
        st.tuples(st.integers(1, th.HOLDERS), st.integers(0, 1)), min_size=1, max_size=8
    )

    @given(plans=st.lists(plan, min_size=2, max_size=2), deliveries=deliveries)
    def aggregator_search(plans: list[th.Plan], deliveries: list[tuple[int, int]]) -> None:
        tally.examples += 1
        th.check_aggregator_plan(plans, deliveries)

    # Each move at least once on a set large enough to be answered, the colluder's twice
    # (two validly signed inputs under one id); then the search.
    everyone = th.Plan(th.ROUND, th.HONEST, ())
    twice = tuple(
        (op, 1, th.COLLUDER, k) for op in ("colluder-own", "colluder-rerandomized") for k in (2, 3)
    )
    for ops in [((op, 4, th.COLLUDER, 2),) for op in th.OPS] + [twice[:2], twice[2:]]:
        moved = th.Plan(th.ROUND, (1, 2, 3), ops)
        aggregator_search = example(
            plans=[moved, everyone], deliveries=[(1, 0), (2, 0), (3, 0), (4, 1), (1, 1)]
        )(aggregator_search)
    return aggregator_search


def _lying_holders(tally: Tally) -> Callable[[], None]:
    liars = st.dictionaries(
        st.integers(1, th.HOLDERS), st.sampled_from(th.LIES), max_size=th.HOLDERS - th.T + 1
    )
    dropped = st.lists(st.sampled_from(th.HONEST), unique=True, max_size=2)

    @given(liars=liars, dropped=dropped)
    def lying_holders(liars: dict[int, str], dropped: list[int]) -> None:
        tally.examples += 1
        th.check_lying_holders(liars, dropped)

    for lie in th.LIES:  # each lie at least once, then the search
        lying_holders = example(liars={1: lie}, dropped=[])(lying_holders)
    return lying_holders


def _threshold_request_forgery(tally: Tally) -> Callable[[], None]:
    @given(flaw=st.sampled_from(th.FLAWS), delta=st.integers(1, (1 << 32) - 1))
    def request_forgery(flaw: str, delta: int) -> None:
        tally.examples += 1
        th.check_request_forgery(flaw, delta)

    return request_forgery


def _threshold_client_forgery(tally: Tally) -> Callable[[], None]:
    @given(forgery=st.sampled_from(sorted(th.FORGERIES)), which=st.sampled_from(th.HONEST))
    def client_forgery(forgery: str, which: int) -> None:
        tally.examples += 1
        th.check_client_forgery(forgery, which)

    return client_forgery


def _threshold_bounds(tally: Tally) -> Callable[[], None]:
    @given(parameter=st.sampled_from(th.BOUNDS), offset=st.integers(0, 7))
    def parameter_bounds(parameter: str, offset: int) -> None:
        tally.examples += 1
        th.check_config_bound(parameter, offset)

    return parameter_bounds


def _fresh_threshold() -> str:
    th.check_fresh_randomness()
    th.check_key_generation()
    return "no ciphertext repeated; key generation draws from its generator"


def _threshold_full_round(tally: Tally) -> Callable[[], None]:
    @given(dim=st.sampled_from((1, th.DIM)))
    def full_round(dim: int) -> None:
        tally.examples += 1
        th.check_full_round(dim)

    return full_round


def _threshold_out_of_range(tally: Tally) -> Callable[[], None]:
    @given(which=st.sampled_from(th.HONEST), shape=st.sampled_from(th.SHAPES))
    def out_of_range_input(which: int, shape: str) -> None:
        tally.examples += 1
        th.check_out_of_range_input(which, shape)

    for i, shape in enumerate(th.SHAPES):  # each shape at least once
        out_of_range_input = example(which=th.HONEST[i], shape=shape)(out_of_range_input)
    return out_of_range_input


def audit_properties(protocol: str) -> list[AuditProperty]:
    """The audited properties of ``protocol``, in the order they run."""
    if protocol == ProtocolName.PLAIN:
        return [
            AuditProperty(
                protocol,
                "schedule",
                "faulty network (reordering, loss, duplicates, delays, bit flips, replays of an "
                "older round), crashes" + _INVARIANTS,
                _stateful(machines.PlainAudit),
            ),
            AuditProperty(protocol, "wire-fuzz", _FUZZ, _wire_fuzz(protocol)),
            AuditProperty(
                protocol,
                "client-forgery",
                _FORGERY.format("an uninvited sender, a second message, another round id"),
                _client_forgery(protocol),
            ),
            AuditProperty(
                protocol,
                "request-forgery",
                _REQUEST.format(", ".join(forgery.REQUEST_FLAWS[protocol])),
                _request_forgery(protocol),
            ),
        ]
    if protocol == ProtocolName.SECAGG:
        return [
            AuditProperty(
                protocol,
                "honest-but-curious",
                "HBC mode: honest server with <= t-1 colluding clients, or a lying one (split "
                "survivor views, invalid lists, withheld envelopes, replays, second unmask "
                "requests) with <= 2t-n; faulty network, crashes" + _INVARIANTS,
                _stateful(machines.SecAggHbcAudit),
            ),
            AuditProperty(
                protocol,
                "active",
                "active mode: a lying server that also substitutes keys and forges consistency "
                "signatures, <= 2t-n colluding clients; faulty network, crashes" + _INVARIANTS,
                _stateful(machines.SecAggActiveAudit),
            ),
            AuditProperty(protocol, "wire-fuzz", _FUZZ, _wire_fuzz(protocol)),
            AuditProperty(
                protocol,
                "client-forgery",
                _FORGERY.format(
                    "an invalid key, a forged or replayed key signature, a misaddressed or missing "
                    "envelope, a masked input of another round, a consistency signature of "
                    "another list, a share revealed twice, of the wrong kind, not held, missing; "
                    "active (secagg-v3): an envelope signed by another identity, a complaint "
                    "about an envelope that opens (with its genuine proof, with the proof of "
                    "another channel, signed by another); and envelopes that do not open, whose "
                    "sender the active round must exclude with checkable evidence and end "
                    "with the exact sum of the others"
                ),
                _client_forgery(protocol),
            ),
            AuditProperty(
                protocol,
                "request-forgery",
                _REQUEST.format(", ".join(forgery.REQUEST_FLAWS[protocol])),
                _request_forgery(protocol),
            ),
            AuditProperty(
                protocol,
                "masks-cancel",
                "self masks rebuilt from the revealed shares alone: sum(y) - sum(PRG(b_u)) = "
                "sum(x) exactly, and every y_u carries pairwise masks",
                _masks_cancel(sparse=False),
            ),
            AuditProperty(
                protocol,
                "masked-uniform",
                "masked all-zero inputs are uniform over Z_2^k (chi-square, bit balance; fixed "
                f"seeds, p = {stats.P_VALUE:g} per test)",
                _fixed(_uniform(protocol), per_trial=10, cap=20),
            ),
            AuditProperty(
                protocol,
                "fresh-randomness",
                _SECAGG_FRESH,
                _fixed(_fresh(protocol), per_trial=20, cap=10),
            ),
            AuditProperty(
                protocol,
                "parameter-bounds",
                "SecAggConfig, PipelineConfig (distributed DP) and AdaptiveClipConfig are accepted "
                "exactly within the bounds of secagg-v1 and distributed-dp-v1 (thresholds above "
                "1/2 or 2/3 of the holders, no DP without secure aggregation, ...), refused with "
                "InvalidArgument otherwise",
                _bounds(["secagg", "pipeline", "adaptive-clip"]),
            ),
            AuditProperty(
                protocol,
                "isolation-search",
                "a lying server that searches (simulated annealing) over withheld envelopes and "
                "per-holder survivor lists for a round unmasking one input, its plans run for "
                "real: none in active mode; in HBC mode it must find one (secagg-v1 10.2)",
                _fixed(isolation.check_isolation, per_trial=100, cap=2),
            ),
            AuditProperty(
                protocol,
                "dp-noise",
                "distributed DP through the real pipeline (Skellam, discrete Gaussian): each "
                "client's noise share has at least the variance the accountant assumes, shares "
                "are uncorrelated; central Gaussian and clipping count noise as promised; fresh "
                f"rounding coins per client (fixed seeds, p = {stats.P_VALUE:g} per test)",
                _fixed(_dp_noise, per_trial=20, cap=10),
            ),
            AuditProperty(
                protocol,
                "registry",
                "the active mode's trusted directory: a registry file loads exactly when every "
                "entry is a valid identity; every small-order verify key, every encoding with "
                "y >= p, keys off the curve, ids spelt twice ('01', non-ASCII digits, repeated) "
                "and a key under two ids are refused with InvalidArgument",
                _fixed(lambda trials, seed: _registry(), per_trial=200, cap=1),
            ),
        ]
    if protocol == ProtocolName.SECAGG_PLUS:
        return [
            AuditProperty(
                protocol,
                "honest-but-curious",
                "sparse graph, honest server with <= t-1 colluding clients; faulty network "
                "(survivor lists not tampered with), crashes" + _INVARIANTS,
                _stateful(machines.SecAggPlusAudit),
            ),
            AuditProperty(protocol, "wire-fuzz", _FUZZ, _wire_fuzz(protocol)),
            AuditProperty(
                protocol,
                "masks-cancel",
                "sparse graph: sum(y) - sum(PRG(b_u)) = sum(x) exactly from the revealed shares "
                "alone, and every y_u carries pairwise masks",
                _masks_cancel(sparse=True),
            ),
            AuditProperty(
                protocol,
                "masked-uniform",
                "sparse graph: masked all-zero inputs are uniform over Z_2^k (chi-square, bit "
                f"balance; fixed seeds, p = {stats.P_VALUE:g} per test)",
                _fixed(_uniform(protocol), per_trial=10, cap=20),
            ),
            AuditProperty(
                protocol,
                "fresh-randomness",
                "sparse graph: " + _SECAGG_FRESH,
                _fixed(_fresh(protocol), per_trial=20, cap=10),
            ),
        ]
    if protocol == ProtocolName.PAILLIER:
        return [
            AuditProperty(
                protocol,
                "schedule",
                "faulty network, crashes; an aggregator that replays, names another key, asks "
                "for a second decryption or for one client's ciphertext" + _INVARIANTS,
                _stateful(machines.PaillierAudit),
            ),
            AuditProperty(protocol, "wire-fuzz", _FUZZ, _wire_fuzz(protocol)),
            AuditProperty(
                protocol,
                "client-forgery",
                _FORGERY.format("an uninvited sender, a second input, another round id"),
                _client_forgery(protocol),
            ),
            AuditProperty(
                protocol,
                "request-forgery",
                _REQUEST.format(", ".join(forgery.REQUEST_FLAWS[protocol])),
                _request_forgery(protocol),
            ),
            AuditProperty(
                protocol,
                "rerandomized",
                "ciphertexts of equal plaintexts are all distinct, decrypt equal, low bits "
                f"uniform (chi-square; fixed seeds, p = {stats.P_VALUE:g})",
                _fixed(_rerandomized, per_trial=50, cap=4),
            ),
            AuditProperty(
                protocol,
                "parameter-bounds",
                "PaillierConfig and PackingLayout are accepted exactly when a slot holds the sum "
                "of n values without carry and the slots fit the plaintext (paillier-sum-v1), "
                "refused with InvalidArgument or EncodingOverflow otherwise",
                _bounds(["paillier", "packing"]),
            ),
            AuditProperty(
                protocol,
                "fresh-randomness",
                _FRESH.format("ciphertexts of equal inputs"),
                _fixed(_fresh(protocol), per_trial=20, cap=10),
            ),
        ]
    if protocol == PAILLIER_THRESHOLD:
        return [
            AuditProperty(
                protocol,
                "aggregator-search",
                "a lying aggregator composes its requests (any subset of signed inputs, then "
                "replays, relabels, powers, products, encryptions of zero, repeats, stripped "
                "signatures, outsiders, a colluding client's signatures; each move at least "
                "once) and sends one or two "
                "to each of 5 key holders (3-of-5): a holder answers only sets of >= "
                "min_clients distinct clients' signed inputs of the round, once per round; "
                "t answers decrypt to the set's sum; one set per round at most; a holder's "
                "first request of a round that is of that kind, with distinct inputs, is "
                "answered",
                _given(_aggregator_search, per=4),
            ),
            AuditProperty(
                protocol,
                "lying-holders",
                "up to m - t + 1 key holders lie (a partial value, the proof, another holder's "
                "answer, another input set, a genuine answer labelled with another set or "
                "round, garbage, two answers, a non-unit or out-of-range value, a wrong index, "
                "a cut answer; each lie at least once), clients may drop: the aggregator names "
                "exactly the liars and decrypts the exact sum, or with fewer than t honest "
                "holders ends the round with InsufficientSurvivors",
                _given(_lying_holders, per=8),
            ),
            AuditProperty(
                protocol,
                "client-forgery",
                "the aggregator gets, besides every honest signed input, one forged message "
                "(an uninvited client's input, a repeat, the round before's input, another "
                "client's signature, none, a copy of another client's ciphertexts signed as "
                "its own, a signed ciphertext >= n^2, a cut frame, a key holder's answer before "
                "it asked): it refuses it and decrypts the exact sum of the honest inputs",
                _given(_threshold_client_forgery, per=4),
            ),
            AuditProperty(
                protocol,
                "out-of-range-input",
                "a client signs a well-formed encryption of out-of-range plaintexts (no range "
                "proofs, so the aggregator cannot refuse it): the round ends with "
                "IntegrityError, never a sum, with no decrypted value in the error's chain",
                _given(_threshold_out_of_range, per=40),
            ),
            AuditProperty(
                protocol,
                "full-round",
                "all n_clients registered clients send (the largest request a holder may get) "
                "at dim 1 and 3, every holder honest: the exact sum",
                _given(_threshold_full_round, per=40),
            ),
            AuditProperty(
                protocol,
                "request-forgery",
                "a client gets the request with another round id, dimension, bits, value_bits, "
                "n_clients, min_clients, key fingerprint or type byte: it refuses it, then "
                "stays closed",
                _given(_threshold_request_forgery, per=2),
            ),
            AuditProperty(
                protocol,
                "parameter-bounds",
                "ThresholdPaillierConfig is accepted exactly within the bounds the spec "
                "states (1 <= bits <= 64, 2 <= min_clients <= n_clients, t <= ask_first <= "
                "m, 1 <= value_bits <= bits, registry ids in 1..2^32-1, no verify key under "
                "two ids), refused with InvalidArgument otherwise; values drawn on, just "
                "inside and just outside each bound",
                _given(_threshold_bounds, per=4),
            ),
            AuditProperty(
                protocol,
                "fresh-randomness",
                _FRESH.format("ciphertexts of equal inputs (two clients, two rounds)")
                + "; generate_key takes its primes and dealt shares from the generator given",
                _fixed(lambda trials, seed: _fresh_threshold(), per_trial=200, cap=1),
            ),
        ]
    raise ValueError(f"unknown protocol {protocol!r}")


def all_properties(protocols: Sequence[str]) -> list[AuditProperty]:
    return [p for name in protocols for p in audit_properties(name)]
