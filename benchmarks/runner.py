"""The crypto-overhead sweep: secfl's protocols next to Flower's SecAgg+ and naive phe.

``python -m benchmarks`` (or ``secfl bench``) sweeps protocol {plain, secagg, secagg+,
paillier} x clients n x dimension d x dropout x DP {off, on}, runs Flower's SecAgg+ on
the same SecAgg/SecAgg+ cells (DP off) and extrapolates naive per-value ``phe`` from a
timed sample, then writes ``results.json``, ``results.md``, ``scaling.md`` and PNG plots
into ``--out`` (default: a fresh ``secfl-bench-YYYYmmdd-HHMMSS`` folder in the current
directory; ``--quick``, a small grid: ``secfl-bench-quick-...``). The committed results in
``docs/benchmarks/`` change only with an explicit ``--out docs/benchmarks`` (``make bench``).

Every run of a cell is a forked child process; a cell reports the median of its runs with
the min-max spread. Before a cell runs, its cost is estimated from the cells already
measured (see :func:`estimate`), in CPU seconds of the whole run (setup, data, round),
which a loaded machine disturbs less than wall time: a cell whose run is estimated over
``--budget`` CPU seconds is skipped; a cell is repeated (up to ``--repeats`` times) while
all its runs fit in ``--repeat-budget``; once ``--max-total`` wall seconds are spent the
remaining cells are skipped; a run past a generous wall-clock limit is killed. Cells run
smallest first, so what is skipped is the largest. Every skip is listed with its reason
and estimate, on stderr as it happens and in the outputs. Overhead ratios compare each
cell with the plaintext baseline of the same (n, d, dropout, DP) measured in the same run.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from benchmarks.cells import SECFL_PROTOCOLS, Cell, run_isolated, run_secfl, secagg_shape
from secfl.paillier_keys import PaillierPrivateKey, generate_paillier_keypair

__all__ = [
    "FULL",
    "OUT_DIR",
    "QUICK",
    "Grid",
    "environment",
    "estimate",
    "fresh_out_dir",
    "main",
    "run_sweep",
]

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "docs" / "benchmarks"  # the committed results: written only when --out names it
FLOWER = "flower-"
PHE = "phe"
TIME_KEYS = ("client_seconds", "client_seconds_p95", "server_seconds", "wall_seconds")


@dataclass(frozen=True)
class Grid:
    """What to sweep, and how much time it may take."""

    protocols: tuple[str, ...]
    clients: tuple[int, ...]
    dims: tuple[int, ...]
    dropouts: tuple[float, ...]
    dp: tuple[bool, ...]
    repeats: int
    budget: float  # CPU seconds: cells whose one run is estimated over this are skipped
    repeat_budget: float  # CPU seconds: repeat a cell (up to ``repeats``) while runs fit
    max_total: float  # wall seconds for the whole sweep
    max_memory_gb: float = 4.0
    phe_sample: tuple[int, int] = (10, 20)  # clients x positions of naive phe, timed
    # Flower's SecAgg+ is one to two orders of magnitude slower: its own sub-grid
    flower_points: tuple[tuple[int, int], ...] = (
        (10, 10**3),
        (10, 10**4),
        (10, 10**5),
        (10, 10**6),
        (50, 10**5),
        (100, 10**5),
    )  # (n, d)
    flower_dropouts: tuple[float, ...] = (0.1,)
    flower_repeats: int = 1
    flower_budget: float = 150.0


FULL = Grid(
    protocols=SECFL_PROTOCOLS,
    clients=(10, 50, 100, 200, 500, 1000),
    dims=(10**3, 10**4, 10**5, 10**6),
    dropouts=(0.0, 0.1, 0.3),
    dp=(False, True),
    repeats=3,
    budget=12.0,
    repeat_budget=4.0,
    max_total=1080.0,
)
QUICK = Grid(
    protocols=SECFL_PROTOCOLS,
    clients=(10, 16),
    dims=(1000, 4000),
    dropouts=(0.2,),
    dp=(False, True),
    repeats=2,
    budget=3.0,
    repeat_budget=3.0,
    max_total=30.0,
    phe_sample=(4, 5),
    flower_points=((10, 1000), (10, 4000), (16, 1000), (16, 4000)),
    flower_dropouts=(0.2,),
    flower_budget=3.0,
)


# ----------------------------------------------------------------------------- environment
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def environment() -> dict[str, Any]:
    """Where the numbers were measured: CPU, cores, memory, Python, library versions."""
    versions: dict[str, str | None] = {}
    for pkg in (
        "secfl",
        "numpy",
        "cryptography",
        "phe",
        "gmpy2",
        "flwr",
        "pycryptodome",
        "protobuf",
        "scipy",
        "matplotlib",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "versions": versions,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "date": time.strftime("%Y-%m-%d"),
    }


# ----------------------------------------------------------------------------- estimation
@functools.cache
def _shape(n: int, dropout: float, complete: bool) -> tuple[int, int]:
    return secagg_shape(n, dropout, complete=complete)


def shares_of(cell: Cell) -> int:
    """Neighbours k of each client (SecAgg, SecAgg+ and Flower's versions), else 0."""
    base = cell.protocol.removeprefix(FLOWER)
    if base not in ("secagg", "secagg+"):
        return 0
    return _shape(cell.n, cell.dropout, base == "secagg")[0]


def cost_terms(cell: Cell) -> tuple[float, ...]:
    """The terms a cell's run time is (roughly) a non-negative combination of.

    Every protocol: a constant, n*D (encoding and summing D-entry vectors; D = d padded
    under DP), plus n*D*log2(D) with DP (rotation). SecAgg/SecAgg+: n*k key agreements and
    shares, (n*(k+1) + dropped*k)*D mask expansion incl. recovery of dropped clients.
    Paillier: n (per-client setup), D (decryption). Flower: also n*k^2 (Shamir over
    GF(2^128) in Python). Naive phe is never run, only extrapolated.
    """
    n, dim, dropped, k = cell.n, float(cell.input_dim), cell.dropped, shares_of(cell)
    terms = [1.0, n * dim]
    if cell.dp:
        terms.append(n * dim * math.log2(dim))
    if cell.protocol == "paillier":
        terms += [float(n), dim]
    elif k:
        terms += [float(n * k), (n * (k + 1) + dropped * k) * dim]
        if cell.protocol.startswith(FLOWER):
            terms.append(float(n * k * k))
    return tuple(terms)


def family(cell: Cell) -> tuple[str, bool]:
    """Cells whose runs predict each other: same code and DP setting (secfl's SecAgg and
    SecAgg+ are one implementation, as are Flower's two configurations)."""
    base = cell.protocol
    if base.startswith(FLOWER):
        base = FLOWER
    elif base in ("secagg", "secagg+"):
        base = "secagg"
    return base, cell.dp


def estimate(cell: Cell, measured: Sequence[tuple[Cell, float]]) -> float | None:
    """Estimated seconds for one run of ``cell``, from the runs of its :func:`family`
    measured so far (``None`` before there is one).

    * Upper bound: a run's cost is a non-negative combination of :func:`cost_terms`, so
      a measured run's seconds less a fixed per-run cost ``c0`` (0.8 x the fastest run
      seen: process start and setup), times the largest growth factor of any term, plus
      ``c0``, bounds the new cell from above. The smallest such bound is kept.
    * That bound is loose far from what was measured, so with three or more distinct
      measured cells a non-negative least-squares fit of the terms, x 1.25, is used where
      lower, but never below the slowest measured cell that the new one dominates in every
      term (costs only grow with the terms).
    """
    mine = cost_terms(cell)
    same = [(c, s) for c, s in measured if family(c) == family(cell)]
    if not same:
        return None
    c0 = 0.8 * min(s for _, s in same)
    bound, floor = math.inf, c0
    for other, seconds in same:
        theirs = cost_terms(other)
        if all(b <= a for a, b in zip(mine, theirs, strict=True)):
            floor = max(floor, seconds)
        if any(a > 0 and b == 0 for a, b in zip(mine, theirs, strict=True)):
            continue
        growth = max([1.0] + [a / b for a, b in zip(mine, theirs, strict=True) if b > 0])
        bound = min(bound, c0 + (seconds - c0) * growth)
    if len({cost_terms(c) for c, _ in same}) >= 3:
        from scipy.optimize import nnls

        a = np.array([cost_terms(c) for c, _ in same])
        scale = np.where(a.max(axis=0) > 0, a.max(axis=0), 1.0)
        coef, _ = nnls(a / scale, np.array([s for _, s in same]))
        fitted = 1.25 * float(np.dot(np.array(mine) / scale, coef))
        bound = min(bound, max(floor, fitted))
    return None if math.isinf(bound) else max(bound, floor)


def memory_estimate(cell: Cell) -> float:
    """Bytes the simulation holds at once: every client's input, its message and the
    server's copy (32-bit entries), plus the float64 check sum."""
    return 3.0 * 4 * cell.n * cell.input_dim + 8 * cell.d


# ----------------------------------------------------------------------------- progress
class Progress:
    """A one-line progress bar on stderr (a line per cell when stderr is not a terminal)."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        # sys.stderr when called, not when defined: it may have been replaced since.
        stream = sys.stderr if stream is None else stream
        self.total, self.enabled, self.stream = total, enabled, stream
        self.tty = stream.isatty()
        self.t0 = time.perf_counter()

    def show(self, done: int, text: str) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / max(1, self.total))
        elapsed = time.perf_counter() - self.t0
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"{int(elapsed // 60)}m{int(elapsed % 60):02d}s  {text}"
        )
        if self.tty:
            print(f"\r{line[:150]:<150}", end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if self.enabled:
            print(("\n" if self.tty else "") + text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=self.stream, flush=True)


# ----------------------------------------------------------------------------- the sweep
@dataclass
class Sweep:
    """Results as they accumulate."""

    cells: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    measured: list[tuple[Cell, float]] = field(default_factory=list)


def plan(grid: Grid, *, flower: bool) -> list[Cell]:
    """Cells in run order: DP off before DP on, each by size n*d, so that the budget and
    ``--max-total`` drop the largest cells first (and DP-on cells before DP-off ones); at
    equal size the dropout rate closest to 10 % first; at each point the plaintext
    baseline first, Flower after secfl's SecAgg variants."""
    main = min(grid.dropouts, key=lambda f: abs(f - 0.1))
    points = sorted(
        itertools.product(grid.clients, grid.dims, grid.dropouts, grid.dp),
        key=lambda p: (p[3], p[0] * p[1], p[2] != main, p[0], p[2]),
    )
    cells = []
    for n, d, f, dp in points:
        cells += [Cell(p, n, d, f, dp) for p in grid.protocols]
        if flower and not dp and (n, d) in grid.flower_points and f in grid.flower_dropouts:
            cells += [
                Cell(FLOWER + p, n, d, f) for p in ("secagg", "secagg+") if p in grid.protocols
            ]
    return cells


def _summarize(cell: Cell, runs: list[dict[str, Any]], note: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {**cell.as_dict(), "repeats": len(runs)}
    for key in runs[0]:
        values = [r[key] for r in runs]
        if key in ("correct",):
            out[key] = all(values)
        elif len(set(values)) == 1:
            out[key] = values[0]
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = statistics.median(values)
        else:
            out[key] = next((v for v in values if v is not None), None)
    for key in TIME_KEYS:
        out[key + "_spread"] = [min(r[key] for r in runs), max(r[key] for r in runs)]
    out["expansion"] = out["bytes_up_per_client"] / (4 * cell.d)
    if note:
        out["note"] = note
    return out


def _skip(sweep: Sweep, cell: Cell, reason: str, est: float | None, progress: Progress) -> None:
    sweep.skipped.append(
        {
            **cell.as_dict(),
            "reason": reason,
            "estimated_seconds": None if est is None else round(est, 1),
        }
    )
    progress.note(f"skipped {cell.label()}: {reason}")


def run_sweep(
    grid: Grid,
    *,
    flower: bool,
    seed: int,
    progress: Progress,
    paillier_keys: PaillierPrivateKey | None = None,
) -> Sweep:
    """Run every cell of ``grid`` within its budgets (see the module docstring); Paillier
    cells decrypt with ``paillier_keys`` (needed when the grid has them)."""
    from benchmarks import flower_peer

    sweep = Sweep()
    cells = plan(grid, flower=flower)
    progress.total = len(cells)
    t_start = time.perf_counter()
    for i, cell in enumerate(cells):
        progress.show(i, f"{cell.label()}")
        is_flower = cell.protocol.startswith(FLOWER)
        if is_flower and cell.protocol == FLOWER + "secagg+":
            k = shares_of(cell)
            if k >= cell.n - 1:
                _skip(
                    sweep,
                    cell,
                    "same as flower-secagg (secfl's plan is the complete graph)",
                    None,
                    progress,
                )
                continue
        budget = grid.flower_budget if is_flower else grid.budget
        max_repeats = grid.flower_repeats if is_flower else grid.repeats
        est = estimate(cell, sweep.measured)
        mem = memory_estimate(cell)
        if mem > grid.max_memory_gb * 2**30:
            _skip(
                sweep,
                cell,
                f"needs ~{mem / 2**30:.1f} GiB > --max-memory-gb {grid.max_memory_gb:g}",
                est,
                progress,
            )
            continue
        if est is not None and est > budget:
            flag = "--flower-budget" if is_flower else "--budget"
            _skip(
                sweep,
                cell,
                f"estimated {est:.0f} CPU s per run > {flag} {budget:g}",
                est,
                progress,
            )
            continue
        repeats = max_repeats
        if est is not None:
            room = budget if is_flower else grid.repeat_budget
            repeats = max(1, min(max_repeats, int(room // max(est, 1e-3))))
        left = grid.max_total - (time.perf_counter() - t_start)
        if est is not None and est * repeats > left:
            repeats = 1
            if est > left:
                _skip(
                    sweep,
                    cell,
                    f"--max-total {grid.max_total:g} s reached ({left:.0f} s left)",
                    est,
                    progress,
                )
                continue
        elif est is None and left <= 0:
            _skip(sweep, cell, f"--max-total {grid.max_total:g} s reached", est, progress)
            continue
        limit = max(30.0, 2 * budget, 4 * (est or budget))  # wall seconds: load slows runs
        fn: Callable[..., dict[str, Any]] = (
            flower_peer.run_flower
            if is_flower
            else functools.partial(run_secfl, paillier_keys=paillier_keys)
        )
        runs: list[dict[str, Any]] = []
        for r in range(repeats):
            status, value = run_isolated(fn, (cell, seed + r), timeout=limit)
            if status == "ok":
                runs.append(value)
                sweep.measured.append((cell, float(value["run_cpu_seconds"])))
            elif status == "killed":
                sweep.measured.append((cell, float(value)))
                _skip(
                    sweep,
                    cell,
                    f"killed after {value:.0f} s (hard limit {limit:.0f} s)",
                    est,
                    progress,
                )
                break
            else:
                sweep.failed.append({**cell.as_dict(), "error": str(value)})
                progress.note(f"FAILED {cell.label()}: {str(value).splitlines()[0]}")
                break
        if runs:
            note = None
            if len(runs) < max_repeats:
                why = "no estimate" if est is None else f"estimate {est:.1f} CPU s per run"
                note = f"{len(runs)} of {max_repeats} repeats ({why})"
            sweep.cells.append(_summarize(cell, runs, note))
    progress.show(len(cells), "done")
    progress.close()
    return sweep


# ----------------------------------------------------------------------------- comparisons
def add_comparisons(results: dict[str, Any]) -> None:
    """Overhead vs the plaintext baseline of the same point; ratios vs Flower and phe."""
    cells = results["cells"]

    def key(c: dict[str, Any]) -> tuple[Any, ...]:
        return (c["n"], c["d"], c["dropout"], c["dp"])

    def round_cpu(c: dict[str, Any]) -> float:
        return float(c["survivors"] * c["client_seconds"] + c["server_seconds"])

    by = {(c["protocol"], *key(c)): c for c in cells}
    for c in cells:
        base = by.get(("plain", *key(c)))
        if base is None or c["protocol"] == "plain":
            continue
        for name, num, den in (
            ("overhead_vs_plain", round_cpu(c), round_cpu(base)),
            ("client_overhead_vs_plain", c["client_seconds"], base["client_seconds"]),
            ("server_overhead_vs_plain", c["server_seconds"], base["server_seconds"]),
        ):
            c[name] = num / den if den > 0 else None
    for c in cells:
        peer = None
        if c["protocol"] in ("secagg", "secagg+") and not c["dp"]:
            peer = by.get((FLOWER + c["protocol"], *key(c)))
            if peer is None and c["protocol"] == "secagg+":
                peer = (
                    by.get((FLOWER + "secagg", *key(c)))
                    if shares_of(_cell(c)) >= c["n"] - 1
                    else None
                )
        elif c["protocol"] == "paillier" and not c["dp"]:
            peer = by.get((PHE, *key(c)))
        if peer is None:
            continue
        c["peer"] = peer["protocol"]
        for name, part in (("server", "server_seconds"), ("client", "client_seconds")):
            c[f"peer_{name}_ratio"] = peer[part] / c[part] if c[part] > 0 else None
        c["peer_round_ratio"] = round_cpu(peer) / round_cpu(c)


def _cell(c: dict[str, Any]) -> Cell:
    return Cell(c["protocol"], c["n"], c["d"], c["dropout"], c["dp"])


# ----------------------------------------------------------------------------- entry point
_DESCRIPTION = (
    "The crypto-overhead sweep: secfl's protocols (plain, secagg, secagg+, paillier) x "
    "clients x dimension x dropout x DP, next to Flower's SecAgg+ and naive per-value phe. "
    "Writes results.json, results.md, scaling.md and PNG plots into --out."
)


def _parse(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=_DESCRIPTION)
    ap.add_argument("--quick", action="store_true", help="small grid, < 60 s (smoke test)")
    ap.add_argument("--budget", type=float, help="skip cells whose run needs more CPU s (full: 12)")
    ap.add_argument(
        "--repeat-budget", type=float, help="repeat while all runs fit in this CPU s (full: 4)"
    )
    ap.add_argument("--max-total", type=float, help="stop starting cells after this wall s")
    ap.add_argument("--repeats", type=int, help="runs per cell, median reported (full: 3)")
    ap.add_argument("--flower-budget", type=float, help="max CPU s per Flower run (full: 150)")
    ap.add_argument("--max-memory-gb", type=float, help="skip cells needing more (default 4)")
    ap.add_argument("--protocols", help="comma list, subset of " + ",".join(SECFL_PROTOCOLS))
    ap.add_argument("--clients", help="comma list of n")
    ap.add_argument("--dims", help="comma list of d")
    ap.add_argument("--dropouts", help="comma list of rates")
    ap.add_argument("--dp", choices=("off", "on", "both"), help="DP setting(s) to sweep")
    ap.add_argument("--no-flower", action="store_true", help="skip the Flower peer")
    ap.add_argument("--no-phe", action="store_true", help="skip the naive phe peer")
    ap.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    ap.add_argument("--seed", type=int, default=0, help="seed of the cells' inputs (default: 0)")
    ap.add_argument(
        "--out",
        type=Path,
        help="output directory (default: a fresh ./secfl-bench-[quick-]YYYYmmdd-HHMMSS; "
        "--out docs/benchmarks refreshes the committed results)",
    )
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return ap.parse_args(argv)


def _grid(args: argparse.Namespace) -> Grid:
    grid = QUICK if args.quick else FULL

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(float(x)) for x in text.split(","))

    changes: dict[str, Any] = {}
    if args.protocols:
        bad = set(args.protocols.split(",")) - set(SECFL_PROTOCOLS)
        if bad:
            raise SystemExit(f"unknown protocol(s) {sorted(bad)}; choose from {SECFL_PROTOCOLS}")
        changes["protocols"] = tuple(p for p in SECFL_PROTOCOLS if p in args.protocols.split(","))
    if args.clients:
        changes["clients"] = ints(args.clients)
    if args.dims:
        changes["dims"] = ints(args.dims)
    if args.dropouts:
        changes["dropouts"] = tuple(float(x) for x in args.dropouts.split(","))
    if args.dp:
        changes["dp"] = {"off": (False,), "on": (True,), "both": (False, True)}[args.dp]
    for name in (
        "budget",
        "repeat_budget",
        "max_total",
        "repeats",
        "max_memory_gb",
        "flower_budget",
    ):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return replace(grid, **changes)


def _memoize_planner() -> None:
    """``plan_secagg_plus`` is a pure function that takes seconds at 30 % dropout; cache
    it in this process (forked cells inherit the cache). Setup only: never timed."""
    import secfl.pipeline
    from secfl.protocols.graphs import plan_secagg_plus

    if not hasattr(getattr(secfl.pipeline, "plan_secagg_plus"), "cache_info"):  # noqa: B009
        setattr(secfl.pipeline, "plan_secagg_plus", functools.cache(plan_secagg_plus))  # noqa: B010


def fresh_out_dir(*, quick: bool, parent: Path | None = None) -> Path:
    """Create and return a new ``secfl-bench-[quick-]YYYYmmdd-HHMMSS`` folder in ``parent``
    (default: the current directory), with a ``-2``, ``-3``, ... suffix if it exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = (parent or Path.cwd()) / f"secfl-bench-{'quick-' if quick else ''}{stamp}"
    out, k = base, 1
    while True:
        try:
            out.mkdir(parents=True)
            return out
        except FileExistsError:
            k += 1
            out = base.with_name(f"{base.name}-{k}")


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m benchmarks") -> int:
    """Run the sweep and write JSON, markdown and plots; 0 if every cell was correct."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv, prog)
    grid = _grid(args)
    out = args.out or fresh_out_dir(quick=args.quick)
    command = " ".join([prog, *map(shlex.quote, argv)])
    load_start = os.getloadavg()
    env = environment()  # at the start: the commit and versions the sweep ran on
    t0 = time.perf_counter()
    progress = Progress(0, enabled=not args.no_progress)
    progress.note(
        f"{command}: budget {grid.budget:g} CPU s per run, max total {grid.max_total:g} s;"
        f" output in {out}"
    )
    _memoize_planner()

    from benchmarks import flower_peer, phe_peer

    peers: dict[str, Any] = {}
    flower_ok, why = (
        (False, "disabled by --no-flower") if args.no_flower else flower_peer.available()
    )
    flower_ok = flower_ok and any(p in grid.protocols for p in ("secagg", "secagg+"))
    peers["flower"] = {
        "available": flower_ok,
        "label": flower_peer.LABEL.format(version=flower_peer.flower_version()),
        "message": why or None,
    }
    if not flower_ok:
        progress.note(f"Flower peer skipped: {why or 'no SecAgg protocol in the grid'}")
    keygen = None
    paillier_keys = None
    if "paillier" in grid.protocols or not args.no_phe:
        k0 = time.process_time()
        paillier_keys = generate_paillier_keypair(bits=2048)  # once, before forking: not timed
        keygen = time.process_time() - k0
    phe_sample = None
    if args.no_phe:
        peers["phe"] = {"available": False, "message": "disabled by --no-phe"}
    else:
        assert paillier_keys is not None
        try:
            progress.note("timing naive phe on a sample ...")
            phe_sample = phe_peer.measure_phe(
                clients=grid.phe_sample[0], positions=grid.phe_sample[1], keys=paillier_keys
            )
            peers["phe"] = {
                "available": True,
                "label": phe_peer.LABEL.format(
                    version=metadata.version("phe"), sample=phe_sample["sample_values"]
                ),
                "sample": phe_sample,
            }
        except ImportError as e:
            peers["phe"] = {"available": False, "message": f"phe is not importable ({e})"}
            progress.note(f"phe peer skipped: {e}")

    sweep = run_sweep(
        grid, flower=flower_ok, seed=args.seed, progress=progress, paillier_keys=paillier_keys
    )
    cells = sweep.cells
    if phe_sample is not None:
        for c in [c for c in cells if c["protocol"] == "paillier" and not c["dp"]]:
            cell = Cell(PHE, c["n"], c["d"], c["dropout"])
            row = phe_peer.extrapolate(phe_sample, cell)
            cells.append(_summarize(cell, [row], "extrapolated from the phe sample"))
    results: dict[str, Any] = {
        "command": command,
        "environment": env,
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "elapsed_seconds": time.perf_counter() - t0,
        "grid": {
            "protocols": list(grid.protocols),
            "clients": list(grid.clients),
            "dims": list(grid.dims),
            "dropouts": list(grid.dropouts),
            "dp": list(grid.dp),
            "repeats": grid.repeats,
            "budget_seconds": grid.budget,
            "repeat_budget_seconds": grid.repeat_budget,
            "max_total_seconds": grid.max_total,
            "max_memory_gb": grid.max_memory_gb,
            "seed": args.seed,
            "flower": {
                "points": [list(p) for p in grid.flower_points],
                "dropouts": list(grid.flower_dropouts),
                "repeats": grid.flower_repeats,
                "budget_seconds": grid.flower_budget,
            },
        },
        "paillier_keygen_cpu_seconds": keygen,
        "peers": peers,
        "cells": cells,
        "skipped": sweep.skipped,
        "failed": sweep.failed,
    }
    add_comparisons(results)

    from benchmarks import report, scaling

    results["scaling"] = scaling.fit_all(results, quick=args.quick)
    out.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    if not args.no_plots:
        try:
            plots = report.plots(results, out / "plots")
        except ImportError as e:
            progress.note(f"plots skipped: matplotlib is not importable ({e})")
    results["plots"] = [str(Path(p).relative_to(out)) for p in plots]
    (out / "results.json").write_text(
        json.dumps(results, indent=1, sort_keys=True, allow_nan=False, default=str) + "\n"
    )
    (out / "results.md").write_text(report.markdown(results))
    from benchmarks.engines import markdown_section  # imports this module

    engines = out / "engines.json"
    measured = markdown_section(engines if engines.exists() else OUT_DIR / "engines.json")
    (out / "scaling.md").write_text(scaling.markdown(results, measured=measured))
    print(report.headline(results))
    print(f"wrote {out}/results.json, results.md, scaling.md and {len(plots)} plots")
    ok = all(c["correct"] for c in cells) and not sweep.failed
    return 0 if ok else 1
