"""secfl in Flower's simulation engine: virtual SuperNodes on Ray, dropouts mid-round.

``flwr.simulation.run_simulation`` runs a ServerApp (in a thread of this process) and 60
virtual SuperNodes whose ClientApps run in Ray workers (the ``flower-sim`` extra); every
message goes through Flower's in-memory SuperLink state and a Ray task, with the node's
``Context`` kept by the engine between messages. Two SecAgg+ rounds of
:class:`~secfl.integrations.flower.SecureAggregation` over ``FedAvg``; the ClientApp is the
example app's training behind ``secfl_mod`` and the example's ``CrashMod``, which crashes
chosen nodes on a chosen secfl message of a round (a ClientApp exception is an error reply,
which secfl counts as a dropout of that phase):

* round 1: three nodes crash in the mask phase (after sharing their keys: the server
  rebuilds their pairwise masks from the survivors' shares);
* round 2: two crash in the share phase and one in the first phase (with training).

Each round must end with the other nodes aggregated, the crashed ones in ``dropped`` with a
one-line reason, and the new global model equal to the old one plus the mean of the
survivors' (clipped) updates, recomputed here, to the codec's quantum. About 20 s on 2 cores
(Ray's start is ~5 s of it); part of ``make test``, skipped without Ray.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the flower extra (flwr) is not installed")
pytest.importorskip("ray", reason="the flower-sim extra (ray) is not installed")

import ray
from flwr.app import Array, ArrayRecord, Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
from flwr.supercore.task_identity import TaskIdentity

from secfl.fl import Weighting
from secfl.hazmat.rng import Csprng
from secfl.integrations.flower import SecureAggregation, secfl_mod
from secfl.pipeline import Pipeline, PipelineConfig

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "flower_app"
sys.path.insert(0, str(APP_DIR))  # Ray workers get this process's sys.path as PYTHONPATH
from marked_processes import marked_pids  # noqa: E402
from secfl_flower_app import client_app as example_client  # noqa: E402
from secfl_flower_app import settings, task  # noqa: E402
from secfl_flower_app.faults import CrashMod  # noqa: E402

NODES = 60
ROUNDS = 2
CLIP, DROPOUT, LR, STEPS = 5.0, 0.2, 0.05, 2
# (partition, round) -> number of the round's secfl message on which its ClientApp raises
CRASHES = {(3, 1): 3, (17, 1): 3, (42, 1): 3, (5, 2): 2, (8, 2): 2, (50, 2): 1}
PHASES = {1: "advertise", 2: "share", 3: "mask"}  # SecAgg+'s n-th message of a round
MARK = "SECFL_SIMULATION_TEST"  # environment marker of every process the engine starts


def client_app() -> ClientApp:
    """The example's training behind ``secfl_mod`` and the example's crash mod. Ray workers
    import all of it by name: Flower gives them this process's ``sys.path``."""
    app = ClientApp(mods=[CrashMod(CRASHES), secfl_mod])
    app.train()(example_client.train)
    return app


def server_app(out: dict[str, object]) -> ServerApp:
    """Two SecAgg+ rounds over all ``NODES``; the strategy and the global model after each
    round (0: the initial one) are left in ``out`` (the ServerApp runs in this process)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = SecureAggregation(
            FedAvg(fraction_evaluate=0.0, min_train_nodes=NODES, min_available_nodes=NODES),
            protocol="secagg+",
            clip_bound=CLIP,
            dropout=DROPOUT,
            weighting=Weighting.UNIFORM,
            train_timeout=300.0,  # crashed nodes answer at once (an error reply): no wait
            stage_timeout=300.0,
            poll_interval=0.05,
        )
        seen: list[dict[str, np.ndarray]] = []
        initial = ArrayRecord({k: Array(v) for k, v in task.initial_arrays().items()})
        strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=ROUNDS,
            evaluate_fn=lambda _, arrays: seen.append({k: a.numpy() for k, a in arrays.items()}),
        )
        out.update(strategy=strategy, globals=seen)

    return app


@pytest.fixture
def simulation_cleanup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Afterwards what the engine changed in this process is restored, Ray is down and
    every process it started (Ray's daemons and workers, which inherit the ``MARK``
    environment variable) is gone: checked, and killed by pid if one lingers."""
    token = uuid.uuid4().hex
    monkeypatch.setenv(MARK, token)
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # Flower rewrites it
    for name in ("_run_id", "_node_id", "_task_id"):  # run_simulation sets them for good
        monkeypatch.setattr(TaskIdentity, name, getattr(TaskIdentity, name))
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
        assert not left, f"processes left behind by the simulation: {sorted(left)}"


