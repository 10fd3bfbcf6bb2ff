"""In-memory simulator: one aggregation round of n clients and a server in one process.

Messages travel as bytes through in-memory queues, so byte counts are the real wire sizes.
Client and server CPU time are measured separately (``time.process_time`` around each
session call). Dropouts follow a schedule: a client scheduled to drop in phase P receives
nothing and sends nothing from P on. A client that refuses a request (raises a
:class:`SecflError`), or whose message the server rejects, is treated like a dropout from
then on, and the reason is recorded (``refusals`` / ``rejected``). Requests the server
addresses to a non-client party (the Paillier key holder, :meth:`AggregationProtocol.parties`)
are delivered to it like any other message; its CPU time and bytes are reported apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from secfl.encoding import FixedPointCodec
from secfl.errors import InvalidArgument, LocalProtocolError, SecflError
from secfl.protocols.base import (
    AggregationProtocol,
    ClientId,
    ClientSession,
    PartyId,
    RoundResult,
    sum_vectors,
)

__all__ = ["SimulationReport", "simulate_round"]

T = TypeVar("T")


@dataclass(frozen=True)
class SimulationReport:
    """Outcome and costs of one simulated round."""

    protocol: str
    clients: int
    dim: int
    result: RoundResult | None
    aborted: str | None
    correct: bool
    client_seconds: tuple[float, ...]
    server_seconds: float
    wall_seconds: float
    bytes_up: Mapping[ClientId, int]
    bytes_down: Mapping[ClientId, int]
    refusals: Mapping[PartyId, str] = field(default_factory=dict)
    """Parties that refused a request (clients, or e.g. :data:`KEY_HOLDER`), and why."""
    rejected: Mapping[ClientId, str] = field(default_factory=dict)
    party_seconds: Mapping[PartyId, float] = field(default_factory=dict)
    """CPU seconds of the non-client parties (the Paillier key holder)."""
    party_bytes: Mapping[PartyId, tuple[int, int]] = field(default_factory=dict)
    """Bytes (received, sent) by each non-client party."""

    @property
    def dropped(self) -> int:
        """Clients whose input is not in the aggregate (all of them if the round aborted)."""
        return self.clients if self.result is None else len(self.result.dropped)

    @property
    def client_seconds_mean(self) -> float:
        return float(np.mean(self.client_seconds)) if self.client_seconds else 0.0

    @property
    def client_seconds_p95(self) -> float:
        return float(np.percentile(self.client_seconds, 95)) if self.client_seconds else 0.0

    @property
    def bytes_up_per_client(self) -> float:
        """Mean bytes sent, over the clients that sent anything."""
        return _mean_nonzero(self.bytes_up)

    @property
    def bytes_down_per_client(self) -> float:
        """Mean bytes received, over the clients that received anything."""
        return _mean_nonzero(self.bytes_down)


def _mean_nonzero(counts: Mapping[ClientId, int]) -> float:
    active = [v for v in counts.values() if v]
    return float(np.mean(active)) if active else 0.0


class _Clock:
    """Accumulates process CPU time per party."""

    def __init__(self) -> None:
        self.seconds: dict[ClientId, float] = {}

    def run(self, party: ClientId, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[party] = self.seconds.get(party, 0.0) + time.process_time() - t0


_SERVER: ClientId = 0


def simulate_round(
    protocol: AggregationProtocol,
    inputs: Mapping[ClientId, np.ndarray],
    *,
    dropouts: Mapping[ClientId, str] | None = None,
    round_id: int = 1,
    codec: FixedPointCodec | None = None,
) -> SimulationReport:
    """Run one round of ``protocol`` over ``inputs`` (vectors over Z_{2^bits}).

    ``dropouts`` maps a client to the phase in which it goes silent. ``correct`` in the
    report is True iff the round finished and its aggregate equals the sum over Z_{2^bits}
    of the inputs of exactly the clients the server reports as survivors, and every client
    that never dropped is among them. ``codec`` (the one that encoded ``inputs``): refused
    before the round if it was planned for fewer clients than the round has (their sum
    could wrap around, which ``correct`` cannot see) or for another ring.
    """
    if codec is not None:
        codec.check_sum_size(len(inputs))
        if codec.bits != protocol.bits:
            raise InvalidArgument(
                f"the codec encodes over Z_2^{codec.bits}, the protocol sums over "
                f"Z_2^{protocol.bits}: plan both with the same bits"
            )
    dropouts = dict(dropouts or {})
    if not inputs:
        raise InvalidArgument("simulate_round needs at least one client input")
    dims = {int(np.asarray(v).size) for v in inputs.values()}
    if len(dims) != 1:
        raise InvalidArgument(f"all inputs must have the same length, got {sorted(dims)}")
    (dim,) = dims
    for cid, phase in dropouts.items():
        if cid not in inputs:
            raise InvalidArgument(f"dropout scheduled for unknown client {cid}")
        if phase not in protocol.phases:
            raise InvalidArgument(f"unknown phase {phase!r}; {protocol.name} has {protocol.phases}")
    drop_index = {cid: protocol.phases.index(p) for cid, p in dropouts.items()}

    clock = _Clock()
    wall0 = time.perf_counter()
    up = dict.fromkeys(inputs, 0)
    down = dict.fromkeys(inputs, 0)
    parties = protocol.parties()
    party_bytes = {pid: [0, 0] for pid in parties}
    refusals: dict[PartyId, str] = {}
    rejected: dict[ClientId, str] = {}
    clients: dict[ClientId, ClientSession] = {}
    for cid, value in inputs.items():
        clients[cid] = clock.run(
            cid, protocol.client, round_id=round_id, client_id=cid, value=value
        )
    server = clock.run(
        _SERVER, protocol.server, round_id=round_id, client_ids=frozenset(inputs), dim=dim
    )

    result: RoundResult | None = None
    aborted: str | None = None
    try:
        requests = clock.run(_SERVER, server.start)
        while requests:
            phase_index = protocol.phases.index(server.phase)
            for cid, request in requests.items():
                if cid in parties:  # a non-client party: no dropout schedule applies
                    party_bytes[cid][0] += len(request)
                    try:
                        answer = clock.run(cid, parties[cid].handle, request)
                    except SecflError as e:
                        refusals[cid] = f"{type(e).__name__}: {e}"
                        continue
                    if answer is not None:
                        party_bytes[cid][1] += len(answer)
                        clock.run(_SERVER, server.receive, cid, answer)
                    continue
                if (
                    cid in refusals
                    or cid in rejected
                    or drop_index.get(cid, len(protocol.phases)) <= phase_index
                ):
                    continue
                down[cid] += len(request)
                try:
                    reply = clock.run(cid, clients[cid].handle, request)
                except SecflError as e:
                    refusals[cid] = f"{type(e).__name__}: {e}"
                    continue
                if reply is not None:
                    up[cid] += len(reply)
                    try:
                        clock.run(_SERVER, server.receive, cid, reply)
                    except SecflError as e:  # the server drops a misbehaving client
                        rejected[cid] = f"{type(e).__name__}: {e}"
            requests = clock.run(_SERVER, server.advance)
        result = server.result
    except LocalProtocolError:
        raise  # this driver's own bug, never an aborted round
    except SecflError as e:
        aborted = f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - wall0

    return SimulationReport(
        protocol=protocol.name,
        clients=len(inputs),
        dim=dim,
        result=result,
        aborted=aborted,
        correct=result is not None
        and _is_correct(protocol, inputs, drop_index, refusals, rejected, result),
        client_seconds=tuple(clock.seconds.get(c, 0.0) for c in inputs),
        server_seconds=clock.seconds.get(_SERVER, 0.0),
        wall_seconds=wall,
        bytes_up=up,
        bytes_down=down,
        refusals=refusals,
        rejected=rejected,
        party_seconds={pid: clock.seconds.get(pid, 0.0) for pid in parties},
        party_bytes={pid: (b[0], b[1]) for pid, b in party_bytes.items()},
    )


def _is_correct(
    protocol: AggregationProtocol,
    inputs: Mapping[ClientId, np.ndarray],
    drop_index: Mapping[ClientId, int],
    refusals: Mapping[ClientId, str],
    rejected: Mapping[ClientId, str],
    result: RoundResult,
) -> bool:
    never_dropped = set(inputs) - set(drop_index) - set(refusals) - set(rejected)
    if not never_dropped <= result.survivors or not result.survivors <= set(inputs):
        return False
    expected = sum_vectors(
        {c: inputs[c] for c in result.survivors}, bits=protocol.bits, dim=result.aggregate.size
    )
    return bool(np.array_equal(expected, result.aggregate))
