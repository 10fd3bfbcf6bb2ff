"""Where the client sessions of a simulated round run: this process, local worker processes,
or Ray actors.

The server (and any non-client party) always runs in the driving process; the clients'
sessions are spread over *shards*. A :class:`Shard` owns the sessions of its clients for the
whole round: it builds them itself from a picklable :class:`ClientRecipe` (a seed and a
configuration, never a session: sessions hold secrets and refuse pickling) and afterwards
only message bytes go in and out. Each client's CPU time is measured inside its shard, with
the thread clock around the session's own calls.

A pool hands the driver the clients' answers in the order the server's requests listed them,
whatever the engine, so the server sees the same calls in the same order and a seeded round
gives the same bytes on every engine. Sharded pools keep a few batches in flight per worker
(the workers compute while the driver feeds the server) and hold at most those batches'
replies at once.

A driver may also hand a pool the server's heavy last step (:meth:`ClientPool.run_work`,
pieces of :class:`~secfl.protocols.base.ServerWork`: SecAgg's mask removal), which sharded
pools spread over their workers; the workers are the server's own, like this process.

A worker that dies, or stops answering within ``timeout``, ends the round with
:class:`~secfl.errors.EngineError`; so does an unexpected exception inside a worker (with its
traceback), which in this process would have propagated.
"""

from __future__ import annotations

import abc
import contextlib
import math
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import numpy as np

from secfl.errors import EngineError, InvalidArgument, SecflError
from secfl.protocols.base import ClientId, ClientSession, NamedValue, ServerWork, sum_vectors

__all__ = [
    "ENGINES",
    "ClientPool",
    "ClientRecipe",
    "Engine",
    "InProcessPool",
    "ProcessPool",
    "Refused",
    "Shard",
    "ShardSummary",
    "ShardedPool",
    "check_engine_options",
    "open_pool",
    "peak_rss_bytes",
]

T = TypeVar("T")


class Engine(NamedValue):
    """How a simulated round runs its client sessions."""

    SERIAL = "serial"
    """One after the other in this process (single core; no start-up cost)."""
    PROCESSES = "processes"
    """In parallel in local worker processes, one per core by default."""
    RAY = "ray"
    """In parallel in Ray actors, on a local Ray instance or an existing cluster (the
    ``ray`` extra)."""


ENGINES: tuple[str, ...] = tuple(e.value for e in Engine)


