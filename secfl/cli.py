"""Command line: ``secfl simulate | privacy | audit | bench | identities | paillier-key | demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from secfl.errors import InvalidArgument, SecflError
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
    sim.add_argument(
        "--active", action="store_true", help="secagg: active threat model (signed, consistency)"
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object")

    priv = sub.add_parser("privacy", help="epsilon of a DP training run (RDP accountant)")
    priv.add_argument("--mechanism", choices=("gaussian", "ddg", "skellam"), default="gaussian")
    priv.add_argument("--noise-multiplier", type=float, default=None, help="z (std / clip)")
    priv.add_argument("--sampling-rate", type=float, default=1.0, help="Poisson rate q")
    priv.add_argument("--rounds", type=int, default=1, help="rounds T")
    priv.add_argument("--delta", type=float, default=1e-5)
    priv.add_argument("--clients", type=int, default=100, help="ddg/skellam: clients per sum")
    priv.add_argument("--bits", type=int, default=32, help="ddg/skellam: modulus bits")
    priv.add_argument("--dimension", type=int, default=10_000, help="ddg/skellam: update size")
    priv.add_argument(
        "--target-epsilon",
        type=float,
        default=None,
        help="instead: the smallest noise multiplier reaching this epsilon",
    )
    priv.add_argument("--json", action="store_true", help="print one JSON object")

    audit = sub.add_parser("audit", help="run the protocol audit (property-based tests)")
    audit.add_argument(
        "--protocol",
        action="append",
        choices=PROTOCOLS,
        default=None,
        help="protocol to audit (repeatable; default: all)",
    )
    audit.add_argument("--examples", type=int, default=50, help="examples per property")
    audit.add_argument("--seed", type=int, default=None, help="reproducible run")
    audit.add_argument("--json", action="store_true", help="print one JSON object")

    bench = sub.add_parser(
        "bench", help="benchmark sweep (from a source checkout; see docs/benchmarks)"
    )
    bench.add_argument("args", nargs=argparse.REMAINDER, help="options of python -m benchmarks")

    ident = sub.add_parser(
        "identities", help="make client signing keys and their registry (active threat model)"
    )
    ident.add_argument("--clients", type=int, required=True, help="ids 1..N get a key each")
    ident.add_argument("--out", type=Path, required=True, help="directory for the files")

    pkey = sub.add_parser(
        "paillier-key", help="make a Paillier key pair for a key holder (phe-compatible)"
    )
    pkey.add_argument("--bits", type=int, default=2048, help="modulus bits (>= 2048)")
    pkey.add_argument("--out", type=Path, required=True, help="directory for the two files")

    demo = sub.add_parser("demo", help="federated training on digits with each protocol")
    demo.add_argument("--json", action="store_true", help="print the final comparison as JSON")
    demo.add_argument("--rounds", type=int, default=None, help="override rounds per variant")
    demo.add_argument("--plot", type=Path, default=Path("secfl-demo.png"), help="PNG path")
    demo.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    return p


def _simulate(sc: Scenario, *, as_json: bool) -> int:
    report, codec = run_scenario(sc)
    out = report_json(report)
    if sc.active:
        out["threat_model"] = "active"
    if as_json:
        print(json.dumps(out))
    else:
        print(f"secfl simulate: protocol={sc.protocol} clients={sc.clients} dim={sc.dim}")
        print(f"  codec: Z_2^{codec.bits}, quantum 2^-{codec.scale_bits}")
        for key, value in out.items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"  {key:28s} {shown}")
    return 0 if report.correct else 1


def _paillier_key(bits: int, out: Path) -> int:
    from secfl.identities import save_paillier_key
    from secfl.paillier_keys import generate_paillier_keypair

    try:
        private = generate_paillier_keypair(bits=bits)
    except InvalidArgument as e:
        raise InvalidArgument(f"--bits: {e}") from None
    out.mkdir(parents=True, exist_ok=True)
    save_paillier_key(private, out / "paillier.key", out / "paillier.pub")
    print(f"wrote {out}/paillier.key (private, owner-only: the key holder's machine only)")
    n_bits = private.public_key.bits
    print(f"      {out}/paillier.pub (public: the ServerApp's, n has {n_bits} bits)")
    return 0


def _privacy(args: argparse.Namespace) -> int:
    import logging

    from secfl.dp import accounting as acc

    # dp-accounting logs (via absl) each fractional RDP order it skips; that is expected.
    logging.getLogger("absl").setLevel(logging.ERROR)
    from secfl.dp.mechanisms import NoiseKind, plan_distributed
    from secfl.dp.rotation import padded_dimension

    def event(z: float) -> acc.DpEvent:
        if args.mechanism == "gaussian":
            return acc.GaussianEvent(z)
        kind = NoiseKind.DISCRETE_GAUSSIAN if args.mechanism == "ddg" else NoiseKind.SKELLAM
        plan = plan_distributed(
            bits=args.bits,
            n_clients=args.clients,
            min_clients=args.clients,
            clip_bound=1.0,
            dimension=padded_dimension(args.dimension),
            noise_multiplier=z,
            kind=kind,
        )
        return plan.noise.event(n_clients=args.clients)

    common = {
        "delta": args.delta,
        "q": args.sampling_rate,
        "rounds": args.rounds,
        "mechanism": event,
    }
    if args.target_epsilon is not None:
        z = acc.noise_multiplier_for_epsilon(args.target_epsilon, **common)
    elif args.noise_multiplier is not None:
        z = args.noise_multiplier
    else:
        raise InvalidArgument("give --noise-multiplier, or --target-epsilon to solve for it")
    eps = acc.epsilon_for_noise_multiplier(z, **common)
    out: dict[str, object] = {
        "mechanism": args.mechanism,
        "epsilon": eps,
        "delta": args.delta,
        "rounds": args.rounds,
        "noise_multiplier": z,
        "sampling_rate": args.sampling_rate,
    }
    if args.mechanism != "gaussian":
        out.update(clients=args.clients, bits=args.bits, dimension=args.dimension)
    if args.target_epsilon is not None:
        out["target_epsilon"] = args.target_epsilon
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            shown = f"{value:.6g}" if isinstance(value, float) else value
            print(f"{key:18s} {shown}")
    return 0


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
                active=args.active,
            )
            return _simulate(sc, as_json=args.json)
        if args.command == "privacy":
            return _privacy(args)
        if args.command == "bench":
            try:
                from benchmarks.runner import main as bench_main
            except ImportError:
                print(
                    "secfl bench runs from a source checkout (benchmarks/ is not installed);"
                    " run it in the repository root",
                    file=sys.stderr,
                )
                return 2
            return int(bench_main(args.args, prog="secfl bench"))
        if args.command == "identities":
            from secfl.identities import generate_identities

            registry = generate_identities(args.clients, args.out)
            print(f"wrote {args.out}/client-{{1..{args.clients}}}.pem (owner-only) and")
            print(f"      {args.out}/registry.json (digest {registry.digest().hex()[:16]}...)")
            return 0
        if args.command == "paillier-key":
            return _paillier_key(args.bits, args.out)
        if args.command == "audit":
            from secfl.audit import run_audit

            report = run_audit(protocols=args.protocol, examples=args.examples, seed=args.seed)
            print(json.dumps(report.to_json()) if args.json else report.format_text())
            return 0 if report.passed else 1
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
