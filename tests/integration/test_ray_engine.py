"""The Ray engine on a local Ray instance: a seeded SecAgg+ round gives the same round as the
serial engine, an actor that dies ends the round with EngineError (no hang), and Ray is shut
down with every process it started.

``run_scenario(engine="ray", workers=2)`` starts a local Ray instance with 2 CPUs (no
dashboard), ships this checkout's secfl to its workers (``py_modules``), runs the clients in
two actors and shuts Ray down. About 10 s per test on 2 idle cores (Ray's start is most of
it; several times that on a loaded machine); part of ``make test``, skipped without Ray (the
``ray`` extra).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from faulty_clients import FaultyClients  # noqa: E402
from marked_processes import marked_pids  # noqa: E402

from secfl.errors import EngineError  # noqa: E402
from secfl.protocols.plaintext import PlaintextProtocol  # noqa: E402
from secfl.runtime._ray import RayPool  # noqa: E402
from secfl.runtime.scenario import Scenario, run_scenario  # noqa: E402
from secfl.runtime.simulator import drive_round  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]  # faulty_clients, for the actors to import

MARK = "SECFL_RAY_ENGINE_TEST"  # environment marker of every process Ray starts


@pytest.fixture
def ray_cleanup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Ray before; afterwards Ray is down and every process it started (which inherit
    ``MARK``) is gone: checked, and killed by pid if one lingers."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process: the engine would reuse it")
    token = uuid.uuid4().hex
    monkeypatch.setenv(MARK, token)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        yield
    finally:
        if ray.is_initialized():
            ray.shutdown()
        deadline = time.monotonic() + 30.0  # Ray's workers exit a few seconds after it
        while (left := marked_pids(MARK, token)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left behind by Ray: {sorted(left)}"


def test_a_seeded_round_on_local_ray_equals_the_serial_round(ray_cleanup) -> None:
    sc = Scenario(protocol="secagg+", clients=40, dim=64, dropout=0.1, dropout_phase="mask", seed=5)
    serial, _ = run_scenario(sc, engine="serial")
    on_ray, _ = run_scenario(sc, engine="ray", workers=2)
    assert not ray.is_initialized()  # the engine started Ray for the round, and stopped it
    assert serial.correct
    assert on_ray.correct
    assert (on_ray.engine, on_ray.workers) == ("ray", 2)
    assert len(on_ray.worker_peak_rss_bytes) == 2
    assert serial.result is not None
    assert on_ray.result is not None
    assert np.array_equal(serial.result.aggregate, on_ray.result.aggregate)
    assert serial.result.dropped == on_ray.result.dropped
    assert len(serial.result.dropped) == 4
    assert (serial.refusals, serial.rejected) == (on_ray.refusals, on_ray.rejected)
    assert serial.bytes_up == on_ray.bytes_up
    assert serial.bytes_down == on_ray.bytes_down
    assert all(s > 0 for s in on_ray.client_seconds)  # measured in the actors


def test_an_actor_that_dies_ends_the_round_with_engine_error(ray_cleanup, monkeypatch) -> None:
    # Ray's workers inherit this environment: they find faulty_clients on PYTHONPATH.
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(TESTS), path) if p))
    clients = list(range(1, 7))
    start = time.monotonic()
    with (
        pytest.raises(EngineError, match=r"Ray worker \d died during the round"),
        RayPool(
            FaultyClients({3: "crash"}), 1, clients, workers=1, address=None, timeout=120.0
        ) as pool,
    ):
        drive_round(PlaintextProtocol(bits=16), pool, clients, dim=3, dropouts={}, round_id=1)
    assert time.monotonic() - start < 60
    assert not ray.is_initialized()


@pytest.mark.slow
def test_a_round_joins_a_running_ray_cluster_at_its_address(ray_cleanup) -> None:
    """The ``--address`` path, on a one-node cluster: ``ray start --head`` as on a head node,
    the round connects to it, ships this checkout's secfl to its workers and equals the
    serial round; ``ray stop`` ends the cluster. Slow (a cluster start, about a minute):
    ``make test-slow``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    start = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2"]
    start += ["--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True, timeout=180)
    try:
        sc = Scenario(
            protocol="secagg+", clients=30, dim=16, dropout=0.1, dropout_phase="mask", seed=4
        )
        serial, _ = run_scenario(sc, engine="serial")
        joined, _ = run_scenario(sc, engine="ray", address=f"127.0.0.1:{port}")
        assert not ray.is_initialized()  # the engine connected for the round, then left
        assert joined.correct
        assert (joined.engine, joined.workers) == ("ray", 2)  # the cluster's CPUs
        assert serial.result is not None
        assert joined.result is not None
        assert np.array_equal(serial.result.aggregate, joined.result.aggregate)
        assert serial.bytes_down == joined.bytes_down
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
