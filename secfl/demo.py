"""``secfl demo``: federated training of a small PyTorch model on a real dataset.

The handwritten digits bundled with scikit-learn (1,797 8x8 images; no download) are split
non-IID across 20 clients with a Dirichlet(0.5) label distribution. The same model and the
same local training loop are then trained federatedly with each protection: plaintext
FedAvg (the baseline), SecAgg+, packed Paillier, and SecAgg+ with distributed discrete
Gaussian noise (differential privacy, epsilon reported at delta = 1e-5). The demo prints a
per-round table and a final comparison and draws accuracy per round into a PNG. Needs the
``demo`` extra (torch, scikit-learn, matplotlib).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from secfl.fl.fedavg import FedAvgConfig, RoundRecord
from secfl.hazmat.rng import Csprng
from secfl.integrations.torch import federated_train
from secfl.pipeline import DistributedDP, PipelineConfig
from secfl.protocols.base import ProtocolName

__all__ = ["Variant", "run_demo"]

N_CLIENTS = 20
ALPHA = 0.5
SEED = 7

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Variant:
    """One configuration the demo trains."""

    name: str
    protocol: str
    rounds: int
    dp: DistributedDP | None = None


VARIANTS = (
    Variant("FedAvg (plaintext)", "plain", 15),
    Variant("SecAgg+", "secagg+", 15),
    Variant("Paillier", "paillier", 15),
    Variant("SecAgg+ with DDG", "secagg+", 15, DistributedDP(noise_multiplier=0.7)),
)


def load_digits_split(*, seed: int = SEED) -> tuple[list[Data], Data]:
    """Digits, 80/20 train/test, train split non-IID over ``N_CLIENTS`` clients."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)  # data shuffling only: not security-relevant
    perm = torch.randperm(len(y), generator=gen)
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    buckets: list[list[int]] = [[] for _ in range(N_CLIENTS)]
    for label in range(10):
        idx = train[y[train] == label]
        idx = idx[torch.randperm(len(idx), generator=gen)]
        gamma = torch._standard_gamma(torch.full((N_CLIENTS,), ALPHA), generator=gen)
        shares = (gamma / gamma.sum()).tolist()
        cuts = np.rint(np.cumsum([0.0, *shares]) * len(idx)).astype(int)
        for c in range(N_CLIENTS):
            buckets[c].extend(idx[cuts[c] : cuts[c + 1]].tolist())
    clients = [(x[b], y[b]) for b in buckets]
    return clients, (x[test], y[test])


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def local_train(model: nn.Module, data: Data) -> None:
    """The user's own training loop: 2 epochs of SGD, batch 16."""
    x, y = data
    if len(y) == 0:
        return
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        for start in range(0, len(y), 16):
            opt.zero_grad()
            loss_fn(model(x[start : start + 16]), y[start : start + 16]).backward()
            opt.step()


