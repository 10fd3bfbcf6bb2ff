"""The Flower client mod (see :mod:`secfl.integrations.flower`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from flwr.app import (
    ConfigRecord,
    ConfigRecordValues,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp.typing import ClientAppCallable

from secfl import wire
from secfl._text import plural
from secfl.errors import IntegrityError, InvalidArgument, ProtocolAbort, SecflError
from secfl.fl.round import ClientContribution, encode_update, zero_contribution
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.hazmat.threshold_paillier import KeyShare, ThresholdPublicKey
from secfl.identities import (
    Registry,
    load_paillier_private_key,
    load_paillier_public_key,
    load_signing_key,
)
from secfl.integrations._flower_common import (
    _ABORTED,
    _ACTIVE,
    _DONE,
    FORMAT_VERSION,
    KEY_HOLDER_STATE,
    MOD_REFUSED,
    NODE_IDENTITY,
    NODE_PAILLIER_KEY,
    NODE_PAILLIER_PUBLIC_KEY,
    NODE_PAILLIER_SHARE,
    NODE_PAILLIER_THRESHOLD_PUBLIC_KEY,
    NODE_REGISTRY,
    RECORD_KEY,
    STATE_KEY,
    _get_bytes,
    _get_int,
    _get_str,
    _Layout,
    _log,
    _single_array_record,
)
from secfl.integrations._flower_wire import SEED_BYTES, ClientPolicy, RoundSetup
from secfl.paillier_keys import PaillierPrivateKey
from secfl.pipeline import Pipeline
from secfl.protocols.base import ClientSession, ProtocolName
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, key_fingerprint
from secfl.protocols.paillier_threshold import ThresholdPaillierKeyHolder
from secfl.protocols.paillier_threshold_messages import DecryptRequest
from secfl.threshold_keys import load_key_share, load_threshold_public_key


@dataclass
class _ClientState:
    """What a node keeps between the messages of one round (in ``Context.state``)."""

    run: bytes = b""
    last_round: int = -1
    status: str = _DONE
    seed: bytes = field(default=b"", repr=False)  # the round's secret seed
    setup: bytes = b""
    value: bytes = field(default=b"", repr=False)  # the encoded (noised) update
    transcript: list[bytes] = field(default_factory=list, repr=False)  # replayed to rebuild

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
    node that has an identity, any round not in the active threat model. In a round with
    distributed DP the app's train metrics stay on the node (they are computed from its data
    and are not covered by the epsilon) unless ``release_metrics_under_dp=True``.

    A node's identity (active threat model) comes from its node config: ``secfl-identity``
    is the path of its Ed25519 signing key, ``secfl-registry`` that of the registry of every
    client's verify key (see :mod:`secfl.identities`; both are read on every message).
    ``paillier-threshold`` rounds also need ``secfl-paillier-threshold-public-key``, the
    threshold key the node encrypts under (a round under another key is refused). A node
    whose config names ``secfl-paillier-share`` (and ``secfl-registry``) is a threshold key
    holder: it never trains in such a round; it checks every client's signature, forms the
    product itself and returns its proven partial decryption, once per round.

    Keyword arguments are those of :class:`ClientPolicy`.
    """

    def __init__(
        self,
        *,
        protocols: tuple[str, ...] = ClientPolicy.protocols,
        min_clients: int = 3,
        min_paillier_bits: int = 2048,
        min_noise_multiplier: float | None = None,
        require_active: bool | None = None,
        release_metrics_under_dp: bool = False,
    ) -> None:
        self.policy = ClientPolicy(
            protocols=tuple(protocols),
            min_clients=min_clients,
            min_paillier_bits=min_paillier_bits,
            min_noise_multiplier=min_noise_multiplier,
            require_active=require_active,
            release_metrics_under_dp=release_metrics_under_dp,
        )

    def __repr__(self) -> str:
        return f"SecflClientMod({self.policy})"

    def __call__(self, msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if not msg.has_content() or RECORD_KEY not in msg.content.config_records:
            return call_next(msg, context)
        fields = set(msg.content.config_records[RECORD_KEY])
        if {"threshold-probe", "partial"} & fields:
            return self._threshold_holder(msg, context)
        if {"probe", "decrypt"} & fields:
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

    @staticmethod
    def _protect(
        reply: Message, layout: _Layout, base: np.ndarray, setup: RoundSetup, pipeline: Pipeline
    ) -> ClientContribution:
        """The ClientApp's reply as this node's encoded contribution; raises
        :class:`InvalidArgument` for a malformed one (no arrays, wrong shape, NaN/inf)."""
        shape = setup.shape()
        new = _single_array_record(reply.content, what="the ClientApp's training reply")
        update = layout.flatten(new, what="the ClientApp's training reply") - base
        examples = _metric(reply.content, setup.weight_key) if shape.weighted else 1.0
        if examples > shape.example_cap:  # logged here only: the count never leaves the node
            _log.warning(
                "secfl: this node's %r (%g) is above the round's example_cap (%d); it counts "
                "as %d in the weighted average",
                setup.weight_key,
                examples,
                shape.example_cap,
                shape.example_cap,
            )
        return encode_update(shape, pipeline, update, examples=examples, rng=Csprng())

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
        _threshold_key(setup, context)  # refuse now (before training) without the pinned key
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
        shape = setup.shape()
        if layout.size != setup.dim:
            raise ProtocolAbort(
                f"the round aggregates a model of {setup.dim} values but the global model has "
                f"{layout.size} floating-point entries"
            )
        pipeline = setup.client_pipeline()
        self.policy.check_plan(setup, pipeline)

        del msg.content[RECORD_KEY]  # the app sees the message FedAvg would have sent
        # Under distributed DP a node sends its noise share however its training ends: leaving
        # the round would let its data decide how many shares the sum has (the zero update
        # is its zero-out neighbour; spec distributed-dp-v1 section 15, item 8).
        reply: Message | None = None
        failure: str | None = None
        try:
            reply = call_next(msg, context)
        except Exception as e:  # the ClientApp's own failure
            if setup.dp is None:
                raise
            failure = f"the ClientApp raised {type(e).__name__}"
        if reply is not None and reply.has_error():
            if setup.dp is None:
                return reply
            failure = f"the ClientApp replied with an error: {reply.error.reason}"
        protected: ClientContribution | None = None
        if reply is not None and failure is None:
            try:
                protected = self._protect(reply, layout, base, setup, pipeline)
            except InvalidArgument as e:
                if setup.dp is None:
                    raise
                failure = str(e)
        if protected is None:
            _log.warning(
                "secfl: %s; under distributed DP this node sends zeros and its share", failure
            )
            protected = zero_contribution(shape, pipeline, rng=Csprng())

        seed = Csprng().bytes(SEED_BYTES)
        state.status = _ACTIVE
        state.seed, state.setup, state.transcript = seed, setup_bytes, []
        state.value = wire.Writer().vector(protected.encoded, setup.bits).getvalue()
        answer: bytes | None = None
        if not setup.active:  # an active round's first message only asks who this node is
            session = self._session(setup, pipeline, seed, protected.encoded, identity, context)
            answer = session.handle(request)
            state.transcript.append(request)
            if session.phase == _DONE:
                state.close(_DONE)
        state.save(context)

        content = RecordDict()
        if setup.dp is not None and not self.policy.release_metrics_under_dp:
            _log.info(
                "secfl: this node's train metrics stay here: the round has distributed DP and "
                "they are not covered by its epsilon (release_metrics_under_dp=True sends them)"
            )
        elif reply is not None and failure is None:
            for key, metrics in reply.content.metric_records.items():
                content[key] = _without_count(metrics, setup)
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
        pipeline = setup.client_pipeline()
        r = wire.Reader(state.value)
        value = r.vector(setup.bits)
        r.finish()
        session = self._session(setup, pipeline, state.seed, value, identity, context)
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
                f"the round has {plural(setup.n_clients, 'client')}; this key holder decrypts "
                f"only sums of at least {self.policy.min_clients} (min_clients)"
            )
        _spend_round(context, run_id, round_id, "decryption")
        config = PaillierConfig(
            public_key=key.public_key,
            bits=setup.bits,
            n_clients=setup.n_clients,
            value_bits=setup.paillier.value_bits,
            min_clients=floor,
        )
        return PaillierKeyHolder(config, key).handle(frame)

    def _threshold_holder(self, msg: Message, context: Context) -> Message:
        """Threshold key holder: say which holder this node is (if it holds a share of the
        probed key), or return its partial decryption of one round's signed inputs."""
        try:
            record = msg.content.config_records[RECORD_KEY]
            if record.get("v") != FORMAT_VERSION:
                raise IntegrityError(f"secfl record version {record.get('v')!r}")
            round_id = _get_int(record, "round")
            share = _node_key_share(context)
            if "threshold-probe" in record:
                probe = _get_bytes(record, "threshold-probe")
                ours = share is not None and probe == share.public_key.fingerprint()
                fields: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "round": round_id}
                fields["key-holder-index"] = share.index if share is not None and ours else 0
                return Message(RecordDict({RECORD_KEY: ConfigRecord(fields)}), reply_to=msg)
            if share is None:
                raise ProtocolAbort(
                    f"this node holds no threshold Paillier key share (node config "
                    f"{NODE_PAILLIER_SHARE!r})"
                )
            setup = RoundSetup.from_bytes(_get_bytes(record, "setup"))
            frame = _get_bytes(record, "partial")
            answer = self._partial(context, msg.metadata.run_id, round_id, setup, frame, share)
            return Message(RecordDict({RECORD_KEY: _reply_record(round_id, answer)}), reply_to=msg)
        except SecflError as e:
            return _refusal(msg, "threshold key holder", e)

    def _partial(
        self,
        context: Context,
        run_id: int,
        round_id: int,
        setup: RoundSetup,
        frame: bytes,
        share: KeyShare,
    ) -> bytes:
        """One round's DECRYPT_REQUEST -> PARTIAL, at most once per round, in order."""
        if not setup.threshold or setup.paillier is None or setup.round_id != round_id:
            raise ProtocolAbort(
                "a partial-decryption request needs the threshold set-up of its round"
            )
        registry = _node_registry(context)
        if setup.registry_digest != registry.digest():
            raise ProtocolAbort(
                "the server's registry is not this key holder's: every party needs the same "
                "registry file"
            )
        if share.public_key.bits < self.policy.min_paillier_bits:
            raise ProtocolAbort(
                f"the threshold key has {share.public_key.bits} bits; this key holder requires "
                f"at least {self.policy.min_paillier_bits} (min_paillier_bits)"
            )
        config = setup.threshold_config(share.public_key, registry.verify_keys)
        dim = DecryptRequest.peek_dim(frame)
        size = config.input_bytes(max(dim, 1))
        count = len(DecryptRequest.from_bytes(frame, size=size, max_inputs=config.n_clients).inputs)
        if count < self.policy.min_clients:  # the protocol's own floor is the round's
            raise ProtocolAbort(
                f"refusing to decrypt a sum of {plural(count, 'signed input')}: this key holder "
                f"decrypts only sums of at least {self.policy.min_clients} (min_clients)"
            )
        _spend_round(context, run_id, round_id, "partial decryption")
        return ThresholdPaillierKeyHolder(config, share, rng=Csprng()).handle(frame)

    @staticmethod
    def _session(
        setup: RoundSetup,
        pipeline: Pipeline,
        seed: bytes,
        value: np.ndarray,
        identity: _Identity | None,
        context: Context,
    ) -> ClientSession:
        key = identity.key if identity is not None else None
        registry = identity.registry.verify_keys if identity is not None else None
        protocol = setup.client_protocol(
            pipeline,
            rng=Csprng(seed=seed),
            identity=key,
            registry=registry,
            threshold_key=_threshold_key(setup, context),
        )
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


