"""Exact integer samplers (Canonne, Kamath, Steinke, NeurIPS 2020), vectorized with numpy.

Every probability below is a ratio of integers and every random decision compares a
uniform integer from :class:`~secfl.hazmat.rng.Csprng` with an integer, so the output
distribution is exactly the target one: no floating point is involved anywhere. Batches
are processed with index arrays; each loop round draws for all still-active entries at once.

* ``bernoulli_exp(num, den)``: Bernoulli(exp(-num/den)) (CKS Algorithm 1 and its extension
  to gamma > 1: one Bernoulli(exp(-1)) per unit of the integer part).
* ``discrete_laplace(t, s)``: P(y) proportional to exp(-|y| s / t) (CKS Algorithm 2).
* ``discrete_gaussian(num, den)``: P(y) proportional to exp(-y^2 / (2 sigma^2)) with
  ``sigma^2 = num/den`` (CKS Algorithm 3), by rejection from a discrete Laplace.

CKS Algorithm 3 proposes from a Laplace of scale ``t = floor(sigma) + 1`` and accepts with
``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``; the construction is correct for *any* ``t > 0``
(the product of proposal and acceptance is proportional to the Gaussian for every ``t``).
For ``sigma >= 1`` we take ``t = sigma^2 / c`` with the integer ``c = floor(sigma)``, so
the shift ``sigma^2/t = c`` is an integer and the acceptance exponent becomes
``(|y| - c)^2 den / (2 num)``: a denominator of ``2 num`` instead of ``~ sigma^4 den^2``,
which keeps every quantity inside 64-bit integers. For ``sigma < 1`` we take ``t = 1``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from secfl.errors import InvalidArgument, SecflError
from secfl.hazmat.rng import Csprng

MAX_NUMERATOR = 1 << 50
"""Largest numerator of sigma^2 (or of a Laplace scale): sigma <= 2^25 for integer sigma^2."""
MAX_DENOMINATOR = 1 << 26
"""Largest denominator of sigma^2 (or of a Laplace scale)."""
_I64_MAX = (1 << 63) - 1


def _below(rng: Csprng, bound: int, size: int) -> np.ndarray:
    """``size`` uniform int64 values in [0, bound), ``1 <= bound < 2^63``."""
    out: np.ndarray = rng.integers_below(bound, size).view(np.int64)
    return out


def _bernoulli_ratio(rng: Csprng, num: np.ndarray | int, den: int, size: int) -> np.ndarray:
    """Bernoulli(num/den) per entry, ``0 <= num <= den < 2^63``, without a modulo.

    With ``q = floor(2^64/den)``, a uniform 64-bit U conditioned on U < q*den has
    ``floor(U/q)`` uniform on [0, den), and ``floor(U/q) < num`` iff ``U < num*q``
    (which fits: num*q <= q*den < 2^64). Draws >= q*den are redrawn (rare: < den/2^64).
    """
    if den == 1:  # num is 0 or 1: no randomness needed
        fixed: np.ndarray = np.broadcast_to(np.asarray(num) >= 1, (size,)).copy()
        return fixed
    q = (1 << 64) // den
    limit = np.uint64(q * den - 1)
    u = rng.uint64(size)
    bad = np.flatnonzero(u > limit)
    while bad.size:
        u[bad] = rng.uint64(bad.size)
        bad = bad[u[bad] > limit]
    if isinstance(num, int):
        scalar: np.ndarray = u < np.uint64(num * q)
        return scalar
    threshold = np.ascontiguousarray(num, dtype=np.int64).view(np.uint64) * np.uint64(q)
    out: np.ndarray = u < threshold
    return out


def _coin(rng: Csprng, size: int) -> np.ndarray:
    """``size`` fair coin flips as a bool array."""
    raw = np.frombuffer(rng.bytes((size + 7) // 8), dtype=np.uint8)
    out: np.ndarray = np.unpackbits(raw)[:size].astype(bool)
    return out


def bernoulli_exp_fraction(rng: Csprng, num: np.ndarray, den: int) -> np.ndarray:
    """Bernoulli(exp(-num/den)) for int64 ``0 <= num <= den`` (CKS Algorithm 1).

    Draw A_k ~ Bernoulli(gamma/k) for k = 1, 2, ... until the first A_k = 0; output 1 iff
    that k is odd. Bernoulli(gamma/k) is Bernoulli(num/den) AND Bernoulli(1/k), so the
    bounds stay ``den`` and ``k``. All entries still running share the same ``k``.
    """
    out = np.empty(num.size, dtype=bool)
    idx = np.arange(num.size)
    k = 1
    while idx.size:
        a = _bernoulli_ratio(rng, num[idx], den, idx.size)
        if k > 1:
            a &= _bernoulli_ratio(rng, 1, k, idx.size)
        out[idx[~a]] = k % 2 == 1
        idx = idx[a]
        k += 1
    return out


def bernoulli_exp_minus_one(rng: Csprng, size: int) -> np.ndarray:
    """Bernoulli(exp(-1)): Algorithm 1 with gamma = 1 (A_1 = 1 always, so start at k = 2)."""
    out = np.empty(size, dtype=bool)
    idx = np.arange(size)
    k = 2
    while idx.size:
        a = _bernoulli_ratio(rng, 1, k, idx.size)
        out[idx[~a]] = k % 2 == 1
        idx = idx[a]
        k += 1
    return out


def bernoulli_exp(rng: Csprng, num: np.ndarray, den: int) -> np.ndarray:
    """Bernoulli(exp(-num/den)) for int64 ``num >= 0`` and ``1 <= den < 2^63``.

    exp(-gamma) = exp(-(gamma - floor(gamma))) * exp(-1)^floor(gamma): the fractional part
    by Algorithm 1, then one Bernoulli(exp(-1)) per unit of the integer part, stopping at
    the first failure (independent factors, so the order does not matter).
    """
    g, r = np.divmod(num, den)
    out = bernoulli_exp_fraction(rng, r, den)
    idx = np.flatnonzero(out & (g > 0))
    rem = g[idx]
    while idx.size:
        a = bernoulli_exp_minus_one(rng, idx.size)
        out[idx[~a]] = False
        keep = a & (rem > 1)
        idx, rem = idx[keep], rem[keep] - 1
    return out


def _bernoulli_exp_big(rng: Csprng, num: int, den: int) -> bool:
    """Scalar Bernoulli(exp(-num/den)) for a Python-int ``num`` of any size (rare path)."""
    g, r = divmod(num, den)
    if not bool(bernoulli_exp_fraction(rng, np.array([r], dtype=np.int64), den)[0]):
        return False
    while g > 0:
        if not bool(bernoulli_exp_minus_one(rng, 1)[0]):
            return False
        g -= 1
    return True


def _geometric_exp_minus_one(rng: Csprng, size: int) -> np.ndarray:
    """Number of Bernoulli(exp(-1)) successes before the first failure, per entry."""
    v = np.zeros(size, dtype=np.int64)
    idx = np.arange(size)
    while idx.size:
        idx = idx[bernoulli_exp_minus_one(rng, idx.size)]
        v[idx] += 1
    return v


def discrete_laplace(rng: Csprng, t: int, s: int, size: int) -> np.ndarray:
    """``size`` draws with P(y) proportional to exp(-|y| s/t), int64 (CKS Algorithm 2).

    U ~ Uniform{0..t-1} kept with probability exp(-U/t) and V ~ Geometric(1 - exp(-1))
    make X = U + tV geometric with ratio exp(-1/t); Y = floor(X/s) is geometric with ratio
    exp(-s/t); a sign (rejecting "-0") gives the two-sided law.
    """
    if not (1 <= t <= MAX_NUMERATOR and 1 <= s <= MAX_NUMERATOR * MAX_DENOMINATOR):
        raise InvalidArgument(f"Laplace scale t/s = {t}/{s} is outside the supported range")
    out = np.empty(size, dtype=np.int64)
    filled = 0
    rate = 0.5
    while filled < size:
        need = size - filled
        m = int(need / rate) + 16
        u = _below(rng, t, m)
        u = u[bernoulli_exp_fraction(rng, u, t)]
        v = _geometric_exp_minus_one(rng, u.size)
        if v.size and int(v.max()) > (_I64_MAX - t) // t:  # probability < exp(-2^12)
            raise SecflError("discrete Laplace geometric overflow; this should never happen")
        y = (u + t * v) // s
        neg = _coin(rng, y.size)
        ok = ~(neg & (y == 0))
        y = np.where(neg, -y, y)[ok]
        rate = max(0.05, y.size / m)
        take = y[:need]
        out[filled : filled + take.size] = take
        filled += take.size
    return out


def check_fraction(value: Fraction, what: str) -> Fraction:
    """Reject rationals whose numerator or denominator exceed the 64-bit-safe limits."""
    if value <= 0:
        raise InvalidArgument(f"{what} must be > 0, got {value}")
    if value.numerator > MAX_NUMERATOR or value.denominator > MAX_DENOMINATOR:
        raise InvalidArgument(
            f"{what} = {value} needs numerator <= 2^50 and denominator <= 2^26 "
            f"(sigma <= 2^25 for integer sigma^2); use a coarser rational or a smaller scale"
        )
    return value


def discrete_gaussian(rng: Csprng, sigma_squared: Fraction, size: int) -> np.ndarray:
    """``size`` exact draws from N_Z(0, sigma^2) as int64 (CKS Algorithm 3, see module doc)."""
    num, den = sigma_squared.numerator, sigma_squared.denominator
    if num >= den:
        c = math.isqrt(num // den)  # floor(sigma) >= 1
        lap_t, lap_s, gden = num, den * c, 2 * num
    else:
        c = 0
        lap_t, lap_s, gden = 1, 1, 2 * num * den
    out = np.empty(size, dtype=np.int64)
    filled = 0
    rate = 0.6
    while filled < size:
        need = size - filled
        m = int(need / rate) + 16
        y = discrete_laplace(rng, lap_t, lap_s, m)
        a = np.abs(y)
        # Acceptance exponent gnum/gden, computed where it fits in int64, else exactly below.
        if c:
            a -= c
            safe = np.abs(a) <= math.isqrt(_I64_MAX // den)
            gnum = np.where(safe, a * a * den, 0)
        else:
            safe = a <= (_I64_MAX // 2) // den
            d = np.where(safe, a * den - num, 0)
            safe &= np.abs(d) <= math.isqrt(_I64_MAX)
            gnum = np.where(safe, d * d, 0)
        accept = bernoulli_exp(rng, gnum, gden)
        for i in np.flatnonzero(~safe):  # |y| beyond ~sqrt(2^63): probability < e^-30
            yi = abs(int(y[i]))
            big = (yi - c) ** 2 * den if c else (yi * den - num) ** 2
            accept[i] = _bernoulli_exp_big(rng, big, gden)
        y = y[accept]
        rate = max(0.05, y.size / m)
        take = y[:need]
        out[filled : filled + take.size] = take
        filled += take.size
    return out
