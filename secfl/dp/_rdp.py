"""RDP curves dp-accounting does not provide: distributed discrete Gaussian, Skellam, and
Poisson subsampling of a general mechanism.

All curves are evaluated at integer orders; callers pass ``ceil(order)``, which is a valid
upper bound at a fractional order because Renyi divergence is non-decreasing in the order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np


def ddg_tau(local_sigma: float, n_clients: int) -> float:
    """tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k/(k+1)) (Kairouz, Liu, Steinke 2021).

    The price of the sum of ``n`` discrete Gaussians N_Z(0, sigma^2) not being a discrete
    Gaussian itself (KLS21 Theorem 1 / Proposition 14); 0 for a single client.
    """
    if n_clients <= 1:
        return 0.0
    k = np.arange(1, n_clients, dtype=np.float64)
    return 10.0 * float(np.sum(np.exp(-2.0 * math.pi**2 * local_sigma**2 * k / (k + 1.0))))


def ddg_tau_prime(local_sigma: float, n_clients: int) -> float:
    """tau' = tau / (1 - tau): the per-coordinate bound on |ln| of the ratio between the sum
    of ``n`` shares N_Z(0, sigma^2) and N_Z(0, n sigma^2) (KLS21); ``inf`` once tau >= 1."""
    t = ddg_tau(local_sigma, n_clients)
    return math.inf if t >= 1.0 else t / (1.0 - t)


def ddg_rdp(
    orders: np.ndarray,
    *,
    local_sigma: float,
    n_clients: int,
    l2_sensitivity: float,
    l1_sensitivity: float,
    dimension: int,
) -> np.ndarray:
    """RDP of adding the sum of ``n`` N_Z(0, sigma^2)^d shares to an integer query.

    KLS21 Proposition 14 (the RDP form of Theorem 1), with ``e2 = D2 / (sqrt(n) sigma)``,
    ``e1 = D1 / (sqrt(n) sigma)``::

        eps(a) = min( a/2 e2^2 + tau d,
                      a/2 (e2^2 + 2 e1 tau + tau^2 d),
                      a/2 (e2 + sqrt(d) tau)^2 )

    valid for ``sigma >= 1/2``. With ``tau = 0`` (one client) it is the Gaussian curve.
    """
    tau = ddg_tau(local_sigma, n_clients)
    root_n_sigma = math.sqrt(n_clients) * local_sigma
    e2 = l2_sensitivity / root_n_sigma
    e1 = l1_sensitivity / root_n_sigma
    d = float(dimension)
    half = orders / 2.0
    t1 = half * e2**2 + tau * d
    t2 = half * (e2**2 + 2.0 * e1 * tau + tau**2 * d)
    t3 = half * (e2 + math.sqrt(d) * tau) ** 2
    out: np.ndarray = np.minimum(np.minimum(t1, t2), t3)
    return out


def skellam_rdp(
    orders: np.ndarray, *, total_variance: float, l2_sensitivity: float, l1_sensitivity: float
) -> np.ndarray:
    """RDP of adding symmetric Skellam noise of variance ``V`` per coordinate.

    Agarwal, Kairouz, Liu (NeurIPS 2021), Theorem 3.5 for integer orders, written with the
    total variance ``V = 2 mu`` (``mu`` the mean of each Poisson)::

        eps(a) = a D2^2 / (2V) + min( ((2a - 1) D2^2 + 6 D1) / (4 V^2), 3 D1 / (2V) )

    A sum of independent symmetric Skellams is Skellam, so ``V`` is the sum of the shares'
    variances and, unlike the discrete Gaussian, no extra term appears for many clients.
    """
    v = total_variance
    d2sq = l2_sensitivity**2
    d1 = l1_sensitivity
    extra = np.minimum(((2.0 * orders - 1.0) * d2sq + 6.0 * d1) / (4.0 * v * v), 3.0 * d1 / (2 * v))
    out: np.ndarray = orders * d2sq / (2.0 * v) + extra
    return out


def _logsumexp(x: np.ndarray) -> float:
    top = float(np.max(x))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.sum(np.exp(x - top))))


def poisson_subsampled_rdp(
    orders: np.ndarray, q: float, base: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Upper bound on the RDP of a mechanism run on a Poisson(q) subsample.

    Zhu and Wang, "Poisson Subsampled Renyi Differential Privacy", ICML 2019, Theorem 6
    (general upper bound, any mechanism with RDP curve ``base``), for integer ``a >= 2``::

        (a-1) eps'(a) <= log( (1-q)^(a-1) (a q - q + 1)
                              + C(a,2) q^2 (1-q)^(a-2) e^eps(2)
                              + 3 sum_{l=3}^{a} C(a,l) q^l (1-q)^(a-l) e^((l-1) eps(l)) )

    The result is the minimum of this bound and the unsampled ``base(a)`` (subsampling
    never hurts). ``orders`` must be integers >= 2.
    """
    ints = orders.astype(np.int64)
    unsampled = base(orders)
    if q >= 1.0:
        return unsampled
    amax = int(ints.max())
    ls = np.arange(2, amax + 1)
    eps_l = base(ls.astype(np.float64))  # eps(l) for l = 2..amax
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, amax + 1)))))
    log_q, log_1mq = math.log(q), math.log1p(-q)
    out = np.empty(orders.size, dtype=np.float64)
    for i, a in enumerate(ints):
        a = int(a)
        l = ls[: a - 1]  # noqa: E741 - the paper's index
        log_comb = log_fact[a] - log_fact[l] - log_fact[a - l]
        terms = log_comb + l * log_q + (a - l) * log_1mq + (l - 1) * eps_l[: a - 1]
        terms[1:] += math.log(3.0)
        head = (a - 1) * log_1mq + math.log(a * q - q + 1.0)
        total = _logsumexp(np.concatenate(([head], terms)))
        out[i] = total / (a - 1)
    result: np.ndarray = np.minimum(out, unsampled)
    return result


