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
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
from phe import PaillierPrivateKey, PaillierPublicKey

try:
    from flwr.app import (
        Array,
        ArrayRecord,
        ConfigRecord,
        ConfigRecordValues,
        Context,
        Error,
        Message,
        MetricRecord,
        RecordDict,
    )
    from flwr.clientapp.typing import ClientAppCallable
    from flwr.common.constant import ErrorCode
    from flwr.serverapp import Grid
    from flwr.serverapp.strategy import Strategy
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "secfl.integrations.flower needs Flower: pip install 'secfl[flower]' (flwr 1.42)"
    ) from e

from secfl import wire
from secfl.dp.accounting import RdpAccountant
from secfl.errors import (
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    ProtocolAbort,
    SecflError,
)
from secfl.fl.fedavg import Weighting
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.identities import (
    Registry,
    load_paillier_private_key,
    load_paillier_public_key,
    load_signing_key,
)
from secfl.integrations._flower_wire import (
    SEED_BYTES,
    ClientPolicy,
    PaillierParams,
    RoundSetup,
)
from secfl.pipeline import DistributedDP, Pipeline, PipelineConfig, RemoteKeyHolder
from secfl.protocols.base import ClientSession
from secfl.protocols.paillier import (
    PaillierConfig,
    PaillierKeyHolder,
    PaillierProtocol,
    key_fingerprint,
)
from secfl.protocols.secagg import ThreatModel

__all__ = [
    "NODE_IDENTITY",
    "NODE_PAILLIER_KEY",
    "NODE_PAILLIER_PUBLIC_KEY",
    "NODE_REGISTRY",
    "RECORD_KEY",
    "ClientPolicy",
    "SecflClientMod",
    "SecureAggregation",
    "SecureRoundRecord",
    "secfl_mod",
]

RECORD_KEY = "secfl"
"""Name of the ``ConfigRecord`` that carries secfl frames in a Flower message."""
STATE_KEY = "secfl.client"
"""Name of the ``ConfigRecord`` in a node's ``Context.state`` that holds the round state."""
FORMAT_VERSION = 1
"""Version of the record layout (keys and their meaning) in messages and in the state."""
MOD_REFUSED = ErrorCode.MOD_FAILED_PRECONDITION
"""Flower error code of a node's refusal."""
NODE_IDENTITY = "secfl-identity"
"""Node config key: path of the node's Ed25519 signing key (PKCS#8 PEM), active mode."""
NODE_REGISTRY = "secfl-registry"
"""Node config key: path of the registry of every client's verify key, active mode."""
NODE_PAILLIER_PUBLIC_KEY = "secfl-paillier-public-key"
"""Node config key: path of the Paillier public key this node encrypts under (pinned): a
round under any other key is refused."""
NODE_PAILLIER_KEY = "secfl-paillier-key"
"""Node config key: path of the Paillier private key, on the key-holder node only."""
_KEY_HOLDER_MESSAGE_TYPE = "train"
"""Flower message type of key-holder requests: a ClientApp runs its mods only around a
handler it registered, and every ClientApp of a training run registers ``train``."""
KEY_HOLDER_STATE = "secfl.key-holder"
"""``Context.state`` record of the key holder: the last round it decrypted a sum for."""
IDENTIFY = "identify"
"""Name of the first phase of an active round: the nodes train and say who they are."""

_log = logging.getLogger("flwr.secfl")

_ACTIVE, _DONE, _ABORTED = "active", "done", "aborted"


# ============================================================================ arrays
@dataclass(frozen=True)
class _Layout:
    """Which arrays of an ``ArrayRecord`` are aggregated (the floating-point ones), in order.

    Integer arrays (e.g. BatchNorm's ``num_batches_tracked``) are not aggregated: the new
    global model keeps their global values.
    """

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    size: int

    @classmethod
    def of(cls, record: ArrayRecord) -> _Layout:
        keys, shapes, size = [], [], 0
        for key, array in record.items():
            value = array.numpy()
            if value.dtype.kind != "f":
                continue
            keys.append(key)
            shapes.append(tuple(value.shape))
            size += int(value.size)
        if size == 0:
            raise InvalidArgument(
                "the ArrayRecord has no floating-point arrays: there is nothing to aggregate"
            )
        return cls(tuple(keys), tuple(shapes), size)

    def flatten(self, record: ArrayRecord, *, what: str) -> np.ndarray:
        """The aggregated arrays of ``record`` as one float64 vector."""
        parts = []
        for key, shape in zip(self.keys, self.shapes, strict=True):
            if key not in record:
                raise InvalidArgument(f"{what} has no array {key!r}")
            value = record[key].numpy()
            if tuple(value.shape) != shape or value.dtype.kind != "f":
                raise InvalidArgument(
                    f"{what}: array {key!r} is {value.dtype} {value.shape}, the global model's "
                    f"is a float array of shape {shape}"
                )
            parts.append(value.astype(np.float64).reshape(-1))
        out = np.concatenate(parts)
        if not np.isfinite(out).all():
            raise InvalidArgument(f"{what} contains NaN or inf")
        return out

    def apply(self, record: ArrayRecord, flat: np.ndarray) -> ArrayRecord:
        """A copy of ``record`` with its aggregated arrays replaced by ``flat``."""
        new: dict[str, Array] = {}
        start = 0
        index = dict(zip(self.keys, self.shapes, strict=True))
        for key, array in record.items():
            value = array.numpy()
            if key in index:
                n = int(np.prod(index[key], dtype=np.int64))
                value = flat[start : start + n].reshape(index[key]).astype(value.dtype)
                start += n
            new[key] = Array(np.ascontiguousarray(value))
        return ArrayRecord(new)


def _single_array_record(content: RecordDict, *, what: str) -> ArrayRecord:
    records = list(content.array_records.values())
    if len(records) != 1:
        raise InvalidArgument(
            f"{what} must carry exactly one ArrayRecord (the model), found {len(records)}"
        )
    return records[0]


