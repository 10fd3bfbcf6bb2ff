"""``secfl simulate`` on each engine: wall, CPU and peak memory of whole rounds.

``python -m benchmarks.engines`` runs ``secfl simulate --protocol secagg+ --dim 10000
--dropout 0.1 --dropout-phase mask --seed 5 --json`` for each n and engine in a fresh
process (so peak memory is the round's), and writes ``docs/benchmarks/engines.json`` and
``engines.md``; ``scaling.md`` shows the table too (:func:`markdown_section`).

Reported per run: wall seconds of the whole command (start-up, workers' start-up and the
round); CPU seconds of the command and every process it waited for (its workers), from
``getrusage(RUSAGE_CHILDREN)``; the round's own figures from ``--json`` (mean client CPU,
server CPU, bytes); peak resident memory of the driver and of each worker (``VmHWM``).
The load average before and after each run says how much other work shared the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.runner import OUT_DIR, environment

COMMAND = [
    "simulate",
    "--protocol",
    "secagg+",
    "--dim",
    "10000",
    "--dropout",
    "0.1",
    "--dropout-phase",
    "mask",
    "--seed",
    "5",
    "--json",
]
NAME = "engines"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants now (Linux ``/proc``; 0 elsewhere)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def speed_gauge() -> float:
    """Microseconds per X25519 agreement on one core now (median of 5 batches of 400): the
    machine's speed at the moment a row starts. A SecAgg client's time is about half such
    agreements, so on a shared machine whose speed drifts, wall and CPU seconds read
    against this gauge compare across rows and runs."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    a, b = X25519PrivateKey.generate(), X25519PrivateKey.generate().public_key()
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(400):
            a.exchange(b)
        batches.append((time.perf_counter() - t0) / 400 * 1e6)
    return sorted(batches)[2]


def run_one(n: int, engine: str, *, limit: float, workers: int | None = None) -> dict[str, Any]:
    """One ``secfl simulate`` round in a fresh process; ``finished`` False past ``limit`` s.

    The resident memory of the command and its workers together is sampled every second
    (``tree_peak_rss_bytes``), also for a run stopped at the limit."""
    argv = [sys.executable, "-m", "secfl.cli", *COMMAND, "--clients", str(n), "--engine", engine]
    if workers is not None:
        argv += ["--workers", str(workers)]
    row: dict[str, Any] = {"n": n, "engine": engine, "load_before": os.getloadavg()}
    row["x25519_us"] = speed_gauge()
    cpu0, t0 = _cpu_children(), time.perf_counter()
    peak = 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                peak = max(peak, _tree_rss(proc.pid))
                if time.perf_counter() - t0 > limit:
                    proc.kill()
                    proc.communicate()
                    row.update(
                        finished=False,
                        limit_seconds=limit,
                        load_after=os.getloadavg(),
                        tree_peak_rss_bytes=peak,
                    )
                    return row
    row["wall_seconds"] = time.perf_counter() - t0
    row["cpu_seconds"] = _cpu_children() - cpu0
    row["load_after"] = os.getloadavg()
    row["tree_peak_rss_bytes"] = peak
    if proc.returncode not in (0, 1):
        row.update(finished=False, error=stderr.strip()[-2000:])
        return row
    row["finished"] = True
    row["round"] = json.loads(stdout)
    return row


def _mb(b: float | None) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f}"


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    out = [
        "| n | engine | workers | wall s | CPU s (all processes) | client CPU s (mean) | "
        "server CPU s | bytes down / client | driver peak MiB | worker peak MiB (each) | "
        "all processes MiB (sampled peak) | correct | load avg before -> after | "
        "X25519 µs (speed gauge) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gauge = f"{r['x25519_us']:.1f}" if "x25519_us" in r else "-"
        load = f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} | {gauge}"
        if not r["finished"]:
            why = r.get("error", f"not finished in {r.get('limit_seconds', 0):.0f} s")
            out.append(
                f"| {r['n']:,} | {r['engine']} | | {why} | | | | | | | "
                f"{_mb(r.get('tree_peak_rss_bytes'))} | | {load} |".replace("\n", " ")
            )
            continue
        g = r["round"]
        workers = g.get("worker_peak_rss_bytes") or []
        out.append(
            f"| {r['n']:,} | {r['engine']} | {g['workers']} | {r['wall_seconds']:.1f} | "
            f"{r['cpu_seconds']:.1f} | {g['client_seconds']:.4f} | {g['server_seconds']:.2f} | "
            f"{g['bytes_down_per_client']:,.0f} | {_mb(g['peak_rss_bytes'])} | "
            f"{', '.join(_mb(w) for w in workers) or '-'} | "
            f"{_mb(r.get('tree_peak_rss_bytes'))} | {g['correct']} | {load} |"
        )
    return out


