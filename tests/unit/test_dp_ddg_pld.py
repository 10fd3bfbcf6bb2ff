"""The distributed discrete Gaussian's PLD (secfl.dp._ddg_pld) against an independent
computation: the hockey-stick divergence of the continuous pair by adaptive quadrature over
the orthogonal chi-square, with the coordinate along the update integrated in closed form."""

from __future__ import annotations

import itertools
import math

import pytest
from scipy import integrate, special

from secfl.dp import (
    AccountingMethod,
    ComposedEvent,
    DiscreteGaussianSumEvent,
    GaussianEvent,
    Neighboring,
    PldAccountant,
    PoissonSampledEvent,
    RdpAccountant,
    accounted_epsilon,
)
from secfl.dp import _ddg_pld as ddg
from secfl.errors import InvalidArgument

ZO = Neighboring.ZERO_OUT


def _norm_cdf(x: float, mean: float, var: float) -> float:
    return float(special.ndtr((x - mean) / math.sqrt(var)))


def _hockey(pair: ddg.GaussianPair, t: float, *, remove: bool) -> float:
    """H_{e^t}(P||Q) (remove) or H_{e^t}(Q||P) (add), t >= 0, by quadrature."""
    a_var, b_var, x, d = pair.den_variance, pair.num_variance, pair.sensitivity, pair.dimension
    c2 = (b_var - a_var) / (2 * a_var * b_var)
    b = x / b_var
    c0 = -x * x / (2 * b_var) + 0.5 * d * math.log(a_var / b_var)
    k = d - 1

    def roots(u: float) -> tuple[float, float] | None:
        disc = b * b + 4 * c2 * u
        if disc < 0:
            return None
        r = math.sqrt(disc)
        return (-b - r) / (2 * c2), (-b + r) / (2 * c2)

    def chi_density(w: float, var: float) -> float:
        """Density at w of var times a chi-square with k degrees of freedom."""
        u = w / var
        log = special.xlogy(k / 2 - 1, u) - u / 2 - math.lgamma(k / 2) - k / 2 * math.log(2)
        return math.exp(log) / var

    def masses(w: float) -> tuple[float, float]:
        """(P, Q) masses at W = w of the region where the loss exceeds t (remove) or falls
        below -t (add), each times the chi-square density of W."""
        gp, gq = chi_density(w, b_var), chi_density(w, a_var)
        if remove:
            rt = roots(t - c0 - c2 * w)
            if rt is None:
                return gp, gq
            lo, hi = rt
            p = _norm_cdf(lo, x, b_var) + 1 - _norm_cdf(hi, x, b_var)
            q = _norm_cdf(lo, 0, a_var) + 1 - _norm_cdf(hi, 0, a_var)
            return gp * p, gq * q
        rt = roots(-t - c0 - c2 * w)
        if rt is None:
            return 0.0, 0.0
        lo, hi = rt
        p = _norm_cdf(hi, x, b_var) - _norm_cdf(lo, x, b_var)
        q = _norm_cdf(hi, 0, a_var) - _norm_cdf(lo, 0, a_var)
        return gp * p, gq * q

    def integrand(w: float) -> float:
        p, q = masses(w)
        return p - math.exp(t) * q if remove else q - math.exp(t) * p

    spread = 12 * math.sqrt(2 * k)
    lo = max(0.0, a_var * (k - spread))
    hi = b_var * (k + spread)
    val, _ = integrate.quad(integrand, lo, hi, limit=400, points=[a_var * k, b_var * k])
    return max(val, 0.0)


def _general_hockey(pair: ddg.GaussianPair, c: float, *, remove: bool) -> float:
    """H_c for any c > 0: below 1 through H_c(P||Q) = 1 - c + c H_{1/c}(Q||P)."""
    if c >= 1:
        return _hockey(pair, math.log(c), remove=remove)
    return 1 - c + c * _hockey(pair, -math.log(c), remove=not remove)


def _subsampled(pair: ddg.GaussianPair, q: float, eps: float) -> float:
    """The larger of the two directions' deltas of ((1-q) Q + q P, Q) at eps."""
    e = math.exp(eps)
    remove = q * _general_hockey(pair, (e - (1 - q)) / q, remove=True)
    scale = 1 - e * (1 - q)
    add = scale * _general_hockey(pair, e * q / scale, remove=False) if scale > 0 else 0.0
    return max(remove, add)


PAIR = ddg.GaussianPair(30.0, 900.0, 891.0, 16384)  # 100 shares of 9, z = 1, d' = 16384


@pytest.mark.parametrize("eps", [0.5, 2.0, 5.0])
def test_unsampled_add_remove_pair_matches_quadrature(eps):
    pld = ddg.subsampled_pld(PAIR, 1.0, 1e-3)
    exact = max(_hockey(PAIR, eps, remove=True), _hockey(PAIR, eps, remove=False))
    ours = float(pld.get_delta_for_epsilon(eps))
    assert ours >= exact * (1 - 1e-9)  # pessimistic
    assert ours <= exact * 1.01 + 1e-12  # and tight


@pytest.mark.parametrize("eps", [0.5, 5.0])
def test_each_direction_is_pessimistic_and_tight(eps):
    """Remove and add separately (dp-accounting keeps one PMF per direction)."""
    pld = ddg.subsampled_pld(PAIR, 1.0, 1e-3)
    for pmf, remove in ((pld._pmf_remove, True), (pld._pmf_add, False)):
        exact = _hockey(PAIR, eps, remove=remove)
        ours = float(pmf.get_delta_for_epsilon(eps))
        assert exact * (1 - 1e-9) <= ours <= exact * 1.01 + 1e-12


@pytest.mark.parametrize("pair", [PAIR, ddg.GaussianPair(4.0, 50.0, 40.0, 3)])
@pytest.mark.parametrize("eps", [0.05, 0.5, 1.5])
def test_subsampled_pair_matches_the_mixture(pair, eps):
    pld = ddg.subsampled_pld(pair, 0.1, 1e-3)
    exact = _subsampled(pair, 0.1, eps)
    ours = float(pld.get_delta_for_epsilon(eps))
    assert ours >= exact * (1 - 1e-9)
    assert ours <= exact * 1.02 + 1e-12


def test_one_dimension_needs_no_chi_square():
    pair = ddg.GaussianPair(3.0, 10.0, 8.0, 1)
    pld = ddg.subsampled_pld(pair, 1.0, 1e-3)
    for eps in (0.3, 1.0):
        # quadrature in y alone: H = int (p - e^t q)+ dy
        def gap(y: float, t: float = eps) -> float:
            p = math.exp(-((y - 3) ** 2) / 20) / math.sqrt(20 * math.pi)
            q = math.exp(-(y**2) / 16) / math.sqrt(16 * math.pi)
            return max(p - math.exp(t) * q, 0.0)

        def gap_add(y: float, t: float = eps) -> float:
            p = math.exp(-((y - 3) ** 2) / 20) / math.sqrt(20 * math.pi)
            q = math.exp(-(y**2) / 16) / math.sqrt(16 * math.pi)
            return max(q - math.exp(t) * p, 0.0)

        exact = max(
            integrate.quad(gap, -80, 80, limit=400)[0],
            integrate.quad(gap_add, -80, 80, limit=400)[0],
        )
        ours = float(pld.get_delta_for_epsilon(eps))
        assert exact * (1 - 1e-7) <= ours <= exact * 1.01


def test_issue_17_cases_under_pld_hold_at_the_exact_delta():
    """Issue 17's add/remove cases (q = 1, one round, d' = 16384, z = 1 planned for m = 80
    of 100): RDP gave 6.45; the PLD's epsilon is smaller, and the pair's exact delta there
    is at most 1e-5 (and not far below: the PLD is tight)."""
    n, m = 100, 80
    planned = DiscreteGaussianSumEvent.for_noise_multiplier(
        1.0, l2_sensitivity=1e6, n_clients=m, dimension=16384
    )
    ev = DiscreteGaussianSumEvent(
        local_sigma=planned.local_sigma, n_clients=n, l2_sensitivity=1e6, dimension=16384
    )
    eps = PldAccountant().compose(ev).get_epsilon(1e-5)
    assert eps == pytest.approx(5.93, abs=0.01)
    assert eps < RdpAccountant().compose(ev).get_epsilon(1e-5)
    found = ddg.stand_in(
        local_sigma=ev.local_sigma,
        n_clients=n,
        l2_sensitivity=1e6,
        dimension=16384,
        add_remove=True,
    )
    assert found is not None
    exact = max(_hockey(found.pair, eps, remove=True), _hockey(found.pair, eps, remove=False))
    assert 0.98e-5 <= exact <= 1e-5


def _ddg_with_sigma_two(z: float, shares: int) -> DiscreteGaussianSumEvent:
    ev = DiscreteGaussianSumEvent.for_noise_multiplier(
        z, l2_sensitivity=2.0 * math.sqrt(shares) / z, n_clients=shares, dimension=16384
    )
    assert ev.local_sigma == pytest.approx(2.0)
    return ev


@pytest.mark.parametrize(("z", "q", "rounds"), [(1.0, 0.1, 100), (0.8, 0.01, 1000), (3.0, 1.0, 1)])
def test_ddg_tracks_the_gaussian(z, q, rounds):
    """Issue 17's target, shares of sigma_l = 2: under add/remove with 1000 shares within
    10 % of the continuous Gaussian's PLD at the same z (measured: at most 7.2 %), and
    under zero-out (unsampled only) within 0.5 %; never below it."""
    kw = {"delta": 1e-5, "q": q, "rounds": rounds}
    gauss = accounted_epsilon(z, **kw)[0]
    big = _ddg_with_sigma_two(z, 1000)
    ours, method = accounted_epsilon(z, mechanism=lambda _: big, **kw)
    assert method is AccountingMethod.PLD
    assert gauss * (1 - 1e-9) <= ours <= gauss * 1.1
    if q == 1.0:
        small = _ddg_with_sigma_two(z, 100)
        ours, method = accounted_epsilon(z, mechanism=lambda _: small, neighboring=ZO, **kw)
        assert method is AccountingMethod.PLD
        assert gauss * (1 - 1e-9) <= ours <= gauss * 1.005


def test_zero_out_with_poisson_sampling_is_refused():
    """Red-team finding: unsampled, a client sends no share in either neighbour, so the
    pair is ((1-q) R + q P, (1-q) R + q Q) and the variance shows participation; at z = 1,
    r = 100, q = 0.1, d' = 16384 the ZW19 bound said 2.33 where the truth is 2.59."""
    ev = DiscreteGaussianSumEvent(
        local_sigma=3.0, n_clients=100, l2_sensitivity=30.0, dimension=16384
    )
    sampled = PoissonSampledEvent(0.1, ev)
    for acc in (PldAccountant(neighboring=ZO), RdpAccountant(neighboring=ZO)):
        assert not acc.supports(sampled)
        with pytest.raises(InvalidArgument, match="zero-out with Poisson sampling"):
            acc.compose(sampled)
        assert acc.supports(ev)  # unsampled zero-out stays
    with pytest.raises(InvalidArgument, match="zero-out with Poisson sampling"):
        accounted_epsilon(1.0, mechanism=lambda _: ev, neighboring=ZO, delta=1e-5, q=0.1, rounds=1)
    assert PldAccountant().supports(sampled)  # add/remove accounts it


def test_small_shares_move_the_stand_in_and_rdp_wins():
    """At sigma_l near 1 KLS21's tau moves the stand-in by C = d' tau' per round (not
    reduced by sampling): the PLD is then far above RDP, and the smaller is kept and
    labelled with its method."""
    fine = ddg.stand_in(
        local_sigma=2.0, n_clients=100, l2_sensitivity=20.0, dimension=16384, add_remove=True
    )
    coarse = ddg.stand_in(
        local_sigma=1.0, n_clients=100, l2_sensitivity=10.0, dimension=16384, add_remove=True
    )
    assert fine is not None
    assert coarse is not None
    assert fine.log_ratio < 1e-10 < 1.0 < coarse.log_ratio
    ev = DiscreteGaussianSumEvent(
        local_sigma=0.949, n_clients=1000, l2_sensitivity=30.0, dimension=16384
    )
    kw = {"delta": 1e-5, "q": 0.01, "rounds": 1}
    eps, method = accounted_epsilon(1.0, mechanism=lambda _: ev, **kw)
    pld_eps = PldAccountant().compose(PoissonSampledEvent(0.01, ev)).get_epsilon(1e-5)
    rdp_eps = RdpAccountant().compose(PoissonSampledEvent(0.01, ev)).get_epsilon(1e-5)
    assert rdp_eps < pld_eps
    assert (eps, method) == (rdp_eps, AccountingMethod.RDP)
    # and a target RDP already meets skips the PLD
    assert accounted_epsilon(1.0, mechanism=lambda _: ev, below=1e9, **kw)[1] is (
        AccountingMethod.RDP
    )


def test_one_coordinate_ddg_is_not_mistaken_for_a_central_gaussian():
    """Review finding: a zero-out ddg in one dimension is a shift pair too, but with its own
    sensitivity and a stand-in correction; it must take the ddg path (true epsilon about
    4.4 here, RDP 4.75; the bug reported 0.34)."""
    ev = DiscreteGaussianSumEvent(local_sigma=5.0, n_clients=4, l2_sensitivity=10.0, dimension=1)
    eps = PldAccountant(neighboring=ZO).compose(ev).get_epsilon(1e-5)
    gauss = accounted_epsilon(ev.noise_multiplier, delta=1e-5, q=1.0, rounds=1)[0]
    assert gauss <= eps <= RdpAccountant(neighboring=ZO).compose(ev).get_epsilon(1e-5)


def test_a_pld_too_wide_for_memory_falls_back_to_rdp():
    """Red-team finding: sigma = 30 against a sensitivity of 10^6 (epsilon ~ 10^9) once
    needed ~24 GB; now PldTooWide, and accounted_epsilon reports RDP."""
    ev = DiscreteGaussianSumEvent(
        local_sigma=3.0, n_clients=100, l2_sensitivity=1e6, dimension=16384
    )
    with pytest.raises(ddg.PldTooWide, match="RdpAccountant"):
        PldAccountant().compose(ev).get_epsilon(1e-5)
    eps, method = accounted_epsilon(1.0, mechanism=lambda _: ev, delta=1e-5, q=1.0, rounds=1)
    assert method is AccountingMethod.RDP
    assert eps == RdpAccountant().compose(ev).get_epsilon(1e-5)


def test_unsampled_rounds_collapse_to_one_pair():
    """T unsampled rounds are one pair in d T dimensions: the same epsilon (to the
    discretization) as composing T single-round PLDs."""
    collapsed = PldAccountant()
    ev = DiscreteGaussianSumEvent(
        local_sigma=math.sqrt(10.0), n_clients=10, l2_sensitivity=10.0, dimension=64
    )
    collapsed.compose(ev, count=5)
    single = ddg.subsampled_pld(
        ddg.GaussianPair(
            10.0, 100.0 - ddg.channel_variance(64), 90.0 - ddg.channel_variance(64), 64
        ),
        1.0,
        1e-4,
    ).self_compose(5)
    assert collapsed.get_epsilon(1e-5) == pytest.approx(
        float(single.get_epsilon_for_delta(1e-5)), rel=2e-3
    )


def test_channel_variance_meets_its_bound():
    for d in (1, 16384, 10**6):
        v = ddg.channel_variance(d)
        assert d * ddg._channel_log_ratio(v) <= ddg.CHANNEL_LOG_RATIO
        assert d * ddg._channel_log_ratio(v / 1.02) > ddg.CHANNEL_LOG_RATIO
    assert (
        ddg.stand_in(local_sigma=1.0, n_clients=1, l2_sensitivity=1.0, dimension=8, add_remove=True)
        is None
    )
    # a variance at or below the channel's has no stand-in
    assert (
        ddg.stand_in(local_sigma=0.5, n_clients=2, l2_sensitivity=1.0, dimension=8, add_remove=True)
        is None
    )


def test_central_gaussian_keeps_its_verified_path():
    acc = PldAccountant().compose(ComposedEvent(PoissonSampledEvent(0.1, GaussianEvent(1.0)), 100))
    assert acc.get_epsilon(1e-5) == pytest.approx(7.0466, abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("z", [0.5, 0.8, 1.0, 1.5, 3.0])
def test_ddg_grid_within_ten_percent_of_the_gaussian(z):
    """Issue 17's target on the whole grid, sigma_l = 2: add/remove with 1000 shares
    (measured at most +7.2 %) and, unsampled, zero-out (docs/dp.md)."""
    big, small = _ddg_with_sigma_two(z, 1000), _ddg_with_sigma_two(z, 100)
    for q, rounds in itertools.product((0.01, 0.1, 1.0), (1, 100, 1000)):
        kw = {"delta": 1e-5, "q": q, "rounds": rounds}
        gauss = accounted_epsilon(z, **kw)[0]
        ours = accounted_epsilon(z, mechanism=lambda _: big, **kw)[0]
        assert gauss * (1 - 1e-9) <= ours <= gauss * 1.1, (z, q, rounds)
        if q == 1.0:
            ours = accounted_epsilon(z, mechanism=lambda _: small, neighboring=ZO, **kw)[0]
            assert gauss * (1 - 1e-9) <= ours <= gauss * 1.1, (z, q, rounds)


@pytest.mark.parametrize(("r", "d"), [(2, 1), (3, 4), (10, 64), (100, 16)])
def test_the_add_neighbours_pair_is_dominated_by_the_remove_pair(r, d):
    """Spec 10.5, case (ii): with one public share size s^2, the add neighbour's pair
    N(x, (r + 1) s^2) against N(0, r s^2) is the remove pair N(x, r s^2) against
    N(0, (r - 1) s^2) with one more independent share added to both sides, so its
    hockey-stick divergence is at most the remove pair's, both directions, every eps
    (here by quadrature, independently of the accountants)."""
    s2, x = 4.0, 3.0
    remove_pair = ddg.GaussianPair(x, r * s2, (r - 1) * s2, d)
    add_pair = ddg.GaussianPair(x, (r + 1) * s2, r * s2, d)
    for t, remove in itertools.product((0.0, 0.1, 0.5, 1.0, 2.0), (True, False)):
        bigger = _hockey(remove_pair, t, remove=remove)
        smaller = _hockey(add_pair, t, remove=remove)
        assert smaller <= bigger * (1 + 1e-7) + 1e-12, (t, remove, smaller, bigger)
    # The comparison can fail: with shares of other sizes (as sized per cohort) the
    # variances can change order, and that pair is not dominated.
    sized_for_cohort = ddg.GaussianPair(x, (r + 1) * s2 * 0.8, r * s2, d)
    if d > 1:  # in one dimension both are 0 at these eps: nothing to compare
        assert any(
            _hockey(sized_for_cohort, t, remove=False) > _hockey(remove_pair, t, remove=False)
            for t in (0.5, 1.0, 2.0)
        )
