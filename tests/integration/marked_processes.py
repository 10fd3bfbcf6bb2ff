"""Finding the processes a test started, by an environment variable they all inherit."""

from __future__ import annotations

import os
from pathlib import Path


def marked_pids(name: str, value: str) -> list[int]:
    """Living processes other than this one whose environment holds ``name=value``: those a
    test started with that marker and their descendants, orphaned ones included."""
    pids, needle = [], f"{name}={value}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids
