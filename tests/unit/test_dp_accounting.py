"""Accountant: cross-checks against dp-accounting and an independent mpmath computation."""

import functools
import itertools
import math

import dp_accounting
import mpmath
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import special, stats

from secfl.dp import (
    AccountingMethod,
    ComposedEvent,
    DiscreteGaussianSumEvent,
    FixedSizeSampledEvent,
    GaussianEvent,
    Neighboring,
    PoissonSampledEvent,
    RdpAccountant,
    SkellamSumEvent,
    _rdp,
    epsilon_for_noise_multiplier,
    noise_multiplier_for_epsilon,
)
from secfl.errors import InvalidArgument

ZO = Neighboring.ZERO_OUT  # the published ddg/Skellam curves are zero-out bounds

INT_ORDERS = [float(a) for a in range(2, 65)] + [128.0, 256.0]


# -- independent reference (mpmath, 50 digits) ---------------------------------------------


def _mp_eps_from_rdp(orders, rdp, delta):
    """CKS20 Prop. 12 conversion, the one dp_accounting uses, evaluated in mpmath."""
    mpmath.mp.dps = 50
    best = mpmath.inf
    for a, r in zip(orders, rdp, strict=True):
        a = mpmath.mpf(a)
        eps = r + mpmath.log1p(-1 / a) - mpmath.log(delta * a) / (a - 1)
        best = min(best, eps)
    return float(max(best, 0))


def _mp_sampled_gaussian_rdp(q, sigma, alpha):
    """log(A_alpha)/(alpha-1), A_alpha = sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2-k)/(2 s^2))."""
    mpmath.mp.dps = 50
    q, s = mpmath.mpf(q), mpmath.mpf(sigma)
    total = mpmath.fsum(
        mpmath.binomial(alpha, k)
        * (1 - q) ** (alpha - k)
        * q**k
        * mpmath.exp((k * k - k) / (2 * s * s))
        for k in range(alpha + 1)
    )
    return mpmath.log(total) / (alpha - 1)


@pytest.mark.parametrize(
    ("z", "rounds", "delta"), [(1.0, 1, 1e-5), (0.7, 50, 1e-6), (5.0, 1000, 1e-5)]
)
def test_gaussian_epsilon_matches_mpmath_and_dp_accounting(z, rounds, delta):
    acc = RdpAccountant(orders=INT_ORDERS)
    acc.compose(GaussianEvent(z), count=rounds)
    expected = _mp_eps_from_rdp(INT_ORDERS, [rounds * a / (2 * z * z) for a in INT_ORDERS], delta)
    assert acc.get_epsilon(delta) == pytest.approx(expected, rel=1e-6)
    ref = dp_accounting.rdp.RdpAccountant(orders=INT_ORDERS)
    ref.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z), rounds))
    assert acc.get_epsilon(delta) == pytest.approx(ref.get_epsilon(delta), rel=1e-6)


@pytest.mark.parametrize(("q", "z", "rounds"), [(0.01, 1.0, 1000), (0.1, 2.0, 100), (0.5, 4.0, 20)])
def test_poisson_sampled_gaussian_matches_mpmath(q, z, rounds):
    delta = 1e-5
    orders = [float(a) for a in range(2, 41)]
    acc = RdpAccountant(orders=orders)
    acc.compose(ComposedEvent(PoissonSampledEvent(q, GaussianEvent(z)), rounds))
    rdp = [rounds * _mp_sampled_gaussian_rdp(q, z, int(a)) for a in orders]
    assert np.allclose(acc.rdp, [float(r) for r in rdp], rtol=1e-6, atol=0)
    assert acc.get_epsilon(delta) == pytest.approx(_mp_eps_from_rdp(orders, rdp, delta), rel=1e-6)


def test_default_orders_match_dp_accounting():
    from secfl.dp import DEFAULT_ORDERS

    assert list(DEFAULT_ORDERS) == pytest.approx(list(rdp_privacy_accountant.DEFAULT_RDP_ORDERS))
    acc = RdpAccountant()
    acc.compose(ComposedEvent(PoissonSampledEvent(0.01, GaussianEvent(1.1)), 2000))
    ref = dp_accounting.rdp.RdpAccountant()
    ref.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.1)), 2000
        )
    )
    assert acc.get_epsilon(1e-5) == pytest.approx(ref.get_epsilon(1e-5), rel=1e-6)


def test_fixed_size_sampling_uses_replace_one():
    event = FixedSizeSampledEvent(sample_size=100, population_size=10_000, event=GaussianEvent(1.0))
    acc = RdpAccountant(orders=INT_ORDERS, neighboring=Neighboring.REPLACE_ONE)
    acc.compose(event, count=10)
    ref = dp_accounting.rdp.RdpAccountant(
        orders=INT_ORDERS, neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE
    )
    ref.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.SampledWithoutReplacementDpEvent(
                10_000, 100, dp_accounting.GaussianDpEvent(1.0)
            ),
            10,
        )
    )
    assert acc.get_epsilon(1e-5) == pytest.approx(ref.get_epsilon(1e-5), rel=1e-9)


# -- our own curves ----------------------------------------------------------------------------


def test_single_client_ddg_is_the_gaussian_curve():
    ddg = DiscreteGaussianSumEvent(local_sigma=30.0, n_clients=1, l2_sensitivity=20.0, dimension=64)
    assert ddg.tau == 0.0
    assert ddg.noise_multiplier == 1.5
    a = RdpAccountant(orders=INT_ORDERS, neighboring=ZO).compose(ddg)
    b = RdpAccountant(orders=INT_ORDERS).compose(GaussianEvent(1.5))
    assert np.allclose(a.rdp, b.rdp, rtol=1e-12)


def test_ddg_tau_and_prop14_terms():
    ev = DiscreteGaussianSumEvent(local_sigma=0.6, n_clients=3, l2_sensitivity=2.0, dimension=10)
    tau = 10 * sum(math.exp(-2 * math.pi**2 * 0.36 * k / (k + 1)) for k in (1, 2))
    assert ev.tau == pytest.approx(tau, rel=1e-12)
    e2 = 2.0 / (math.sqrt(3) * 0.6)
    e1 = min(math.sqrt(10) * 2.0, 4.0) / (math.sqrt(3) * 0.6)
    a = 5.0
    expected = min(
        a / 2 * e2**2 + tau * 10,
        a / 2 * (e2**2 + 2 * e1 * tau + tau**2 * 10),
        a / 2 * (e2 + math.sqrt(10) * tau) ** 2,
    )
    assert RdpAccountant(orders=[a], neighboring=ZO).compose(ev).rdp[0] == pytest.approx(
        expected, rel=1e-12
    )


def test_skellam_curve_and_gaussian_limit():
    ev = SkellamSumEvent(local_variance=50.0, n_clients=4, l2_sensitivity=10.0, dimension=100)
    v, a = 200.0, 7.0
    expected = a * 100 / (2 * v) + min(
        ((2 * a - 1) * 100 + 6 * 100) / (4 * v * v), 3 * 100 / (2 * v)
    )
    assert RdpAccountant(orders=[a], neighboring=ZO).compose(ev).rdp[0] == pytest.approx(
        expected, rel=1e-12
    )
    # Fine scale (large sensitivity, same noise multiplier): Skellam -> Gaussian from above.
    # Integer orders: the Skellam and DDG curves are evaluated at ceil(order) (see _rdp).
    gauss = epsilon_for_noise_multiplier(
        1.0, delta=1e-5, q=1.0, rounds=10, orders=INT_ORDERS, method=AccountingMethod.RDP
    )
    for sens, slack in ((10.0, 0.2), (1e4, 1e-3)):
        mech = functools.partial(
            SkellamSumEvent.for_noise_multiplier, l2_sensitivity=sens, n_clients=10, dimension=1000
        )
        eps = epsilon_for_noise_multiplier(
            1.0,
            delta=1e-5,
            q=1.0,
            rounds=10,
            mechanism=mech,
            orders=INT_ORDERS,
            neighboring=ZO,
            method=AccountingMethod.RDP,
        )
        assert gauss <= eps <= gauss * (1 + slack)


def test_zhu_wang_bound_is_valid_and_useful():
    """On a Gaussian base the general bound sits between the exact value and no sampling."""
    orders = np.array(INT_ORDERS)
    for q, z in ((0.01, 1.0), (0.1, 3.0), (0.5, 0.8)):
        exact = (
            RdpAccountant(orders=INT_ORDERS).compose(PoissonSampledEvent(q, GaussianEvent(z))).rdp
        )
        general = _rdp.poisson_subsampled_rdp(orders, q, lambda a, z=z: a / (2 * z * z))
        unsampled = orders / (2 * z * z)
        assert (general >= exact * (1 - 1e-9)).all()
        assert (general <= unsampled).all()
        assert general[0] < unsampled[0] / 2  # amplification is real at low orders


