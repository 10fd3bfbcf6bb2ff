"""ServerApp: Flower's FedAvg, wrapped by secfl's SecureAggregation."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flwr.app import Array, ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from secfl.identities import Registry, load_paillier_public_key
from secfl.integrations.flower import SecureAggregation
from secfl.threshold_keys import load_threshold_public_key
from secfl_flower_app import settings, task

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federation: FedAvg sampling and evaluation, secfl aggregation."""
    cfg = settings.run_config(context)
    hooks = _TestHooks(cfg)
    registry, paillier_key = str(cfg["registry"]), str(cfg["paillier-public-key"])
    extra: dict[str, object] = {}
    if registry:
        extra.update(registry=Registry.load(registry))  # secagg, active threat model
    if paillier_key:
        extra.update(paillier_public_key=load_paillier_public_key(paillier_key))
    threshold_key = str(cfg["paillier-threshold-public-key"])
    if threshold_key:  # protocol "paillier-threshold": m key-holder SuperNodes
        extra.update(paillier_threshold_public_key=load_threshold_public_key(threshold_key))
    strategy = SecureAggregation(
        FedAvg(
            fraction_train=1.0,
            fraction_evaluate=float(cfg["fraction-evaluate"]),
            min_train_nodes=int(cfg["min-nodes"]),
            min_available_nodes=int(cfg["min-nodes"]),
        ),
        protocol=str(cfg["protocol"]),
        clip_bound=float(cfg["clip-bound"]),
        dropout=float(cfg["dropout"]),
        train_timeout=float(cfg["train-timeout"]),
        stage_timeout=float(cfg["stage-timeout"]),
        on_stage=hooks.on_stage if hooks.pause_at else None,
        **extra,
    )
    initial = ArrayRecord({k: Array(v) for k, v in task.initial_arrays().items()})
    strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=int(cfg["num-server-rounds"]),
        evaluate_fn=hooks.record_global,
    )
    hooks.write(strategy)


class _TestHooks:
    """What the end-to-end test needs; inert when the test settings are empty."""

    def __init__(self, cfg: dict[str, bool | int | float | str]) -> None:
        self.result_file = str(cfg["result-file"])
        self.pause_at = {p.strip() for p in str(cfg["pause-at"]).split(",") if p.strip()}
        self.control_dir = Path(str(cfg["control-dir"]) or ".")
        self.globals: dict[int, dict[str, list[float]]] = {}

    def record_global(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Keep the global model after each round (0 = the initial model)."""
        values = {k: a.numpy().astype(float).tolist() for k, a in arrays.items()}
        self.globals[server_round] = values
        return None

    def on_stage(self, server_round: int, phase: str, nodes: tuple[int, ...]) -> None:
        """At each "round:phase" of ``pause-at`` (comma-separated), write the phase's node ids
        to ``paused-<round>-<phase>`` in ``control-dir`` and wait (at most 120 s) for the
        test's go-ahead, a file ``resume-<round>-<phase>``."""
        if f"{server_round}:{phase}" not in self.pause_at:
            return
        tag = f"{server_round}-{phase}"
        tmp = self.control_dir / f".paused-{tag}"
        tmp.write_text(json.dumps(list(nodes)))
        tmp.replace(self.control_dir / f"paused-{tag}")  # appears complete or not at all
        deadline = time.monotonic() + 120.0
        while not (self.control_dir / f"resume-{tag}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def write(self, strategy: SecureAggregation) -> None:
        if not self.result_file:
            return
        rounds = [
            {
                "round": r.round,
                "nodes": list(r.nodes),
                "survivors": list(r.survivors),
                "dropped": {str(k): v for k, v in r.dropped.items()},
                "aborted": r.aborted,
                "aggregate": None if r.aggregate is None else r.aggregate.tolist(),
                "seconds": r.seconds,
                "phase_seconds": dict(r.phase_seconds),
                "client_ids": {str(k): v for k, v in r.client_ids.items()},
                "key_holders": {str(k): v for k, v in r.key_holders.items()},
                "key_holder_failures": {str(k): v for k, v in r.key_holder_failures.items()},
            }
            for r in strategy.history
        ]
        out = {"rounds": rounds, "globals": {str(k): v for k, v in self.globals.items()}}
        Path(self.result_file).write_text(json.dumps(out))
