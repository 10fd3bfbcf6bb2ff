"""SecAgg+ rounds in Flower's simulation engine, beside secfl's in-memory simulator.

``python -m benchmarks.flower_simulation`` runs, for each n of ``--nodes`` (default 100,
500, 1000), the example app (``examples/flower_app``: linear regression, d = 9 floats)
through its ``run_simulation.py``: n virtual SuperNodes on Ray, ``--rounds`` SecAgg+ rounds
of ``SecureAggregation(FedAvg)``, ``floor(dropout * n)`` nodes crashing in each round's
mask phase (after sharing their keys, so the server rebuilds their masks). It measures
wall seconds per round and per phase (``SecureRoundRecord.seconds`` and
``phase_seconds``), the whole run (Ray's start and stop included), the driver's peak RSS
(``VmHWM``: the ServerApp, Flower's in-memory SuperLink state, Ray's driver) and the peak
of the Ray processes' summed PSS (its daemons and ClientApp workers, sampled every 0.5 s
from /proc). Next to it, in the same run, the in-memory simulator (``secfl simulate``'s
:func:`~secfl.runtime.scenario.run_scenario`) on the same n, d, dropout rate and phase,
with the peak RSS of its process. Each measurement is a fresh Python process; ratios
compare the two engines. Writes ``flower-simulation.md`` and ``.json`` into ``--out``
(default: ``docs/benchmarks``).

The first round is reported apart: Ray starts its ClientApp workers and each imports
secfl, Flower and numpy on its first message.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.report import secs
from benchmarks.runner import OUT_DIR, ROOT, environment

APP_DIR = ROOT / "examples" / "flower_app"
PHASES = ("advertise", "share", "mask", "unmask")
PAGE = "flower-simulation"


# ----------------------------------------------------------------------------- sampling
TICK = os.sysconf("SC_CLK_TCK")
DELIVERY = "add_messages_to_queue"
"""The simulation engine's thread that hands stored messages to the Ray workers."""


def _rss_peak() -> int:
    """This process's peak resident set (``VmHWM``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _stat(path: str) -> list[str]:
    """The fields of a /proc ``stat`` file after the command name (``[0]`` is the state)."""
    with open(path) as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu(path: str) -> float:
    """User + system CPU seconds from a /proc ``stat`` file."""
    fields = _stat(path)
    return (int(fields[11]) + int(fields[12])) / TICK


def _descendants(pid: int) -> set[int]:
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int(_stat(f"{entry}/stat")[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Every ``interval`` seconds, from /proc: the summed PSS of this process's descendants
    (Ray's processes: :attr:`peak`, and :attr:`largest` of one), their CPU seconds, and the
    CPU seconds of each of this process's Python threads by name (Python names a thread
    ``Thread-N (target)``), so that the engine's delivery thread can be told apart."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = self.largest = 0
        self.child_cpu: dict[int, float] = {}
        self.thread_cpu: dict[str, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            children = _descendants(os.getpid())
            sizes = [_pss(p) for p in children]
            self.peak = max(self.peak, sum(sizes))
            self.largest = max([self.largest, *sizes])
            for pid in children:
                with contextlib.suppress(OSError, IndexError, ValueError):
                    self.child_cpu[pid] = _cpu(f"/proc/{pid}/stat")
            for thread in threading.enumerate():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    key = f"{thread.name} {thread.native_id}"
                    self.thread_cpu[key] = _cpu(f"/proc/self/task/{thread.native_id}/stat")

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ----------------------------------------------------------------------------- one run
def flower_run(n: int, rounds: int, dropout: float) -> dict[str, Any]:
    """The example app on n virtual SuperNodes (in this process; call it in a fresh one)."""
    sys.path.insert(0, str(APP_DIR))
    import run_simulation  # type: ignore[import-not-found]  # examples/flower_app

    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        settings = {
            "num-server-rounds": rounds,
            "dropout": dropout,
            "fraction-evaluate": 0.0,  # the secure rounds only
            "train-timeout": 3600.0,  # crashed nodes answer at once (an error reply)
            "stage-timeout": 3600.0,
            "result-file": str(result_file),
        }
        run_config = " ".join(
            f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in settings.items()
        )
        argv = ["--num-supernodes", str(n), "--crash", str(dropout), "--run-config", run_config]
        sampler = Sampler()
        sampler.start()
        t0, cpu0 = time.perf_counter(), time.process_time()
        run_simulation.main(argv)
        total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        sampler.stop()
        result = json.loads(result_file.read_text())
    dropped = math.floor(dropout * n)
    rounds_out = [
        {
            "round": r["round"],
            "seconds": r["seconds"],
            "phase_seconds": r["phase_seconds"],
            "nodes": len(r["nodes"]),
            "survivors": len(r["survivors"]),
            "dropped": len(r["dropped"]),
            "correct": r["aborted"] is None
            and len(r["nodes"]) == n
            and len(r["survivors"]) == n - dropped,
        }
        for r in result["rounds"]
    ]
    return {
        "rounds": rounds_out,
        "run_seconds": total,
        "driver_peak_bytes": _rss_peak(),
        "ray_peak_bytes": sampler.peak,
        "ray_largest_process_bytes": sampler.largest,
        "driver_cpu_seconds": cpu,
        "delivery_cpu_seconds": sum(
            v for k, v in sampler.thread_cpu.items() if f"({DELIVERY})" in k
        ),
        "ray_cpu_seconds": sum(sampler.child_cpu.values()),
    }


def inmemory_run(n: int, dim: int, dropout: float) -> dict[str, Any]:
    """secfl's in-memory simulator on the same round (in this process; a fresh one)."""
    from secfl.runtime.scenario import Scenario, run_scenario

    t0 = time.perf_counter()
    report, _ = run_scenario(
        Scenario(
            protocol="secagg+", clients=n, dim=dim, dropout=dropout, dropout_phase="mask", seed=0
        ),
        engine="serial",  # the in-memory simulator in one process, as the page describes
    )
    return {
        "round_seconds": report.wall_seconds,
        "client_seconds": report.client_seconds_mean,
        "server_seconds": report.server_seconds,
        "survivors": n - report.dropped,
        "correct": report.correct,
        "run_seconds": time.perf_counter() - t0,
        "peak_bytes": _rss_peak(),
    }


