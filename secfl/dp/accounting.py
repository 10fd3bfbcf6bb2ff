"""Privacy accounting: immutable events and a Renyi-DP accountant.

Events describe what a round *did* (which noise, how much, on how many clients, sampled
how); they never change meaning, and a new kind of behaviour is a new event (the model is
Google's ``dp_accounting``). :class:`RdpAccountant` composes events into an RDP curve over
a fixed grid of orders and converts it to (epsilon, delta).

Where ``dp_accounting`` supports an event (the Gaussian mechanism, Poisson- or fixed-size-
subsampled Gaussians, their compositions) the curve is computed by
``dp_accounting.rdp.RdpAccountant``; the distributed discrete Gaussian (Kairouz, Liu,
Steinke 2021) and Skellam (Agarwal, Kairouz, Liu 2021) curves and their Poisson
subsampling (Zhu and Wang 2019, general bound) are implemented in :mod:`secfl.dp._rdp`.
Conversion to epsilon uses ``dp_accounting``'s ``compute_epsilon`` (Canonne, Kamath,
Steinke 2020, Prop. 12). ``dp_accounting`` is imported on first use (it takes ~1-2 s).

Every event is checked with :meth:`RdpAccountant.supports` before any state changes: an
unsupported event raises :class:`InvalidArgument` and leaves the accountant as it was.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from secfl.dp import _ddg_pld, _pld, _rdp, _skellam_gdp
from secfl.errors import InvalidArgument, SecflError

__all__ = [
    "DEFAULT_ORDERS",
    "AccountingMethod",
    "ComposedEvent",
    "DiscreteGaussianSumEvent",
    "DpEvent",
    "FixedSizeSampledEvent",
    "GaussianEvent",
    "Neighboring",
    "PldAccountant",
    "PoissonSampledEvent",
    "RdpAccountant",
    "SkellamSumEvent",
    "accounted_epsilon",
    "accounting_method_for",
    "epsilon_for_noise_multiplier",
    "noise_multiplier_for_epsilon",
]

DEFAULT_ORDERS: tuple[float, ...] = (
    tuple(round(1.0 + x / 10.0, 1) for x in range(1, 100))
    + tuple(float(a) for a in range(11, 64))
    + (128.0, 256.0, 512.0, 1024.0)
)
"""The RDP orders dp_accounting uses by default (1.1 .. 10.9, 11 .. 63, 128 .. 1024)."""


def _positive(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise InvalidArgument(f"{name} must be a finite number > 0, got {value}")


def _count(value: int, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class DpEvent:
    """Base class of the privacy events (immutable, hashable records)."""


@dataclass(frozen=True)
class GaussianEvent(DpEvent):
    """Gaussian noise with standard deviation ``noise_multiplier`` x the L2 sensitivity."""

    noise_multiplier: float

    def __post_init__(self) -> None:
        _positive(self.noise_multiplier, "noise_multiplier")


_E = TypeVar("_E", bound="_NoiseSumEvent")


@dataclass(frozen=True, kw_only=True)
class _NoiseSumEvent(DpEvent, abc.ABC):
    """What the distributed-noise events share: ``n_clients`` integer noise shares summed,
    sensitivities in integer units, and the total noise's standard deviation."""

    n_clients: int
    l2_sensitivity: float
    dimension: int
    l1_sensitivity: float | None = None

    def __post_init__(self) -> None:
        _count(self.n_clients, "n_clients")
        _positive(self.l2_sensitivity, "l2_sensitivity")
        _count(self.dimension, "dimension")
        if self.l1_sensitivity is not None:
            _positive(self.l1_sensitivity, "l1_sensitivity")

    @classmethod
    @abc.abstractmethod
    def _local_noise(cls, total_std: float, n_clients: int) -> dict[str, float]:
        """Each client's noise parameter when the sum's standard deviation is ``total_std``
        (every concrete event says how its noise splits over the clients)."""

    @classmethod
    def for_noise_multiplier(
        cls: type[_E],
        noise_multiplier: float,
        *,
        l2_sensitivity: float,
        n_clients: int,
        dimension: int,
    ) -> _E:
        """The event whose summed noise has stddev ``noise_multiplier * l2_sensitivity``."""
        _positive(noise_multiplier, "noise_multiplier")
        _count(n_clients, "n_clients")
        return cls(
            **cls._local_noise(noise_multiplier * l2_sensitivity, n_clients),
            n_clients=n_clients,
            l2_sensitivity=l2_sensitivity,
            dimension=dimension,
        )

    @property
    def effective_l1_sensitivity(self) -> float:
        """``l1_sensitivity``, or its default ``min(sqrt(d) * l2, l2^2)``."""
        if self.l1_sensitivity is not None:
            return self.l1_sensitivity
        l2 = self.l2_sensitivity
        return min(math.sqrt(self.dimension) * l2, l2 * l2)


@dataclass(frozen=True, kw_only=True)
class DiscreteGaussianSumEvent(_NoiseSumEvent):
    """``n_clients`` each added N_Z(0, local_sigma^2)^dimension to an integer vector.

    ``l2_sensitivity`` (and ``l1_sensitivity``) bound how much one client changes the sum
    of the integer vectors *before* noise, in integer units (after scaling and conditional
    rounding, see :func:`secfl.dp.mechanisms.rounded_l2_bound`). ``n_clients`` counts the
    clients whose noise is in the released sum and hidden from the adversary (survivors,
    minus any assumed colluders). ``l1_sensitivity`` defaults to
    ``min(sqrt(d) * l2, l2^2)`` (valid for integer vectors). Needs ``local_sigma >= 1/2``.
    """

    local_sigma: float

    def __post_init__(self) -> None:
        _positive(self.local_sigma, "local_sigma")
        if self.local_sigma < 0.5:
            raise InvalidArgument(
                f"local_sigma must be >= 1/2 for the distributed discrete Gaussian bound "
                f"(KLS21 Thm 1), got {self.local_sigma}; raise the noise or the scale"
            )
        super().__post_init__()

    @classmethod
    def _local_noise(cls, total_std: float, n_clients: int) -> dict[str, float]:
        return {"local_sigma": total_std / math.sqrt(n_clients)}

    @property
    def noise_multiplier(self) -> float:
        """Standard deviation parameter of the summed noise over ``l2_sensitivity``."""
        return self.local_sigma * math.sqrt(self.n_clients) / self.l2_sensitivity

    @property
    def tau(self) -> float:
        """KLS21's tau: how far the sum of the shares is from one discrete Gaussian."""
        return _rdp.ddg_tau(self.local_sigma, self.n_clients)


@dataclass(frozen=True, kw_only=True)
class SkellamSumEvent(_NoiseSumEvent):
    """``n_clients`` each added symmetric Skellam noise of ``local_variance`` per coordinate.

    Sensitivities are in integer units as for :class:`DiscreteGaussianSumEvent`; the sum
    of the shares is Skellam with variance ``n_clients * local_variance``.
    """

    local_variance: float

    def __post_init__(self) -> None:
        _positive(self.local_variance, "local_variance")
        super().__post_init__()

    @classmethod
    def _local_noise(cls, total_std: float, n_clients: int) -> dict[str, float]:
        return {"local_variance": total_std**2 / n_clients}

    @property
    def total_variance(self) -> float:
        """Variance of the summed noise per coordinate."""
        return self.n_clients * self.local_variance

    @property
    def noise_multiplier(self) -> float:
        """Standard deviation of the summed noise over ``l2_sensitivity``."""
        return math.sqrt(self.total_variance) / self.l2_sensitivity


@dataclass(frozen=True)
class PoissonSampledEvent(DpEvent):
    """``event`` run on a subset where each record is included independently w.p. ``q``."""

    sampling_probability: float
    event: DpEvent

    def __post_init__(self) -> None:
        q = self.sampling_probability
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 < q <= 1.0:
            raise InvalidArgument(f"sampling_probability must be in (0, 1], got {q!r}")
        if not isinstance(self.event, DpEvent):
            raise InvalidArgument(f"event must be a DpEvent, got {self.event!r}")


@dataclass(frozen=True, kw_only=True)
class FixedSizeSampledEvent(DpEvent):
    """``event`` run on ``sample_size`` records drawn without replacement from a population.

    Accounted under the replace-one relation (``Neighboring.REPLACE_ONE``), where the
    sensitivity of a sum is twice the clip bound.
    """

    sample_size: int
    population_size: int
    event: DpEvent

    def __post_init__(self) -> None:
        _count(self.sample_size, "sample_size")
        _count(self.population_size, "population_size")
        if self.sample_size > self.population_size:
            raise InvalidArgument(
                f"sample_size {self.sample_size} exceeds population_size {self.population_size}"
            )
        if not isinstance(self.event, DpEvent):
            raise InvalidArgument(f"event must be a DpEvent, got {self.event!r}")


@dataclass(frozen=True)
class ComposedEvent(DpEvent):
    """``event`` repeated ``count`` times (e.g. one event per round, over all rounds)."""

    event: DpEvent
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.event, DpEvent):
            raise InvalidArgument(f"event must be a DpEvent, got {self.event!r}")
        _count(self.count, "count")


class Neighboring(enum.Enum):
    """Which pairs of datasets a guarantee protects."""

    ADD_OR_REMOVE_ONE = "add_or_remove_one"
    """One client present or absent (the relation for Poisson sampling). For the
    distributed mechanisms an absent client sends no noise share either: the neighbouring
    sums differ in the update *and* in one share (spec section 10.5)."""
    REPLACE_ONE = "replace_one"
    """One client's data replaced by another's (the relation for fixed-size sampling)."""
    ZERO_OUT = "zero_out"
    """One client's update replaced by zeros, its noise share kept in both sums (what
    secfl v1 computed for ddg and Skellam). Weaker than ADD_OR_REMOVE_ONE when the share
    count is visible; the only relation secfl accounts Skellam sums under."""


