"""The verification table of docs/dp.md: secfl's Gaussian epsilons against dp-accounting
0.6.0 (PLD at its default discretization, and RDP) and Opacus's RDP (its formulas,
re-implemented here: Opacus is not a dependency), at delta = 1e-5.

Run: ``python benchmarks/dp_accounting_table.py`` (a few minutes: dp-accounting's PLD at
interval 1e-4 is slow for q = 1, T = 1000). Prints a markdown table.

``python benchmarks/dp_accounting_table.py --ddg`` prints the distributed discrete
Gaussian's table instead: secfl's PLD for the ddg (add/remove, and zero-out where it is
sound: unsampled) and its RDP, against the continuous Gaussian's PLD at the same z, q, T.
``--skellam`` prints the distributed Skellam's (zero-out, q = 1: its only accounted rate),
PLD by its Gaussian bound (spec section 10.8) and AKL21's RDP, on the same footing.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
from scipy import special

from secfl.dp import (
    AccountingMethod,
    DiscreteGaussianSumEvent,
    Neighboring,
    SkellamSumEvent,
    accounted_epsilon,
    epsilon_for_noise_multiplier,
)

DELTA = 1e-5


def dp_accounting_eps(z: float, q: float, rounds: int, *, pld: bool) -> float:
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant
    from dp_accounting.rdp import rdp_privacy_accountant

    event = dp_accounting.GaussianDpEvent(z)
    if q < 1:
        event = dp_accounting.PoissonSampledDpEvent(q, event)
    acc = pld_privacy_accountant.PLDAccountant() if pld else rdp_privacy_accountant.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
    return float(acc.get_epsilon(DELTA))


# -- Opacus 1.x analysis/rdp.py, re-implemented -------------------------------------------


def _log_add(a: float, b: float) -> float:
    lo, hi = min(a, b), max(a, b)
    return hi if lo == -np.inf else math.log1p(math.exp(lo - hi)) + hi


def _log_sub(a: float, b: float) -> float:
    if b == -np.inf:
        return a
    if a == b:
        return -np.inf
    try:
        return math.log(math.expm1(a - b)) + b
    except OverflowError:
        return a


def _log_erfc(x: float) -> float:
    return math.log(2) + float(special.log_ndtr(-x * 2**0.5))


def _opacus_log_a(q: float, sigma: float, alpha: float) -> float:
    if float(alpha).is_integer():
        log_a = -np.inf
        for i in range(int(alpha) + 1):
            log_coef_i = (
                math.log(special.binom(alpha, i)) + i * math.log(q) + (alpha - i) * math.log(1 - q)
            )
            log_a = _log_add(log_a, log_coef_i + (i * i - i) / (2 * sigma**2))
        return log_a
    log_a0, log_a1 = -np.inf, -np.inf
    i = 0
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    while True:
        coef = special.binom(alpha, i)
        log_coef = math.log(abs(coef))
        j = alpha - i
        log_t0 = log_coef + i * math.log(q) + j * math.log(1 - q)
        log_t1 = log_coef + j * math.log(q) + i * math.log(1 - q)
        log_e0 = math.log(0.5) + _log_erfc((i - z0) / (math.sqrt(2) * sigma))
        log_e1 = math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2) * sigma))
        log_s0 = log_t0 + (i * i - i) / (2 * sigma**2) + log_e0
        log_s1 = log_t1 + (j * j - j) / (2 * sigma**2) + log_e1
        if coef > 0:
            log_a0, log_a1 = _log_add(log_a0, log_s0), _log_add(log_a1, log_s1)
        else:
            log_a0, log_a1 = _log_sub(log_a0, log_s0), _log_sub(log_a1, log_s1)
        i += 1
        if max(log_s0, log_s1) < -30:
            break
    return _log_add(log_a0, log_a1)


def opacus_eps(z: float, q: float, rounds: int) -> float:
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    if q >= 1:
        rdp = np.array([a / (2 * z * z) for a in orders])
    else:
        rdp = np.array([_opacus_log_a(q, z, a) / (a - 1) for a in orders])
    rdp = rdp * rounds
    a = np.array(orders, dtype=float)
    eps = rdp - (math.log(DELTA) + np.log(a)) / (a - 1) + np.log((a - 1) / a)
    return float(np.nanmin(eps))


def main() -> None:
    print("| z | q | T | secfl (PLD) | dp-acc. PLD | rel. | secfl RDP | dp-acc. RDP | Opacus RDP |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst, secfl_time = 0.0, 0.0
    for z, q, rounds in itertools.product(
        (0.5, 0.8, 1.0, 1.5, 3.0), (0.01, 0.1, 1.0), (1, 100, 1000)
    ):
        t0 = time.perf_counter()
        ours = epsilon_for_noise_multiplier(z, delta=DELTA, q=q, rounds=rounds)
        secfl_time += time.perf_counter() - t0
        rdp = epsilon_for_noise_multiplier(
            z, delta=DELTA, q=q, rounds=rounds, method=AccountingMethod.RDP
        )
        ref = dp_accounting_eps(z, q, rounds, pld=True)
        rel = (ours - ref) / ref
        worst = max(worst, abs(rel))
        print(
            f"| {z:g} | {q:g} | {rounds} | {ours:.4g} | {ref:.4g} | {rel:+.1e} | {rdp:.4g} | "
            f"{dp_accounting_eps(z, q, rounds, pld=False):.4g} | {opacus_eps(z, q, rounds):.4g} |",
            flush=True,
        )
    print(
        f"\nmax |relative difference| secfl vs dp-accounting PLD: {worst:.1e}; "
        f"secfl's grid time: {secfl_time:.1f} s"
    )


DDG_DIMENSION = 16384
"""d' of the ddg cells (the padded dimension of a 10^4-parameter update)."""