def accuracy(model: nn.Module, test: Data) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(test[0]).argmax(1) == test[1]).float().mean())


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.t0 = total, 0, time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + "." * (width - filled)
        secs = time.perf_counter() - self.t0
        print(
            f"\r[{bar}] {self.done}/{self.total} {label:<24s} {secs:5.1f}s",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if self.done == self.total:
            print(file=sys.stderr)


def run_variant(
    variant: Variant, clients: Sequence[Data], test: Data, progress: _Progress
) -> tuple[list[RoundRecord], float]:
    torch.manual_seed(SEED)  # same initial model for every variant
    model = make_model()
    config = FedAvgConfig(
        rounds=variant.rounds,
        pipeline=PipelineConfig(protocol=variant.protocol, clip_bound=2.0, bits=32, dp=variant.dp),
        # DP needs Poisson sampling for privacy amplification (same 10 clients expected)
        clients_per_round=None if variant.dp else 10,
        sampling_rate=0.5 if variant.dp else None,
        dropout=0.1 if variant.protocol != ProtocolName.PLAIN else 0.0,
    )
    t0 = time.perf_counter()
    history = federated_train(
        model,
        clients,
        local_train,
        config=config,
        evaluate=lambda m: {"accuracy": accuracy(m, test)},
        on_round=lambda r: progress.step(f"{variant.name} r{r.round}"),
        rng=Csprng(seed=bytes([SEED]) * 32),
    )
    return history, time.perf_counter() - t0


def run_demo(
    *,
    as_json: bool = False,
    plot: Path | None = Path("secfl-demo.png"),
    rounds: int | None = None,
) -> int:
    """Train every variant, print tables (or JSON), draw the plot; 0 if all rounds ran.

    ``rounds`` overrides every variant's number of rounds (e.g. 1 for a smoke test).
    """
    variants = [
        v if rounds is None else Variant(v.name, v.protocol, rounds, v.dp) for v in VARIANTS
    ]
    clients, test = load_digits_split()
    progress = _Progress(sum(v.rounds for v in variants))
    results: list[dict[str, Any]] = []
    histories: dict[str, list[RoundRecord]] = {}
    for v in variants:
        history, seconds = run_variant(v, clients, test, progress)
        histories[v.name] = history
        results.append(
            {
                "name": v.name,
                "protocol": v.protocol,
                "dp": v.dp is not None,
                "final_accuracy": history[-1].metrics.get("accuracy"),
                "seconds": round(seconds, 3),
                "mb_sent": round(sum(r.bytes_sent for r in history) / 1e6, 3),
                "epsilon": history[-1].epsilon,
            }
        )
    if as_json:
        print(json.dumps({"variants": results}))
    else:
        _print_tables(histories, results)
    if plot is not None:
        _plot(histories, plot)
        if not as_json:
            print(f"accuracy plot: {plot}")
    failed = any(r.aborted for h in histories.values() for r in h)
    return 1 if failed else 0


def _print_tables(histories: dict[str, list[RoundRecord]], results: list[dict[str, Any]]) -> None:
    print(f"secfl demo: digits, {N_CLIENTS} clients (Dirichlet {ALPHA}), 10 per round")
    for name, history in histories.items():
        print(f"\n{name}")
        print(
            f"{'round':>5s} {'accuracy':>9s} {'seconds':>8s} {'MB sent':>8s} {'epsilon':>8s} "
            f"{'dropped':>8s}"
        )
        for r in history:
            acc = r.metrics.get("accuracy", float("nan"))
            eps = "-" if r.epsilon is None else f"{r.epsilon:.2f}"
            print(
                f"{r.round:5d} {acc:9.3f} {r.seconds:8.2f} {r.bytes_sent / 1e6:8.3f} "
                f"{eps:>8s} {r.dropped:8d}"
            )
    print("\nfinal comparison")
    print(
        f"{'variant':22s} {'protocol':9s} {'accuracy':>9s} {'seconds':>8s} {'MB sent':>8s} "
        f"{'epsilon':>8s}"
    )
    for row in results:
        eps = "-" if row["epsilon"] is None else f"{row['epsilon']:.2f}"
        print(
            f"{row['name']:22s} {row['protocol']:9s} {row['final_accuracy']:9.3f} "
            f"{row['seconds']:8.1f} {row['mb_sent']:8.2f} {eps:>8s}"
        )


def _plot(histories: dict[str, list[RoundRecord]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    # Protocols that compute the same sum draw the same curve: distinct line styles and
    # markers keep each one visible where they overlap.
    styles = [("-", "o", 6), ("--", "s", 5), (":", "^", 4), ("-.", "x", 4)]
    for i, (name, history) in enumerate(histories.items()):
        line, marker, size = styles[i % len(styles)]
        ax.plot(
            [r.round for r in history],
            [r.metrics.get("accuracy", float("nan")) for r in history],
            linestyle=line,
            marker=marker,
            markersize=size,
            markerfacecolor="none",
            label=name,
        )
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title("secfl demo: federated digits, 20 non-IID clients")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
