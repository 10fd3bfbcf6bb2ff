"""Mutants argued to be equivalent: no observable effect on what any party learns or computes.

Each entry is a mutant id (see :mod:`tools.mutation.mutants`) and the one-line argument.
"""

EQUIVALENT: dict[str, str] = {}
