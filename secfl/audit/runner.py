"""``run_audit``: run the audit suite with a budget and report, per property, what happened.

Behind ``secfl audit [--protocol P] [--examples N] [--seed S] [--json]``. The suite (state
machines, wire fuzzing, statistical checks) lives in :mod:`secfl.audit.properties` and needs
Hypothesis, a development dependency: without it :func:`run_audit` raises
:class:`~secfl.audit.AuditUnavailable` (``pip install 'secfl[dev]'``).
"""

from __future__ import annotations

import secrets
import shlex
import textwrap
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from secfl._text import plural
from secfl.audit._hypothesis import require_hypothesis
from secfl.errors import InvalidArgument
from secfl.protocols.base import PROTOCOLS as _AGGREGATION
from secfl.protocols.paillier_threshold import PROTOCOL_NAME as _PAILLIER_THRESHOLD

__all__ = ["PROTOCOLS", "AuditReport", "PropertyResult", "ProtocolReport", "run_audit"]

PROTOCOLS: tuple[str, ...] = (*_AGGREGATION, _PAILLIER_THRESHOLD)
"""The audited protocols: every aggregation protocol and paillier-sum-v2."""

"""Protocol names :func:`run_audit` knows, in the order it audits them."""

_MAX_COUNTEREXAMPLE = 6000
_TABLE_WIDTH = 120
_SEED_RANGE = 2**32


@dataclass(frozen=True)
class PropertyResult:
    """One property's outcome.

    ``examples``: Hypothesis examples run (statistical checks: trials); ``steps``: state-
    machine rules run (0 for other properties); ``counterexample``: ``None`` when it
    passed, else the error and the minimized failing case Hypothesis found (the steps of a
    state machine, or the arguments of a property), as text.
    """

    name: str
    checked: str
    examples: int
    steps: int
    passed: bool
    counterexample: str | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "checked": self.checked,
            "examples": self.examples,
            "steps": self.steps,
            "passed": self.passed,
            "counterexample": self.counterexample,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ProtocolReport:
    """Every property of one protocol."""

    name: str
    properties: tuple[PropertyResult, ...]

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.properties)


@dataclass(frozen=True)
class AuditReport:
    """What :func:`run_audit` ran; ``passed`` is true iff every property passed.

    ``seed``: the seed the Hypothesis properties ran with; ``seed_drawn``: ``run_audit``
    drew it because none was given (the statistical checks then ran on their fixed seed 0).
    """

    protocols: tuple[ProtocolReport, ...]
    examples: int
    seed: int | None
    seconds: float = field(default=0.0)
    seed_drawn: bool = False

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.protocols)

    @property
    def replay_command(self) -> str | None:
        """The ``secfl audit`` command line that runs the same examples again (``None``
        without a seed)."""
        if self.seed is None:
            return None
        words = ["secfl", "audit"]
        names = [p.name for p in self.protocols]
        if names != list(PROTOCOLS):
            for name in names:
                words += ["--protocol", name]
        words += ["--examples", str(self.examples), "--seed", str(self.seed)]
        return shlex.join(words)

    def to_json(self) -> dict[str, Any]:
        """``{"protocols": {name: {"properties": [...]}}, "passed": bool}`` (plus the
        budget, the seed, the command that replays it and the time taken)."""
        return {
            "protocols": {
                p.name: {
                    "properties": [r.to_json() for r in p.properties],
                    "passed": p.passed,
                }
                for p in self.protocols
            },
            "passed": self.passed,
            "examples": self.examples,
            "seed": self.seed,
            "seed_drawn": self.seed_drawn,
            "replay": self.replay_command,
            "seconds": round(self.seconds, 3),
        }

    def format_text(self) -> str:
        """A table, one row per property, then every counterexample in full."""
        rows = [("protocol", "property", "examples", "steps", "result", "checked")]
        for p in self.protocols:
            for r in p.properties:
                result = "pass" if r.passed else "FAIL"
                steps = str(r.steps) if r.steps else "-"
                rows.append((p.name, r.name, str(r.examples), steps, result, r.checked))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        indent = sum(widths) + 2 * 5
        wrap = max(40, _TABLE_WIDTH - indent)
        lines = []
        for k, row in enumerate(rows):
            cells = "  ".join(row[i].ljust(widths[i]) for i in range(5))
            checked = textwrap.wrap(row[5], wrap) or [""]
            lines.append(f"{cells}  {checked[0]}".rstrip())
            lines += [" " * indent + more for more in checked[1:]]
            if k == 0:
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
        failed = [(p.name, r) for p in self.protocols for r in p.properties if not r.passed]
        verdict = (
            "PASSED" if self.passed else f"FAILED ({plural(len(failed), 'property', 'properties')})"
        )
        seed = "random" if self.seed is None else str(self.seed)
        if self.seed_drawn:
            seed += ", drawn"
        lines.append("")
        lines.append(
            f"secfl audit: {verdict} in {self.seconds:.1f} s "
            f"(budget {plural(self.examples, 'example')} per property, seed {seed})"
        )
        if self.replay_command is not None:
            lines.append(f"replay: {self.replay_command}")
        for name, r in failed:
            lines.append("")
            lines.append(f"== counterexample: {name} / {r.name}")
            lines.append(r.counterexample or "")
        return "\n".join(lines)


