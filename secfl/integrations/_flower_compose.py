"""Which Flower strategies :class:`SecureAggregation` composes with, and how.

secfl replaces only the *sum* of the nodes' updates: the wrapped strategy keeps sampling and
configuring nodes, evaluating, aggregating metrics, and its server-side update. After a
secure round, the strategy's own ``aggregate_train`` is called with **one** reply that
carries the securely computed (weighted) average model, weight 1; for the FedAvg family that
is exactly the input its server step needs:

* ``FedAvg`` and ``FedProx`` (whose proximal term is client-side) take the average as the
  new model;
* ``FedAvgM`` applies its server learning rate and momentum to ``average - current``;
* ``FedAdam``, ``FedYogi`` and ``FedAdagrad`` apply their adaptive server step to it.

A strategy whose ``aggregate_train`` needs the individual updates (a median, a trimmed mean,
distances between updates, per-node clipping or noise) cannot run on a secure sum; it is
refused here, at construction, with the secure alternative, rather than silently replaced
by an average. So is any strategy whose ``aggregate_train`` secfl does not know, unless its
class declares ``secfl_composable = True`` (its ``aggregate_train`` then promises to need
only the weighted average of the replies' arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    Bulyan,
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedTrimmedAvg,
    FedXgbBagging,
    FedXgbCyclic,
    FedYogi,
    MultiKrum,
    QFedAvg,
    Strategy,
)

from secfl.errors import InvalidArgument

__all__ = ["COMPOSABLE", "check_composable", "strategy_step"]

COMPOSABLE: tuple[type[Strategy], ...] = (FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad)
"""Strategies whose ``aggregate_train`` needs only the weighted average (``FedProx`` and
other subclasses that leave ``aggregate_train`` alone inherit FedAvg's)."""

_KNOWN_STEPS: frozenset[Callable[..., Any]] = frozenset(c.aggregate_train for c in COMPOSABLE)

_SECURE_DP = (
    "use secfl's own privacy instead: SecureAggregation(FedAvg(...), clip_bound=C, "
    "dp=DistributedDP(noise_multiplier=z, max_cohort=K, noise_clients=M)) clips on each node "
    "and adds the noise inside the "
    "secure sum, so it also protects against the server; adaptive_clip=AdaptiveClipConfig(...) "
    "moves the clip bound from a count that also stays inside the sum"
)
_SECURE_ROBUST = (
    "secure aggregation reveals only the sum, by design. Bound each node's influence with "
    "secfl's clip_bound (and distributed DP) and wrap FedAvg, FedAvgM or FedAdam instead"
)

# Refused classes, most specific first (Krum is a MultiKrum).
_REFUSED: tuple[tuple[type[Strategy], str], ...] = (
    (
        DifferentialPrivacyServerSideFixedClipping,
        "clips every node's update on the server, so it needs each update in the clear, "
        "which secure aggregation exists to hide; " + _SECURE_DP,
    ),
    (
        DifferentialPrivacyServerSideAdaptiveClipping,
        "clips every node's update on the server, so it needs each update in the clear, "
        "which secure aggregation exists to hide; " + _SECURE_DP,
    ),
    (
        DifferentialPrivacyClientSideFixedClipping,
        "counts and validates the individual replies and adds central noise on the server, "
        "which under secure aggregation sees the exact sum before any noise (its guarantee "
        "would not hold against the server); " + _SECURE_DP,
    ),
    (
        DifferentialPrivacyClientSideAdaptiveClipping,
        "reads each node's clipped-or-not bit in the clear and adds central noise on the "
        "server, which sees the exact sum first; " + _SECURE_DP,
    ),
    (FedMedian, "takes the coordinate-wise median of the individual updates; " + _SECURE_ROBUST),
    (FedTrimmedAvg, "trims the individual updates' extremes; " + _SECURE_ROBUST),
    (Bulyan, "selects updates by their distances to each other; " + _SECURE_ROBUST),
    (MultiKrum, "selects updates by their distances to each other; " + _SECURE_ROBUST),
    (QFedAvg, "reweights each update by that node's own loss; " + _SECURE_ROBUST),
    (FedXgbBagging, "aggregates tree ensembles, not arrays secfl can sum"),
    (FedXgbCyclic, "trains one node at a time; there is no sum to protect"),
)


def check_composable(strategy: Strategy) -> None:
    """Refuse a strategy secfl cannot run on a secure sum without changing what it does."""
    name = type(strategy).__name__
    for cls, why in _REFUSED:
        if isinstance(strategy, cls):
            raise InvalidArgument(f"SecureAggregation cannot wrap {name}: it {why}")
    if getattr(type(strategy), "secfl_composable", False) is True:
        return
    if not isinstance(strategy, FedAvg):
        raise InvalidArgument(
            f"SecureAggregation cannot wrap {name}: secfl composes with the FedAvg family "
            f"({', '.join(c.__name__ for c in COMPOSABLE)}, FedProx); if {name}'s aggregate_train "
            f"needs only the weighted average of the replies' arrays, set "
            f"`secfl_composable = True` on the class (see docs/flower.md)"
        )
    if type(strategy).aggregate_train not in _KNOWN_STEPS:
        raise InvalidArgument(
            f"SecureAggregation cannot wrap {name}: it overrides aggregate_train, which under "
            f"secure aggregation would receive one reply carrying the weighted average, not the "
            f"nodes' updates. If that is all it needs (a server optimizer on the average, like "
            f"FedAdam), set `secfl_composable = True` on the class; if it needs the individual "
            f"updates, it cannot run on a secure sum ({_SECURE_ROBUST})"
        )


def strategy_step(
    strategy: Strategy,
    server_round: int,
    average: ArrayRecord,
    metrics: MetricRecord,
    weight_key: str,
) -> tuple[ArrayRecord | None, MetricRecord | None]:
    """The wrapped strategy's server step on the secure average.

    ``strategy.aggregate_train`` gets one reply carrying ``average`` (the whole model:
    integer arrays at their global values), and ``metrics`` with weight 1.
    """
    record = MetricRecord(dict(metrics))
    record[weight_key] = 1
    content = RecordDict({"arrays": average, "metrics": record})
    reply = Message(content, dst_node_id=0, message_type=MessageType.TRAIN)
    return strategy.aggregate_train(server_round, [reply])
