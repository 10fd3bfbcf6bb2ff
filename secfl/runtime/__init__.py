"""Drives sessions: the round driver, the engines that run client sessions (this process,
local worker processes, Ray) and synthetic scenarios."""

from secfl.runtime.engines import Engine
from secfl.runtime.scenario import Scenario, run_scenario
from secfl.runtime.simulator import SimulationReport, simulate_round

__all__ = ["Engine", "Scenario", "SimulationReport", "run_scenario", "simulate_round"]