# ============================================================================ client
@dataclass
class _ClientState:
    """What a node keeps between the messages of one round (in ``Context.state``)."""

    run: bytes = b""
    last_round: int = -1
    status: str = _DONE
    seed: bytes = b""
    setup: bytes = b""
    value: bytes = b""
    transcript: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, context: Context, run_id: int) -> _ClientState:
        run = run_id.to_bytes(8, "big")
        record = context.state.config_records.get(STATE_KEY)
        if record is None or record.get("v") != FORMAT_VERSION or record.get("run") != run:
            return cls(run=run)  # a new run starts afresh
        r = wire.Reader(_get_bytes(record, "transcript"))
        transcript = []
        while r.remaining:
            transcript.append(r.blob())
        return cls(
            run=run,
            last_round=_get_int(record, "last_round"),
            status=_get_str(record, "status"),
            seed=_get_bytes(record, "seed"),
            setup=_get_bytes(record, "setup"),
            value=_get_bytes(record, "value"),
            transcript=transcript,
        )

    def save(self, context: Context) -> None:
        w = wire.Writer()
        for request in self.transcript:
            w.blob(request)
        context.state.config_records[STATE_KEY] = ConfigRecord(
            {
                "v": FORMAT_VERSION,
                "run": self.run,
                "last_round": self.last_round,
                "status": self.status,
                "seed": self.seed,
                "setup": self.setup,
                "value": self.value,
                "transcript": w.getvalue(),
            }
        )

    def close(self, status: str) -> None:
        """End the round: keep only its id (never run it again) and wipe its secrets."""
        self.status = status
        self.seed = self.setup = self.value = b""
        self.transcript = []


class SecflClientMod:
    """A Flower client mod that takes part in secfl secure-aggregation rounds.

    Messages without a ``"secfl"`` record (evaluation, queries, plain training) pass
    through to the app unchanged. The mod refuses (answers with a Flower error, which the
    server counts as a dropout) any round that ``policy`` rejects: by default the plaintext
    protocol, rounds of fewer than 3 clients and Paillier keys under 2048 bits, and, on a
    node that has an identity, any round not in the active threat model.

    A node's identity (active threat model) comes from its node config: ``secfl-identity``
    is the path of its Ed25519 signing key, ``secfl-registry`` that of the registry of every
    client's verify key (see :mod:`secfl.identities`; both are read on every message).

    Keyword arguments are those of :class:`ClientPolicy`.
    """

    def __init__(
        self,
        *,
        protocols: tuple[str, ...] = ("secagg", "secagg+", "paillier"),
        min_clients: int = 3,
        min_paillier_bits: int = 2048,
        min_noise_multiplier: float | None = None,
        require_active: bool | None = None,
    ) -> None:
        self.policy = ClientPolicy(
            protocols=tuple(protocols),
            min_clients=min_clients,
            min_paillier_bits=min_paillier_bits,
            min_noise_multiplier=min_noise_multiplier,
            require_active=require_active,
        )

    def __repr__(self) -> str:
        return f"SecflClientMod({self.policy})"

    def __call__(self, msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if not msg.has_content() or RECORD_KEY not in msg.content.config_records:
            return call_next(msg, context)
        if {"probe", "decrypt"} & set(msg.content.config_records[RECORD_KEY]):
            return self._key_holder(msg, context)
        state = _ClientState.load(context, msg.metadata.run_id)
        round_id: int | None = None
        try:
            record = msg.content.config_records[RECORD_KEY]
            if record.get("v") != FORMAT_VERSION:
                raise IntegrityError(
                    f"secfl record version {record.get('v')!r}; this node speaks {FORMAT_VERSION}"
                )
            round_id = _get_int(record, "round")
            request = _get_bytes(record, "request")
            if "setup" in record:
                return self._first(msg, context, call_next, state, round_id, request)
            return self._next(msg, context, state, round_id, request)
        except SecflError as e:
            # A refusal ends this node's current round for good, unless the message was a
            # well-formed one about an older round (a late delivery).
            if state.status == _ACTIVE and (round_id is None or round_id >= state.last_round):
                state.close(_ABORTED)
            state.save(context)
            return _refusal(msg, "client", e)

    def _first(
        self,
        msg: Message,
        context: Context,
        call_next: ClientAppCallable,
        state: _ClientState,
        round_id: int,
        request: bytes,
    ) -> Message:
        record = msg.content.config_records[RECORD_KEY]
        setup_bytes = _get_bytes(record, "setup")
        setup = RoundSetup.from_bytes(setup_bytes)
        if setup.round_id != round_id:
            raise ProtocolAbort(f"set-up is for round {setup.round_id}, the message for {round_id}")
        if round_id <= state.last_round:
            raise ProtocolAbort(
                f"round {round_id} is not after round {state.last_round}, which this node already "
                f"started: a round is never run twice (its sum could be taken over another set "
                f"of survivors)"
            )
        identity = _node_identity(context)
        self.policy.check(setup, has_identity=identity is not None)
        _check_pinned_paillier_key(setup, context)
        if setup.active:
            assert identity is not None  # checked by the policy
            setup = _claim(setup, identity, request)
            setup_bytes = setup.to_bytes()
        if state.status == _ACTIVE:
            state.close(_ABORTED)  # the previous round never finished
        state.last_round, state.status = round_id, _ABORTED  # until this round is set up
        state.save(context)

        global_arrays = _single_array_record(msg.content, what="the server's training message")
        layout = _Layout.of(global_arrays)
        base = layout.flatten(global_arrays, what="the global model")
        weighted = setup.weighting is Weighting.EXAMPLES
        if layout.size + weighted != setup.dim:
            raise ProtocolAbort(
                f"the round aggregates {setup.dim} values but the global model has "
                f"{layout.size} floating-point entries"
            )
        pipeline = setup.client_pipeline(identity.registry.verify_keys if identity else None)

        del msg.content[RECORD_KEY]  # the app sees the message FedAvg would have sent
        reply = call_next(msg, context)
        if reply.has_error():
            return reply
        new = _single_array_record(reply.content, what="the ClientApp's training reply")
        update = layout.flatten(new, what="the ClientApp's training reply") - base
        if weighted:
            count = _metric(reply.content, setup.weight_key)
            w = min(max(math.floor(count), 0), setup.example_cap) / setup.example_cap
            update = np.append(update * w, w)
        protected = pipeline.client_side(update, rng=Csprng())

        seed = Csprng().bytes(SEED_BYTES)
        state.status = _ACTIVE
        state.seed, state.setup, state.transcript = seed, setup_bytes, []
        state.value = wire.Writer().vector(protected.encoded, setup.bits).getvalue()
        answer: bytes | None = None
        if not setup.active:  # an active round's first message only asks who this node is
            session = self._session(setup, pipeline, seed, protected.encoded, identity)
            answer = session.handle(request)
            state.transcript.append(request)
            if session.phase == _DONE:
                state.close(_DONE)
        state.save(context)

        content = RecordDict()
        for key, metrics in reply.content.metric_records.items():
            content[key] = metrics  # the app's own metrics (in the clear, as without secfl)
        record = _reply_record(round_id, answer)
        if setup.active:
            record["client"] = setup.client_id
        content[RECORD_KEY] = record
        return Message(content, reply_to=msg)

    def _next(
        self, msg: Message, context: Context, state: _ClientState, round_id: int, request: bytes
    ) -> Message:
        if state.status != _ACTIVE or state.last_round != round_id:
            raise ProtocolAbort(
                f"no round {round_id} in progress on this node (last round {state.last_round}, "
                f"{state.status})"
            )
        setup = RoundSetup.from_bytes(state.setup)
        identity = _node_identity(context) if setup.active else None
        if setup.active and (identity is None or identity.client_id != setup.client_id):
            raise ProtocolAbort("this node's identity changed in the middle of an active round")
        pipeline = setup.client_pipeline(identity.registry.verify_keys if identity else None)
        r = wire.Reader(state.value)
        value = r.vector(setup.bits)
        r.finish()
        session = self._session(setup, pipeline, state.seed, value, identity)
        for earlier in state.transcript:  # deterministic: same seed, same requests
            session.handle(earlier)
        answer = session.handle(request)
        state.transcript.append(request)
        if session.phase == _DONE:
            state.close(_DONE)
        state.save(context)
        return Message(RecordDict({RECORD_KEY: _reply_record(round_id, answer)}), reply_to=msg)

    def _key_holder(self, msg: Message, context: Context) -> Message:
        """Answer whether this node holds the Paillier key, or decrypt one round's sum."""
        try:
            record = msg.content.config_records[RECORD_KEY]
            if record.get("v") != FORMAT_VERSION:
                raise IntegrityError(f"secfl record version {record.get('v')!r}")
            round_id = _get_int(record, "round")
            key = _node_paillier_key(context)
            if "probe" in record:
                ours = key is not None and _get_bytes(record, "probe") == key_fingerprint(
                    key.public_key
                )
                fields: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "round": round_id}
                fields["key-holder"] = ours
                return Message(RecordDict({RECORD_KEY: ConfigRecord(fields)}), reply_to=msg)
            if key is None:
                raise ProtocolAbort(
                    f"this node holds no Paillier private key (node config {NODE_PAILLIER_KEY!r})"
                )
            setup = RoundSetup.from_bytes(_get_bytes(record, "setup"))
            frame = _get_bytes(record, "decrypt")
            answer = self._decrypt(context, msg.metadata.run_id, round_id, setup, frame, key)
            return Message(RecordDict({RECORD_KEY: _reply_record(round_id, answer)}), reply_to=msg)
        except SecflError as e:
            return _refusal(msg, "key holder", e)

    def _decrypt(
        self,
        context: Context,
        run_id: int,
        round_id: int,
        setup: RoundSetup,
        frame: bytes,
        key: PaillierPrivateKey,
    ) -> bytes:
        """One round's ENCRYPTED_SUM -> DECRYPTED_SUM, at most once per round, in order."""
        if setup.paillier is None or setup.round_id != round_id:
            raise ProtocolAbort("a decryption request needs the Paillier set-up of its round")
        if setup.paillier.n != key.public_key.n:
            raise ProtocolAbort("the sum is encrypted under another Paillier key")
        if wire.Reader(wire.unframe(frame)[1]).u64() != round_id:
            raise ProtocolAbort("the encrypted sum is for another round than the request")
        floor = max(setup.paillier.min_clients, self.policy.min_clients)
        if floor > setup.n_clients:
            raise ProtocolAbort(
                f"the round has {setup.n_clients} clients; this key holder decrypts only sums "
                f"of at least {self.policy.min_clients} (min_clients)"
            )
        run = run_id.to_bytes(8, "big")
        spent = context.state.config_records.get(KEY_HOLDER_STATE)
        if spent is not None and spent.get("run") == run:
            last = _get_int(spent, "last_round")
            if round_id <= last:
                raise ProtocolAbort(
                    f"round {round_id} is not after round {last}, whose sum this key holder "
                    f"already decrypted: one decryption per round, in round order"
                )
        # Spent by any well-formed attempt, before decrypting (a refusal does not reopen it).
        state: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "run": run}
        state["last_round"] = round_id
        context.state.config_records[KEY_HOLDER_STATE] = ConfigRecord(state)
        config = PaillierConfig(
            public_key=key.public_key,
            bits=setup.bits,
            n_clients=setup.n_clients,
            value_bits=setup.paillier.value_bits,
            min_clients=floor,
        )
        return PaillierKeyHolder(config, key).decrypt_sum(frame)

    @staticmethod
    def _session(
        setup: RoundSetup,
        pipeline: Pipeline,
        seed: bytes,
        value: np.ndarray,
        identity: _Identity | None,
    ) -> ClientSession:
        key = identity.key if identity is not None else None
        protocol = setup.client_protocol(pipeline, rng=Csprng(seed=seed), identity=key)
        return protocol.client(round_id=setup.round_id, client_id=setup.client_id, value=value)