def check_engine_options(
    engine: Engine | str, *, workers: int | None, address: str | None, timeout: float | None
) -> Engine:
    """The engine named by ``engine``, its options checked (raises :class:`InvalidArgument`)."""
    try:
        chosen = Engine(engine)
    except ValueError:
        raise InvalidArgument(f"unknown engine {engine!r}; choose from {ENGINES}") from None
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidArgument(f"workers must be an integer >= 1, got {workers!r}")
        if chosen is Engine.SERIAL:
            raise InvalidArgument(
                "workers goes with engine 'processes' or 'ray'; engine 'serial' runs every "
                "client in this process: drop workers, or choose another engine"
            )
    if address is not None and chosen is not Engine.RAY:
        raise InvalidArgument(
            f"an address names a Ray cluster: it goes with engine 'ray', not {str(chosen)!r}"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise InvalidArgument(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return chosen


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size in bytes (``VmHWM``), where the OS tells."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


# ----------------------------------------------------------------------------- shards
class ClientRecipe(abc.ABC):
    """How to build the clients of one round where they run: their inputs and sessions.

    Sharded engines pickle the recipe to their workers, so it holds configuration and seeds,
    never a session or a key object. Building client ``c`` must not depend on which other
    clients the same shard builds, so that any split over workers gives the same sessions.
    """

    bits: int
    dim: int

    @abc.abstractmethod
    def value(self, client_id: ClientId) -> np.ndarray:
        """The client's input, a vector over Z_{2^bits} of length :attr:`dim`."""

    @abc.abstractmethod
    def session(self, client_id: ClientId, value: np.ndarray, *, round_id: int) -> ClientSession:
        """The client's session, contributing ``value``; timed as the client's cost."""


@dataclass(frozen=True)
class Refused:
    """A client refused a request (its session raised a :class:`SecflError`)."""

    reason: str


Outcome = bytes | None | Refused
"""A client's answer to one request: its reply, ``None`` (nothing to send), or a refusal."""


@dataclass(frozen=True)
class ShardSummary:
    """What a shard reports at the end of a round."""

    seconds: Mapping[ClientId, float]
    survivor_sum: np.ndarray | None
    """Sum over Z_{2^bits} of its clients' inputs among the survivors (None if no result)."""
    peak_rss: int | None


class Shard:
    """The sessions of some clients of one round, built here from the recipe."""

    def __init__(self, recipe: ClientRecipe, round_id: int, client_ids: Sequence[ClientId]):
        self._recipe = recipe
        self._seconds: dict[ClientId, float] = {}
        self._values: dict[ClientId, np.ndarray] = {}
        self._sessions: dict[ClientId, ClientSession] = {}
        for cid in client_ids:
            value = recipe.value(cid)
            self._values[cid] = value
            self._sessions[cid] = self._timed(cid, recipe.session, cid, value, round_id=round_id)

    def _timed(self, cid: ClientId, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self._seconds[cid] = self._seconds.get(cid, 0.0) + time.thread_time() - t0

    def handle_one(self, cid: ClientId, request: bytes) -> Outcome:
        """The client's answer to one request."""
        try:
            return self._timed(cid, self._sessions[cid].handle, request)
        except SecflError as e:
            return Refused(f"{type(e).__name__}: {e}")

    def handle(self, batch: Sequence[tuple[ClientId, bytes]]) -> list[Outcome]:
        """The answers to a batch of requests, in its order."""
        return [self.handle_one(cid, request) for cid, request in batch]

    def finish(self, survivors: frozenset[ClientId] | None) -> ShardSummary:
        """CPU seconds per client and the survivors' partial sum; the sessions are dropped."""
        self._sessions.clear()
        total = None
        if survivors is not None:
            mine = {c: v for c, v in self._values.items() if c in survivors}
            total = sum_vectors(mine, bits=self._recipe.bits, dim=self._recipe.dim)
        self._values.clear()
        return ShardSummary(seconds=dict(self._seconds), survivor_sum=total, peak_rss=None)


# ----------------------------------------------------------------------------- pools
class ClientPool(abc.ABC):
    """The clients of one round as the driver sees them: requests in, answers out."""

    engine: Engine
    workers: int

    @abc.abstractmethod
    def open(self) -> None:
        """Build every client's session (in the pool's workers)."""

    @abc.abstractmethod
    def answers(self, requests: Sequence[tuple[ClientId, bytes]]) -> Iterator[Outcome]:
        """Each request's answer, in the order of ``requests``; the driver consumes all."""

    @abc.abstractmethod
    def finish(self, survivors: frozenset[ClientId] | None) -> list[ShardSummary]:
        """End the round: each shard's summary (``survivors``: the result's, if any)."""

    @abc.abstractmethod
    def run_work(self, pieces: Sequence[ServerWork]) -> list[tuple[np.ndarray, float]]:
        """Each piece's result and the CPU seconds it took (the server's), in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the workers (also after an error)."""

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessPool(ClientPool):
    """Every session in this process, each request answered when the driver asks for it."""

    engine = Engine.SERIAL
    workers = 1

    def __init__(self, recipe: ClientRecipe, round_id: int, client_ids: Sequence[ClientId]):
        self._args = (recipe, round_id, client_ids)
        self._shard: Shard | None = None

    def open(self) -> None:
        self._shard = Shard(*self._args)

    def answers(self, requests: Sequence[tuple[ClientId, bytes]]) -> Iterator[Outcome]:
        assert self._shard is not None
        for cid, request in requests:
            yield self._shard.handle_one(cid, request)

    def finish(self, survivors: frozenset[ClientId] | None) -> list[ShardSummary]:
        assert self._shard is not None
        return [self._shard.finish(survivors)]  # its memory is this process's

    def run_work(self, pieces: Sequence[ServerWork]) -> list[tuple[np.ndarray, float]]:
        return [_timed_work(piece) for piece in pieces]


class ShardedPool(ClientPool):
    """Clients dealt round-robin to ``workers`` shards that run elsewhere; a subclass moves
    the batches (:meth:`_submit`, :meth:`_collect`, first in first out per worker)."""

    WINDOW = 2
    """Batches in flight per worker."""
    MAX_BATCH = 64
    """Requests per batch at most."""

    def __init__(
        self,
        recipe: ClientRecipe,
        round_id: int,
        client_ids: Sequence[ClientId],
        *,
        workers: int,
        timeout: float | None,
    ) -> None:
        self.workers = max(1, min(workers, len(client_ids)))
        self._recipe = recipe
        self._round_id = round_id
        self._timeout = timeout
        self._owner = {cid: i % self.workers for i, cid in enumerate(client_ids)}
        self._shards: list[list[ClientId]] = [[] for _ in range(self.workers)]
        for cid, w in self._owner.items():
            self._shards[w].append(cid)
        self._broken = False
        self._finished = False

    @abc.abstractmethod
    def _submit(self, worker: int, message: tuple[str, Any]) -> None:
        """Send ``("batch", requests)``, ``("work", piece)`` or ``("finish", survivors)``
        to a worker."""

    @abc.abstractmethod
    def _collect(self, worker: int) -> Any:
        """The worker's answer to its oldest message not yet collected."""

    def answers(self, requests: Sequence[tuple[ClientId, bytes]]) -> Iterator[Outcome]:
        if self._broken:
            raise EngineError("the pool's workers are out of step after an error: start anew")
        per: list[list[tuple[ClientId, bytes]]] = [[] for _ in range(self.workers)]
        order = []
        for cid, request in requests:
            w = self._owner[cid]
            per[w].append((cid, request))
            order.append(w)
        batches: list[deque[list[tuple[ClientId, bytes]]]] = []
        for mine in per:
            size = max(1, min(self.MAX_BATCH, math.ceil(len(mine) / (2 * self.WINDOW))))
            batches.append(deque(mine[i : i + size] for i in range(0, len(mine), size)))
        self._broken = True  # until every answer is handed out
        for w in range(self.workers):
            for _ in range(self.WINDOW):
                if batches[w]:
                    self._submit(w, ("batch", batches[w].popleft()))
        current: list[deque[Outcome]] = [deque() for _ in range(self.workers)]
        for i, w in enumerate(order, start=1):
            if not current[w]:
                current[w] = deque(self._collect(w))
                if batches[w]:
                    self._submit(w, ("batch", batches[w].popleft()))
            answer = current[w].popleft()
            if i == len(order):
                self._broken = False  # every batch collected
            yield answer

    def run_work(self, pieces: Sequence[ServerWork]) -> list[tuple[np.ndarray, float]]:
        if self._broken:
            raise EngineError("the pool's workers are out of step after an error: start anew")
        self._broken = True  # until every result is collected
        for i, piece in enumerate(pieces):
            self._submit(i % self.workers, ("work", piece))
        results = [self._collect(i % self.workers) for i in range(len(pieces))]
        self._broken = False
        return results

    def finish(self, survivors: frozenset[ClientId] | None) -> list[ShardSummary]:
        if self._broken:
            raise EngineError("the pool's workers are out of step after an error")
        for w in range(self.workers):
            self._submit(w, ("finish", survivors))
        summaries = [self._collect(w) for w in range(self.workers)]
        self._finished = True
        return summaries


def _timed_work(piece: ServerWork) -> tuple[np.ndarray, float]:
    t0 = time.thread_time()
    result = piece.run()
    return result, time.thread_time() - t0


def _answer(shard: Shard, kind: str, payload: Any) -> Any:
    """A worker's answer to the driver's message: a batch's answers, a piece of the
    server's work, or its summary."""
    if kind == "batch":
        return shard.handle(payload)
    if kind == "work":
        return _timed_work(payload)
    summary = shard.finish(payload)
    return ShardSummary(summary.seconds, summary.survivor_sum, peak_rss_bytes())


# ----------------------------------------------------------------------------- processes
def _process_worker(
    inbox: Connection,
    outbox: Connection,
    recipe: ClientRecipe,
    round_id: int,
    client_ids: Sequence[ClientId],
) -> None:
    """A worker process: build the shard, then answer batches until told to finish.

    A thread drains the inbox into a queue, so the driver's sends never wait on this
    process's sends (with large batches both pipes could otherwise fill up and block)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles ^C and ends us
    received: queue.Queue[bytes | None] = queue.Queue()

    def drain() -> None:
        try:
            while True:
                received.put(inbox.recv_bytes())
        except (EOFError, OSError):
            received.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        shard = Shard(recipe, round_id, client_ids)
        while (data := received.get()) is not None:
            kind, payload = pickle.loads(data)  # noqa: S301 - from our own driver process
            outbox.send_bytes(pickle.dumps(("ok", _answer(shard, kind, payload)), protocol=5))
            if kind == "finish":
                return
    except BaseException:
        with contextlib.suppress(OSError):
            outbox.send_bytes(pickle.dumps(("error", traceback.format_exc())))


class ProcessPool(ShardedPool):
    """Shards in local worker processes (started with ``spawn``: nothing of this process's
    state is copied into them but the recipe), talking over pipes."""

    engine = Engine.PROCESSES
    POLL = 0.2

    def __init__(
        self,
        recipe: ClientRecipe,
        round_id: int,
        client_ids: Sequence[ClientId],
        *,
        workers: int | None,
        timeout: float | None,
    ) -> None:
        super().__init__(
            recipe, round_id, client_ids, workers=workers or os.cpu_count() or 1, timeout=timeout
        )
        self._procs: list[BaseProcess] = []
        self._answered = [False] * self.workers
        self._inboxes: list[Connection] = []
        self._outboxes: list[Connection] = []

    def open(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        for w, shard in enumerate(self._shards):
            inbox_r, inbox_w = ctx.Pipe(duplex=False)
            outbox_r, outbox_w = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_process_worker,
                args=(inbox_r, outbox_w, self._recipe, self._round_id, shard),
                name=f"secfl-simulate-{w}",
                daemon=True,
            )
            try:
                proc.start()
            except OSError as e:
                raise EngineError(f"could not start simulation worker {w}: {e}") from e
            inbox_r.close()
            outbox_w.close()
            self._procs.append(proc)
            self._inboxes.append(inbox_w)
            self._outboxes.append(outbox_r)

    def _lost(self, worker: int, what: str) -> EngineError:
        proc = self._procs[worker]
        proc.join(timeout=1.0)
        code = proc.exitcode
        how = (
            "is still running"
            if code is None
            else f"was killed by signal {-code}"
            if code < 0
            else f"exited with status {code}"
        )
        hint = "If it ran out of memory, use fewer workers or a smaller round"
        if code == 1 and not self._answered[worker]:
            hint = (
                "Workers start with multiprocessing's 'spawn', which imports the main module "
                "again: a script that runs engine 'processes' needs the "
                "`if __name__ == \"__main__\":` guard (or use engine 'serial')"
            )
        return EngineError(f"simulation worker {worker} (pid {proc.pid}) {what}: it {how}. {hint}")

    def _submit(self, worker: int, message: tuple[str, Any]) -> None:
        try:
            self._inboxes[worker].send_bytes(pickle.dumps(message, protocol=5))
        except OSError:
            raise self._lost(worker, "stopped reading its requests") from None

    def _collect(self, worker: int) -> Any:
        conn, proc = self._outboxes[worker], self._procs[worker]
        start = time.monotonic()
        while not conn.poll(self.POLL):
            if not proc.is_alive() and not conn.poll(0):
                raise self._lost(worker, "died during the round")
            if self._timeout is not None and time.monotonic() - start > self._timeout:
                raise self._lost(worker, f"sent no answer within {self._timeout:g} s")
        try:
            status, payload = pickle.loads(conn.recv_bytes())  # noqa: S301 - our own worker
        except (EOFError, OSError):
            raise self._lost(worker, "died during the round") from None
        if status == "error":
            raise EngineError(f"simulation worker {worker} failed:\n{payload}")
        self._answered[worker] = True
        return payload

    def close(self) -> None:
        for conn in (*self._inboxes, *self._outboxes):
            conn.close()
        for proc in self._procs:
            # Finished workers exit by themselves; after an error, end them now.
            proc.join(timeout=5.0 if self._finished else 0.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
            if proc.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
                proc.kill()
                proc.join()
        self._procs.clear()
        self._inboxes.clear()
        self._outboxes.clear()


def open_pool(
    engine: Engine,
    recipe: ClientRecipe,
    round_id: int,
    client_ids: Sequence[ClientId],
    *,
    workers: int | None = None,
    address: str | None = None,
    timeout: float | None = None,
) -> ClientPool:
    """The pool of ``engine`` for these clients (not yet opened)."""
    if engine is Engine.SERIAL:
        return InProcessPool(recipe, round_id, client_ids)
    if engine is Engine.PROCESSES:
        return ProcessPool(recipe, round_id, client_ids, workers=workers, timeout=timeout)
    from secfl.runtime._ray import RayPool

    return RayPool(recipe, round_id, client_ids, workers=workers, address=address, timeout=timeout)
