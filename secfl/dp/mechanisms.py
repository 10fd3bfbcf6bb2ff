"""Noise mechanisms: Gaussian (central, local), exact discrete Gaussian, Skellam, and the
distributed versions that run on clients before secure aggregation.

All randomness comes from an injected :class:`~secfl.hazmat.rng.Csprng`.

**Continuous Gaussian** (:func:`gaussian`, :class:`GaussianMechanism`) uses Box-Muller on
53-bit uniforms, with the log, sine and cosine of :mod:`secfl.dp._detmath` so that a seeded
draw is the same on every CPU. Floating-point caveat: the outputs are float64 values whose set and
spacing depend on the computation, not reals; Mironov (CCS 2012) showed that the low-order
bits of textbook float Laplace noise can reveal the unnoised value, and the same class of
attack applies in principle to any float noise. The draws are also truncated at
``sqrt(2 ln 2^53) ~ 8.6`` standard deviations. Use it where the released value is itself
a float aggregate computed in the clear by a trusted party (central DP); for noise that is
added on clients before secure aggregation use the integer mechanisms below.

**Exact discrete Gaussian** (:func:`discrete_gaussian`): Canonne, Kamath, Steinke
(NeurIPS 2020), integer arithmetic only, rational ``sigma^2``, vectorized (see
:mod:`secfl.dp._exact`). Timing side channel: the sampler rejects and retries, and the
number of rounds (each round's cost) depends on the random values drawn, so the time to
sample a batch carries a little information about the batch. Batching averages it over
the whole vector, but does not remove it. Where timing is observable, draw noise before
the round with :meth:`DistributedNoise.presample` (a :class:`NoiseReservoir`), so that the
round's messages do not depend on sampling time.

**Skellam** (:func:`skellam`): difference of two Poissons (see :mod:`secfl.dp._poisson`
for the Poisson sampler and its float-precision notes).

**Distributed DP** (:class:`DistributedNoise`): each of the clients adds integer noise of
variance ``sigma^2 / min_clients`` to its scaled, rotated, conditionally rounded update,
so the sum over any ``n >= min_clients`` survivors carries noise of variance
``>= sigma^2``. :func:`plan_distributed` picks the finest fixed-point scale for which
``n_clients`` clipped updates plus the summed noise's tail fit in ``bits`` bits.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NoReturn

import numpy as np

from secfl._text import plural
from secfl.dp import _detmath, _exact, _poisson
from secfl.dp._detmath import fixed_order_sum
from secfl.dp.accounting import DiscreteGaussianSumEvent, GaussianEvent, SkellamSumEvent
from secfl.dp.clipping import l2_norm
from secfl.encoding import MAX_BITS, MIN_BITS
from secfl.errors import EncodingOverflow, InvalidArgument, SecflError
from secfl.hazmat.rng import Csprng

__all__ = [
    "DistributedNoise",
    "DistributedPlan",
    "GaussianMechanism",
    "NoiseKind",
    "NoiseReservoir",
    "Placement",
    "SignalBound",
    "conditional_round",
    "discrete_gaussian",
    "discrete_laplace",
    "distributed_required_bits",
    "gaussian",
    "noise_tail_bound",
    "plan_distributed",
    "poisson",
    "rational_sigma_squared",
    "required_bits_with_noise",
    "rounded_l2_bound",
    "skellam",
]


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArgument(f"size must be an int >= 0, got {size!r}")
    return size


def _check_rng(rng: object) -> Csprng:
    if not isinstance(rng, Csprng):
        raise InvalidArgument(f"rng must be a secfl Csprng, got {type(rng).__name__}")
    return rng


def _finite_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise InvalidArgument(f"{name} must be a finite number > 0, got {value}")
    return float(value)


# -- continuous Gaussian ----------------------------------------------------------------


def gaussian(size: int, *, stddev: float, rng: Csprng) -> np.ndarray:
    """``size`` float64 draws from N(0, stddev^2) by Box-Muller (see the module caveat)."""
    size = _check_size(size)
    if not (math.isfinite(stddev) and stddev >= 0):
        raise InvalidArgument(f"stddev must be a finite number >= 0, got {stddev}")
    _check_rng(rng)
    half = (size + 1) // 2
    u1 = 1.0 - rng.uniform(half)  # in (0, 1]: log is finite
    u2 = rng.uniform(half)
    radius = np.sqrt(-2.0 * _detmath.log(u1))
    sin, cos = _detmath.sin_cos_2pi(u2)
    out = np.concatenate((radius * cos, radius * sin))[:size]
    out *= stddev
    return out


class Placement(enum.Enum):
    """Who adds the Gaussian noise."""

    CENTRAL = "central"
    """Once, by the party that sees the aggregate (trusted aggregator / key holder)."""
    LOCAL = "local"
    """By every client on its own update: private even against the aggregator."""


@dataclass(frozen=True, kw_only=True)
class GaussianMechanism:
    """Gaussian noise of stddev ``noise_multiplier * clip_bound``, central or local."""

    noise_multiplier: float
    clip_bound: float
    placement: Placement = Placement.CENTRAL

    def __post_init__(self) -> None:
        _finite_positive(self.noise_multiplier, "noise_multiplier")
        _finite_positive(self.clip_bound, "clip_bound")
        if not isinstance(self.placement, Placement):
            raise InvalidArgument(f"placement must be a Placement, got {self.placement!r}")

    @property
    def stddev(self) -> float:
        """Standard deviation of the noise each adding party draws."""
        return self.noise_multiplier * self.clip_bound

    def add_noise(self, x: np.ndarray, *, rng: Csprng) -> np.ndarray:
        """``x + N(0, stddev^2)`` per coordinate, as float64."""
        arr = np.asarray(x, dtype=np.float64)
        out: np.ndarray = arr + gaussian(arr.size, stddev=self.stddev, rng=rng).reshape(arr.shape)
        return out

    def event(self, *, n_clients: int = 1) -> GaussianEvent:
        """The event of releasing the aggregate of ``n_clients`` updates.

        Central: ``GaussianEvent(z)``. Local: the sum carries ``n_clients`` independent
        noises, ``GaussianEvent(z * sqrt(n_clients))``; each client's own release (what the
        aggregator sees from it) is ``GaussianEvent(z)``, i.e. ``n_clients=1``.
        """
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
            raise InvalidArgument(f"n_clients must be an int >= 1, got {n_clients!r}")
        if self.placement is Placement.CENTRAL:
            return GaussianEvent(self.noise_multiplier)
        return GaussianEvent(self.noise_multiplier * math.sqrt(n_clients))


# -- exact integer samplers ---------------------------------------------------------------


def rational_sigma_squared(sigma_squared: int | Fraction | float) -> Fraction:
    """``sigma^2`` as the exact rational the discrete Gaussian sampler uses.

    Integers and fractions are taken as they are. A float is rounded *up* to a dyadic
    rational ``N / 2^k`` with ``k <= 26`` and about 30 significant bits when ``sigma^2 >=
    1/16`` (more noise, never less; relative change <= 2^-29 there, <= 2^-22 down to
    ``sigma^2 = 1/4``).
    Raises :class:`InvalidArgument` outside the supported range (numerator <= 2^50,
    denominator <= 2^26).
    """
    value: Fraction
    if isinstance(sigma_squared, bool):
        raise InvalidArgument("sigma_squared must be a number, not a bool")
    if isinstance(sigma_squared, int | Fraction):
        value = Fraction(sigma_squared)
    elif isinstance(sigma_squared, float):
        if not (math.isfinite(sigma_squared) and sigma_squared > 0):
            raise InvalidArgument(f"sigma_squared must be finite and > 0, got {sigma_squared}")
        if sigma_squared.is_integer() and sigma_squared < 2.0**53:
            value = Fraction(int(sigma_squared))
        else:
            k = min(26, max(0, 30 - math.frexp(sigma_squared)[1]))
            value = Fraction(math.ceil(math.ldexp(sigma_squared, k)), 1 << k)
    else:
        raise InvalidArgument(
            f"sigma_squared must be an int, Fraction or float, got {type(sigma_squared).__name__}"
        )
    return _exact.check_fraction(value, "sigma_squared")


def discrete_gaussian(
    size: int, *, sigma_squared: int | Fraction | float, rng: Csprng
) -> np.ndarray:
    """``size`` exact draws from the discrete Gaussian N_Z(0, sigma^2), as int64.

    P(y) is proportional to ``exp(-y^2 / (2 sigma^2))`` for every integer y, exactly (no
    floating point; ``sigma^2`` as in :func:`rational_sigma_squared`). About 0.5 s per
    10^6 draws on one core. Timing depends on the values drawn: see the module notes.
    """
    size = _check_size(size)
    s2 = rational_sigma_squared(sigma_squared)
    return _exact.discrete_gaussian(_check_rng(rng), s2, size)


def discrete_laplace(size: int, *, scale: int | Fraction, rng: Csprng) -> np.ndarray:
    """``size`` exact draws with P(y) proportional to ``exp(-|y| / scale)``, as int64."""
    size = _check_size(size)
    if isinstance(scale, bool) or not isinstance(scale, int | Fraction):
        raise InvalidArgument(f"scale must be an int or Fraction, got {scale!r}")
    t = _exact.check_fraction(Fraction(scale), "scale")
    return _exact.discrete_laplace(_check_rng(rng), t.numerator, t.denominator, size)


def poisson(size: int, *, lam: float, rng: Csprng) -> np.ndarray:
    """``size`` draws from Poisson(lam) as int64, ``0 <= lam <= 2^50`` (see _poisson)."""
    size = _check_size(size)
    if isinstance(lam, bool) or not isinstance(lam, int | float):
        raise InvalidArgument(f"lam must be a number, got {lam!r}")
    if not (math.isfinite(lam) and 0 <= lam <= _poisson.MAX_LAM):
        raise InvalidArgument(f"lam must be in [0, 2^50], got {lam}")
    return _poisson.poisson(_check_rng(rng), float(lam), size)


def skellam(size: int, *, variance: float, rng: Csprng) -> np.ndarray:
    """``size`` draws of Poisson(variance/2) - Poisson(variance/2) (variance ``variance``)."""
    if isinstance(variance, bool) or not isinstance(variance, int | float):
        raise InvalidArgument(f"variance must be a number, got {variance!r}")
    if not (math.isfinite(variance) and 0 <= variance <= _poisson.MAX_LAM):
        raise InvalidArgument(f"variance must be in [0, 2^50], got {variance}")
    lam = float(variance) / 2.0
    out: np.ndarray = poisson(size, lam=lam, rng=rng) - poisson(size, lam=lam, rng=rng)
    return out


# -- conditional randomized rounding ------------------------------------------------------


def rounded_l2_bound(*, l2_bound: float, dimension: int, beta: float) -> float:
    """The L2 bound conditional randomized rounding enforces on a vector of norm ``l2_bound``.

    Kairouz, Liu, Steinke (ICML 2021), Proposition 22: unconditioned stochastic rounding
    of ``x`` (``||x|| <= c``, ``d`` coordinates) exceeds
    ``sqrt(c^2 + d/4 + sqrt(2 ln(1/beta)) (c + sqrt(d)/2))`` with probability at most
    ``beta``; it can never exceed ``c + sqrt(d)``. The smaller of the two is the integer L2
    sensitivity. ``beta = 0`` selects the deterministic bound (no retries needed).
    """
    c = _finite_positive(l2_bound, "l2_bound")
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
        raise InvalidArgument(f"dimension must be an int >= 1, got {dimension!r}")
    if not (isinstance(beta, int | float) and 0.0 <= beta < 1.0):
        raise InvalidArgument(f"beta must be in [0, 1), got {beta!r}")
    root_d = math.sqrt(dimension)
    bound = c + root_d
    if beta > 0:
        squared = (
            c * c + dimension / 4.0 + math.sqrt(2.0 * math.log(1.0 / beta)) * (c + root_d / 2.0)
        )
        bound = min(bound, math.sqrt(squared))
    return bound


def _int_norm_at_most(q: np.ndarray, bound: float) -> bool:
    """Exactly whether the integer vector ``q`` has L2 norm <= ``bound``."""
    qf = q.astype(np.float64)
    approx = fixed_order_sum(qf * qf)
    limit = bound * bound
    if abs(approx - limit) > 1e-9 * max(limit, 1.0):
        return approx <= limit
    return sum(int(v) * int(v) for v in q) <= Fraction(bound) ** 2


def conditional_round(
    x: np.ndarray, *, norm_bound: float, rng: Csprng, max_tries: int = 10_000
) -> np.ndarray:
    """Stochastically round ``x`` to integers, retrying until the L2 norm is <= ``norm_bound``.

    Each coordinate rounds up with probability equal to its fractional part (unbiased);
    the whole vector is redrawn while its norm exceeds ``norm_bound``, normally
    :func:`rounded_l2_bound` of the scaled clip bound, so the sum's integer sensitivity is
    exactly ``norm_bound`` (KLS21, Sec. 4.1). Expected tries ``<= 1 / (1 - beta)``.
    Returns int64. ``x`` is the scaled (and rotated) float vector.
    """
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64) or arr.ndim != 1:
        raise InvalidArgument(f"x must be a 1-D float vector, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float64)
    if arr.size and not (np.isfinite(arr).all() and float(np.max(np.abs(arr))) < 2.0**52):
        raise InvalidArgument("x must be finite with |x_i| < 2^52 to round exactly")
    bound = _finite_positive(norm_bound, "norm_bound")
    if l2_norm(arr) > bound:
        raise InvalidArgument(
            f"||x|| = {l2_norm(arr):.6g} exceeds norm_bound = {bound:.6g}; clip (and scale) "
            f"x first and derive norm_bound with rounded_l2_bound"
        )
    _check_rng(rng)
    floor = np.floor(arr)
    frac = arr - floor
    base = floor.astype(np.int64)
    for _ in range(max_tries):
        q: np.ndarray = base + (rng.uniform(arr.size) < frac)
        if _int_norm_at_most(q, bound):
            return q
    raise InvalidArgument(
        f"no rounding of x within norm_bound {bound:.6g} after {max_tries} tries; use "
        f"rounded_l2_bound with a larger beta"
    )


# -- distributed noise ----------------------------------------------------------------------


class NoiseKind(enum.Enum):
    """Integer noise for distributed DP."""

    DISCRETE_GAUSSIAN = "ddg"
    """Distributed discrete Gaussian (Kairouz, Liu, Steinke, ICML 2021)."""
    SKELLAM = "skellam"
    """Distributed Skellam (Agarwal, Kairouz, Liu, NeurIPS 2021)."""


class NoiseReservoir:
    """Integer noise drawn ahead of time, handed out in order, each value at most once.

    Sampling before the round keeps the sampler's data-dependent running time out of the
    round's timing. Served values are zeroed in the reservoir.
    """

    __slots__ = ("_offset", "_values")

    def __init__(self, values: np.ndarray) -> None:
        arr = np.asarray(values)
        if arr.dtype != np.int64 or arr.ndim != 1:
            raise InvalidArgument("a NoiseReservoir holds a 1-D int64 array")
        self._values: np.ndarray = arr.copy()
        self._offset = 0

    @property
    def remaining(self) -> int:
        """How many values are left."""
        return self._values.size - self._offset

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` values; raises :class:`InvalidArgument` if too few remain."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgument(f"count must be an int >= 0, got {count!r}")
        if count > self.remaining:
            raise InvalidArgument(
                f"reservoir has {self.remaining} values left, {count} requested; presample "
                f"more rounds"
            )
        end = self._offset + count
        out: np.ndarray = self._values[self._offset : end].copy()
        self._values[self._offset : end] = 0
        self._offset = end
        return out

    def __repr__(self) -> str:
        return f"NoiseReservoir(remaining={self.remaining})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("NoiseReservoir holds secret noise and cannot be pickled")


@dataclass(frozen=True, kw_only=True)
class DistributedNoise:
    """Integer noise one client adds so that the securely summed noise is private.

    The summed noise over ``min_clients`` clients has standard deviation
    ``noise_multiplier * l2_sensitivity`` (integer units; ``l2_sensitivity`` is the
    post-rounding bound from :func:`rounded_l2_bound`). Each client's share has variance
    ``sigma^2 / min_clients``, so more survivors only add noise. ``dimension`` is the length
    of the noised vector (the padded dimension when rotating).
    """

    kind: NoiseKind
    noise_multiplier: float
    l2_sensitivity: float
    min_clients: int
    dimension: int
    _sigma_squared: Fraction | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, NoiseKind):
            raise InvalidArgument(f"kind must be a NoiseKind, got {self.kind!r}")
        _finite_positive(self.noise_multiplier, "noise_multiplier")
        _finite_positive(self.l2_sensitivity, "l2_sensitivity")
        for name in ("min_clients", "dimension"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgument(f"{name} must be an int >= 1, got {value!r}")
        s2: Fraction | None = None
        if self.kind is NoiseKind.DISCRETE_GAUSSIAN:
            if self.target_local_variance < 0.25:
                raise InvalidArgument(
                    f"each client's discrete Gaussian share has sigma = "
                    f"{math.sqrt(self.target_local_variance):.4g} < 1/2, below what the "
                    f"distributed bound covers; raise noise_multiplier or the scale, or lower "
                    f"min_clients"
                )
            s2 = rational_sigma_squared(self.target_local_variance)
        elif not self.target_local_variance <= _poisson.MAX_LAM:
            raise InvalidArgument("Skellam share variance exceeds 2^50; lower the scale")
        object.__setattr__(self, "_sigma_squared", s2)

    @property
    def total_stddev(self) -> float:
        """Target standard deviation of the summed noise over ``min_clients`` clients."""
        return self.noise_multiplier * self.l2_sensitivity

    @property
    def target_local_variance(self) -> float:
        """``sigma^2 / min_clients``: the variance each client's share should have."""
        return self.total_stddev**2 / self.min_clients

    @property
    def local_variance(self) -> float:
        """The variance parameter each share actually uses (DDG: rounded up, rational)."""
        if self._sigma_squared is not None:
            return float(self._sigma_squared)
        return self.target_local_variance

    def sample(self, *, rng: Csprng) -> np.ndarray:
        """One client's noise share: ``dimension`` int64 values."""
        if self._sigma_squared is not None:
            return _exact.discrete_gaussian(_check_rng(rng), self._sigma_squared, self.dimension)
        return skellam(self.dimension, variance=self.local_variance, rng=rng)

    def presample(self, *, rounds: int, rng: Csprng) -> NoiseReservoir:
        """Draw ``rounds`` shares now; :meth:`NoiseReservoir.take` one ``dimension`` each round."""
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise InvalidArgument(f"rounds must be an int >= 1, got {rounds!r}")
        total = rounds * self.dimension
        if self._sigma_squared is not None:
            values = _exact.discrete_gaussian(_check_rng(rng), self._sigma_squared, total)
        else:
            values = skellam(total, variance=self.local_variance, rng=rng)
        return NoiseReservoir(values)

    def event(self, *, n_clients: int) -> DiscreteGaussianSumEvent | SkellamSumEvent:
        """The realized round's event when ``n_clients`` shares are in the sum.

        Use the number of survivors whose noise is in the sum (minus any clients assumed
        to collude with the server). Fewer than ``min_clients`` gives a weaker guarantee,
        which this reports rather than hides.
        """
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
            raise InvalidArgument(f"n_clients must be an int >= 1, got {n_clients!r}")
        if self._sigma_squared is not None:
            # Round the float sigma down: the bound then never credits more noise than used.
            sigma = math.nextafter(math.sqrt(float(self._sigma_squared)), 0.0)
            return DiscreteGaussianSumEvent(
                local_sigma=sigma,
                n_clients=n_clients,
                l2_sensitivity=self.l2_sensitivity,
                dimension=self.dimension,
            )
        return SkellamSumEvent(
            local_variance=self.local_variance,
            n_clients=n_clients,
            l2_sensitivity=self.l2_sensitivity,
            dimension=self.dimension,
        )

    def tail_bound(self, *, n_clients: int, failure_probability: float) -> int:
        """Integer T with P(some coordinate of the sum of ``n_clients`` shares has |.| > T)
        <= ``failure_probability`` (see :func:`noise_tail_bound`)."""
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
            raise InvalidArgument(f"n_clients must be an int >= 1, got {n_clients!r}")
        return noise_tail_bound(
            kind=self.kind,
            total_variance=n_clients * self.local_variance,
            dimension=self.dimension,
            failure_probability=failure_probability,
        )


