"""SecAgg+ cost against n, measured: ``secfl simulate`` at n = 10^3..10^5 clients.

``python -m benchmarks.secagg_scaling [--clients 1000 3000 10000 30000 100000] [--dim 1000]
[--out DIR]`` runs

    secfl simulate --protocol secagg+ --clients N --dim D --dropout 0.1
                   --dropout-phase mask --seed 5 --json

once per N, each in a fresh child process on the default engine (worker processes, one per
core; ``os.wait4`` gives the CPU seconds of the child and its workers and the driver's peak
RSS), fits the exponent of each cost in n (least squares on log-log), writes
``secagg-scaling.json`` and rewrites the measured section of ``scaling.md`` (between its
markers) in ``DIR`` (default ``docs/benchmarks``). The rows of the protocol before
secagg-v2 (``V1_REFERENCE``) are a fixed record: this tree no longer contains that
protocol, so they cannot be regenerated here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.runner import OUT_DIR, environment

__all__ = ["V1_REFERENCE", "exponent", "main", "measure", "section"]

COMMAND = (
    "secfl simulate --protocol secagg+ --clients {n} --dim {d} --dropout 0.1 "
    "--dropout-phase mask --seed 5 --json"
)
FITTED = (
    ("client_seconds", "client CPU s (mean)"),
    ("bytes_down_per_client", "bytes down / client"),
    ("bytes_up_per_client", "bytes up / client"),
    ("server_seconds", "server CPU s"),
    ("cpu_seconds", "CPU s, all processes"),
    ("wall_seconds", "wall s"),
)
JSON_NAME = "secagg-scaling.json"
START, END = "<!-- secagg-scaling:start -->", "<!-- secagg-scaling:end -->"

# secagg-v1 (main at 27eb889 and 9214a93, the same SecAgg code), the same command at
# d = 10^4 on the same 2-core machine, the serial simulator:
# n = 1000 and 2000 measured in the session that built secagg-v2 (1-minute load average 4
# to 6: three other sessions shared the cores; CPU from /usr/bin/time -v), and the
# figures of issue 19 (load not recorded).
V1_REFERENCE: list[dict[str, Any]] = [
    {
        "clients": 1000,
        "source": "secagg-v2 session",
        "wall_seconds": 64.9,
        "cpu_seconds": 27.0,
        "client_seconds": 0.0246,
        "server_seconds": 1.63,
        "bytes_down_per_client": 16856,
        "peak_rss_mb": 242,
    },
    {
        "clients": 2000,
        "source": "secagg-v2 session",
        "wall_seconds": 204.3,
        "cpu_seconds": 104.2,
        "client_seconds": 0.0496,
        "server_seconds": 3.96,
        "bytes_down_per_client": 24096,
        "peak_rss_mb": 506,
    },
    {
        "clients": 1000,
        "source": "issue 19",
        "wall_seconds": 19.9,
        "cpu_seconds": None,
        "client_seconds": 0.018,
        "server_seconds": 1.11,
        "bytes_down_per_client": 16856,
        "peak_rss_mb": 250,
    },
    {
        "clients": 2000,
        "source": "issue 19",
        "wall_seconds": 78.3,
        "cpu_seconds": None,
        "client_seconds": 0.038,
        "server_seconds": 2.50,
        "bytes_down_per_client": 24096,
        "peak_rss_mb": 520,
    },
    {
        "clients": 4000,
        "source": "issue 19",
        "wall_seconds": 397.8,
        "cpu_seconds": None,
        "client_seconds": 0.097,
        "server_seconds": 7.63,
        "bytes_down_per_client": 38943,
        "peak_rss_mb": 1300,
    },
]


def measure(n: int, dim: int) -> dict[str, Any]:
    """One round at ``n`` clients in a child process: its JSON report, CPU and peak RSS."""
    argv = [sys.executable, "-m", "secfl.cli", *COMMAND.format(n=n, d=dim).split()[1:]]
    load = os.getloadavg()
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # the child and the workers it waited for
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{argv} exited with {child.returncode}")
    report: dict[str, Any] = json.loads(out)
    from secfl.protocols.graphs import plan_secagg_plus

    plan = plan_secagg_plus(n, dropout=0.1, corrupt=0.05)
    return {
        **report,
        "degree": plan.degree,
        "threshold": plan.threshold,
        "process_seconds": time.perf_counter() - t0,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "load_average_before": list(load),
        "load_average_after": list(os.getloadavg()),
    }


def exponent(rows: Sequence[dict[str, Any]], field: str) -> float:
    """The least-squares slope of log(field) against log(n): cost ~ n^slope."""
    pts = [(r["clients"], r[field]) for r in rows if r[field]]
    if len(pts) < 2:
        return float("nan")
    xs = [math.log(n) for n, _ in pts]
    ys = [math.log(v) for _, v in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _ratio(rows: list[dict[str, Any]], field: str, lo: int, hi: int) -> str:
    by_n = {r["clients"]: r[field] for r in rows}
    if lo not in by_n or hi not in by_n or not by_n[lo]:
        return "-"
    return f"{by_n[hi] / by_n[lo]:.2f}"


def section(data: dict[str, Any]) -> list[str]:
    """The measured section of ``scaling.md`` (markdown lines, markers included)."""
    rows = data["rows"]
    loads = [r["load_average_before"][0] for r in rows] + [r["load_average_after"][0] for r in rows]
    largest = max(r["clients"] for r in rows)
    lines = [
        START,
        f"## Measured: SecAgg+ at n = {rows[0]['clients']:,} .. {largest:,} (secagg-v2)",
        "",
        f"`{COMMAND.format(n='N', d=data['dim'])}`, one child process per n on the default "
        f"engine ({rows[0]['workers']} worker processes; the server runs in the child and "
        "hands its mask removal to the workers), written by `python -m "
        f"benchmarks.secagg_scaling` on {data['date']} (git {data['git_commit']}). Machine: "
        f"{data['cores']} cores, 1-minute load average {min(loads):.1f} to {max(loads):.1f} "
        "before and after the runs (other sessions share the cores, so wall seconds vary by "
        "10-20% between runs; CPU seconds less). **CPU s**: the child's and its workers' "
        "user + system time; **client s** and **server s**: the per-party thread CPU time "
        "the simulator reports (the server's includes its work on the workers); **driver "
        "peak** and **worker peak**: each process's own peak resident memory (VmHWM). "
        "Degree k and threshold t from "
        "`plan_secagg_plus(n, dropout=0.1, corrupt=0.05)`.",
        "",
        "| n | k | t | correct | wall s | CPU s | client s (mean / p95) | server s "
        "| bytes down / client | bytes up / client | driver peak MB | worker peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        workers = ", ".join(f"{b / 2**20:,.0f}" for b in r["worker_peak_rss_bytes"]) or "-"
        lines.append(
            f"| {r['clients']:,} | {r['degree']} | {r['threshold']} | {r['correct']} "
            f"| {r['wall_seconds']:.1f} | {r['cpu_seconds']:.1f} "
            f"| {r['client_seconds']:.4f} / {r['client_seconds_p95']:.4f} "
            f"| {r['server_seconds']:.2f} | {r['bytes_down_per_client']:,.0f} "
            f"| {r['bytes_up_per_client']:,.0f} | {r['peak_rss_bytes'] / 2**20:,.0f} | {workers} |"
        )
    lines += [
        "",
        f"Fitted exponents (cost ~ n^e, least squares on log-log over the {len(rows)} rows):",
        "",
        "| cost | e | n = 10^4 / 10^3 |",
        "|---|---|---|",
    ]
    for field, label in FITTED:
        ratio = _ratio(rows, field, 1000, 10000)
        lines.append(f"| {label} | {exponent(rows, field):.3f} | {ratio} |")
    lines += [
        "",
        "A SecAgg+ client's cost grows only with its degree k (the planner's O(log n)); "
        "what it receives and checks concerns its neighbourhood (protocols/secagg-v2.md). "
        "The server's grows as n·d + dropped·k·d + n·k, so about linearly in n; so do the "
        "total CPU and the wall time. The projection below is the fit for the sizes "
        "this machine cannot run (d >= 10^5 at n >= 10^4, n = 10^6).",
        "",
        "Before secagg-v2 (secagg-v1, at d = 10^4 with the serial simulator; a fixed "
        "record, see `V1_REFERENCE` in `benchmarks/secagg_scaling.py`; the same command on "
        "today's code: `engines.md`):",
        "",
        "| n | measured | wall s | CPU s | client s (mean) | server s | bytes down / client "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in V1_REFERENCE:
        cpu = "-" if r["cpu_seconds"] is None else f"{r['cpu_seconds']:.1f}"
        lines.append(
            f"| {r['clients']:,} | {r['source']} | {r['wall_seconds']:.1f} | {cpu} "
            f"| {r['client_seconds']:.4f} | {r['server_seconds']:.2f} "
            f"| {r['bytes_down_per_client']:,} | {r['peak_rss_mb']:,} |"
        )
    lines.append(END)
    return lines


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replace the section between the markers in ``path`` (or insert it before the
    projection), leaving the rest of the generated file as it is."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    elif "## Projection" in text:
        head, rest = text.split("## Projection", 1)
        text = head + block + "\n\n## Projection" + rest
    else:
        text = text + ("\n" if text else "") + block + "\n"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.secagg_scaling", description=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 100000])
    ap.add_argument("--dim", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    rows = []
    for n in args.clients:
        print(f"measuring secagg+ n={n} d={args.dim} ...", file=sys.stderr)
        rows.append(measure(n, args.dim))
        print(json.dumps(rows[-1]), file=sys.stderr)
    env = environment()
    data = {
        "date": env["date"],
        "git_commit": env.get("git_commit"),
        "cores": env["cores"],
        "command": COMMAND,
        "dim": args.dim,
        "rows": rows,
        "exponents": {field: exponent(rows, field) for field, _ in FITTED},
        "v1_reference": V1_REFERENCE,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / JSON_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    lines = section(data)
    _rewrite(args.out / "scaling.md", lines)
    print("\n".join(lines))
    return 0 if all(r["correct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
