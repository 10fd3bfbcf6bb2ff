"""ClientApp: a plain Flower Message-API app; secfl only adds the mod."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from secfl.integrations.flower import secfl_mod
from secfl_flower_app import settings, task

app = ClientApp(mods=[secfl_mod])


def _arrays(msg: Message) -> dict[str, np.ndarray]:
    record = msg.content["arrays"]
    assert isinstance(record, ArrayRecord)
    return {key: array.numpy() for key, array in record.items()}


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train on this node's partition, starting from the global model."""
    partition = int(context.node_config["partition-id"])
    cfg = settings.run_config(context)
    new, examples, train_loss = task.train(
        _arrays(msg), partition, lr=float(cfg["lr"]), steps=int(cfg["local-steps"])
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in new.items()}),
            "metrics": MetricRecord({"train-loss": train_loss, "num-examples": examples}),
        }
    )
    return Message(content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Loss of the global model on this node's partition."""
    x, y = task.load_partition(int(context.node_config["partition-id"]))
    metrics = {"eval-loss": task.loss(_arrays(msg), x, y), "num-examples": len(y)}
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
