"""Federated averaging over any secfl protocol: the round core, and its simulator driver."""

from secfl.fl.fedavg import FedAvgConfig, FederatedAveraging, RoundRecord
from secfl.fl.round import ClientContribution, RoundCore, RoundOutcome, RoundShape, Weighting

__all__ = [
    "ClientContribution",
    "FedAvgConfig",
    "FederatedAveraging",
    "RoundCore",
    "RoundOutcome",
    "RoundRecord",
    "RoundShape",
    "Weighting",
]
