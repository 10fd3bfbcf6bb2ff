"""One-run privacy auditing: a lower bound on epsilon from guesses about canaries.

Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run" (NeurIPS 2023).
``m`` canaries are each included independently with probability 1/2 (S_i = +1 in, -1
out). From the mechanism's output alone the auditor guesses "in" for some canaries, "out"
for others, and abstains on the rest: ``r`` guesses, ``v`` of them correct. Their Theorem 3
(with the computation of their Algorithm 2 in appendix D): if the mechanism is
(epsilon, delta)-DP with respect to each canary, then

    P[W >= v] <= f(v) + 2 m delta max_{1 <= i <= v} (f(v - i) - f(v)) / i,

where W is the number of correct guesses and f(v) = P[Binomial(r, e^eps / (1 + e^eps)) >= v].
The right-hand side is a p-value for "the mechanism is (eps, delta)-DP"; the largest
``eps`` it rejects at level ``1 - confidence`` is a lower bound on the true epsilon, valid
with that confidence. Rejecting ``eps`` also rejects every smaller epsilon ((eps', delta)-
DP with eps' < eps implies (eps, delta)-DP), so any ``eps`` the search verified is sound;
monotonicity of the p-value only matters for how tight the search gets.

Everything here is exact up to float64 rounding of the binomial terms (log space, summed
with :func:`math.fsum`); no SciPy. The guess rule is fixed before the scores are seen
except for the choice among :data:`GUESS_FRACTIONS`, which is paid for by a Bonferroni
correction (each candidate is tested at ``(1 - confidence) / len(GUESS_FRACTIONS)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from secfl.errors import InvalidArgument

__all__ = [
    "GUESS_FRACTIONS",
    "GuessOutcome",
    "epsilon_lower_bound",
    "one_run_p_value",
    "score_guesses",
]

GUESS_FRACTIONS: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5)
"""Candidate guess rules: guess "in" for the top ``f * m`` scores and "out" for the bottom
``f * m`` (at least one each); 0.5 guesses every canary."""

_SEARCH_STEPS = 60
_EPS_CEILING = 200.0


def _check_counts(m: int, r: int, v: int) -> None:
    for name, value in (("m", m), ("r", r), ("v", v)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidArgument(f"{name} must be an int, got {value!r}")
    if not 0 <= v <= r <= m:
        raise InvalidArgument(
            f"need 0 <= v (correct guesses) <= r (guesses) <= m (canaries), got v={v}, r={r}, m={m}"
        )


def _check_delta(delta: float) -> None:
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 <= delta < 1:
        raise InvalidArgument(f"delta must be in [0, 1), got {delta!r}")


def _log_binomial_coefficients(r: int) -> np.ndarray:
    return np.array(
        [math.lgamma(r + 1) - math.lgamma(j + 1) - math.lgamma(r - j + 1) for j in range(r + 1)]
    )


def _p_value(log_coef: np.ndarray, m: int, r: int, v: int, eps: float, delta: float) -> float:
    # log q and log(1 - q) for q = e^eps / (1 + e^eps), without cancellation.
    log_q = -math.log1p(math.exp(-eps))
    log_not_q = -eps + log_q
    j = np.arange(r + 1, dtype=np.float64)
    pmf = np.exp(log_coef + j * log_q + (r - j) * log_not_q)
    tail = math.fsum(pmf[v:].tolist())  # f(v) = P[Binomial(r, q) >= v]
    alpha = 0.0
    if delta > 0 and v > 0:
        below = np.cumsum(pmf[v - 1 :: -1])  # entry i - 1: sum_{j=v-i}^{v-1} pmf_j
        alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(1.0, tail + 2.0 * m * delta * alpha)


def one_run_p_value(*, m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """The probability bound of Steinke-Nasr-Jagielski's Theorem 3 that an (epsilon,
    delta)-DP mechanism lets ``r`` guesses about ``m`` canaries be right ``v`` or more
    times (capped at 1)."""
    _check_counts(m, r, v)
    _check_delta(delta)
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not epsilon >= 0:
        raise InvalidArgument(f"epsilon must be a number >= 0, got {epsilon!r}")
    return _p_value(_log_binomial_coefficients(r), m, r, v, float(epsilon), delta)


def epsilon_lower_bound(*, m: int, r: int, v: int, delta: float, confidence: float) -> float:
    """The largest epsilon (to ~1e-12 relative, searched by bisection) at which
    :func:`one_run_p_value` is below ``1 - confidence``: with that confidence, the mechanism
    is not (epsilon, delta)-DP for this epsilon or any smaller one. 0 if even epsilon = 0
    is not rejected."""
    _check_counts(m, r, v)
    _check_delta(delta)
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    level = 1.0 - confidence
    log_coef = _log_binomial_coefficients(r)

    def rejected(eps: float) -> bool:
        return _p_value(log_coef, m, r, v, eps, delta) < level

    if r == 0 or not rejected(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while rejected(hi):
        lo, hi = hi, 2.0 * hi
        if hi > _EPS_CEILING:
            return lo  # every order of magnitude we care about is rejected
    for _ in range(_SEARCH_STEPS):
        mid = 0.5 * (lo + hi)
        if rejected(mid):
            lo = mid
        else:
            hi = mid
    return lo  # always an epsilon that was verified to be rejected


@dataclass(frozen=True)
class GuessOutcome:
    """The best guess rule of :func:`score_guesses` and the bound it gives.

    ``guesses_in`` / ``guesses_out``: how many canaries were guessed in (top scores) and
    out (bottom scores); ``correct``: how many of those guesses were right;
    ``lower_bound``: the epsilon lower bound at ``confidence`` overall (after the
    Bonferroni correction over the candidate rules).
    """

    canaries: int
    guesses_in: int
    guesses_out: int
    correct: int
    lower_bound: float
    delta: float
    confidence: float

    @property
    def guesses(self) -> int:
        return self.guesses_in + self.guesses_out


def score_guesses(
    scores: np.ndarray,
    included: np.ndarray,
    *,
    delta: float,
    confidence: float,
    fractions: Sequence[float] = GUESS_FRACTIONS,
) -> GuessOutcome:
    """Guess from ``scores`` (higher: more likely in) which canaries were ``included``, for
    each rule in ``fractions``, and return the rule with the largest lower bound.

    Each rule is tested at level ``(1 - confidence) / len(fractions)`` (Bonferroni), so the
    returned bound holds at ``confidence`` although the rule was picked after the fact.
    Ties in the scores are broken by canary index (a fixed rule, as the theorem needs).
    """
    s = np.asarray(scores, dtype=np.float64)
    inc = np.asarray(included, dtype=bool)
    m = int(s.size)
    if s.ndim != 1 or inc.shape != s.shape or m < 2:
        raise InvalidArgument("scores and included must be vectors of the same length >= 2")
    if not np.isfinite(s).all():
        raise InvalidArgument("scores must be finite")
    if not fractions or not all(0 < f <= 0.5 for f in fractions):
        raise InvalidArgument(f"fractions must be non-empty, each in (0, 0.5], got {fractions}")
    per_rule = 1.0 - (1.0 - confidence) / len(fractions)
    order = np.argsort(-s, kind="stable")  # highest score first
    best: GuessOutcome | None = None
    for f in fractions:
        k = max(1, min(m // 2, math.floor(f * m)))
        top, bottom = order[:k], order[m - k :]
        correct = int(inc[top].sum()) + int((~inc[bottom]).sum())
        bound = epsilon_lower_bound(m=m, r=2 * k, v=correct, delta=delta, confidence=per_rule)
        if best is None or bound > best.lower_bound:
            best = GuessOutcome(m, k, k, correct, bound, delta, confidence)
    assert best is not None
    return best
