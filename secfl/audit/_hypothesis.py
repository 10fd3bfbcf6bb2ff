"""The audit suite runs on Hypothesis, a development dependency: fail clearly without it."""

from __future__ import annotations

import importlib

from secfl.audit._errors import AuditUnavailable

__all__ = ["require_hypothesis"]


def require_hypothesis() -> None:
    """Raise :class:`AuditUnavailable` unless Hypothesis can be imported."""
    try:
        importlib.import_module("hypothesis")
    except ImportError as e:
        raise AuditUnavailable(
            "the secfl audit suite needs Hypothesis, which is a development dependency: "
            "install it with pip install 'secfl[dev]' (or pip install hypothesis)"
        ) from e
