"""Samplers against their exact laws (chi-square, fixed seeds), distributed noise, headroom."""

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from secfl.dp import (
    DistributedNoise,
    GaussianMechanism,
    NoiseKind,
    NoiseReservoir,
    Placement,
    RandomizedHadamard,
    SignalBound,
    _exact,
    clip_l2,
    conditional_round,
    discrete_gaussian,
    discrete_laplace,
    distributed_required_bits,
    gaussian,
    noise_tail_bound,
    plan_distributed,
    poisson,
    rational_sigma_squared,
    required_bits_with_noise,
    rounded_l2_bound,
    skellam,
)
from secfl.encoding import FixedPointCodec, required_bits
from secfl.errors import EncodingOverflow, InvalidArgument
from secfl.hazmat.rng import Csprng

P_MIN = 1e-3  # with fixed seeds the tests are deterministic; a wrong law gives p ~ 0


def _rng(tag: int) -> Csprng:
    return Csprng(seed=bytes([tag]) * 32)


def _chi_square_p(samples: np.ndarray, support: np.ndarray, pmf: np.ndarray) -> float:
    """p-value of a chi-square goodness-of-fit test; tails merged so each bin expects >= 5.

    ``pmf`` covers ``support`` (consecutive integers); mass outside goes to the end bins.
    """
    n = samples.size
    pmf = pmf / pmf.sum()
    counts = np.bincount(np.clip(samples - support[0], 0, support.size - 1), minlength=support.size)
    expected = pmf * n
    # Merge from both ends inward until every bin expects at least 5.
    bins_obs, bins_exp = [], []
    acc_o = acc_e = 0.0
    for o, e in zip(counts, expected, strict=True):
        acc_o += o
        acc_e += e
        if acc_e >= 5:
            bins_obs.append(acc_o)
            bins_exp.append(acc_e)
            acc_o = acc_e = 0.0
    bins_obs[-1] += acc_o
    bins_exp[-1] += acc_e
    obs, exp = np.array(bins_obs), np.array(bins_exp)
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    return float(stats.chi2.sf(chi2, obs.size - 1))


def _dg_pmf(sigma2: float, support: np.ndarray) -> np.ndarray:
    return np.exp(-(support.astype(np.float64) ** 2) / (2 * sigma2))


# -- exact discrete samplers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigma2", "tag"),
    [(Fraction(1, 4), 1), (1, 2), (Fraction(7, 3), 3), (10, 4), (1000, 5), (2.5, 6)],
)
def test_discrete_gaussian_matches_exact_pmf(sigma2, tag):
    y = discrete_gaussian(200_000, sigma_squared=sigma2, rng=_rng(tag))
    assert y.dtype == np.int64
    s2 = float(sigma2)
    half = int(12 * math.sqrt(s2)) + 3
    support = np.arange(-half, half + 1)
    assert _chi_square_p(y, support, _dg_pmf(s2, support)) > P_MIN


def test_discrete_gaussian_chi_square_has_power():
    y = discrete_gaussian(200_000, sigma_squared=10, rng=_rng(7))
    support = np.arange(-60, 61)
    assert _chi_square_p(y, support, _dg_pmf(10.5, support)) < 1e-6
    # Rounded continuous Gaussian is not the discrete Gaussian at small sigma.
    z = np.rint(gaussian(200_000, stddev=0.6, rng=_rng(8))).astype(np.int64)
    small = np.arange(-8, 9)
    assert _chi_square_p(z, small, _dg_pmf(0.36, small)) < 1e-6


def test_discrete_gaussian_large_sigma_moments():
    s2 = 2**48 + 1  # sigma ~ 1.7e7: every intermediate still fits in int64
    y = discrete_gaussian(100_000, sigma_squared=s2, rng=_rng(9))
    assert abs(y.mean()) < 5 * math.sqrt(s2 / y.size)
    assert y.var() / s2 == pytest.approx(1.0, abs=0.02)


def test_discrete_gaussian_is_deterministic_per_seed():
    a = discrete_gaussian(1000, sigma_squared=5, rng=_rng(10))
    b = discrete_gaussian(1000, sigma_squared=5, rng=_rng(10))
    assert np.array_equal(a, b)