def _log_comb(a: int, k: np.ndarray) -> np.ndarray:
    return np.asarray(
        [math.lgamma(a + 1) - math.lgamma(int(j) + 1) - math.lgamma(a - int(j) + 1) for j in k],
        dtype=np.float64,
    )


def _sampled_gaussian_log_a_int(q: float, z: float, a: int) -> float:
    """log A_a for an integer order (MTZ19 Sec. 3.3): the exact binomial expansion
    ``A_a = sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2 - k) / (2 z^2))``."""
    k = np.arange(a + 1, dtype=np.float64)
    terms = _log_comb(a, k) + k * math.log(q) + (a - k) * math.log1p(-q) + (k * k - k) / (2 * z * z)
    return _logsumexp(terms)


def _sampled_gaussian_log_a_frac(q: float, z: float, a: float) -> float:
    """log A_a for any order a > 1 by numerical integration (MTZ19's definition)::

        A_a = E_{x ~ N(0, z^2)} [ ((1 - q) + q exp((2x - 1) / (2 z^2)))^a ]

    The integrand is handled in log space around its peak; the quadrature's own error
    estimate is added, so the result is an upper bound up to the truncated tails (beyond
    40 z of both the peak and the mixture's components: below e^-800 of the mass).
    """
    from scipy import integrate, optimize

    s2 = z * z
    log_norm = 0.5 * math.log(2.0 * math.pi * s2)

    def g(x: float) -> float:
        t = (2.0 * x - 1.0) / (2.0 * s2)
        mix = (
            t + math.log(q) + math.log1p((1.0 - q) / q * math.exp(-t))
            if t > 0
            else math.log1p(q * math.expm1(t))
        )
        return a * mix - x * x / (2.0 * s2) - log_norm

    lo, hi = -40.0 * z, a + 1.0 + 40.0 * z
    peak = float(optimize.minimize_scalar(lambda x: -g(x), bounds=(lo, hi), method="bounded").x)
    top = g(peak)
    lo, hi = min(lo, peak - 40.0 * z), max(hi, peak + 40.0 * z)
    points = sorted({peak, 0.0, 1.0, min(max(a, lo), hi)})
    with warnings.catch_warnings():  # a poor estimate only widens err, which is added
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, err = integrate.quad(
            lambda x: math.exp(g(x) - top),
            lo,
            hi,
            points=points,
            limit=500,
            epsabs=0.0,
            epsrel=1e-11,
        )
    return top + math.log(value + abs(err))


