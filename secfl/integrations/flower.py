"""Run secfl's secure aggregation over Flower's Message API (the ``flower`` extra).

Two pieces, added to an existing Flower app (``ClientApp`` + ``ServerApp`` with ``FedAvg``):

* :data:`secfl_mod` (or a configured :class:`SecflClientMod`), a Flower *client mod*::

      app = ClientApp(mods=[secfl_mod])

* :class:`SecureAggregation`, a Flower *strategy* that wraps the app's own strategy::

      strategy = SecureAggregation(FedAvg(...), protocol="secagg+", clip_bound=1.0)

Every round, the wrapped strategy still samples the nodes and builds their training
messages; :class:`SecureAggregation` then drives one secfl
:class:`~secfl.protocols.base.ServerSession` phase by phase: it sends each phase's requests
to the nodes as Flower ``Message`` objects, collects the replies until the phase's deadline
and feeds them to ``receive()``, then calls ``advance()``. A node that has not answered by
the deadline (crashed, disconnected, too slow) or whose reply is an error or is rejected is a
dropout of that phase, exactly as in the in-memory simulator. The decoded sum of the
survivors' updates becomes the new global model (FedAvg: mean update, optionally weighted by
example counts inside the secure sum).

On the node, the mod answers the first secfl message of a round by running the wrapped
``ClientApp``'s own training, taking the difference between the arrays it returns and the
global arrays it received, and passing that update through the round's
:class:`~secfl.pipeline.Pipeline` (clip, encode, DP noise) into a
:class:`~secfl.protocols.base.ClientSession`; each later message is answered by the session.

What travels: secfl's own versioned wire frames (:mod:`secfl.wire`) as ``bytes`` values of
one ``ConfigRecord`` named ``"secfl"`` (no pickle); the round set-up is described in
:mod:`secfl.integrations._flower_wire`. Flower node ids map to secfl client ids ``1..n`` in
increasing node-id order, per round; in the active threat model, to the ids of the nodes'
keys in the registry, which each node states in a first ``identify`` exchange. This module
only moves bytes: protocol logic stays in :mod:`secfl.protocols`.

Client state between messages: Flower starts a fresh ``ClientApp`` process for every
message, so the session cannot stay in memory. The mod keeps, in the node's ``Context``
(held by the SuperNode, never sent to the SuperLink), the round's set-up, the protected
input, a 32-byte seed from which the session draws all its randomness, and the requests
answered so far; each message rebuilds the session deterministically from the seed and
replays those requests before answering the new one. The secrets are wiped when the round
ends or aborts, and a node never takes part twice in the same round of a run.

Paillier key holders are SuperNodes too: one node holds the private key of protocol
``paillier`` (node config ``secfl-paillier-key``), or m nodes each hold a share of a t-of-m
threshold key for ``paillier-threshold`` (``secfl-paillier-share``, with the registry); the
strategy finds them, leaves them out of training and sends them decryption requests as
``train`` messages that the mod answers before the app sees them (docs/flower.md).

This module is the public face; the code is in ``_flower_client`` (the mod),
``_flower_server`` (the strategy), ``_flower_common`` (record layout, node-config keys,
arrays) and ``_flower_wire`` (the set-up frame, no Flower import).
"""

from __future__ import annotations

try:
    import flwr  # noqa: F401  (the extra's presence, checked before anything needs it)
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "secfl.integrations.flower needs Flower: pip install 'secfl[flower]' (flwr 1.42)"
    ) from e

from secfl.integrations._flower_client import SecflClientMod, secfl_mod
from secfl.integrations._flower_common import (
    FIND_KEY_HOLDERS,
    IDENTIFY,
    KEY_HOLDER_STATE,
    NODE_IDENTITY,
    NODE_PAILLIER_KEY,
    NODE_PAILLIER_PUBLIC_KEY,
    NODE_PAILLIER_SHARE,
    NODE_PAILLIER_THRESHOLD_PUBLIC_KEY,
    NODE_REGISTRY,
    RECORD_KEY,
    STATE_KEY,
)
from secfl.integrations._flower_server import SecureAggregation, SecureRoundRecord, StageHook
from secfl.integrations._flower_wire import ClientPolicy

__all__ = [
    "FIND_KEY_HOLDERS",
    "IDENTIFY",
    "KEY_HOLDER_STATE",
    "NODE_IDENTITY",
    "NODE_PAILLIER_KEY",
    "NODE_PAILLIER_PUBLIC_KEY",
    "NODE_PAILLIER_SHARE",
    "NODE_PAILLIER_THRESHOLD_PUBLIC_KEY",
    "NODE_REGISTRY",
    "RECORD_KEY",
    "STATE_KEY",
    "ClientPolicy",
    "SecflClientMod",
    "SecureAggregation",
    "SecureRoundRecord",
    "StageHook",
    "secfl_mod",
]