@dataclass(frozen=True)
class _Identity:
    """A node's long-term identity: its signing key, the registry, its id there."""

    key: SigningKey
    registry: Registry
    client_id: int


def _node_identity(context: Context) -> _Identity | None:
    """The identity named by the node config, or ``None`` if it names none."""
    config = context.node_config
    key_path, registry_path = config.get(NODE_IDENTITY), config.get(NODE_REGISTRY)
    if key_path is None and registry_path is None:
        return None
    if not (isinstance(key_path, str) and key_path and isinstance(registry_path, str)):
        raise InvalidArgument(
            f"node config: {NODE_IDENTITY!r} and {NODE_REGISTRY!r} go together, as file paths"
        )
    key = load_signing_key(key_path)
    registry = Registry.load(registry_path)
    return _Identity(key=key, registry=registry, client_id=registry.client_id_of(key))


def _check_pinned_paillier_key(setup: RoundSetup, context: Context) -> None:
    """Refuse a Paillier round under a key other than the one this node pinned (if any)."""
    path = context.node_config.get(NODE_PAILLIER_PUBLIC_KEY)
    if path is None or setup.paillier is None:
        return
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"node config {NODE_PAILLIER_PUBLIC_KEY!r} must be a file path")
    if load_paillier_public_key(path).n != setup.paillier.n:
        raise ProtocolAbort(
            "the server asked to encrypt under a Paillier key other than the one this node "
            f"pinned ({NODE_PAILLIER_PUBLIC_KEY!r}): refusing"
        )


def _node_paillier_key(context: Context) -> PaillierPrivateKey | None:
    """The Paillier private key named by the node config, or ``None``."""
    path = context.node_config.get(NODE_PAILLIER_KEY)
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"node config {NODE_PAILLIER_KEY!r} must be a file path")
    return load_paillier_private_key(path)


def _claim(setup: RoundSetup, identity: _Identity, request: bytes) -> RoundSetup:
    """An active round's set-up with this node's own id (the server cannot know it yet)."""
    if setup.registry_digest != identity.registry.digest():
        raise ProtocolAbort(
            f"the server's registry (digest {setup.registry_digest.hex()[:16]}...) is not this "
            f"node's ({identity.registry.digest().hex()[:16]}...): every party needs the same "
            f"registry file"
        )
    if setup.client_id != 0 or request:
        raise ProtocolAbort(
            "an active round starts with an identification message (client id 0, no request)"
        )
    return replace(setup, client_id=identity.client_id)


secfl_mod = SecflClientMod()
"""The client mod with the default :class:`ClientPolicy` (secure protocols, >= 3 clients)."""


def _refusal(msg: Message, role: str, error: SecflError) -> Message:
    """The Flower error reply of a refused request (the server counts it as a dropout)."""
    _log.warning("secfl %s: refused a request: %s: %s", role, type(error).__name__, error)
    reason = f"secfl {type(error).__name__}: {error}"
    return Message(Error(code=MOD_REFUSED, reason=reason), reply_to=msg)


def _reply_record(round_id: int, answer: bytes | None) -> ConfigRecord:
    return ConfigRecord({"v": FORMAT_VERSION, "round": round_id, "reply": answer or b""})


def _metric(content: RecordDict, key: str) -> float:
    for metrics in content.metric_records.values():
        if key in metrics:
            value = metrics[key]
            if isinstance(value, int | float) and math.isfinite(value):
                return float(value)
    raise InvalidArgument(
        f"weighting by examples needs the metric {key!r} (a number) in the ClientApp's reply"
    )


# ============================================================================ server
@dataclass(frozen=True)
class SecureRoundRecord:
    """What one secure round over Flower did."""

    round: int
    nodes: tuple[int, ...]
    """Flower node ids invited to the round."""
    survivors: tuple[int, ...]
    """Node ids whose update is in the aggregate."""
    dropped: Mapping[int, str]
    """Node id -> the phase in which it dropped out, and why."""
    aborted: str | None
    aggregate: np.ndarray | None
    """The decoded sum of the survivors' clipped updates (with the total weight as the last
    entry when weighting by examples, plus the summed noise under DP); ``None`` if aborted."""
    epsilon: float | None
    """Cumulative epsilon (at the DP delta) after this round; ``None`` without DP."""
    seconds: float
    bytes_down: int
    """secfl frame bytes sent to nodes (Flower's own framing and the model not counted)."""
    bytes_up: int
    """secfl frame bytes received from nodes."""
    phase_seconds: Mapping[str, float] = field(default_factory=dict)
    """Wall-clock seconds of each phase's message exchange (send to last reply or deadline)."""
    client_ids: Mapping[int, int] = field(default_factory=dict)
    """Node id -> secfl client id (``1..n`` in node-id order; the registry's ids when
    active). Nodes that never got an id (dropped while identifying) are absent."""


StageHook = Callable[[int, str, tuple[int, ...]], None]
"""``(round, phase, node ids)``, called before each phase's requests are sent."""


