"""Floating-point arithmetic that gives the same bits on every CPU.

numpy's reductions (``np.dot``, ``np.sum``, ``np.linalg.norm``) add in an order chosen by the
BLAS kernel and the SIMD level, and its transcendental functions (``np.log``, ``np.sin``,
...) switch to vectorised approximations on CPUs that have AVX-512. Either changes the last
bits of a float, and where that float decides an integer the client sends (is the update
clipped, is a rounding accepted, is a Poisson draw accepted), the message changes with the
machine. Everything here is built from IEEE-754 operations that are correctly rounded
element by element (``+ - * /``, ``sqrt``, ``frexp``, ``floor``) in an order fixed by this
code, so it is reproducible on any conforming CPU and in any language. Scalars that are
computed once use :mod:`decimal`, which is correctly rounded in software.

The functions are accurate to a few ulps, not correctly rounded; they are deterministic, which
is what protocol messages and known-answer vectors need.
"""

from __future__ import annotations

import decimal
import math

import numpy as np

__all__ = ["exp_scalar", "fixed_order_sum", "log", "log_scalar", "sin_cos_2pi"]

# fdlibm's split of ln 2: the high part has 32 trailing zero bits, so e * _LN2_HI is exact.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT_HALF = 0.7071067811865476
# 2 atanh(t) = 2 (t + t^3/3 + t^5/5 + ...): |t| <= 0.1716 after reduction, t^26/27 < 1e-21.
_ATANH_COEFFS = tuple(1.0 / (2 * k + 1) for k in range(13))
_HALF_PI = 1.5707963267948966
# Taylor coefficients of sin and cos on [0, pi/2]: the first omitted term is below 1e-19.
_SIN_COEFFS: tuple[float, ...] = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(12))
_COS_COEFFS: tuple[float, ...] = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(12))
_DECIMAL = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)


def fixed_order_sum(values: np.ndarray) -> float:
    """The float64 sum of ``values`` by pairwise halving, in an order every CPU follows.

    Pad with zeros to a power of two, then repeatedly add the upper half to the lower half,
    element by element, until one value remains. Relative error <= log2(n) ulps for
    non-negative terms.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        return 0.0
    if arr.size == 1:
        return float(arr[0])
    # The first halving adds the upper part (implicitly zero-padded) onto the lower half.
    width = 1 << ((arr.size - 1).bit_length() - 1)
    work = arr[:width].copy()
    np.add(work[: arr.size - width], arr[width:], out=work[: arr.size - width])
    while width > 1:
        width //= 2
        np.add(work[:width], work[width : 2 * width], out=work[:width])
    return float(work[0])


def _horner(x: np.ndarray, coeffs: tuple[float, ...]) -> np.ndarray:
    """``sum coeffs[k] * x^k``, one multiply and one add per step (no fused multiply-add)."""
    out = np.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * x + c
    return out


def log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive finite float64 values, elementwise, within a few ulps."""
    arr = np.asarray(x, dtype=np.float64)
    mant, expo = np.frexp(arr)  # arr = mant * 2^expo, mant in [0.5, 1): exact
    low = mant < _SQRT_HALF
    mant = np.where(low, mant * 2.0, mant)  # now in [sqrt(1/2), sqrt(2)): exact
    e = (expo - low).astype(np.float64)
    t = (mant - 1.0) / (mant + 1.0)
    series = 2.0 * t * _horner(t * t, _ATANH_COEFFS)
    out: np.ndarray = (e * _LN2_LO + series) + e * _LN2_HI
    return out


def sin_cos_2pi(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sin(2 pi u), cos(2 pi u))`` for float64 ``u`` in [0, 1), elementwise."""
    arr = np.asarray(u, dtype=np.float64)
    quarter = np.floor(arr * 4.0)  # the quadrant, 0..3; arr * 4 and the difference are exact
    theta = (arr * 4.0 - quarter) * _HALF_PI  # in [0, pi/2)
    sq = theta * theta
    s = theta * _horner(sq, _SIN_COEFFS)
    c = _horner(sq, _COS_COEFFS)
    q = quarter.astype(np.int64) & 3
    sin = np.choose(q, (s, c, -s, -c))
    cos = np.choose(q, (c, -s, -c, s))
    return sin, cos


def log_scalar(x: float) -> float:
    """``ln(x)`` for one positive float, correctly rounded to 40 digits then to float64."""
    return float(_DECIMAL.ln(decimal.Decimal(x)))


def exp_scalar(x: float) -> float:
    """``e^x`` for one float, correctly rounded to 40 digits then to float64."""
    return float(_DECIMAL.exp(decimal.Decimal(x)))