# -- headroom ---------------------------------------------------------------------------


def noise_tail_bound(
    *, kind: NoiseKind, total_variance: float, dimension: int, failure_probability: float
) -> int:
    """An integer T such that the summed noise exceeds T in absolute value in *any* of the
    ``dimension`` coordinates with probability at most ``failure_probability``.

    Discrete Gaussian shares are sub-Gaussian with variance proxy sigma^2 (CKS20), so the
    sum is too with proxy ``V`` and ``P(|S| > T) <= 2 exp(-T^2 / (2V))``. Skellam has
    log-MGF ``V (cosh t - 1)``; Chernoff gives ``P(|S| > T) <= 2 exp(-V h(T/V))`` with
    ``h(u) = u asinh(u) - sqrt(1 + u^2) + 1``. A union bound covers the coordinates.
    """
    if not isinstance(kind, NoiseKind):
        raise InvalidArgument(f"kind must be a NoiseKind, got {kind!r}")
    v = _finite_positive(total_variance, "total_variance")
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
        raise InvalidArgument(f"dimension must be an int >= 1, got {dimension!r}")
    if not (isinstance(failure_probability, float) and 0.0 < failure_probability < 1.0):
        raise InvalidArgument(f"failure_probability must be in (0, 1), got {failure_probability}")
    log_budget = math.log(2.0 * dimension / failure_probability)  # need exponent >= this
    if kind is NoiseKind.DISCRETE_GAUSSIAN:
        return math.ceil(math.sqrt(2.0 * v * log_budget))

    def h(u: float) -> float:
        # u*asinh(u) - sqrt(1+u^2) + 1, with the last two terms combined as
        # -u^2 / (1 + sqrt(1+u^2)) to avoid cancellation for small u.
        return u * math.asinh(u) - u * u / (1.0 + math.sqrt(1.0 + u * u))

    lo, hi = 0.0, 1.0
    while v * h(hi) < log_budget:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if v * h(mid) < log_budget:
            lo = mid
        else:
            hi = mid
    return math.ceil(v * hi)