def test_poisson_sampled_ddg_amplifies_and_zero_out_sampling_is_refused():
    ddg = DiscreteGaussianSumEvent.for_noise_multiplier(
        1.0, l2_sensitivity=100.0, n_clients=50, dimension=1024
    )
    sampled = RdpAccountant().compose(ComposedEvent(PoissonSampledEvent(0.05, ddg), 100))
    full = RdpAccountant().compose(ComposedEvent(ddg, 100))
    gauss = RdpAccountant().compose(
        ComposedEvent(PoissonSampledEvent(0.05, GaussianEvent(1.0)), 100)
    )
    assert sampled.get_epsilon(1e-5) < full.get_epsilon(1e-5)
    assert sampled.get_epsilon(1e-5) >= gauss.get_epsilon(1e-5)
    skellam = SkellamSumEvent.for_noise_multiplier(
        1.0, l2_sensitivity=100.0, n_clients=50, dimension=1024
    )
    for event in (ddg, skellam):  # an unsampled client's share is missing in both sums
        acc = RdpAccountant(neighboring=ZO)
        with pytest.raises(InvalidArgument, match="zero-out with Poisson sampling"):
            acc.compose(ComposedEvent(PoissonSampledEvent(0.05, event), 100))
        assert acc.ledger == ()
        acc.compose(ComposedEvent(event, 100))


# -- the implemented bounds against exact Renyi divergences (1-D, log space) -------------------

_Y = np.arange(-80, 81)


def _log_convolve(la, lb):
    """log of the convolution of two pmfs given as logs over _Y, truncated to _Y."""
    k = _Y.size // 2
    flipped = (la[:, None] + lb[None, :])[:, ::-1]  # anti-diagonals hold equal sums
    last = _Y.size - 1
    sums = [special.logsumexp(np.diagonal(flipped, offset=last - s)) for s in range(2 * last + 1)]
    return np.array(sums)[k : k + _Y.size]


def _shift(lp, d):
    out = np.full_like(lp, -np.inf)
    out[d:] = lp[:-d]
    return out


def _renyi(lp, lq, a):
    m = np.isfinite(lp) & np.isfinite(lq)
    return special.logsumexp(a * lp[m] + (1 - a) * lq[m]) / (a - 1)


def _worst_renyi(lp, lq, a):
    return max(_renyi(lp, lq, a), _renyi(lq, lp, a))


@pytest.mark.parametrize(
    ("sigma", "n", "shift"), [(0.5, 2, 1), (0.6, 3, 1), (0.7, 5, 2), (1.0, 6, 3)]
)
def test_ddg_bound_dominates_exact_divergence(sigma, n, shift):
    single = -(_Y.astype(float) ** 2) / (2 * sigma**2)
    single -= special.logsumexp(single)
    total = single
    for _ in range(n - 1):
        total = _log_convolve(total, single)
    ev = DiscreteGaussianSumEvent(local_sigma=sigma, n_clients=n, l2_sensitivity=shift, dimension=1)
    bound = RdpAccountant(orders=[2.0, 3.0, 5.0, 10.0, 30.0], neighboring=ZO).compose(ev).rdp
    exact = [_worst_renyi(total, _shift(total, shift), a) for a in (2, 3, 5, 10, 30)]
    assert (np.array(exact) <= bound * (1 + 1e-9)).all()
    if (sigma, n) == (0.5, 2):  # tau matters: the sum is less private than a Gaussian
        assert exact[1] > 3 * shift**2 / (2 * n * sigma**2)


