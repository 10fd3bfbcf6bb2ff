"""The round driver and the in-memory simulator: one aggregation round of n clients and a
server.

The server (and any non-client party) runs in this process; the client sessions run in a
:class:`~secfl.runtime.engines.ClientPool`: here (:func:`simulate_round`, engine
``'serial'``), or spread over worker processes or Ray actors
(:func:`~secfl.runtime.scenario.run_scenario`). Messages travel as bytes, so byte counts are
the real wire sizes. Client and server CPU time are measured separately (the thread CPU
clock around each session call, in the process that runs the session). Dropouts follow a
schedule: a client scheduled to drop in phase P receives nothing and sends nothing from P
on. A client that refuses a request (raises a :class:`SecflError`), or whose message the
server rejects, is treated like a dropout from then on, and the reason is recorded
(``refusals`` / ``rejected``). Requests the server addresses to a non-client party (the
Paillier key holder, :meth:`AggregationProtocol.parties`) are delivered to it like any other
message; its CPU time and bytes are reported apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from secfl.encoding import FixedPointCodec
from secfl.errors import EngineError, InvalidArgument, LocalProtocolError, SecflError
from secfl.protocols.base import (
    AggregationProtocol,
    ClientId,
    ClientSession,
    PartyId,
    RoundResult,
    sum_vectors,
)
from secfl.runtime.engines import (
    ClientPool,
    ClientRecipe,
    InProcessPool,
    Refused,
    peak_rss_bytes,
)

__all__ = ["SimulationReport", "drive_round", "simulate_round"]

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
    engine: str = "serial"
    """Where the client sessions ran (:class:`~secfl.runtime.engines.Engine`)."""
    workers: int = 1
    """Worker processes or Ray actors the clients were spread over (1: this process)."""
    peak_rss_bytes: int | None = None
    """Peak resident memory of this process (server, driver; with engine 'serial' also
    every client), where the OS reports it."""
    worker_peak_rss_bytes: tuple[int, ...] = ()
    """Peak resident memory of each worker (engines 'processes' and 'ray')."""

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
    """Accumulates CPU time per party: the thread clock, so that work other threads of this
    process do meanwhile (a pool's pipes, Ray's I/O) is not counted as the server's."""

    def __init__(self) -> None:
        self.seconds: dict[ClientId, float] = {}

    def run(self, party: ClientId, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(party, time.thread_time() - t0)

    def add(self, party: ClientId, seconds: float) -> None:
        """Count CPU seconds spent for ``party`` elsewhere (server work on a worker)."""
        self.seconds[party] = self.seconds.get(party, 0.0) + seconds


_SERVER: ClientId = 0


class _GivenInputs(ClientRecipe):
    """The clients of :func:`simulate_round`: the caller's protocol and inputs, in this
    process (a live protocol object cannot travel to another)."""

    def __init__(self, protocol: AggregationProtocol, inputs: Mapping[ClientId, np.ndarray]):
        self._protocol = protocol
        self._inputs = inputs
        self.bits = protocol.bits
        self.dim = int(np.asarray(next(iter(inputs.values()))).size)

    def value(self, client_id: ClientId) -> np.ndarray:
        return self._inputs[client_id]

    def session(self, client_id: ClientId, value: np.ndarray, *, round_id: int) -> ClientSession:
        return self._protocol.client(round_id=round_id, client_id=client_id, value=value)


def simulate_round(
    protocol: AggregationProtocol,
    inputs: Mapping[ClientId, np.ndarray],
    *,
    dropouts: Mapping[ClientId, str] | None = None,
    round_id: int = 1,
    codec: FixedPointCodec | None = None,
) -> SimulationReport:
    """Run one round of ``protocol`` over ``inputs`` (vectors over Z_{2^bits}), every
    session in this process (engine ``'serial'``).

    ``dropouts`` maps a client to the phase in which it goes silent. ``correct`` in the
    report is True iff the round finished and its aggregate equals the sum over Z_{2^bits}
    of the inputs of exactly the clients the server reports as survivors, and every client
    that never dropped is among them. ``codec`` (the one that encoded ``inputs``): refused
    before the round if it was planned for fewer clients than the round has (their sum
    could wrap around, which ``correct`` cannot see) or for another ring.

    To run the clients on several cores or a Ray cluster, describe the round as a
    :class:`~secfl.runtime.scenario.Scenario` and use
    :func:`~secfl.runtime.scenario.run_scenario`: its workers build their clients' sessions
    from seeds, which a protocol object holding live sessions' secrets cannot be sent as.
    """
    if codec is not None:
        codec.check_sum_size(len(inputs))
        if codec.bits != protocol.bits:
            raise InvalidArgument(
                f"the codec encodes over Z_2^{codec.bits}, the protocol sums over "
                f"Z_2^{protocol.bits}: plan both with the same bits"
            )
    if not inputs:
        raise InvalidArgument("simulate_round needs at least one client input")
    dims = {int(np.asarray(v).size) for v in inputs.values()}
    if len(dims) != 1:
        raise InvalidArgument(f"all inputs must have the same length, got {sorted(dims)}")
    for cid in dropouts or {}:
        if cid not in inputs:
            raise InvalidArgument(f"dropout scheduled for unknown client {cid}")
    clients = list(inputs)
    with InProcessPool(_GivenInputs(protocol, inputs), round_id, clients) as pool:
        return drive_round(
            protocol, pool, clients, dim=dims.pop(), dropouts=dropouts, round_id=round_id
        )


def drive_round(
    protocol: AggregationProtocol,
    pool: ClientPool,
    client_ids: Sequence[ClientId],
    *,
    dim: int,
    dropouts: Mapping[ClientId, str] | None,
    round_id: int,
) -> SimulationReport:
    """Run one round: ``protocol``'s server (and its other parties) here, the clients in
    ``pool`` (not yet opened), ``dropouts`` as in :func:`simulate_round`.

    The server's requests are delivered in the order it lists them and its ``receive``
    calls follow that order too, whatever the pool, so the round is the same on every
    engine.
    """
    dropouts = dict(dropouts or {})
    known = set(client_ids)
    for cid, phase in dropouts.items():
        if cid not in known:
            raise InvalidArgument(f"dropout scheduled for unknown client {cid}")
        if phase not in protocol.phases:
            raise InvalidArgument(f"unknown phase {phase!r}; {protocol.name} has {protocol.phases}")
    drop_index = {cid: protocol.phases.index(p) for cid, p in dropouts.items()}

    clock = _Clock()
    wall0 = time.perf_counter()
    up = dict.fromkeys(client_ids, 0)
    down = dict.fromkeys(client_ids, 0)
    parties = protocol.parties()
    party_bytes = {pid: [0, 0] for pid in parties}
    refusals: dict[PartyId, str] = {}
    rejected: dict[ClientId, str] = {}
    pool.open()
    server = clock.run(
        _SERVER, protocol.server, round_id=round_id, client_ids=frozenset(client_ids), dim=dim
    )

    result: RoundResult | None = None
    aborted: str | None = None
    try:
        requests = clock.run(_SERVER, server.start)
        while requests:
            phase_index = protocol.phases.index(server.phase)
            live = {
                cid
                for cid in requests
                if cid not in parties
                and cid not in refusals
                and cid not in rejected
                and drop_index.get(cid, len(protocol.phases)) > phase_index
            }
            answers = pool.answers([(c, r) for c, r in requests.items() if c in live])
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
                if cid not in live:
                    continue
                down[cid] += len(request)
                reply = next(answers)
                if isinstance(reply, Refused):
                    refusals[cid] = reply.reason
                    continue
                if reply is not None:
                    up[cid] += len(reply)
                    try:
                        clock.run(_SERVER, server.receive, cid, reply)
                    except SecflError as e:  # the server drops a misbehaving client
                        rejected[cid] = f"{type(e).__name__}: {e}"
            if pool.workers > 1:  # the server's heavy last step on the pool's workers
                pieces = clock.run(_SERVER, server.offload, pool.workers)
                if pieces:
                    done = pool.run_work(pieces)
                    clock.add(_SERVER, sum(seconds for _, seconds in done))
                    clock.run(_SERVER, server.absorb, [r for r, _ in done])
            requests = clock.run(_SERVER, server.advance)
        result = server.result
        for cid, why in result.excluded.items():  # proven cheaters the server left out
            rejected.setdefault(cid, f"excluded: {why}")
    except (LocalProtocolError, EngineError):
        raise  # this driver's own bug or a lost worker, never an aborted round
    except SecflError as e:
        aborted = f"{type(e).__name__}: {e}"
    summaries = pool.finish(None if result is None else result.survivors)
    wall = time.perf_counter() - wall0

    seconds: dict[ClientId, float] = {}
    for s in summaries:
        seconds.update(s.seconds)
    correct = False
    if result is not None:
        parts = {i: s.survivor_sum for i, s in enumerate(summaries) if s.survivor_sum is not None}
        expected = sum_vectors(parts, bits=protocol.bits, dim=dim)
        never_dropped = known - set(drop_index) - set(refusals) - set(rejected)
        correct = (
            never_dropped <= result.survivors
            and result.survivors <= known
            and result.aggregate.size == dim
            and bool(np.array_equal(expected, result.aggregate))
        )
    return SimulationReport(
        protocol=protocol.name,
        clients=len(client_ids),
        dim=dim,
        result=result,
        aborted=aborted,
        correct=correct,
        client_seconds=tuple(seconds.get(c, 0.0) for c in client_ids),
        server_seconds=clock.seconds.get(_SERVER, 0.0),
        wall_seconds=wall,
        bytes_up=up,
        bytes_down=down,
        refusals=refusals,
        rejected=rejected,
        party_seconds={pid: clock.seconds.get(pid, 0.0) for pid in parties},
        party_bytes={pid: (b[0], b[1]) for pid, b in party_bytes.items()},
        engine=str(pool.engine),
        workers=pool.workers,
        peak_rss_bytes=peak_rss_bytes(),
        worker_peak_rss_bytes=tuple(s.peak_rss for s in summaries if s.peak_rss is not None),
    )
