"""Flower's SecAgg+ on the same cells as secfl, measured in this process.

What runs is Flower's own code, imported from the installed ``flwr`` package (nothing of
it is copied here): the server side is ``flwr.server.workflow.SecAggPlusWorkflow`` (setup,
share keys, collect masked vectors, unmask, with its Shamir recovery of dropped clients'
pairwise masks) and each client is ``flwr.client.mod.secaggplus_mod``. This module only
plays the network: an in-process ``Grid`` that serializes every message to protobuf with
``flwr.common.serde`` (as Flower's gRPC transport would carry it), hands it to the
destination client's mod, and returns the serialized reply. The client's "training" step
returns the precomputed float32 update, so client time is Flower's SecAgg+ work
(quantization, key agreement, Shamir shares, Fernet encryption, masking) plus message
(de)serialization on the client side. The strategy's ``aggregate_fit`` (FedAvg re-reading
n copies of the already aggregated parameters, a legacy-compatibility cost outside secure
aggregation) is replaced by a stub that keeps the aggregate.

Graph and threshold match secfl's choice for the same cell: ``num_shares`` = secfl's
degree + 1 (Flower counts the client itself) or all clients for the complete graph, and
``reconstruction_threshold`` = secfl's threshold. Dropped clients stop after sharing keys
(before sending a masked vector), as in secfl's ``mask``-phase dropouts. Quantization:
clipping range 1.0, Flower's default 2^22 levels, modulus 2^32.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import uuid
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import numpy as np

from benchmarks.cells import Cell, MemoryProbe, dropped_clients, secagg_shape, update_stream

__all__ = ["LABEL", "PREFIX", "available", "flower_version", "run_flower", "shares_for"]

LABEL = (
    "Flower {version} SecAgg+ (SecAggPlusWorkflow + secaggplus_mod, driven in-process by "
    "benchmarks/flower_peer.py; protobuf-serialized messages, strategy aggregation stubbed)"
)
PREFIX = "flower-"  # cell protocols "flower-secagg" and "flower-secagg+"
NODE_BASE = 1000  # Flower's SuperLink is node 1; clients get ids 1001, 1002, ...


def flower_version() -> str | None:
    """The installed flwr version, or None."""
    try:
        return metadata.version("flwr")
    except metadata.PackageNotFoundError:
        return None


def available() -> tuple[bool, str]:
    """Whether ``flwr`` is installed, and why not. Checked without importing it: Flower
    (and gRPC) are imported only in the forked child processes that run its cells."""
    if importlib.util.find_spec("flwr") is None or flower_version() is None:
        return False, (
            "flwr is not installed: pip install -c constraints.txt -e '.[bench]' "
            "(Flower's SecAgg+ peer is optional)"
        )
    return True, ""


def shares_for(cell: Cell) -> tuple[int | float, int, int]:
    """Flower's (num_shares, reconstruction_threshold) for the secfl protocol of ``cell``,
    and the number of shares per client this means."""
    base = cell.protocol.removeprefix(PREFIX)
    k, t = secagg_shape(cell.n, cell.dropout, complete=base == "secagg")
    if k >= cell.n - 1:
        return 1.0, t, cell.n  # float 1.0: every client, i.e. the complete graph
    return k + 1, t, k + 1


def run_flower(cell: Cell, seed: int) -> dict[str, Any]:
    """One Flower SecAgg+ round for ``cell`` (``flower-secagg``: complete graph, or
    ``flower-secagg+``: secfl's SecAgg+ degree)."""
    t_run, cpu_run = time.perf_counter(), time.process_time()
    from flwr.app import ConfigRecord, Context, Message, RecordDict
    from flwr.client.mod.secure_aggregation.secaggplus_mod import secaggplus_mod
    from flwr.common import (
        Code,
        FitRes,
        Parameters,
        Status,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
    )
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
    from flwr.common.serde import message_from_proto, message_to_proto
    from flwr.compat.common import recorddict_compat as compat
    from flwr.proto.message_pb2 import Message as ProtoMessage
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.compat.grid_client_proxy import GridClientProxy
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey
    from flwr.server.workflow.secure_aggregation.secaggplus_workflow import SecAggPlusWorkflow
    from flwr.serverapp.grid import Grid
    from flwr.supercore.task_identity import TaskIdentity

    logging.getLogger("flwr").setLevel(logging.ERROR)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    gone = {NODE_BASE + c for c in dropped_clients(cell, seed)}
    data: dict[int, np.ndarray] = {}
    expected = np.zeros(cell.d)
    for cid, u in update_stream(cell, seed):
        data[NODE_BASE + cid] = u
        if NODE_BASE + cid not in gone:
            expected += u
    expected /= cell.n - len(gone)  # Flower returns the (example-weighted) mean
    late = (Stage.COLLECT_MASKED_VECTORS, Stage.UNMASK)

    class InProcessGrid(Grid):
        """Delivers each message to the destination client's mod, timing the client."""

        def __init__(self) -> None:
            self.contexts = {
                nid: Context(
                    run_id=1, node_id=nid, node_config={}, state=RecordDict(), run_config={}
                )
                for nid in data
            }
            self.seconds = dict.fromkeys(data, 0.0)
            self.up = dict.fromkeys(data, 0)
            self.down = dict.fromkeys(data, 0)

        def set_run(self, run: Any) -> None:
            raise NotImplementedError

        @property
        def run(self) -> Any:
            raise NotImplementedError

        def create_message(self, *args: Any, **kwargs: Any) -> Message:
            raise NotImplementedError

        def get_node_ids(self) -> Iterable[int]:
            return list(data)

        def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
            raise NotImplementedError

        def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
            raise NotImplementedError

        def send_and_receive(
            self, messages: Iterable[Message], *, timeout: float | None = None
        ) -> Iterable[Message]:
            replies = []
            for msg in messages:
                nid = msg.metadata.dst_node_id
                stage = msg.content.config_records[RECORD_KEY_CONFIGS][Key.STAGE]
                if nid in gone and stage in late:
                    continue  # dropped after sharing its keys: never answers again
                msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
                blob = message_to_proto(msg).SerializeToString()
                t0 = time.process_time()
                inbound = message_from_proto(ProtoMessage.FromString(blob))
                reply = secaggplus_mod(inbound, self.contexts[nid], train)
                reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
                reply_blob = message_to_proto(reply).SerializeToString()
                self.seconds[nid] += time.process_time() - t0
                self.down[nid] += len(blob)
                self.up[nid] += len(reply_blob)
                replies.append(message_from_proto(ProtoMessage.FromString(reply_blob)))
            return replies

    def train(msg: Message, ctxt: Context) -> Message:
        fitres = FitRes(
            status=Status(Code.OK, ""),
            parameters=ndarrays_to_parameters([data[msg.metadata.dst_node_id]]),
            num_examples=1,
            metrics={},
        )
        return Message(compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=msg)

    class KeepAggregate(FedAvg):
        aggregate: Parameters | None = None

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            self.aggregate = results[0][1].parameters if results else None
            return self.aggregate, {}

    num_shares, threshold, per_client = shares_for(cell)
    grid = InProcessGrid()
    strategy = KeepAggregate(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=cell.n,
        min_available_clients=cell.n,
    )
    manager = SimpleClientManager()
    for nid in data:
        manager.register(GridClientProxy(nid, grid, 1))
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: 1})
    context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters([np.zeros(cell.d, np.float32)]), True
    )
    workflow = SecAggPlusWorkflow(num_shares, threshold, clipping_range=1.0)
    legacy = LegacyContext(context, strategy=strategy, client_manager=manager)
    probe = MemoryProbe()
    probe.start()
    w0, t0 = time.perf_counter(), time.process_time()
    workflow(grid, legacy)
    total_cpu = time.process_time() - t0
    wall = time.perf_counter() - w0
    peak = probe.stop()
    survivors = [nid for nid in data if nid not in gone]
    clients = [grid.seconds[nid] for nid in survivors]
    correct = False
    if strategy.aggregate is not None:
        got = parameters_to_ndarrays(strategy.aggregate)[0]
        # tolerance: quantization (2 / 2^22 per value) and the weight factor's rounding
        correct = bool(np.max(np.abs(got - expected)) <= 1e-3)
    return {
        "correct": correct,
        "aborted": None if strategy.aggregate is not None else "workflow halted",
        "survivors": len(survivors),
        "dropped": len(gone),
        "degree": per_client - 1,
        "threshold": threshold,
        "input_dim": cell.d,
        "client_seconds": float(np.mean(clients)),
        "client_seconds_p95": float(np.percentile(clients, 95)),
        "client_protocol_seconds": float(np.mean(clients)),
        "server_seconds": total_cpu - sum(grid.seconds.values()),
        "wall_seconds": wall,
        "peak_bytes": peak,
        "bytes_up_per_client": float(np.mean([grid.up[n] for n in survivors])),
        "bytes_down_per_client": float(np.mean([grid.down[n] for n in survivors])),
        "run_seconds": time.perf_counter() - t_run,
        "run_cpu_seconds": time.process_time() - cpu_run,
    }
