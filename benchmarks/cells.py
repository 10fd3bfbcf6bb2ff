"""One benchmark cell: what is measured, and how, for secfl's protocols.

A cell is (protocol, n clients, dimension d, dropout rate, DP on/off). One *run* of a cell
builds the :class:`~secfl.pipeline.Pipeline` a user would build, passes every client's
float32 update through ``client_side`` (clip + encode, or clip + rotate + conditional
rounding + distributed discrete Gaussian noise with DP on), runs the round in the
in-memory simulator (:func:`~secfl.runtime.simulator.simulate_round`) and decodes the sum
with ``server_side``. Times are CPU seconds (``time.process_time``) of each party:

* client = its ``client_side`` call + its protocol session calls;
* server = the server session + the key holder (Paillier) + ``server_side``.

Dropped clients leave in the phase that costs the server most: for SecAgg/SecAgg+ after
sharing their keys and before sending a masked input (``mask``), so the server must
reconstruct their pairwise masks; for plain and Paillier in their only phase. Client
statistics are over the clients that finished the round.

Peak memory is the round's own resident-set peak (``simulate_round`` only, inputs already
encoded): the Linux high-water mark ``VmHWM`` is reset through ``/proc/self/clear_refs``
just before the round and read after it, minus ``VmRSS`` before it. Each cell runs in a
forked child process (see :func:`run_isolated`), so cells do not share heaps.
"""

from __future__ import annotations

import gc
import hashlib
import math
import multiprocessing as mp
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from secfl.hazmat.rng import Csprng
from secfl.paillier_keys import PaillierPrivateKey
from secfl.pipeline import (
    DistributedDP,
    Pipeline,
    PipelineConfig,
    build_protocol,
)
from secfl.protocols.base import PROTOCOLS, AggregationProtocol, ClientId
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggProtocol
from secfl.runtime.simulator import simulate_round

__all__ = [
    "SECFL_PROTOCOLS",
    "Cell",
    "MemoryProbe",
    "run_isolated",
    "run_secfl",
    "secagg_shape",
]

SECFL_PROTOCOLS: tuple[str, ...] = PROTOCOLS
SECAGG_DROP_PHASE = "mask"


@dataclass(frozen=True)
class Cell:
    """One point of the sweep."""

    protocol: str
    n: int
    d: int
    dropout: float
    dp: bool = False

    @property
    def dropped(self) -> int:
        """How many clients drop out (``floor(dropout * n)``)."""
        return math.floor(self.dropout * self.n)

    @property
    def input_dim(self) -> int:
        """Length of the protocol's vectors: d, or d padded to a power of two under DP."""
        return 1 << (self.d - 1).bit_length() if self.dp else self.d

    def label(self) -> str:
        """Short human-readable name, for progress lines and skip lists."""
        dp = " +DP" if self.dp else ""
        return f"{self.protocol}{dp} n={self.n} d={self.d:.0e} drop={self.dropout:.0%}"

    def as_dict(self) -> dict[str, Any]:
        """The identifying fields, as stored in the JSON."""
        return asdict(self)


def _seeded(seed: int, label: str) -> Csprng:
    return Csprng(seed=hashlib.sha256(f"secfl-bench:{seed}:{label}".encode()).digest())


def _pipeline(
    cell: Cell, rng: Csprng, paillier_keys: PaillierPrivateKey | None
) -> tuple[Pipeline, AggregationProtocol]:
    """The user's pipeline for ``cell``, and the protocol it runs (a Paillier cell decrypts
    with ``paillier_keys``).

    secfl refuses DP with ``plain`` (the server would see each lightly noised update), so
    the DP-on baseline builds the DP pipeline for ``secagg`` and runs the plaintext
    protocol on its codec: same transforms, no protection. It is a baseline only.
    """
    dp = DistributedDP() if cell.dp else None
    name = "secagg" if cell.protocol == "plain" and cell.dp else cell.protocol
    pipe = Pipeline(
        PipelineConfig(protocol=name, dp=dp),
        n_clients=cell.n,
        dim=cell.d,
        dropout=cell.dropout,
        rng=rng,
    )
    if cell.protocol == "plain" and cell.dp:
        return pipe, PlaintextProtocol(bits=pipe.codec.bits)
    paillier = paillier_keys if cell.protocol == "paillier" else None
    return pipe, build_protocol(pipe, rng=rng, paillier=paillier)


def secagg_shape(n: int, dropout: float, *, complete: bool) -> tuple[int, int]:
    """(holders k, threshold t) that ``build_protocol`` picks for SecAgg (``complete``) or
    SecAgg+ with ``n`` clients and this dropout rate."""
    config = PipelineConfig(protocol="secagg" if complete else "secagg+", clip_bound=1.0, bits=32)
    rng = Csprng()
    pipe = Pipeline(config, n_clients=n, dim=1, dropout=dropout, rng=rng)
    proto = build_protocol(pipe, rng=rng)
    assert isinstance(proto, SecAggProtocol)
    return proto.config.holders, proto.config.threshold


def update_stream(cell: Cell, seed: int) -> Iterator[tuple[ClientId, np.ndarray]]:
    """Every client's float32 update, one at a time: uniform entries scaled to an L2 norm
    of about 0.58 (under the clip bound 1.0: clipping runs but leaves the vector as is)."""
    g = np.random.default_rng(seed)
    scale = np.float32(1.0 / math.sqrt(cell.d))
    for cid in range(1, cell.n + 1):
        yield cid, (g.random(cell.d, dtype=np.float32) * 2 - 1) * scale


