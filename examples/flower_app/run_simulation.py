"""Run this app in Flower's simulation engine from Python (``flwr.simulation.run_simulation``).

``python run_simulation.py --num-supernodes 50`` runs the app's ServerApp and ClientApp
with 50 virtual SuperNodes on Ray, in this process (the ServerApp in a thread, the
ClientApps in Ray workers). ``flwr run . local`` is Flower's preferred way (see
docs/flower.md); this path is deprecated in flwr 1.42 but works, and it gives the apps no
run config: the ClientApps use the defaults of ``secfl_flower_app/settings.py``, and
``--run-config`` sets the ServerApp's (e.g. ``"num-server-rounds=2 dropout=0.1"``).
``--crash 0.1`` makes 10 % of the nodes crash in each round's mask phase, after sharing
their keys (:class:`secfl_flower_app.faults.CrashMod`), to show what dropouts do.
"""

from __future__ import annotations

import argparse

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.common.config import parse_config_args
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation
from secfl_flower_app import client_app, server_app, settings
from secfl_flower_app.faults import CrashMod

from secfl.integrations.flower import secfl_mod

MASK_MESSAGE = 3
"""SecAgg+'s third message of a round asks for the masked input (phase ``mask``)."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-supernodes", type=int, default=50, help="virtual SuperNodes")
    parser.add_argument(
        "--num-cpus", type=float, default=1.0, help="CPUs each ClientApp holds in Ray"
    )
    parser.add_argument(
        "--run-config", default="", help='ServerApp settings, e.g. "num-server-rounds=2"'
    )
    parser.add_argument(
        "--crash", type=float, default=0.0, help="fraction of nodes that crash in each round"
    )
    args = parser.parse_args(argv)
    # FedAvg waits for every virtual SuperNode and trains them all from round 1 on.
    overrides = {"min-nodes": args.num_supernodes, **parse_config_args([args.run_config])}
    rounds = int(overrides.get("num-server-rounds", settings.DEFAULTS["num-server-rounds"]))
    crash = CrashMod.share(
        args.num_supernodes, args.crash, rounds=range(1, rounds + 1), message=MASK_MESSAGE
    )
    client = ClientApp(mods=[crash, secfl_mod])
    client.train()(client_app.train)
    client.evaluate()(client_app.evaluate)

    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        context.run_config.update(overrides)  # run_simulation passes an empty run config
        server_app.main(grid, context)

    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=args.num_supernodes,
        backend_config={"client_resources": {"num_cpus": args.num_cpus, "num_gpus": 0.0}},
    )


if __name__ == "__main__":
    main()