def required_bits_with_noise(
    *, n_clients: int, max_abs: float, scale_bits: int, noise_bound: int
) -> int:
    """Bits M = 2^bits needs so that ``n_clients`` quantized inputs plus noise never wrap.

    The same arithmetic as :func:`secfl.encoding.required_bits` (each client contributes
    at most ``floor(max_abs * 2^scale_bits) + 1`` per coordinate, the +1 for rounding up),
    plus ``noise_bound`` for the summed noise (e.g. :func:`noise_tail_bound`): the total
    must stay below M/2. May exceed 64; the caller decides.
    """
    if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
        raise InvalidArgument(f"n_clients must be an int >= 1, got {n_clients!r}")
    _finite_positive(max_abs, "max_abs")
    if isinstance(noise_bound, bool) or not isinstance(noise_bound, int) or noise_bound < 0:
        raise InvalidArgument(f"noise_bound must be an int >= 0, got {noise_bound!r}")
    try:
        per_client = math.floor(math.ldexp(max_abs, scale_bits)) + 1
    except OverflowError as e:
        raise EncodingOverflow(
            f"clip bound {max_abs} at scale 2^{scale_bits} is beyond any fixed-point range"
        ) from e
    total = n_clients * per_client + noise_bound
    return max(MIN_BITS, total.bit_length() + 1)


