"""secfl: secure aggregation for federated learning.

This namespace is the recipe layer, what applications need: federated averaging
(:class:`FedAvgConfig`, :class:`FederatedAveraging`), the numeric pipeline with distributed
DP (:class:`PipelineConfig`, :class:`Pipeline`, :class:`DistributedDP`), adaptive clipping,
the SecAgg threat model, the random generator :class:`Rng` and the error family rooted at
:class:`SecflError`. :mod:`secfl.hazmat` holds the raw primitives; it is for experts.

The entry points that need an optional extra are loaded on first access, so
``import secfl`` imports neither torch nor Flower: ``secfl.federated_train`` (the ``torch``
extra) and ``secfl.SecureAggregation``, ``secfl.secfl_mod``, ``secfl.SecflClientMod`` (the
``flower`` extra). Without the extra, the access raises :class:`MissingDependency`. They
are left out of ``__all__``, so ``from secfl import *`` never needs an extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from secfl.dp import AdaptiveClipConfig
from secfl.errors import (
    EncodingOverflow,
    EngineError,
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    LocalProtocolError,
    MissingDependency,
    ProtocolAbort,
    SecflError,
)
from secfl.fl import FedAvgConfig, FederatedAveraging, RoundRecord, Weighting
from secfl.paillier_keys import PaillierPrivateKey, PaillierPublicKey, generate_paillier_keypair
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, PipelineConfig
from secfl.protocols.base import ProtocolName
from secfl.protocols.secagg import ThreatModel
from secfl.rng import Rng

if TYPE_CHECKING:  # the lazy names below, typed for type checkers
    from secfl.integrations.flower import SecflClientMod as SecflClientMod
    from secfl.integrations.flower import SecureAggregation as SecureAggregation
    from secfl.integrations.flower import secfl_mod as secfl_mod
    from secfl.integrations.torch import federated_train as federated_train

__version__ = "0.1.0"  # the one definition: pyproject.toml reads it (hatch dynamic version)

__all__ = [
    "AdaptiveClipConfig",
    "DPMechanism",
    "DistributedDP",
    "EncodingOverflow",
    "EngineError",
    "FedAvgConfig",
    "FederatedAveraging",
    "InsufficientSurvivors",
    "IntegrityError",
    "InvalidArgument",
    "LocalProtocolError",
    "MissingDependency",
    "PaillierPrivateKey",
    "PaillierPublicKey",
    "Pipeline",
    "PipelineConfig",
    "ProtocolAbort",
    "ProtocolName",
    "Rng",
    "RoundRecord",
    "SecflError",
    "ThreatModel",
    "Weighting",
    "__version__",
    "generate_paillier_keypair",
]

# Lazy name -> (module defining it, module the extra provides, the extra to install).
_LAZY: dict[str, tuple[str, str, str]] = {
    "federated_train": ("secfl.integrations.torch", "torch", "torch"),
    "SecureAggregation": ("secfl.integrations.flower", "flwr", "flower"),
    "SecflClientMod": ("secfl.integrations.flower", "flwr", "flower"),
    "secfl_mod": ("secfl.integrations.flower", "flwr", "flower"),
}


def __getattr__(name: str) -> object:
    """Import a name that needs an optional extra on first access (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'secfl' has no attribute {name!r}")
    module, dependency, extra = _LAZY[name]
    try:
        importlib.import_module(dependency)
    except ImportError as e:
        raise MissingDependency(
            f"secfl.{name} needs {dependency}, which is not installed: pip install 'secfl[{extra}]'"
        ) from e
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses find it without calling __getattr__
    return value


def __dir__() -> list[str]:
    """The module's names and the lazy ones, for ``dir()`` and tab completion."""
    return sorted([*globals(), *_LAZY])
