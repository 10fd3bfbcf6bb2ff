"""RDP curves dp-accounting does not provide: distributed discrete Gaussian, Skellam, and
Poisson subsampling of a general mechanism.

All curves are evaluated at integer orders; callers pass ``ceil(order)``, which is a valid
upper bound at a fractional order because Renyi divergence is non-decreasing in the order.
"""

from __future__ import annotations

import math
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