@pytest.mark.parametrize(("variance", "shift"), [(0.3, 1), (3.0, 2), (50.0, 3)])
def test_skellam_bound_dominates_exact_divergence(variance, shift):
    lp = stats.skellam.logpmf(_Y, variance / 2, variance / 2)
    ev = SkellamSumEvent(local_variance=variance, n_clients=1, l2_sensitivity=shift, dimension=1)
    orders = [2.0, 3.0, 5.0, 10.0]
    bound = RdpAccountant(orders=orders, neighboring=ZO).compose(ev).rdp
    exact = [_worst_renyi(lp, _shift(lp, shift), a) for a in orders]
    assert (np.array(exact) <= bound * (1 + 1e-9)).all()
    # Poisson subsampling (add/remove one): P versus the mixture (1-q) P + q P_shifted.
    q = 0.1
    mix = np.logaddexp(math.log1p(-q) + lp, math.log(q) + _shift(lp, shift))
    # ZW19's general bound on this curve (secfl refuses sampled zero-out as a guarantee for
    # many shares; one share in one coordinate is exactly this pair)
    base = RdpAccountant(neighboring=ZO)._base_curve(ev)
    sampled = _rdp.poisson_subsampled_rdp(np.array(orders), q, base)
    exact_sampled = [_worst_renyi(lp, mix, a) for a in orders]
    assert (np.array(exact_sampled) <= sampled * (1 + 1e-9)).all()
    assert (sampled <= bound).all()


# -- monotonicity ------------------------------------------------------------------------------


def _mechanisms():
    yield GaussianEvent
    yield functools.partial(
        DiscreteGaussianSumEvent.for_noise_multiplier,
        l2_sensitivity=50.0,
        n_clients=20,
        dimension=4096,
    )
    yield functools.partial(
        SkellamSumEvent.for_noise_multiplier, l2_sensitivity=50.0, n_clients=20, dimension=4096
    )


@pytest.mark.parametrize("mechanism", list(_mechanisms()))
def test_monotonicity(mechanism):
    skellam = getattr(mechanism, "func", None) == SkellamSumEvent.for_noise_multiplier
    relation = ZO if skellam else Neighboring.ADD_OR_REMOVE_ONE
    q0 = 1.0 if skellam else 0.05  # zero-out (Skellam's only relation) is never sampled

    def eps(z=1.0, q=q0, rounds=100):
        return epsilon_for_noise_multiplier(
            z, delta=1e-5, q=q, rounds=rounds, mechanism=mechanism, neighboring=relation
        )

    by_noise = [eps(z=z) for z in (0.6, 0.8, 1.0, 1.5, 3.0)]
    assert all(a > b for a, b in itertools.pairwise(by_noise))
    by_rounds = [eps(rounds=t) for t in (1, 10, 100, 1000)]
    assert all(a < b for a, b in itertools.pairwise(by_rounds))
    if not skellam:
        by_q = [eps(q=q) for q in (0.001, 0.01, 0.1, 1.0)]
        assert all(a < b for a, b in itertools.pairwise(by_q))


def test_noise_multiplier_for_epsilon_round_trip():
    z = noise_multiplier_for_epsilon(2.0, delta=1e-5, q=0.01, rounds=1000)
    assert epsilon_for_noise_multiplier(z, delta=1e-5, q=0.01, rounds=1000) <= 2.0
    assert epsilon_for_noise_multiplier(z * (1 - 1e-3), delta=1e-5, q=0.01, rounds=1000) > 2.0
    # dp_accounting's own calibration agrees.
    ref = dp_accounting.calibrate_dp_mechanism(
        dp_accounting.rdp.RdpAccountant,
        lambda s: dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(s)), 1000
        ),
        2.0,
        1e-5,
    )
    assert z <= ref * (1 + 1e-3)  # PLD is tighter than RDP: a smaller z meets the target
    pld = dp_accounting.calibrate_dp_mechanism(
        dp_accounting.pld.PLDAccountant,
        lambda s: dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(s)), 1000
        ),
        2.0,
        1e-5,
    )
    assert z == pytest.approx(pld, rel=2e-3)


def test_noise_multiplier_for_epsilon_ddg_treats_tiny_shares_as_too_small():
    mech = functools.partial(
        DiscreteGaussianSumEvent.for_noise_multiplier,
        l2_sensitivity=5.0,
        n_clients=100,
        dimension=256,
    )
    z = noise_multiplier_for_epsilon(8.0, delta=1e-5, q=1.0, rounds=1, mechanism=mech)
    assert epsilon_for_noise_multiplier(z, delta=1e-5, q=1.0, rounds=1, mechanism=mech) <= 8.0
    assert z * 5.0 / 10.0 >= 0.5  # the share's sigma stays in the bound's range


