"""Privacy-loss-distribution (PLD) accounting of Gaussian events, and the analytic
Gaussian's exact (epsilon, delta).

* Unsampled Gaussians compose exactly: ``T`` Gaussians of multipliers ``z_i`` are one
  Gaussian with ``mu = sqrt(sum 1/z_i^2)``, whose tight curve is Balle and Wang's (ICML
  2018) ``delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)``; epsilon is found
  by bisection and rounded **up**.
* Anything with Poisson sampling goes to ``dp_accounting.pld.PLDAccountant`` (Koskela et
  al.; Doroshenko et al., PETS 2022), whose pessimistic discretization never reports less
  than the true epsilon. The discretization interval is chosen per query: 1e-3 first, then
  ``eps/2000`` (at least 1e-5) when that is finer, so the discretization adds at most
  about 0.2 % while large compositions stay fast (the whole grid of ``docs/dp.md`` in a
  few seconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from secfl.dp import _ddg_pld

PairPart = tuple[float, _ddg_pld.GaussianPair, int, float]
"""``(q, pair, count, log_ratio)``: ``count`` rounds of ``pair`` Poisson-sampled at rate
``q``, each round's output log-probabilities within ``log_ratio`` of the mechanism's."""
COARSE_INTERVAL = 1e-3
"""The first value discretization interval (in nats of privacy loss)."""
RELATIVE_INTERVAL = 1.0 / 2000.0
"""The refined interval as a fraction of the coarse epsilon."""
FINEST_INTERVAL = 1e-5


def _log_ndtr(x: float) -> float:
    from scipy import special

    return float(special.log_ndtr(x))


def gaussian_delta(epsilon: float, mu: float) -> float:
    """The exact delta of a Gaussian with sensitivity / std ``mu`` at ``epsilon``."""
    a = _log_ndtr(-epsilon / mu + mu / 2.0)
    b = epsilon + _log_ndtr(-epsilon / mu - mu / 2.0)
    if b >= a:
        return 0.0
    return math.exp(a) * -math.expm1(b - a)


def gaussian_epsilon(mu: float, delta: float) -> float:
    """The smallest epsilon (rounded up, to a relative 1e-12) with ``gaussian_delta <=
    delta``: the exact guarantee of one Gaussian of parameter ``mu``."""
    if gaussian_delta(0.0, mu) <= delta:
        return 0.0
    hi = max(1.0, mu * mu)
    while gaussian_delta(hi, mu) > delta:
        hi *= 2.0
    lo = 0.0
    while hi - lo > 1e-12 * hi:
        mid = (lo + hi) / 2.0
        if gaussian_delta(mid, mu) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def sampled_gaussian_epsilon(
    parts: Sequence[tuple[float, float, int]], delta: float, *, interval: float | None = None
) -> float:
    """Epsilon of ``(q, z, count)`` parts composed (q = 1: unsampled) by dp_accounting's
    PLD accountant under add-or-remove-one, at ``delta``.

    ``interval`` fixes the value discretization interval; by default it is chosen as the
    module describes.
    """
    if all(q >= 1.0 for q, _, _ in parts):
        mu = math.sqrt(sum(count / (z * z) for _, z, count in parts))
        return gaussian_epsilon(mu, delta)
    if interval is not None:
        return _pld_epsilon(parts, delta, interval)
    coarse = _pld_epsilon(parts, delta, COARSE_INTERVAL)
    fine = max(FINEST_INTERVAL, coarse * RELATIVE_INTERVAL)
    if fine < COARSE_INTERVAL:
        return min(coarse, _pld_epsilon(parts, delta, fine))  # both are upper bounds
    return coarse


def _pld_accountant(parts: Sequence[tuple[float, float, int]], interval: float) -> Any:
    """dp-accounting's PLD accountant with the ``(q, z, count)`` parts composed."""
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant

    acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=interval)
    for q, z, count in parts:
        event: object = dp_accounting.GaussianDpEvent(z)
        if q < 1.0:
            event = dp_accounting.PoissonSampledDpEvent(q, event)
        acc.compose(dp_accounting.SelfComposedDpEvent(event, count))
    return acc


def _pld_epsilon(parts: Sequence[tuple[float, float, int]], delta: float, interval: float) -> float:
    return float(_pld_accountant(parts, interval).get_epsilon(delta))


def sampled_gaussian_delta(parts: Sequence[tuple[float, float, int]], epsilon: float) -> float:
    """Delta at ``epsilon`` of the composed parts (PLD, interval 1e-4; exact when unsampled)."""
    if all(q >= 1.0 for q, _, _ in parts):
        mu = math.sqrt(sum(count / (z * z) for _, z, count in parts))
        return gaussian_delta(epsilon, mu)
    return float(_pld_accountant(parts, 1e-4).get_delta(epsilon))


# -- general parts: Gaussian pairs within a log-ratio of the mechanism (the ddg) -----------


def _collapse(part: PairPart) -> PairPart:
    """Unsampled rounds of a pair compose exactly into one pair: T rounds of N(x, B I_d)
    against N(0, A I_d) are N(x', B I_{dT}) against N(0, A I_{dT}) with |x'| = sqrt(T) |x|."""
    q, pair, count, log_ratio = part
    if q < 1.0 or count == 1:
        return part
    wide = _ddg_pld.GaussianPair(
        pair.sensitivity * math.sqrt(count),
        pair.num_variance,
        pair.den_variance,
        pair.dimension * count,
    )
    return (1.0, wide, 1, log_ratio * count)


def _pair_pld(parts: Sequence[PairPart], interval: float) -> Any:
    pld: Any = None
    for part in parts:
        q, pair, count, _ = _collapse(part)
        one = _ddg_pld.subsampled_pld(pair, q, interval)
        if count > 1:
            one = one.self_compose(count)
        pld = one if pld is None else pld.compose(one)
    return pld


def log_ratio(parts: Sequence[PairPart]) -> float:
    """C: every output's log-probability under the mechanism is within C of the stand-in's."""
    return sum(count * log_ratio for _, _, count, log_ratio in parts)


def _epsilon(pld: Any, delta: float, c: float) -> float:
    # P(S) <= e^C P'(S) and Q(S) >= e^-C Q'(S) give delta(eps) <= e^C delta'(eps - 2C).
    return float(pld.get_epsilon_for_delta(delta * math.exp(-c))) + 2.0 * c


def pair_epsilon(parts: Sequence[PairPart], delta: float) -> float:
    """Epsilon at ``delta`` of ``(q, pair, count, log_ratio)`` parts composed, the
    discretization interval chosen as for the Gaussian (coarse, then refined)."""
    c = log_ratio(parts)
    coarse = _epsilon(_pair_pld(parts, COARSE_INTERVAL), delta, c)
    fine = max(FINEST_INTERVAL, coarse * RELATIVE_INTERVAL)
    if fine < COARSE_INTERVAL:
        try:
            return min(coarse, _epsilon(_pair_pld(parts, fine), delta, c))  # upper bounds
        except _ddg_pld.PldTooWide:
            return coarse
    return coarse


def pair_delta(parts: Sequence[PairPart], epsilon: float) -> float:
    """Delta at ``epsilon`` of the composed parts (interval 1e-4)."""
    c = log_ratio(parts)
    if epsilon < 2.0 * c:
        return 1.0
    pld = _pair_pld(parts, 1e-4)
    return min(1.0, math.exp(c) * float(pld.get_delta_for_epsilon(epsilon - 2.0 * c)))