def markdown_section(path: Path) -> str:
    """The engines table for ``scaling.md``, from ``engines.json`` (empty if absent)."""
    if not path.exists():
        return ""
    data = json.loads(path.read_text())
    env = data["environment"]
    lines = [
        "## Measured: whole rounds on each simulator engine",
        "",
        f"`secfl {' '.join(COMMAND)} --clients n --engine E`, each in a fresh "
        f"process, by `python -m benchmarks.engines` on {env['date']} (git "
        f"{env['git_commit']}; {env['cpu_model']}, {env['cores']} cores). Wall seconds are "
        "the whole command; CPU seconds add up the driver and its workers. The load average "
        "shows the other work on the machine: on a shared machine wall time depends on it, "
        "CPU seconds much less. See [engines.md](engines.md).",
        "",
        *table(data["rows"]),
        "",
    ]
    return "\n".join(lines)


def markdown(data: dict[str, Any]) -> str:
    env = data["environment"]
    lines = [
        "# Simulator engines: serial and parallel rounds",
        "",
        f"Generated by `python -m benchmarks.engines` on {env['date']} (git "
        f"{env['git_commit']}). Machine: {env['cpu_model']}, {env['cores']} cores, "
        f"{(env['memory_bytes'] or 0) / 2**30:.0f} GiB RAM; Python {env['python']}.",
        "",
        f"Command: `secfl {' '.join(COMMAND)} --clients n --engine E` in a fresh "
        "process per row. **wall s**: the whole command, Python start-up and the workers' "
        "start-up included. **CPU s**: user + system seconds of the command and of the worker "
        "processes it waited for. **client CPU s** and **server CPU s**: the round's own "
        "measurement (thread CPU time around each session call, in the process that ran the "
        "session). **driver peak**: the process running the server; **worker peak**: each "
        "worker process holding its shard of client sessions (both from `VmHWM`); **all "
        "processes**: the largest sum of the resident memory of the command and its "
        "workers, sampled every second (also for a run stopped at its time limit). "
        "**load avg**: 1-minute load average before and after the row; the machine's "
        "other work shared its cores. **X25519 µs**: one X25519 agreement on one core just "
        "before the row (:func:`speed_gauge`), the machine's speed at that moment: this "
        "virtual machine's speed drifts by 25% or more within an hour at the same load, and "
        "wall and CPU seconds move with it.",
        "",
        *table(data["rows"]),
        "",
        data.get("notes", ""),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__)
    p.add_argument("--clients", type=int, nargs="+", default=[1000, 4000, 10000])
    p.add_argument("--engines", nargs="+", default=["serial", "processes"])
    p.add_argument("--limit", type=float, default=1800.0, help="seconds per run at most")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    p.add_argument(
        "--notes", default="", help="a paragraph to print under the table (kept by --append)"
    )
    p.add_argument("--append", action="store_true", help="keep the rows already in engines.json")
    args = p.parse_args(argv)
    path = args.out / f"{NAME}.json"
    rows: list[dict[str, Any]] = []
    notes = args.notes
    if args.append and path.exists():
        previous = json.loads(path.read_text())
        rows, notes = previous["rows"], notes or previous.get("notes", "")
    for n in args.clients:
        for engine in args.engines:
            row = run_one(n, engine, limit=args.limit)
            rows = [r for r in rows if (r["n"], r["engine"]) != (n, engine)] + [row]
            rows.sort(key=lambda r: (r["n"], r["engine"]))
            data = {"environment": environment(), "rows": rows, "notes": notes}
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=1) + "\n")
            (args.out / f"{NAME}.md").write_text(markdown(data))
            print(table([row])[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
