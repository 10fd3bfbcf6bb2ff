"""Small helpers for the wording of messages."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` and ``noun``, singular for exactly one: ``plural(1, "client")`` is
    ``"1 client"``, ``plural(3, "entry", "entries")`` is ``"3 entries"``."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"
