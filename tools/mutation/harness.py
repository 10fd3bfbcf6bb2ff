"""Run every mutant against two oracles, the audit and the tests, and score each.

Each mutant runs in a fresh temporary copy of the ``secfl`` package (the working tree is never
written to), in a subprocess with ``PYTHONPATH`` pointing at the copy (the worker checks that it
imported the copy). See ``docs/audit.md`` ("Mutation testing") for what is run and how the
outcomes are counted.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.mutation.equivalent import EQUIVALENT
from tools.mutation.mutants import SCOPE, Mutant, apply, enumerate_mutants

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "worker.py"
CACHE = ROOT / ".mutation-cache"

# Tests per mutated module: the unit tests of the module, its known-answer vectors, and the
# property and state-machine tests that drive it. HYPOTHESIS_PROFILE=ci (deterministic).
_AUDIT_CHECKS = "tests/properties/test_audit_checks.py"
_PROTOCOL_TESTS = (
    _AUDIT_CHECKS,
    "tests/unit/test_secagg.py",
    "tests/unit/test_paillier_protocol.py",
    "tests/unit/test_plaintext.py",
    "tests/kat/test_secagg_vectors.py",
    "tests/kat/test_paillier_vectors.py",
)
_SECAGG = (
    _AUDIT_CHECKS,
    "tests/unit/test_secagg.py",
    "tests/unit/test_graphs.py",
    "tests/kat/test_secagg_vectors.py",
    "tests/properties/test_secagg_properties.py",
    "tests/stateful/test_audit_machines.py",
    "tests/properties/test_wire_fuzz.py",
    "tests/unit/test_audit_detects_breakage.py",
)
_PAILLIER = (
    _AUDIT_CHECKS,
    "tests/unit/test_paillier_protocol.py",
    "tests/unit/test_hazmat_paillier.py",
    "tests/kat/test_paillier_vectors.py",
    "tests/unit/test_paillier_keys.py",
    "tests/stateful/test_audit_machines.py",
    "tests/properties/test_wire_fuzz.py",
)
_DP = (
    _AUDIT_CHECKS,
    "tests/unit/test_dp_mechanisms.py",
    "tests/unit/test_dp_clipping.py",
    "tests/unit/test_dp_rotation.py",
    "tests/kat/test_dp_vectors.py",
    "tests/properties/test_dp_properties.py",
    "tests/unit/test_pipeline.py",
    "tests/unit/test_audit_privacy.py",
)
_THRESHOLD = (
    "tests/unit/test_audit_threshold.py",
    "tests/unit/test_paillier_threshold_protocol.py",
    "tests/unit/test_hazmat_threshold_paillier.py",
    "tests/kat/test_threshold_paillier_vectors.py",
    "tests/properties/test_threshold_wire_fuzz.py",
)
TESTS: dict[str, tuple[str, ...]] = {
    "secfl/protocols/_messages.py": (*_PROTOCOL_TESTS, "tests/properties/test_wire_fuzz.py"),
    "secfl/protocols/base.py": (*_PROTOCOL_TESTS, "tests/unit/test_simulator.py"),
    "secfl/protocols/graphs.py": _SECAGG,
    "secfl/protocols/paillier.py": _PAILLIER,
    "secfl/protocols/paillier_messages.py": _PAILLIER,
    "secfl/protocols/paillier_threshold.py": _THRESHOLD,
    "secfl/protocols/paillier_threshold_messages.py": _THRESHOLD,
    "secfl/protocols/plaintext.py": (
        _AUDIT_CHECKS,
        "tests/unit/test_plaintext.py",
        "tests/stateful/test_audit_machines.py",
        "tests/properties/test_wire_fuzz.py",
    ),
    "secfl/protocols/plaintext_messages.py": (_AUDIT_CHECKS, "tests/unit/test_plaintext.py"),
    "secfl/protocols/secagg.py": _SECAGG,
    "secfl/protocols/secagg_messages.py": _SECAGG,
    "secfl/pipeline.py": (
        _AUDIT_CHECKS,
        "tests/unit/test_pipeline.py",
        "tests/unit/test_audit_privacy.py",
        "tests/unit/test_fl_round.py",
    ),
    "secfl/dp/clipping.py": _DP,
    "secfl/dp/mechanisms.py": _DP,
    "secfl/dp/rotation.py": _DP,
    "secfl/dp/_exact.py": _DP,
    "secfl/dp/_poisson.py": _DP,
    "secfl/hazmat/aead.py": ("tests/unit/test_hazmat_aead.py", *_SECAGG[:4]),
    "secfl/hazmat/kex.py": ("tests/unit/test_hazmat_kex.py", *_SECAGG[:4]),
    "secfl/hazmat/paillier.py": _PAILLIER,
    "secfl/hazmat/prg.py": (
        "tests/unit/test_prg_rng.py",
        "tests/kat/test_vectors.py",
        *_SECAGG[:4],
    ),
    "secfl/hazmat/rng.py": ("tests/unit/test_prg_rng.py", "tests/kat/test_vectors.py", *_DP[:4]),
    "secfl/hazmat/shamir.py": ("tests/unit/test_hazmat_shamir.py", *_SECAGG[:4]),
    "secfl/hazmat/sign.py": ("tests/unit/test_hazmat_sign.py", *_SECAGG[:4]),
    "secfl/hazmat/threshold_paillier.py": _THRESHOLD,
}

# Audit protocols to try first for a module (order only: a killed mutant fails sooner).
_FIRST = {
    "secfl/protocols/paillier_threshold": "paillier-threshold",
    "secfl/hazmat/threshold_paillier": "paillier-threshold",
    "secfl/protocols/plaintext": "plain",
    "secfl/protocols/paillier": "paillier",
    "secfl/hazmat/paillier": "paillier",
    "secfl/pipeline": "secagg",
    "secfl/dp/": "secagg",
}

KILLED, SURVIVED, TIMEOUT, NOT_RUN, ERROR = "killed", "survived", "timeout", "not-executed", "error"


@dataclass
class Outcome:
    status: str  # killed | survived | timeout | not-executed | error
    seconds: float
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.status in (KILLED, TIMEOUT)


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted((ROOT / "secfl").rglob("*.py")):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    for path in sorted((ROOT / "tools" / "mutation").glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


_SOURCE = [ROOT]
"""Where mutant trees are copied from: the snapshot :func:`_take_snapshot` made when the run
started, so that editing the working tree during a run (hours) changes none of it."""
_IGNORE = shutil.ignore_patterns("*.pyc", "__pycache__")


def _take_snapshot() -> None:
    """Copy ``secfl``, ``tests``, ``protocols`` and ``pyproject.toml`` once, at the start."""
    snap = Path(tempfile.mkdtemp(prefix="secfl-mutation-snapshot-"))
    atexit.register(shutil.rmtree, snap, ignore_errors=True)
    for name in ("secfl", "tests", "protocols"):
        shutil.copytree(ROOT / name, snap / name, ignore=_IGNORE)
    shutil.copy2(ROOT / "pyproject.toml", snap / "pyproject.toml")
    _SOURCE[0] = snap


def _copy_tree(dest: Path) -> None:
    source = _SOURCE[0]
    shutil.copytree(source / "secfl", dest / "secfl", ignore=_IGNORE)
    for name in ("tests", "protocols", "pyproject.toml"):
        (dest / name).symlink_to(source / name)


def _run(
    mutant: Mutant | None, oracle: str, args: list[str], timeout: float, trace: Path | None = None
) -> tuple[dict[str, Any] | None, float, str]:
    with tempfile.TemporaryDirectory(prefix="secfl-mutant-") as tmp:
        dest = Path(tmp)
        _copy_tree(dest)
        if mutant is not None:
            target = dest / mutant.path
            target.write_bytes(apply(mutant, target.read_bytes()))
        env = dict(os.environ, PYTHONPATH=str(dest), HYPOTHESIS_PROFILE="ci")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cmd = [sys.executable, str(WORKER), oracle, "--expect", str(dest.resolve())]
        if trace is not None:
            cmd += ["--trace", str(trace)]
        cmd += args
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(  # noqa: S603 - our own interpreter and worker
                cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - t0, "timeout"
        seconds = time.perf_counter() - t0
        marker = "@@mutation-result@@ "
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(marker):
                return json.loads(line[len(marker) :]), seconds, ""
        return None, seconds, (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()


def _oracle_args(oracle: str, mutant: Mutant | None, examples: int, seed: int) -> list[str]:
    if oracle == "audit":
        args = ["--examples", str(examples), "--seed", str(seed)]
        if mutant is not None:
            first = [p for prefix, p in _FIRST.items() if mutant.path.startswith(prefix)][:1]
            if mutant.path.startswith("secfl/protocols/secagg") or "graphs" in mutant.path:
                first = ["secagg", "secagg+"]
            if first:
                args += ["--first", ",".join(first)]
        return args
    files = list(dict.fromkeys(TESTS[mutant.path])) if mutant is not None else _all_test_files()
    return ["--", *files]


def _all_test_files() -> list[str]:
    return sorted({f for files in TESTS.values() for f in files})


class Harness:
    def __init__(self, *, examples: int, seed: int, jobs: int, log: Callable[[str], None]) -> None:
        self.examples = examples
        self.seed = seed
        self.jobs = jobs
        self.log = log
        self.digest = _sources_digest()
        self.baseline: dict[str, float] = {}
        # oracle -> part ("<import>", an audit property, or "tests") -> file -> lines
        self.covered: dict[str, dict[str, dict[str, set[int]]]] = {}

    def _cache(self, name: str) -> Path:
        CACHE.mkdir(exist_ok=True)
        return CACHE / f"{name}-{self.digest}-{self.examples}-{self.seed}.json"

    def prepare(self, oracle: str, *, untraced: float | None = None) -> None:
        """Run the oracle once on the unmutated code, traced: it must pass; record its time
        and the lines it executes (cached per source digest).

        ``untraced``: skip that run (it takes long for the tests) and take this many seconds
        as its time; no line counts as never executed then, so every mutant runs."""
        if untraced is not None:
            self.baseline[oracle] = untraced
            self.covered[oracle] = {"all": {}}
            self.log(f"[{oracle}] no baseline run: every mutant runs (timeout from {untraced} s)")
            return
        cache = self._cache(oracle)
        if cache.exists():
            data = json.loads(cache.read_text())
        else:
            self.log(f"[{oracle}] baseline run on the unmutated code (traced) ...")
            trace = cache.with_suffix(".lines")
            plain, seconds, err = _run(None, oracle, self._args(oracle, None), 7200)
            if plain is None or plain.get("killed"):
                raise SystemExit(f"the {oracle} oracle fails on the unmutated code: {plain} {err}")
            traced, _, err = _run(None, oracle, self._args(oracle, None), 7200, trace=trace)
            if traced is None or traced.get("killed"):
                raise SystemExit(f"the traced {oracle} run failed: {traced} {err}")
            lines = json.loads(trace.read_text())
            if oracle == "tests":
                lines = {"tests": lines.get("<import>", {})}
            data = {"seconds": seconds, "lines": lines}
            trace.unlink()
            cache.write_text(json.dumps(data))
        self.baseline[oracle] = float(data["seconds"])
        self.covered[oracle] = {
            part: {f: set(v) for f, v in files.items()} for part, files in data["lines"].items()
        }
        self.log(f"[{oracle}] baseline {self.baseline[oracle]:.1f} s")

    def _args(self, oracle: str, mutant: Mutant | None) -> list[str]:
        return _oracle_args(oracle, mutant, self.examples, self.seed)

    def _timeout(self, oracle: str) -> float:
        return 3 * self.baseline[oracle] + 30

    def parts(self, mutant: Mutant, oracle: str) -> list[str]:
        """The parts of the oracle run (audit properties, or "tests") that execute the
        mutated lines when the code is not mutated."""
        if "all" in self.covered[oracle]:
            return ["all"]
        span = range(mutant.line, mutant.line + mutant.original.count("\n") + 1)
        parts = [
            part
            for part, files in self.covered[oracle].items()
            if any(n in files.get(mutant.path, ()) for n in span)
        ]
        if "<import>" in parts:  # executed while importing: any property may depend on it
            return [p for p in self.covered[oracle] if p != "<import>"]
        return parts

    def run_one(self, mutant: Mutant, oracle: str) -> Outcome:
        parts = self.parts(mutant, oracle)
        if not parts:
            return Outcome(NOT_RUN, 0.0, "the unmutated run never executes this line")
        args = self._args(oracle, mutant)
        if oracle == "audit":
            args = [*args, "--only", ",".join(parts)]
        result, seconds, err = _run(mutant, oracle, args, self._timeout(oracle))
        if err == "timeout":
            return Outcome(TIMEOUT, seconds, f"over {self._timeout(oracle):.0f} s")
        if result is None:
            return Outcome(ERROR, seconds, err[-300:])
        if "refused" in result:
            raise SystemExit(f"worker refused to run: {result['refused']}")
        if result["killed"]:
            detail = result.get("by", "") or f"pytest exit {result.get('exit')}"
            return Outcome(KILLED, seconds, detail)
        return Outcome(SURVIVED, seconds)

    def run_all(self, mutants: list[Mutant], oracle: str) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}

        def one(m: Mutant) -> tuple[str, Outcome]:
            return m.id, self.run_one(m, oracle)

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for i, (mid, outcome) in enumerate(pool.map(one, mutants), 1):
                out[mid] = outcome
                self.log(
                    f"[{oracle} {i}/{len(mutants)}] {outcome.status:12} {outcome.seconds:6.1f}s "
                    f"{mid} {outcome.detail[:80]}"
                )
        return out


def summarize(
    mutants: list[Mutant], results: dict[str, dict[str, Outcome]]
) -> tuple[str, dict[str, Any]]:
    """The markdown table per module, the scores, and the survivors."""
    audit, tests = results.get("audit", {}), results.get("tests", {})
    rows = []
    totals: Counter[str] = Counter()
    by_module: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_module.setdefault(m.path, []).append(m)
    for path in SCOPE:
        ms = by_module.get(path, [])
        if not ms:
            continue
        c: Counter[str] = Counter()
        for m in ms:
            eq = m.id in EQUIVALENT
            a = audit.get(m.id)
            t = tests.get(m.id)
            c["mutants"] += 1
            c["equivalent"] += eq
            if a is not None:
                c["audit"] += a.killed
                c["audit_missed"] += (not a.killed) and not eq
            if t is not None:
                c["tests"] += t.killed
                c["tests_missed"] += (not t.killed) and not eq
            if a is not None and t is not None:
                c["only_tests"] += t.killed and not a.killed and not eq
                c["survived"] += not a.killed and not t.killed and not eq
        totals.update(c)
        rows.append((path.removeprefix("secfl/"), c))
    header = (
        "| module | mutants | equivalent | killed by the audit | killed only by the tests "
        "| survived both | missed by the audit | missed by the tests |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for name, c in [*rows, ("**total**", totals)]:
        lines.append(
            f"| {name} | {c['mutants']} | {c['equivalent']} | {c['audit']} | {c['only_tests']} "
            f"| {c['survived']} | {c['audit_missed']} | {c['tests_missed']} |"
        )
    scored = totals["mutants"] - totals["equivalent"]
    scores: dict[str, Any] = {"mutants": totals["mutants"], "equivalent": totals["equivalent"]}
    for oracle, res in (("audit", audit), ("tests", tests)):
        if res:
            killed = sum(1 for m in mutants if m.id not in EQUIVALENT and res[m.id].killed)
            scores[oracle] = {"killed": killed, "of": scored, "score": killed / max(scored, 1)}
            scores[f"{oracle}_survivors"] = [
                m.id for m in mutants if m.id not in EQUIVALENT and not res[m.id].killed
            ]
    return "\n".join(lines), scores


def _select(mutants: list[Mutant], ns: argparse.Namespace) -> list[Mutant]:
    if ns.module:
        mutants = [m for m in mutants if any(s in m.path for s in ns.module)]
    if ns.id:
        mutants = [m for m in mutants if any(s in m.id for s in ns.id)]
    if ns.sample:
        rnd = random.Random(ns.sample_seed)  # noqa: S311 - picks a reproducible sample
        mutants = sorted(rnd.sample(mutants, min(ns.sample, len(mutants))), key=mutants.index)
    return mutants


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__)
    parser.add_argument("command", choices=["list", "run", "report"])
    parser.add_argument("results", nargs="*", type=Path, help="report: JSON files of runs")
    parser.add_argument("--oracle", choices=["audit", "tests", "both"], default="both")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--module", action="append", help="substring of the mutated file path")
    parser.add_argument("--id", action="append", help="substring of the mutant id")
    parser.add_argument("--sample", type=int, default=0, help="a random sample of this size")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write every outcome as JSON")
    parser.add_argument(
        "--tests-untraced",
        type=float,
        metavar="SECONDS",
        help="tests oracle: no traced baseline run; every mutant runs its tests, with a "
        "timeout of 3 x SECONDS + 30",
    )
    ns = parser.parse_args(list(argv) if argv is not None else None)

    if ns.command == "run":
        _take_snapshot()
    mutants = _select(enumerate_mutants(_SOURCE[0]), ns)
    if ns.command == "list":
        for m in mutants:
            mark = "  (equivalent)" if m.id in EQUIVALENT else ""
            print(f"{m.id}\n    {m.describe()}{mark}")
        print(f"{len(mutants)} mutants")
        return 0

    def log(text: str) -> None:
        print(text, flush=True)

    if ns.command == "report":  # combine the JSON of separate runs (oracles, modules, reruns)
        merged: dict[str, dict[str, Outcome]] = {}
        for path in ns.results:  # a later file's outcome of a mutant replaces an earlier one
            data = json.loads(path.read_text())
            for oracle, outcomes in data["outcomes"].items():
                merged.setdefault(oracle, {}).update(
                    {k: Outcome(v[0], v[1], v[2]) for k, v in outcomes.items()}
                )
        known = [m for m in mutants if all(m.id in r for r in merged.values())]
        table, scores = summarize(known, merged)
        print(table)
        for oracle in merged:
            s = scores[oracle]
            print(f"{oracle}: killed {s['killed']} of {s['of']} = {100 * s['score']:.1f}%")
            for mid in scores[f"{oracle}_survivors"]:
                print(f"    {oracle} missed: {mid}")
        if ns.out:  # the merged outcomes, in the layout of a run's JSON
            outcomes = {
                o: {k: [v.status, v.seconds, v.detail] for k, v in r.items()}
                for o, r in merged.items()
            }
            merged_from = [str(path) for path in ns.results]
            ns.out.write_text(
                json.dumps(
                    {"merged_from": merged_from, "scores": scores, "outcomes": outcomes}, indent=1
                )
                + "\n"
            )
        return 0

    harness = Harness(examples=ns.examples, seed=ns.seed, jobs=ns.jobs, log=log)
    oracles = ["audit", "tests"] if ns.oracle == "both" else [ns.oracle]
    results: dict[str, dict[str, Outcome]] = {}
    timings: dict[str, float] = {}
    for oracle in oracles:
        harness.prepare(oracle, untraced=ns.tests_untraced if oracle == "tests" else None)
        t0 = time.perf_counter()
        results[oracle] = harness.run_all(mutants, oracle)
        timings[oracle] = time.perf_counter() - t0
    table, scores = summarize(mutants, results)
    print()
    print(table)
    print()
    for oracle in oracles:
        s = scores[oracle]
        statuses = Counter(o.status for o in results[oracle].values())
        what = (
            f"secfl audit --examples {ns.examples} --seed {ns.seed}"
            if oracle == "audit"
            else "pytest -x (tests mapped to the mutated module)"
        )
        print(
            f"{oracle} oracle ({what}): killed {s['killed']} of {s['of']} non-equivalent mutants "
            f"= {100 * s['score']:.1f}%  [{dict(statuses)}; baseline run "
            f"{harness.baseline[oracle]:.1f} s; all mutants {timings[oracle] / 60:.1f} min, "
            f"{ns.jobs} jobs]"
        )
        for mid in scores[f"{oracle}_survivors"]:
            print(f"    {oracle} missed: {mid}")
    if ns.out:
        ns.out.write_text(
            json.dumps(
                {
                    "examples": ns.examples,
                    "seed": ns.seed,
                    "baseline_seconds": harness.baseline,
                    "scores": scores,
                    "minutes": {k: round(v / 60, 2) for k, v in timings.items()},
                    "outcomes": {
                        o: {k: [v.status, round(v.seconds, 1), v.detail] for k, v in r.items()}
                        for o, r in results.items()
                    },
                },
                indent=1,
            )
        )
    return 0