def _ddg(
    z: float,
    q: float,
    rounds: int,
    *,
    shares: int,
    add_remove: bool = True,
    method: AccountingMethod | None = None,
    kind: type[DiscreteGaussianSumEvent | SkellamSumEvent] = DiscreteGaussianSumEvent,
) -> float:
    """The ddg's (or ``kind``'s) epsilon with ``shares`` shares of sigma_l = 2 (the
    sensitivity set to match z): the smallest shares issue 17's target covers."""
    event = kind.for_noise_multiplier(
        z, l2_sensitivity=2.0 * math.sqrt(shares) / z, n_clients=shares, dimension=DDG_DIMENSION
    )
    relation = Neighboring.ADD_OR_REMOVE_ONE if add_remove else Neighboring.ZERO_OUT
    eps, _ = accounted_epsilon(
        z,
        delta=DELTA,
        q=q,
        rounds=rounds,
        mechanism=lambda _: event,
        neighboring=relation,
        method=method,
    )
    return eps


def ddg_main() -> None:
    print(
        "| z | q | T | Gaussian PLD | ddg add/remove, 1000 shares | rel. | same, RDP | rel. | "
        "ddg add/remove, 100 shares | rel. | ddg zero-out, 100 shares (q = 1) | rel. |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst_big, worst_zero_out, took = 0.0, 0.0, 0.0
    for z, q, rounds in itertools.product(
        (0.5, 0.8, 1.0, 1.5, 3.0), (0.01, 0.1, 1.0), (1, 100, 1000)
    ):
        gauss = epsilon_for_noise_multiplier(z, delta=DELTA, q=q, rounds=rounds)
        t0 = time.perf_counter()
        big = _ddg(z, q, rounds, shares=1000, method=AccountingMethod.PLD)
        took += time.perf_counter() - t0
        rdp = _ddg(z, q, rounds, shares=1000, method=AccountingMethod.RDP)
        small = _ddg(z, q, rounds, shares=100)
        cells = [big, rdp, small]
        worst_big = max(worst_big, big / gauss - 1)
        row = [f"{gauss:.4g}"] + [f"{c:.4g} | {c / gauss - 1:+.1%}" for c in cells]
        if q == 1.0:
            zero_out = _ddg(z, q, rounds, shares=100, add_remove=False)
            worst_zero_out = max(worst_zero_out, zero_out / gauss - 1)
            row.append(f"{zero_out:.4g} | {zero_out / gauss - 1:+.1%}")
        else:
            row.append("refused | ")
        print(f"| {z:g} | {q:g} | {rounds} | " + " | ".join(row) + " |", flush=True)
    print(
        f"\nsigma_l = 2: add/remove with 1000 shares at most {worst_big:+.2%} above the "
        f"Gaussian's PLD (its PLD over the grid: {took:.1f} s); zero-out (q = 1) at most "
        f"{worst_zero_out:+.2%}"
    )


def skellam_main() -> None:
    print(
        "| z | T | Gaussian PLD | Skellam, 100 shares, PLD | rel. | same, RDP | rel. | "
        "Skellam, 4 shares, PLD | rel. |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for z, rounds in itertools.product((0.5, 0.8, 1.0, 1.5, 3.0), (1, 100, 1000)):
        gauss = epsilon_for_noise_multiplier(z, delta=DELTA, q=1.0, rounds=rounds)
        cells = [
            _ddg(z, 1.0, rounds, shares=n, add_remove=False, method=m, kind=SkellamSumEvent)
            for n, m in ((100, AccountingMethod.PLD), (100, AccountingMethod.RDP), (4, None))
        ]
        worst = max(worst, cells[0] / gauss - 1, cells[2] / gauss - 1)
        row = [f"{gauss:.4g}"] + [f"{c:.4g} | {c / gauss - 1:+.2%}" for c in cells]
        print(f"| {z:g} | {rounds} | " + " | ".join(row) + " |", flush=True)
    print(f"\nsigma_l = 2, zero-out, q = 1: Skellam's PLD at most {worst:+.3%} above the Gaussian")


if __name__ == "__main__":
    import sys

    if "--skellam" in sys.argv[1:]:
        skellam_main()
    else:
        ddg_main() if "--ddg" in sys.argv[1:] else main()
