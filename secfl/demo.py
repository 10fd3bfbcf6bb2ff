"""``secfl demo``: federated training of a small PyTorch model on a real dataset.

The handwritten digits bundled with scikit-learn (1,797 8x8 images; no download) are split
over many simulated clients (480 by default, 3 examples each, nearly always of one digit).
The same model and the same local training loop are trained federatedly with each
protection: plaintext FedAvg (the baseline), SecAgg+, packed Paillier, and SecAgg+ with
distributed discrete Gaussian noise (differential privacy). Every variant sees the same
setting: the same clients, Poisson sampling at the same rate each round, each sampled
client dropping out on its own coin at the same rate, the same clipping and server
optimizer; the DP variant only adds the noise, and reports its (epsilon, delta), amplified
by the sampling. A warm-up
round of each protocol runs before anything is timed. The demo prints a per-round table and
a final comparison and draws accuracy per round into a PNG. Needs the ``demo`` extra
(torch, scikit-learn, matplotlib).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from secfl.errors import InvalidArgument
from secfl.fl.fedavg import FedAvgConfig, RoundRecord
from secfl.hazmat.rng import Csprng
from secfl.integrations.torch import federated_train
from secfl.pipeline import DistributedDP, PipelineConfig
from secfl.protocols.base import ProtocolName

__all__ = ["DemoSettings", "Variant", "VariantResult", "run_demo", "train_variants"]

SEED = 7
FEATURES = 48
"""The 8 x 6 middle pixels of each 8 x 8 digit."""

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DemoSettings:
    """What every variant shares, and the DP variant's noise.

    The defaults plan epsilon 7.63 at delta 1e-5, add/remove-one, after 8 rounds of 90
    survivors (RDP; 18.95 without the amplification by sampling); a seeded run reports 7.46
    for the survivors it had. The trade-off: epsilon wants a small ``sampling_rate`` and
    few rounds; accuracy wants little noise on the average (``noise_multiplier *
    clip_bound`` over the ~90 survivors), hence many clients per round; and Paillier's
    cost (~65 ms per client) bounds clients x rounds within the demo's time budget.
    """

    n_clients: int = 480
    sampling_rate: float = 0.2
    """Each client joins a round with this probability (Poisson sampling): ~96 per round."""
    rounds: int = 8
    dropout: float = 0.25
    """Fraction of a round's sampled clients every variant's protocol tolerates losing:
    large enough that the DP variant loses a round to dropouts with probability below
    1e-9 x delta over the run (a round that aborts could depend on one client's presence)."""
    simulated_dropout: float = 0.02
    """Each sampled client drops out mid-round with this probability, independently (a
    fixed count would be a swap under add/remove-one: distributed-dp-v1 section 10.5)."""
    clip_bound: float = 1.0
    noise_multiplier: float = 0.95
    delta: float = 1e-5
    max_cohort: int = 171
    """The public cohort bound the DP variant's scale is planned for (what FedAvg asks of
    these 480 clients at q = 0.2 over 8 rounds: a larger round is that unlikely)."""
    noise_clients: int = 90
    """The public count the DP variant's noise shares are sized for: a little below an
    average round's 94 survivors (96 sampled, 2% drop out; FedAvg suggests 94), so that
    most rounds carry at least the planned noise."""
    local_epochs: int = 5
    lr: float = 0.5
    server_lr: float = 3.0
    server_momentum: float = 0.7
    bits: int = 32

    @property
    def clients_per_round(self) -> float:
        """The expected number of clients sampled per round."""
        return self.n_clients * self.sampling_rate


@dataclass(frozen=True)
class Variant:
    """One configuration the demo trains."""

    name: str
    protocol: str
    dp: bool = False


VARIANTS = (
    Variant("FedAvg (plaintext)", ProtocolName.PLAIN),
    Variant("SecAgg+", ProtocolName.SECAGG_PLUS),
    Variant("Paillier", ProtocolName.PAILLIER),
    Variant("SecAgg+ with DDG", ProtocolName.SECAGG_PLUS, dp=True),
)


@dataclass(frozen=True)
class VariantResult:
    """A variant's per-round history and the wall-clock seconds of its rounds."""

    variant: Variant
    config: FedAvgConfig
    history: list[RoundRecord]
    seconds: float


def load_digits_split(n_clients: int, *, seed: int = SEED) -> tuple[list[Data], Data]:
    """Digits, 80/20 train/test; the train set sorted by label and cut into ``n_clients``
    shards of (nearly) equal size, so each client holds one digit, rarely two (the
    pathological non-IID split of McMahan et al. 2017). Pixels are scaled to [-1, 1]; the
    outer columns (blank in 99 % and 88 % of the images) are dropped: 48 features."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.data / 8.0 - 1.0, dtype=torch.float32).reshape(-1, 8, 8)
    x = images[:, :, 1:7].reshape(-1, FEATURES)
    y = torch.tensor(digits.target, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)  # data shuffling only: not security-relevant
    perm = torch.randperm(len(y), generator=gen)
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    if not 2 <= n_clients <= len(train):
        raise InvalidArgument(f"n_clients must be in 2..{len(train)}, got {n_clients}")
    by_label = train[torch.argsort(y[train], stable=True)]
    clients = [(x[s], y[s]) for s in torch.tensor_split(by_label, n_clients)]
    return clients, (x[test], y[test])


def make_model() -> nn.Module:
    """Multinomial logistic regression (490 parameters): the norm of the DP noise grows
    with the square root of the number of parameters."""
    return nn.Linear(FEATURES, 10)


def local_train(model: nn.Module, data: Data, *, epochs: int, lr: float) -> None:
    """The user's own training loop: ``epochs`` full-batch SGD steps on the client's data."""
    x, y = data
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def accuracy(model: nn.Module, test: Data) -> float:
    """Test accuracy of ``model``."""
    model.eval()
    with torch.no_grad():
        return float((model(test[0]).argmax(1) == test[1]).float().mean())


def fedavg_config(variant: Variant, settings: DemoSettings, *, rounds: int) -> FedAvgConfig:
    """The variant's run: every field but the noise is the same for all variants."""
    dp = (
        DistributedDP(
            noise_multiplier=settings.noise_multiplier,
            delta=settings.delta,
            max_cohort=settings.max_cohort,
            noise_clients=settings.noise_clients,
        )
        if variant.dp
        else None
    )
    return FedAvgConfig(
        rounds=rounds,
        pipeline=PipelineConfig(
            protocol=variant.protocol, clip_bound=settings.clip_bound, bits=settings.bits, dp=dp
        ),
        # Poisson sampling for every variant: the accountant amplifies it for the DP one.
        sampling_rate=settings.sampling_rate,
        dropout=settings.dropout,
        simulated_dropout=settings.simulated_dropout,
        server_lr=settings.server_lr,
        server_momentum=settings.server_momentum,
    )


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


def _train(
    config: FedAvgConfig,
    settings: DemoSettings,
    clients: Sequence[Data],
    test: Data,
    on_round: Callable[[RoundRecord], None] | None = None,
) -> list[RoundRecord]:
    torch.manual_seed(SEED)  # same initial model for every variant
    return federated_train(
        make_model(),
        clients,
        lambda m, d: local_train(m, d, epochs=settings.local_epochs, lr=settings.lr),
        config=config,
        evaluate=lambda m: {"accuracy": accuracy(m, test)},
        on_round=on_round,
        quiet=True,  # the progress bar reports the rounds
        rng=Csprng(seed=bytes([SEED]) * 32),
    )


def warm_up(settings: DemoSettings, clients: Sequence[Data], test: Data) -> float:
    """One untimed round of each variant on a few clients (imports, first calls, caches);
    returns its seconds, which no variant's row includes."""
    t0 = time.perf_counter()
    few = list(clients[:: max(1, len(clients) // 10)][:10])
    # No dropouts: 10 clients could not bound the chance of losing a round to them
    small = dataclasses.replace(
        settings, n_clients=len(few), sampling_rate=1.0, simulated_dropout=0.0
    )
    with warnings.catch_warnings():  # 10 clients make a weak epsilon; nothing is released
        warnings.simplefilter("ignore")
        for v in VARIANTS:
            _train(fedavg_config(v, small, rounds=1), small, few, test)
    return time.perf_counter() - t0


def train_variants(
    settings: DemoSettings = DemoSettings(),
    *,
    variants: Sequence[Variant] = VARIANTS,
    progress: bool = True,
) -> tuple[list[VariantResult], float]:
    """Warm up, then train every variant on the same split; the results and the warm-up's
    seconds. Torch runs on one thread meanwhile (its threads only add overhead to a model
    this small)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clients, test = load_digits_split(settings.n_clients)
        warm = warm_up(settings, clients, test)
        bar = _Progress(settings.rounds * len(variants)) if progress else None
        results = []
        for v in variants:
            config = fedavg_config(v, settings, rounds=settings.rounds)
            label = v.name

            def step(r: RoundRecord, label: str = label) -> None:
                if bar is not None:
                    bar.step(f"{label} r{r.round}")

            t0 = time.perf_counter()
            history = _train(config, settings, clients, test, on_round=step)
            results.append(VariantResult(v, config, history, time.perf_counter() - t0))
        return results, warm
    finally:
        torch.set_num_threads(threads)


def _summary(res: VariantResult) -> dict[str, Any]:
    """A variant's row for the comparison and the JSON output."""
    h = res.history
    dp = res.config.pipeline.dp
    return {
        "name": res.variant.name,
        "protocol": res.variant.protocol,
        "dp": dp is not None,
        "final_accuracy": h[-1].metrics.get("accuracy"),
        "seconds": round(res.seconds, 3),
        "mb_sent": round(sum(r.bytes_sent for r in h) / 1e6, 3),
        "epsilon": h[-1].epsilon,
        "delta": None if dp is None else dp.delta,
        "noise_multiplier": None if dp is None else dp.noise_multiplier,
        "sampling_rate": res.config.sampling_rate,
        "dropout": res.config.dropout,
        "simulated_dropout": res.config.simulated_dropout,
        "sampled_per_round": round(sum(r.sampled for r in h) / len(h), 2),
        "dropped_per_round": round(sum(r.dropped for r in h) / len(h), 2),
        "rounds": [
            {
                "round": r.round,
                "sampled": r.sampled,
                "dropped": r.dropped,
                "aborted": r.aborted,
                "accuracy": r.metrics.get("accuracy"),
                "epsilon": r.epsilon,
            }
            for r in h
        ],
    }


def run_demo(
    *,
    as_json: bool = False,
    plot: Path | None = Path("secfl-demo.png"),
    rounds: int | None = None,
    settings: DemoSettings | None = None,
) -> int:
    """Train every variant, print tables (or JSON), draw the plot; 0 if all rounds ran.

    ``rounds`` overrides the number of rounds (e.g. 1 for a smoke test); ``settings``
    replaces the defaults (fewer clients for a quick test).
    """
    settings = settings or DemoSettings()
    if rounds is not None:
        settings = dataclasses.replace(settings, rounds=rounds)
    results, warm = train_variants(settings)
    rows = [_summary(r) for r in results]
    if as_json:
        out = {
            "settings": dataclasses.asdict(settings),
            "warmup_seconds": round(warm, 3),
            "variants": rows,
        }
        print(json.dumps(out))
    else:
        _print_tables(results, rows, settings, warm)
    if plot is not None:
        _plot(results, settings, plot)
        if not as_json:
            print(f"accuracy plot: {plot}")
    failed = any(r.aborted for res in results for r in res.history)
    return 1 if failed else 0


def _print_tables(
    results: list[VariantResult], rows: list[dict[str, Any]], settings: DemoSettings, warm: float
) -> None:
    s = settings
    lines = [
        f"secfl demo: digits, {s.n_clients} clients (label-sorted shards: one digit each), "
        f"{s.rounds} rounds, logistic regression",
        f"every variant: Poisson sampling q = {s.sampling_rate} (~{s.clients_per_round:.0f} "
        f"clients per round), each drops out with probability {s.simulated_dropout:.0%} "
        f"(protocols tolerate {s.dropout:.0%}),",
        f"  clip bound {s.clip_bound}, {s.local_epochs} local SGD steps (lr {s.lr}), server "
        f"lr {s.server_lr} and momentum {s.server_momentum}",
        f"DP variant: distributed discrete Gaussian noise, z = {s.noise_multiplier}; its "
        f"noise draws share the random stream, so it",
        "  samples its own clients (same rate); epsilon is amplified by the sampling: it "
        "holds towards whoever",
        "  sees neither the sample nor its size, so not towards the server, which picks the "
        "sample, nor (open",
        "  issue) towards a reader of the counts, which the uniform average divides by (see "
        "docs/dp.md)",
        f"warm-up (imports, one round of each protocol): {warm:.1f} s, in no row below",
    ]
    print("\n".join(lines))
    for res in results:
        print(f"\n{res.variant.name}")
        print(
            f"{'round':>5s} {'sampled':>7s} {'dropped':>7s} {'accuracy':>9s} {'seconds':>8s} "
            f"{'MB sent':>8s} {'epsilon':>8s}"
        )
        for r in res.history:
            acc = r.metrics.get("accuracy", math.nan)
            eps = "-" if r.epsilon is None else f"{r.epsilon:.2f}"
            print(
                f"{r.round:5d} {r.sampled:7d} {r.dropped:7d} {acc:9.3f} {r.seconds:8.2f} "
                f"{r.bytes_sent / 1e6:8.3f} {eps:>8s}"
            )
    print("\nfinal comparison (per-round means of sampled and dropped clients)")
    print(
        f"{'variant':20s} {'protocol':9s} {'sampled':>7s} {'dropped':>7s} {'accuracy':>9s} "
        f"{'seconds':>8s} {'MB sent':>8s} {'epsilon':>8s} {'delta':>6s}"
    )
    for row in rows:
        eps = "-" if row["epsilon"] is None else f"{row['epsilon']:.2f}"
        delta = "-" if row["delta"] is None else f"{row['delta']:.0e}"
        print(
            f"{row['name']:20s} {row['protocol']:9s} {row['sampled_per_round']:7.1f} "
            f"{row['dropped_per_round']:7.1f} {row['final_accuracy']:9.3f} "
            f"{row['seconds']:8.1f} {row['mb_sent']:8.2f} {eps:>8s} {delta:>6s}"
        )


def _plot(results: list[VariantResult], settings: DemoSettings, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    # Protocols that compute the same sum draw the same curve: distinct line styles and
    # markers keep each one visible where they overlap.
    styles = [("-", "o", 6), ("--", "s", 5), (":", "^", 4), ("-.", "x", 4)]
    for i, res in enumerate(results):
        line, marker, size = styles[i % len(styles)]
        label = res.variant.name
        eps = res.history[-1].epsilon
        if eps is not None and res.config.pipeline.dp is not None:
            label += f" (eps {eps:.1f}, delta {res.config.pipeline.dp.delta:.0e})"
        ax.plot(
            [r.round for r in res.history],
            [r.metrics.get("accuracy", math.nan) for r in res.history],
            linestyle=line,
            marker=marker,
            markersize=size,
            markerfacecolor="none",
            label=label,
        )
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title(
        f"secfl demo: federated digits, {settings.n_clients} clients, q = {settings.sampling_rate}"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
