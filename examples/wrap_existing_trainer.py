"""Wrapping an existing PyTorch training script with secfl (runs in ~20 s on a laptop CPU).

The script below is an ordinary centralized trainer: a model, a `train(model, data)` loop,
and an evaluation. The lines marked `# secfl` are all that changes to train it federatedly
across 10 clients with SecAgg+ secure aggregation; `model` is still the user's own
`nn.Module` afterwards (no wrapper to unwrap), holding the trained global parameters.

Run: .venv/bin/python examples/wrap_existing_trainer.py
"""

import torch
from torch import nn

from secfl import FedAvgConfig, PipelineConfig, federated_train  # secfl

torch.manual_seed(0)
true_w = torch.tensor([[1.5], [-2.0], [0.5]])


def make_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 3)
    return x, x @ true_w + 0.1 * torch.randn(n, 1)


def train(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def evaluate(model: nn.Module) -> dict[str, float]:
    x, y = test
    with torch.no_grad():
        return {"mse": float(nn.functional.mse_loss(model(x), y))}


model = nn.Linear(3, 1)
test = make_data(500)
# Before: train(model, make_data(1000)) on one machine.
clients = [make_data(100) for _ in range(10)]  # secfl: each client keeps its own data
pipeline = PipelineConfig(protocol="secagg+", clip_bound=2.0)  # secfl: protocol, clipping
config = FedAvgConfig(rounds=10, pipeline=pipeline)  # secfl
history = federated_train(model, clients, train, config=config, evaluate=evaluate)  # secfl

for record in history:
    print(
        f"round {record.round:2d}  mse {record.metrics['mse']:.4f}  "
        f"crypto {record.crypto_seconds:.3f} s  {record.bytes_sent / 1e3:.1f} kB"
    )
print("learned weights:", model.weight.data.view(-1).tolist(), "true:", true_w.view(-1).tolist())