class AccountingMethod(enum.Enum):
    """How an epsilon is computed."""

    PLD = "pld"
    """Privacy loss distributions (dp_accounting's PLD accountant; exact for unsampled
    Gaussians): the tight method, for Gaussian and Poisson-sampled Gaussian events."""
    RDP = "rdp"
    """Renyi DP: every supported event (the only one for ddg and Skellam)."""


def _gaussian_only(event: DpEvent) -> bool:
    """True for a Gaussian or a composition of Gaussian-only events (dp_accounting's form)."""
    if isinstance(event, GaussianEvent):
        return True
    if isinstance(event, ComposedEvent):
        return _gaussian_only(event.event)
    return False


def _to_dp_accounting(event: DpEvent) -> Any:
    import dp_accounting

    if isinstance(event, GaussianEvent):
        return dp_accounting.GaussianDpEvent(event.noise_multiplier)
    if isinstance(event, ComposedEvent):
        return dp_accounting.SelfComposedDpEvent(_to_dp_accounting(event.event), event.count)
    if isinstance(event, PoissonSampledEvent):
        return dp_accounting.PoissonSampledDpEvent(
            event.sampling_probability, _to_dp_accounting(event.event)
        )
    if isinstance(event, FixedSizeSampledEvent):
        return dp_accounting.SampledWithoutReplacementDpEvent(
            event.population_size, event.sample_size, _to_dp_accounting(event.event)
        )
    raise InvalidArgument(f"no dp_accounting equivalent for {event!r}")  # pragma: no cover


def _sampled_zero_out(event: PoissonSampledEvent, neighboring: Neighboring) -> str | None:
    """Why a Poisson-sampled distributed event cannot be accounted under zero-out, or None.

    A client that is not sampled sends no share, in both neighbours; one that is sampled
    sends its share in both. The neighbours are then ((1-q) R + q P, (1-q) R + q Q) with R
    one share short, and in high dimension the sum's variance shows whether the client took
    part: the amplification of ((1-q) Q + q P, Q) does not hold (spec section 10.5)."""
    if neighboring is not Neighboring.ZERO_OUT or event.sampling_probability >= 1.0:
        return None
    if not isinstance(event.event, DiscreteGaussianSumEvent | SkellamSumEvent):
        return None
    return (
        "zero-out with Poisson sampling has no sound bound for distributed noise: a client "
        "that is not sampled sends no noise share in either neighbour, and the sum's variance "
        "shows whether it took part. Account the ddg under Neighboring.ADD_OR_REMOVE_ONE, or "
        "drop the sampling (every client, or a fixed cohort, unamplified)"
    )


_SKELLAM_ADD_REMOVE = (
    "secfl has no bound for Skellam sums whose share count differs between neighbours "
    "(add/remove); use the discrete Gaussian (ddg), which has one, or account without "
    "Poisson sampling under Neighboring.ZERO_OUT and report it as a zero-out guarantee"
)


