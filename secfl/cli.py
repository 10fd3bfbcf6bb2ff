"""Command line: ``secfl simulate | privacy | audit | bench | identities | paillier-key | demo``.

Help texts are plain text (argparse prints them verbatim): no markup in them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from secfl import __version__
from secfl.audit.privacy import PrivacyAuditConfig, PrivacyMechanism
from secfl.audit.runner import PROTOCOLS as AUDITED
from secfl.errors import InvalidArgument, SecflError
from secfl.paillier_keys import KEY_BITS
from secfl.protocols.base import ProtocolName
from secfl.runtime.scenario import (
    ENGINES,
    SIMULATE_PROTOCOLS,
    Scenario,
    report_json,
    run_scenario,
)

__all__ = ["main"]

_DESCRIPTION = (
    "Secure aggregation for federated learning: simulate a round, account for differential "
    "privacy, audit the protocols, benchmark them, and make keys. "
    "Run 'secfl COMMAND --help' for a command's options."
)
_PROTOCOL_HELP = (
    "plain (no protection: the baseline), secagg (pairwise masking over the complete "
    "graph), secagg+ (masking over a sparse graph; the complete graph when there are too "
    "few clients for a sparse one), paillier (additively homomorphic encryption, "
    "decrypted by a key holder). All assume a server that follows the protocol "
    "(honest-but-curious; secagg+ is only offered so); against a server that deviates, "
    "deploy secagg in the active threat model (docs/threat-model.md)"
)
_PHASES_HELP = (
    "phase in which the dropping clients leave: input (plain, paillier), decrypt "
    "(paillier), advertise, share, mask, unmask (secagg, secagg+), check and consistency "
    "(secagg with --active) (default: the protocol's first phase)"
)
_AUDIT_EXAMPLES = 50
_PRIVACY_DEFAULTS = PrivacyAuditConfig()
# Options of `secfl audit` that only the privacy audit uses (dest names).
_PRIVACY_ONLY = (
    "mechanism",
    "noise_multiplier",
    "canaries",
    "rounds",
    "bits",
    "clip_bound",
    "delta",
    "confidence",
)
# Options of `secfl privacy` that only the distributed mechanisms use, with their defaults.
_DISTRIBUTED_DEFAULTS = {"clients": 100, "bits": 32, "dimension": 10_000}


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``secfl`` parser and each command's own parser (for its error messages)."""
    p = argparse.ArgumentParser(prog="secfl", description=_DESCRIPTION)
    p.add_argument("--version", action="version", version=f"secfl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, *, add_help: bool = True) -> argparse.ArgumentParser:
        description = summary[0].upper() + summary[1:] + "."
        return sub.add_parser(name, help=summary, description=description, add_help=add_help)

    sim = command(
        "simulate",
        "simulate one secure aggregation round over real bytes, on this machine's cores or Ray",
    )
    sim.add_argument(
        "--protocol",
        choices=SIMULATE_PROTOCOLS,
        default="plain",
        help=f"aggregation protocol: {_PROTOCOL_HELP}; paillier-threshold (paillier-sum-v2: "
        "a 3-of-5 threshold key dealt for the round, key holders that check every client's "
        "signed input) (default: %(default)s)",
    )
    sim.add_argument(
        "--clients", type=int, default=10, help="number of clients n (default: %(default)s)"
    )
    sim.add_argument(
        "--dim", type=int, default=1000, help="floats per client update d (default: %(default)s)"
    )
    sim.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="fraction of the clients that drop out, in [0, 1) (default: %(default)s)",
    )
    sim.add_argument("--dropout-phase", default=None, metavar="PHASE", help=_PHASES_HELP)
    sim.add_argument(
        "--bits",
        type=int,
        default=32,
        help="bits k of the ring Z_2^k the encoded updates are summed in (default: %(default)s)",
    )
    sim.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the inputs, dropouts and protocol secrets, for a reproducible round "
        "(default: fresh OS randomness)",
    )
    sim.add_argument(
        "--active",
        action="store_true",
        help="secagg only: active threat model (signed messages and a consistency phase)",
    )
    sim.add_argument(
        "--engine",
        choices=ENGINES,
        default="processes",
        help="where the client sessions run: processes (in parallel on this machine's cores), "
        "serial (one after the other in this process) or ray (Ray actors on a local Ray "
        "instance, or on the cluster at --address; needs the ray extra). The server runs in "
        "this process (its mask removal on the workers); with --seed every engine gives the "
        "same round (default: %(default)s)",
    )
    sim.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="engines processes and ray: number of worker processes or Ray actors "
        "(default: one per core, or per CPU of the Ray cluster)",
    )
    sim.add_argument(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="engine ray: the address of an existing Ray cluster, e.g. ray://head:10001 or "
        "head:6379 (default: start a local Ray instance for the round)",
    )
    sim.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="engines processes and ray: end the round with an error when a worker takes "
        "longer than this to answer one batch of requests, the first including building its "
        "clients' sessions (default: no limit; a worker that dies is reported at once)",
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object, not a table")

    priv = command(
        "privacy",
        "epsilon of a DP training run (PLD for the Gaussian; for ddg and Skellam the smaller "
        "of PLD and RDP)",
    )
    priv.add_argument(
        "--mechanism",
        choices=("gaussian", "ddg", "skellam"),
        default="gaussian",
        help="the noise: gaussian (central Gaussian), ddg (distributed discrete Gaussian), "
        "skellam (distributed Skellam) (default: %(default)s)",
    )
    priv.add_argument(
        "--neighboring",
        choices=("add-remove", "zero-out"),
        default=None,
        help="the neighbouring relation: add-remove (a client and its noise share present or "
        "absent; default) or zero-out (its update replaced by zeros, its share kept; only with "
        "--sampling-rate 1; the only one secfl accounts Skellam under, and its default there)",
    )
    noise = priv.add_mutually_exclusive_group(required=True)
    noise.add_argument(
        "--noise-multiplier",
        type=float,
        metavar="Z",
        help="noise multiplier z = noise standard deviation / clip bound: report its epsilon",
    )
    noise.add_argument(
        "--target-epsilon",
        type=float,
        metavar="EPSILON",
        help="solve for the smallest noise multiplier that reaches this epsilon",
    )
    priv.add_argument(
        "--sampling-rate",
        type=float,
        default=1.0,
        help="Poisson sampling rate q of each round, in (0, 1] (default: %(default)s)",
    )
    priv.add_argument(
        "--rounds", type=int, default=1, help="training rounds T (default: %(default)s)"
    )
    priv.add_argument(
        "--delta",
        type=float,
        default=1e-5,
        help="delta of the (epsilon, delta)-DP guarantee (default: %(default)s)",
    )
    priv.add_argument(
        "--clients",
        type=int,
        help=f"ddg/skellam only: clients in each sum (default: {_DISTRIBUTED_DEFAULTS['clients']})",
    )
    priv.add_argument(
        "--bits",
        type=int,
        help="ddg/skellam only: bits of the ring the noisy sum lives in "
        f"(default: {_DISTRIBUTED_DEFAULTS['bits']})",
    )
    priv.add_argument(
        "--dimension",
        type=int,
        help=f"ddg/skellam only: floats per update (default: {_DISTRIBUTED_DEFAULTS['dimension']})",
    )
    priv.add_argument("--json", action="store_true", help="print one JSON object, not a table")

    audit = command(
        "audit",
        "run the protocol audit (property-based tests), or with --privacy the empirical "
        "privacy audit (canary clients, a lower bound on epsilon)",
    )
    audit.add_argument(
        "--protocol",
        action="append",
        choices=AUDITED,
        default=None,
        help="protocol to audit: plain, secagg, secagg+, paillier or paillier-threshold; "
        "repeat the option for several (default: all five). With --privacy: one of plain "
        "(gaussian only), secagg, "
        f"secagg+ (default: {_PRIVACY_DEFAULTS.protocol})",
    )
    audit.add_argument(
        "--examples",
        type=int,
        default=None,
        help=f"Hypothesis examples per property (default: {_AUDIT_EXAMPLES})",
    )
    audit.add_argument(
        "--privacy",
        action="store_true",
        help="run the empirical privacy audit instead: canary clients through the real "
        "pipeline and protocol, and a one-run lower bound on epsilon (Steinke, Nasr, "
        "Jagielski 2023) set against the accounted epsilon; exit status 1 if it exceeds it",
    )
    audit.add_argument(
        "--mechanism",
        choices=[m.value for m in PrivacyMechanism],
        default=None,
        help="--privacy: the noise, gaussian (central), ddg or skellam (distributed) "
        f"(default: {_PRIVACY_DEFAULTS.mechanism.value})",
    )
    audit.add_argument(
        "--noise-multiplier",
        type=float,
        metavar="Z",
        default=None,
        help=f"--privacy: noise multiplier z (default: {_PRIVACY_DEFAULTS.noise_multiplier})",
    )
    audit.add_argument(
        "--canaries",
        type=int,
        default=None,
        help="--privacy: canary clients per round, each owning one coordinate of the update "
        f"(default: {_PRIVACY_DEFAULTS.canaries})",
    )
    audit.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"--privacy: rounds every canary takes part in (default: {_PRIVACY_DEFAULTS.rounds})",
    )
    audit.add_argument(
        "--bits",
        type=int,
        default=None,
        help=f"--privacy: bits of the ring (default: {_PRIVACY_DEFAULTS.bits})",
    )
    audit.add_argument(
        "--clip-bound",
        type=float,
        default=None,
        help="--privacy: L2 clip bound; each canary's update has this norm "
        f"(default: {_PRIVACY_DEFAULTS.clip_bound})",
    )
    audit.add_argument(
        "--delta",
        type=float,
        default=None,
        help=f"--privacy: delta of the bound and the accounted epsilon "
        f"(default: {_PRIVACY_DEFAULTS.delta})",
    )
    audit.add_argument(
        "--confidence",
        type=float,
        default=None,
        help=f"--privacy: confidence of the lower bound (default: {_PRIVACY_DEFAULTS.confidence})",
    )
    audit.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the examples (with --privacy: of the canaries, noise and protocol "
        "secrets): the same seed replays a run (default: drawn and printed)",
    )
    audit.add_argument("--json", action="store_true", help="print one JSON object, not a table")

    # No options of its own, not even --help: everything after "bench" goes to the runner.
    command(
        "bench",
        "benchmark sweep, from a source checkout ('secfl bench --help' lists its options)",
        add_help=False,
    )

    ident = command(
        "identities", "make client signing keys and their registry (active threat model)"
    )
    ident.add_argument(
        "--clients", type=int, required=True, help="number of clients N: ids 1..N get a key each"
    )
    ident.add_argument(
        "--out", type=Path, required=True, help="directory for the key files and the registry"
    )

    pkey = command("paillier-key", "make a Paillier key pair for a key holder (phe-compatible)")
    pkey.add_argument(
        "--bits",
        type=int,
        default=2048,
        help=f"bits of the modulus n: {' or '.join(map(str, KEY_BITS))} (default: %(default)s)",
    )
    pkey.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory for paillier.key and paillier.pub (with --holders: "
        "paillier-threshold.pub and paillier-share-1.key .. paillier-share-m.key)",
    )
    pkey.add_argument(
        "--holders",
        type=int,
        default=None,
        help="share the private key among m key holders (paillier-sum-v2, safe primes, "
        "made by this trusted dealer); needs --threshold",
    )
    pkey.add_argument(
        "--threshold",
        type=int,
        default=None,
        help="t: how many of the m key holders must answer to decrypt (with --holders)",
    )

    demo = command("demo", "federated training on digits with each protocol")
    demo.add_argument("--json", action="store_true", help="print the final comparison as JSON")
    demo.add_argument(
        "--rounds", type=int, default=None, help="rounds per variant (default: each variant's own)"
    )
    demo.add_argument(
        "--plot",
        type=Path,
        default=Path("secfl-demo.png"),
        help="where to draw the accuracy plot, a PNG (default: %(default)s)",
    )
    demo.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    return p, {"privacy": priv, "audit": audit}


