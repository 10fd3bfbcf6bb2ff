#!/usr/bin/env python3
"""Generate the distributed-DP known-answer vectors in ``protocols/vectors/dp/``.

Usage::

    .venv/bin/python protocols/tools/make_dp_vectors.py           # (re)write the JSON files
    .venv/bin/python protocols/tools/make_dp_vectors.py --check   # regenerate in memory, diff

Two kinds of expected values, as ``protocols/distributed-dp-v1.md`` section 12 says:

* **Cross-checked** values are computed twice, by ``secfl`` and by an independent
  reference written here from the spec: the randomized Hadamard rotation (an explicit
  Sylvester-Hadamard matrix in 50-digit ``mpmath``, signs from a Csprng rebuilt from raw
  AES-ECB blocks), conditional randomized rounding (exact rationals, the same rebuilt
  Csprng), the rounding norm bound, the rational ``sigma^2``, the noise tail bounds and the
  headroom planner (``mpmath`` and Python integers), and every epsilon (RDP curves of the
  Gaussian, sampled Gaussian, distributed discrete Gaussian and Skellam, Zhu-Wang
  subsampling and the RDP -> (epsilon, delta) conversion, all in ``mpmath``). The script
  stops with exit status 2 and writes nothing if the two disagree.
* **Regression** values pin what ``secfl`` v1 draws from a seeded ``Csprng`` in the
  rejection samplers (discrete Gaussian, discrete Laplace, Bernoulli(exp(-gamma)), Poisson,
  Skellam) and so in the noise shares. Their batch-vectorized consumption of the generator
  is an implementation choice, so no independent reference reproduces them bit for bit;
  instead the script checks, before writing, that 200 000 draws of every sampled law pass
  a chi-square test against the exact pmf computed here in ``mpmath`` (p > 1e-4), and that
  every recorded draw is consistent with the rest of the chain.

``--check`` exits 1 if a committed file differs from what the generator produces now.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import vectorio  # sibling module in protocols/tools/
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from scipy import stats

from secfl import errors
from secfl.dp import (
    DEFAULT_ORDERS,
    AccountingMethod,
    ComposedEvent,
    DiscreteGaussianSumEvent,
    DistributedNoise,
    GaussianEvent,
    Neighboring,
    NoiseKind,
    PoissonSampledEvent,
    RandomizedHadamard,
    RdpAccountant,
    SignalBound,
    SkellamSumEvent,
    _exact,
    _rdp,
    conditional_round,
    discrete_gaussian,
    discrete_laplace,
    epsilon_for_noise_multiplier,
    noise_multiplier_for_epsilon,
    noise_tail_bound,
    plan_distributed,
    poisson,
    rational_sigma_squared,
    rounded_l2_bound,
    skellam,
)
from secfl.hazmat.rng import Csprng
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, PipelineConfig, build_protocol

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "protocols" / "vectors" / "dp"
GENERATOR = "protocols/tools/make_dp_vectors.py"
SPEC = "protocols/distributed-dp-v1.md"

Json = dict[str, Any]

INT_ORDERS = [*range(2, 65), 128, 256]
"""Integer Renyi orders of the independent Gaussian computation."""
EPS_DIGITS = 12
"""Significant digits kept for epsilons (libm-independent, so ``--check`` is portable)."""
CHI_SQUARE_P_MIN = 1e-4

mpmath.mp.dps = 50
# dp-accounting logs a warning for every fractional order its series does not converge at
# (it then drops the order, which only makes epsilon larger); keep the output readable.
logging.getLogger("absl").setLevel(logging.ERROR)


class MismatchError(Exception):
    """The library and the independent reference disagree: nothing is written."""


def _agree(what: str, lib: object, ref: object) -> None:
    if lib != ref:
        raise MismatchError(f"{what}: library gives {lib!r}, reference gives {ref!r}")


def _close(what: str, lib: float, ref: float, rel: float) -> None:
    if not abs(lib - ref) <= rel * max(abs(ref), 1e-300):
        raise MismatchError(f"{what}: library gives {lib!r}, reference gives {ref!r}")


def _raises(what: str, error: str, fn: Callable[[], object]) -> None:
    cls = getattr(errors, error)
    try:
        fn()
    except cls:
        return
    except Exception as e:
        raise MismatchError(f"{what}: expected {error}, got {type(e).__name__}: {e}") from e
    raise MismatchError(f"{what}: expected {error}, nothing was raised")


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"secfl-dp-kat-seed:{label}".encode()).digest()


def _det_unit(label: str, i: int) -> Fraction:
    """A deterministic pseudo-random rational in [0, 1) (SHA-256 based, version-stable)."""
    h = hashlib.sha256(f"secfl-dp-kat:{label}:{i}".encode()).digest()
    return Fraction(int.from_bytes(h[:8], "big") >> 11, 1 << 53)


def _inputs(label: str, count: int, scale: float) -> list[float]:
    """Deterministic float64 inputs in [-scale, scale)."""
    return [float((2 * _det_unit(label, i) - 1) * Fraction(scale)) for i in range(count)]


def _sig(x: float, digits: int = EPS_DIGITS) -> float:
    return float(f"{x:.{digits}g}")


# --------------------------------------------------------------------------------------
# Reference Csprng (prg-v1.md section 4), from raw AES-ECB blocks.
# --------------------------------------------------------------------------------------


def ref_keystream(key: bytes, label: bytes, nbytes: int) -> bytes:
    start = int.from_bytes(label + bytes(16 - len(label)), "big")
    nblocks = -(-nbytes // 16)
    blocks = b"".join(((start + i) % (1 << 128)).to_bytes(16, "big") for i in range(nblocks))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # CTR by hand
    return (ecb.update(blocks) + ecb.finalize())[:nbytes]


class RefCsprng:
    """prg-v1 section 4: bulk draws from label "draw" then rekey from "rekey"; requests of
    at most 64 bytes from a 4096-byte pool taken (with the next key) from label "pool"."""

    def __init__(self, seed: bytes) -> None:
        self.key = seed
        self.pool = b""

    def draw(self, nbytes: int) -> bytes:
        out = ref_keystream(self.key, b"draw", nbytes)
        self.key = ref_keystream(self.key, b"rekey", 32)
        return out

    def bytes(self, n: int) -> bytes:
        if n > 64:
            return self.draw(n)
        if len(self.pool) < n:
            fresh = ref_keystream(self.key, b"pool", 32 + 4096)
            self.key, self.pool = fresh[:32], fresh[32:]
        out, self.pool = self.pool[:n], self.pool[n:]
        return out

    def uniform(self, size: int) -> list[Fraction]:
        raw = self.draw(8 * size)
        words = [int.from_bytes(raw[8 * i : 8 * i + 8], "little") for i in range(size)]
        return [Fraction(w >> 11, 1 << 53) for w in words]


# --------------------------------------------------------------------------------------
# Reference transform: rotation, rounding bound, conditional rounding (spec sections 4-5).
# --------------------------------------------------------------------------------------


def _mpq(f: Fraction) -> mpmath.mpf:
    return mpmath.mpf(f.numerator) / f.denominator  # mpmath does not take Fractions


def ref_padded(d: int) -> int:
    p = 1
    while p < d:
        p *= 2
    return p


def ref_signs(seed: bytes, padded: int) -> list[int]:
    """Sign i is -1 iff bit i (most significant bit of each byte first) of the first
    ceil(d'/8) bytes of Csprng(seed).bytes is set."""
    raw = RefCsprng(seed).bytes((padded + 7) // 8)
    bits = [(raw[i // 8] >> (7 - i % 8)) & 1 for i in range(padded)]
    return [-1 if b else 1 for b in bits]


def ref_hadamard(n: int) -> list[list[int]]:
    """Sylvester's construction: H_1 = [1], H_2m = [[H, H], [H, -H]]."""
    h = [[1]]
    while len(h) < n:
        h = [row + row for row in h] + [row + [-v for v in row] for row in h]
    return h


def _as_integers(values: Sequence[float]) -> tuple[list[int], int]:
    """Exact integers m_i and a shift k with values[i] = m_i / 2^k (floats are dyadic)."""
    fracs = [Fraction(v) for v in values]
    k = max((f.denominator.bit_length() - 1 for f in fracs), default=0)
    return [int(f * (1 << k)) for f in fracs], k


def _matvec(h: list[list[int]], v: list[int], rows: int) -> list[int]:
    return [sum(hij * vj for hij, vj in zip(h[i], v, strict=True)) for i in range(rows)]


def ref_rotate(x: Sequence[float], seed: bytes) -> list[mpmath.mpf]:
    """R x = H D pad(x) / sqrt(d'): exact integer products, then 50-digit division."""
    n = ref_padded(len(x))
    signs = ref_signs(seed, n)
    ints, k = _as_integers(list(x) + [0.0] * (n - len(x)))
    hdx = _matvec(ref_hadamard(n), [s * v for s, v in zip(signs, ints, strict=True)], n)
    scale = mpmath.sqrt(n) * mpmath.mpf(2) ** k
    return [mpmath.mpf(v) / scale for v in hdx]


def ref_unrotate(y: Sequence[float], seed: bytes, dimension: int) -> list[mpmath.mpf]:
    """R^T y = D H y / sqrt(d') (H is symmetric), truncated to ``dimension`` coordinates."""
    n = len(y)
    signs = ref_signs(seed, n)
    ints, k = _as_integers(y)
    hy = _matvec(ref_hadamard(n), ints, dimension)
    scale = mpmath.sqrt(n) * mpmath.mpf(2) ** k
    return [signs[i] * mpmath.mpf(hy[i]) / scale for i in range(dimension)]


def ref_l2_norm(x: Sequence[float]) -> float:
    """The norm as ``encoding-v1.md`` ("L2 norm") specifies it, in plain Python floats."""
    peak = max((abs(v) for v in x), default=0.0)
    if peak == 0.0:
        return 0.0
    terms = [(v / peak) * (v / peak) for v in x]
    while len(terms) > 1:
        if len(terms) % 2:
            terms.append(0.0)
        half = len(terms) // 2
        terms = [terms[i] + terms[i + half] for i in range(half)]
    return peak * math.sqrt(terms[0])


def ref_rounded_l2_bound(c: float, d: int, beta: float) -> mpmath.mpf:
    c_, d_ = mpmath.mpf(c), mpmath.mpf(d)
    bound = c_ + mpmath.sqrt(d_)
    if beta > 0:
        squared = (
            c_**2
            + d_ / 4
            + mpmath.sqrt(2 * mpmath.log(1 / mpmath.mpf(beta))) * (c_ + mpmath.sqrt(d_) / 2)
        )
        bound = min(bound, mpmath.sqrt(squared))
    return bound


def ref_rounded_l2_bound_binary64(c: float, d: int, beta: float) -> float:
    """Section 5.1 evaluated in binary64 in the order the spec writes it (what the planner
    feeds into the share variance); checked against :func:`ref_rounded_l2_bound`."""
    root_d = math.sqrt(d)
    bound = c + root_d
    if beta > 0:
        squared = c * c + d / 4.0 + math.sqrt(2.0 * math.log(1.0 / beta)) * (c + root_d / 2.0)
        bound = min(bound, math.sqrt(squared))
    return bound


def ref_fraction_to_binary64(v: Fraction) -> Fraction:
    """Round a rational in [0, 2) to the nearest binary64 value, ties to even."""
    if v == 0:
        return v
    e = v.numerator.bit_length() - v.denominator.bit_length()
    if v < Fraction(2) ** e:
        e -= 1
    ulp = Fraction(2) ** (e - 52)
    return round(v / ulp) * ulp


def ref_conditional_round(
    y: Sequence[float], bound: float, seed: bytes
) -> tuple[list[int], int, RefCsprng]:
    """Spec section 5.2: floors f_i, fractions r_i = fl(y_i - f_i); per try one bulk draw of
    d uniforms, q_i = f_i + [u_i < r_i]; accept when sum q_i^2 <= bound^2 exactly."""
    ys = [Fraction(v) for v in y]
    floors = [math.floor(v) for v in ys]
    fracs = [ref_fraction_to_binary64(v - f) for v, f in zip(ys, floors, strict=True)]
    limit = Fraction(bound) ** 2
    rng = RefCsprng(seed)
    for tries in range(1, 10_001):
        us = rng.uniform(len(ys))
        q = [f + (1 if u < r else 0) for f, u, r in zip(floors, us, fracs, strict=True)]
        if sum(v * v for v in q) <= limit:
            return q, tries, rng
    raise MismatchError("reference conditional rounding did not terminate")


# --------------------------------------------------------------------------------------
# Reference planner (spec section 7).
# --------------------------------------------------------------------------------------

MAX_NUM, MAX_DEN = 1 << 50, 1 << 26


def ref_rational_sigma_squared(v: float) -> Fraction:
    """Spec section 6.1: integers as they are; else round up to N / 2^k."""
    if v.is_integer() and v < 2.0**53:
        out = Fraction(int(v))
    else:
        e = math.frexp(v)[1]  # v = f 2^e, 1/2 <= f < 1
        k = min(26, max(0, 30 - e))
        out = Fraction(math.ceil(Fraction(v) * 2**k), 2**k)
    if out.numerator > MAX_NUM or out.denominator > MAX_DEN:
        raise ValueError("sigma^2 outside the sampler's range")
    return out


def ref_tail(kind: str, total_variance: float, d: int, p: float) -> int:
    v = mpmath.mpf(total_variance)
    budget = mpmath.log(2 * mpmath.mpf(d) / mpmath.mpf(p))
    if kind == "ddg":
        return int(mpmath.ceil(mpmath.sqrt(2 * v * budget)))

    def gap(u: mpmath.mpf) -> mpmath.mpf:
        return v * (u * mpmath.asinh(u) - mpmath.sqrt(1 + u * u) + 1) - budget

    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    while gap(hi) < 0:
        hi *= 2
    for _ in range(200):  # bisection to ~2^-200 relative: far below one integer step
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) < 0 else (lo, mid)
    return int(mpmath.ceil(v * hi))


def ref_required_bits(
    *, n: int, clip: float, s: int, tail_at: Callable[[float], int], d: int, p: float, signal: str
) -> int:
    if signal == "worst_case":
        per_client = math.floor(Fraction(clip) * Fraction(2) ** s) + 1
        total = n * per_client + tail_at(p)
    else:
        half = mpmath.mpf(p) / 2
        spread = mpmath.sqrt(2 * mpmath.log(2 * d / half) / d)
        sig = int(mpmath.ceil(n * _mpq(Fraction(clip) * Fraction(2) ** s) * spread))
        total = sig + n + tail_at(p / 2)
    return max(8, total.bit_length() + 1)


def ref_plan(args: Json) -> Json | None:
    """The finest s in 52..-52 whose shares are valid and whose sum fits; None if none."""
    kind, n, m = args["kind"], args["n_clients"], args["min_clients"]
    clip, d, z = args["clip_bound"], args["dimension"], args["noise_multiplier"]
    beta, p, signal = args["beta"], args["failure_probability"], args["signal"]
    for s in range(52, -53, -1):
        sens_ref = ref_rounded_l2_bound(math.ldexp(clip, s), d, beta)
        sens = ref_rounded_l2_bound_binary64(math.ldexp(clip, s), d, beta)
        if abs(sens - float(sens_ref)) > 1e-14 * float(sens_ref):
            raise MismatchError(f"binary64 rounding bound {sens!r} is not {sens_ref}")
        target = (z * sens) ** 2 / m  # binary64, as specified
        if kind == "ddg":
            if target < 0.25:
                continue
            try:
                s2 = ref_rational_sigma_squared(target)
            except ValueError:
                continue
            local = float(s2)
        else:
            if target > 2.0**50:
                continue
            s2, local = None, target

        def tail_at(prob: float, local: float = local) -> int:
            return ref_tail(kind, n * local, d, prob)

        need = ref_required_bits(n=n, clip=clip, s=s, tail_at=tail_at, d=d, p=p, signal=signal)
        if need <= args["bits"]:
            return {
                "scale_bits": s,
                "l2_sensitivity": sens_ref,
                "target_local_variance": target,
                "sigma_squared": s2,
                "local_variance": local,
                "required_bits": need,
                "tail_bound": tail_at(p if signal == "worst_case" else p / 2),
            }
    return None


# --------------------------------------------------------------------------------------
# Reference accounting (spec section 10), in mpmath.
# --------------------------------------------------------------------------------------


def ref_sampled_gaussian_rdp(q: float, z: float, a: int) -> mpmath.mpf:
    """Mironov, Talwar, Zhang (2019) Sec. 3.3, integer order a:
    (1/(a-1)) log sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2 - k) / (2 z^2))."""
    if q == 1.0:
        return mpmath.mpf(a) / (2 * mpmath.mpf(z) ** 2)
    q_, z_ = mpmath.mpf(q), mpmath.mpf(z)
    total = mpmath.fsum(
        math.comb(a, k) * (1 - q_) ** (a - k) * q_**k * mpmath.exp((k * k - k) / (2 * z_**2))
        for k in range(a + 1)
    )
    return mpmath.log(total) / (a - 1)


def ref_eps_from_rdp(
    orders: Sequence[float], rdp: Sequence[mpmath.mpf], delta: float
) -> tuple[Any, Any]:
    """CKS20 Prop. 12 / Balle et al. 2020 Thm. 21 (dp-accounting's compute_epsilon):
    eps = min_a max(0, r(a) + log((a-1)/a) - (log(delta) + log(a)) / (a-1)); orders with
    delta^2 + expm1(-r) > 0 give 0 (the KL bound), orders <= 1.01 are skipped."""
    best, best_order = mpmath.inf, None
    dl = mpmath.mpf(delta)
    for a, r in zip(orders, rdp, strict=True):
        a_ = mpmath.mpf(a)
        if dl**2 + mpmath.expm1(-r) > 0:
            eps = mpmath.mpf(0)
        elif a_ > mpmath.mpf("1.01"):
            eps = r + mpmath.log1p(-1 / a_) - mpmath.log(dl * a_) / (a_ - 1)
        else:
            continue
        if eps < best:
            best, best_order = eps, a
    return max(best, mpmath.mpf(0)), best_order


@functools.cache
def ref_ddg_tau(local_sigma: float, n: int) -> mpmath.mpf:
    """tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k+1)) (KLS21)."""
    sigma = mpmath.mpf(local_sigma)
    return 10 * mpmath.fsum(
        mpmath.exp(-2 * mpmath.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, n)
    )


def ref_ddg_rdp(a: int, ev: Json) -> mpmath.mpf:
    """KLS21 Prop. 14, l1 sensitivity min(sqrt(d) D2, D2^2)."""
    sigma, n = mpmath.mpf(ev["local_sigma"]), ev["n_clients"]
    d2, d = mpmath.mpf(ev["l2_sensitivity"]), ev["dimension"]
    d1 = min(mpmath.sqrt(d) * d2, d2 * d2)
    tau = ref_ddg_tau(ev["local_sigma"], n)
    e2 = d2 / (mpmath.sqrt(n) * sigma)
    e1 = d1 / (mpmath.sqrt(n) * sigma)
    half = mpmath.mpf(a) / 2
    return min(
        half * e2**2 + tau * d,
        half * (e2**2 + 2 * e1 * tau + tau**2 * d),
        half * (e2 + mpmath.sqrt(d) * tau) ** 2,
    )


def ref_skellam_rdp(a: int, ev: Json) -> mpmath.mpf:
    """AKL21 Thm. 3.5 with total variance V = n * local variance."""
    v = ev["n_clients"] * mpmath.mpf(ev["local_variance"])
    d2, d = mpmath.mpf(ev["l2_sensitivity"]), ev["dimension"]
    d1 = min(mpmath.sqrt(d) * d2, d2 * d2)
    a_ = mpmath.mpf(a)
    extra = min(((2 * a_ - 1) * d2**2 + 6 * d1) / (4 * v * v), 3 * d1 / (2 * v))
    return a_ * d2**2 / (2 * v) + extra


def ref_zhu_wang(a: int, q: float, base: Callable[[int], mpmath.mpf]) -> mpmath.mpf:
    """Zhu and Wang (2019) Thm. 6 (general upper bound), min with the unsampled curve."""
    q_ = mpmath.mpf(q)
    head = (1 - q_) ** (a - 1) * (a * q_ - q_ + 1)
    terms = [math.comb(a, 2) * q_**2 * (1 - q_) ** (a - 2) * mpmath.exp(base(2))]
    terms += [
        3 * math.comb(a, l) * q_**l * (1 - q_) ** (a - l) * mpmath.exp((l - 1) * base(l))
        for l in range(3, a + 1)  # noqa: E741 - the paper's index
    ]
    bound = mpmath.log(head + mpmath.fsum(terms)) / (a - 1)
    return min(bound, base(a))


def ref_distributed_eps(ev: Json, q: float, rounds: int, delta: float) -> tuple[Any, Any]:
    """Curve at max(ceil(order), 2) for every default order, composed, then converted."""
    base_fn = ref_ddg_rdp if ev["kind"] == "ddg" else ref_skellam_rdp
    base = functools.cache(lambda a: base_fn(a, ev))
    curve: dict[int, mpmath.mpf] = {}
    rdp = []
    for order in DEFAULT_ORDERS:
        a = max(math.ceil(order), 2)
        if a not in curve:
            curve[a] = base(a) if q >= 1.0 else ref_zhu_wang(a, q, base)
        rdp.append(rounds * curve[a])
    return ref_eps_from_rdp(DEFAULT_ORDERS, rdp, delta)


# --------------------------------------------------------------------------------------
# Exact laws for the sampler gate (chi-square against mpmath pmfs).
# --------------------------------------------------------------------------------------


def _chi_square_p(samples: np.ndarray, support: list[int], pmf: list[float]) -> float:
    total = sum(pmf)
    expected = [p / total * samples.size for p in pmf]
    lo = support[0]
    counts = np.bincount(np.clip(samples - lo, 0, len(support) - 1), minlength=len(support))
    obs_bins, exp_bins, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(counts, expected, strict=True):
        acc_o += float(o)
        acc_e += e
        if acc_e >= 5:
            obs_bins.append(acc_o)
            exp_bins.append(acc_e)
            acc_o = acc_e = 0.0
    obs_bins[-1] += acc_o
    exp_bins[-1] += acc_e
    chi2 = sum((o - e) ** 2 / e for o, e in zip(obs_bins, exp_bins, strict=True))
    return float(stats.chi2.sf(chi2, len(obs_bins) - 1))


def _gate(what: str, samples: np.ndarray, pmf: Callable[[int], Any], lo: int, hi: int) -> None:
    support = list(range(lo, hi + 1))
    p = _chi_square_p(samples, support, [float(pmf(y)) for y in support])
    if not p > CHI_SQUARE_P_MIN:
        raise MismatchError(f"{what}: 200 000 draws fail the chi-square test (p = {p:.3g})")


def _dg_pmf(s2: Fraction) -> Callable[[int], mpmath.mpf]:
    s2_ = mpmath.mpf(s2.numerator) / s2.denominator
    return lambda y: mpmath.exp(-mpmath.mpf(y * y) / (2 * s2_))


def _skellam_pmf(variance: float) -> Callable[[int], mpmath.mpf]:
    mu = mpmath.mpf(variance) / 2
    return lambda y: mpmath.exp(-2 * mu) * mpmath.besseli(abs(y), 2 * mu)


def _laplace_pmf(scale: Fraction) -> Callable[[int], mpmath.mpf]:
    t = _mpq(scale)
    return lambda y: mpmath.exp(-abs(y) / t)


def _poisson_pmf(lam: float) -> Callable[[int], mpmath.mpf]:
    lam_ = mpmath.mpf(lam)
    return lambda k: mpmath.exp(k * mpmath.log(lam_) - lam_ - mpmath.loggamma(k + 1))


# --------------------------------------------------------------------------------------
# samplers.json (regression, distribution-gated)
# --------------------------------------------------------------------------------------

SAMPLE_SIZE = 24
GATE_SIZE = 200_000


def _frac_json(f: Fraction) -> Json:
    return {"num": f.numerator, "den": f.denominator}


def sampler_vectors() -> Json:
    dg_cases: list[tuple[str, int | Fraction | float]] = [
        ("dg-quarter", Fraction(1, 4)),
        ("dg-one", 1),
        ("dg-7-over-3", Fraction(7, 3)),
        ("dg-float-2.5", 2.5),
        ("dg-float-0.1", 0.1),
        ("dg-ten", 10),
        ("dg-1000", 1000),
        ("dg-2^40", 2**40),
    ]
    discrete_gaussian_out = []
    for name, s2_in in dg_cases:
        s2 = rational_sigma_squared(s2_in)
        if isinstance(s2_in, float):
            _agree(f"{name}: rational sigma^2", s2, ref_rational_sigma_squared(s2_in))
        seed = _seed(name)
        values = discrete_gaussian(SAMPLE_SIZE, sigma_squared=s2_in, rng=Csprng(seed=seed))
        sigma = math.sqrt(float(s2))
        if sigma < 1e4:  # the gate's support is one bin per value
            big = discrete_gaussian(
                GATE_SIZE, sigma_squared=s2_in, rng=Csprng(seed=_seed(name + "/gate"))
            )
            half = int(12 * sigma) + 3
            _gate(name, big, _dg_pmf(s2), -half, half)
        entry: Json = {
            "name": name,
            "sigma_squared": _frac_json(s2),
            "seed_hex": seed.hex(),
            "size": SAMPLE_SIZE,
            "values": [int(v) for v in values],
        }
        if isinstance(s2_in, float):
            entry["sigma_squared_input"] = s2_in
        discrete_gaussian_out.append(entry)

    laplace_out = []
    for name, scale in (
        ("dl-one", Fraction(1)),
        ("dl-three", Fraction(3)),
        ("dl-7-over-2", Fraction(7, 2)),
    ):
        seed = _seed(name)
        values = discrete_laplace(SAMPLE_SIZE, scale=scale, rng=Csprng(seed=seed))
        big = discrete_laplace(GATE_SIZE, scale=scale, rng=Csprng(seed=_seed(name + "/gate")))
        width = int(40 * float(scale)) + 1
        _gate(name, big, _laplace_pmf(scale), -width, width)
        laplace_out.append(
            {
                "name": name,
                "scale": _frac_json(scale),
                "seed_hex": seed.hex(),
                "size": SAMPLE_SIZE,
                "values": [int(v) for v in values],
            }
        )

    bern_out = []
    for name, num, den in (("be-1-over-3", 1, 3), ("be-5-over-2", 5, 2), ("be-13-over-4", 13, 4)):
        seed = _seed(name)
        values = _exact.bernoulli_exp(
            Csprng(seed=seed), np.full(SAMPLE_SIZE * 2, num, dtype=np.int64), den
        )
        big = _exact.bernoulli_exp(
            Csprng(seed=_seed(name + "/gate")), np.full(GATE_SIZE, num, dtype=np.int64), den
        )
        p = math.exp(-num / den)
        z = (big.mean() - p) / math.sqrt(p * (1 - p) / GATE_SIZE)
        if abs(z) > 4.5:
            raise MismatchError(f"{name}: Bernoulli(exp(-{num}/{den})) frequency off by {z:.2f} sd")
        bern_out.append(
            {
                "name": name,
                "gamma": _frac_json(Fraction(num, den)),
                "seed_hex": seed.hex(),
                "size": SAMPLE_SIZE * 2,
                "values": [int(v) for v in values],
            }
        )

    poisson_out = []
    for name, lam in (("po-3.5", 3.5), ("po-1e4", 1e4)):
        seed = _seed(name)
        values = poisson(SAMPLE_SIZE, lam=lam, rng=Csprng(seed=seed))
        big = poisson(GATE_SIZE, lam=lam, rng=Csprng(seed=_seed(name + "/gate")))
        lo, hi = max(0, int(lam - 12 * math.sqrt(lam)) - 5), int(lam + 12 * math.sqrt(lam)) + 5
        _gate(name, big, _poisson_pmf(lam), lo, hi)
        poisson_out.append(
            {
                "name": name,
                "lam": lam,
                "seed_hex": seed.hex(),
                "size": SAMPLE_SIZE,
                "values": [int(v) for v in values],
            }
        )

    skellam_out = []
    for name, variance in (("sk-2", 2.0), ("sk-1000", 1000.0)):
        seed = _seed(name)
        values = skellam(SAMPLE_SIZE, variance=variance, rng=Csprng(seed=seed))
        big = skellam(GATE_SIZE, variance=variance, rng=Csprng(seed=_seed(name + "/gate")))
        half = int(12 * math.sqrt(variance)) + 5
        _gate(name, big, _skellam_pmf(variance), -half, half)
        skellam_out.append(
            {
                "name": name,
                "variance": variance,
                "seed_hex": seed.hex(),
                "size": SAMPLE_SIZE,
                "values": [int(v) for v in values],
            }
        )

    rational_out = []
    for v in (2.0**-30, 0.1, 0.25, 1.0 / 3.0, 2.5, 1234.567, 7e8 + 0.5, 3.0e12, 2.0**50):
        r = ref_rational_sigma_squared(v)
        _agree(f"rational sigma^2 of {v!r}", rational_sigma_squared(v), r)
        rational_out.append({"input": v, "sigma_squared": _frac_json(r)})
    rational_errors = []
    bad_inputs: tuple[tuple[float | Fraction, str], ...] = (
        (2.0**51, "numerator above 2^50"),
        (Fraction(1, 2**27), "denominator above 2^26"),
        (Fraction(2**51 + 1, 2), "numerator above 2^50"),
    )
    for bad, why in bad_inputs:
        _raises(
            f"rational sigma^2 of {bad!r}",
            "InvalidArgument",
            functools.partial(rational_sigma_squared, bad),
        )
        shown: Any = _frac_json(bad) if isinstance(bad, Fraction) else bad
        rational_errors.append({"input": shown, "error": "InvalidArgument", "why": why})

    return {
        "description": (
            "Seeded outputs of the exact integer samplers (regression values, spec section 12). "
            "Each case: a fresh Csprng(seed=bytes.fromhex(seed_hex)) and one call."
        ),
        "spec": SPEC,
        "generator": GENERATOR,
        "discrete_gaussian": discrete_gaussian_out,
        "discrete_laplace": laplace_out,
        "bernoulli_exp": bern_out,
        "poisson": poisson_out,
        "skellam": skellam_out,
        "rational_sigma_squared": rational_out,
        "rational_sigma_squared_errors": rational_errors,
    }


# --------------------------------------------------------------------------------------
# rotation.json (cross-checked)
# --------------------------------------------------------------------------------------

ROTATION_TOL = 1e-12
SERVER_TOL = 1e-12


def rotation_vectors() -> Json:
    out = []
    for d in (1, 3, 8, 13, 100, 600):
        name = f"rotation-d{d}"
        seed = _seed(name)
        x = _inputs(name, d, 1.0)
        rot = RandomizedHadamard(dimension=d, seed=seed)
        n = rot.padded_dimension
        _agree(f"{name}: padded dimension", n, ref_padded(d))
        signs = ref_signs(seed, n)
        _agree(f"{name}: signs", [int(s) for s in rot.signs()], signs)
        y = rot.forward(np.array(x))
        ref_y = ref_rotate(x, seed)
        scale = max(1.0, math.sqrt(sum(v * v for v in x)))
        for i, (a, b) in enumerate(zip(y, ref_y, strict=True)):
            if abs(float(a) - float(b)) > ROTATION_TOL * scale:
                raise MismatchError(f"{name}: coordinate {i}: library {a!r}, reference {b}")
        back = rot.inverse(y)
        ref_back = ref_unrotate([float(v) for v in y], seed, d)
        for i, (a, b) in enumerate(zip(back, ref_back, strict=True)):
            if (
                abs(float(a) - float(b)) > ROTATION_TOL * scale
                or abs(float(a) - x[i]) > ROTATION_TOL * scale
            ):
                raise MismatchError(f"{name}: inverse coordinate {i}: {a!r} vs {b} / {x[i]!r}")
        out.append(
            {
                "name": name,
                "dimension": d,
                "padded_dimension": n,
                "seed_hex": seed.hex(),
                "signs": "".join("-" if s < 0 else "+" for s in signs),
                "input": x,
                "output": [float(b) for b in ref_y],
            }
        )
    return {
        "description": (
            "Randomized Hadamard rotation R x = H D pad(x) / sqrt(d'), spec section 4. Outputs "
            "are the exact values rounded to float64; compare with absolute tolerance "
            "1e-12 * max(1, ||x||). inverse(output) must give input back to the same tolerance."
        ),
        "spec": SPEC,
        "generator": GENERATOR,
        "tolerance": ROTATION_TOL,
        "cases": out,
    }


# --------------------------------------------------------------------------------------
# rounding.json (cross-checked)
# --------------------------------------------------------------------------------------


def rounding_vectors() -> Json:
    bounds = []
    for c, d, beta in (
        (10.0, 100, 0.0),
        (100.0, 100, math.exp(-0.5)),
        (1.0, 16384, math.exp(-0.5)),
        (2.0**24, 16384, math.exp(-0.5)),
        (3.5, 7, 0.01),
        (0.25, 1_000_000, 0.5),
    ):
        lib = rounded_l2_bound(l2_bound=c, dimension=d, beta=beta)
        ref = ref_rounded_l2_bound(c, d, beta)
        _close(f"rounded_l2_bound({c}, {d}, {beta})", lib, float(ref), 1e-14)
        bounds.append({"l2_bound": c, "dimension": d, "beta": beta, "bound": float(ref)})

    cases = []
    rounding_specs: tuple[tuple[str, int, float, float | None], ...] = (
        ("round-d8", 8, 6.0, math.exp(-0.5)),
        ("round-d64", 64, 40.0, math.exp(-0.5)),
        ("round-d64-tight", 64, 40.0, 0.95),
        ("round-d64-retries", 64, 40.0, None),
        ("round-d16-beta0", 16, 3.0, 0.0),
        ("round-d32-negative-small", 32, 2.0, math.exp(-0.5)),
    )
    for name, d, norm, rounding_beta in rounding_specs:
        raw = _inputs(name, d, 1.0)
        if name.endswith("negative-small"):
            raw = [-abs(v) * 1e-3 if i % 2 else v for i, v in enumerate(raw)]
        length = math.sqrt(sum(v * v for v in raw))
        x = [v * norm / length * (1 - 2**-40) for v in raw]
        if rounding_beta is None:  # a bound barely above ||x||: several tries are needed
            bound = math.sqrt(norm * norm + 6.0)
        else:
            bound = rounded_l2_bound(l2_bound=norm, dimension=d, beta=rounding_beta)
        seed = _seed(name)
        q_ref, tries, _ = ref_conditional_round(x, bound, seed)
        q_lib = conditional_round(np.array(x), norm_bound=bound, rng=Csprng(seed=seed))
        _agree(f"{name}: rounding", [int(v) for v in q_lib], q_ref)
        cases.append(
            {
                "name": name,
                "x": x,
                "norm_bound": bound,
                "seed_hex": seed.hex(),
                "tries": tries,
                "rounded": q_ref,
            }
        )
    errors_out = []
    _raises(
        "unclipped input",
        "InvalidArgument",
        lambda: conditional_round(np.full(4, 10.0), norm_bound=5.0, rng=Csprng(seed=bytes(32))),
    )
    errors_out.append({"x": [10.0] * 4, "norm_bound": 5.0, "error": "InvalidArgument"})
    return {
        "description": (
            "rounded_l2_bound (spec section 5.1; compare with relative tolerance 1e-12) and "
            "conditional randomized rounding (section 5.2) from Csprng(seed); 'tries' is how "
            "many bulk draws of d uniforms the seed takes (informative)."
        ),
        "spec": SPEC,
        "generator": GENERATOR,
        "rounded_l2_bound": bounds,
        "conditional_round": cases,
        "conditional_round_errors": errors_out,
    }


# --------------------------------------------------------------------------------------
# planner.json (cross-checked)
# --------------------------------------------------------------------------------------


def _plan_args(**kw: Any) -> Json:
    base: Json = {
        "kind": "ddg",
        "n_clients": 100,
        "min_clients": 100,
        "clip_bound": 1.0,
        "dimension": 16384,
        "noise_multiplier": 1.0,
        "beta": math.exp(-0.5),
        "failure_probability": 1e-9,
        "signal": "worst_case",
    }
    base.update(kw)
    return base


def _lib_plan(args: Json) -> Any:
    return plan_distributed(
        bits=args["bits"],
        n_clients=args["n_clients"],
        min_clients=args["min_clients"],
        clip_bound=args["clip_bound"],
        dimension=args["dimension"],
        noise_multiplier=args["noise_multiplier"],
        kind=NoiseKind(args["kind"]),
        beta=args["beta"],
        failure_probability=args["failure_probability"],
        signal=SignalBound(args["signal"]),
    )


def planner_vectors() -> Json:
    cases = []
    specs = [
        ("worked-ddg-32", _plan_args(bits=32)),
        ("worked-skellam-20", _plan_args(bits=20, kind="skellam")),
        ("worked-ddg-16", _plan_args(bits=16)),
        ("worked-skellam-16", _plan_args(bits=16, kind="skellam")),
        ("many-clients-ddg-12", _plan_args(bits=12, n_clients=1000, min_clients=1000)),
        ("many-clients-ddg-20", _plan_args(bits=20, n_clients=1000, min_clients=1000)),
        (
            "dropout-ddg-24",
            _plan_args(
                bits=24,
                n_clients=50,
                min_clients=40,
                clip_bound=0.5,
                dimension=1024,
                noise_multiplier=0.7,
            ),
        ),
        ("pipeline-test-ddg", _plan_args(bits=32, n_clients=8, min_clients=6, dimension=1024)),
        (  # shares sized for a public count above this round's cohort (section 7.4)
            "noise-clients-above-n",
            _plan_args(bits=32, n_clients=60, min_clients=100, dimension=1024),
        ),
        (
            "rotated-ddg-20",
            _plan_args(bits=20, n_clients=1000, min_clients=800, dimension=4096, signal="rotated"),
        ),
        (
            "rotated-skellam-20",
            _plan_args(
                bits=20,
                n_clients=1000,
                min_clients=800,
                dimension=4096,
                signal="rotated",
                kind="skellam",
            ),
        ),
        (
            "skellam-beta0-p1e-6",
            _plan_args(
                bits=16,
                kind="skellam",
                n_clients=20,
                min_clients=10,
                clip_bound=3.0,
                dimension=256,
                beta=0.0,
                failure_probability=1e-6,
                noise_multiplier=2.0,
            ),
        ),
        (
            "large-clip-negative-scale",
            _plan_args(
                bits=16, n_clients=2, min_clients=2, clip_bound=1e6, dimension=8, kind="skellam"
            ),
        ),
    ]
    for name, args in specs:
        ref = ref_plan(args)
        if ref is None:
            raise MismatchError(f"{name}: the reference finds no plan")
        plan = _lib_plan(args)
        _agree(f"{name}: scale_bits", plan.scale_bits, ref["scale_bits"])
        _close(
            f"{name}: l2_sensitivity",
            plan.noise.l2_sensitivity,
            float(ref["l2_sensitivity"]),
            1e-14,
        )
        _agree(f"{name}: required_bits", plan.required_bits, ref["required_bits"])
        _agree(f"{name}: local variance", plan.noise.local_variance, ref["local_variance"])
        tail = plan.noise.tail_bound(
            n_clients=args["n_clients"],
            failure_probability=args["failure_probability"]
            / (1 if args["signal"] == "worst_case" else 2),
        )
        _agree(f"{name}: tail bound", tail, ref["tail_bound"])
        expected: Json = {
            "scale_bits": ref["scale_bits"],
            "l2_sensitivity": plan.noise.l2_sensitivity,
            "target_local_variance": ref["target_local_variance"],
            "local_variance": ref["local_variance"],
            "tail_bound": ref["tail_bound"],
            "required_bits": ref["required_bits"],
            "noise_inflation": _sig(
                plan.noise.l2_sensitivity / math.ldexp(args["clip_bound"], ref["scale_bits"])
            ),
        }
        if ref["sigma_squared"] is not None:
            _agree(
                f"{name}: sigma^2",
                rational_sigma_squared(plan.noise.local_variance),
                ref["sigma_squared"],
            )
            expected["sigma_squared"] = _frac_json(ref["sigma_squared"])
        cases.append({"name": name, "args": args, "expected": expected})

    plan_errors = []
    for name, args, error in (
        ("too-few-bits", _plan_args(bits=8), "EncodingOverflow"),
        (
            "ddg-share-below-half",
            _plan_args(
                bits=12, n_clients=1000, min_clients=1000, dimension=1024, noise_multiplier=0.01
            ),
            "EncodingOverflow",
        ),
        ("min-zero", _plan_args(bits=32, min_clients=0), "InvalidArgument"),
        ("beta-one", _plan_args(bits=32, beta=1.0), "InvalidArgument"),
        ("bits-above-64", _plan_args(bits=65), "InvalidArgument"),
    ):
        if error == "EncodingOverflow" and ref_plan(args) is not None:
            raise MismatchError(f"{name}: the reference finds a plan")
        _raises(name, error, functools.partial(_lib_plan, args))
        plan_errors.append({"name": name, "args": args, "error": error})

    tails = []
    for kind, v, d, p in (
        ("ddg", 400.0, 100_000, 1e-6),
        ("skellam", 400.0, 100_000, 1e-6),
        ("ddg", 2.0**40, 16384, 1e-9),
        ("skellam", 2.0**30, 16384, 1e-9),
        ("skellam", 0.5, 1024, 1e-9),
    ):
        lib = noise_tail_bound(
            kind=NoiseKind(kind), total_variance=v, dimension=d, failure_probability=p
        )
        ref_t = ref_tail(kind, v, d, p)
        _agree(f"tail {kind} {v} {d} {p}", lib, ref_t)
        tails.append(
            {
                "kind": kind,
                "total_variance": v,
                "dimension": d,
                "failure_probability": p,
                "tail_bound": ref_t,
            }
        )
    return {
        "description": (
            "plan_distributed (spec section 7): args -> scale_bits, the integer L2 "
            "sensitivity (relative tolerance 1e-12), each share's variance (DDG: the exact "
            "rational sigma^2), the noise tail bound and the required bits; errors; and "
            "noise_tail_bound cases. noise_inflation = l2_sensitivity / (clip * 2^scale_bits)."
        ),
        "spec": SPEC,
        "generator": GENERATOR,
        "plans": cases,
        "plan_errors": plan_errors,
        "tail_bounds": tails,
    }


# --------------------------------------------------------------------------------------
# accounting.json
# --------------------------------------------------------------------------------------


def _gaussian_case(z: float, q: float, rounds: int, delta: float) -> Json:
    rdp = [rounds * ref_sampled_gaussian_rdp(q, z, a) for a in INT_ORDERS]
    eps_ref, order = ref_eps_from_rdp(INT_ORDERS, rdp, delta)
    event: Any = GaussianEvent(z) if q >= 1.0 else PoissonSampledEvent(q, GaussianEvent(z))
    acc = RdpAccountant(orders=[float(a) for a in INT_ORDERS]).compose(ComposedEvent(event, rounds))
    _close(
        f"gaussian z={z} q={q} T={rounds}: epsilon at integer orders",
        acc.get_epsilon(delta),
        float(eps_ref),
        1e-6,
    )
    for a, lib_r, ref_r in zip(INT_ORDERS, acc.rdp, rdp, strict=True):
        _close(
            f"gaussian z={z} q={q} T={rounds}: RDP at order {a}", float(lib_r), float(ref_r), 1e-6
        )
    default = epsilon_for_noise_multiplier(
        z, delta=delta, q=q, rounds=rounds, method=AccountingMethod.RDP
    )
    import dp_accounting

    ref_acc = dp_accounting.rdp.RdpAccountant()
    inner: Any = dp_accounting.GaussianDpEvent(z)
    if q < 1.0:
        inner = dp_accounting.PoissonSampledDpEvent(q, inner)
    ref_acc.compose(dp_accounting.SelfComposedDpEvent(inner, rounds))
    # secfl computes the fractional orders dp-accounting 0.6.0 drops: never above it, and
    # never above the independent integer-order value.
    if not default <= min(ref_acc.get_epsilon(delta), float(eps_ref)) * (1 + 1e-9):
        raise MismatchError(f"gaussian z={z} q={q} T={rounds}: default orders above the references")
    return {
        "noise_multiplier": z,
        "sampling_rate": q,
        "rounds": rounds,
        "delta": delta,
        "epsilon_integer_orders": _sig(float(eps_ref)),
        "best_integer_order": order,
        "epsilon_default_orders": _sig(default),
    }


def _lib_zero_out_formula(event: Any, q: float, rounds: int, delta: float) -> float:
    """secfl's zero-out curve, Poisson-subsampled by ZW19 when q < 1, composed and converted.
    Sampled, it is a formula check: secfl refuses zero-out with Poisson sampling as a
    guarantee (spec section 10.5); the same ZW19 code serves the add/remove ddg."""
    zero_out = RdpAccountant(neighboring=Neighboring.ZERO_OUT)
    if q >= 1.0:
        return zero_out.compose(ComposedEvent(event, rounds)).get_epsilon(delta)
    if zero_out.supports(PoissonSampledEvent(q, event)):
        raise MismatchError("zero-out with Poisson sampling must be refused")
    orders = np.array(DEFAULT_ORDERS)
    whole = np.maximum(np.ceil(orders), 2.0)
    curve = rounds * _rdp.poisson_subsampled_rdp(whole, q, zero_out._base_curve(event))
    from dp_accounting.rdp import rdp_privacy_accountant

    return float(rdp_privacy_accountant.compute_epsilon(list(orders), list(curve), delta)[0])


def _distributed_case(name: str, ev: Json, q: float, rounds: int, delta: float) -> Json:
    if ev["kind"] == "ddg":
        event: Any = DiscreteGaussianSumEvent(
            local_sigma=ev["local_sigma"],
            n_clients=ev["n_clients"],
            l2_sensitivity=ev["l2_sensitivity"],
            dimension=ev["dimension"],
        )
        formula = "KLS21 Prop. 14 (tau term), Zhu-Wang Thm. 6 when sampled, CKS20 Prop. 12"
    else:
        event = SkellamSumEvent(
            local_variance=ev["local_variance"],
            n_clients=ev["n_clients"],
            l2_sensitivity=ev["l2_sensitivity"],
            dimension=ev["dimension"],
        )
        formula = "AKL21 Thm. 3.5, Zhu-Wang Thm. 6 when sampled, CKS20 Prop. 12"
    lib = _lib_zero_out_formula(event, q, rounds, delta)
    ref, order = ref_distributed_eps(ev, q, rounds, delta)
    _close(f"{name}: epsilon", lib, float(ref), 1e-6)
    out = {
        "name": name,
        "event": ev,
        "sampling_rate": q,
        "rounds": rounds,
        "delta": delta,
        "epsilon": _sig(lib),
        "best_order": order,
        "neighboring": "zero_out",
        "formula": formula,
    }
    if ev["kind"] == "ddg":
        out["tau"] = _sig(float(event.tau)) if event.tau > 0 else 0.0
    return out


def _event_json(noise: DistributedNoise, survivors: int) -> Json:
    ev = noise.event(n_clients=survivors)
    if isinstance(ev, DiscreteGaussianSumEvent):
        return {
            "kind": "ddg",
            "local_sigma": ev.local_sigma,
            "n_clients": ev.n_clients,
            "l2_sensitivity": ev.l2_sensitivity,
            "dimension": ev.dimension,
        }
    return {
        "kind": "skellam",
        "local_variance": ev.local_variance,
        "n_clients": ev.n_clients,
        "l2_sensitivity": ev.l2_sensitivity,
        "dimension": ev.dimension,
    }


def accounting_vectors() -> Json:
    gaussian = [
        _gaussian_case(1.0, 1.0, 1, 1e-5),
        _gaussian_case(1.0, 0.1, 100, 1e-5),
        _gaussian_case(0.8, 0.01, 1000, 1e-6),
        _gaussian_case(2.0, 0.05, 500, 1e-5),
        _gaussian_case(5.0, 1.0, 1000, 1e-5),
    ]
    distributed = []
    for kind in ("ddg", "skellam"):
        for bits in (32, 16):
            plan = _lib_plan(_plan_args(bits=bits, kind=kind))
            ev = _event_json(plan.noise, 100)
            distributed.append(_distributed_case(f"worked-{kind}-{bits}bits", ev, 0.1, 100, 1e-5))
        plan = _lib_plan(_plan_args(bits=12, n_clients=1000, min_clients=1000, kind=kind))
        distributed.append(
            _distributed_case(
                f"coarse-{kind}-12bits", _event_json(plan.noise, 1000), 0.1, 100, 1e-5
            )
        )
    # The tau term: small shares, many clients (KLS21's regime where DDG pays for the sum).
    tiny = {
        "kind": "ddg",
        "local_sigma": 1.0,
        "n_clients": 200,
        "l2_sensitivity": 12.0,
        "dimension": 1024,
    }
    distributed.append(_distributed_case("ddg-tau-small-shares", tiny, 1.0, 10, 1e-5))
    distributed.append(_distributed_case("ddg-tau-small-shares-sampled", tiny, 0.2, 10, 1e-5))
    sk_small = {
        "kind": "skellam",
        "local_variance": 1.0,
        "n_clients": 200,
        "l2_sensitivity": 12.0,
        "dimension": 1024,
    }
    distributed.append(_distributed_case("skellam-small-shares", sk_small, 1.0, 10, 1e-5))

    # Dropout awareness: noise provisioned for 80 of 100, realized with 80, 90, 100.
    provisioned = _plan_args(bits=32, min_clients=80)
    plan = _lib_plan(provisioned)
    realized = []
    for survivors in (80, 90, 100):
        case = _distributed_case(
            f"provisioned-80-realized-{survivors}",
            _event_json(plan.noise, survivors),
            0.1,
            100,
            1e-5,
        )
        case["plan_args"] = provisioned
        case["survivors"] = survivors
        case["noise_multiplier_realized"] = _sig(
            plan.noise.event(n_clients=survivors).noise_multiplier
        )
        realized.append(case)

    rdp = AccountingMethod.RDP
    target = noise_multiplier_for_epsilon(8.0, delta=1e-5, q=0.1, rounds=100, method=rdp)
    reached = epsilon_for_noise_multiplier(target, delta=1e-5, q=0.1, rounds=100, method=rdp)
    if not reached <= 8.0:
        raise MismatchError("noise_multiplier_for_epsilon missed its target")
    return {
        "description": (
            "Expected epsilons (spec section 10). gaussian[]: epsilon_integer_orders is an "
            "independent mpmath computation (sampled-Gaussian RDP at orders 2..64, 128, 256, "
            "CKS20 Prop. 12 conversion) that secfl's RdpAccountant with those orders matches to "
            "1e-6 relative; epsilon_default_orders is secfl's RDP value on DEFAULT_ORDERS "
            "(fractional orders computed, so at most dp-accounting's). "
            "distributed[], realized[]: secfl regression values on DEFAULT_ORDERS from the "
            "formula named, under the zero-out "
            "relation (Neighboring.ZERO_OUT: the client's share in both sums), re-derived in "
            "mpmath to 1e-6 by the generator. Where sampling_rate < 1 they check the formula "
            "only (ZW19 on the zero-out curve): secfl refuses zero-out with Poisson sampling "
            "as a guarantee (spec section 10.5). noise_multiplier_for_epsilon[]: RDP."
        ),
        "spec": SPEC,
        "generator": GENERATOR,
        "integer_orders": INT_ORDERS,
        "gaussian": gaussian,
        "distributed": distributed,
        "realized": realized,
        "noise_multiplier_for_epsilon": [
            {
                "target_epsilon": 8.0,
                "delta": 1e-5,
                "sampling_rate": 0.1,
                "rounds": 100,
                "mechanism": "gaussian",
                "noise_multiplier": _sig(target, 6),
            }
        ],
    }


# --------------------------------------------------------------------------------------
# client.json: the whole client transform of pipeline.py, and the server's inverse
# --------------------------------------------------------------------------------------


def client_vectors() -> Json:
    out = []
    for name, mechanism, n, dim, clip, bits, z, dropout in (
        ("secagg-ddg-n3-d5", "ddg", 3, 5, 1.0, 32, 1.0, 0.0),
        ("secagg-skellam-n4-d100", "skellam", 4, 100, 2.0, 24, 0.8, 0.25),
    ):
        pipeline_seed = _seed(name + "/pipeline")
        cfg = PipelineConfig(
            protocol="secagg",
            clip_bound=clip,
            bits=bits,
            dp=DistributedDP(mechanism=DPMechanism(mechanism), noise_multiplier=z),
        )
        pipe = Pipeline(cfg, n_clients=n, dim=dim, dropout=dropout, rng=Csprng(seed=pipeline_seed))
        plan = pipe.dp_plan
        assert plan is not None
        rotation_seed = RefCsprng(pipeline_seed).bytes(32)
        min_survivors = max(2, n - math.floor(dropout * n))
        _agree(f"{name}: min_survivors", pipe.min_survivors, min_survivors)
        ref = ref_plan(
            _plan_args(
                bits=bits,
                kind=mechanism,
                n_clients=n,
                min_clients=min_survivors,
                clip_bound=clip,
                dimension=ref_padded(dim),
                noise_multiplier=z,
            )
        )
        assert ref is not None
        _agree(f"{name}: scale_bits", plan.scale_bits, ref["scale_bits"])
        scale = 2.0**plan.scale_bits
        sens = plan.noise.l2_sensitivity
        m = 1 << bits
        clients: list[Json] = []
        for c in range(1, n + 1):
            raw = _inputs(f"{name}/client{c}", dim, 1.0)
            norm = math.sqrt(sum(v * v for v in raw))
            # Client 1 is clipped (norm 3 clip), the others are inside the bound.
            target = 3.0 * clip if c == 1 else 0.5 * clip * c / n
            update = [v * target / norm for v in raw]
            seed = _seed(f"{name}/client{c}/rng")
            lib = pipe.client_side(np.array(update), rng=Csprng(seed=seed))
            # Reference chain, from the spec.
            clipped_norm = math.sqrt(sum(v * v for v in update))
            clipped = [float(v) for v in pipe_clip(update, clip)]
            if clipped_norm <= clip:
                _agree(f"{name}: client {c} unclipped", clipped, update)
            y_exact = ref_rotate(clipped, rotation_seed)
            y_lib = (
                RandomizedHadamard(dimension=dim, seed=rotation_seed).forward(np.array(clipped))
                * scale
            )
            for a, b in zip(y_lib, y_exact, strict=True):
                if abs(float(a) - float(b) * scale) > ROTATION_TOL * scale * max(1.0, clip):
                    raise MismatchError(f"{name}: client {c} rotation")
            q_ref, tries, _ = ref_conditional_round([float(v) for v in y_lib], sens, seed)
            # The library's noise share comes next from the same generator.
            replay = Csprng(seed=seed)
            conditional_round(y_lib, norm_bound=sens, rng=replay)
            noise = plan.noise.sample(rng=replay)
            encoded = [(qv + int(nv)) % m for qv, nv in zip(q_ref, noise, strict=True)]
            _agree(f"{name}: client {c} encoded", [int(v) for v in lib.encoded], encoded)
            _agree(f"{name}: client {c} norm", lib.norm, ref_l2_norm(update))
            clients.append(
                {
                    "id": c,
                    "update": update,
                    "rng_seed_hex": seed.hex(),
                    "norm": lib.norm,
                    "clipped": lib.clipped,
                    "rounded": q_ref,
                    "rounding_tries": tries,
                    "noise": [int(v) for v in noise],
                    "encoded": encoded,
                }
            )
        total = [sum(cl["encoded"][i] for cl in clients) % m for i in range(ref_padded(dim))]
        centred = [v - m if v >= m // 2 else v for v in total]
        exact = [
            sum(cl["rounded"][i] + cl["noise"][i] for cl in clients) for i in range(ref_padded(dim))
        ]
        _agree(f"{name}: no wrap", centred, exact)
        server = pipe.server_side(np.array(total, dtype=pipe.codec.dtype))
        ref_server = ref_unrotate([v / scale for v in centred], rotation_seed, dim)
        size = max(1.0, math.sqrt(sum((v / scale) ** 2 for v in centred)))
        for a, b in zip(server, ref_server, strict=True):
            if abs(float(a) - float(b)) > SERVER_TOL * size:
                raise MismatchError(f"{name}: server inverse {a!r} vs {b}")
        out.append(
            {
                "name": name,
                "config": {
                    "protocol": "secagg",
                    "mechanism": mechanism,
                    "noise_multiplier": z,
                    "clip_bound": clip,
                    "bits": bits,
                    "beta": math.exp(-0.5),
                },
                "n_clients": n,
                "dim": dim,
                "dropout": dropout,
                "pipeline_seed_hex": pipeline_seed.hex(),
                "rotation_seed_hex": rotation_seed.hex(),
                "min_survivors": min_survivors,
                "scale_bits": plan.scale_bits,
                "l2_sensitivity": sens,
                "local_variance": plan.noise.local_variance,
                "clients": clients,
                "sum": total,
                "sum_centred": centred,
                "server_output": [float(b) for b in ref_server],
            }
        )
    return {
        "description": (
            "Pipeline client transform (spec section 3) and server inverse (section 8). "
            "Pipeline(config, n_clients, dim, dropout, rng=Csprng(pipeline_seed)) draws the "
            "round's rotation seed as its first 32 bytes (secfl v1 behaviour); client_side(update, "
            "rng=Csprng(rng_seed)) must give 'encoded' exactly. 'rounded' is cross-checked; "
            "'noise' is a regression value. server_side(sum) must match server_output to "
            "absolute tolerance 1e-12 * max(1, ||sum_centred|| / 2^scale_bits). "
            "dropout_edges[]: the round over 'encoded' (client ids 1..n) with the listed "
            "clients dropping in the masking phase finishes (survivors, aggregate) or aborts."
        ),
        "spec": SPEC,
        "generator": GENERATOR,
        "cases": out,
        "dropout_edges": dropout_edges(),
    }


def dropout_edges() -> list[Json]:
    """Section 9: noise provisioned for m = n - floor(f n) survivors; the protocol finishes
    with m and refuses with m - 1 (dropouts in the masking phase, after keys are shared)."""
    from secfl.runtime.simulator import simulate_round

    out = []
    for protocol in ("secagg", "secagg+"):
        name = f"{protocol}-n10-dropout0.2"
        n, dim, dropout, bits = 10, 16, 0.2, 32
        cfg = PipelineConfig(protocol=protocol, bits=bits, dp=DistributedDP())
        round_rng = Csprng(seed=_seed(name))
        pipe = Pipeline(cfg, n_clients=n, dim=dim, dropout=dropout, rng=round_rng)
        sessions = build_protocol(pipe, rng=round_rng)
        m = max(2, n - math.floor(dropout * n))
        _agree(f"{name}: min_survivors", pipe.min_survivors, m)
        inputs = {}
        for c in range(1, n + 1):
            update = np.array(_inputs(f"{name}/client{c}", dim, 0.2))
            inputs[c] = pipe.client_side(update, rng=Csprng(seed=_seed(f"{name}/client{c}")))
        encoded = {c: [int(v) for v in e.encoded] for c, e in inputs.items()}
        runs = []
        for dropped in ([1, 2], [1, 2, 3]):
            report = simulate_round(
                sessions,
                {c: e.encoded for c, e in inputs.items()},
                dropouts=dict.fromkeys(dropped, "mask"),
            )
            survivors = [c for c in range(1, n + 1) if c not in dropped]
            run: Json = {"dropped_in_mask_phase": dropped}
            if len(survivors) >= m:
                if report.result is None:
                    raise MismatchError(f"{name}: {len(survivors)} survivors aborted")
                _agree(f"{name}: survivors", sorted(report.result.survivors), survivors)
                total = [sum(encoded[c][i] for c in survivors) % (1 << bits) for i in range(dim)]
                _agree(f"{name}: aggregate", [int(v) for v in report.result.aggregate], total)
                ev = pipe.dp_event(survivors=len(survivors))
                assert isinstance(ev, DiscreteGaussianSumEvent)
                _agree(f"{name}: event n", ev.n_clients, len(survivors))
                run.update(outcome="finished", survivors=survivors, aggregate=total)
            else:
                if report.result is not None or "InsufficientSurvivors" not in str(report.aborted):
                    raise MismatchError(f"{name}: {len(survivors)} survivors: {report.aborted}")
                run.update(outcome="aborted", error="InsufficientSurvivors")
            runs.append(run)
        out.append(
            {
                "name": name,
                "protocol": protocol,
                "n_clients": n,
                "dim": dim,
                "dropout": dropout,
                "bits": bits,
                "pipeline_seed_hex": _seed(name).hex(),
                "min_survivors": m,
                "encoded": [encoded[c] for c in range(1, n + 1)],
                "runs": runs,
            }
        )
    return out


def pipe_clip(x: Sequence[float], bound: float) -> np.ndarray:
    """The library's clip (clipping's float nudging is not part of this spec's vectors)."""
    from secfl.dp import clip_l2

    return clip_l2(np.array(x), bound=bound).clipped


# --------------------------------------------------------------------------------------
# Rendering and main
# --------------------------------------------------------------------------------------


def _render(obj: Any, indent: int = 0) -> str:
    """JSON with sorted keys, two-space indent, and lists of scalars on one line."""
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}  {json.dumps(k)}: {_render(obj[k], indent + 1)}" for k in sorted(obj)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, dict | list) for v in obj):
        items = [pad + "  " + _render(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def generate() -> dict[str, str]:
    return {
        "samplers.json": _render(sampler_vectors()) + "\n",
        "rotation.json": _render(rotation_vectors()) + "\n",
        "rounding.json": _render(rounding_vectors()) + "\n",
        "planner.json": _render(planner_vectors()) + "\n",
        "accounting.json": _render(accounting_vectors()) + "\n",
        "client.json": _render(client_vectors()) + "\n",
    }


def main(argv: Sequence[str] | None = None) -> int:
    return vectorio.main(
        "make_dp_vectors",
        VECTOR_DIR,
        generate,
        argv,
        description=(__doc__ or "").splitlines()[0],
        mismatch=MismatchError,
    )


if __name__ == "__main__":
    sys.exit(main())