def dropped_clients(cell: Cell, seed: int) -> list[ClientId]:
    """Which clients drop, chosen by a seeded permutation."""
    order = np.random.default_rng(seed + 7919).permutation(cell.n)
    return [int(i) + 1 for i in order[: cell.dropped]]


class MemoryProbe:
    """Peak resident memory of a code region, from Linux ``VmHWM``/``VmRSS``.

    ``start()`` resets the high-water mark (``/proc/self/clear_refs`` with ``5``);
    ``stop()`` returns the peak above the resident size at ``start()``, in bytes, or
    ``None`` where the kernel interface is missing.
    """

    def __init__(self) -> None:
        self._rss0: int | None = None

    @staticmethod
    def _status() -> dict[str, int]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
        return out

    def start(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._rss0 = self._status()["VmRSS"]
        except OSError:
            self._rss0 = None

    def stop(self) -> int | None:
        if self._rss0 is None:
            return None
        return max(0, self._status()["VmHWM"] - self._rss0)


def run_secfl(
    cell: Cell, seed: int, *, paillier_keys: PaillierPrivateKey | None = None
) -> dict[str, Any]:
    """One run of a secfl cell; the measured costs (see the module docstring). A Paillier
    cell decrypts with ``paillier_keys``, made once by the caller (key generation is a
    one-off setup, not part of a round)."""
    t_run, cpu_run = time.perf_counter(), time.process_time()
    rng = _seeded(seed, "pipeline")
    pipe, protocol = _pipeline(cell, rng, paillier_keys)
    gone = set(dropped_clients(cell, seed))
    expected = np.zeros(cell.d)  # float64 sum of the updates of the clients that stay
    client_rng = _seeded(seed, "clients")
    inputs: dict[ClientId, np.ndarray] = {}
    pipeline_seconds: dict[ClientId, float] = {}
    wall = 0.0
    for cid, u in update_stream(cell, seed):
        if cid not in gone:
            expected += u
        w0, t0 = time.perf_counter(), time.process_time()
        inputs[cid] = pipe.client_side(u, rng=client_rng).encoded
        pipeline_seconds[cid] = time.process_time() - t0
        wall += time.perf_counter() - w0
    phase = SECAGG_DROP_PHASE if SECAGG_DROP_PHASE in protocol.phases else protocol.phases[0]
    probe = MemoryProbe()
    probe.start()
    wall0 = time.perf_counter()
    report = simulate_round(protocol, inputs, dropouts=dict.fromkeys(gone, phase))
    peak = probe.stop()
    result = report.result
    decode_seconds = 0.0
    error_ok = True
    if result is not None:
        t0 = time.process_time()
        total = pipe.server_side(result.aggregate)
        decode_seconds = time.process_time() - t0
        if not cell.dp:  # check the whole chain: stochastic rounding is one step per value
            tol = len(result.survivors) / pipe.codec.scale + 1e-6
            error_ok = result.survivors == frozenset(inputs) - set(gone) and bool(
                np.max(np.abs(total - expected)) <= tol
            )
    wall += time.perf_counter() - wall0
    survivors = sorted(result.survivors) if result is not None else []
    index = {cid: i for i, cid in enumerate(inputs)}
    clients = [report.client_seconds[index[c]] + pipeline_seconds[c] for c in survivors]
    protocol_only = [report.client_seconds[index[c]] for c in survivors]
    k, t = (
        (protocol.config.holders, protocol.config.threshold)
        if isinstance(protocol, SecAggProtocol)
        else (0, 0)
    )
    return {
        "correct": bool(report.correct and error_ok),
        "aborted": report.aborted,
        "survivors": len(survivors),
        "dropped": report.dropped,
        "degree": k,
        "threshold": t,
        "input_dim": pipe.input_dim,
        "client_seconds": float(np.mean(clients)) if clients else 0.0,
        "client_seconds_p95": float(np.percentile(clients, 95)) if clients else 0.0,
        "client_protocol_seconds": float(np.mean(protocol_only)) if clients else 0.0,
        "server_seconds": report.server_seconds + decode_seconds,
        "wall_seconds": wall,
        "peak_bytes": peak,
        "bytes_up_per_client": _mean(report.bytes_up, survivors),
        "bytes_down_per_client": _mean(report.bytes_down, survivors),
        "run_seconds": time.perf_counter() - t_run,
        "run_cpu_seconds": time.process_time() - cpu_run,
    }


def _mean(counts: dict[ClientId, int] | Any, ids: list[ClientId]) -> float:
    return float(np.mean([counts[c] for c in ids])) if ids else 0.0


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # report anything, including MemoryError
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"))
    finally:
        conn.close()


def run_isolated(
    fn: Callable[..., Any], args: tuple[Any, ...], *, timeout: float
) -> tuple[str, Any]:
    """Run ``fn(*args)`` in a forked child; ``("ok", result)``, ``("error", text)`` or
    ``("killed", seconds)`` when it ran past ``timeout``. Where ``fork`` is unavailable
    it runs in this process (no memory isolation, no time limit)."""
    if "fork" not in mp.get_all_start_methods():
        try:
            return "ok", fn(*args)
        except Exception as e:
            return "error", f"{type(e).__name__}: {e}"
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    send.close()
    try:
        if recv.poll(timeout):
            try:
                status, value = recv.recv()
            except EOFError:
                status, value = "error", f"child exited with code {proc.exitcode}"
        else:
            proc.kill()
            status, value = "killed", time.perf_counter() - t0
    finally:
        proc.join(5)
        recv.close()
    if status == "error" and proc.exitcode not in (0, None):
        value = f"{value} (exit code {proc.exitcode})"
    return status, value