# -- supports() before any state change --------------------------------------------------------


def test_unsupported_events_leave_state_unchanged():
    acc = RdpAccountant()
    acc.compose(GaussianEvent(2.0), count=3)
    rdp, ledger = acc.rdp, acc.ledger
    bad = [
        FixedSizeSampledEvent(sample_size=10, population_size=100, event=GaussianEvent(1.0)),
        PoissonSampledEvent(
            0.1,
            ComposedEvent(
                DiscreteGaussianSumEvent(
                    local_sigma=5.0, n_clients=2, l2_sensitivity=3.0, dimension=4
                ),
                2,
            ),
        ),
        ComposedEvent(PoissonSampledEvent(0.1, PoissonSampledEvent(0.5, GaussianEvent(1.0))), 3),
        "not an event",
    ]
    for event in bad:
        assert not acc.supports(event)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            acc.compose(event)  # type: ignore[arg-type]
        assert np.array_equal(acc.rdp, rdp)
        assert acc.ledger == ledger
    replace = RdpAccountant(neighboring=Neighboring.REPLACE_ONE)
    assert not replace.supports(PoissonSampledEvent(0.1, GaussianEvent(1.0)))
    with pytest.raises(InvalidArgument):
        acc.compose(GaussianEvent(1.0), count=0)
    assert acc.ledger == ledger


def test_events_are_immutable_and_validated():
    ev = GaussianEvent(1.0)
    with pytest.raises(AttributeError):
        ev.noise_multiplier = 2.0  # type: ignore[misc]
    assert hash(ev) == hash(GaussianEvent(1.0))
    for make in (
        lambda: GaussianEvent(0.0),
        lambda: GaussianEvent(math.nan),
        lambda: PoissonSampledEvent(0.0, ev),
        lambda: PoissonSampledEvent(1.5, ev),
        lambda: PoissonSampledEvent(0.5, "x"),
        lambda: ComposedEvent(ev, 0),
        lambda: ComposedEvent(ev, True),
        lambda: FixedSizeSampledEvent(sample_size=5, population_size=4, event=ev),
        lambda: DiscreteGaussianSumEvent(
            local_sigma=0.4, n_clients=2, l2_sensitivity=1.0, dimension=2
        ),
        lambda: SkellamSumEvent(local_variance=1.0, n_clients=0, l2_sensitivity=1.0, dimension=2),
    ):
        with pytest.raises(InvalidArgument):
            make()
    with pytest.raises(InvalidArgument):
        RdpAccountant(orders=[1.0, 2.0])
    with pytest.raises(InvalidArgument):
        RdpAccountant().get_epsilon(0.0)


def test_get_delta_inverts_get_epsilon():
    acc = RdpAccountant().compose(ComposedEvent(PoissonSampledEvent(0.02, GaussianEvent(1.2)), 500))
    eps = acc.get_epsilon(1e-6)
    assert acc.get_delta(eps) == pytest.approx(1e-6, rel=1e-3)


# -- add/remove: the neighbour lacks the client's share too ------------------------------------


@pytest.mark.parametrize(("sigma", "n", "shift"), [(0.6, 2, 1), (1.0, 3, 2), (2.0, 4, 3)])
def test_ddg_add_remove_bound_dominates_exact_divergence(sigma, n, shift):
    """Exact 1-D divergences (log-space convolution) between n shares + shift and n - 1
    shares, both directions, against the add/remove curve."""
    single = -(_Y.astype(float) ** 2) / (2 * sigma**2)
    single -= special.logsumexp(single)
    fewer = single
    for _ in range(n - 2):
        fewer = _log_convolve(fewer, single)
    more = _log_convolve(fewer, single)
    p = _shift(more, shift)
    orders = [a for a in (1.5, 2.0, 3.0, 5.0, 10.0) if a < n]
    ev = DiscreteGaussianSumEvent(local_sigma=sigma, n_clients=n, l2_sensitivity=shift, dimension=1)
    bound = RdpAccountant(orders=orders).compose(ev).rdp
    exact = [max(_renyi(p, fewer, a), _renyi(fewer, p, a)) for a in orders]
    assert (np.array(exact) <= bound * (1 + 1e-9)).all()
    assert (np.array(exact) >= bound * 0.5).all() or sigma < 1  # and not vacuous
    zero_out = RdpAccountant(orders=orders, neighboring=ZO).compose(ev).rdp
    assert (bound > zero_out).all()  # the missing share costs


