"""Drives protocol sessions: the in-memory simulator (embedded default)."""

from secfl.runtime.simulator import SimulationReport, simulate_round

__all__ = ["SimulationReport", "simulate_round"]
