#!/usr/bin/env python3
"""Run every vector check and the known-answer tests under each BLAS kernel and SIMD level.

Usage::

    .venv/bin/python protocols/tools/check_kernels.py          # what `make test` runs
    .venv/bin/python protocols/tools/check_kernels.py --list   # the environments only

A vector or a seeded result that depends on the CPU passes on the machine that made it and
fails on a newcomer's. This runs the generators' ``--check`` (``make_*vectors.py``) and
``pytest tests/kat`` once per environment:

* the machine's own choice (the environment as inherited);
* ``OPENBLAS_CORETYPE`` = each OpenBLAS x86-64 kernel this CPU can execute: Prescott
  (SSE3), SandyBridge (AVX), Haswell and Zen (AVX2 + FMA), SkylakeX (AVX-512). A kernel
  whose instructions the CPU lacks would die with SIGILL, so it is skipped and named;
* ``NPY_DISABLE_CPU_FEATURES`` switching off the widest SIMD level numpy dispatched to, and
  then every level above numpy's baseline.

Environments run two at a time. Exit status 1 if any check fails in any environment.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted((ROOT / "protocols" / "tools").glob("make_*vectors.py"))
# OpenBLAS kernel -> the /proc/cpuinfo flags it executes.
KERNELS: dict[str, frozenset[str]] = {
    "Prescott": frozenset({"pni"}),  # SSE3, as /proc/cpuinfo names it
    "SandyBridge": frozenset({"avx"}),
    "Haswell": frozenset({"avx2", "fma"}),
    "Zen": frozenset({"avx2", "fma"}),
    "SkylakeX": frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"}),
}


def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def _numpy_levels() -> list[str]:
    """numpy's dispatched SIMD targets this CPU has, above its baseline, widest last."""
    from numpy._core import _multiarray_umath as umath

    found = umath.__cpu_features__
    return [t for t in umath.__cpu_dispatch__ if found.get(t)]


def environments() -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """``(label, extra environment)`` pairs to run, and the kernels skipped (with why)."""
    envs: list[tuple[str, dict[str, str]]] = [("default", {})]
    skipped: list[str] = []
    if platform.machine() in ("x86_64", "AMD64"):
        flags = _cpu_flags()
        for kernel, needs in KERNELS.items():
            if flags and needs <= flags:
                envs.append((f"OPENBLAS_CORETYPE={kernel}", {"OPENBLAS_CORETYPE": kernel}))
            else:
                missing = " ".join(sorted(needs - flags)) or "/proc/cpuinfo unreadable"
                skipped.append(f"OPENBLAS_CORETYPE={kernel} (CPU lacks {missing})")
    levels = _numpy_levels()
    for disabled in ([levels[-1]], levels) if levels else ():
        value = " ".join(disabled)
        label = f"NPY_DISABLE_CPU_FEATURES={value}"
        if all(label != seen for seen, _ in envs):
            envs.append((label, {"NPY_DISABLE_CPU_FEATURES": value}))
    return envs, skipped


def _run(label: str, extra: dict[str, str]) -> tuple[str, list[str], float]:
    env = {**os.environ, **extra}
    failures: list[str] = []
    start = time.perf_counter()
    commands = [[sys.executable, str(tool), "--check"] for tool in TOOLS]
    commands.append([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kat"])
    for cmd in commands:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            name = Path(cmd[1]).name if cmd[1] != "-m" else "pytest tests/kat"
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            failures.append(f"{name} exited {done.returncode}:\n{tail}")
    return label, failures, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the environments and exit")
    args = parser.parse_args(argv)
    envs, skipped = environments()
    for reason in skipped:
        print(f"check_kernels: skipped {reason}")
    if args.list:
        for label, _ in envs:
            print(label)
        return 0
    failed = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for label, failures, seconds in pool.map(lambda e: _run(*e), envs):
            status = "ok" if not failures else f"{len(failures)} FAILED"
            print(f"check_kernels: {label}: {status} ({seconds:.0f} s)")
            for failure in failures:
                print("  " + failure.replace("\n", "\n  "))
            failed += bool(failures)
    if failed:
        print(f"check_kernels: {failed} of {len(envs)} environment(s) failed", file=sys.stderr)
        return 1
    print(f"check_kernels: vectors and known answers agree under {len(envs)} environments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
