"""Command line: ``secfl simulate`` and ``secfl demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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

    demo = sub.add_parser("demo", help="run the demonstration")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
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


def _demo(*, as_json: bool) -> int:
    """One round per protocol, 50 clients, d = 10^4, 10 % dropping after sharing keys."""
    rows = []
    for protocol in PROTOCOLS:
        phase = "mask" if protocol.startswith("secagg") else None
        sc = Scenario(
            protocol=protocol, clients=50, dim=10_000, dropout=0.1, dropout_phase=phase, seed=0
        )
        report, _ = run_scenario(sc)
        rows.append(report_json(report))
    if as_json:
        print(json.dumps({"variants": rows}))
    else:
        print("secfl demo: one round, 50 clients, d = 10,000, 10% of clients dropping")
        print(
            f"{'protocol':10s} {'correct':>8s} {'dropped':>8s} {'client s':>10s} "
            f"{'server s':>10s} {'up B/client':>12s} {'down B/client':>14s}"
        )
        for r in rows:
            print(
                f"{r['protocol']:10s} {r['correct']!s:>8s} {r['dropped']:>8d} "
                f"{r['client_seconds']:>10.4f} {r['server_seconds']:>10.4f} "
                f"{r['bytes_up_per_client']:>12.0f} {r['bytes_down_per_client']:>14.0f}"
            )
    return 0 if all(r["correct"] for r in rows) else 1


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
            return _demo(as_json=args.json)
    except SecflError as e:
        print(f"secfl: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