class SignalBound(enum.Enum):
    """How the headroom planner bounds a coordinate of the sum of the (rotated) updates."""

    WORST_CASE = "worst_case"
    """Each client contributes at most ``clip * scale + 1`` per coordinate: never wraps,
    even for updates chosen after seeing the round's (public) rotation seed."""
    ROTATED = "rotated"
    """Each coordinate of the rotated sum is sub-Gaussian with variance proxy
    ``(n clip scale)^2 / d`` (KLS21, Sec. 4.2), plus up to ``n`` from rounding: needs
    updates chosen independently of the rotation seed (honest clients); a coordinate may
    wrap with probability at most half the failure probability."""


def distributed_required_bits(
    *,
    n_clients: int,
    clip_bound: float,
    scale_bits: int,
    noise: DistributedNoise,
    failure_probability: float,
    signal: SignalBound = SignalBound.WORST_CASE,
) -> int:
    """Bits M = 2^bits needs so the sum of ``n_clients`` noised updates stays in [-M/2, M/2)
    (in every coordinate, except with probability ``failure_probability``)."""
    if not isinstance(signal, SignalBound):
        raise InvalidArgument(f"signal must be a SignalBound, got {signal!r}")
    if not (isinstance(failure_probability, float) and 0.0 < failure_probability < 1.0):
        raise InvalidArgument(f"failure_probability must be in (0, 1), got {failure_probability}")
    if signal is SignalBound.WORST_CASE:
        tail = noise.tail_bound(n_clients=n_clients, failure_probability=failure_probability)
        return required_bits_with_noise(
            n_clients=n_clients, max_abs=clip_bound, scale_bits=scale_bits, noise_bound=tail
        )
    half = failure_probability / 2.0
    tail = noise.tail_bound(n_clients=n_clients, failure_probability=half)
    d = noise.dimension
    spread = math.sqrt(2.0 * math.log(2.0 * d / half) / d)
    signal_bound = math.ceil(n_clients * math.ldexp(clip_bound, scale_bits) * spread)
    total = signal_bound + n_clients + tail
    return max(MIN_BITS, total.bit_length() + 1)


