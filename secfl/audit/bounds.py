"""Parameter bounds: every configuration is accepted exactly when its specification allows it.

A configuration outside the bounds is where the protections stop holding: a SecAgg threshold
at or below half the share holders lets two disjoint groups each reach t (secagg-v1 section
10), active security needs more than two thirds; a Paillier slot narrower than the sum of its
clients' values carries into the next slot (paillier-sum-v1 section 5); distributed DP over
the plaintext protocol shows the server every client's update with only its share of the
noise (distributed-dp-v1). :func:`check_bounds` states each bound here, from the specs, and
requires the constructor to accept exactly the configurations inside them and to refuse the
others with :class:`~secfl.errors.InvalidArgument` or
:class:`~secfl.errors.EncodingOverflow` (no other exception).
"""

from __future__ import annotations

import math
from typing import Any

from secfl.audit import _rounds as rounds
from secfl.dp.clipping import AdaptiveClipConfig
from secfl.encoding import MAX_BITS, MIN_BITS
from secfl.errors import EncodingOverflow, InvalidArgument, SecflError
from secfl.hazmat import paillier as hp
from secfl.hazmat import shamir
from secfl.pipeline import DistributedDP, PipelineConfig
from secfl.protocols.base import PROTOCOLS, ProtocolName
from secfl.protocols.paillier import PaillierConfig
from secfl.protocols.secagg import SecAggConfig, ThreatModel

__all__ = ["KINDS", "check_bounds"]

KINDS = ("secagg", "paillier", "packing", "pipeline", "adaptive-clip")


def _secagg_allowed(p: dict[str, Any]) -> str | None:
    """``None`` if secagg-v1 allows ``p``, else the bound it breaks."""
    n, t, degree, bits = p["n_clients"], p["threshold"], p["degree"], p["bits"]
    dropout, floor, active = p["max_dropout"], p["min_survivors"], p["active"]
    if not 1 <= bits <= 64:
        return "bits outside 1..64"
    if n < 2:
        return "fewer than 2 clients"
    if not 0.0 <= dropout < 1.0:
        return "max_dropout outside [0, 1)"
    if floor is not None and not 2 <= floor <= n:
        return "min_survivors outside 2..n"
    if degree is not None and (degree < 2 or degree % 2):
        return "an odd or too small degree"
    complete = degree is None or degree >= n - 1
    holders = n - 1 if complete else degree
    if not 1 <= t <= holders:
        return "threshold outside 1..holders"
    if holders > shamir.PRIME - 1 or t > shamir.MAX_THRESHOLD:
        return "beyond the Shamir field"
    if active and not complete:
        return "active mode on a sparse graph"
    if active and 3 * t <= 2 * holders:
        return "active threshold <= 2/3 of the holders"
    if not active and 2 * t <= holders:
        return "threshold <= half the holders"
    if complete and holders - math.floor(dropout * n) < t:
        return "max_dropout leaves fewer than t holders"
    return None


def _paillier_allowed(p: dict[str, Any]) -> str | None:
    bits, vb, n, floor = p["bits"], p["value_bits"], p["n_clients"], p["min_clients"]
    value_bits = bits if vb is None else vb
    if not 1 <= bits <= 64:
        return "bits outside 1..64"
    if not 1 <= value_bits <= bits:
        return "value_bits outside 1..bits"
    if not 1 <= floor <= n:
        return "min_clients outside 1..n"
    slot = (n * ((1 << value_bits) - 1)).bit_length()  # the sum of n values, no carry
    modulus_bits = int(rounds.audit_paillier_keys()[0].n).bit_length()
    if slot > hp.MAX_SLOT_BITS or slot > modulus_bits - 1:
        return "the summed slot does not fit"
    return None


def _packing_allowed(p: dict[str, Any]) -> str | None:
    need = (p["n_clients"] * ((1 << p["value_bits"]) - 1)).bit_length()
    slot, k = p["slot_bits"], p["slots_per_ciphertext"]
    if need > hp.MAX_SLOT_BITS or slot < need or slot > hp.MAX_SLOT_BITS:
        return "a slot cannot hold the sum of n values"
    if k * slot > p["modulus_bits"] - 1:
        return "the slots exceed the plaintext space"
    return None