def sampled_gaussian_rdp(orders: np.ndarray, q: float, z: float) -> np.ndarray:
    """RDP of the Poisson(q)-subsampled Gaussian with noise multiplier ``z`` under
    add-or-remove-one (MTZ19: the direction computed dominates the other), at every
    order > 1, fractional orders included.

    Integer orders use the exact binomial sum (as dp_accounting and Opacus do); fractional
    orders are integrated numerically (:func:`_sampled_gaussian_log_a_frac`), where
    dp_accounting 0.6.0 gives up on some (``inf``: e.g. z = 0.5, q = 0.1, T = 1000 reports
    epsilon 236.45 instead of 136.05) and Opacus sums an alternating series.
    """
    if q >= 1.0:
        out: np.ndarray = orders / (2.0 * z * z)
        return out
    res = np.empty(orders.size, dtype=np.float64)
    for i, a in enumerate(orders.tolist()):
        if float(a).is_integer():
            log_a = _sampled_gaussian_log_a_int(q, z, int(a))
        else:
            log_a = _sampled_gaussian_log_a_frac(q, z, float(a))
        res[i] = log_a / (a - 1.0)
    return res


def _theta_excess(s: float) -> float:
    """An upper bound on sum_{k>=1} exp(-2 pi^2 s^2 k^2), the Poisson-summation excess of
    a discrete Gaussian's normalizer over the continuous one (0 beyond float range)."""
    x = 2.0 * math.pi**2 * s * s
    if x > 745.0:
        return 0.0
    e = math.exp(-x)
    return e / (1.0 - e)


def ddg_add_remove_rdp(
    orders: np.ndarray,
    *,
    local_sigma: float,
    n_clients: int,
    l2_sensitivity: float,
    dimension: int,
) -> np.ndarray:
    """RDP of the distributed discrete Gaussian under **add/remove**: the neighbouring sum
    lacks both the client's update and its noise share.

    P = (sum of r = ``n_clients`` shares N_Z(0, s^2)^d) + x with ||x||_2 <= Delta, against
    Q = (sum of r - 1 shares). With V1 = r s^2, V0 = (r - 1) s^2, the continuous part is the
    Renyi divergence of two Gaussians with different variances (e.g. Gil, Alajaji, Linder
    2013), in each direction (A = the numerator's variance, B = the denominator's,
    W_a = a B + (1 - a) A, finite only while W_a > 0)::

        D_a = d (ln(B/A)/2 + ln(B/W_a) / (2(a-1))) + a Delta^2 / (2 W_a)

    plus, per coordinate, the discrete Gaussian's Poisson-summation excess
    (ln(1 + 2E(s*)) / (a-1) + ln(1 + 2E(sqrt B)), s*^2 = A B / W_a) and KLS21's distance of
    a sum of discrete Gaussians from one discrete Gaussian (max divergence tau' =
    tau/(1 - tau) each way: a/(a-1) tau'_num + tau'_den). The curve is the larger of the
    two directions; ``inf`` where W_a <= 0 (orders a >= r) or r = 1 (Q has no noise).
    """
    r = n_clients
    out = np.full(orders.size, math.inf, dtype=np.float64)
    if r < 2:
        return out
    s2 = local_sigma * local_sigma
    v1, v0 = r * s2, (r - 1) * s2
    d = float(dimension)
    d2sq = l2_sensitivity * l2_sensitivity

    t1, t0 = ddg_tau_prime(local_sigma, r), ddg_tau_prime(local_sigma, r - 1)

    def one_way(a: float, num: float, den: float, tau_num: float, tau_den: float) -> float:
        w = a * den + (1.0 - a) * num
        if not w > 0.0:
            return math.inf
        ratio = w / den  # = 1 - (a - 1)(num/den - 1) > 0
        gauss = d * (-0.5 * math.log(num / den) - math.log(ratio) / (2.0 * (a - 1.0)))
        gauss += a * d2sq / (2.0 * w)
        s_star = math.sqrt(num * den / w)
        excess = d * (
            math.log1p(2.0 * _theta_excess(s_star)) / (a - 1.0)
            + math.log1p(2.0 * _theta_excess(math.sqrt(den)))
        )
        tau = d * (a / (a - 1.0) * tau_num + tau_den)
        return gauss + excess + tau

    for i, a in enumerate(orders.tolist()):
        out[i] = max(one_way(a, v1, v0, t1, t0), one_way(a, v0, v1, t0, t1))
    return out
