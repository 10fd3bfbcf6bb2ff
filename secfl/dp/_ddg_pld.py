"""Privacy loss distributions of the distributed discrete Gaussian (ddg).

Two steps (``protocols/distributed-dp-v1.md`` section 10.7 has the proof):

1. **A continuous stand-in.** The released noise is a sum of ``r`` shares N_Z(0, s^2)^d.
   KLS21 bound its pointwise ratio to N_Z(0, r s^2) by ``e^tau'``; and N_Z(m, V) is, to a
   pointwise ratio of ``1 +- 2 E(v)`` (Poisson summation), the output of a fixed channel
   (a discrete Gaussian of variance ``v`` around a point of N(m, V - v)) applied to the
   continuous N(m, V - v). A channel is post-processing, so the continuous pair with
   variances ``V - v`` dominates the stand-in; the real round's output probabilities are
   within a factor ``e^c`` of the stand-in's (``c`` = :attr:`DdgStandIn.log_ratio`), so
   over rounds with ``C = sum c``: ``delta(eps) <= e^C delta'(eps - 2C)``.
2. **The continuous pair's PLD.** Under zero-out it is a Gaussian shift (dp-accounting's
   Gaussian PLD). Under add/remove the neighbour also lacks one share: P = N(x, B I_d)
   against Q = N(0, A I_d), A < B. Its privacy loss ``L = c2 |y|^2 + <x, y>/B + c0`` is a
   quadratic in the coordinate along ``x`` plus a scaled chi-square in the other ``d - 1``;
   both are rounded (up, or down for the other direction) onto a fine grid from their
   exact CDFs and convolved, which gives a pessimistic PLD of the pair and of its Poisson
   subsampling (whose loss ``ln(1 - q + q e^L)`` is monotone in ``L``); dp-accounting's
   connect-the-dots then turns that PLD's hockey-stick curve into a composable PLD.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from secfl.dp import _rdp
from secfl.errors import InvalidArgument

CHANNEL_LOG_RATIO = 1e-12
"""The stand-in's channel may move the log-probability of any output of one round by at
most this (it sets the channel variance ``v``)."""
TAIL = 1e-30
"""Probability mass cut from each tail of each loss component (moved pessimistically)."""
FINE_POINTS = 1 << 19
"""Upper bound on the fine grid's points per loss component."""
FINE_PER_INTERVAL = 8
"""Fine grid points per connect-the-dots interval."""
DELTA_FLOOR = 1e-20
"""Connect-the-dots support ends where this much of the loss's mass lies beyond it."""
MAX_SUPPORT = 1 << 22
"""A PLD with more support points than this is refused (:class:`PldTooWide`)."""


class PldTooWide(InvalidArgument):
    """The pair's privacy loss spans too many discretization intervals for a PLD (huge
    epsilons, or very many unsampled rounds): account it with RDP."""


@dataclass(frozen=True)
class GaussianPair:
    """P = N(x, num_variance I_d) against Q = N(0, den_variance I_d) with |x| = sensitivity:
    the continuous pair that dominates one (unsampled) round. Equal variances: a Gaussian
    shift; ``num_variance > den_variance``: the add/remove pair of the ddg."""

    sensitivity: float
    num_variance: float
    den_variance: float
    dimension: int

    @property
    def shift_only(self) -> bool:
        """Equal variances: the pair is a Gaussian shift (zero-out, or a central Gaussian)."""
        return self.num_variance == self.den_variance


@dataclass(frozen=True)
class DdgStandIn:
    """The continuous pair that dominates the stand-in of one ddg round, and ``log_ratio``:
    how far (in log-probability, for every output, either neighbour) the real round is
    from the stand-in."""

    pair: GaussianPair
    log_ratio: float


def _channel_log_ratio(v: float) -> float:
    """Per coordinate: |ln| of the ratio of N_Z(m, V) to the channel's output on
    N(m, V - v), for any V >= v (both within a factor 1 +- 2 E(v) of the continuous
    density: Poisson summation)."""
    e = 2.0 * _rdp._theta_excess(math.sqrt(v))
    return math.log1p(e) - math.log1p(-e)