def _pipeline_allowed(p: dict[str, Any]) -> str | None:
    if p["protocol"] not in PROTOCOLS:
        return "unknown protocol"
    if p["active"] and p["protocol"] != ProtocolName.SECAGG:
        return "the active model outside secagg"
    if not (math.isfinite(p["clip_bound"]) and p["clip_bound"] > 0):
        return "clip_bound not finite and > 0"
    if not MIN_BITS <= p["bits"] <= MAX_BITS:
        return "bits outside the ring sizes"
    if p["dp"] and p["protocol"] == ProtocolName.PLAIN:
        return "distributed DP without secure aggregation"
    if p["dp"] and not 0.0 < p["delta"] < 1.0:
        return "delta outside (0, 1)"
    if p["dp"] and not 0.0 <= p["beta"] < 1.0:
        return "beta outside [0, 1)"
    return None


def _clip_allowed(p: dict[str, Any]) -> str | None:
    if not 0.0 < p["target_quantile"] < 1.0:
        return "target_quantile outside (0, 1)"
    if not (math.isfinite(p["learning_rate"]) and p["learning_rate"] > 0):
        return "learning_rate not finite and > 0"
    if not (math.isfinite(p["count_noise_stddev"]) and p["count_noise_stddev"] >= 0):
        return "count_noise_stddev not finite and >= 0"
    if not 0.0 <= p["min_bound"] <= p["initial_bound"] <= p["max_bound"]:
        return "bounds out of order"
    return None


def _build(kind: str, p: dict[str, Any]) -> object:
    if kind == "secagg":
        model = ThreatModel.ACTIVE if p["active"] else ThreatModel.HONEST_BUT_CURIOUS
        return SecAggConfig(
            bits=p["bits"],
            threshold=p["threshold"],
            n_clients=p["n_clients"],
            degree=p["degree"],
            threat_model=model,
            max_dropout=p["max_dropout"],
            min_survivors=p["min_survivors"],
        )
    if kind == "paillier":
        return PaillierConfig(
            public_key=rounds.audit_paillier_keys()[0],
            bits=p["bits"],
            n_clients=p["n_clients"],
            value_bits=p["value_bits"],
            min_clients=p["min_clients"],
        )
    if kind == "packing":
        return hp.PackingLayout(**p)
    if kind == "pipeline":
        dp = DistributedDP(delta=p["delta"], beta=p["beta"]) if p["dp"] else None
        model = ThreatModel.ACTIVE if p["active"] else ThreatModel.HONEST_BUT_CURIOUS
        return PipelineConfig(
            protocol=p["protocol"],
            threat_model=model,
            clip_bound=p["clip_bound"],
            bits=p["bits"],
            dp=dp,
        )
    return AdaptiveClipConfig(**p)


_ALLOWED = {
    "secagg": _secagg_allowed,
    "paillier": _paillier_allowed,
    "packing": _packing_allowed,
    "pipeline": _pipeline_allowed,
    "adaptive-clip": _clip_allowed,
}


def _check_plan(p: dict[str, Any]) -> None:
    """PackingLayout.plan for the same key size, values and clients: it must find the
    densest layout (slots of exactly the bits the sum needs, as many as fit) whenever one
    slot fits, and refuse with EncodingOverflow otherwise."""
    need = (p["n_clients"] * ((1 << p["value_bits"]) - 1)).bit_length()
    fit = (p["modulus_bits"] - 1) // need
    possible = need <= hp.MAX_SLOT_BITS and fit >= 1
    try:
        layout = hp.PackingLayout.plan(
            modulus_bits=p["modulus_bits"], value_bits=p["value_bits"], n_clients=p["n_clients"]
        )
    except EncodingOverflow as e:
        if possible:
            raise AssertionError(f"plan refused {p} although {fit} slots fit: {e}") from None
        return
    if not possible or (layout.slot_bits, layout.slots_per_ciphertext) != (need, fit):
        raise AssertionError(
            f"plan gave {layout.slots_per_ciphertext} slots of {layout.slot_bits} bits for {p} "
            f"({'none fits' if not possible else f'{fit} of {need} bits fit'})"
        )


def check_bounds(kind: str, params: dict[str, Any]) -> str:
    """Build the ``kind`` configuration from ``params``; it must be accepted iff allowed.

    Raises AssertionError on a mismatch (or on an exception outside SecflError).
    """
    if kind == "packing":
        _check_plan(params)
    broken = _ALLOWED[kind](params)
    try:
        _build(kind, params)
    except (InvalidArgument, EncodingOverflow) as e:
        if broken is None:
            raise AssertionError(
                f"{kind} configuration {params} is within the specification but was refused: "
                f"{type(e).__name__}: {e}"
            ) from None
        return f"refused ({broken})"
    except SecflError as e:
        raise AssertionError(f"{kind} {params}: refused with {type(e).__name__}: {e}") from None
    if broken is not None:
        raise AssertionError(
            f"{kind} configuration {params} was accepted, but the specification forbids it: "
            f"{broken}"
        )
    return "accepted"