def mean_update(before: dict[str, np.ndarray], partitions: list[int]) -> np.ndarray:
    """The mean of what these partitions' nodes contribute from the global model ``before``:
    their trained arrays minus ``before``, each clipped to L2 norm ``CLIP``."""
    deltas = []
    for p in partitions:
        new, _, _ = task.train(before, p, lr=LR, steps=STEPS)
        delta = flat(new) - flat(before)
        deltas.append(delta * min(1.0, CLIP / np.linalg.norm(delta)))
    return np.mean(deltas, axis=0)


def codec_quantum() -> float:
    """The fixed-point step of the rounds' codec (the same plan the strategy makes)."""
    config = PipelineConfig(protocol="secagg+", clip_bound=CLIP)
    rng = Csprng(seed=bytes(32))
    pipeline = Pipeline(config, n_clients=NODES, dim=task.FEATURES + 1, dropout=DROPOUT, rng=rng)
    return 2.0**-pipeline.codec.scale_bits


def flat(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([arrays[k].astype(np.float64) for k in ("weight", "bias")])


def test_secagg_plus_rounds_with_crashing_nodes_in_the_simulation_engine(simulation_cleanup):
    out: dict[str, object] = {}
    run_simulation(
        server_app=server_app(out),
        client_app=client_app(),
        num_supernodes=NODES,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"logging_level": "ERROR", "log_to_driver": False},
        },
    )
    strategy = out["strategy"]
    seen = out["globals"]
    assert isinstance(strategy, SecureAggregation)
    assert isinstance(seen, list)
    assert len(strategy.history) == ROUNDS
    assert len(seen) == ROUNDS + 1
    quantum = codec_quantum()
    for record in strategy.history:
        crashed = {p: PHASES[n] for (p, r), n in CRASHES.items() if r == record.round}
        assert record.aborted is None
        assert len(record.nodes) == NODES
        assert len(record.survivors) == NODES - len(crashed)
        assert set(record.survivors) == set(record.nodes) - set(record.dropped)
        # The phase and the ClientApp's exception, on one line (not Ray's whole traceback).
        assert sorted(record.dropped.values()) == sorted(
            f"{phase}: RuntimeError: crash on purpose: partition {p}, round {record.round}"
            for p, phase in crashed.items()
        )
        survivors = sorted(set(range(NODES)) - set(crashed))
        before, after = seen[record.round - 1], seen[record.round]
        expected = flat(before) + mean_update(before, survivors)
        # Each survivor's update is rounded to the nearest multiple of the codec's quantum
        # (so their mean is within half of one), and the new model to float32.
        float32_step = float(np.spacing(np.float32(np.max(np.abs(expected)))))
        np.testing.assert_allclose(flat(after), expected, rtol=0, atol=quantum / 2 + float32_step)
        assert np.max(np.abs(flat(after) - flat(before))) > 100 * quantum  # it did move


def test_the_example_apps_defaults_are_its_pyproject_run_config():
    """``run_simulation`` passes no run config: the example falls back to these defaults."""
    import tomllib  # Python 3.11+, as flwr 1.42

    with (APP_DIR / "pyproject.toml").open("rb") as f:
        declared = tomllib.load(f)["tool"]["flwr"]["app"]["config"]
    assert declared == settings.DEFAULTS
