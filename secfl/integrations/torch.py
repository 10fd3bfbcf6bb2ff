"""Secure federated training of an existing PyTorch model with the user's own train loop.

The user keeps their ``nn.Module`` and their ``train(model, data) -> None`` function; secfl
only moves parameters: it flattens the model's state into one float vector (names, shapes,
dtypes and device kept in a :class:`ParameterLayout`), runs FedAvg rounds in which each
client trains **the user's own model object** (loaded with the global parameters first, so
an optimizer built once next to the model steps the right tensors), its update is
securely aggregated, and the new global parameters are written back into that object.

Buffers: floating-point buffers (e.g. BatchNorm running mean/var) are averaged through the
same secure sum as parameters; integer buffers (e.g. ``num_batches_tracked``) are not
aggregated and keep the global model's values. Requires the ``torch`` extra.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from secfl.errors import InvalidArgument
from secfl.fl.fedavg import FedAvgConfig, FederatedAveraging, RoundRecord, Weighting
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


def _examples(data: object) -> int | None:
    """A client's example count: ``len(loader.dataset)`` for a DataLoader (not its number of
    batches), the first dimension of a tensor or of a tuple of tensors, else ``len``."""
    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, tuple | list) and data and isinstance(data[0], torch.Tensor):
        data = data[0]
    if isinstance(data, torch.Tensor):
        return int(data.shape[0]) if data.dim() else None
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None


def _check_client_data(client_data: object, *, weighted: bool) -> list[int]:
    """Refuse what is not one element per client; the example count of each element."""
    if isinstance(client_data, DataLoader | Dataset | torch.Tensor):
        raise InvalidArgument(
            f"client_data must be a list with one element per client, got one "
            f"{type(client_data).__name__}: split the data first, e.g. "
            f"[DataLoader(Subset(dataset, idx), batch_size=32) for idx in client_indices]"
        )
    if not isinstance(client_data, Sequence) or isinstance(client_data, str | bytes):
        raise InvalidArgument(
            f"client_data must be a list or tuple with one element per client, got "
            f"{type(client_data).__name__} (a generator or iterator is read once: pass "
            f"list(...))"
        )
    if len(client_data) < 2:
        raise InvalidArgument(
            f"federated training needs data for at least 2 clients, got {len(client_data)}"
        )
    counts = [_examples(d) for d in client_data]
    unknown = [i for i, c in enumerate(counts) if c is None]
    if weighted and unknown:
        raise InvalidArgument(
            f"weighting by examples needs each client's example count; client(s) {unknown[:5]} "
            f"have no len() (pass DataLoaders, datasets or tensors, or Weighting.UNIFORM)"
        )
    return [1 if c is None else c for c in counts]


def _checked_evaluate(
    evaluate: Callable[[nn.Module], object], model: nn.Module
) -> Callable[[nn.Module], Mapping[str, float]]:
    """``evaluate`` as ``model -> {name: value}``, checked once on the initial model."""
    try:
        params = inspect.signature(evaluate).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: trust it
        params = None
    if params is not None:
        required = [
            p
            for p in params
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(required) > 1:
            names = ", ".join(p.name for p in required)
            raise InvalidArgument(
                f"evaluate must take one argument, the model; yours takes ({names}): pass "
                f"evaluate=lambda model: {getattr(evaluate, '__name__', 'evaluate')}(model, ...)"
            )

    def metrics(m: nn.Module) -> Mapping[str, float]:
        value = evaluate(m)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"metric": float(value)}
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return {"metric": float(value)}
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            try:
                return {k: float(v) for k, v in value.items()}
            except (TypeError, ValueError):
                pass
        raise InvalidArgument(
            f"evaluate(model) must return a number or a dict of numbers, got {type(value).__name__}"
        )

    metrics(model)  # before round 1: a broken evaluate fails now, not after training
    return metrics


def _seed_bytes(seed: int | str | bytes) -> bytes:
    if isinstance(seed, bool) or not isinstance(seed, int | str | bytes):
        raise InvalidArgument(f"seed must be an int, a str or bytes, got {type(seed).__name__}")
    return hashlib.sha256(b"secfl seed/" + repr(seed).encode()).digest()


def _progress_line(record: RoundRecord, rounds: int) -> str:
    head = f"secfl round {record.round}/{rounds}"
    if record.aborted:
        return f"{head}: aborted ({record.aborted}); the model is unchanged"
    parts = [f"{record.survivors}/{record.sampled} clients"]
    parts += [f"{k} {v:.4g}" for k, v in record.metrics.items()]
    if record.epsilon is not None:
        parts.append(f"epsilon {record.epsilon:.3g}")
    if record.rejected:
        parts.append(f"{len(record.rejected)} rejected")
    return f"{head}: {', '.join(parts)} ({record.seconds:.1f} s)"


def federated_train(
    model: nn.Module,
    client_data: Sequence[D],
    train: Callable[[nn.Module, D], None],
    *,
    config: FedAvgConfig,
    evaluate: Callable[[nn.Module], object] | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    quiet: bool = False,
    seed: int | str | bytes | None = None,
    rng: Csprng | None = None,
) -> list[RoundRecord]:
    """Train ``model`` federatedly over ``client_data`` with secure aggregation.

    ``client_data`` has one element per client (a DataLoader, a dataset, a tensor pair...);
    ``train(model, data)`` is the user's own local loop (optimizer, loss, epochs). Each
    sampled client trains **``model`` itself**, loaded with the global parameters, so an
    optimizer built next to the model steps the right tensors; the updates are clipped,
    encoded and securely aggregated with ``config.pipeline.protocol``. ``model`` ends up
    holding the final global parameters (the same object). ``evaluate(model)`` (checked
    before round 1) returns a number or a dict of numbers for each round's record.
    Returns the per-round history. A line per round goes to stderr unless ``quiet``;
    ``on_round(record)`` is called after each. ``seed`` makes secfl's randomness (sampling,
    rounding, noise, masks) reproducible: the same seed, data and torch seed give the same
    model bytes. It is for experiments; a deployment draws from the OS (the default).
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgument(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, FedAvgConfig):
        raise InvalidArgument(f"config must be a FedAvgConfig, got {type(config).__name__}")
    examples = _check_client_data(client_data, weighted=config.weighting is Weighting.EXAMPLES)
    if seed is not None and rng is not None:
        raise InvalidArgument("give seed or rng, not both")
    if seed is not None:
        rng = Csprng(seed=_seed_bytes(seed))
    layout = ParameterLayout.of(model)
    initial = layout.flatten(model)
    measure = _checked_evaluate(evaluate, model) if evaluate is not None else None

    def local_update(idx: int, params: np.ndarray) -> tuple[np.ndarray, int]:
        layout.load_into(model, params)
        model.train()
        train(model, client_data[idx])
        return layout.flatten(model), examples[idx]

    def evaluate_params(params: np.ndarray) -> Mapping[str, float]:
        assert measure is not None
        layout.load_into(model, params)
        return measure(model)

    fed = FederatedAveraging(
        config,
        initial=initial,
        n_clients=len(client_data),
        local_update=local_update,
        evaluate=evaluate_params if measure is not None else None,
        rng=rng,
    )

    def report(record: RoundRecord) -> None:
        if not quiet:
            print(_progress_line(record, config.rounds), file=sys.stderr, flush=True)
        if on_round is not None:
            on_round(record)

    try:
        history = fed.run(on_round=report)
    finally:
        layout.load_into(model, fed.params)  # the global model, also if a round raised
    return history