def _threshold_key(setup: RoundSetup, context: Context) -> ThresholdPublicKey | None:
    """The threshold key this node pinned, for a ``paillier-threshold`` round (``None`` for
    any other); a round under another key, or a node that pinned none, is refused."""
    if not setup.threshold:
        return None
    path = context.node_config.get(NODE_PAILLIER_THRESHOLD_PUBLIC_KEY)
    if not isinstance(path, str) or not path:
        raise ProtocolAbort(
            f"the server asked for a threshold Paillier round; this node takes part only under "
            f"a threshold key it pinned (node config {NODE_PAILLIER_THRESHOLD_PUBLIC_KEY!r}: "
            f"the path of paillier-threshold.pub)"
        )
    key = load_threshold_public_key(path)
    assert setup.paillier is not None  # checked by RoundSetup
    if key.fingerprint() != setup.threshold_fingerprint or key.n != setup.paillier.n:
        raise ProtocolAbort(
            "the server asked to encrypt under a threshold Paillier key other than the one this "
            f"node pinned ({NODE_PAILLIER_THRESHOLD_PUBLIC_KEY!r}): refusing"
        )
    return key


def _node_key_share(context: Context) -> KeyShare | None:
    """The threshold key share named by the node config, or ``None``."""
    path = context.node_config.get(NODE_PAILLIER_SHARE)
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"node config {NODE_PAILLIER_SHARE!r} must be a file path")
    return load_key_share(path)


