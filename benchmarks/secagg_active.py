"""What secagg-v3's cheater identification costs in SecAgg's active mode, in one run.

``python -m benchmarks.secagg_active`` runs, per cell (n clients, d entries, complete
graph), three rounds in the same process: the honest-but-curious round (the baseline),
the active round, and the active round with one client whose envelopes to every
neighbour do not open (it is proven a cheater and excluded). It also times one proven
channel secret (secfl.hazmat.dleq) made and checked. Writes
``docs/benchmarks/secagg-active.md`` and ``secagg-active.json``. CPU seconds are process
time of the session calls; "round" is all clients' CPU plus the server's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import OUT_DIR, environment
from secfl.audit.forgery import corrupt_envelopes
from secfl.hazmat import dleq
from secfl.hazmat.kex import KexPrivateKey
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols.base import ClientId, ClientSession
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel
from secfl.runtime.simulator import SimulationReport, simulate_round

CELLS = ((10, 10_000), (50, 10_000), (100, 10_000))
CHEATER = 1


class _Cheating(SecAggProtocol):
    """Client ``CHEATER`` corrupts its envelopes to every neighbour (signed again)."""

    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        session = super().client(round_id=round_id, client_id=client_id, value=value)
        if client_id != CHEATER:
            return session
        honest, key = session._respond, self._identities[client_id]

        def respond(data: bytes) -> bytes | None:
            reply = honest(data)
            victims = range(1, self.config.n_clients + 1)
            return None if reply is None else corrupt_envelopes(reply, session, victims, key)

        session._respond = respond  # type: ignore[method-assign]
        return session


def _round(n: int, d: int, *, active: bool, cheat: bool) -> SimulationReport:
    holders = n - 1
    t = (2 * holders) // 3 + 1 if active else holders // 2 + 1
    model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
    config = SecAggConfig(bits=32, threshold=t, n_clients=n, threat_model=model)
    keys = Csprng(seed=b"k" * 32)
    ids = {c: SigningKey.generate(rng=keys) for c in range(1, n + 1)} if active else None
    kind = _Cheating if cheat else SecAggProtocol
    protocol = kind(config, rng=Csprng(seed=b"p" * 32), identities=ids)
    rng = Csprng(seed=b"x" * 32)
    inputs = {c: (rng.uint64(d) & np.uint64(2**32 - 1)).astype(np.uint32) for c in range(1, n + 1)}
    report = simulate_round(protocol, inputs)
    if not report.correct:
        raise AssertionError(f"n={n} active={active} cheat={cheat}: wrong round {report.aborted}")
    if cheat and set(report.rejected) != {CHEATER}:
        raise AssertionError(f"the cheater was not excluded: {report.rejected}")
    return report


def _row(report: SimulationReport) -> dict[str, float]:
    return {
        "server": report.server_seconds,
        "client": report.client_seconds_mean,
        "round": report.server_seconds + sum(report.client_seconds),
        "bytes_down": float(np.mean(list(report.bytes_down.values()))),
        "bytes_up": float(np.mean(list(report.bytes_up.values()))),
    }


def proof_seconds(reps: int = 20) -> tuple[float, float]:
    """Mean seconds to make and to check one proven channel secret."""
    rng = Csprng(seed=b"d" * 32)
    a, b = KexPrivateKey.generate(rng=rng), KexPrivateKey.generate(rng=rng)
    t0 = time.process_time()
    for _ in range(reps):
        revealed, proof = dleq.prove_exchange(a, b.public_key(), context=b"bench")
    t1 = time.process_time()
    for _ in range(reps):
        dleq.verify_exchange(a.public_key(), b.public_key(), revealed, proof, context=b"bench")
    return (t1 - t0) / reps, (time.process_time() - t1) / reps


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# SecAgg's active mode with cheater identification (secagg-v3)",
        "",
        f"Measured by `python -m benchmarks.secagg_active` on {results['environment']['cpu_model']}"
        " (one process). Complete graph, 32 bits, no dropout; t just above 2/3 of the holders"
        " (active) or 1/2 (HBC). *cheat*: client 1's envelopes to every neighbour do not open;"
        " every neighbour complains, client 1 is excluded, the round completes. CPU seconds;"
        " *x HBC* is the ratio to the honest-but-curious round of the same cell, same run.",
        "",
        "| n | d | round | server | client | mean bytes down | round: active x HBC | "
        "round: cheat x active | server: cheat x active |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in results["cells"]:
        hbc, act, cheat = cell["hbc"], cell["active"], cell["cheat"]
        lines.append(
            f"| {cell['n']} | {cell['d']} | {act['round']:.2f} s | {act['server']:.2f} s | "
            f"{act['client']:.3f} s | {act['bytes_down']:,.0f} | "
            f"{act['round'] / hbc['round']:.2f} | {cheat['round'] / act['round']:.2f} | "
            f"{cheat['server'] / act['server']:.2f} |"
        )
    prove, check = results["proof_seconds"]
    lines += [
        "",
        f"One proven channel secret (pure-Python Edwards arithmetic): made in {prove * 1e3:.1f} ms,"
        f" checked in {check * 1e3:.1f} ms. A complaint costs its maker one, the server one"
        " per complaint.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--quick", action="store_true", help="the smallest cell only")
    args = parser.parse_args(argv)
    cells = CELLS[:1] if args.quick else CELLS
    results: dict[str, Any] = {"environment": environment(), "cells": []}
    for n, d in cells:
        row: dict[str, Any] = {"n": n, "d": d}
        for name, active, cheat in (
            ("hbc", False, False),
            ("active", True, False),
            ("cheat", True, True),
        ):
            row[name] = _row(_round(n, d, active=active, cheat=cheat))
        results["cells"].append(row)
        print(f"n={n} d={d}: {json.dumps(row)}", flush=True)
    results["proof_seconds"] = proof_seconds()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "secagg-active.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "secagg-active.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