@pytest.mark.parametrize(("scale", "tag"), [(1, 11), (5, 12), (Fraction(7, 3), 13)])
def test_discrete_laplace_matches_exact_pmf(scale, tag):
    y = discrete_laplace(200_000, scale=scale, rng=_rng(tag))
    support = np.arange(-40 * math.ceil(scale), 40 * math.ceil(scale) + 1)
    pmf = np.exp(-np.abs(support) / float(scale))
    assert _chi_square_p(y, support, pmf) > P_MIN


@pytest.mark.parametrize(("num", "den"), [(0, 7), (1, 3), (7, 7), (5, 2), (13, 4), (1, 1)])
def test_bernoulli_exp_frequency(num, den):
    rng = _rng(14)
    n = 400_000
    got = _exact.bernoulli_exp(rng, np.full(n, num, dtype=np.int64), den).mean()
    p = math.exp(-num / den)
    assert abs(got - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_bernoulli_exp_big_integers():
    """The scalar path for acceptance exponents whose numerator exceeds int64."""
    rng = _rng(15)
    den = 2**40
    n = 3000
    hits = sum(_exact._bernoulli_exp_big(rng, 3 * den // 2, den) for _ in range(n))
    p = math.exp(-1.5)
    assert abs(hits / n - p) < 5 * math.sqrt(p * (1 - p) / n)
    huge = (1 << 80) * den  # gamma = 2^80: probability exp(-2^80)
    assert not any(_exact._bernoulli_exp_big(rng, huge, den) for _ in range(100))


def test_rational_sigma_squared():
    assert rational_sigma_squared(4) == 4
    assert rational_sigma_squared(4.0) == 4
    assert rational_sigma_squared(Fraction(1, 3)) == Fraction(1, 3)
    r = rational_sigma_squared(0.1)
    assert r >= Fraction(0.1)  # rounded up: never less noise
    assert float(r) == pytest.approx(0.1, rel=2**-22)
    assert rational_sigma_squared(1234.567) == pytest.approx(1234.567, rel=2**-29)
    for bad in (0, -1.0, math.nan, math.inf, True, "1", 2**51, Fraction(1, 2**27)):
        with pytest.raises(InvalidArgument):
            rational_sigma_squared(bad)


# -- Poisson and Skellam -----------------------------------------------------------------


def _quantile_chi_square_p(samples: np.ndarray, dist, nbins: int = 60) -> float:
    """Chi-square over ~``nbins`` bins of a scipy discrete distribution, probabilities from
    its exact CDF (edges near the normal quantiles; scipy's ppf stalls for huge means)."""
    if dist.std() < 30:  # small support: one bin per value, tails merged
        lo = int(max(dist.support()[0], dist.mean() - 40 * dist.std() - 5))
        support = np.arange(lo, int(dist.mean() + 40 * dist.std() + 6))
        return _chi_square_p(samples, support, dist.pmf(support))
    q = stats.norm.ppf(np.linspace(0, 1, nbins + 1)[1:-1])
    edges = np.unique(np.round(dist.mean() + dist.std() * q).astype(np.int64))
    # Bin j holds values in (edges[j-1], edges[j]]; probabilities from the CDF.
    cdf = np.concatenate(([0.0], dist.cdf(edges), [1.0]))
    probs = np.diff(cdf)
    obs = np.bincount(np.searchsorted(edges, samples, side="left"), minlength=probs.size)
    exp = probs * samples.size
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    return float(stats.chi2.sf(chi2, probs.size - 1))


@pytest.mark.parametrize(
    ("lam", "tag"), [(0.7, 20), (4.2, 21), (10.0, 22), (123.4, 23), (1e6, 24), (3e11, 25)]
)
def test_poisson_matches_law(lam, tag):
    x = poisson(200_000, lam=lam, rng=_rng(tag))
    assert x.dtype == np.int64
    assert x.min() >= 0
    assert _quantile_chi_square_p(x, stats.poisson(lam)) > P_MIN


def test_poisson_chi_square_has_power():
    x = poisson(200_000, lam=1e6, rng=_rng(26))
    assert _quantile_chi_square_p(x, stats.poisson(1.004e6)) < 1e-6


def test_poisson_log_pmf_is_accurate_for_large_lam():
    from secfl.dp._poisson import poisson_log_pmf

    lam = 1e9
    k = np.array([lam - 1e5, lam, lam + 3e4, lam + 3e5])
    # Independent reference: log pmf via the normal-approximation-free Stirling identity in
    # exact rational-free form, k log(lam) - lam - lgamma(k+1), evaluated in high precision.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    ref = [float(int(v) * mpmath.log(lam) - lam - mpmath.loggamma(int(v) + 1)) for v in k]
    assert np.allclose(poisson_log_pmf(k, lam), ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("variance", "tag"), [(0.5, 27), (7.0, 28), (3e5, 29)])
def test_skellam_matches_law(variance, tag):
    x = skellam(200_000, variance=variance, rng=_rng(tag))
    mu = variance / 2
    assert _quantile_chi_square_p(x, stats.skellam(mu, mu)) > P_MIN


def test_sampler_argument_errors():
    rng = _rng(30)
    with pytest.raises(InvalidArgument):
        discrete_gaussian(-1, sigma_squared=1, rng=rng)
    with pytest.raises(InvalidArgument):
        discrete_gaussian(3, sigma_squared=1, rng=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        discrete_laplace(3, scale=1.5, rng=rng)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        poisson(3, lam=-1.0, rng=rng)
    with pytest.raises(InvalidArgument):
        skellam(3, variance=math.inf, rng=rng)
    with pytest.raises(InvalidArgument):
        gaussian(3, stddev=-1.0, rng=rng)
    assert poisson(4, lam=0.0, rng=rng).tolist() == [0, 0, 0, 0]
    assert discrete_gaussian(0, sigma_squared=1, rng=rng).size == 0


# -- continuous Gaussian -----------------------------------------------------------------


def test_gaussian_box_muller_law():
    z = gaussian(100_001, stddev=2.0, rng=_rng(31))
    assert z.size == 100_001
    assert stats.kstest(z / 2.0, "norm").pvalue > P_MIN
    assert stats.kstest(z / 2.1, "norm").pvalue < 1e-6


def test_gaussian_mechanism_events():
    central = GaussianMechanism(noise_multiplier=1.5, clip_bound=2.0)
    assert central.stddev == 3.0
    assert central.event(n_clients=10).noise_multiplier == 1.5
    local = GaussianMechanism(noise_multiplier=1.5, clip_bound=2.0, placement=Placement.LOCAL)
    assert local.event(n_clients=4).noise_multiplier == pytest.approx(3.0)
    noisy = central.add_noise(np.zeros(50_000), rng=_rng(32))
    assert noisy.std() == pytest.approx(3.0, rel=0.02)
    with pytest.raises(InvalidArgument):
        GaussianMechanism(noise_multiplier=0.0, clip_bound=1.0)


# -- conditional rounding ----------------------------------------------------------------


def test_rounded_l2_bound():
    assert rounded_l2_bound(l2_bound=10.0, dimension=100, beta=0.0) == 20.0
    b = rounded_l2_bound(l2_bound=100.0, dimension=100, beta=math.exp(-0.5))
    assert b == pytest.approx(math.sqrt(100**2 + 25 + 1.0 * (100 + 5)))
    assert b < 110.0
    with pytest.raises(InvalidArgument):
        rounded_l2_bound(l2_bound=1.0, dimension=4, beta=1.0)


def test_conditional_round_respects_bound_and_is_unbiased():
    rng = _rng(33)
    d = 256
    x = clip_l2(np.linspace(-1, 1, d), bound=1.0).clipped * 40.0  # norm 40
    bound = rounded_l2_bound(l2_bound=40.0, dimension=d, beta=math.exp(-0.5))
    rounds = np.stack([conditional_round(x, norm_bound=bound, rng=rng) for _ in range(400)])
    assert rounds.dtype == np.int64
    assert (np.sqrt((rounds.astype(np.float64) ** 2).sum(axis=1)) <= bound).all()
    assert (np.abs(rounds - x) < 1).all()
    # Conditioning barely biases: the mean is within a few standard errors of x.
    assert np.abs(rounds.mean(axis=0) - x).max() < 0.12


def test_conditional_round_rejects_unclipped_input():
    with pytest.raises(InvalidArgument, match="clip"):
        conditional_round(np.full(4, 10.0), norm_bound=5.0, rng=_rng(34))


# -- distributed noise -------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(NoiseKind))
def test_distributed_noise_sum_has_the_accounted_variance(kind):
    rng = _rng(35)
    noise = DistributedNoise(
        kind=kind, noise_multiplier=0.8, l2_sensitivity=40.0, min_clients=5, dimension=20_000
    )
    for survivors in (5, 9):
        total = sum(noise.sample(rng=rng) for _ in range(survivors))
        event = noise.event(n_clients=survivors)
        if kind is NoiseKind.DISCRETE_GAUSSIAN:
            accounted = survivors * event.local_sigma**2
        else:
            accounted = event.total_variance
        assert total.var() == pytest.approx(accounted, rel=0.04)
        assert event.noise_multiplier >= 0.8 * math.sqrt(survivors / 5) * (1 - 1e-9)
    assert noise.local_variance == pytest.approx((0.8 * 40.0) ** 2 / 5, rel=1e-8)


def test_distributed_noise_validation_and_presample():
    with pytest.raises(InvalidArgument, match="1/2"):
        DistributedNoise(
            kind=NoiseKind.DISCRETE_GAUSSIAN,
            noise_multiplier=0.1,
            l2_sensitivity=1.0,
            min_clients=100,
            dimension=4,
        )
    noise = DistributedNoise(
        kind=NoiseKind.SKELLAM,
        noise_multiplier=1.0,
        l2_sensitivity=10.0,
        min_clients=2,
        dimension=8,
    )
    reservoir = noise.presample(rounds=3, rng=_rng(36))
    assert reservoir.remaining == 24
    first = reservoir.take(8)
    assert first.shape == (8,)
    reservoir.take(16)
    with pytest.raises(InvalidArgument):
        reservoir.take(1)
    with pytest.raises(TypeError):
        pickle.dumps(NoiseReservoir(np.zeros(3, dtype=np.int64)))


# -- headroom ----------------------------------------------------------------------------


def test_required_bits_with_noise_extends_encoding_planner():
    for n, c, s in [(1, 1.0, 0), (10, 0.5, 12), (1000, 3.0, 20), (7, 1e-3, 40)]:
        assert required_bits_with_noise(
            n_clients=n, max_abs=c, scale_bits=s, noise_bound=0
        ) == required_bits(n, c, s)
    assert required_bits_with_noise(n_clients=1, max_abs=1.0, scale_bits=20, noise_bound=2**30) > 22


@pytest.mark.parametrize("kind", list(NoiseKind))
def test_noise_tail_bound_holds_and_is_not_loose(kind):
    v = 400.0
    t = noise_tail_bound(kind=kind, total_variance=v, dimension=100_000, failure_probability=1e-6)
    share = DistributedNoise(
        kind=kind, noise_multiplier=1.0, l2_sensitivity=20.0, min_clients=1, dimension=100_000
    ).sample(rng=_rng(37))
    assert np.abs(share).max() <= t
    assert t < 8 * math.sqrt(v)  # sqrt(2 ln(2d/p)) ~ 7.3 standard deviations
    if kind is NoiseKind.SKELLAM:  # heavier tail than the sub-Gaussian bound
        assert t >= noise_tail_bound(
            kind=NoiseKind.DISCRETE_GAUSSIAN,
            total_variance=v,
            dimension=100_000,
            failure_probability=1e-6,
        )


@pytest.mark.parametrize("signal", list(SignalBound))
@pytest.mark.parametrize("kind", list(NoiseKind))
def test_plan_distributed_is_finest_fitting_scale(kind, signal):
    args = dict(
        n_clients=100,
        min_clients=50,
        clip_bound=1.0,
        dimension=2**12,
        noise_multiplier=1.0,
        kind=kind,
        signal=signal,
    )
    plan = plan_distributed(bits=24, **args)
    assert plan.required_bits <= 24
    finer = DistributedNoise(
        kind=kind,
        noise_multiplier=1.0,
        l2_sensitivity=rounded_l2_bound(
            l2_bound=2.0 ** (plan.scale_bits + 1), dimension=2**12, beta=math.exp(-0.5)
        ),
        min_clients=50,
        dimension=2**12,
    )
    need = distributed_required_bits(
        n_clients=100,
        clip_bound=1.0,
        scale_bits=plan.scale_bits + 1,
        noise=finer,
        failure_probability=1e-9,
        signal=signal,
    )
    assert need > 24
    with pytest.raises(EncodingOverflow, match="raise bits"):
        plan_distributed(bits=8, **args)


def test_end_to_end_distributed_round_decodes_to_sum_plus_noise():
    """Clip -> rotate -> scale -> round -> noise -> Z_M; sum; decode -> unrotate."""
    rng = _rng(38)
    n, d, clip = 20, 1000, 1.0
    plan = plan_distributed(
        bits=32,
        n_clients=n,
        min_clients=n,
        clip_bound=clip,
        dimension=1024,
        noise_multiplier=0.5,
        kind=NoiseKind.DISCRETE_GAUSSIAN,
    )
    codec = FixedPointCodec(bits=32, scale_bits=plan.scale_bits, max_abs=clip, n_clients=n)
    rot = RandomizedHadamard(dimension=d, seed=bytes(range(32)))
    updates = [np.sin(np.arange(d) * (i + 1)) for i in range(n)]
    clipped = [clip_l2(u, bound=clip).clipped for u in updates]
    total = np.zeros(1024, dtype=codec.dtype)
    for x in clipped:
        q = conditional_round(
            rot.forward(x) * codec.scale, norm_bound=plan.noise.l2_sensitivity, rng=rng
        )
        total = (total + codec.to_ring(q + plan.noise.sample(rng=rng))).astype(codec.dtype)
    decoded = rot.inverse(codec.decode(total))
    error = decoded - np.sum(clipped, axis=0)
    # Noise per rotated coordinate: sigma = z * l2_sensitivity / scale (orthogonal inverse).
    sigma = 0.5 * plan.noise.l2_sensitivity / codec.scale
    assert error.std() == pytest.approx(sigma, rel=0.1)


def test_plan_distributed_validates_before_searching():
    args = dict(
        bits=32,
        n_clients=10,
        min_clients=5,
        clip_bound=1.0,
        dimension=1024,
        noise_multiplier=1.0,
        kind=NoiseKind.SKELLAM,
    )
    for bad in ({"dimension": 0}, {"beta": 1.0}, {"noise_multiplier": 0.0}, {"kind": "ddg"}):
        with pytest.raises(InvalidArgument):
            plan_distributed(**{**args, **bad})
    with pytest.raises(InvalidArgument, match="min_clients must be an int >= 1"):
        plan_distributed(**{**args, "min_clients": 0})
    # Shares sized for more clients than the round has (DistributedDP(noise_clients=...)):
    # each is sized for min_clients, and the plan has room for the n_clients of them.
    above = plan_distributed(**{**args, "min_clients": 11})
    assert above.noise.local_variance == pytest.approx(above.noise.total_stddev**2 / 11)


def test_ddg_collapse_is_named_with_its_fixes():
    """Issue 17: z = 1, 2000 clients, 14 bits, d = 4096 gives sigma_l = 0.73 (ddg epsilon
    in the hundreds of thousands): the plan warns and names Skellam, bits, clients, z."""
    from secfl.dp.mechanisms import ddg_collapse

    kw = {"bits": 14, "n_clients": 2000, "min_clients": 2000, "clip_bound": 1.0}
    weak = plan_distributed(
        **kw, dimension=4096, noise_multiplier=1.0, kind=NoiseKind.DISCRETE_GAUSSIAN
    )
    reason = ddg_collapse(weak.noise, n_clients=2000)
    assert reason is not None
    for fix in ("Skellam", "more bits", "fewer clients", "larger noise multiplier"):
        assert fix in reason
    ok = plan_distributed(
        **{**kw, "bits": 20}, dimension=4096, noise_multiplier=1.0, kind=NoiseKind.DISCRETE_GAUSSIAN
    )
    assert ddg_collapse(ok.noise, n_clients=2000) is None
    sk = plan_distributed(**kw, dimension=4096, noise_multiplier=1.0, kind=NoiseKind.SKELLAM)
    assert ddg_collapse(sk.noise, n_clients=2000) is None