class SecureAggregation(Strategy):
    """A Flower strategy that securely aggregates the updates of another strategy's round.

    ``strategy`` (e.g. ``FedAvg``) keeps sampling nodes, building their training messages,
    running evaluation and aggregating metrics; its array aggregation is replaced by a secfl
    round: the new global model is the global model plus ``server_lr`` times the mean of the
    survivors' updates (each clipped to L2 norm ``clip_bound``; weighted by the metric
    ``strategy.weighted_by_key`` inside the secure sum when ``weighting`` is
    :attr:`Weighting.EXAMPLES`). A round that aborts (too few survivors) leaves the model
    unchanged.

    ``protocol``, ``clip_bound``, ``bits``, ``dropout`` (the fraction of nodes a round must
    tolerate), ``dp`` and ``paillier_bits`` mean what they mean in
    :class:`~secfl.pipeline.PipelineConfig` and :class:`~secfl.pipeline.Pipeline`.
    ``train_timeout`` bounds the first phase (it includes local training), ``stage_timeout``
    every later one; a node that has not answered by then is a dropout. The Paillier private
    key stays in this process (the key holder is the ServerApp).

    ``threat_model=ThreatModel.ACTIVE`` (protocol ``"secagg"``) protects against a server
    that deviates from the protocol: every node signs its keys and the survivor list with
    its own identity, checked against ``registry`` (the same file every node holds). A
    round then starts with an ``identify`` phase (training, and each node's registry id).

    ``paillier_public_key`` (protocol ``"paillier"``): the private key is **not** in this
    process but on a SuperNode whose node config names it (``secfl-paillier-key``); the
    strategy finds that node, leaves it out of training, and asks it to decrypt each round's
    encrypted sum. Without it the ServerApp makes and holds the key pair itself, and
    Paillier then protects the updates from the SuperLink and the network only.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        protocol: str = "secagg+",
        clip_bound: float = 1.0,
        bits: int = 32,
        dropout: float = 0.2,
        dp: DistributedDP | None = None,
        paillier_bits: int = 2048,
        weighting: Weighting = Weighting.UNIFORM,
        example_cap: int = 1000,
        server_lr: float = 1.0,
        train_timeout: float = 600.0,
        stage_timeout: float = 60.0,
        poll_interval: float = 0.2,
        on_stage: StageHook | None = None,
        threat_model: ThreatModel = ThreatModel.HONEST_BUT_CURIOUS,
        registry: Registry | None = None,
        paillier_public_key: PaillierPublicKey | None = None,
        rng: Csprng | None = None,
    ) -> None:
        if not isinstance(strategy, Strategy):
            raise InvalidArgument(
                f"strategy must be a Flower Strategy (e.g. FedAvg()), got {type(strategy).__name__}"
            )
        if isinstance(strategy, SecureAggregation):
            raise InvalidArgument("SecureAggregation cannot wrap another SecureAggregation")
        self.config = PipelineConfig(
            protocol=protocol,
            clip_bound=clip_bound,
            bits=bits,
            paillier_bits=paillier_bits,
            dp=dp,
            threat_model=threat_model,
        )
        if (threat_model is ThreatModel.ACTIVE) != (registry is not None):
            raise InvalidArgument(
                "the active threat model needs the registry of the nodes' identities (and a "
                "registry is used only by it): pass both threat_model=ThreatModel.ACTIVE and "
                "registry=Registry.load(path), or neither"
            )
        if registry is not None and not isinstance(registry, Registry):
            raise InvalidArgument(f"registry must be a secfl Registry, got {type(registry)}")
        self.registry = registry
        if paillier_public_key is not None:
            if protocol != "paillier":
                raise InvalidArgument("paillier_public_key goes with protocol 'paillier' only")
            if not isinstance(paillier_public_key, PaillierPublicKey):
                raise InvalidArgument("paillier_public_key must be a phe.PaillierPublicKey")
        self.paillier_public_key = paillier_public_key
        self.key_holder_node: int | None = None
        """The SuperNode holding the Paillier private key (found on first use)."""
        if not 0.0 <= dropout < 1.0:
            raise InvalidArgument(f"dropout must be in [0, 1), got {dropout}")
        if not isinstance(weighting, Weighting):
            raise InvalidArgument(f"weighting must be a secfl Weighting, got {weighting!r}")
        if not 1 <= example_cap < 1 << 32:
            raise InvalidArgument(f"example_cap must be in 1..2^32-1, got {example_cap}")
        if not (math.isfinite(server_lr) and server_lr > 0):
            raise InvalidArgument(f"server_lr must be a positive number, got {server_lr}")
        for name, value in (
            ("train_timeout", train_timeout),
            ("stage_timeout", stage_timeout),
            ("poll_interval", poll_interval),
        ):
            if not (math.isfinite(value) and value > 0):
                raise InvalidArgument(f"{name} must be a positive number of seconds, got {value}")
        self.strategy = strategy
        self.dropout = dropout
        self.weighting = weighting
        self.example_cap = example_cap
        self.server_lr = server_lr
        self.train_timeout = train_timeout
        self.stage_timeout = stage_timeout
        self.poll_interval = poll_interval
        self.on_stage = on_stage
        self._rng = rng or Csprng()
        self.weight_key = str(getattr(strategy, "weighted_by_key", "num-examples"))
        self.history: list[SecureRoundRecord] = []
        self.accountant = RdpAccountant() if dp is not None else None
        self._pending: tuple[int, ArrayRecord | None, MetricRecord | None] | None = None

    # ---------------------------------------------------------------- Strategy API
    def summary(self) -> None:
        """Log this strategy's secfl settings, then the wrapped strategy's summary."""
        cfg = self.config
        _log.info(
            "\t├──> secfl secure aggregation: protocol=%s threat_model=%s clip_bound=%s bits=%d "
            "dropout=%s dp=%s weighting=%s",
            cfg.protocol,
            cfg.threat_model.name,
            cfg.clip_bound,
            cfg.bits,
            self.dropout,
            cfg.dp,
            self.weighting.value,
        )
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Run the whole secure round now (it takes several message exchanges).

        Returns no messages: :meth:`aggregate_train` hands the round's result to
        ``Strategy.start``. Nodes are chosen by the wrapped strategy's ``configure_train``.
        """
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        new_arrays, metrics = self.run_round(grid, server_round, arrays, messages)
        self._pending = (server_round, new_arrays, metrics)
        return []

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The new global arrays of the round run by :meth:`configure_train`."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != server_round:
            return None, None
        return pending[1], pending[2]

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Evaluation is the wrapped strategy's."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Evaluation is the wrapped strategy's."""
        return self.strategy.aggregate_evaluate(server_round, replies)

    # ---------------------------------------------------------------- one round
    def run_round(
        self,
        grid: Grid,
        server_round: int,
        arrays: ArrayRecord,
        messages: list[Message],
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """One secure round over the nodes that ``messages`` (training messages) address.

        Returns the new global arrays (``None`` if the round aborted) and the aggregated
        training metrics; the round's :class:`SecureRoundRecord` is appended to
        :attr:`history`.
        """
        t0 = time.perf_counter()
        by_node: dict[int, Message] = {}
        for m in messages:
            node = m.metadata.dst_node_id
            if node in by_node:
                raise InvalidArgument(f"the wrapped strategy addressed node {node} twice")
            if RECORD_KEY in m.content:
                raise InvalidArgument(f"training messages must not carry a {RECORD_KEY!r} record")
            by_node[node] = m
        run = _Round(self, grid, server_round, tuple(sorted(by_node)), t0)
        remote = None
        if self.paillier_public_key is not None:
            try:
                holder = run.find_key_holder()
            except SecflError as e:
                run.finish(None, f"{type(e).__name__}: {e}")
                return None, None
            if holder in by_node:  # the key holder does not train
                del by_node[holder]
                run.set_nodes(tuple(sorted(by_node)))
            remote = RemoteKeyHolder(self.paillier_public_key, run.remote_decrypt)
        nodes = run.nodes
        if len(nodes) < 2:
            run.finish(None, "fewer than 2 nodes were sampled")
            return None, None
        layout = _Layout.of(arrays)
        weighted = self.weighting is Weighting.EXAMPLES
        seed = self._rng.bytes(SEED_BYTES)  # public: it only draws the rotation (DP)
        pipeline = Pipeline(
            self.config,
            n_clients=len(nodes),
            dim=layout.size + weighted,
            dropout=self.dropout,
            rng=Csprng(seed=seed),
            registry=self.registry.verify_keys if self.registry is not None else None,
            remote_key_holder=remote,
        )
        result = run.drive(pipeline, seed, by_node)
        if result is None:
            return None, None
        total = pipeline.server_side(result.aggregate)
        epsilon = self._account(pipeline, len(result.survivors))
        survivors = len(result.survivors)
        if weighted:
            if total[-1] <= 0:
                run.finish(None, "the survivors' total weight is zero", epsilon=epsilon)
                return None, None
            mean = total[:-1] / total[-1]
        else:
            mean = total / survivors
        base = layout.flatten(arrays, what="the global model")
        new_arrays = layout.apply(arrays, base + self.server_lr * mean)
        run.finish(total, None, epsilon=epsilon)
        metrics = self._metrics(run)
        return new_arrays, metrics

    def _account(self, pipeline: Pipeline, survivors: int) -> float | None:
        event = pipeline.dp_event(survivors=survivors)
        if event is None or self.accountant is None or self.config.dp is None:
            return None
        self.accountant.compose(event)
        return float(self.accountant.get_epsilon(self.config.dp.delta))

    def _metrics(self, run: _Round) -> MetricRecord:
        out = MetricRecord()
        aggr = getattr(self.strategy, "train_metrics_aggr_fn", None)
        contents = [run.train_metrics[n] for n in run.survivors if n in run.train_metrics]
        if callable(aggr) and contents:
            try:
                out = cast(MetricRecord, aggr(contents, self.weight_key))
            except Exception as e:  # user metrics code must not fail the round
                _log.warning("secfl: aggregating the train metrics failed: %s", e)
                out = MetricRecord()
        out["secfl-survivors"] = len(run.survivors)
        out["secfl-dropped"] = len(run.dropped)
        return out


class _Round:
    """The Flower side of one round: messages out, replies in, dropouts recorded."""

    def __init__(
        self,
        owner: SecureAggregation,
        grid: Grid,
        server_round: int,
        nodes: tuple[int, ...],
        t0: float,
    ) -> None:
        self.owner = owner
        self.grid = grid
        self.round = server_round
        self.set_nodes(nodes)
        self.setup: RoundSetup | None = None
        self.t0 = t0
        self.dropped: dict[int, str] = {}
        self.survivors: tuple[int, ...] = ()
        self.train_metrics: dict[int, RecordDict] = {}
        self.bytes_down = self.bytes_up = 0
        self.phase_seconds: dict[str, float] = {}

    def set_nodes(self, nodes: tuple[int, ...]) -> None:
        """The round's nodes, with client ids 1..n in node-id order."""
        self.nodes = nodes
        self.client_of = {node: i + 1 for i, node in enumerate(nodes)}
        self.node_of = {i + 1: node for i, node in enumerate(nodes)}

    def find_key_holder(self) -> int:
        """The node holding the Paillier private key: cached, or asked of every node."""
        owner = self.owner
        assert owner.paillier_public_key is not None
        if owner.key_holder_node is not None:
            return owner.key_holder_node
        probe = key_fingerprint(owner.paillier_public_key)
        fields: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "round": self.round}
        fields["probe"] = probe
        outgoing = {
            n: (RecordDict({RECORD_KEY: ConfigRecord(fields)}), _KEY_HOLDER_MESSAGE_TYPE)
            for n in sorted(self.grid.get_node_ids())
        }
        replies = self._exchange("find-key-holder", outgoing, owner.stage_timeout)
        for node in sorted(replies):
            reply = replies[node]
            record = None if reply.has_error() else reply.content.config_records.get(RECORD_KEY)
            if record is not None and record.get("key-holder") is True:
                owner.key_holder_node = node
                return node
        raise ProtocolAbort(
            f"none of the {len(outgoing)} nodes holds the Paillier private key of this "
            f"strategy's public key (node config {NODE_PAILLIER_KEY!r} on the key holder)"
        )

    def remote_decrypt(self, frame: bytes) -> bytes:
        """Have the key-holder node turn an ENCRYPTED_SUM frame into a DECRYPTED_SUM frame."""
        owner = self.owner
        node = owner.key_holder_node
        assert node is not None
        assert self.setup is not None
        setup = self.setup.to_bytes()
        fields: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "round": self.round}
        fields["setup"], fields["decrypt"] = setup, frame
        self.bytes_down += len(setup) + len(frame)
        outgoing = {
            node: (RecordDict({RECORD_KEY: ConfigRecord(fields)}), _KEY_HOLDER_MESSAGE_TYPE)
        }
        reply = self._exchange("decrypt", outgoing, owner.stage_timeout).get(node)
        if reply is None:
            owner.key_holder_node = None  # look for it again next round
            raise ProtocolAbort(
                f"the key holder (node {node}) did not answer within {owner.stage_timeout:g} s"
            )
        if reply.has_error():
            raise ProtocolAbort(f"the key holder (node {node}) refused: {reply.error.reason}")
        record = reply.content.config_records.get(RECORD_KEY)
        if record is None or _get_int(record, "round") != self.round:
            raise IntegrityError("the key holder's reply carries no secfl record of this round")
        answer = _get_bytes(record, "reply")
        self.bytes_up += len(answer)
        return answer

    def drive(
        self, pipeline: Pipeline, seed: bytes, training: Mapping[int, Message]
    ) -> _Result | None:
        """Run the session phase by phase; ``None`` (and a record) if the round aborts.

        The first exchange carries each node's training message and the round set-up: in
        the honest-but-curious model with the protocol's first request, in the active one
        alone (the ``identify`` phase), since the session needs the nodes' registry ids.
        """
        setup = self.setup = self._setup_template(pipeline, seed)
        try:
            first = not setup.active
            if setup.active:
                self._identify(setup, training)
            session = pipeline.protocol.server(
                round_id=self.round,
                client_ids=frozenset(self.client_of.values()),
                dim=pipeline.input_dim,
            )
            requests = session.start()
            while requests:
                phase = session.phase
                outgoing = {
                    self.node_of[cid]: self._message(
                        request, training[self.node_of[cid]], setup if first else None, cid
                    )
                    for cid, request in requests.items()
                }
                timeout = self.owner.train_timeout if first else self.owner.stage_timeout
                replies = self._exchange(phase, outgoing, timeout)
                for node in sorted(outgoing):
                    record = self._record(phase, node, replies.get(node), timeout)
                    if record is None:
                        continue
                    try:
                        answer = _get_bytes(record, "reply")
                        self.bytes_up += len(answer)
                        if answer:
                            session.receive(self.client_of[node], answer)
                    except SecflError as e:
                        self.dropped[node] = f"{phase}: rejected: {type(e).__name__}: {e}"
                        continue
                    if first:
                        self._keep_metrics(node, replies[node])
                first = False
                requests = session.advance()
            result = session.result
        except SecflError as e:
            self.finish(None, f"{type(e).__name__}: {e}")
            return None
        self.survivors = tuple(sorted(self.node_of[c] for c in result.survivors))
        for cid in result.dropped:
            self.dropped.setdefault(self.node_of[cid], "dropped")
        return _Result(result.aggregate, result.survivors)

    def _identify(self, setup: RoundSetup, training: Mapping[int, Message]) -> None:
        """Active rounds: send training and set-up, learn each node's registry id.

        A claim of an id outside the registry, or of one another node already claimed, makes
        the node a dropout; a node claiming someone else's id is caught by the signature
        check of the next phase (it cannot sign with that id's key).
        """
        registry = self.owner.registry
        assert registry is not None
        outgoing = {n: self._message(b"", training[n], setup, 0) for n in self.nodes}
        timeout = self.owner.train_timeout
        replies = self._exchange(IDENTIFY, outgoing, timeout)
        self.client_of, self.node_of = {}, {}
        for node in sorted(outgoing):
            record = self._record(IDENTIFY, node, replies.get(node), timeout)
            if record is None:
                continue
            try:
                cid = _get_int(record, "client")
                if cid not in registry.verify_keys:
                    raise IntegrityError(f"it claims client id {cid}, which is not in the registry")
                if cid in self.node_of:
                    raise IntegrityError(
                        f"it claims client id {cid}, which node {self.node_of[cid]} claimed first"
                    )
            except SecflError as e:
                self.dropped[node] = f"{IDENTIFY}: rejected: {type(e).__name__}: {e}"
                continue
            self.client_of[node], self.node_of[cid] = cid, node
            self._keep_metrics(node, replies[node])
        if len(self.node_of) < 2:
            raise InsufficientSurvivors(
                f"only {len(self.node_of)} of {len(self.nodes)} nodes identified themselves"
            )

    def _message(
        self, request: bytes, training: Message, setup: RoundSetup | None, client_id: int
    ) -> tuple[RecordDict, str]:
        """One node's message: its request, plus training and set-up in a first phase."""
        fields: dict[str, ConfigRecordValues] = {
            "v": FORMAT_VERSION,
            "round": self.round,
            "request": request,
        }
        content = RecordDict()
        if setup is not None:
            fields["setup"] = replace(setup, client_id=client_id).to_bytes()
            for key, rec in training.content.items():
                content[key] = rec
        content[RECORD_KEY] = ConfigRecord(fields)
        self.bytes_down += sum(len(v) for v in fields.values() if isinstance(v, bytes))
        return content, training.metadata.message_type

    def _setup_template(self, pipeline: Pipeline, seed: bytes) -> RoundSetup:
        owner = self.owner
        cfg = owner.config
        paillier = None
        if isinstance(pipeline.protocol, PaillierProtocol):
            pcfg = pipeline.protocol.config
            paillier = PaillierParams(
                n=int(pcfg.public_key.n),
                value_bits=pcfg.effective_value_bits,
                min_clients=pcfg.min_clients,
            )
        registry = owner.registry
        return RoundSetup(
            round_id=self.round,
            client_id=0 if registry is not None else 1,
            n_clients=len(self.nodes),
            dim=pipeline.dim,
            protocol=cfg.protocol,
            bits=pipeline.codec.bits,
            scale_bits=pipeline.codec.scale_bits,
            clip_bound=cfg.clip_bound,
            dropout=owner.dropout,
            weighting=owner.weighting,
            example_cap=owner.example_cap,
            weight_key=owner.weight_key,
            pipeline_seed=seed,
            dp=cfg.dp,
            paillier_bits=cfg.paillier_bits,
            paillier=paillier,
            threat_model=cfg.threat_model,
            registry_digest=registry.digest() if registry is not None else b"",
        )

    def _exchange(
        self, phase: str, outgoing: Mapping[int, tuple[RecordDict, str]], timeout: float
    ) -> dict[int, Message]:
        """Send one message per node; collect replies until all arrived or ``timeout``."""
        if self.owner.on_stage is not None:
            self.owner.on_stage(self.round, phase, tuple(sorted(outgoing)))
        t_phase = time.perf_counter()
        replies = self._push_and_pull(outgoing, timeout)
        self.phase_seconds[phase] = time.perf_counter() - t_phase
        _log.debug(
            "secfl round %d, phase %s: %d of %d replies in %.1f s",
            self.round,
            phase,
            len(replies),
            len(outgoing),
            self.phase_seconds[phase],
        )
        return replies

    def _push_and_pull(
        self, outgoing: Mapping[int, tuple[RecordDict, str]], timeout: float
    ) -> dict[int, Message]:
        nodes = list(outgoing)
        messages = [
            Message(
                outgoing[n][0],
                dst_node_id=n,
                message_type=outgoing[n][1],
                group_id=str(self.round),
                ttl=timeout + 30.0,
            )
            for n in nodes
        ]
        ids = list(self.grid.push_messages(messages))
        pending = {mid: n for mid, n in zip(ids, nodes, strict=False) if mid}
        replies: dict[int, Message] = {}
        deadline = time.monotonic() + timeout
        while pending:
            for reply in self.grid.pull_messages(list(pending)):
                node = pending.pop(reply.metadata.reply_to_message_id, None)
                if node is not None:
                    replies[node] = reply
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                break
            time.sleep(min(self.owner.poll_interval, left))
        return replies

    def _record(
        self, phase: str, node: int, reply: Message | None, timeout: float
    ) -> ConfigRecord | None:
        """A node's secfl reply record for this round, or ``None`` (and why it dropped)."""
        if reply is None:
            self.dropped[node] = f"{phase}: no reply within {timeout:g} s"
            return None
        if reply.has_error():
            self.dropped[node] = f"{phase}: {reply.error.reason or f'error {reply.error.code}'}"
            return None
        record = reply.content.config_records.get(RECORD_KEY)
        try:
            if record is None or record.get("v") != FORMAT_VERSION:
                raise IntegrityError(
                    "the reply carries no secfl record of this version (does the ClientApp "
                    "have secfl_mod among its mods, with the same secfl version?)"
                )
            if _get_int(record, "round") != self.round:
                raise ProtocolAbort("the reply is for another round")
        except SecflError as e:
            self.dropped[node] = f"{phase}: rejected: {type(e).__name__}: {e}"
            return None
        return record

    def _keep_metrics(self, node: int, reply: Message) -> None:
        metrics = RecordDict()
        for key, rec in reply.content.metric_records.items():
            metrics[key] = rec
        self.train_metrics[node] = metrics

    def finish(
        self, aggregate: np.ndarray | None, aborted: str | None, *, epsilon: float | None = None
    ) -> None:
        owner = self.owner
        record = SecureRoundRecord(
            round=self.round,
            nodes=self.nodes,
            survivors=self.survivors if aborted is None else (),
            dropped=dict(self.dropped),
            aborted=aborted,
            aggregate=aggregate,
            epsilon=epsilon,
            seconds=time.perf_counter() - self.t0,
            bytes_down=self.bytes_down,
            bytes_up=self.bytes_up,
            phase_seconds=dict(self.phase_seconds),
            client_ids=dict(self.client_of),
        )
        owner.history.append(record)
        if aborted is None:
            _log.info(
                "secfl round %d: %d of %d nodes aggregated (%d dropped) in %.1f s",
                self.round,
                len(record.survivors),
                len(self.nodes),
                len(record.dropped),
                record.seconds,
            )
        else:
            _log.warning("secfl round %d aborted: %s", self.round, aborted)


@dataclass(frozen=True)
class _Result:
    aggregate: np.ndarray
    survivors: frozenset[int]


# ============================================================================ records
def _get_int(record: ConfigRecord, key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise IntegrityError(f"secfl record field {key!r} must be an integer")
    return value


def _get_bytes(record: ConfigRecord, key: str) -> bytes:
    value = record.get(key)
    if not isinstance(value, bytes):
        raise IntegrityError(f"secfl record field {key!r} must be bytes")
    return value


def _get_str(record: ConfigRecord, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise IntegrityError(f"secfl record field {key!r} must be a string")
    return value
