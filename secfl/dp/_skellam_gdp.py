"""A Gaussian (GDP) bound for the distributed Skellam, so that PLD accounting covers it.

``protocols/distributed-dp-v1.md`` section 10.8 has the proof; in short:

* The released noise is Skellam with total variance ``V`` per coordinate, whose pmf
  ``p(z) = e^-V I_|z|(V)`` is symmetric and log-concave on Z (a difference of Poissons).
  A shift by ``k`` therefore has a monotone likelihood ratio: the hockey-stick divergence
  of (N + k, N) at any epsilon >= 0 is attained by a prefix set {z <= c}, with masses
  ``F(c)`` and ``F(c - k)``.
* With ``g = Phi^-1 o F``, the pair is dominated by the Gaussian shift of parameter
  ``k * m1`` wherever ``g(c) - g(c - 1) <= m1``: telescoping gives
  ``F(c) <= Phi(Phi^-1(F(c - k)) + k m1)``, the Gaussian's best power at that level.
* ``m1`` is the largest ``h(c) = g(c) - g(c - 1)`` over a window that extends ``K``
  (the largest coordinate shift) beyond where the Chernoff bound puts mass ``TAIL``;
  prefixes outside the window add at most ``TAIL``. One coordinate is thus dominated by a
  Gaussian shift that reveals the neighbour with probability ``TAIL``; over ``d``
  coordinates and an integer update ``x`` these compose to a Gaussian of parameter
  ``m1 |x|_2 <= m1 * l2_sensitivity`` with slack ``d * TAIL`` (Blackwell; f-DP
  composition, Dong, Roth and Su 2019).

``m1`` is computed from the exact pmf (scipy's ``ive``) for ``V <= EXACT_MAX_VARIANCE``;
above it, from the bounds ``-asinh((n + 1)/V) <= ln(I_{n+1}(V)/I_n(V)) <= -asinh((n +
1/2)/V)`` (Amos 1974; Segura 2011) on blocks of lattice points, each bound taken the
pessimistic way (floating-point error is covered by ``FLOAT_MARGIN``). ``m1 sqrt(V)`` is
about ``1 + 1/(6V)``: the Skellam round is within a hair of the Gaussian of the same
variance.
"""

from __future__ import annotations

import functools
import math

import numpy as np

TAIL = 1e-30
"""Per coordinate: the chance with which the dominating Gaussian may reveal the neighbour
(the Skellam mass outside the window, at each end)."""
EXACT_MAX_VARIANCE = 1e7
"""Up to this total variance ``m1`` comes from the exact pmf at every lattice point."""
MAX_POINTS = 1 << 22
"""The exact path's window is at most this many points (a wider one: no bound)."""
BLOCKS = 1 << 20
"""The bounded path splits the window into at most this many blocks."""
MAX_VARIANCE = 1e24
"""Above this total variance (far beyond any plan: shares are capped at 2^50) no bound."""
FLOAT_MARGIN = 1e-6
"""``m1`` is inflated by this relative margin for floating-point error (the computed
differences are accurate to about 1e-10 relative; spec section 10.8)."""


def _log_tail_bound(t: float, variance: float) -> float:
    """ln of Chernoff's bound on P[N <= -t] for N Skellam of total variance ``variance``
    (E e^{sN} = exp(V (cosh s - 1)), optimized at s = asinh(t/V))."""
    v = variance
    return -(t * math.asinh(t / v) - t * t / (math.hypot(t, v) + v))


def _radius(variance: float, tail: float) -> int:
    """The least integer ``t`` with P[N <= -t] <= ``tail`` by the Chernoff bound."""
    target = math.log(tail)
    hi = 1.0
    while _log_tail_bound(hi, variance) > target:
        hi *= 2.0
    lo = 0.0
    while hi - lo > max(0.5, 1e-12 * hi):
        mid = (lo + hi) / 2.0
        if _log_tail_bound(mid, variance) > target:
            lo = mid
        else:
            hi = mid
    return math.ceil(hi)


def _log_phi_of_quantile(f: np.ndarray) -> np.ndarray:
    """ln phi(Phi^-1(f)) for 0 < f <= 1/2."""
    from scipy import special

    g = special.ndtri_exp(np.log(f))
    out: np.ndarray = -0.5 * g * g - 0.5 * math.log(2.0 * math.pi)
    return out


def _exact_m1(variance: float, window: int, outer: int) -> float | None:
    """max h(c) over c in [-window, 0] (so, by symmetry, over [-window, window]) from the
    exact pmf summed from ``-outer``; None if too wide."""
    from scipy import special

    if outer + 1 > MAX_POINTS:
        return None
    z = np.arange(-outer, 1, dtype=np.float64)
    p = special.ive(np.abs(z), variance)
    if not np.isfinite(p).all():
        return None
    g = special.ndtri(np.cumsum(p))
    h = np.diff(g)[z[1:] >= -window]
    return float(np.max(h))


