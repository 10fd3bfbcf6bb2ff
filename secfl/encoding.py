"""Fixed-point codec: float vectors <-> integers in Z_M, and the headroom planner.

A value x is encoded as ``round(x * scale) mod M``. Sums of encodings are sums in Z_M, and a
sum decodes as the centred lift (the representative in [-M/2, M/2)) divided by ``scale``:
two's-complement style, so negative values need no offset. The planner chooses M = 2^bits
and a power-of-two ``scale`` so that the sum of ``n_clients`` clipped inputs can never wrap
around M; an input outside the planned range raises :class:`EncodingOverflow` instead of
wrapping silently. Normative description: ``protocols/encoding-v1.md``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from secfl._text import plural
from secfl.errors import EncodingOverflow, InvalidArgument
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng

__all__ = ["FixedPointCodec", "Norm", "Rounding", "plan_codec"]

MIN_BITS = 8
MAX_BITS = 64
_MAX_SCALE_BITS = 52  # a float64 keeps 53 significant bits; beyond this rounding is not exact


class Rounding(enum.Enum):
    """How a scaled value is rounded to an integer."""

    NEAREST = "nearest"
    """Round half to even (deterministic; error <= 1/2 quantum, biased for a fixed input)."""
    STOCHASTIC = "stochastic"
    """Round up with probability equal to the fractional part (unbiased; needs an rng)."""


class Norm(enum.Enum):
    """Which norm the per-client clip bound refers to."""

    L2 = "l2"
    LINF = "linf"


@dataclass(frozen=True)
class FixedPointCodec:
    """Encodes float vectors as integers in Z_{2^bits} with a power-of-two scale.

    ``max_abs`` is the largest |x| a single client may encode (its clip bound, coordinate-
    wise); ``n_clients`` the most encodings ever summed. Construction checks that such a sum
    fits; use :func:`plan_codec` to choose ``bits`` and ``scale_bits`` from requirements.
    """

    bits: int
    scale_bits: int
    max_abs: float
    n_clients: int

    def __post_init__(self) -> None:
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise InvalidArgument(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {self.bits}")
        if not -_MAX_SCALE_BITS <= self.scale_bits <= _MAX_SCALE_BITS:
            raise InvalidArgument(
                f"scale_bits must be in -{_MAX_SCALE_BITS}..{_MAX_SCALE_BITS}, "
                f"got {self.scale_bits}"
            )
        if not (math.isfinite(self.max_abs) and self.max_abs > 0):
            raise InvalidArgument(f"max_abs must be a finite positive number, got {self.max_abs}")
        if self.n_clients < 1:
            raise InvalidArgument(f"n_clients must be >= 1, got {self.n_clients}")
        need = required_bits(self.n_clients, self.max_abs, self.scale_bits)
        if need > self.bits:
            raise EncodingOverflow(
                f"the sum of {plural(self.n_clients, 'input')} with |x| <= {self.max_abs} at "
                f"scale 2^{self.scale_bits} needs {need} bits but the codec has bits={self.bits}; "
                f"raise bits, lower scale_bits (precision), max_abs (clip bound) or n_clients"
            )

    @property
    def modulus(self) -> int:
        """M = 2^bits."""
        return 1 << self.bits

    @property
    def scale(self) -> float:
        """Multiplier from floats to integers, 2^scale_bits."""
        return math.ldexp(1.0, self.scale_bits)

    @property
    def quantum(self) -> float:
        """The value of one integer step, 1/scale."""
        return math.ldexp(1.0, -self.scale_bits)

    @property
    def dtype(self) -> np.dtype[np.unsignedinteger]:
        """The unsigned numpy dtype holding elements of Z_M."""
        return uint_dtype(self.bits)

    def quantize(
        self, x: np.ndarray, *, rounding: Rounding = Rounding.NEAREST, rng: Csprng | None = None
    ) -> np.ndarray:
        """Signed integers ``round(x * scale)`` as int64, after checking the range.

        Raises :class:`InvalidArgument` for NaN/inf or a non-float array and
        :class:`EncodingOverflow` if some |x| exceeds ``max_abs``.
        """
        x = _as_float_vector(x)
        self._check_range(x)
        # Scale in float64 (exact: the scale is a power of two), also for float32 input.
        y = np.multiply(x, self.scale, dtype=np.float64)
        if rounding is Rounding.NEAREST:
            np.rint(y, out=y)
        elif rounding is Rounding.STOCHASTIC:
            if rng is None:
                raise InvalidArgument("stochastic rounding needs an rng (a secfl Csprng)")
            floor = np.floor(y)
            y -= floor  # fractional part in [0, 1)
            floor += rng.uniform(y.size).reshape(y.shape) < y
            y = floor
        else:
            raise InvalidArgument(f"rounding must be a Rounding member, got {rounding!r}")
        out: np.ndarray = y.astype(np.int64)
        return out

    def to_ring(self, q: np.ndarray) -> np.ndarray:
        """Signed int64 integers -> their residues in Z_M (two's complement, unsigned dtype)."""
        u: np.ndarray = np.asarray(q, dtype=np.int64).view(np.uint64)
        if self.bits == 64:
            return np.array(u, copy=True)
        masked: np.ndarray = u & np.uint64(self.modulus - 1)
        return masked.astype(self.dtype)

    def encode(
        self, x: np.ndarray, *, rounding: Rounding = Rounding.NEAREST, rng: Csprng | None = None
    ) -> np.ndarray:
        """Float vector -> vector over Z_M (see :meth:`quantize` for errors)."""
        return self.to_ring(self.quantize(x, rounding=rounding, rng=rng))

    def centred(self, s: np.ndarray) -> np.ndarray:
        """Elements of Z_M -> signed int64 representatives in [-M/2, M/2)."""
        s = np.asarray(s)
        if s.dtype != self.dtype:
            raise InvalidArgument(f"expected a {self.dtype} vector over Z_M, got dtype {s.dtype}")
        if self.bits < self.dtype.itemsize * 8 and s.size and int(s.max()) >> self.bits:
            raise InvalidArgument(f"vector has entries >= M = 2^{self.bits}; not in Z_M")
        u = s.astype(np.uint64)
        if self.bits < 64:
            half = np.uint64(1 << (self.bits - 1))
            # Sign-extend: subtract M from values >= M/2, computed in uint64 wrap-around.
            u = u - ((u >= half).astype(np.uint64) << np.uint64(self.bits))
        return u.view(np.int64)

    def decode(self, s: np.ndarray, *, n_summed: int | None = None) -> np.ndarray:
        """A sum (or single encoding) over Z_M -> float64 values.

        ``n_summed``: how many encodings the sum holds; more than the codec was planned for
        may have wrapped around, so it raises :class:`EncodingOverflow` instead of
        decoding a wrong value.
        """
        self.check_sum_size(n_summed if n_summed is not None else 1)
        return self.centred(s).astype(np.float64) * self.quantum

    def check_sum_size(self, n_summed: int) -> None:
        """Raise :class:`EncodingOverflow` if a sum of ``n_summed`` encodings may wrap."""
        if n_summed > self.n_clients:
            raise EncodingOverflow(
                f"a sum of {n_summed} encodings may wrap around: this codec was planned for "
                f"n_clients={self.n_clients}; plan it for the round's number of clients"
            )

    def _check_range(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        peak = float(np.max(np.abs(x)))
        if peak <= self.max_abs:
            return
        if not math.isfinite(peak):
            bad = int(np.flatnonzero(~np.isfinite(x.reshape(-1)))[0])
            raise InvalidArgument(
                f"input has a non-finite value at index {bad}; NaN/inf cannot be encoded"
            )
        raise EncodingOverflow(
            f"input has |x| = {peak:.6g} > max_abs = {self.max_abs:.6g}; clip the update to "
            f"the planned bound or plan the codec with a larger clip_bound"
        )


def required_bits(n_clients: int, max_abs: float, scale_bits: int) -> int:
    """Bits M = 2^bits needs so that n sums of |q| <= max_abs*scale + 1 stay in [-M/2, M/2).

    The +1 covers stochastic rounding, which may round up past ``max_abs * scale``.
    """
    try:
        per_client = math.floor(math.ldexp(max_abs, scale_bits)) + 1
    except OverflowError as e:
        raise EncodingOverflow(
            f"clip bound {max_abs} at scale 2^{scale_bits} is beyond any fixed-point range; "
            f"lower the clip bound or the precision"
        ) from e
    total = n_clients * per_client
    # need total < M/2  <=>  total <= 2^(bits-1) - 1
    return max(MIN_BITS, (total).bit_length() + 1)


def plan_codec(
    *,
    n_clients: int,
    clip_bound: float,
    norm: Norm = Norm.L2,
    precision: float | None = None,
    bits: int | None = None,
) -> FixedPointCodec:
    """Choose ``bits`` and ``scale_bits`` so the sum of ``n_clients`` clipped inputs fits.

    Give ``precision`` (the largest acceptable quantum, e.g. 1e-5) to get the smallest
    modulus with a quantum at least that fine; give ``bits`` to get the finest scale that
    fits in 2^bits; give both to check that they are compatible. Either way the bound is
    per coordinate: an L2 or L_inf clip bound C implies |x_i| <= C for every coordinate,
    so ``norm`` does not change the plan; it is recorded for the caller's validation.

    Raises :class:`EncodingOverflow` naming what to change when nothing fits in 64 bits.
    """
    if not isinstance(norm, Norm):
        raise InvalidArgument(f"norm must be a Norm member, got {norm!r}")
    if n_clients < 1:
        raise InvalidArgument(f"n_clients must be >= 1, got {n_clients}")
    if not (math.isfinite(clip_bound) and clip_bound > 0):
        raise InvalidArgument(f"clip_bound must be a finite positive number, got {clip_bound}")
    if precision is None and bits is None:
        raise InvalidArgument("give precision (the quantum you need), bits, or both")
    if precision is not None and not (math.isfinite(precision) and precision > 0):
        raise InvalidArgument(f"precision must be a finite positive number, got {precision}")
    if bits is not None and not MIN_BITS <= bits <= MAX_BITS:
        raise InvalidArgument(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")

    if precision is not None:
        scale_bits = max(-_MAX_SCALE_BITS, math.ceil(-math.log2(precision)))
        while math.ldexp(1.0, -scale_bits) > precision:  # log2 rounding near powers of two
            scale_bits += 1
        if scale_bits > _MAX_SCALE_BITS:
            raise EncodingOverflow(f"precision {precision} is finer than 2^-{_MAX_SCALE_BITS}")
        need = required_bits(n_clients, clip_bound, scale_bits)
        if bits is None:
            if need > MAX_BITS:
                raise EncodingOverflow(
                    f"{plural(n_clients, 'client')} x clip_bound {clip_bound} at precision "
                    f"{precision} need {need} bits > {MAX_BITS}; coarsen precision, lower "
                    f"clip_bound or "
                    f"aggregate fewer clients per sum"
                )
            bits = need
        elif need > bits:
            raise EncodingOverflow(
                f"{plural(n_clients, 'client')} x clip_bound {clip_bound} at precision "
                f"{precision} need {need} bits but bits={bits}; raise bits to {need}, coarsen "
                f"precision, or "
                f"lower clip_bound / n_clients"
            )
        return FixedPointCodec(
            bits=bits, scale_bits=scale_bits, max_abs=clip_bound, n_clients=n_clients
        )

    assert bits is not None
    # Finest scale with n * (floor(C * 2^s) + 1) < 2^(bits-1).
    scale_bits = _MAX_SCALE_BITS
    while (
        scale_bits >= -_MAX_SCALE_BITS and required_bits(n_clients, clip_bound, scale_bits) > bits
    ):
        scale_bits -= 1
    if scale_bits < -_MAX_SCALE_BITS:
        raise EncodingOverflow(
            f"{plural(n_clients, 'client')} x clip_bound {clip_bound} cannot fit in {bits} bits "
            "at any scale; raise bits or lower n_clients"
        )
    return FixedPointCodec(
        bits=bits, scale_bits=scale_bits, max_abs=clip_bound, n_clients=n_clients
    )


def _as_float_vector(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        raise InvalidArgument(f"expected a float32 or float64 array, got dtype {arr.dtype}")
    return arr
