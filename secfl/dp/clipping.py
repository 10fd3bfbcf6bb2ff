"""L2 clipping: flat, per layer, and adaptive (private quantile estimation).

Clipping bounds each client's contribution, which is what every DP guarantee in
:mod:`secfl.dp` is stated against: with flat clipping at ``C`` the L2 sensitivity of the sum
is ``C``; with per-layer bounds ``C_l`` it is ``sqrt(sum C_l^2)``.

The bound is guaranteed on the returned array as stored (in its own dtype), not only in
exact arithmetic: the scale factor is nudged down until the float64 norm of the result is
``<= bound``, so a float32 update cannot exceed its bound by a rounding error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from secfl.dp._detmath import exp_scalar, fixed_order_sum
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng

__all__ = [
    "AdaptiveClipConfig",
    "AdaptiveClipper",
    "ClipResult",
    "ClipRoundReport",
    "LayerClipResult",
    "clip_l2",
    "clip_per_layer",
    "l2_norm",
    "per_layer_l2_bound",
    "update_noise_multiplier",
]


def _check_bound(bound: float, name: str = "bound") -> float:
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise InvalidArgument(f"{name} must be a positive float, got {bound!r}")
    if not (math.isfinite(bound) and bound > 0):
        raise InvalidArgument(f"{name} must be a finite positive number, got {bound}")
    return float(bound)


def _as_float_array(x: np.ndarray, name: str = "x") -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        raise InvalidArgument(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    if arr.size and not np.isfinite(arr).all():
        raise InvalidArgument(f"{name} contains NaN or inf; clip a finite update")
    return arr


def l2_norm(x: np.ndarray) -> float:
    """The L2 norm of ``x`` in float64, without overflow, with the same bits on every CPU.

    ``peak * sqrt(S)`` where ``peak = max |x_i|`` and ``S`` sums ``(x_i / peak)^2`` by
    :func:`~secfl.dp._detmath.fixed_order_sum` (``protocols/encoding-v1.md``, "L2 norm"):
    clipping decisions must not depend on the machine's BLAS kernel or SIMD level.
    Returns ``inf`` only when the true norm exceeds the float64 range.
    """
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        return 0.0
    peak = float(np.max(np.abs(arr)))
    if peak == 0.0:
        return 0.0
    scaled = arr / peak
    return peak * math.sqrt(fixed_order_sum(scaled * scaled))


@dataclass(frozen=True)
class ClipResult:
    """A clipped vector, the norm it had before clipping, and whether clipping changed it."""

    clipped: np.ndarray
    norm: float
    was_clipped: bool


def clip_l2(x: np.ndarray, *, bound: float) -> ClipResult:
    """Scale ``x`` so that its L2 norm is at most ``bound``; keep its direction and dtype.

    Vectors already within the bound are returned unchanged (a copy). Raises
    :class:`InvalidArgument` for a non-float array, NaN/inf entries or a bad bound.
    """
    bound = _check_bound(bound)
    arr = _as_float_array(x)
    norm = l2_norm(arr)
    if norm <= bound:
        return ClipResult(clipped=np.array(arr, copy=True), norm=norm, was_clipped=False)
    # norm > bound > 0, so the array has a non-zero entry; scale relative to the peak so
    # neither the norm nor the product overflows.
    flat64 = arr.astype(np.float64)
    peak = float(np.max(np.abs(flat64)))
    unit = flat64 / peak
    factor = bound / l2_norm(unit)
    out = (unit * factor).astype(arr.dtype)
    # Rounding (and the cast to float32) may land a hair above the bound: shrink until not.
    # A few ulps suffice for normal floats; halve when subnormal results need more.
    shrink, tries = 1.0, 0
    while l2_norm(out) > bound:
        shrink *= 1.0 - 2.0**-20 if tries < 4 else 0.5
        tries += 1
        out = (unit * (factor * shrink)).astype(arr.dtype)
    return ClipResult(clipped=out, norm=norm, was_clipped=True)


@dataclass(frozen=True)
class LayerClipResult:
    """Per-layer clipping output: the clipped tensors, their pre-clip norms, who was clipped."""

    tensors: dict[str, np.ndarray]
    norms: dict[str, float]
    clipped: frozenset[str]

    @property
    def fraction_clipped(self) -> float:
        """The fraction of layers whose norm exceeded their bound."""
        return len(self.clipped) / len(self.norms) if self.norms else 0.0


def clip_per_layer(
    tensors: Mapping[str, np.ndarray], *, bounds: Mapping[str, float]
) -> LayerClipResult:
    """Clip each named tensor to its own L2 bound (``bounds[name]``).

    Every tensor needs a bound and every bound a tensor (a typo would otherwise silently
    leave a layer unclipped). The L2 sensitivity of the concatenated update is
    ``per_layer_l2_bound(bounds)``.
    """
    missing = sorted(set(tensors) - set(bounds))
    extra = sorted(set(bounds) - set(tensors))
    if missing or extra:
        raise InvalidArgument(
            f"bounds must name exactly the tensors; missing bounds for {missing}, "
            f"bounds for unknown tensors {extra}"
        )
    out: dict[str, np.ndarray] = {}
    norms: dict[str, float] = {}
    clipped: set[str] = set()
    for name, tensor in tensors.items():
        res = clip_l2(tensor, bound=_check_bound(bounds[name], f"bounds[{name!r}]"))
        out[name], norms[name] = res.clipped, res.norm
        if res.was_clipped:
            clipped.add(name)
    return LayerClipResult(tensors=out, norms=norms, clipped=frozenset(clipped))


def per_layer_l2_bound(bounds: Mapping[str, float]) -> float:
    """The L2 norm bound of the whole update implied by per-layer bounds: sqrt(sum C_l^2)."""
    return math.sqrt(sum(_check_bound(b) ** 2 for b in bounds.values()))


@dataclass(frozen=True, kw_only=True)
class AdaptiveClipConfig:
    """Adaptive clipping by private quantile estimation (Andrew et al., NeurIPS 2021).

    After each round the bound moves geometrically, ``C <- C * exp(-learning_rate *
    (b - target_quantile))``, where ``b`` is the noised fraction of clients whose update was
    *not* clipped (norm <= C): if more than ``target_quantile`` of the clients fit under
    the bound it shrinks, if fewer it grows. Each client contributes ``b_i - 1/2`` (so one
    client moves the sum by at most 1/2); ``count_noise_stddev`` is the standard deviation
    of the noise on that sum, which enters the accounting via
    :func:`update_noise_multiplier`. ``min_bound``/``max_bound`` clamp the bound.
    """

    initial_bound: float
    target_quantile: float = 0.5
    learning_rate: float = 0.2
    count_noise_stddev: float = 0.0
    min_bound: float = 0.0
    max_bound: float = math.inf

    def __post_init__(self) -> None:
        _check_bound(self.initial_bound, "initial_bound")
        if not 0.0 < self.target_quantile < 1.0:
            raise InvalidArgument(f"target_quantile must be in (0, 1), got {self.target_quantile}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InvalidArgument(f"learning_rate must be > 0, got {self.learning_rate}")
        if not (math.isfinite(self.count_noise_stddev) and self.count_noise_stddev >= 0):
            raise InvalidArgument(
                f"count_noise_stddev must be a finite number >= 0, got {self.count_noise_stddev}"
            )
        if not (0.0 <= self.min_bound <= self.initial_bound <= self.max_bound):
            raise InvalidArgument(
                "need 0 <= min_bound <= initial_bound <= max_bound, got "
                f"{self.min_bound}, {self.initial_bound}, {self.max_bound}"
            )


@dataclass(frozen=True)
class ClipRoundReport:
    """What one round of adaptive clipping used and estimated.

    ``unclipped_fraction`` is the noised estimate ``b`` (noise may push it outside [0, 1]);
    ``fraction_clipped`` is ``1 - b`` clamped to [0, 1] for display.
    """

    round: int
    bound: float
    unclipped_fraction: float
    fraction_clipped: float
    next_bound: float


class AdaptiveClipper:
    """The current adaptive clip bound and the per-round reports.

    Client side: :meth:`clip` at :attr:`bound`, then put :meth:`unclipped_indicator` of the
    result into the same secure sum as the update, so the server only learns the noised
    total. Server side: :meth:`update` with that noised total and the number of clients in
    the sum.
    """

    __slots__ = ("_bound", "_config", "_reports")

    def __init__(self, config: AdaptiveClipConfig) -> None:
        if not isinstance(config, AdaptiveClipConfig):
            raise InvalidArgument(f"config must be an AdaptiveClipConfig, got {config!r}")
        self._config = config
        self._bound = config.initial_bound
        self._reports: list[ClipRoundReport] = []

    @property
    def config(self) -> AdaptiveClipConfig:
        """The (immutable) configuration."""
        return self._config

    @property
    def bound(self) -> float:
        """The clip bound for the current round."""
        return self._bound

    @property
    def reports(self) -> tuple[ClipRoundReport, ...]:
        """One report per completed round, oldest first."""
        return tuple(self._reports)

    def clip(self, x: np.ndarray) -> ClipResult:
        """Clip ``x`` at the current bound (client side)."""
        return clip_l2(x, bound=self._bound)

    @staticmethod
    def unclipped_indicator(result: ClipResult) -> float:
        """The client's contribution ``b_i - 1/2``: +1/2 if *not* clipped, -1/2 if clipped."""
        return -0.5 if result.was_clipped else 0.5

    def noise_sum(self, indicator_sum: float, *, rng: Csprng) -> float:
        """Add ``N(0, count_noise_stddev^2)`` to a summed indicator (central-noise setups)."""
        from secfl.dp.mechanisms import gaussian  # deferred: mechanisms imports this module

        if self._config.count_noise_stddev == 0.0:
            return float(indicator_sum)
        noise = gaussian(1, stddev=self._config.count_noise_stddev, rng=rng)
        return float(indicator_sum) + float(noise[0])

    def update(self, *, noised_indicator_sum: float, n_clients: int) -> ClipRoundReport:
        """Move the bound from the round's noised sum of indicators (server side).

        ``b = noised_indicator_sum / n_clients + 1/2`` estimates the unclipped fraction;
        ``n_clients`` is the number of clients whose indicators are in the sum.
        """
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
            raise InvalidArgument(f"n_clients must be an int >= 1, got {n_clients!r}")
        if not math.isfinite(noised_indicator_sum):
            raise InvalidArgument(
                f"noised_indicator_sum must be finite, got {noised_indicator_sum}"
            )
        cfg = self._config
        b = float(noised_indicator_sum) / n_clients + 0.5
        new = self._bound * exp_scalar(-cfg.learning_rate * (b - cfg.target_quantile))
        new = min(max(new, cfg.min_bound), cfg.max_bound)
        if not (math.isfinite(new) and new > 0):
            raise InvalidArgument(
                f"adaptive clip bound left the positive floats ({new}); set min_bound > 0 "
                f"or lower learning_rate"
            )
        report = ClipRoundReport(
            round=len(self._reports),
            bound=self._bound,
            unclipped_fraction=b,
            fraction_clipped=min(1.0, max(0.0, 1.0 - b)),
            next_bound=new,
        )
        self._reports.append(report)
        self._bound = new
        return report

    def __repr__(self) -> str:
        return f"AdaptiveClipper(bound={self._bound:.6g}, rounds={len(self._reports)})"


def update_noise_multiplier(noise_multiplier: float, *, count_noise_stddev: float) -> float:
    """Noise multiplier left for the update when part of the budget goes to the clip count.

    Andrew et al. (2021), Sec. 3.1: releasing the update sum with multiplier ``z_u`` and the
    indicator sum (sensitivity 1/2) with noise ``sigma_b`` is as private as one Gaussian
    query with ``z = (z_u^-2 + (2 sigma_b)^-2)^(-1/2)``. Given the target ``z`` this returns
    ``z_u``; raises if ``sigma_b`` is too small to leave any budget.
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise InvalidArgument(f"noise_multiplier must be > 0, got {noise_multiplier}")
    if not (count_noise_stddev > 0 and math.isfinite(count_noise_stddev)):
        raise InvalidArgument(f"count_noise_stddev must be > 0, got {count_noise_stddev}")
    rest = noise_multiplier**-2 - (2.0 * count_noise_stddev) ** -2
    if rest <= 0:
        raise InvalidArgument(
            f"count_noise_stddev={count_noise_stddev} alone spends the whole budget of "
            f"noise_multiplier={noise_multiplier}; need count_noise_stddev > "
            f"{noise_multiplier / 2}"
        )
    return float(rest**-0.5)