def _node_registry(context: Context) -> Registry:
    """The registry named by the node config (a threshold key holder needs it)."""
    path = context.node_config.get(NODE_REGISTRY)
    if not isinstance(path, str) or not path:
        raise ProtocolAbort(
            f"a threshold key holder checks every client's signature: set the node config "
            f"{NODE_REGISTRY!r} to the path of the registry (the same file every party holds)"
        )
    return Registry.load(path)


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


def _without_count(metrics: MetricRecord, setup: RoundSetup) -> MetricRecord:
    """The app's own metrics, without its example count when the round protects updates.

    Under a protected protocol the count is private like the update: with example weighting
    it travels inside the secure sum, and the server learns only the total. The server
    averages the other metrics uniformly over the survivors.
    """
    if setup.protocol == ProtocolName.PLAIN or setup.weight_key not in metrics:
        return metrics
    return MetricRecord({k: v for k, v in metrics.items() if k != setup.weight_key})


def _spend_round(context: Context, run_id: int, round_id: int, what: str) -> None:
    """A key holder's one ``what`` per round, in round order: refuse a round not after
    the last one of this run, else record this one as spent. Spent by any well-formed
    attempt, before decrypting (a refusal does not reopen it)."""
    run = run_id.to_bytes(8, "big")
    spent = context.state.config_records.get(KEY_HOLDER_STATE)
    if spent is not None and spent.get("run") == run:
        last = _get_int(spent, "last_round")
        if round_id <= last:
            raise ProtocolAbort(
                f"round {round_id} is not after round {last}, for which this key holder "
                f"already decrypted: one {what} per round, in round order"
            )
    state: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "run": run}
    state["last_round"] = round_id
    context.state.config_records[KEY_HOLDER_STATE] = ConfigRecord(state)
