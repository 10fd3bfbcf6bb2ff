"""Simulation engines: the same seeded round on every engine, typed option errors, and lost
workers reported as :class:`EngineError` (never a hang).

The worker processes are started with ``spawn``: each imports secfl (and this module, for
the recipes below) afresh, about a second per test on a loaded machine.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from faulty_clients import FaultyClients

from secfl.errors import EngineError, InvalidArgument, MissingDependency
from secfl.protocols.base import ClientId
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.runtime import scenario as scenario_module
from secfl.runtime.engines import InProcessPool, ProcessPool
from secfl.runtime.scenario import Scenario, report_json, run_scenario
from secfl.runtime.simulator import SimulationReport, drive_round


def same_round(a: SimulationReport, b: SimulationReport) -> None:
    """Everything but the clocks and the engine is the same."""
    assert a.result is not None
    assert b.result is not None
    assert np.array_equal(a.result.aggregate, b.result.aggregate)
    assert a.result.aggregate.dtype == b.result.aggregate.dtype
    assert (a.result.survivors, a.result.dropped) == (b.result.survivors, b.result.dropped)
    assert (a.aborted, a.correct) == (b.aborted, b.correct)
    assert a.refusals == b.refusals
    assert a.rejected == b.rejected
    assert a.bytes_up == b.bytes_up
    assert a.bytes_down == b.bytes_down
    assert a.party_bytes == b.party_bytes
    assert len(a.client_seconds) == len(b.client_seconds)


@pytest.mark.parametrize(
    ("sc", "workers"),
    [
        (Scenario(protocol="plain", clients=9, dim=7, dropout=0.3, seed=2), 2),
        (
            Scenario(
                protocol="secagg+", clients=40, dim=33, dropout=0.1, dropout_phase="mask", seed=5
            ),
            3,
        ),
        (
            Scenario(
                protocol="secagg", clients=8, dim=5, dropout=0.25, dropout_phase="unmask", seed=7
            ),
            2,
        ),
        (
            Scenario(
                protocol="secagg",
                clients=7,
                dim=4,
                dropout=0.15,
                dropout_phase="consistency",
                seed=1,
                active=True,
            ),
            2,
        ),
    ],
    ids=["plain", "secagg+", "secagg", "secagg-active"],
)
def test_a_seeded_round_is_the_same_on_serial_and_processes(sc: Scenario, workers: int) -> None:
    serial, _ = run_scenario(sc, engine="serial")
    parallel, _ = run_scenario(sc, engine="processes", workers=workers)
    assert serial.correct
    same_round(serial, parallel)
    assert (serial.engine, serial.workers) == ("serial", 1)
    assert (parallel.engine, parallel.workers) == ("processes", workers)
    assert len(parallel.worker_peak_rss_bytes) == workers
    assert serial.worker_peak_rss_bytes == ()
    again, _ = run_scenario(sc, engine="serial")
    same_round(serial, again)


def test_paillier_round_is_the_same_on_serial_and_processes(paillier_keys, monkeypatch):
    """The key holder stays with the server; workers get the public key only."""
    monkeypatch.setattr(scenario_module, "generate_paillier_keypair", lambda bits: paillier_keys)
    sc = Scenario(protocol="paillier", clients=5, dim=40, dropout=0.2, seed=3)
    serial, _ = run_scenario(sc, engine="serial")
    parallel, _ = run_scenario(sc, engine="processes", workers=2)
    assert serial.correct
    same_round(serial, parallel)
    assert parallel.party_seconds  # the key holder ran here


def test_a_worker_count_above_the_clients_is_capped() -> None:
    sc = Scenario(protocol="plain", clients=2, dim=3, seed=1)
    report, _ = run_scenario(sc, engine="processes", workers=5)
    assert report.correct
    assert report.workers == 2


def test_unseeded_rounds_differ_and_are_correct() -> None:
    sc = Scenario(protocol="secagg+", clients=12, dim=6, dropout=0.2, dropout_phase="mask")
    a, _ = run_scenario(sc, engine="processes", workers=2)
    b, _ = run_scenario(sc, engine="serial")
    assert a.correct
    assert b.correct
    assert a.result is not None
    assert b.result is not None
    assert not np.array_equal(a.result.aggregate, b.result.aggregate)


def test_report_json_names_the_engine_and_memory() -> None:
    report, _ = run_scenario(Scenario(protocol="plain", clients=3, dim=2, seed=1), engine="serial")
    out = report_json(report)
    assert (out["engine"], out["workers"], out["worker_peak_rss_bytes"]) == ("serial", 1, [])
    if sys.platform.startswith("linux"):
        assert out["peak_rss_bytes"] > 0


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"engine": "threads"}, "unknown engine 'threads'; choose from"),
        ({"engine": "serial", "workers": 2}, "workers goes with engine 'processes' or 'ray'"),
        ({"engine": "processes", "workers": 0}, "workers must be an integer >= 1"),
        ({"engine": "processes", "workers": True}, "workers must be an integer >= 1"),
        ({"engine": "processes", "address": "head:6379"}, "it goes with engine 'ray'"),
        ({"engine": "processes", "timeout": 0}, "timeout must be a number of seconds > 0"),
    ],
)
def test_engine_options_are_checked_before_the_round(options, match) -> None:
    with pytest.raises(InvalidArgument, match=match):
        run_scenario(Scenario(protocol="plain", clients=2, dim=2), **options)


def test_the_ray_engine_without_ray_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'secfl\[ray\]'"):
        run_scenario(Scenario(protocol="plain", clients=2, dim=2), engine="ray")


# ----------------------------------------------------------------------------- faults
CLIENTS = list(range(1, 8))


def run_faulty(
    faults: dict[ClientId, str],
    *,
    serial: bool = False,
    workers: int = 2,
    timeout: float | None = None,
) -> SimulationReport:
    recipe = FaultyClients(faults)
    pool = (
        InProcessPool(recipe, 1, CLIENTS)
        if serial
        else ProcessPool(recipe, 1, CLIENTS, workers=workers, timeout=timeout)
    )
    with pool:
        return drive_round(
            PlaintextProtocol(bits=16), pool, CLIENTS, dim=3, dropouts={4: "input"}, round_id=1
        )


def test_refusals_and_rejections_are_the_same_in_workers() -> None:
    faults = {2: "refuse", 5: "garbage"}
    serial = run_faulty(faults, serial=True)
    parallel = run_faulty(faults, workers=3)
    assert serial.correct
    assert set(serial.refusals) == {2}
    assert "ProtocolAbort: this client refuses on purpose" in serial.refusals[2]
    assert set(serial.rejected) == {5}
    same_round(serial, parallel)


def test_a_worker_that_dies_ends_the_round_with_engine_error() -> None:
    start = time.monotonic()
    died = r"worker \d \(pid \d+\) died during the round: it exited with status 3"
    with pytest.raises(EngineError, match=died):
        run_faulty({3: "crash"})
    assert time.monotonic() - start < 20


def test_an_unexpected_exception_in_a_worker_comes_back_with_its_traceback() -> None:
    with pytest.raises(EngineError, match=r"(?s)worker \d failed:.*KeyError: 'a bug inside"):
        run_faulty({6: "bug"})


def test_a_worker_that_stops_answering_times_out() -> None:
    start = time.monotonic()
    with pytest.raises(EngineError, match=r"sent no answer within 1 s"):
        run_faulty({1: "hang"}, timeout=1.0)
    assert time.monotonic() - start < 20