def test_add_remove_matches_the_gaussian_variance_formula_and_the_issue():
    """Issue 17's cases: q = 1, one round, d' = 16384, noise for m = 80 of 100 (16 of 20),
    every client survives: zero-out 4.16, add/remove 6.45 (n = 100) and 33.7 (n = 20)."""
    for n, expected in ((100, 6.45), (20, 33.7)):
        m = n - math.floor(0.2 * n)
        planned = DiscreteGaussianSumEvent.for_noise_multiplier(
            1.0, l2_sensitivity=1e6, n_clients=m, dimension=16384
        )
        ev = DiscreteGaussianSumEvent(
            local_sigma=planned.local_sigma, n_clients=n, l2_sensitivity=1e6, dimension=16384
        )
        zero_out = RdpAccountant(neighboring=ZO).compose(ev).get_epsilon(1e-5)
        add_remove = RdpAccountant().compose(ev).get_epsilon(1e-5)
        assert zero_out == pytest.approx(4.16, abs=0.01)
        assert add_remove == pytest.approx(expected, abs=0.05)
        # mpmath: Renyi divergence of the two Gaussians (per coordinate x d', plus the shift)
        mpmath.mp.dps = 40
        v1 = mpmath.mpf(n) * mpmath.mpf(ev.local_sigma) ** 2
        v0 = v1 - mpmath.mpf(ev.local_sigma) ** 2
        for a in (2, 4):
            ref = max(
                mpmath.log(
                    mpmath.quad(
                        lambda y, a=a, s=s, t=t: (
                            mpmath.npdf(y, 0, mpmath.sqrt(s)) ** a
                            * mpmath.npdf(y, 0, mpmath.sqrt(t)) ** (1 - a)
                        ),
                        [-mpmath.inf, 0, mpmath.inf],
                    )
                )
                / (a - 1)
                * 16384
                + a * mpmath.mpf(1e12) / (2 * (a * t + (1 - a) * s))
                for s, t in ((v1, v0), (v0, v1))
            )
            ours = RdpAccountant(orders=[float(a)]).compose(ev).rdp[0]
            assert ours == pytest.approx(float(ref), rel=1e-6)
            assert ours >= float(ref) * (1 - 1e-9)


def test_skellam_is_refused_under_add_remove_and_named_zero_out():
    ev = SkellamSumEvent(local_variance=100.0, n_clients=10, l2_sensitivity=5.0, dimension=64)
    acc = RdpAccountant()
    assert not acc.supports(ev)
    with pytest.raises(InvalidArgument, match="ZERO_OUT"):
        acc.compose(PoissonSampledEvent(0.1, ev))
    assert acc.ledger == ()
    assert RdpAccountant(neighboring=ZO).supports(ev)
    assert not RdpAccountant(neighboring=ZO).supports(PoissonSampledEvent(0.1, ev))


# -- PLD and fractional-order RDP for the Gaussian ---------------------------------------------


def _dp_pld(z, q, rounds, delta=1e-5):
    from dp_accounting.pld import pld_privacy_accountant

    event = dp_accounting.GaussianDpEvent(z)
    if q < 1:
        event = dp_accounting.PoissonSampledDpEvent(q, event)
    acc = pld_privacy_accountant.PLDAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
    return acc.get_epsilon(delta)


@pytest.mark.parametrize(
    ("z", "q", "rounds"), [(1.0, 0.1, 100), (3.0, 0.01, 100), (0.8, 1.0, 10), (1.5, 1.0, 1)]
)
def test_pld_is_within_one_percent_of_dp_accounting(z, q, rounds):
    ours = epsilon_for_noise_multiplier(z, delta=1e-5, q=q, rounds=rounds)
    ref = _dp_pld(z, q, rounds)
    assert abs(ours - ref) <= 0.01 * ref
    rdp = epsilon_for_noise_multiplier(
        z, delta=1e-5, q=q, rounds=rounds, method=AccountingMethod.RDP
    )
    assert ours <= rdp  # PLD is the tighter of two upper bounds


