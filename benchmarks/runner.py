"""Sweep protocols x clients x dimension x dropout; write JSON and a markdown table.

Every cell is run ``--repeats`` times and the median reported (with min-max spread). The
plaintext baseline is measured in the same run, and each protocol's cost is also given as a
ratio to it, because machines here are shared and absolute times drift. Cells whose
estimated cost exceeds ``--budget`` seconds are skipped and listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from secfl.runtime.scenario import PROTOCOLS, Scenario, report_json, run_scenario

OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


@dataclass(frozen=True)
class Grid:
    protocols: tuple[str, ...]
    clients: tuple[int, ...]
    dims: tuple[int, ...]
    dropouts: tuple[float, ...]
    repeats: int


QUICK = Grid(("plain",), (10, 50), (1_000, 10_000), (0.0, 0.1), 3)
FULL = Grid(PROTOCOLS, (10, 100, 1000), (1_000, 100_000), (0.0, 0.1, 0.3), 3)


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    versions = {}
    for pkg in ("secfl", "numpy", "cryptography", "phe", "gmpy2"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
    }


def _median_cell(sc: Scenario, repeats: int) -> dict[str, Any]:
    runs = []
    for r in range(repeats):
        report, _ = run_scenario(Scenario(**{**sc.__dict__, "seed": r}))
        runs.append(report_json(report))
    cell = dict(runs[0])
    for key in ("client_seconds", "client_seconds_p95", "server_seconds", "wall_seconds"):
        values = [run[key] for run in runs]
        cell[key] = statistics.median(values)
        cell[key + "_spread"] = [min(values), max(values)]
    cell["correct"] = all(run["correct"] for run in runs)
    cell["dropout"] = sc.dropout
    cell["repeats"] = repeats
    cell["expansion"] = cell["bytes_up_per_client"] / cell["plaintext_bytes_per_client"]
    return cell


def run_grid(grid: Grid, *, budget: float, progress: bool = True) -> dict[str, Any]:
    """Run every cell of ``grid`` (baseline first per (n, d, dropout)) and add ratios."""
    cells: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    todo = [
        (p, n, d, f)
        for n in grid.clients
        for d in grid.dims
        for f in grid.dropouts
        for p in grid.protocols
    ]
    per_value_cost: dict[str, float] = {}  # seconds per (client * entry), learned as we go
    for i, (p, n, d, f) in enumerate(todo, 1):
        estimate = per_value_cost.get(p, 0.0) * n * d * grid.repeats
        if estimate > budget:
            skipped.append(
                {
                    "protocol": p,
                    "clients": n,
                    "dim": d,
                    "dropout": f,
                    "estimated_seconds": round(estimate, 1),
                }
            )
            continue
        if progress:
            print(
                f"\r[{i}/{len(todo)}] {p} n={n} d={d} dropout={f:.0%}   ",
                end="",
                file=sys.stderr,
                flush=True,
            )
        t0 = time.perf_counter()
        cell = _median_cell(Scenario(protocol=p, clients=n, dim=d, dropout=f), grid.repeats)
        per_value_cost[p] = max(
            per_value_cost.get(p, 0.0), (time.perf_counter() - t0) / (n * d * grid.repeats)
        )
        cells.append(cell)
    if progress:
        print(file=sys.stderr)
    base = {(c["clients"], c["dim"], c["dropout"]): c for c in cells if c["protocol"] == "plain"}
    for c in cells:
        b = base.get((c["clients"], c["dim"], c["dropout"]))
        if b is not None:
            total = c["server_seconds"] + c["client_seconds"] * c["clients"]
            base_total = b["server_seconds"] + b["client_seconds"] * b["clients"]
            c["overhead_vs_plain"] = total / base_total if base_total > 0 else None
    return {"environment": environment(), "cells": cells, "skipped": skipped}


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table."""
    env = results["environment"]
    lines = [
        f"Measured {env['date']} on {env['cores']} cores ({env['processor']}), "
        f"Python {env['python']}; median of repeats.",
        "",
        "| protocol | n | d | dropout | dropped | correct | client s (mean) | client s (p95) "
        "| server s | up B/client | down B/client | expansion | overhead vs plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in results["cells"]:
        ratio = c.get("overhead_vs_plain")
        lines.append(
            f"| {c['protocol']} | {c['clients']} | {c['dim']} | {c['dropout']:.0%} "
            f"| {c['dropped']} | {c['correct']} | {c['client_seconds']:.4f} "
            f"| {c['client_seconds_p95']:.4f} | {c['server_seconds']:.4f} "
            f"| {c['bytes_up_per_client']:.0f} | {c['bytes_down_per_client']:.0f} "
            f"| {c['expansion']:.3f} | {'-' if ratio is None else f'{ratio:.2f}x'} |"
        )
    if results["skipped"]:
        lines += ["", "Skipped (estimated over the time budget):", ""]
        lines += [
            f"- {s['protocol']} n={s['clients']} d={s['dim']} dropout={s['dropout']:.0%} "
            f"(~{s['estimated_seconds']} s)"
            for s in results["skipped"]
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small grid (smoke test, < 60 s)")
    ap.add_argument("--budget", type=float, default=120.0, help="max estimated seconds/cell")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="directory for JSON + markdown")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    grid = QUICK if args.quick else FULL
    results = run_grid(grid, budget=args.budget, progress=not args.no_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "results"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = markdown(results)
    (args.out / f"{name}.md").write_text(table)
    print(table)
    return 0 if all(c["correct"] for c in results["cells"]) else 1
