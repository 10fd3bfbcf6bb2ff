"""The table of docs/dp.md "Empirical privacy audit": lower bound vs accounted epsilon.

    python -m benchmarks.privacy_audit [--json]

Runs ``run_privacy_audit`` for a few settings (seed 1), then the same audit with the noise
path deliberately broken (the clients' distributed noise or the server's Gaussian noise
switched off or scaled down by monkeypatching the mechanism for that row only: there is no
option in secfl that does this). Prints a markdown table (or JSON rows).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np

from secfl.audit import PrivacyAuditConfig, PrivacyMechanism, run_privacy_audit
from secfl.dp.mechanisms import DistributedNoise, GaussianMechanism

G, DDG, SK = PrivacyMechanism.GAUSSIAN, PrivacyMechanism.DDG, PrivacyMechanism.SKELLAM


@contextlib.contextmanager
def _client_noise_scaled(scale: float) -> Iterator[None]:
    original = DistributedNoise.sample

    def broken(self: DistributedNoise, *, rng: Any) -> np.ndarray:
        return np.rint(original(self, rng=rng) * scale).astype(np.int64)

    with mock.patch.object(DistributedNoise, "sample", broken):
        yield


@contextlib.contextmanager
def _server_noise_scaled(scale: float) -> Iterator[None]:
    original = GaussianMechanism.add_noise

    def broken(self: GaussianMechanism, x: np.ndarray, *, rng: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        out: np.ndarray = arr + scale * (original(self, arr, rng=rng) - arr)
        return out

    with mock.patch.object(GaussianMechanism, "add_noise", broken):
        yield


Row = tuple[str, PrivacyAuditConfig, Callable[[], contextlib.AbstractContextManager[None]]]


def _cfg(mech: PrivacyMechanism, z: float, m: int, t: int, protocol: str) -> PrivacyAuditConfig:
    return PrivacyAuditConfig(
        mechanism=mech, noise_multiplier=z, canaries=m, rounds=t, protocol=protocol
    )


ROWS: tuple[Row, ...] = (
    ("", _cfg(G, 0.5, 1024, 1, "plain"), contextlib.nullcontext),
    ("", _cfg(G, 1.0, 1024, 1, "plain"), contextlib.nullcontext),
    ("", _cfg(G, 2.0, 1024, 1, "plain"), contextlib.nullcontext),
    ("", _cfg(G, 1.0, 1024, 4, "plain"), contextlib.nullcontext),
    ("", _cfg(G, 1.0, 256, 4, "secagg+"), contextlib.nullcontext),
    ("", _cfg(DDG, 0.5, 256, 1, "secagg+"), contextlib.nullcontext),
    ("", _cfg(DDG, 1.0, 256, 4, "secagg+"), contextlib.nullcontext),
    ("", _cfg(SK, 1.0, 256, 4, "secagg+"), contextlib.nullcontext),
    ("", _cfg(SK, 1.0, 64, 2, "secagg"), contextlib.nullcontext),
    ("server noise off", _cfg(G, 2.0, 1024, 1, "plain"), lambda: _server_noise_scaled(0.0)),
    ("server noise x0.1", _cfg(G, 2.0, 1024, 1, "plain"), lambda: _server_noise_scaled(0.1)),
    ("client noise off", _cfg(DDG, 4.0, 256, 1, "secagg+"), lambda: _client_noise_scaled(0.0)),
    ("client noise x0.1", _cfg(DDG, 4.0, 256, 1, "secagg+"), lambda: _client_noise_scaled(0.1)),
    ("client noise x0.5", _cfg(DDG, 1.0, 256, 4, "secagg+"), lambda: _client_noise_scaled(0.5)),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.privacy_audit")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger("absl").setLevel(logging.ERROR)
    rows = []
    for broken, config, patch in ROWS:
        with patch():
            report = run_privacy_audit(config, seed=args.seed)
        data = report.to_json() | {"broken": broken or None}
        rows.append(data)
        if not args.json:
            print(
                f"| {config.mechanism.value} | {config.protocol} | {config.noise_multiplier:g} "
                f"| {config.canaries} | {config.rounds} | {broken or '-'} "
                f"| {report.lower_bound:.2f} | {report.accounted_epsilon:.2f} "
                f"({report.accounting.value.upper()}) "
                f"| {report.outcome.correct}/{report.outcome.guesses} | {report.verdict} "
                f"| {report.seconds:.1f} |",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