def _fresh(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m benchmarks.flower_simulation <args>`` and parse its JSON line."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.flower_simulation", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"ran past {timeout:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit code {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ----------------------------------------------------------------------------- report
def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.0f}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _time_row(n: int, f: dict[str, Any], m: dict[str, Any], load: float) -> str:
    rounds = f["rounds"]
    steady = rounds[1:] or rounds  # the rounds after the first
    times = [r["seconds"] for r in steady]
    later = _mean(times)
    phases = [_mean([r["phase_seconds"].get(p, 0.0) for r in steady]) for p in PHASES]
    correct = all(r["correct"] for r in rounds) and m["correct"]
    return (
        f"| {n} | {secs(rounds[0]['seconds'])} "
        f"| {secs(later)} ({secs(min(times))}-{secs(max(times))}) | "
        + " | ".join(secs(x) for x in phases)
        + f" | {secs(f['run_seconds'])} | {secs(m['round_seconds'])} "
        f"| {later / m['round_seconds']:.1f}x | {'yes' if correct else 'NO'} | {load:.1f} |"
    )


def _resource_row(n: int, f: dict[str, Any], m: dict[str, Any]) -> str:
    cpu, delivery = f["driver_cpu_seconds"], f["delivery_cpu_seconds"]
    memory = f["driver_peak_bytes"] + f["ray_peak_bytes"]
    return (
        f"| {n} | {secs(cpu)} | {secs(delivery)} ({delivery / cpu:.0%}) "
        f"| {secs(f['ray_cpu_seconds'])} | {_mb(f['driver_peak_bytes'])} "
        f"| {_mb(f['ray_peak_bytes'])} | {_mb(f['ray_largest_process_bytes'])} "
        f"| {_mb(m['peak_bytes'])} | {memory / m['peak_bytes']:.1f}x |"
    )