def _simulate(
    sc: Scenario,
    *,
    as_json: bool,
    engine: str,
    workers: int | None,
    address: str | None,
    timeout: float | None,
) -> int:
    report, codec = run_scenario(
        sc, engine=engine, workers=workers, address=address, timeout=timeout
    )
    out = report_json(report)
    out["protocol"] = sc.protocol  # as asked; "graph" says what SecAgg+ planned
    note = None
    if sc.protocol in (ProtocolName.SECAGG, ProtocolName.SECAGG_PLUS):
        # A SecAgg session names itself "secagg" exactly when its graph is complete.
        complete = report.protocol == ProtocolName.SECAGG
        out["graph"] = "complete" if complete else "sparse"
        if complete and sc.protocol == ProtocolName.SECAGG_PLUS:
            note = (
                f"{sc.clients} clients are too few for a sparse SecAgg+ graph at this dropout "
                "rate: secagg+ planned the complete graph, so the round ran as classic SecAgg "
                "(every client paired with every other)"
            )
            out["note"] = note
    if sc.active:
        out["threat_model"] = "active"
    if as_json:
        print(json.dumps(out))
    else:
        print(f"secfl simulate: protocol={sc.protocol} clients={sc.clients} dim={sc.dim}")
        print(f"  codec: Z_2^{codec.bits}, quantum 2^-{codec.scale_bits}")
        for key, value in out.items():
            if key == "note":
                continue
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"  {key:28s} {shown}")
        if note is not None:
            print(f"note: {note}")
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