def _bounded_m1(variance: float, window: int, outer: int) -> float | None:
    """An upper bound on max h(c) over c in [-window, 0] from the Bessel-ratio bounds, the
    masses bounded out to ``outer`` and beyond; None where a mass underflows (a window
    many standard deviations wide: a tiny noise multiplier)."""
    x = variance
    size = max(1, -(-outer // BLOCKS))
    edges = np.arange(1, outer + size + 1, size, dtype=np.float64)  # block i: [e_i, e_{i+1})
    n = edges

    def integral(u: np.ndarray) -> np.ndarray:  # int_0^u asinh(t/x) dt
        out: np.ndarray = u * np.arcsinh(u / x) - u * u / (np.hypot(u, x) + x)
        return out

    # ln p~(n) = sum_{v<n} ln r_v with p~(0) = 1; asinh is increasing and concave.
    upper = -integral(n)  # midpoint rule: sum asinh((v+1/2)/x) >= int_0^n
    lower = -(integral(n) - integral(np.ones(1)) + (math.asinh(1.0 / x) + np.arcsinh(n / x)) / 2)
    steps = np.diff(n)
    # Block masses: log-concavity puts the pmf above the chord of the lower bounds; the
    # ratios r_v shrink with v, so the pmf stays below its first ratio's geometric run.
    chord = (lower[1:] - lower[:-1]) / steps
    low_mass = np.exp(lower[:-1]) * -np.expm1(chord * steps) / -np.expm1(chord)
    first = -np.arcsinh((n[:-1] + 0.5) / x)
    high_mass = np.exp(upper[:-1]) * -np.expm1(first * steps) / -np.expm1(first)
    tail = math.exp(float(upper[-1])) / -math.expm1(-math.asinh((float(n[-1]) + 0.5) / x))
    z_low = 1.0 + 2.0 * float(np.sum(low_mass))
    z_high = 1.0 + 2.0 * (float(np.sum(high_mass)) + tail)
    # F(-e_{i+1}) >= (masses of blocks beyond i) / Z: a suffix sum, for each block.
    beyond = np.concatenate((np.cumsum(low_mass[::-1])[::-1][1:], [0.0]))
    inside = n[:-1] <= window
    keep = inside & (beyond > 0.0)
    if not keep[inside].all():
        return None
    # h(c) <= p(c) / phi(g(c - 1)) on c <= 0; p(c) <= p~(e_i)/Z, F(c - 1) >= beyond_i/Z.
    log_h = upper[:-1][keep] - math.log(z_low) - _log_phi_of_quantile(beyond[keep] / z_high)
    # c = 0: h(0) <= p(0)/phi(g(-1)), F(-1) >= (all lower masses)/Z.
    centre = -math.log(z_low) - float(
        _log_phi_of_quantile(np.array([float(np.sum(low_mass)) / z_high]))[0]
    )
    return math.exp(max(float(np.max(log_h)), centre))


@functools.cache
def unit_shift_gdp(variance: float, max_shift: int) -> float | None:
    """``m1``: per unit of integer shift, the Gaussian (GDP) parameter that dominates a
    Skellam of total variance ``variance`` shifted by at most ``max_shift`` in one
    coordinate (up to the slack ``TAIL``); None where secfl cannot bound it."""
    if not 0.0 < variance <= MAX_VARIANCE or max_shift < 1:
        return None
    # The window [-window, window] has F(-window + K) <= TAIL; the sums start at -outer,
    # below which lies at most 1e-20 of TAIL (so F is exact to that, relatively).
    window = _radius(variance, TAIL) + max_shift
    outer = _radius(variance, TAIL * 1e-20) + max_shift
    if variance <= EXACT_MAX_VARIANCE:
        m1 = _exact_m1(variance, window, outer)
    else:
        m1 = _bounded_m1(variance, window, outer)
    if m1 is None or not math.isfinite(m1):
        return None
    return m1 * (1.0 + FLOAT_MARGIN)


def round_gdp(
    *, total_variance: float, l2_sensitivity: float, dimension: int
) -> tuple[float, float] | None:
    """``(mu, slack)``: one zero-out Skellam round is dominated by a Gaussian shift of
    parameter ``mu`` that reveals the neighbour with probability ``slack``; None where
    secfl has no such bound (then RDP accounts the round)."""
    m1 = unit_shift_gdp(float(total_variance), math.floor(l2_sensitivity))
    if m1 is None:
        return None
    return m1 * l2_sensitivity, dimension * TAIL
