"""Federated averaging over any secfl protocol: rounds, sampling, weighting, state."""

from secfl.fl.fedavg import FedAvgConfig, FederatedAveraging, RoundRecord, Weighting

__all__ = ["FedAvgConfig", "FederatedAveraging", "RoundRecord", "Weighting"]