@functools.cache
def channel_variance(dimension: int) -> float:
    """The least ``v`` (to 1 %) whose channel moves a round's log-probabilities by at most
    ``CHANNEL_LOG_RATIO`` over ``dimension`` coordinates."""
    v = 0.5
    while dimension * _channel_log_ratio(v) > CHANNEL_LOG_RATIO:
        v *= 1.01
    return v


def stand_in(
    *,
    local_sigma: float,
    n_clients: int,
    l2_sensitivity: float,
    dimension: int,
    add_remove: bool,
) -> DdgStandIn | None:
    """The continuous pair and log-ratio for ``n_clients`` shares of
    N_Z(0, local_sigma^2)^d and an integer update of L2 norm at most ``l2_sensitivity``;
    None where it does not exist (add/remove with one share, variances at or below the
    channel's, or KLS21's tau at 1 or more)."""
    r = n_clients
    if add_remove and r < 2:
        return None
    s2 = local_sigma * local_sigma
    v = channel_variance(dimension)
    big, small = r * s2 - v, (r - 1 if add_remove else r) * s2 - v
    if not small > 0.0:
        return None

    shares = max(
        _rdp.ddg_tau_prime(local_sigma, r),
        _rdp.ddg_tau_prime(local_sigma, r - 1 if add_remove else r),
    )
    log_ratio = dimension * (shares + _channel_log_ratio(v))
    if not math.isfinite(log_ratio):
        return None
    return DdgStandIn(GaussianPair(l2_sensitivity, big, small, dimension), log_ratio)


# -- the add/remove pair's loss ------------------------------------------------------------