@pytest.mark.parametrize(
    "z",
    [
        pytest.param(0.5, marks=pytest.mark.slow),  # 100 s: dp-accounting's PLD at small z
        pytest.param(0.8, marks=pytest.mark.slow),
        1.0,
        pytest.param(1.5, marks=pytest.mark.slow),
        3.0,
    ],
)
def test_pld_grid_within_one_percent(z):
    for q, rounds in itertools.product((0.01, 0.1, 1.0), (1, 100, 1000)):
        ours = epsilon_for_noise_multiplier(z, delta=1e-5, q=q, rounds=rounds)
        ref = _dp_pld(z, q, rounds)
        assert abs(ours - ref) <= 0.01 * ref, (z, q, rounds)


def test_unsampled_gaussian_pld_is_the_exact_analytic_gaussian():
    """Balle-Wang: delta(eps) of N(mu, 1) vs N(0, 1), evaluated independently in mpmath."""
    mpmath.mp.dps = 40
    z, rounds = 0.8, 10
    eps = epsilon_for_noise_multiplier(z, delta=1e-5, q=1.0, rounds=rounds)
    mu = mpmath.sqrt(rounds) / z
    ncdf = mpmath.ncdf
    delta_at = ncdf(-eps / mu + mu / 2) - mpmath.exp(eps) * ncdf(-eps / mu - mu / 2)
    assert float(delta_at) <= 1e-5 * (1 + 1e-9)
    e2 = eps * (1 - 1e-9)
    assert float(ncdf(-e2 / mu + mu / 2) - mpmath.exp(e2) * ncdf(-e2 / mu - mu / 2)) > 1e-5 * (
        1 - 1e-6
    )


def test_fractional_orders_are_computed_not_dropped():
    """Issue 17: dp-accounting 0.6.0's RDP gives 236.45 at z = 0.5, q = 0.1, T = 1000 (it
    drops fractional orders); Opacus's RDP gives 136.05, PLD 126.17."""
    kw = {"delta": 1e-5, "q": 0.1, "rounds": 1000}
    rdp = epsilon_for_noise_multiplier(0.5, method=AccountingMethod.RDP, **kw)
    assert rdp == pytest.approx(136.05, abs=0.01)
    assert epsilon_for_noise_multiplier(0.5, **kw) == pytest.approx(126.17, abs=0.01)
    # independent: the integral defining A_a, in mpmath, at a fractional order
    mpmath.mp.dps = 30
    q, z, a = 0.1, 0.5, 1.5
    f = lambda x: ((1 - q) + q * mpmath.exp((2 * x - 1) / (2 * z * z))) ** a * mpmath.npdf(x, 0, z)  # noqa: E731
    ref = float(mpmath.log(mpmath.quad(f, [-mpmath.inf, 0, 1, mpmath.inf])) / (a - 1))
    ours = _rdp.sampled_gaussian_rdp(np.array([a]), q, z)[0]
    assert ref <= ours <= ref * (1 + 1e-8)


def test_pld_accountant_supports_gaussian_ddg_and_zero_out_skellam():
    from secfl.dp import PldAccountant

    acc = PldAccountant()
    sk = SkellamSumEvent(local_variance=9.0, n_clients=4, l2_sensitivity=5.0, dimension=8)
    assert not acc.supports(sk)  # no add/remove bound for Skellam
    with pytest.raises(InvalidArgument, match="no bound for Skellam sums"):
        acc.compose(sk)
    assert PldAccountant(neighboring=ZO).supports(sk)
    # add/remove needs two shares (the neighbour of one share has no noise)
    lone = DiscreteGaussianSumEvent(local_sigma=3.0, n_clients=1, l2_sensitivity=5.0, dimension=8)
    assert not acc.supports(lone)
    assert PldAccountant(neighboring=Neighboring.ZERO_OUT).supports(lone)
    ev = DiscreteGaussianSumEvent(local_sigma=3.0, n_clients=4, l2_sensitivity=5.0, dimension=8)
    assert acc.supports(ev)
    assert acc.get_epsilon(1e-5) == 0.0
    acc.compose(ComposedEvent(PoissonSampledEvent(0.1, GaussianEvent(1.0)), 10))
    eps = acc.get_epsilon(1e-5)
    assert acc.get_delta(eps) <= 1.01e-5
    with pytest.raises(InvalidArgument):
        PldAccountant(neighboring=Neighboring.REPLACE_ONE)
