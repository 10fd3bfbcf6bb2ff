"""The random generator every randomized secfl step takes: :class:`Rng`.

``Rng()`` is seeded from the operating system (``os.urandom``): use it in production.
``Rng(seed=...)`` with 32 bytes is deterministic, so a seeded run (masks, noise, client
sampling, stochastic rounding) gives the same bytes again: use it for tests, benchmarks and
reproducible experiments, **never in production** -- whoever knows the seed can recompute
every mask and noise draw, which removes the protection secure aggregation and DP give.

``Rng`` is :class:`secfl.hazmat.rng.Csprng` (AES-256-CTR, forward-only, refuses pickling,
keeps its state out of ``repr``) under its recipe-layer name, so it is accepted wherever
secfl takes an ``rng``.
"""

from __future__ import annotations

from secfl.hazmat.rng import Csprng

__all__ = ["Rng"]

Rng = Csprng