DDG_TAU_LIMIT = 0.01
"""Above this many nats per round of KLS21's tau term (tau x d', at every order), a ddg
plan's guarantee is dominated by the sum of its shares not being a discrete Gaussian."""


def ddg_collapse(noise: DistributedNoise, *, n_clients: int) -> str | None:
    """Why a ddg plan's guarantee collapses (shares too small for KLS21's bound), naming
    the fixes; None when it does not (or for Skellam, which has no such term).

    The ddg curve adds tau x d' nats per round at every order (tau = 10 sum_k
    exp(-2 pi^2 sigma_l^2 k/(k+1))): negligible for sigma_l >= 1.5, ruinous below 1 (e.g.
    z = 1, q = 0.05, T = 200, 2000 clients, 14 bits, d = 4096: sigma_l = 0.73, epsilon
    352 855, where Skellam gives 6.76).
    """
    if noise.kind is not NoiseKind.DISCRETE_GAUSSIAN:
        return None
    from secfl.dp import _rdp

    sigma = math.sqrt(noise.local_variance)
    cost = _rdp.ddg_tau(sigma, n_clients) * noise.dimension
    if cost <= DDG_TAU_LIMIT:
        return None
    return (
        f"each client's discrete Gaussian share has sigma_l = {sigma:.3g}, so the sum of "
        f"{n_clients} shares is far from a discrete Gaussian and costs {cost:.3g} nats per "
        f"round (KLS21's tau x d' = {noise.dimension}): the epsilon is mostly that term. Use "
        f"more bits (a finer scale gives each share more integer noise), fewer clients per "
        f"ring, or a larger noise multiplier, until sigma_l >= 1.5; or Skellam "
        f"(DPMechanism.SKELLAM, no such term; zero-out and unsampled only)"
    )


@dataclass(frozen=True)
class DistributedPlan:
    """A fixed-point scale and noise for distributed DP that fit the modulus.

    ``scale_bits`` is the codec's scale (x -> round(x * 2^scale_bits)), ``noise`` each
    client's share, ``required_bits <= bits`` what the plan needs under ``signal``.
    """

    bits: int
    scale_bits: int
    noise: DistributedNoise
    required_bits: int
    failure_probability: float
    signal: SignalBound


def plan_distributed(
    *,
    bits: int,
    n_clients: int,
    min_clients: int,
    clip_bound: float,
    dimension: int,
    noise_multiplier: float,
    kind: NoiseKind,
    beta: float = math.exp(-0.5),
    failure_probability: float = 1e-9,
    signal: SignalBound = SignalBound.WORST_CASE,
    scale_bits: int | None = None,
) -> DistributedPlan:
    """The finest power-of-two scale at which ``n_clients`` updates plus noise fit ``bits``.

    At scale ``2^s`` the integer sensitivity is ``rounded_l2_bound(clip_bound * 2^s,
    dimension, beta)`` and the shares target ``noise_multiplier`` times it over
    ``min_clients`` clients (more than ``n_clients`` where the shares are sized for a public
    count, ``DistributedDP(noise_clients=...)``); the sum of ``n_clients`` (the most that
    can survive) clipped
    updates plus the noise tail at ``failure_probability`` must fit ``bits`` (see
    :func:`distributed_required_bits`). ``dimension`` is the length of the noised vector.
    Raises :class:`EncodingOverflow` naming what to change when no scale fits.
    ``scale_bits``: plan at this scale only (one planned for a larger public cohort, so
    the scale does not depend on the round's), or raise if it does not fit.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise InvalidArgument(f"bits must be an int in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    for name, value in (("n_clients", n_clients), ("min_clients", min_clients)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(f"{name} must be an int >= 1, got {value!r}")
    _finite_positive(clip_bound, "clip_bound")
    _finite_positive(noise_multiplier, "noise_multiplier")
    if not isinstance(kind, NoiseKind):
        raise InvalidArgument(f"kind must be a NoiseKind, got {kind!r}")
    rounded_l2_bound(l2_bound=1.0, dimension=dimension, beta=beta)  # validates both
    if scale_bits is not None and (
        isinstance(scale_bits, bool) or not isinstance(scale_bits, int) or abs(scale_bits) > 52
    ):
        raise InvalidArgument(f"scale_bits must be an int in -52..52, got {scale_bits!r}")
    scales = range(52, -53, -1) if scale_bits is None else (scale_bits,)
    last_error: SecflError | None = None
    for scale in scales:
        try:
            sens = rounded_l2_bound(
                l2_bound=math.ldexp(clip_bound, scale), dimension=dimension, beta=beta
            )
            noise = DistributedNoise(
                kind=kind,
                noise_multiplier=noise_multiplier,
                l2_sensitivity=sens,
                min_clients=min_clients,
                dimension=dimension,
            )
        except (InvalidArgument, OverflowError) as e:
            # Out of the sampler's (or float's) range at this scale: try a coarser one.
            last_error = e if isinstance(e, SecflError) else last_error
            continue
        need = distributed_required_bits(
            n_clients=n_clients,
            clip_bound=clip_bound,
            scale_bits=scale,
            noise=noise,
            failure_probability=failure_probability,
            signal=signal,
        )
        if need <= bits:
            return DistributedPlan(
                bits=bits,
                scale_bits=scale,
                noise=noise,
                required_bits=need,
                failure_probability=failure_probability,
                signal=signal,
            )
    if last_error is not None:
        # Every fine-enough scale was refused by the sampler (e.g. a share's sigma < 1/2):
        # less noise per share would make it worse, so do not suggest that.
        raise EncodingOverflow(
            f"no scale fits: {last_error}; raise bits (a finer scale gives each of the "
            f"{min_clients} shares more integer noise) or lower min_clients"
        )
    raise EncodingOverflow(
        f"{plural(n_clients, 'client')} x clip_bound {clip_bound} with noise_multiplier "
        f"{noise_multiplier} over {plural(min_clients, 'client')} do not fit in {bits} bits at "
        f"{'any scale' if scale_bits is None else f'scale 2^{scale_bits}'}; raise bits, or "
        f"lower n_clients or the noise multiplier"
    )
