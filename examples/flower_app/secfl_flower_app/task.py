"""Model, data and training: linear regression on synthetic, partition-specific data.

Everything is deterministic given the partition id and the global arrays, so a test can
recompute what each node contributed.
"""

from __future__ import annotations

import numpy as np

FEATURES = 8
EXAMPLES = 64
_TRUE_W = np.linspace(-1.0, 1.0, FEATURES)
_TRUE_B = 0.5


def initial_arrays() -> dict[str, np.ndarray]:
    """The starting global model: zero weights and bias (float32, like most models)."""
    return {"weight": np.zeros(FEATURES, np.float32), "bias": np.zeros(1, np.float32)}


def load_partition(partition_id: int) -> tuple[np.ndarray, np.ndarray]:
    """This node's private data: features and targets of a noisy linear model."""
    rng = np.random.default_rng(1000 + partition_id)
    x = rng.normal(size=(EXAMPLES, FEATURES)) + 0.1 * partition_id
    y = x @ _TRUE_W + _TRUE_B + 0.1 * rng.normal(size=EXAMPLES)
    return x, y


def loss(arrays: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error."""
    pred = x @ arrays["weight"].astype(np.float64) + float(arrays["bias"][0])
    return float(np.mean((pred - y) ** 2))


def train(
    arrays: dict[str, np.ndarray], partition_id: int, *, lr: float, steps: int
) -> tuple[dict[str, np.ndarray], int, float]:
    """Full-batch gradient descent on this node's data: new arrays, examples, final loss."""
    x, y = load_partition(partition_id)
    w = arrays["weight"].astype(np.float64)
    b = float(arrays["bias"][0])
    for _ in range(steps):
        err = x @ w + b - y
        w = w - lr * 2.0 * (x.T @ err) / len(y)
        b = b - lr * 2.0 * float(err.mean())
    new = {"weight": w.astype(np.float32), "bias": np.array([b], np.float32)}
    return new, len(y), loss(new, x, y)