class RdpAccountant:
    """Composes :class:`DpEvent` records into an RDP curve and reports (epsilon, delta).

    ``orders`` is the grid of Renyi orders (all > 1; default :data:`DEFAULT_ORDERS`);
    ``neighboring`` the relation the guarantee is stated for. The accountant keeps a
    ledger of what was composed, for audit.
    """

    __slots__ = ("_ledger", "_neighboring", "_orders", "_rdp")

    def __init__(
        self,
        *,
        orders: Sequence[float] | None = None,
        neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE,
    ) -> None:
        grid: np.ndarray = np.array(DEFAULT_ORDERS if orders is None else orders, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0 or not (np.isfinite(grid).all() and (grid > 1).all()):
            raise InvalidArgument("orders must be a non-empty sequence of finite numbers > 1")
        if not isinstance(neighboring, Neighboring):
            raise InvalidArgument(f"neighboring must be a Neighboring member, got {neighboring!r}")
        self._orders: np.ndarray = grid
        self._neighboring = neighboring
        self._rdp: np.ndarray = np.zeros_like(grid)
        self._ledger: list[tuple[DpEvent, int]] = []

    @property
    def orders(self) -> np.ndarray:
        """The Renyi orders (a copy)."""
        out: np.ndarray = self._orders.copy()
        return out

    @property
    def rdp(self) -> np.ndarray:
        """The composed RDP epsilon at each order (a copy)."""
        out: np.ndarray = self._rdp.copy()
        return out

    @property
    def neighboring(self) -> Neighboring:
        """The neighbouring relation of the guarantee."""
        return self._neighboring

    @property
    def ledger(self) -> tuple[tuple[DpEvent, int], ...]:
        """Every ``(event, count)`` composed so far, oldest first."""
        return tuple(self._ledger)

    # -- support -------------------------------------------------------------------------

    def _unsupported(self, event: object) -> str | None:
        """Why ``event`` cannot be accounted here, or None if it can."""
        if not isinstance(event, DpEvent):
            return f"{event!r} is not a secfl DpEvent"
        if isinstance(event, SkellamSumEvent) and self._neighboring is not Neighboring.ZERO_OUT:
            return _SKELLAM_ADD_REMOVE
        if isinstance(event, GaussianEvent | DiscreteGaussianSumEvent | SkellamSumEvent):
            return None
        if isinstance(event, ComposedEvent):
            return self._unsupported(event.event)
        if isinstance(event, PoissonSampledEvent):
            if self._neighboring is Neighboring.REPLACE_ONE:
                return (
                    "Poisson sampling is accounted under Neighboring.ADD_OR_REMOVE_ONE "
                    "(or ZERO_OUT, for the central Gaussian) only"
                )
            inner = event.event
            refused = _sampled_zero_out(event, self._neighboring)
            if refused is not None:
                return refused
            if isinstance(inner, SkellamSumEvent):
                return self._unsupported(inner)
            if _gaussian_only(inner) or isinstance(
                inner, DiscreteGaussianSumEvent | SkellamSumEvent
            ):
                return None
            return (
                "Poisson sampling is supported around a GaussianEvent (or a ComposedEvent of "
                "Gaussians), a DiscreteGaussianSumEvent or a SkellamSumEvent; put the "
                f"sampling inside the composition instead of around {type(inner).__name__}"
            )
        if isinstance(event, FixedSizeSampledEvent):
            if self._neighboring is not Neighboring.REPLACE_ONE:
                return (
                    "fixed-size sampling is accounted under Neighboring.REPLACE_ONE only; "
                    "use PoissonSampledEvent for add-or-remove-one guarantees"
                )
            if _gaussian_only(event.event):
                return None
            return (
                "fixed-size sampling is supported around Gaussian events only "
                f"(got {type(event.event).__name__})"
            )
        return f"unsupported event type {type(event).__name__}"

    def supports(self, event: DpEvent) -> bool:
        """Whether :meth:`compose` would accept ``event`` (no state changes)."""
        return self._unsupported(event) is None

    # -- curves --------------------------------------------------------------------------

    def _dp_accounting_curve(self, event: DpEvent) -> np.ndarray:
        from dp_accounting import NeighboringRelation
        from dp_accounting.rdp import rdp_privacy_accountant

        relation = {
            Neighboring.ZERO_OUT: NeighboringRelation.ADD_OR_REMOVE_ONE,
            Neighboring.ADD_OR_REMOVE_ONE: NeighboringRelation.ADD_OR_REMOVE_ONE,
            Neighboring.REPLACE_ONE: NeighboringRelation.REPLACE_ONE,
        }[self._neighboring]
        acc = rdp_privacy_accountant.RdpAccountant(
            orders=list(self._orders), neighboring_relation=relation
        )
        acc.compose(_to_dp_accounting(event))
        out: np.ndarray = np.asarray(acc.rdp, dtype=np.float64)
        return out

    def _base_curve(self, event: DpEvent) -> Callable[[np.ndarray], np.ndarray]:
        if isinstance(event, DiscreteGaussianSumEvent):
            if self._neighboring is Neighboring.ADD_OR_REMOVE_ONE:
                return lambda a: _rdp.ddg_add_remove_rdp(
                    a,
                    local_sigma=event.local_sigma,
                    n_clients=event.n_clients,
                    l2_sensitivity=event.l2_sensitivity,
                    dimension=event.dimension,
                )
            return lambda a: _rdp.ddg_rdp(
                a,
                local_sigma=event.local_sigma,
                n_clients=event.n_clients,
                l2_sensitivity=event.l2_sensitivity,
                l1_sensitivity=event.effective_l1_sensitivity,
                dimension=event.dimension,
            )
        assert isinstance(event, SkellamSumEvent)
        return lambda a: _rdp.skellam_rdp(
            a,
            total_variance=event.total_variance,
            l2_sensitivity=event.l2_sensitivity,
            l1_sensitivity=event.effective_l1_sensitivity,
        )

    def _curve(self, event: DpEvent) -> np.ndarray:
        """The RDP curve of one occurrence of a supported event at ``self._orders``."""
        if isinstance(event, PoissonSampledEvent) and isinstance(event.event, GaussianEvent):
            # Fractional orders computed, not dropped (dp_accounting 0.6.0 drops some).
            return _rdp.sampled_gaussian_rdp(
                self._orders, event.sampling_probability, event.event.noise_multiplier
            )
        if _gaussian_only(event) or (
            isinstance(event, PoissonSampledEvent | FixedSizeSampledEvent)
            and _gaussian_only(event.event)
        ):
            return self._dp_accounting_curve(event)
        if isinstance(event, ComposedEvent):
            return event.count * self._curve(event.event)
        # Integer orders: a valid bound at fractional ones (RDP is monotone in the order).
        whole = np.maximum(np.ceil(self._orders), 2.0)
        if isinstance(event, PoissonSampledEvent):
            base = self._base_curve(event.event)
            return _rdp.poisson_subsampled_rdp(whole, event.sampling_probability, base)
        return self._base_curve(event)(whole)

    # -- state ---------------------------------------------------------------------------

    def compose(self, event: DpEvent, *, count: int = 1) -> RdpAccountant:
        """Add ``count`` occurrences of ``event``; returns ``self`` for chaining.

        Raises :class:`InvalidArgument` (state unchanged) for an unsupported event.
        """
        _count(count, "count")
        reason = self._unsupported(event)
        if reason is not None:
            raise InvalidArgument(f"cannot account {event!r}: {reason}")
        curve = count * self._curve(event)  # computed fully before any state changes
        if curve.shape != self._rdp.shape or np.isnan(curve).any():
            raise InvalidArgument(f"RDP curve of {event!r} is not defined at every order")
        self._rdp = self._rdp + curve
        self._ledger.append((event, count))
        return self

    def get_epsilon_and_order(self, delta: float) -> tuple[float, float]:
        """The smallest epsilon over the orders for ``delta``, and the order achieving it."""
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
            raise InvalidArgument(f"delta must be in (0, 1), got {delta!r}")
        from dp_accounting.rdp import rdp_privacy_accountant

        eps, order = rdp_privacy_accountant.compute_epsilon(
            list(self._orders), list(self._rdp), delta
        )
        return float(eps), float(order)

    def get_epsilon(self, delta: float) -> float:
        """The epsilon of everything composed so far, at ``delta``."""
        return self.get_epsilon_and_order(delta)[0]

    def get_delta(self, epsilon: float) -> float:
        """The delta of everything composed so far, at ``epsilon``."""
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or epsilon < 0:
            raise InvalidArgument(f"epsilon must be a number >= 0, got {epsilon!r}")
        from dp_accounting.rdp import rdp_privacy_accountant

        delta, _ = rdp_privacy_accountant.compute_delta(
            list(self._orders), list(self._rdp), epsilon
        )
        return float(delta)

    def __repr__(self) -> str:
        return (
            f"RdpAccountant(neighboring={self._neighboring.name}, "
            f"events={len(self._ledger)}, orders={self._orders.size})"
        )


def _ddg_stand_in(
    event: DiscreteGaussianSumEvent, neighboring: Neighboring
) -> _ddg_pld.DdgStandIn | None:
    """The continuous pair and log-ratio that stand in for ``event`` (spec 10.7)."""
    return _ddg_pld.stand_in(
        local_sigma=event.local_sigma,
        n_clients=event.n_clients,
        l2_sensitivity=event.l2_sensitivity,
        dimension=event.dimension,
        add_remove=neighboring is Neighboring.ADD_OR_REMOVE_ONE,
    )


Parts = tuple[list[_pld.PairPart], float]
"""PLD parts, and the additive slack in delta their rounds carry (the Skellam's, section
10.8 of the spec; 0 for the others)."""


def _skellam_parts(event: SkellamSumEvent, count: int, neighboring: Neighboring) -> Parts | None:
    """An unsampled zero-out Skellam round as the Gaussian shift that dominates it, with
    its slack (:mod:`secfl.dp._skellam_gdp`); None under add/remove or without a bound."""
    if neighboring is not Neighboring.ZERO_OUT:
        return None
    found = _skellam_gdp.round_gdp(
        total_variance=event.total_variance,
        l2_sensitivity=event.l2_sensitivity,
        dimension=event.dimension,
    )
    if found is None:
        return None
    mu, slack = found
    return [(1.0, _ddg_pld.GaussianPair(mu, 1.0, 1.0, 1), count, 0.0)], count * slack


def _pair_parts(
    event: DpEvent, count: int, neighboring: Neighboring, q: float = 1.0
) -> Parts | None:
    """``event`` as ``(q, pair, count, log_ratio)`` parts and their slack, or None if PLD
    cannot account it."""
    if isinstance(event, GaussianEvent):
        z2 = event.noise_multiplier**2
        return [(q, _ddg_pld.GaussianPair(1.0, z2, z2, 1), count, 0.0)], 0.0
    if isinstance(event, DiscreteGaussianSumEvent):
        found = _ddg_stand_in(event, neighboring)
        return None if found is None else ([(q, found.pair, count, found.log_ratio)], 0.0)
    if isinstance(event, SkellamSumEvent):
        return _skellam_parts(event, count, neighboring) if q >= 1.0 else None
    if isinstance(event, PoissonSampledEvent) and q >= 1.0:
        inner = event.event
        if _sampled_zero_out(event, neighboring) is not None:
            return None
        if isinstance(inner, GaussianEvent | DiscreteGaussianSumEvent | SkellamSumEvent):
            return _pair_parts(inner, count, neighboring, event.sampling_probability)
        return None
    if isinstance(event, ComposedEvent):
        return _pair_parts(event.event, count * event.count, neighboring, q)
    return None


class PldAccountant:
    """Composes events into a privacy loss distribution and reports the tight (epsilon,
    delta).

    Gaussian events (unsampled or Poisson-sampled, and their compositions) take the
    analytic Gaussian or dp-accounting's PLD accountant; distributed discrete Gaussian
    events take the pessimistic PLD of the continuous pair that dominates a stand-in
    within a log-ratio of them (:mod:`secfl.dp._ddg_pld`, spec section 10.7); unsampled
    Skellam events under zero-out take the Gaussian shift that dominates them up to a
    slack in delta of 1e-30 per coordinate (:mod:`secfl.dp._skellam_gdp`, section 10.8).
    The discretization is chosen per query (:mod:`secfl.dp._pld`): epsilon is never below
    the true one. Relations: ``ADD_OR_REMOVE_ONE`` (default) and ``ZERO_OUT``.
    """

    __slots__ = ("_ledger", "_neighboring", "_parts", "_slack")

    def __init__(self, *, neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE) -> None:
        if neighboring not in (Neighboring.ADD_OR_REMOVE_ONE, Neighboring.ZERO_OUT):
            raise InvalidArgument(
                f"PldAccountant accounts under Neighboring.ADD_OR_REMOVE_ONE or ZERO_OUT, got "
                f"{neighboring!r}; use RdpAccountant for other relations"
            )
        self._neighboring = neighboring
        self._parts: list[_pld.PairPart] = []
        self._slack = 0.0
        self._ledger: list[tuple[DpEvent, int]] = []

    @property
    def neighboring(self) -> Neighboring:
        """The neighbouring relation of the guarantee."""
        return self._neighboring

    @property
    def ledger(self) -> tuple[tuple[DpEvent, int], ...]:
        """Every ``(event, count)`` composed so far, oldest first."""
        return tuple(self._ledger)

    def _parts_of(self, event: object, count: int) -> Parts | None:
        if not isinstance(event, DpEvent):
            return None
        return _pair_parts(event, count, self._neighboring)

    def supports(self, event: DpEvent) -> bool:
        """Whether :meth:`compose` would accept ``event`` (no state changes)."""
        return self._parts_of(event, 1) is not None

    def compose(self, event: DpEvent, *, count: int = 1) -> PldAccountant:
        """Add ``count`` occurrences of ``event``; returns ``self`` for chaining.

        Raises :class:`InvalidArgument` (state unchanged) for an unsupported event.
        """
        _count(count, "count")
        found = self._parts_of(event, count)
        inner = event
        while found is None and isinstance(inner, ComposedEvent | PoissonSampledEvent):
            if isinstance(inner, PoissonSampledEvent):
                why = _sampled_zero_out(inner, self._neighboring)
                if why is not None:
                    raise InvalidArgument(why)
            inner = inner.event
        skellam = isinstance(inner, SkellamSumEvent)
        if found is None and skellam and self._neighboring is not Neighboring.ZERO_OUT:
            raise InvalidArgument(f"cannot account {event!r}: {_SKELLAM_ADD_REMOVE}")
        if found is None:
            raise InvalidArgument(
                f"cannot account {event!r} with PLD: Gaussian, distributed discrete "
                "Gaussian (unsampled or Poisson-sampled, composed) and unsampled zero-out "
                "Skellam events only, the ddg with shares whose variance exceeds the stand-in "
                "channel's and, under add/remove, at least two of them; use RdpAccountant for "
                "the others"
            )
        parts, slack = found
        self._slack += slack
        for q, pair, n, log_ratio in parts:  # composition commutes: merge repeats
            for i, (q0, pair0, n0, log_ratio0) in enumerate(self._parts):
                if (q0, pair0, log_ratio0) == (q, pair, log_ratio):
                    self._parts[i] = (q, pair, n0 + n, log_ratio)
                    break
            else:
                self._parts.append((q, pair, n, log_ratio))
        self._ledger.append((event, count))
        return self

    def _as_central_gaussians(self) -> list[tuple[float, float, int]] | None:
        """The ledger as (q, z, count) parts when every part is a one-dimensional Gaussian
        shift with no stand-in correction (a central Gaussian; never a ddg, whose C > 0)."""
        if any(
            pair.dimension != 1 or not pair.shift_only or log_ratio != 0.0
            for _, pair, _, log_ratio in self._parts
        ):
            return None
        return [
            (q, math.sqrt(pair.den_variance) / pair.sensitivity, count)
            for q, pair, count, _ in self._parts
        ]

    def _scaled_slack(self) -> float:
        """The Skellam rounds' slack S as it enters delta next to the ddg's log-ratio C:
        delta(eps) <= e^C (delta'(eps - 2C) + S) (spec section 10.8); inf if that
        overflows."""
        if self._slack == 0.0:
            return 0.0
        try:
            return math.exp(_pld.log_ratio(self._parts)) * self._slack
        except OverflowError:
            return math.inf

    def get_epsilon(self, delta: float) -> float:
        """The epsilon of everything composed so far, at ``delta``. Raises ``PldTooWide``
        (an :class:`InvalidArgument`) where the PLD would not fit in memory."""
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
            raise InvalidArgument(f"delta must be in (0, 1), got {delta!r}")
        if not self._parts:
            return 0.0
        left = delta - self._scaled_slack()
        if not left > 0.0:
            return math.inf
        gaussian = self._as_central_gaussians()
        if gaussian is not None:
            return _pld.sampled_gaussian_epsilon(gaussian, left)
        return _pld.pair_epsilon(self._parts, left)

    def get_delta(self, epsilon: float) -> float:
        """The delta of everything composed so far, at ``epsilon``."""
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or epsilon < 0:
            raise InvalidArgument(f"epsilon must be a number >= 0, got {epsilon!r}")
        if not self._parts:
            return 0.0
        slack = self._scaled_slack()
        gaussian = self._as_central_gaussians()
        if gaussian is not None:
            return min(1.0, _pld.sampled_gaussian_delta(gaussian, epsilon) + slack)
        return min(1.0, _pld.pair_delta(self._parts, epsilon) + slack)

    def __repr__(self) -> str:
        return f"PldAccountant(neighboring={self._neighboring.name}, events={len(self._ledger)})"


Mechanism = Callable[[float], DpEvent]
"""Maps a noise multiplier to one round's (unsampled) event, e.g. ``GaussianEvent``."""


def _rounds_event(
    noise_multiplier: float, *, q: float, rounds: int, mechanism: Mechanism
) -> DpEvent:
    event = mechanism(noise_multiplier)
    if not isinstance(event, DpEvent):
        raise InvalidArgument(f"mechanism must return a DpEvent, got {event!r}")
    if q < 1.0:
        event = PoissonSampledEvent(q, event)
    return ComposedEvent(event, rounds)


def accounting_method_for(
    event: DpEvent, *, neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE
) -> AccountingMethod:
    """The tightest method secfl has for ``event``: PLD for Gaussian and distributed
    discrete Gaussian events (under add/remove or zero-out) and unsampled zero-out Skellam
    events, RDP otherwise (fixed-size sampling, a Skellam with no Gaussian bound). For the
    distributed mechanisms :func:`accounted_epsilon` also computes RDP and keeps the smaller
    (both are upper bounds; RDP can win for small ddg shares, where KLS21's tau moves the
    PLD's stand-in)."""
    if neighboring is Neighboring.REPLACE_ONE:
        return AccountingMethod.RDP
    if PldAccountant(neighboring=neighboring).supports(event):
        return AccountingMethod.PLD
    return AccountingMethod.RDP


def _has_distributed(event: DpEvent) -> bool:
    """Whether ``event`` holds distributed noise, a ddg or Skellam (accounted both ways)."""
    if isinstance(event, DiscreteGaussianSumEvent | SkellamSumEvent):
        return True
    if isinstance(event, ComposedEvent | PoissonSampledEvent | FixedSizeSampledEvent):
        return _has_distributed(event.event)
    return False


def accounted_epsilon(
    noise_multiplier: float,
    *,
    delta: float,
    q: float,
    rounds: int,
    mechanism: Mechanism = GaussianEvent,
    orders: Sequence[float] | None = None,
    neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE,
    method: AccountingMethod | None = None,
    below: float | None = None,
) -> tuple[float, AccountingMethod]:
    """Epsilon after ``rounds`` rounds, and the method that gave it.

    As :func:`epsilon_for_noise_multiplier`. With ``method=None`` a ddg or Skellam event is
    accounted both ways and the smaller epsilon is kept; ``below`` (a target) skips the PLD
    when RDP already meets it.
    """
    _positive(noise_multiplier, "noise_multiplier")
    _check_q_rounds(q, rounds)
    if method is not None and not isinstance(method, AccountingMethod):
        raise InvalidArgument(f"method must be an AccountingMethod or None, got {method!r}")
    event = _rounds_event(noise_multiplier, q=q, rounds=rounds, mechanism=mechanism)
    chosen = method or accounting_method_for(event, neighboring=neighboring)

    def rdp() -> float:
        acc = RdpAccountant(orders=orders, neighboring=neighboring)
        acc.compose(event)
        return acc.get_epsilon(delta)

    if chosen is AccountingMethod.RDP:
        return rdp(), AccountingMethod.RDP
    pld = PldAccountant(neighboring=neighboring).compose(event)
    if method is not None or not _has_distributed(event):
        return pld.get_epsilon(delta), AccountingMethod.PLD
    by_rdp = rdp()
    if below is not None and by_rdp <= below:
        return by_rdp, AccountingMethod.RDP
    return _smaller(by_rdp, pld, delta)


def _smaller(by_rdp: float, pld: PldAccountant, delta: float) -> tuple[float, AccountingMethod]:
    """The smaller of an RDP epsilon and ``pld``'s at ``delta`` (both upper bounds), with
    its method; RDP where the PLD would not fit (``PldTooWide``)."""
    try:
        by_pld = pld.get_epsilon(delta)
    except _ddg_pld.PldTooWide:
        return by_rdp, AccountingMethod.RDP
    if by_pld <= by_rdp:
        return by_pld, AccountingMethod.PLD
    return by_rdp, AccountingMethod.RDP


def ledger_epsilon(
    ledger: Sequence[tuple[DpEvent, int]], *, delta: float, neighboring: Neighboring
) -> tuple[float, AccountingMethod]:
    """The tightest epsilon secfl has for a composed ``ledger`` (e.g.
    ``RdpAccountant.ledger``), and its method: RDP, or PLD where every event has a PLD and
    gives less (both are upper bounds)."""
    rdp = RdpAccountant(neighboring=neighboring)
    for event, count in ledger:
        rdp.compose(event, count=count)
    by_rdp = rdp.get_epsilon(delta)
    if neighboring is Neighboring.REPLACE_ONE:
        return by_rdp, AccountingMethod.RDP
    pld = PldAccountant(neighboring=neighboring)
    if not all(pld.supports(event) for event, _ in ledger):
        return by_rdp, AccountingMethod.RDP
    for event, count in ledger:
        pld.compose(event, count=count)
    return _smaller(by_rdp, pld, delta)


def epsilon_for_noise_multiplier(
    noise_multiplier: float,
    *,
    delta: float,
    q: float,
    rounds: int,
    mechanism: Mechanism = GaussianEvent,
    orders: Sequence[float] | None = None,
    neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE,
    method: AccountingMethod | None = None,
) -> float:
    """Epsilon after ``rounds`` rounds, each sampling clients w.p. ``q`` (1 = everyone).

    ``mechanism`` builds one round's event from the noise multiplier: ``GaussianEvent``
    (default), or e.g. ``functools.partial(DiscreteGaussianSumEvent.for_noise_multiplier,
    l2_sensitivity=..., n_clients=..., dimension=...)``. ``method`` defaults to the
    tightest available (:func:`accounting_method_for`; for the ddg the smaller of PLD and
    RDP, see :func:`accounted_epsilon`); ``orders`` applies to RDP.
    """
    return accounted_epsilon(
        noise_multiplier,
        delta=delta,
        q=q,
        rounds=rounds,
        mechanism=mechanism,
        orders=orders,
        neighboring=neighboring,
        method=method,
    )[0]


def _meets_or_floor(meets: Callable[[float], bool], z: float, target: float) -> bool:
    """``meets(z)``, but a plan that stops fitting while the multiplier grows means the
    target is below what any noise gives: say so (and why) instead of the planner's error."""
    try:
        return meets(z)
    except SecflError as e:
        raise InvalidArgument(
            f"no noise multiplier reaches epsilon {target}: at z = {z:g} the plan fails "
            f"({type(e).__name__}) before the target is met. Under add/remove the "
            f"distributed mechanisms have a floor that more noise does not lower (one share "
            f"more or less changes the sum's variance in every coordinate: about d'/(4 r^2) "
            f"nats per order and round for r shares in d' coordinates): put more clients in "
            f"each sum, lower the dimension, raise the target or lower rounds or q"
        ) from None


def _check_q_rounds(q: float, rounds: int) -> None:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 < q <= 1.0:
        raise InvalidArgument(f"q (the sampling rate) must be in (0, 1], got {q!r}")
    _count(rounds, "rounds")


def noise_multiplier_for_epsilon(
    target_epsilon: float,
    *,
    delta: float,
    q: float,
    rounds: int,
    mechanism: Mechanism = GaussianEvent,
    orders: Sequence[float] | None = None,
    rtol: float = 1e-4,
    neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE,
    method: AccountingMethod | None = None,
) -> float:
    """The smallest noise multiplier (to ``rtol``) whose epsilon is <= ``target_epsilon``.

    Bisection on a log scale over :func:`epsilon_for_noise_multiplier`, which decreases in
    the noise multiplier. The returned value always meets the target. Multipliers for which
    ``mechanism`` raises :class:`InvalidArgument` (e.g. a discrete Gaussian share below
    sigma = 1/2) are treated as too small.
    """
    _positive(target_epsilon, "target_epsilon")
    _check_q_rounds(q, rounds)
    if not 0 < delta < 1:
        raise InvalidArgument(f"delta must be in (0, 1), got {delta!r}")
    if not 0 < rtol < 1:
        raise InvalidArgument(f"rtol must be in (0, 1), got {rtol}")

    def meets(z: float) -> bool:
        try:
            eps, _ = accounted_epsilon(
                z,
                delta=delta,
                q=q,
                rounds=rounds,
                mechanism=mechanism,
                orders=orders,
                neighboring=neighboring,
                method=method,
                below=target_epsilon,
            )
        except InvalidArgument:
            if z < 1.0:
                return False
            raise
        return eps <= target_epsilon

    hi = 1.0
    while not _meets_or_floor(meets, hi, target_epsilon):
        hi *= 2.0
        if hi > 2.0**30:
            raise InvalidArgument(
                f"no noise multiplier up to 2^30 reaches epsilon {target_epsilon}; raise the "
                f"target epsilon or delta, or lower rounds or q"
            )
    lo = hi / 2.0
    while meets(lo):
        hi, lo = lo, lo / 2.0
        if lo < 2.0**-30:
            return hi
    while hi / lo - 1.0 > rtol:
        mid = math.sqrt(lo * hi)
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi
