"""The Gaussian (GDP) bound that lets PLD account the distributed Skellam (spec 10.8).

Checked against an independent computation (mpmath's Bessel functions at 120 digits), by
the hockey-stick divergences of the real Skellam pairs (one and two coordinates), and
through the accountant against the Gaussian of the same multiplier.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
from scipy import special, stats

from secfl.dp import _skellam_gdp
from secfl.dp.accounting import (
    AccountingMethod,
    Neighboring,
    PldAccountant,
    SkellamSumEvent,
    accounted_epsilon,
)
from secfl.dp.mechanisms import NoiseKind, plan_distributed
from secfl.errors import InvalidArgument

ZO = Neighboring.ZERO_OUT


def _mp_m1(variance: float, max_shift: int) -> float:
    """max over c in (-W, 0] of Phi^-1(F(c)) - Phi^-1(F(c-1)), in mpmath from the Bessel
    pmf, W the window of the module (its Chernoff radius plus the shift)."""
    mpmath.mp.dps = 120
    v = mpmath.mpf(variance)
    window = _skellam_gdp._radius(variance, _skellam_gdp.TAIL) + max_shift
    start = window + 40 + int(10 * math.sqrt(variance))
    pmf = [mpmath.exp(-v) * mpmath.besseli(abs(z), v) for z in range(-start, 1)]
    total = mpmath.mpf(0)
    quantiles = []
    for p in pmf:
        total += p
        quantiles.append(mpmath.sqrt(2) * mpmath.erfinv(2 * total - 1))
    best = max(quantiles[i] - quantiles[i - 1] for i in range(1, len(pmf)) if i - start >= -window)
    return float(best)


@pytest.mark.parametrize("variance", [2.0, 8.0, 30.0])
def test_m1_matches_an_independent_mpmath_computation(variance):
    m1 = _skellam_gdp.unit_shift_gdp(variance, 6)
    assert m1 is not None
    ref = _mp_m1(variance, 6)
    assert ref <= m1 <= ref * (1 + 2 * _skellam_gdp.FLOAT_MARGIN)
    assert m1 * math.sqrt(variance) > 1.0  # never below the Gaussian of the same variance


@pytest.mark.parametrize("x", [0.5, 10.0, 1e3, 1e6])
def test_the_bessel_ratio_bounds_hold(x):
    """-asinh((n+1)/x) <= ln(I_{n+1}(x)/I_n(x)) <= -asinh((n+1/2)/x) (Amos; Segura)."""
    n = np.arange(0, int(20 * math.sqrt(x)) + 20, dtype=np.float64)
    p = special.ive(n, x)
    ok = p[1:] > 1e-250
    log_r = np.log(p[1:][ok] / p[:-1][ok])
    assert (log_r >= -np.arcsinh((n[:-1][ok] + 1) / x) - 1e-12).all()
    assert (log_r <= -np.arcsinh((n[:-1][ok] + 0.5) / x) + 1e-12).all()


@pytest.mark.parametrize(("variance", "within"), [(2e5, 1.05), (1e6, 1.02), (1e7, 1.01)])
def test_the_bounded_path_is_above_the_exact_one_and_close(variance, within):
    k = int(3 * math.sqrt(variance))
    window = _skellam_gdp._radius(variance, _skellam_gdp.TAIL) + k
    outer = _skellam_gdp._radius(variance, _skellam_gdp.TAIL * 1e-20) + k
    exact = _skellam_gdp._exact_m1(variance, window, outer)
    bounded = _skellam_gdp._bounded_m1(variance, window, outer)
    assert exact is not None
    assert exact <= bounded <= exact * within


def test_no_bound_where_it_cannot_be_computed_and_rdp_takes_over():
    """A window many standard deviations wide underflows the bounded masses, and a variance
    beyond any plan is not attempted: no bound (not a crash, not a hang), RDP accounts."""
    assert _skellam_gdp.unit_shift_gdp(1e8, int(40 * math.sqrt(1e8))) is None
    assert _skellam_gdp.unit_shift_gdp(1e30, 10) is None
    tiny = SkellamSumEvent.for_noise_multiplier(
        0.02, l2_sensitivity=1e6, n_clients=10, dimension=64
    )
    assert not PldAccountant(neighboring=ZO).supports(tiny)
    eps, method = accounted_epsilon(
        0.02, delta=1e-5, q=1.0, rounds=1, mechanism=lambda _: tiny, neighboring=ZO
    )
    assert method is AccountingMethod.RDP
    assert eps > 100


def test_m1_approaches_the_gaussian_for_large_variance():
    for variance in (1e9, 1e14):
        m1 = _skellam_gdp.unit_shift_gdp(variance, int(2 * math.sqrt(variance)))
        assert m1 is not None
        assert 1.0 < m1 * math.sqrt(variance) < 1.001


def _gauss_delta(mu: float, eps: np.ndarray) -> np.ndarray:
    out: np.ndarray = special.ndtr(-eps / mu + mu / 2) - np.exp(eps) * special.ndtr(
        -eps / mu - mu / 2
    )
    return out


def _hockey_stick(p: np.ndarray, q: np.ndarray, eps: np.ndarray) -> np.ndarray:
    return np.array([np.sum(np.maximum(p - math.exp(e) * q, 0.0)) for e in eps])


EPS = np.linspace(0.0, 6.0, 241)


@pytest.mark.parametrize(("variance", "shift"), [(2.0, 1), (8.0, 1), (8.0, 3), (30.0, 7)])
def test_one_coordinate_is_dominated_and_the_bound_is_tight(variance, shift):
    """delta of (N + k, N) stays under the Gaussian k m1 (+ TAIL) at every epsilon, and a
    2 % smaller m1 would not: the check has teeth."""
    z = np.arange(-200, 201)
    p = stats.skellam.pmf(z, variance / 2, variance / 2)
    shifted = stats.skellam.pmf(z - shift, variance / 2, variance / 2)
    m1 = _skellam_gdp.unit_shift_gdp(variance, shift)
    assert m1 is not None
    for a, b in ((shifted, p), (p, shifted)):
        real = _hockey_stick(a, b, EPS)
        assert (real <= _gauss_delta(shift * m1, EPS) + _skellam_gdp.TAIL + 1e-12).all()
    real = _hockey_stick(shifted, p, EPS)
    assert (real > _gauss_delta(shift * m1 * 0.98, EPS) + 1e-12).any()


def test_two_coordinates_compose_to_the_norm():
    """x = (1, 2) at V = 8: the 2-D Skellam pair is under the Gaussian m1 |x|."""
    variance = 8.0
    z = np.arange(-60, 61)
    p1 = stats.skellam.pmf(z, variance / 2, variance / 2)
    q = np.outer(p1, p1).ravel()
    p = np.outer(
        stats.skellam.pmf(z - 1, variance / 2, variance / 2),
        stats.skellam.pmf(z - 2, variance / 2, variance / 2),
    ).ravel()
    m1 = _skellam_gdp.unit_shift_gdp(variance, 2)
    assert m1 is not None
    real = _hockey_stick(p, q, EPS)
    assert (real <= _gauss_delta(m1 * math.sqrt(5.0), EPS) + 2 * _skellam_gdp.TAIL + 1e-12).all()


def _skellam(z: float, *, n: int, bits: int) -> SkellamSumEvent:
    plan = plan_distributed(
        bits=bits,
        n_clients=n,
        min_clients=n,
        clip_bound=1.0,
        dimension=1024,
        noise_multiplier=z,
        kind=NoiseKind.SKELLAM,
    )
    event = plan.noise.event(n_clients=n)
    assert isinstance(event, SkellamSumEvent)
    return event


@pytest.mark.parametrize(("n", "bits"), [(100, 32), (2, 12)])
@pytest.mark.parametrize("z", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("rounds", [1, 100, 1000])
def test_skellam_is_within_one_percent_of_the_gaussian_pld(n, bits, z, rounds):
    """Issue 17's target (10 %) for Skellam at q = 1, local sigma >= 2: met with room."""
    mech = functools.partial(_skellam, n=n, bits=bits)
    assert math.sqrt(mech(z).local_variance) >= 2.0
    eps, method = accounted_epsilon(
        z, delta=1e-5, q=1.0, rounds=rounds, mechanism=mech, neighboring=ZO
    )
    gauss, _ = accounted_epsilon(z, delta=1e-5, q=1.0, rounds=rounds)
    rdp, _ = accounted_epsilon(
        z,
        delta=1e-5,
        q=1.0,
        rounds=rounds,
        mechanism=mech,
        neighboring=ZO,
        method=AccountingMethod.RDP,
    )
    assert method is AccountingMethod.PLD
    assert gauss <= eps <= gauss * 1.01
    assert eps < rdp


def test_the_slack_enters_delta_and_a_delta_below_it_is_refused_as_infinite():
    event = SkellamSumEvent(local_variance=100.0, n_clients=4, l2_sensitivity=20.0, dimension=64)
    acc = PldAccountant(neighboring=ZO).compose(event, count=10)
    slack = 10 * 64 * _skellam_gdp.TAIL
    assert acc.get_delta(1e6) == pytest.approx(slack)
    assert acc.get_epsilon(slack / 2) == math.inf
    eps = acc.get_epsilon(1e-5)
    assert math.isfinite(eps)
    assert acc.get_delta(eps) <= 1e-5


def test_sampled_or_add_remove_skellam_stays_refused():
    event = SkellamSumEvent(local_variance=100.0, n_clients=4, l2_sensitivity=20.0, dimension=64)
    with pytest.raises(InvalidArgument, match="no bound for Skellam sums"):
        PldAccountant().compose(event)
    from secfl.dp.accounting import PoissonSampledEvent

    with pytest.raises(InvalidArgument, match="zero-out with Poisson sampling"):
        PldAccountant(neighboring=ZO).compose(PoissonSampledEvent(0.1, event))


def test_ledger_epsilon_keeps_the_tighter_method():
    """A run's ledger re-accounted: PLD where it has every event and gives less, else RDP."""
    from secfl.dp.accounting import GaussianEvent, RdpAccountant, ledger_epsilon

    event = SkellamSumEvent(local_variance=100.0, n_clients=4, l2_sensitivity=20.0, dimension=64)
    ledger = [(event, 3), (event, 2)]
    eps, method = ledger_epsilon(ledger, delta=1e-5, neighboring=ZO)
    pld = PldAccountant(neighboring=ZO).compose(event, count=5).get_epsilon(1e-5)
    rdp = RdpAccountant(neighboring=ZO).compose(event, count=5).get_epsilon(1e-5)
    assert method is AccountingMethod.PLD
    assert eps == pld < rdp
    # no PLD for a fixed-size sample: RDP
    from secfl.dp.accounting import FixedSizeSampledEvent

    sample = FixedSizeSampledEvent(sample_size=10, population_size=100, event=GaussianEvent(1.0))
    swap = [(sample, 3)]
    eps, method = ledger_epsilon(swap, delta=1e-5, neighboring=Neighboring.REPLACE_ONE)
    assert method is AccountingMethod.RDP
    assert eps == RdpAccountant(neighboring=Neighboring.REPLACE_ONE).compose(
        swap[0][0], count=3
    ).get_epsilon(1e-5)