def markdown(results: dict[str, Any]) -> str:
    """The page: the machine and its load, a time table and a resource table, notes."""
    env = results["environment"]
    ls, le = results["load_average"]["start"], results["load_average"]["end"]
    mem = env.get("memory_bytes")
    lines = [
        "# SecAgg+ in Flower's simulation engine",
        "",
        f"Generated by `{results['command']}` on {env['date']} (git {env.get('git_commit')}), "
        f"in {results['elapsed_seconds'] / 60:.1f} min. Machine: {env['cpu_model']}, "
        f"{env['cores']} cores" + (f", {mem / 2**30:.0f} GiB RAM" if mem else "") + "; "
        f"Python {env['python']}, flwr {env['versions'].get('flwr')}, ray "
        f"{results['ray_version']}.",
        "",
        f"Load average (1/5/15 min) {ls[0]:.2f}/{ls[1]:.2f}/{ls[2]:.2f} at the start and "
        f"{le[0]:.2f}/{le[1]:.2f}/{le[2]:.2f} at the end: wall seconds, which this page "
        "reports, move with whatever else runs on the machine.",
        "",
        f"Each row: the example app (`examples/flower_app`, d = {results['dim']} floats), "
        f"{results['rounds']} SecAgg+ rounds over n virtual SuperNodes on Ray (one CPU per "
        f"ClientApp, so {env['cores']} Ray workers), {results['dropout']:.0%} of the nodes "
        "crashing in each round's mask phase; and secfl's in-memory simulator on the same "
        "n, d, dropout rate and phase (one round, every party in one process, one after "
        "the other). See the module docstring of `benchmarks/flower_simulation.py`.",
        "",
        "## Time",
        "",
        "| n | first round s | later rounds s: mean (min-max) | advertise | share | mask "
        "| unmask | whole run s | in-memory round s | Flower / in-memory | correct | load |",
        "|" + "---|" * 12,
    ]
    ok = [r for r in results["rows"] if "error" not in r["flower"] and "error" not in r["inmemory"]]
    lines += [_time_row(r["n"], r["flower"], r["inmemory"], r["load"]) for r in ok]
    lines += [
        "",
        "## CPU and memory",
        "",
        "| n | driver CPU s | of it, the engine's delivery loop | Ray processes CPU s "
        "| driver peak RSS MB | Ray processes peak PSS MB | largest Ray process MB "
        "| in-memory peak RSS MB | memory: Flower / in-memory |",
        "|" + "---|" * 9,
    ]
    lines += [_resource_row(r["n"], r["flower"], r["inmemory"]) for r in ok]
    lines += [""]
    for r in results["rows"]:
        if r not in ok:
            why = r["flower"].get("error") or r["inmemory"].get("error")
            lines += [f"n = {r['n']} did not complete: {why}", ""]
    lines += [
        "* **first round**: includes Ray starting its ClientApp workers, each importing "
        "secfl, Flower and numpy on its first message; **later rounds** are the steady "
        "state. Phase columns are the later rounds' mean wall seconds per phase, from "
        "sending the phase's messages to the last reply (`advertise` carries the training); "
        "the strategy polls for replies every 0.2 s.",
        "* **whole run**: `run_simulation` from call to return (Ray's start and shutdown, "
        "every round).",
        "* **correct**: every Flower round aggregated exactly the n - floor(dropout x n) "
        "nodes that did not crash (none aborted), and the in-memory round's decoded sum "
        "matched its inputs (tests/integration/test_flower_simulation.py checks Flower's "
        "aggregate itself).",
        "* **load**: the 1-minute load average when the row's runs ended (above "
        f"{env['cores']}, the number of cores, other processes were waiting for the CPU too).",
        "* **driver**: the process running `run_simulation` (the ServerApp thread with "
        "secfl's server, Flower's in-memory SuperLink state and its delivery threads, Ray's "
        f"driver). **Delivery loop**: the engine's `{DELIVERY}` thread, which every 0.1 s "
        "asks the SuperLink state for each node's next message; each ask scans every stored "
        "message. **Ray processes**: those Ray started (GCS, raylet, ClientApp workers); CPU "
        "seconds and the peak of their summed proportional set sizes, sampled every 0.5 s "
        "from /proc.",
        "* **in-memory**: `run_scenario` (what `secfl simulate --protocol secagg+ --clients n "
        f"--dim {results['dim']} --dropout {results['dropout']} --dropout-phase mask` runs), "
        "round wall seconds, peak RSS of its whole process. **Ratios**: Flower's later-round "
        "mean over the in-memory round; Flower's driver + Ray peaks over the in-memory peak.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.flower_simulation", description=__doc__)
    ap.add_argument("--nodes", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=1800.0, help="wall seconds per run")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--flower-run", type=int, help=argparse.SUPPRESS)  # one n, this process
    ap.add_argument("--inmemory-run", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    dim = _model_dim()
    if args.flower_run is not None:
        print(json.dumps(flower_run(args.flower_run, args.rounds, args.dropout)))
        return 0
    if args.inmemory_run is not None:
        print(json.dumps(inmemory_run(args.inmemory_run, dim, args.dropout)))
        return 0
    load_start = os.getloadavg()
    env = environment()
    t0 = time.perf_counter()
    rows = []
    common = ["--rounds", str(args.rounds), "--dropout", str(args.dropout)]
    for n in sorted(args.nodes):
        print(f"n = {n}: Flower simulation engine ...", file=sys.stderr)
        flower = _fresh(["--flower-run", str(n), *common], args.timeout)
        print(f"n = {n}: in-memory simulator ...", file=sys.stderr)
        inmemory = _fresh(["--inmemory-run", str(n), *common], args.timeout)
        rows.append({"n": n, "flower": flower, "inmemory": inmemory, "load": os.getloadavg()[0]})
    results = {
        "command": " ".join(["python -m benchmarks.flower_simulation", *(argv or sys.argv[1:])]),
        "environment": env,
        "ray_version": metadata.version("ray"),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "elapsed_seconds": time.perf_counter() - t0,
        "dim": dim,
        "rounds": args.rounds,
        "dropout": args.dropout,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{PAGE}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    page = markdown(results)
    (args.out / f"{PAGE}.md").write_text(page)
    print(page)
    ok = all("error" not in r["flower"] and "error" not in r["inmemory"] for r in rows)
    return 0 if ok else 1


def _model_dim() -> int:
    sys.path.insert(0, str(APP_DIR))
    from secfl_flower_app import task  # type: ignore[import-not-found]

    return sum(int(a.size) for a in task.initial_arrays().values())


if __name__ == "__main__":
    sys.exit(main())
