"""Shared by the vector generators: deterministic JSON, and the write / ``--check`` CLI."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def render(obj: Any) -> str:
    """Deterministic JSON: indent 2, sorted keys, no NaN literals, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def main(
    prog: str,
    vector_dir: Path,
    generate: Callable[[], dict[str, str]],
    argv: Sequence[str] | None,
    *,
    description: str,
    mismatch: type[Exception],
) -> int:
    """Write the generated files into ``vector_dir``, or with ``--check`` diff against them.

    Exit codes: 0 up to date / written, 1 committed files differ (or an extra file is
    present), 2 the library and the independent reference disagree (``mismatch``).
    """
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--check", action="store_true", help="diff against the committed files")
    args = p.parse_args(argv)
    try:
        files = generate()
    except mismatch as e:
        print(f"{prog}: library and reference disagree: {e}", file=sys.stderr)
        return 2
    if not args.check:
        vector_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (vector_dir / name).write_text(text)
            print(f"wrote {vector_dir.name}/{name} ({len(text)} bytes)")
        return 0
    stale = 0
    present = {q.name for q in vector_dir.glob("*.json")} if vector_dir.exists() else set()
    for extra in sorted(present - set(files)):
        stale += 1
        print(f"{prog}: {extra} is not produced by the generator")
    for name, text in files.items():
        path = vector_dir / name
        old = path.read_text() if path.exists() else ""
        if old != text:
            stale += 1
            diff = difflib.unified_diff(
                old.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"committed/{name}",
                f"generated/{name}",
                n=2,
            )
            sys.stdout.writelines(list(diff)[:200])
    if stale:
        print(f"{prog}: {stale} vector file(s) differ from the generator", file=sys.stderr)
        return 1
    print(f"{prog}: vectors up to date")
    return 0