def _counterexample(error: BaseException) -> str:
    notes = getattr(error, "__notes__", None) or []
    text = f"{type(error).__name__}: {error}"
    if not isinstance(error, AssertionError) and error.__traceback__ is not None:
        # An exception that escaped a session: say where it was raised.
        where = traceback.extract_tb(error.__traceback__)[-1]
        text += f"\n  raised at {where.filename}:{where.lineno} in {where.name}"
    if notes:
        text += "\n" + "\n".join(str(n) for n in notes)
    if len(text) > _MAX_COUNTEREXAMPLE:
        text = text[: _MAX_COUNTEREXAMPLE // 2] + "\n[...]\n" + text[-_MAX_COUNTEREXAMPLE // 2 :]
    return text


def run_audit(
    *,
    protocols: Sequence[str] | None = None,
    examples: int = 50,
    seed: int | None = None,
) -> AuditReport:
    """Run the audit suite and report every property (it does not raise on a failure).

    ``protocols``: names from :data:`PROTOCOLS` (default: all). ``examples``: Hypothesis
    examples per property (state machines run up to ``properties.STEPS`` rules each;
    statistical checks run ``examples // 10`` (SecAgg) or ``examples // 50`` (Paillier)
    fixed-seed trials, capped). ``seed``: makes the run reproducible. ``None`` (fresh
    examples each run) draws one, reported as :attr:`AuditReport.seed` with
    ``seed_drawn=True``, so that :attr:`AuditReport.replay_command` runs the same examples
    again. The statistical checks always use fixed seeds: derived from ``seed`` when one is
    given, else from 0 (so a drawn seed never makes them flaky).

    Raises :class:`~secfl.errors.InvalidArgument` for an unknown protocol or a budget
    below 1, and :class:`~secfl.audit.AuditUnavailable` without Hypothesis.
    """
    names = list(PROTOCOLS if protocols is None else protocols)
    if isinstance(protocols, str):
        raise InvalidArgument(f"protocols must be a sequence of names, e.g. [{protocols!r}]")
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown or not names:
        raise InvalidArgument(f"unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)}")
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise InvalidArgument(f"examples must be an integer >= 1, got {examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidArgument(f"seed must be None or an integer >= 0, got {seed!r}")
    require_hypothesis()
    from secfl.audit.properties import Budget, Tally, audit_properties

    seed_drawn = seed is None
    if seed is None:
        seed = secrets.randbelow(_SEED_RANGE)
    budget = Budget(examples=examples, seed=seed, stats_seed=0 if seed_drawn else seed)
    started = time.perf_counter()
    reports = []
    for name in dict.fromkeys(names):
        results = []
        for prop in audit_properties(name):
            tally = Tally()
            t0 = time.perf_counter()
            counterexample = None
            try:
                prop.run(budget, tally)
            except Exception as e:  # a failed property, with Hypothesis' minimized case
                counterexample = _counterexample(e)
            results.append(
                PropertyResult(
                    name=prop.name,
                    checked=prop.checked,
                    examples=tally.examples,
                    steps=tally.steps,
                    passed=counterexample is None,
                    counterexample=counterexample,
                    seconds=time.perf_counter() - t0,
                )
            )
        reports.append(ProtocolReport(name, tuple(results)))
    return AuditReport(
        tuple(reports), examples, seed, time.perf_counter() - started, seed_drawn=seed_drawn
    )