def grid(kind: str) -> list[dict[str, Any]]:
    """Every configuration of a fixed grid around the bounds of ``kind`` (a few thousand, all
    cheap to build): :func:`check_bounds` runs them all before the Hypothesis examples."""
    out: list[dict[str, Any]] = []
    if kind == "secagg":
        base = {"bits": 16, "max_dropout": 0.0, "min_survivors": None}
        for n in [
            -1,
            0,
            1,
            *range(2, 10),
            2 * shamir.MAX_THRESHOLD,
            shamir.PRIME,
            shamir.PRIME + 1,
        ]:
            holders = max(n - 1, 1)
            big = n > 100
            degrees = [None] if big else [None, -2, 0, 1, 2, 3, 4, max(n - 2, 0), n - 1, n, n + 1]
            edges = [holders // 2, holders // 2 + 1, 2 * holders // 3 + 1, holders]
            edges += [shamir.MAX_THRESHOLD, shamir.MAX_THRESHOLD + 1]
            thresholds = edges if big else list(range(-1, n + 2))
            for degree in dict.fromkeys(degrees):
                for t in thresholds:
                    for active in (False, True):
                        p = {**base, "n_clients": n, "threshold": t, "degree": degree}
                        out.append({**p, "active": active})
        for n in range(3, 8):
            for active in (False, True):
                t = 2 * (n - 1) // 3 + 1 if active else (n - 1) // 2 + 1
                p = {
                    **base,
                    "n_clients": n,
                    "threshold": t,
                    "degree": None,
                    "active": active,
                }
                out += [{**p, "bits": b} for b in (0, 1, 64, 65)]
                out += [
                    {**p, "max_dropout": d} for d in (-0.1, 0.1, 0.2, 0.25, 1 / 3, 0.5, 0.99, 1.0)
                ]
                out += [{**p, "min_survivors": m} for m in (0, 1, 2, n - 1, n, n + 1)]
    elif kind == "paillier":
        for bits in (0, 1, 8, 16, 63, 64, 65):
            for vb in (None, 0, 1, 8, 16, 63, 64, 65):
                for n in (0, 1, 2, 3, 8, 2**20, 2**40, 2**60):
                    for floor in dict.fromkeys((0, 1, 2, n, n + 1)):
                        out.append(
                            {
                                "bits": bits,
                                "value_bits": vb,
                                "n_clients": n,
                                "min_clients": floor,
                            }
                        )
    elif kind == "packing":
        for modulus_bits in (2, 64, 65, 130, 1024):
            for vb in (1, 8, 32, 63, 64):
                for n in (1, 2, 3, 2**20):
                    need = (n * ((1 << vb) - 1)).bit_length()
                    for slot in dict.fromkeys((need - 1, need, need + 1, 64, 65)):
                        if slot < 1:
                            continue
                        fit = (modulus_bits - 1) // slot
                        for k in dict.fromkeys((1, max(fit, 1), fit + 1)):
                            out.append(
                                {
                                    "modulus_bits": modulus_bits,
                                    "value_bits": vb,
                                    "n_clients": n,
                                    "slot_bits": slot,
                                    "slots_per_ciphertext": k,
                                }
                            )
    elif kind == "pipeline":
        for protocol in [*PROTOCOLS, "secagg-v0"]:
            for active in (False, True):
                for clip in (1.0, 1e-9, 0.0, -1.0, math.inf, math.nan):
                    for bits in (MIN_BITS - 1, MIN_BITS, 32, MAX_BITS, MAX_BITS + 1):
                        p = {"protocol": protocol, "active": active, "clip_bound": clip}
                        out.append({**p, "bits": bits, "dp": False, "delta": 1e-5, "beta": 0.5})
                        for delta in (1e-5, 0.0, 1.0, -1e-5):
                            for beta in (0.0, 0.99, 1.0, -0.1):
                                out.append(
                                    {
                                        **p,
                                        "bits": bits,
                                        "dp": True,
                                        "delta": delta,
                                        "beta": beta,
                                    }
                                )
    else:
        for q in (0.5, 0.0, 1.0, -0.1):
            for lr in (0.2, 0.0, -1.0, math.inf, math.nan):
                for noise in (0.0, 1.0, -1.0, math.inf, math.nan):
                    for lo in (0.0, 1.0, 2.5, -1.0):
                        for hi in (math.inf, 2.0, 1.0, 0.5):
                            out.append(
                                {
                                    "initial_bound": 1.0,
                                    "target_quantile": q,
                                    "learning_rate": lr,
                                    "count_noise_stddev": noise,
                                    "min_bound": lo,
                                    "max_bound": hi,
                                }
                            )
    return out