def _norm_cdf_interval(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """P[lo < Z <= hi] for a standard normal Z, accurate in both tails."""
    from scipy import special

    # Where the interval lies right of 0 use survival functions, else CDFs.
    right = lo > 0
    out = np.where(
        right,
        special.ndtr(-lo) - special.ndtr(-hi),
        special.ndtr(hi) - special.ndtr(lo),
    )
    return np.asarray(np.maximum(out, 0.0))


def _quadratic_cdf(
    u: np.ndarray, c2: float, b: float, mean: float, std: float
) -> tuple[np.ndarray, np.ndarray]:
    """(P[U <= u], P[U > u]) for U = c2 y^2 + b y, y ~ N(mean, std^2), c2 > 0."""
    from scipy import special

    disc = b * b + 4.0 * c2 * u
    ok = disc >= 0.0
    root = np.sqrt(np.where(ok, disc, 0.0))
    # y_hi = (-b + root)/(2 c2) written without cancellation (b > 0); y_lo = -(b + root)/(2 c2)
    y_hi = 2.0 * u / (b + root)
    y_lo = -(b + root) / (2.0 * c2)
    z_lo = (y_lo - mean) / std
    z_hi = (y_hi - mean) / std
    inside = np.where(ok, _norm_cdf_interval(z_lo, z_hi), 0.0)
    outside = np.where(ok, special.ndtr(z_lo) + special.ndtr(-z_hi), 1.0)
    return inside, outside


def _bin_masses(cdf: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """Masses of the bins (g_{k-1}, g_k] from CDF and survival values at the grid points,
    each taken from the side where it is accurate; the first entry is P[X <= g_0]."""
    mid = cdf <= 0.5
    diff_cdf = np.diff(cdf)
    diff_sf = -np.diff(sf)
    masses = np.where(mid[1:], diff_cdf, diff_sf)
    return np.concatenate(([cdf[0]], np.maximum(masses, 0.0)))


@dataclass(frozen=True)
class _Component:
    """A loss component on the grid ``start + h k``: its masses, and the mass it puts at
    the infinite end (``+inf`` when rounded up, ``-inf`` when rounded down)."""

    start: float
    masses: np.ndarray
    extreme: float


def _grid(lo: float, hi: float, h: float) -> np.ndarray:
    """The multiples of ``h`` from just below ``lo`` to just above ``hi``."""
    return h * np.arange(math.floor(lo / h), math.ceil(hi / h) + 1, dtype=np.float64)


def _discretize(grid: np.ndarray, cdf: np.ndarray, sf: np.ndarray, up: bool) -> _Component:
    """Round a variable onto ``grid``: the mass of (g_{k-1}, g_k] goes to g_k (``up``) or to
    g_{k-1}. Up, the mass below g_0 joins g_0 and the mass above the grid is infinite;
    down, the mass above joins the last point and the mass below is infinite."""
    masses = _bin_masses(cdf, sf)
    if up:
        return _Component(float(grid[0]), masses, float(sf[-1]))
    return _Component(float(grid[0]), np.append(masses[1:], float(sf[-1])), float(cdf[0]))


@dataclass(frozen=True)
class _Shape:
    """The add/remove pair's loss ``L = c2 y1^2 + b y1 + c2 W + c0`` (y1 along x, W the
    squared norm of the other d - 1 coordinates)."""

    c2: float
    b: float
    c0: float

    @classmethod
    def of(cls, pair: GaussianPair) -> _Shape:
        a_var, b_var, delta = pair.den_variance, pair.num_variance, pair.sensitivity
        return cls(
            c2=(b_var - a_var) / (2.0 * a_var * b_var),
            b=delta / b_var,
            c0=-delta * delta / (2.0 * b_var) + 0.5 * pair.dimension * math.log(a_var / b_var),
        )


@dataclass(frozen=True)
class _LossCdfs:
    """The CDF and survival function of L's two components under P or Q, on a grid of step
    ``h`` (the step grows if a component would need more than ``FINE_POINTS`` points); the
    chi-square part is absent in one dimension."""

    h: float
    c0: float
    quad: tuple[np.ndarray, np.ndarray, np.ndarray]
    chi: tuple[np.ndarray, np.ndarray, np.ndarray] | None

    @classmethod
    def of(cls, pair: GaussianPair, under_p: bool, h: float) -> _LossCdfs:
        from scipy import stats

        shape = _Shape.of(pair)
        mean, var = (pair.sensitivity, pair.num_variance) if under_p else (0.0, pair.den_variance)
        # Where the components lie, but for TAIL of mass on each side.
        z = float(stats.norm.isf(TAIL / 2.0))
        ends = np.array([mean - z * math.sqrt(var), mean + z * math.sqrt(var)])
        u_ends = shape.c2 * ends**2 + shape.b * ends
        vertex = -shape.b / (2.0 * shape.c2)
        inside = bool(ends[0] < vertex < ends[1])
        u_lo = -shape.b * shape.b / (4.0 * shape.c2) if inside else float(u_ends.min())
        u_hi = float(u_ends.max())
        dof, scale = pair.dimension - 1, shape.c2 * var
        w_lo = w_hi = 0.0
        if dof > 0:
            w_lo = scale * float(stats.chi2.ppf(TAIL, dof))
            w_hi = scale * float(stats.chi2.isf(TAIL, dof))
        h = max(h, (u_hi - u_lo) / FINE_POINTS, (w_hi - w_lo) / FINE_POINTS)
        grid = _grid(u_lo, u_hi, h)
        quad = (grid, *_quadratic_cdf(grid, shape.c2, shape.b, mean, math.sqrt(var)))
        chi = None
        if dof > 0:
            grid_w = _grid(w_lo, w_hi, h)
            chi = (grid_w, stats.chi2.cdf(grid_w / scale, dof), stats.chi2.sf(grid_w / scale, dof))
        return cls(h, shape.c0, quad, chi)

    def rounded(self, up: bool) -> tuple[np.ndarray, np.ndarray, float]:
        """(losses, masses, mass at the infinite end) of L rounded up or down onto the grid."""
        from scipy import signal

        quad = _discretize(*self.quad, up)
        if self.chi is None:
            masses, start, extreme = quad.masses, quad.start, quad.extreme
        else:
            chi = _discretize(*self.chi, up)
            masses = np.maximum(signal.fftconvolve(quad.masses, chi.masses), 0.0)
            start, extreme = quad.start + chi.start, quad.extreme + chi.extreme
        losses = self.c0 + start + self.h * np.arange(masses.size, dtype=np.float64)
        return losses, masses, extreme


def _hockey_sticks(
    losses: np.ndarray, masses: np.ndarray, infinite: float, eps: np.ndarray
) -> np.ndarray:
    """delta(eps) = infinite + sum_{l_k > eps} m_k (1 - e^{eps - l_k}) (losses ascending)."""
    top = float(losses[-1])
    # e^{top - l} overflows only for losses 700 nats below the top: such a loss only
    # matters for eps below it, where the pessimistic lift to top - 700 is harmless.
    lifted = np.maximum(losses, top - 700.0)
    tail_m = np.append(np.cumsum(masses[::-1])[::-1], 0.0)
    tail_e = np.append(np.cumsum((masses * np.exp(top - lifted))[::-1])[::-1], 0.0)
    idx = np.searchsorted(lifted, eps, side="right")
    out = tail_m[idx] - np.exp(eps - top) * tail_e[idx]
    return np.asarray(infinite + np.maximum(out, 0.0))


def subsampled_pld(pair: GaussianPair, q: float, interval: float) -> Any:
    """dp-accounting PLD (remove and add) of the pair under Poisson sampling at rate ``q``,
    pessimistic: its epsilons are never below the pair's."""
    from dp_accounting.pld import pld_pmf, privacy_loss_distribution

    if pair.shift_only:
        return privacy_loss_distribution.from_gaussian_mechanism(
            standard_deviation=math.sqrt(pair.den_variance),
            sensitivity=pair.sensitivity,
            sampling_prob=q,
            value_discretization_interval=interval,
        )
    h = interval / FINE_PER_INTERVAL
    under_q = _LossCdfs.of(pair, under_p=False, h=h)
    lp, mp, inf_p = _LossCdfs.of(pair, under_p=True, h=h).rounded(up=True)
    lq, mq, inf_q = under_q.rounded(up=True)
    lq_dn, mq_dn, neg_inf_q = under_q.rounded(up=False)

    def mix(loss: np.ndarray) -> np.ndarray:
        if q >= 1.0:
            return loss
        return np.asarray(np.logaddexp(math.log1p(-q), math.log(q) + loss))

    # remove: upper (1-q) Q + q P, loss ln(1 - q + q e^L)
    rem_l = np.concatenate((mix(lq), mix(lp)))
    rem_m = np.concatenate(((1.0 - q) * mq, q * mp))
    rem_inf = (1.0 - q) * inf_q + q * inf_p
    # add: upper Q, loss -ln(1 - q + q e^L) with L rounded down; L = -inf gives +inf loss
    add_l = -mix(lq_dn)
    add_m = mq_dn
    add_inf = neg_inf_q if q >= 1.0 else 0.0
    if q < 1.0:
        # L -> -inf gives the finite loss -ln(1 - q)
        add_l = np.concatenate((add_l, [-math.log1p(-q)]))
        add_m = np.concatenate((add_m, [neg_inf_q]))

    def pmf(losses: np.ndarray, masses: np.ndarray, infinite: float) -> Any:
        order = np.argsort(losses, kind="stable")
        losses, masses = losses[order], masses[order]
        keep = masses > 0.0
        losses, masses = losses[keep], masses[keep]
        # Connect-the-dots lumps the mass below its first point onto it (pessimistic) and
        # puts delta at its last point on +inf: the support runs between the losses that
        # leave DELTA_FLOOR of the mass below and above (delta <= the mass above).
        first = int(np.searchsorted(np.cumsum(masses), DELTA_FLOOR, side="left"))
        above = np.cumsum(masses[::-1])[::-1]
        last = int(np.searchsorted(-above, -DELTA_FLOOR, side="left"))
        lo = math.floor(float(losses[min(first, losses.size - 1)]) / interval)
        hi = math.ceil(float(losses[min(last, losses.size - 1)]) / interval) + 1
        if hi - lo > MAX_SUPPORT:
            raise PldTooWide(
                f"the privacy loss spans {(hi - lo) * interval:.3g} nats, over {MAX_SUPPORT} "
                f"points at interval {interval:g}: the PLD would not fit in memory; account "
                f"with RdpAccountant (accounted_epsilon does so by itself)"
            )
        ks = np.arange(lo, hi + 1)
        deltas = np.minimum(_hockey_sticks(losses, masses, infinite, ks * interval), 1.0)
        return pld_pmf.create_pmf_pessimistic_connect_dots(interval, ks, deltas)

    return privacy_loss_distribution.PrivacyLossDistribution(
        pmf(rem_l, rem_m, rem_inf), pmf(add_l, add_m, add_inf)
    )
