"""Crashing nodes on purpose, to see (and test) what dropouts do to a secure round."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flwr.app import ConfigRecord, Context, Message
from flwr.clientapp.typing import ClientAppCallable

from secfl.integrations.flower import RECORD_KEY

_COUNTER = "secfl-app.crash"
"""``Context.state`` record: the round and how many secfl messages of it this node saw."""


@dataclass(frozen=True)
class CrashMod:
    """A client mod (placed before ``secfl_mod``) that makes nodes crash mid-round.

    For each ``(partition, round): message`` of ``crashes``, the ClientApp of that partition
    raises on the ``message``-th secfl message of that round. Flower answers the server with
    an error reply, and secfl counts the node as a dropout of that phase: for SecAgg+,
    messages 1 to 4 are its ``advertise`` (with training), ``share``, ``mask`` and
    ``unmask`` phases.
    """

    crashes: Mapping[tuple[int, int], int]

    @classmethod
    def share(cls, nodes: int, rate: float, *, rounds: range, message: int) -> CrashMod:
        """``floor(rate * nodes)`` partitions, evenly spread, crash in every round of
        ``rounds`` on the ``message``-th secfl message."""
        count = int(rate * nodes)
        partitions = {i * nodes // count for i in range(count)} if count else set()
        return cls({(p, r): message for p in partitions for r in rounds})

    def __call__(self, msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        record = msg.content.config_records.get(RECORD_KEY)
        if record is None:
            return call_next(msg, context)
        server_round = int(record["round"])
        seen = context.state.config_records.get(_COUNTER)
        count = 1 + (int(seen["count"]) if seen and seen["round"] == server_round else 0)
        context.state[_COUNTER] = ConfigRecord({"round": server_round, "count": count})
        partition = int(context.node_config["partition-id"])
        if self.crashes.get((partition, server_round)) == count:
            raise RuntimeError(f"crash on purpose: partition {partition}, round {server_round}")
        return call_next(msg, context)
