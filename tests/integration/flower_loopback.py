"""A loopback Flower ``Grid`` for in-process tests (see ``test_flower_inprocess.py``).

Every message reaches the ClientApp the way a SuperNode delivers it: a fresh copy of the
message and of the node's ``Context`` (both through Flower's protobuf serialization), and
only the context the app returns survives to the next message. Import ``server_identity``
into a test module that uses it (an autouse fixture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import uuid4

import pytest
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.serde import (
    context_from_proto,
    context_to_proto,
    message_from_proto,
    message_to_proto,
)
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

RUN_ID = 4242
RUN_CONFIG = {"lr": 0.05, "local-steps": 2}


class LoopbackGrid(Grid):
    """Runs a ClientApp per node in this process, like SuperNodes would (see module doc)."""

    def __init__(
        self,
        app: ClientApp,
        n_nodes: int = 5,
        node_config: dict[int, dict[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.partition = {1000 + 17 * p: p for p in range(n_nodes)}  # node id -> partition
        extra = node_config or {}
        self.contexts = {
            node: context_to_proto(
                Context(
                    run_id=RUN_ID,
                    node_id=node,
                    node_config={"partition-id": p, **extra.get(p, {})},
                    state=RecordDict(),
                    run_config=dict(RUN_CONFIG),
                )
            )
            for node, p in self.partition.items()
        }
        self.dead: set[int] = set()
        self.replies: dict[str, Message] = {}
        self.sent: list[Message] = []
        self.tamper: Callable[[Message], None] | None = None  # a lying server's edits

    def context(self, node: int) -> Context:
        return context_from_proto(self.contexts[node])

    def deliver(self, msg: Message) -> Message:
        """One message to one node: a fresh ClientApp 'process', the context persisted."""
        node = msg.metadata.dst_node_id
        copy = message_from_proto(message_to_proto(msg))
        ctx = context_from_proto(self.contexts[node])
        try:
            reply = self.app(copy, ctx)
        except Exception as e:  # a crashing ClientApp yields an error reply, as in Flower
            reply = Message(Error(code=2, reason=repr(e)), reply_to=copy)
        self.contexts[node] = context_to_proto(ctx)
        reply.metadata.__dict__["_message_id"] = uuid4().hex
        return message_from_proto(message_to_proto(reply))

    # Grid API
    def set_run(self, run: object) -> None:  # type: ignore[override]
        pass

    @property
    def run(self) -> object:  # type: ignore[override]
        raise NotImplementedError

    def create_message(self, *args: object, **kwargs: object) -> Message:  # type: ignore[override]
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return [n for n in self.partition if n not in self.dead]

    def get_nodes(self) -> Iterable[object]:  # type: ignore[override]
        raise NotImplementedError

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            mid = uuid4().hex
            msg.metadata.__dict__["_message_id"] = mid
            ids.append(mid)
            if self.tamper is not None:
                self.tamper(msg)
            self.sent.append(msg)
            if msg.metadata.dst_node_id not in self.dead:
                self.replies[mid] = self.deliver(msg)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self.replies.pop(m) for m in list(message_ids) if m in self.replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(list(messages)))


@pytest.fixture(autouse=True)
def server_identity():
    """Messages created by a ServerApp need the task identity Flower sets in that process."""
    old = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = RUN_ID, 0, 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = old
