"""Secure federated training of an existing PyTorch model with the user's own train loop.

The user keeps their ``nn.Module`` and their ``train(model, data) -> None`` function; secfl
only moves parameters: it flattens the model's state into one float vector (names, shapes,
dtypes and device kept in a :class:`ParameterLayout`), runs FedAvg rounds in which every
client trains a private copy with ``train`` and its update is securely aggregated, and
writes the new global parameters back into **the user's own model object**, in place.

Buffers: floating-point buffers (e.g. BatchNorm running mean/var) are averaged through the
same secure sum as parameters; integer buffers (e.g. ``num_batches_tracked``) are not
aggregated and keep the global model's values. Requires the ``torch`` extra.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from secfl.errors import InvalidArgument
from secfl.fl.fedavg import FedAvgConfig, FederatedAveraging, RoundRecord
from secfl.hazmat.rng import Csprng

__all__ = ["ParameterLayout", "federated_train"]

D = TypeVar("D")


@dataclass(frozen=True)
class _Entry:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    start: int
    size: int


@dataclass(frozen=True)
class ParameterLayout:
    """Where each floating-point tensor of a model's state lives in the flat vector."""

    entries: tuple[_Entry, ...]

    @classmethod
    def of(cls, model: nn.Module) -> ParameterLayout:
        entries, start = [], 0
        for name, tensor in model.state_dict().items():
            if not torch.is_floating_point(tensor):
                continue  # integer buffers are not aggregated (see module docstring)
            size = tensor.numel()
            entries.append(
                _Entry(name, tuple(tensor.shape), tensor.dtype, tensor.device, start, size)
            )
            start += size
        if not entries:
            raise InvalidArgument("the model has no floating-point parameters or buffers")
        return cls(tuple(entries))

    @property
    def size(self) -> int:
        last = self.entries[-1]
        return last.start + last.size

    def flatten(self, model: nn.Module) -> np.ndarray:
        """The model's floating-point state as one float64 vector."""
        state = model.state_dict()
        out = np.empty(self.size, dtype=np.float64)
        for e in self.entries:
            t = state.get(e.name)
            if t is None or tuple(t.shape) != e.shape:
                raise InvalidArgument(f"model tensor {e.name!r} is missing or changed shape")
            out[e.start : e.start + e.size] = (
                t.detach().to("cpu", torch.float64).reshape(-1).numpy()
            )
        return out

    def load_into(self, model: nn.Module, vector: np.ndarray) -> None:
        """Write ``vector`` into ``model``'s tensors in place (dtype and device kept)."""
        if vector.shape != (self.size,):
            raise InvalidArgument(f"vector has shape {vector.shape}, the layout has {self.size}")
        state = model.state_dict()
        with torch.no_grad():
            for e in self.entries:
                chunk = torch.from_numpy(np.ascontiguousarray(vector[e.start : e.start + e.size]))
                state[e.name].copy_(chunk.reshape(e.shape).to(device=e.device, dtype=e.dtype))


def _examples(data: object) -> int:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return 1


def federated_train(
    model: nn.Module,
    client_data: Sequence[D],
    train: Callable[[nn.Module, D], None],
    *,
    config: FedAvgConfig,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    rng: Csprng | None = None,
) -> list[RoundRecord]:
    """Train ``model`` federatedly over ``client_data`` with secure aggregation.

    ``train(model, data)`` is the user's own local loop (optimizer, loss, epochs). Each
    sampled client trains a private copy of ``model`` on its data; the updates are clipped,
    encoded and securely aggregated with ``config.pipeline.protocol``. ``model`` itself ends up
    holding the final global parameters (the same object, updated in place). Returns the
    per-round history; ``evaluate(model)`` (if given) fills each record's metrics.
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgument(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if len(client_data) < 2:
        raise InvalidArgument("federated training needs data for at least 2 clients")
    layout = ParameterLayout.of(model)
    worker = copy.deepcopy(model)

    def local_update(idx: int, params: np.ndarray) -> tuple[np.ndarray, int]:
        layout.load_into(worker, params)
        worker.train()
        train(worker, client_data[idx])
        return layout.flatten(worker), _examples(client_data[idx])

    def evaluate_params(params: np.ndarray) -> Mapping[str, float]:
        assert evaluate is not None
        layout.load_into(model, params)
        return evaluate(model)

    fed = FederatedAveraging(
        config,
        initial=layout.flatten(model),
        n_clients=len(client_data),
        local_update=local_update,
        evaluate=evaluate_params if evaluate is not None else None,
        rng=rng,
    )
    history = fed.run(on_round=on_round)
    layout.load_into(model, fed.params)
    return history
