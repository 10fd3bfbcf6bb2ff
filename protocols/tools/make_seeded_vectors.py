#!/usr/bin/env python3
"""Pin what the library computes from a seed, so that a CPU-dependent bit shows up as a diff.

Usage::

    .venv/bin/python protocols/tools/make_seeded_vectors.py           # (re)write the JSON file
    .venv/bin/python protocols/tools/make_seeded_vectors.py --check   # regenerate in memory, diff

Every integer a client sends, and every float that decides one, must be the same on every
CPU given the same seed and inputs (``protocols/encoding-v1.md``, "Reproducibility"): the
clipping norm and decision, conditional rounding, each noise sampler, the rotation, the
whole client chain of a pipeline with and without distributed DP, and the adaptive clip
bound. This file records a SHA-256 digest of each, made on the committer's machine; the
check recomputes them on this one, and ``check_kernels.py`` does so again under each BLAS
kernel and SIMD level the CPU can run. The values are regression values (the other
generators cross-check the same functions against independent references); a digest
changes only when the library's behaviour does, and then the spec says why.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import vectorio  # sibling module in protocols/tools/

from secfl.dp import (
    AdaptiveClipConfig,
    AdaptiveClipper,
    RandomizedHadamard,
    clip_l2,
    conditional_round,
    discrete_gaussian,
    gaussian,
    skellam,
)
from secfl.hazmat.rng import Csprng
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, PipelineConfig

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors" / "seeded"


class MismatchError(Exception):
    """Never raised: these are regression values without an independent reference."""


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"secfl seeded vectors v1/" + label.encode()).digest()


def _rng(label: str) -> Csprng:
    return Csprng(seed=_seed(label))


def _inputs(label: str, d: int, *, dtype: type = np.float64) -> np.ndarray:
    """A fixed, CPU-independent float vector: Csprng uniforms mapped to [-1, 1)."""
    return (_rng(f"inputs/{label}").uniform(d) * 2.0 - 1.0).astype(dtype)


def _digest(*parts: np.ndarray | float | int | bool) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
        elif isinstance(part, float):
            h.update(struct.pack("<d", part))
        else:
            h.update(str(int(part)).encode())
    return h.hexdigest()


def _clipping() -> str:
    parts: list[np.ndarray | float | int | bool] = []
    for d in (1, 7, 1000, 65537):
        for dtype in (np.float32, np.float64):
            x = _inputs(f"clip/{d}", d, dtype=dtype)
            for bound in (0.5, 3.0, 1e3):
                r = clip_l2(x, bound=bound)
                parts += [r.clipped, r.norm, r.was_clipped]
    return _digest(*parts)


def _rounding() -> str:
    parts: list[np.ndarray | float | int | bool] = []
    for d in (16, 4096):
        x = _inputs(f"round/{d}", d) * 1000.0
        bound = float(np.sqrt(d)) * 1000.0
        parts.append(conditional_round(x, norm_bound=bound, rng=_rng(f"round/{d}")))
    return _digest(*parts)


def _rotation() -> str:
    rot = RandomizedHadamard(dimension=3000, seed=_seed("rotation"))
    y = rot.forward(_inputs("rotation", 3000))
    return _digest(y, rot.inverse(y))


def _samplers() -> dict[str, str]:
    return {
        "discrete_gaussian": _digest(discrete_gaussian(4000, sigma_squared=37.5, rng=_rng("ddg"))),
        "skellam_inversion": _digest(skellam(20000, variance=7.0, rng=_rng("skellam/small"))),
        "skellam_ptrs": _digest(
            *(skellam(20000, variance=v, rng=_rng(f"skellam/{v}")) for v in (50.0, 3.0e6, 2.0**40))
        ),
        "gaussian": _digest(gaussian(20001, stddev=2.5, rng=_rng("gaussian"))),
    }


def _pipelines() -> dict[str, str]:
    out: dict[str, str] = {}
    setups: dict[str, DistributedDP | None] = {
        "pipeline_plain_encoding": None,
        "pipeline_ddg": DistributedDP(mechanism=DPMechanism.DISCRETE_GAUSSIAN),
        "pipeline_skellam": DistributedDP(mechanism=DPMechanism.SKELLAM, noise_multiplier=0.7),
    }
    for name, dp in setups.items():
        config = PipelineConfig(protocol="secagg", clip_bound=1.0, bits=32, dp=dp)
        pipe = Pipeline(config, n_clients=5, dim=1000, dropout=0.2, rng=_rng(f"{name}/setup"))
        parts: list[np.ndarray | float | int | bool] = []
        for c in range(5):
            update = _inputs(f"{name}/{c}", 1000) * (0.01 + 0.03 * c)
            sent = pipe.client_side(update, rng=_rng(f"{name}/client{c}"))
            parts += [sent.encoded, sent.norm, sent.clipped]
        out[name] = _digest(*parts)
    return out


def _adaptive_clip() -> str:
    clipper = AdaptiveClipper(AdaptiveClipConfig(initial_bound=1.0, count_noise_stddev=2.0))
    rng = _rng("adaptive")
    parts: list[np.ndarray | float | int | bool] = []
    for r in range(20):
        results = [clipper.clip(_inputs(f"adaptive/{r}/{c}", 100) * 0.2) for c in range(10)]
        total = sum(AdaptiveClipper.unclipped_indicator(res) for res in results)
        report = clipper.update(
            noised_indicator_sum=clipper.noise_sum(total, rng=rng), n_clients=10
        )
        parts += [report.bound, report.next_bound]
    return _digest(*parts)


CASES: dict[str, Callable[[], str]] = {
    "clip_l2": _clipping,
    "conditional_round": _rounding,
    "randomized_hadamard": _rotation,
    "adaptive_clip": _adaptive_clip,
}


def generate() -> dict[str, str]:
    digests = {name: fn() for name, fn in CASES.items()}
    digests.update(_samplers())
    digests.update(_pipelines())
    doc = {
        "description": (__doc__ or "").splitlines()[0],
        "digest": "SHA-256 over each array's dtype, shape and little-endian bytes, "
        "each float's binary64 bytes and each flag, in the order the generator draws them",
        "sha256": digests,
    }
    return {"results.json": vectorio.render(doc)}


def main(argv: Sequence[str] | None = None) -> int:
    return vectorio.main(
        "make_seeded_vectors",
        VECTOR_DIR,
        generate,
        argv,
        description=(__doc__ or "").splitlines()[0],
        mismatch=MismatchError,
    )


if __name__ == "__main__":
    sys.exit(main())
