"""Run one oracle on the ``secfl`` found on ``sys.path`` (a mutated copy); print one JSON line.

    python tools/mutation/worker.py audit --examples N --seed S [--first P,Q] [--trace F]
    python tools/mutation/worker.py tests [--trace F] -- <pytest arguments>

``audit`` runs exactly the properties ``secfl audit --examples N --seed S`` runs, with the same
budget (:func:`secfl.audit.runner.run_audit` with a given seed), and stops at the first failing
property: the audit fails iff one property fails, and each property seeds its own run, so the
order (``--first`` protocols go first) changes only how long a killed mutant takes. ``--only``
runs just the named properties (``protocol/name``; the harness passes those that execute the
mutated line). ``tests`` runs pytest. ``--trace F`` records the lines of ``secfl`` each run
executes (per audit property; ``<import>``: before any) into F as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any


class PerProperty:
    """Lines executed, per audit property (``current``: the property running now)."""

    def __init__(self) -> None:
        self.lines: dict[str, dict[str, set[int]]] = {}
        self.current: dict[str, set[int]] = self.lines.setdefault("<import>", {})


def _tracer(root: str, hits: PerProperty) -> Any:
    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            hits.current.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
        return local

    def call(frame: FrameType, event: str, arg: object) -> Any:
        filename = frame.f_code.co_filename
        if not filename.startswith(root):
            return None
        hits.current.setdefault(filename, set()).add(frame.f_lineno)
        return local

    return call


def _audit(
    examples: int, seed: int, first: list[str], only: set[str] | None, hits: PerProperty | None
) -> dict[str, Any]:
    from secfl.audit.properties import Budget, Tally, audit_properties
    from secfl.audit.runner import PROTOCOLS

    budget = Budget(examples=examples, seed=seed, stats_seed=seed)  # as run_audit(seed=seed)
    order = [p for p in first if p in PROTOCOLS] + [p for p in PROTOCOLS if p not in first]
    ran = 0
    for name in order:
        for prop in audit_properties(name):
            key = f"{name}/{prop.name}"
            if only is not None and key not in only:
                continue
            ran += 1
            if hits is not None:
                hits.current = hits.lines.setdefault(key, {})
            try:
                prop.run(budget, Tally())
            except Exception as e:
                text = f"{type(e).__name__}: {e}".splitlines()
                return {"killed": True, "by": key, "why": text[:3], "ran": ran}
    return {"killed": False, "ran": ran}


def _tests(args: list[str]) -> dict[str, Any]:
    import pytest

    code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *args])
    return {"killed": int(code) != 0, "exit": int(code)}


def main(argv: list[str]) -> int:
    import secfl

    root = str(Path(secfl.__file__).resolve().parent)
    if "--expect" in argv:
        want = argv[argv.index("--expect") + 1]
        if not root.startswith(want):
            print("\n@@mutation-result@@ " + json.dumps({"refused": f"imported secfl from {root}"}))
            return 3
    trace = argv[argv.index("--trace") + 1] if "--trace" in argv else None
    hits = PerProperty()
    if trace:
        tracer = _tracer(root, hits)
        threading.settrace(tracer)
        sys.settrace(tracer)
    t0 = time.perf_counter()
    if argv[0] == "audit":
        examples = int(argv[argv.index("--examples") + 1])
        seed = int(argv[argv.index("--seed") + 1])
        first = argv[argv.index("--first") + 1].split(",") if "--first" in argv else []
        only = set(argv[argv.index("--only") + 1].split(",")) if "--only" in argv else None
        result = _audit(examples, seed, first, only, hits if trace else None)
    else:
        result = _tests(argv[argv.index("--") + 1 :])
    sys.settrace(None)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    if trace:
        base = Path(root).parent
        lines = {
            key: {str(Path(f).relative_to(base)): sorted(v) for f, v in files.items()}
            for key, files in hits.lines.items()
        }
        Path(trace).write_text(json.dumps(lines))
    sys.stdout.flush()
    print("\n@@mutation-result@@ " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
