"""Vectorized Poisson sampling from a :class:`~secfl.hazmat.rng.Csprng` (for Skellam noise).

* ``lam < 10``: inversion of a float64 CDF table (searchsorted on 53-bit uniforms).
* ``lam >= 10``: PTRS, Hoermann's transformed rejection with squeeze ("The transformed
  rejection method for generating Poisson random variables", Insurance: Mathematics and
  Economics 12, 1993), batch-vectorized. The log-pmf in the acceptance test is evaluated
  with Loader's saddle-point form (``bd0`` and ``stirlerr``; "Fast and accurate computation
  of binomial probabilities", 2000), which stays accurate to ~1e-15 for large ``lam`` where
  ``k log(lam) - lam - lgamma(k+1)`` loses digits to cancellation (about 1e-6 relative
  at ``lam = 1e9`` in float64).

Every float step uses :mod:`secfl.dp._detmath` (no libm or SIMD transcendental), so a
seeded draw is the same on every CPU. This is *robust*, not bit-exact: outcome
probabilities are correct up to float64 rounding in the table or the acceptance ratio
(relative error ~1e-13), and the table/uniform resolution of 2^-53 limits how far into
the tail a single draw can reach. Unlike the textbook float Laplace there is no
structured leakage through low-order bits, because the output is an integer chosen by a
comparison, not a float computed from the uniform.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from secfl.dp._detmath import exp_scalar, log, log_scalar
from secfl.hazmat.rng import Csprng

MAX_LAM = float(1 << 50)
_LOG_SQRT_2PI = 0.9189385332046728  # ln sqrt(2 pi), correctly rounded
# stirlerr(n) = lgamma(n+1) - (n+1/2) log n + n - log sqrt(2 pi), exactly for small n.
_STIRLERR_TABLE = np.array(
    [0.0]
    + [
        log_scalar(math.factorial(n)) - (n + 0.5) * log_scalar(n) + n - _LOG_SQRT_2PI
        for n in range(1, 16)
    ]
)


def _stirlerr(n: np.ndarray) -> np.ndarray:
    """Stirling's series remainder for integer-valued float64 ``n >= 1``."""
    out = np.empty_like(n)
    small = n <= 15
    out[small] = _STIRLERR_TABLE[n[small].astype(np.int64)]
    m = n[~small]
    nn = m * m
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    out[~small] = (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / m
    return out


def _bd0(x: np.ndarray, lam: float) -> np.ndarray:
    """``x log(x/lam) + lam - x`` without cancellation (Loader's deviance term), x >= 1."""
    d = x - lam
    out: np.ndarray = x * log(x / lam) + lam - x
    near = np.abs(d) < 0.1 * (x + lam)
    if near.any():
        xs, ds = x[near], d[near]
        v = ds / (xs + lam)
        s = ds * v
        ej = 2.0 * xs * v
        v2 = v * v
        for j in range(1, 16):  # |v| < 0.1: each term is < 1/100 of the previous one
            ej *= v2
            s = s + ej / (2 * j + 1)
        out[near] = s
    return out


def poisson_log_pmf(k: np.ndarray, lam: float) -> np.ndarray:
    """log P(K = k) for K ~ Poisson(lam), float64 ``k >= 0`` integer-valued."""
    out = np.full(k.shape, -lam, dtype=np.float64)
    pos = k > 0
    kp = k[pos]
    out[pos] = -_stirlerr(kp) - _bd0(kp, lam) - _LOG_SQRT_2PI - 0.5 * log(kp)
    return out


def _inversion(rng: Csprng, lam: float, size: int) -> np.ndarray:
    pmf = [exp_scalar(-lam)]
    k = 0
    while k < lam or pmf[-1] > 2.0**-60:
        k += 1
        pmf.append(pmf[-1] * lam / k)
        if pmf[-1] < 1e-300:
            break
    cdf = np.array(list(itertools.accumulate(pmf)))
    cdf /= cdf[-1]
    out: np.ndarray = np.searchsorted(cdf, rng.uniform(size), side="right").astype(np.int64)
    return out


def _ptrs(rng: Csprng, lam: float, size: int) -> np.ndarray:
    slam = math.sqrt(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_inv_alpha = log_scalar(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        need = size - filled
        m = need + need // 4 + 16
        u = rng.uniform(m) - 0.5
        v = rng.uniform(m)
        us = 0.5 - np.abs(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.floor((2.0 * a / us + b) * u + lam + 0.43)
        ok = (us >= 0.07) & (v <= vr)
        slow = np.flatnonzero(~ok & (k >= 0) & ~((us < 0.013) & (v > us)))
        if slow.size:
            ks, uss, vs = k[slow], us[slow], v[slow]
            # log(0) = -inf accepts, as in the textbook algorithm (probability 2^-53).
            log_v = np.where(vs > 0.0, log(np.where(vs > 0.0, vs, 1.0)), -np.inf)
            lhs = log_v + log_inv_alpha - log(a / (uss * uss) + b)
            ok[slow] = lhs <= poisson_log_pmf(ks, lam)
        take = k[ok][:need].astype(np.int64)
        out[filled : filled + take.size] = take
        filled += take.size
    return out


def poisson(rng: Csprng, lam: float, size: int) -> np.ndarray:
    """``size`` draws from Poisson(lam) as int64; ``0 <= lam <= 2^50`` (checked by caller)."""
    if lam == 0.0:
        return np.zeros(size, dtype=np.int64)
    if lam < 10.0:
        return _inversion(rng, lam, size)
    return _ptrs(rng, lam, size)
