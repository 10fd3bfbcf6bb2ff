"""The app's run config, with the defaults of ``[tool.flwr.app.config]`` in pyproject.toml.

``flwr run`` hands the ServerApp and every ClientApp the fused run config (those values,
overridden by ``--run-config``); Flower's Python entry point
``flwr.simulation.run_simulation`` hands them an empty one, so each app reads its settings
through :func:`run_config`, which falls back to these defaults
(tests/integration/test_flower_simulation.py checks that they match the pyproject's).
"""

from __future__ import annotations

from flwr.app import Context

DEFAULTS: dict[str, bool | int | float | str] = {
    "num-server-rounds": 3,
    "min-nodes": 2,
    "protocol": "secagg+",
    "clip-bound": 5.0,
    "dropout": 0.2,
    "train-timeout": 120.0,
    "stage-timeout": 30.0,
    "registry": "",
    "paillier-public-key": "",
    "paillier-threshold-public-key": "",
    "fraction-evaluate": 1.0,
    "lr": 0.05,
    "local-steps": 2,
    "result-file": "",
    "pause-at": "",
    "control-dir": "",
}


def run_config(context: Context) -> dict[str, bool | int | float | str]:
    """The run config of ``context`` over the defaults."""
    return {**DEFAULTS, **context.run_config}
