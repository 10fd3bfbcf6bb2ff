"""Command line: ``secfl simulate`` and ``secfl demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from secfl.errors import SecflError
from secfl.runtime.scenario import PROTOCOLS, Scenario, report_json, run_scenario

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="secfl", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="simulate one secure aggregation round in memory")
    sim.add_argument("--protocol", choices=PROTOCOLS, default="plain")
    sim.add_argument("--clients", type=int, default=10, help="number of clients n")
    sim.add_argument("--dim", type=int, default=1000, help="vector length d")
    sim.add_argument("--dropout", type=float, default=0.0, help="fraction of clients dropping")
    sim.add_argument("--dropout-phase", default=None, help="phase in which they drop")
    sim.add_argument("--bits", type=int, default=32, help="modulus bits k (M = 2^k)")
    sim.add_argument("--seed", type=int, default=None, help="deterministic inputs and dropouts")
    sim.add_argument("--json", action="store_true", help="print one JSON object")

    demo = sub.add_parser("demo", help="federated training on digits with each protocol")
    demo.add_argument("--json", action="store_true", help="print the final comparison as JSON")
    demo.add_argument("--rounds", type=int, default=None, help="override rounds per variant")
    demo.add_argument("--plot", type=Path, default=Path("secfl-demo.png"), help="PNG path")
    demo.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    return p


def _simulate(sc: Scenario, *, as_json: bool) -> int:
    report, codec = run_scenario(sc)
    out = report_json(report)
    if as_json:
        print(json.dumps(out))
    else:
        print(f"secfl simulate: protocol={sc.protocol} clients={sc.clients} dim={sc.dim}")
        print(f"  codec: Z_2^{codec.bits}, quantum 2^-{codec.scale_bits}")
        for key, value in out.items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"  {key:28s} {shown}")
    return 0 if report.correct else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``secfl`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "simulate":
            sc = Scenario(
                protocol=args.protocol,
                clients=args.clients,
                dim=args.dim,
                dropout=args.dropout,
                dropout_phase=args.dropout_phase,
                seed=args.seed,
                bits=args.bits,
            )
            return _simulate(sc, as_json=args.json)
        if args.command == "demo":
            try:
                from secfl.demo import run_demo
            except ImportError as e:
                print(
                    f"secfl demo needs the demo extra (pip install 'secfl[demo]'): {e}",
                    file=sys.stderr,
                )
                return 2
            plot = None if args.no_plot else args.plot
            return run_demo(as_json=args.json, plot=plot, rounds=args.rounds)
    except SecflError as e:
        print(f"secfl: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