def _threshold_key(bits: int, out: Path, holders: int | None, threshold: int | None) -> int:
    from secfl.hazmat.threshold_paillier import generate_key
    from secfl.threshold_keys import save_threshold_key

    if holders is None or threshold is None:
        raise InvalidArgument("--holders and --threshold go together: give both (e.g. 5 and 3)")
    try:
        public, shares = generate_key(bits=bits, holders=holders, threshold=threshold)
    except InvalidArgument as e:
        raise InvalidArgument(f"--bits/--holders/--threshold: {e}") from None
    paths = save_threshold_key(public, shares, out)
    print(f"wrote {paths[0]} (public: clients, aggregator and every key holder)")
    for path in paths[1:]:
        print(f"      {path} (private, owner-only: that key holder's machine only)")
    print(f"a {threshold}-of-{holders} key, n has {public.bits} bits; the dealer keeps no copy")
    return 0


def _privacy(args: argparse.Namespace) -> int:
    import logging

    from secfl.dp import accounting as acc

    # dp-accounting logs (via absl) each fractional RDP order it skips; that is expected.
    logging.getLogger("absl").setLevel(logging.ERROR)
    from secfl.dp.mechanisms import NoiseKind, ddg_collapse, plan_distributed
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
        collapse = ddg_collapse(plan.noise, n_clients=args.clients)
        if collapse is not None:
            weak[z] = collapse
        return plan.noise.event(n_clients=args.clients)

    weak: dict[float, str] = {}
    for name, default in _DISTRIBUTED_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.neighboring is None:
        args.neighboring = "zero-out" if args.mechanism == "skellam" else "add-remove"
    relation = {
        "add-remove": acc.Neighboring.ADD_OR_REMOVE_ONE,
        "zero-out": acc.Neighboring.ZERO_OUT,
    }[args.neighboring]
    common = {
        "delta": args.delta,
        "q": args.sampling_rate,
        "rounds": args.rounds,
        "mechanism": event,
        "neighboring": relation,
    }
    if args.target_epsilon is not None:
        z = acc.noise_multiplier_for_epsilon(args.target_epsilon, **common)
    else:  # argparse requires exactly one of the two
        z = args.noise_multiplier
    eps, method = acc.accounted_epsilon(z, **common)
    out: dict[str, object] = {
        "mechanism": args.mechanism,
        "epsilon": eps,
        "delta": args.delta,
        "neighboring": args.neighboring,
        "accounting": method.value,
        "rounds": args.rounds,
        "noise_multiplier": z,
        "sampling_rate": args.sampling_rate,
    }
    if args.mechanism != "gaussian":
        out.update(clients=args.clients, bits=args.bits, dimension=args.dimension)
    if args.target_epsilon is not None:
        out["target_epsilon"] = args.target_epsilon
    if z in weak:
        out["warning"] = f"weak plan: {weak[z]}"
        print(f"secfl privacy: warning: {out['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            shown = f"{value:.6g}" if isinstance(value, float) else value
            print(f"{key:18s} {shown}")
    return 0


def _check_privacy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse options that the chosen mechanism would ignore (argparse error, exit 2)."""
    if args.mechanism == "skellam" and args.neighboring == "add-remove":
        parser.error(
            "argument --neighboring: secfl has no add/remove bound for Skellam (the share "
            "count changes with the client); use --mechanism ddg, or --neighboring zero-out "
            "(with --sampling-rate 1)"
        )
    relation = args.neighboring or ("zero-out" if args.mechanism == "skellam" else "add-remove")
    if args.mechanism != "gaussian" and relation == "zero-out" and args.sampling_rate < 1.0:
        parser.error(
            "argument --sampling-rate: zero-out has no sound bound under Poisson sampling for "
            "distributed noise (a client that is not sampled sends no share, and the sum's "
            "variance shows whether it took part); use --mechanism ddg with --neighboring "
            "add-remove, or --sampling-rate 1"
        )
    if args.mechanism == "gaussian":
        given = [f"--{name}" for name in _DISTRIBUTED_DEFAULTS if getattr(args, name) is not None]
        if given:
            parser.error(
                f"argument {', '.join(given)}: applies to --mechanism ddg or skellam only; "
                "drop it, or choose one of those mechanisms"
            )


def _check_audit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse options of the other audit (argparse error, exit 2)."""
    if args.privacy:
        if args.examples is not None:
            parser.error("argument --examples: applies to the protocol audit, not --privacy")
        if args.protocol is not None and len(args.protocol) > 1:
            parser.error("argument --protocol: --privacy audits one protocol; give it once")
        return
    given = [
        f"--{name.replace('_', '-')}" for name in _PRIVACY_ONLY if getattr(args, name) is not None
    ]
    if given:
        parser.error(f"argument {', '.join(given)}: applies to --privacy only; add --privacy")


def _privacy_audit(args: argparse.Namespace) -> int:
    import logging

    from secfl.audit.privacy import run_privacy_audit

    logging.getLogger("absl").setLevel(logging.ERROR)
    options = {
        name: getattr(args, name) for name in _PRIVACY_ONLY if getattr(args, name) is not None
    }
    if "mechanism" in options:
        options["mechanism"] = PrivacyMechanism(options["mechanism"])
    if args.protocol is not None:
        options["protocol"] = args.protocol[0]
    report = run_privacy_audit(PrivacyAuditConfig(**options), seed=args.seed)
    print(json.dumps(report.to_json()) if args.json else report.format_text())
    return 0 if report.passed else 1


def _exit_status(e: SystemExit) -> int:
    """The status an argparse exit (help, version, usage error) stands for."""
    if e.code is None or isinstance(e.code, int):
        return e.code or 0
    print(e.code, file=sys.stderr)  # SystemExit("message"), as Python would print it
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``secfl`` command: returns the exit status (also for --help,
    --version and usage errors, which argparse reports on stdout / stderr)."""
    parser, commands = _parser()
    try:
        # Known-args parsing: whatever follows "bench" belongs to the benchmark runner.
        args, rest = parser.parse_known_args(argv)
        if rest and args.command != "bench":
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "privacy":
            _check_privacy(commands["privacy"], args)
        if args.command == "audit":
            _check_audit(commands["audit"], args)
    except SystemExit as e:
        return _exit_status(e)
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
            return _simulate(
                sc,
                as_json=args.json,
                engine=args.engine,
                workers=args.workers,
                address=args.address,
                timeout=args.timeout,
            )
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
            try:
                return int(bench_main(rest, prog="secfl bench"))
            except SystemExit as e:
                return _exit_status(e)
        if args.command == "identities":
            from secfl.identities import generate_identities

            registry = generate_identities(args.clients, args.out)
            print(f"wrote {args.out}/client-{{1..{args.clients}}}.pem (owner-only) and")
            print(f"      {args.out}/registry.json (digest {registry.digest().hex()[:16]}...)")
            return 0
        if args.command == "paillier-key":
            if args.holders is not None or args.threshold is not None:
                return _threshold_key(args.bits, args.out, args.holders, args.threshold)
            return _paillier_key(args.bits, args.out)
        if args.command == "audit":
            if args.privacy:
                return _privacy_audit(args)
            from secfl.audit import run_audit

            examples = _AUDIT_EXAMPLES if args.examples is None else args.examples
            report = run_audit(protocols=args.protocol, examples=examples, seed=args.seed)
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
