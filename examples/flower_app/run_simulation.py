"""Run this app in Flower's simulation engine from Python (``flwr.simulation.run_simulation``).

``python run_simulation.py --num-supernodes 50`` runs the app's ServerApp and ClientApp
with 50 virtual SuperNodes on Ray, in this process (the ServerApp in a thread, the
ClientApps in Ray workers). ``flwr run . local`` is Flower's preferred way (see
docs/flower.md); this path is deprecated in flwr 1.42 but works, and it gives the apps no
run config: the ClientApps use the defaults of ``secfl_flower_app/settings.py``, and
``--run-config`` sets the ServerApp's (e.g. ``"num-server-rounds=2 dropout=0.1"``).
"""

from __future__ import annotations

import argparse

from flwr.app import Context
from flwr.common.config import parse_config_args
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation
from secfl_flower_app import client_app, server_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-supernodes", type=int, default=50, help="virtual SuperNodes")
    parser.add_argument(
        "--num-cpus", type=float, default=1.0, help="CPUs each ClientApp holds in Ray"
    )
    parser.add_argument(
        "--run-config", default="", help='ServerApp settings, e.g. "num-server-rounds=2"'
    )
    args = parser.parse_args(argv)
    # FedAvg waits for every virtual SuperNode and trains them all from round 1 on.
    overrides = {"min-nodes": args.num_supernodes, **parse_config_args([args.run_config])}

    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        context.run_config.update(overrides)  # run_simulation passes an empty run config
        server_app.main(grid, context)

    run_simulation(
        server_app=server,
        client_app=client_app.app,
        num_supernodes=args.num_supernodes,
        backend_config={"client_resources": {"num_cpus": args.num_cpus, "num_gpus": 0.0}},
    )


if __name__ == "__main__":
    main()
