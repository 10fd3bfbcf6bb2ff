"""Errors of the audit: a view the specification forbids, a missing optional dependency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secfl.errors import SecflError

__all__ = ["AuditFailure", "AuditUnavailable", "Violation"]


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``rule`` names it (see ``docs/audit.md``), ``detail`` says where."""

    rule: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.detail}"


class AuditFailure(SecflError):
    """A recorded round broke a rule of the protocol's specification.

    ``violations`` lists every broken rule found (at least one); the message shows them, one
    per line. Raised by :func:`secfl.audit.check_view`; never returned as ``False``.
    """

    def __init__(self, violations: Sequence[Violation]) -> None:
        if not violations:
            raise ValueError("AuditFailure needs at least one violation")
        self.violations = tuple(violations)
        lines = "\n".join(f"  {v}" for v in self.violations)
        super().__init__(f"{len(self.violations)} audit rule(s) broken:\n{lines}")


class AuditUnavailable(SecflError, ImportError):
    """The audit suite needs an optional dependency (Hypothesis) that is not installed."""
