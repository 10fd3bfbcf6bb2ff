"""The round set-up message of the Flower integration, and the pieces both sides build from it.

No Flower import here: this is plain secfl framing (:mod:`secfl.wire`), so it can be tested
and specified without the ``flower`` extra.

A round over Flower starts with one ``RUNTIME_SETUP`` frame (type ``0x51``) per node, sent
together with the protocol's first request. It carries everything a client needs to build
the *same* :class:`~secfl.pipeline.Pipeline` as the server (protocol, ring, clip bound,
number of clients, dimension, dropout, distributed-DP parameters, the public seed of the
rotation, the Paillier public key, the threat model) and the secfl client id the server
gave this node. In the active threat model the server cannot know a node's id before the
node says who it is: ``client_id`` is 0 and the node takes the id its own signing key has
in its own registry, whose digest the set-up carries so that a mismatch is reported as one.
Body layout (big-endian, :mod:`secfl.wire` conventions)::

    u8 setup_version (6) | u64 round_id | u32 client_id | u32 n_clients | u32 model_dim
    | u8 protocol (0 plain, 1 secagg, 2 secagg+, 3 paillier, 4 paillier-threshold) | u8 bits
    | u8 scale_bits + 64
    | f64 clip_bound | f64 dropout | u8 weighting (0 uniform, 1 examples) | u32 example_cap
    | u8 adaptive (0 fixed clip bound, 1 the indicator slot) | blob weight_key (UTF-8)
    | raw(32) pipeline_seed
    | u8 dp (0 none, 1 discrete Gaussian, 2 Skellam) [| f64 noise_multiplier | f64 delta
    | f64 beta | u32 max_cohort (0: none) | u32 noise_clients (0: none)]
    | u16 paillier_bits [| blob Paillier modulus n | u8 value_bits | u32 min_clients
    [| raw(16) threshold key fingerprint]]
    | u8 threat_model (0 honest-but-curious, 1 active) [| raw(32) registry digest]
    (f64 = IEEE 754 binary64, 8 bytes)

``model_dim`` and ``clip_bound`` are the model's size and the bound its update is clipped
to this round; with ``weighting``, ``example_cap`` and ``adaptive`` they make the round's
:class:`~secfl.fl.round.RoundShape`, from which both sides derive the pipeline (version 2
carried the pipeline's dimension and bound instead, and had no ``adaptive``; version 4
added ``max_cohort``, the public cohort bound the distributed-DP scale is planned for;
version 5 added protocol 4, ``paillier-threshold`` (paillier-sum-v2), whose Paillier block
ends with the 16-byte fingerprint of the threshold public key; version 6 added
``noise_clients``, the public count the noise shares are sized for).

A ``paillier-threshold`` round is always in the active threat model: client ids are the
registry's (each client signs its ciphertexts with its registered key), and the round
starts with the ``identify`` phase. Nothing in the set-up is trusted for the key: a client
encrypts only under the threshold public key pinned in its own node config, and refuses a
set-up whose modulus or fingerprint differ from it; a key holder checks the fingerprint
against its own share's key, and the registry digest against its own registry. The set-up
sent to a key holder is the template (``client_id`` 0).

The client rebuilds the pipeline from these values and checks the codec it gets against
``scale_bits``; each protocol's first request then pins the rest (dimension, ring,
threshold, degree, key fingerprint), so a client never runs with parameters that differ
from the server's.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from phe import PaillierPublicKey

from secfl import wire
from secfl._text import plural
from secfl.dp.mechanisms import ddg_collapse
from secfl.errors import IntegrityError, InvalidArgument, ProtocolAbort
from secfl.fl.round import RoundShape, Weighting
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.hazmat.threshold_paillier import ThresholdPublicKey
from secfl.pipeline import (
    DistributedDP,
    DPMechanism,
    Pipeline,
    PipelineConfig,
    build_protocol,
    provisioned_survivors,
)
from secfl.protocols.base import PROTOCOLS, AggregationProtocol, ProtocolName
from secfl.protocols.paillier import PaillierConfig, PaillierProtocol
from secfl.protocols.paillier_threshold import PROTOCOL_NAME as PAILLIER_THRESHOLD
from secfl.protocols.paillier_threshold import ThresholdPaillierConfig, ThresholdPaillierProtocol
from secfl.protocols.paillier_threshold_messages import FINGERPRINT_BYTES
from secfl.protocols.secagg import ThreatModel

__all__ = [
    "MSG_RUNTIME_SETUP",
    "PAILLIER_THRESHOLD",
    "SETUP_PROTOCOLS",
    "SETUP_VERSION",
    "ClientPolicy",
    "PaillierParams",
    "RoundSetup",
]

MSG_RUNTIME_SETUP = 0x51
"""Wire type of the set-up frame (wire-v1 registry, runtime range 0x50-0x5F)."""
_MSG_RUNTIME_SETUP_V1 = 0x50  # retired: the layout before the threat model was added
SETUP_VERSION = 6
SEED_BYTES = 32
DIGEST_BYTES = 32

SETUP_PROTOCOLS: tuple[str, ...] = (*PROTOCOLS, PAILLIER_THRESHOLD)
"""What a set-up may name; the wire code is the index: never reorder ProtocolName."""
_PROTOCOLS = SETUP_PROTOCOLS
_PAILLIER_LIKE = (ProtocolName.PAILLIER, PAILLIER_THRESHOLD)
_PROTECTED = (
    ProtocolName.SECAGG,
    ProtocolName.SECAGG_PLUS,
    ProtocolName.PAILLIER,
    PAILLIER_THRESHOLD,
)
_WEIGHTINGS = (Weighting.UNIFORM, Weighting.EXAMPLES)
_MECHANISMS = (None, DPMechanism.DISCRETE_GAUSSIAN, DPMechanism.SKELLAM)
_THREAT_MODELS = (ThreatModel.HONEST_BUT_CURIOUS, ThreatModel.ACTIVE)
_MAX_KEY = 256
_MAX_MODULUS_BYTES = 2048  # a 16384-bit modulus
_F64 = struct.Struct(">d")
T = TypeVar("T")


@dataclass(frozen=True)
class PaillierParams:
    """The public part of a Paillier round: modulus and the packing parameters."""

    n: int
    value_bits: int
    min_clients: int


@dataclass(frozen=True)
class RoundSetup:
    """Everything one client needs to take part in one round (see the module docstring)."""

    round_id: int
    client_id: int
    n_clients: int
    dim: int
    """The model's number of parameters (the round's shape adds the auxiliary slots)."""
    protocol: str
    bits: int
    scale_bits: int
    clip_bound: float
    dropout: float
    weighting: Weighting
    example_cap: int
    weight_key: str
    pipeline_seed: bytes
    dp: DistributedDP | None
    paillier_bits: int
    paillier: PaillierParams | None
    threat_model: ThreatModel = ThreatModel.HONEST_BUT_CURIOUS
    registry_digest: bytes = b""
    """SHA-256 digest of the server's registry (active threat model only)."""
    adaptive: bool = False
    """Whether the round's sum carries the adaptive-clipping indicator slot."""
    threshold_fingerprint: bytes = b""
    """Fingerprint of the threshold public key (``paillier-threshold`` only)."""

    @property
    def active(self) -> bool:
        return self.threat_model is ThreatModel.ACTIVE

    @property
    def threshold(self) -> bool:
        """Whether the round is paillier-sum-v2 (threshold key holders)."""
        return self.protocol == PAILLIER_THRESHOLD

    def __post_init__(self) -> None:
        if self.protocol not in _PROTOCOLS:
            raise InvalidArgument(f"unknown protocol {self.protocol!r}; choose from {_PROTOCOLS}")
        if self.dp is not None and self.dp.noise_multiplier is None:
            raise InvalidArgument("a round's DistributedDP needs its noise_multiplier")
        if (self.protocol in _PAILLIER_LIKE) != (self.paillier is not None):
            raise InvalidArgument(
                "Paillier parameters go with protocols 'paillier' and 'paillier-threshold' only"
            )
        if self.threshold != (len(self.threshold_fingerprint) == FINGERPRINT_BYTES):
            raise InvalidArgument(
                f"a {FINGERPRINT_BYTES}-byte threshold key fingerprint goes with protocol "
                f"{PAILLIER_THRESHOLD!r}, and only then"
            )
        if self.threshold and not self.active:
            raise InvalidArgument(
                f"protocol {PAILLIER_THRESHOLD!r} runs in the active threat model only (clients "
                f"sign their ciphertexts with their registered identities)"
            )
        if len(self.pipeline_seed) != SEED_BYTES:
            raise InvalidArgument(f"pipeline_seed must be {SEED_BYTES} bytes")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidArgument(f"dropout must be in [0, 1), got {self.dropout}")
        if self.active:  # ids are the registry's; 0 = "the id of your own key"
            if self.protocol not in (ProtocolName.SECAGG, PAILLIER_THRESHOLD):
                raise InvalidArgument(
                    "the active threat model goes with protocols 'secagg' and "
                    f"{PAILLIER_THRESHOLD!r} only"
                )
            if len(self.registry_digest) != DIGEST_BYTES:
                raise InvalidArgument(f"registry_digest must be {DIGEST_BYTES} bytes")
        elif not 1 <= self.client_id <= self.n_clients:
            raise InvalidArgument(f"client_id {self.client_id} is not in 1..{self.n_clients}")
        elif self.registry_digest:
            raise InvalidArgument("a registry digest goes with the active threat model only")
        if self.dim < 1:
            raise InvalidArgument(f"dim must be >= 1, got {self.dim}")
        if not -64 <= self.scale_bits < 192:
            raise InvalidArgument(f"scale_bits {self.scale_bits} does not fit the set-up frame")

    # ------------------------------------------------------------------ pipeline
    def shape(self) -> RoundShape:
        """The round's shape: model size, clip bound and auxiliary slots."""
        return RoundShape(
            model_dim=self.dim,
            clip_bound=self.clip_bound,
            weighted=self.weighting is Weighting.EXAMPLES,
            example_cap=self.example_cap,
            adaptive=self.adaptive,
        )

    def pipeline_config(self) -> PipelineConfig:
        """The pipeline of the round's shape (its bound leaves room for the slots).

        A ``paillier-threshold`` round plans its codec as a ``paillier`` one (same packing;
        the signatures and the threshold key change who can decrypt, not what is summed).
        """
        base = PipelineConfig(
            protocol=ProtocolName.PAILLIER if self.threshold else self.protocol,
            clip_bound=self.clip_bound,
            bits=self.bits,
            paillier_bits=self.paillier_bits,
            dp=self.dp,
            threat_model=ThreatModel.HONEST_BUT_CURIOUS if self.threshold else self.threat_model,
        )
        return self.shape().pipeline_config(base)

    def client_pipeline(self) -> Pipeline:
        """The client's copy of the round's pipeline (same codec, DP plan and rotation),
        built from the public ``pipeline_seed``, which only draws the public rotation."""
        pipeline = Pipeline(
            self.pipeline_config(),
            n_clients=self.n_clients,
            dim=self.shape().input_dim,
            dropout=self.dropout,
            rng=Csprng(seed=self.pipeline_seed),
        )
        if pipeline.codec.scale_bits != self.scale_bits or pipeline.codec.bits != self.bits:
            raise ProtocolAbort(
                f"the server planned scale 2^{self.scale_bits} over Z_2^{self.bits}; this "
                f"client's pipeline plans 2^{pipeline.codec.scale_bits} over "
                f"Z_2^{pipeline.codec.bits}: the two sides run different secfl versions"
            )
        return pipeline

    def client_protocol(
        self,
        pipeline: Pipeline,
        *,
        rng: Csprng,
        identity: SigningKey | None = None,
        registry: Mapping[int, VerifyKey] | None = None,
        threshold_key: ThresholdPublicKey | None = None,
    ) -> AggregationProtocol:
        """The protocol this client's session is built from, drawing secrets from ``rng``.

        In the active threat model it signs with ``identity`` (this node's key) and checks
        signatures against ``registry`` (the node's own); both are unused otherwise.
        Paillier is built from the set-up's public parameters (a client holds no private
        key); ``paillier-threshold`` from ``threshold_key``, the key this node pinned (it
        must be the set-up's); the other protocols by
        :func:`~secfl.pipeline.build_protocol`, as the server.
        """
        if self.threshold:
            if identity is None or registry is None or threshold_key is None:
                raise ProtocolAbort(
                    f"a {PAILLIER_THRESHOLD!r} round needs this node's signing key, registry "
                    f"and pinned threshold public key"
                )
            config = self.threshold_config(threshold_key, registry)
            return ThresholdPaillierProtocol(config, identities={self.client_id: identity}, rng=rng)
        if self.protocol == ProtocolName.PAILLIER:
            assert self.paillier is not None
            cfg = PaillierConfig(
                public_key=PaillierPublicKey(self.paillier.n),
                bits=self.bits,
                n_clients=self.n_clients,
                value_bits=self.paillier.value_bits,
                min_clients=self.paillier.min_clients,
            )
            return PaillierProtocol(cfg, rng=rng)
        if not self.active:
            return build_protocol(pipeline, rng=rng)
        if identity is None or registry is None:
            raise ProtocolAbort("an active round needs this node's signing key and registry")
        identities = {self.client_id: identity}
        return build_protocol(pipeline, rng=rng, identities=identities, registry=registry)

    def threshold_config(
        self, public_key: ThresholdPublicKey, registry: Mapping[int, VerifyKey]
    ) -> ThresholdPaillierConfig:
        """paillier-sum-v2's configuration of this round, under ``public_key`` (the
        caller's own copy: the set-up's fingerprint and modulus must name it)."""
        if not self.threshold or self.paillier is None:
            raise ProtocolAbort(f"the round is {self.protocol!r}, not threshold Paillier")
        if (
            public_key.fingerprint() != self.threshold_fingerprint
            or public_key.n != self.paillier.n
        ):
            raise ProtocolAbort(
                "the server named a threshold Paillier key other than this node's (a key whose "
                "private part the server could hold): refusing"
            )
        return ThresholdPaillierConfig(
            public_key=public_key,
            registry=registry,
            bits=self.bits,
            n_clients=self.n_clients,
            value_bits=self.paillier.value_bits,
            min_clients=self.paillier.min_clients,
        )

    # ------------------------------------------------------------------ bytes
    def to_bytes(self) -> bytes:
        """The ``RUNTIME_SETUP`` frame."""
        w = (
            wire.Writer()
            .u8(SETUP_VERSION)
            .u64(self.round_id)
            .u32(self.client_id)
            .u32(self.n_clients)
            .u32(self.dim)
            .u8(_PROTOCOLS.index(self.protocol))
            .u8(self.bits)
            .u8(self.scale_bits + 64)
            .raw(_f64(self.clip_bound))
            .raw(_f64(self.dropout))
            .u8(_WEIGHTINGS.index(self.weighting))
            .u32(self.example_cap)
            .u8(int(self.adaptive))
            .blob(self.weight_key.encode("utf-8"))
            .raw(self.pipeline_seed)
            .u8(_MECHANISMS.index(self.dp.mechanism if self.dp else None))
        )
        if self.dp is not None:
            z = self.dp.noise_multiplier
            assert z is not None  # checked in __post_init__
            w.raw(_f64(z)).raw(_f64(self.dp.delta)).raw(_f64(self.dp.beta))
            w.u32(self.dp.max_cohort or 0).u32(self.dp.noise_clients or 0)
        w.u16(self.paillier_bits)
        if self.paillier is not None:
            n = self.paillier.n
            w.blob(n.to_bytes((n.bit_length() + 7) // 8, "big"))
            w.u8(self.paillier.value_bits).u32(self.paillier.min_clients)
            if self.threshold:
                w.raw(self.threshold_fingerprint)
        w.u8(_THREAT_MODELS.index(self.threat_model))
        if self.active:
            w.raw(self.registry_digest)
        return wire.frame(MSG_RUNTIME_SETUP, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> RoundSetup:
        """Parse a ``RUNTIME_SETUP`` frame; malformed bytes raise :class:`IntegrityError`."""
        msg_type, body = wire.unframe(data)
        if msg_type == _MSG_RUNTIME_SETUP_V1:
            raise IntegrityError(
                "a set-up frame of type 0x50 comes from an older secfl (no threat model); "
                "this node speaks type 0x51: run the same secfl version everywhere"
            )
        if msg_type != MSG_RUNTIME_SETUP:
            raise IntegrityError(
                f"expected a set-up frame (type {MSG_RUNTIME_SETUP:#04x}), got {msg_type:#04x}"
            )
        r = wire.Reader(body)
        version = r.u8()
        if version != SETUP_VERSION:
            older = " (an older secfl: run the same version everywhere)" if version < 6 else ""
            raise IntegrityError(
                f"set-up version {version} is not supported{older}; this secfl speaks "
                f"{SETUP_VERSION}"
            )
        round_id, client_id, n_clients, dim = r.u64(), r.u32(), r.u32(), r.u32()
        protocol = _pick(_PROTOCOLS, r.u8(), "protocol")
        bits, scale_bits = r.u8(), r.u8() - 64
        clip_bound, dropout = _read_f64(r), _read_f64(r)
        weighting = _pick(_WEIGHTINGS, r.u8(), "weighting")
        example_cap = r.u32()
        adaptive = _pick((False, True), r.u8(), "adaptive flag")
        try:
            weight_key = r.blob(max_len=_MAX_KEY).decode("utf-8")
        except UnicodeDecodeError as e:
            raise IntegrityError("the weight key is not UTF-8") from e
        seed = r.raw(SEED_BYTES)
        mechanism = _pick(_MECHANISMS, r.u8(), "DP mechanism")
        dp = None
        if mechanism is not None:
            nm, delta, beta = _read_f64(r), _read_f64(r), _read_f64(r)
            cap, noise_clients = r.u32(), r.u32()
            dp = DistributedDP(
                mechanism=mechanism,
                noise_multiplier=nm,
                delta=delta,
                beta=beta,
                max_cohort=cap or None,
                noise_clients=noise_clients or None,
            )
        paillier_bits = r.u16()
        paillier = None
        fingerprint = b""
        if protocol in _PAILLIER_LIKE:
            n = int.from_bytes(r.blob(max_len=_MAX_MODULUS_BYTES), "big")
            paillier = PaillierParams(n=n, value_bits=r.u8(), min_clients=r.u32())
            if protocol == PAILLIER_THRESHOLD:
                fingerprint = r.raw(FINGERPRINT_BYTES)
        threat_model = _pick(_THREAT_MODELS, r.u8(), "threat model")
        digest = r.raw(DIGEST_BYTES) if threat_model is ThreatModel.ACTIVE else b""
        r.finish()
        return cls(
            round_id=round_id,
            client_id=client_id,
            n_clients=n_clients,
            dim=dim,
            protocol=protocol,
            bits=bits,
            scale_bits=scale_bits,
            clip_bound=clip_bound,
            dropout=dropout,
            weighting=weighting,
            example_cap=example_cap,
            weight_key=weight_key,
            pipeline_seed=seed,
            dp=dp,
            paillier_bits=paillier_bits,
            paillier=paillier,
            threat_model=threat_model,
            registry_digest=digest,
            adaptive=adaptive,
            threshold_fingerprint=fingerprint,
        )


@dataclass(frozen=True)
class ClientPolicy:
    """What a client accepts from a server's set-up, checked before it trains.

    The server chooses the protocol and its parameters; a client should not take part in a
    round that would show its update to the server (``plain``), that sums too few clients
    to hide it, or whose noise is below what the client requires (``min_noise_multiplier``:
    the multiplier the round has with its fewest survivors, so shares sized for a larger
    ``noise_clients`` count against it). ``require_active``: only
    rounds in the active threat model; ``None`` means "if this node has an identity" (a
    node with an identity must not let a server downgrade it to honest-but-curious, where
    the server can show different survivor lists to different nodes).
    ``release_metrics_under_dp``: in a round with distributed DP, send the app's train
    metrics (computed from the node's data, in the clear, **not** covered by the round's
    epsilon); by default they stay on the node.
    """

    protocols: tuple[str, ...] = _PROTECTED
    min_clients: int = 3
    min_paillier_bits: int = 2048
    min_noise_multiplier: float | None = None
    require_active: bool | None = None
    release_metrics_under_dp: bool = False

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p not in _PROTOCOLS]
        if unknown or not self.protocols:
            raise InvalidArgument(
                f"protocols must be a non-empty subset of {_PROTOCOLS}, got {self.protocols}"
            )
        if self.min_clients < 2:
            raise InvalidArgument(f"min_clients must be >= 2, got {self.min_clients}")
        if self.min_paillier_bits < 1024:
            raise InvalidArgument(
                f"min_paillier_bits must be >= 1024, got {self.min_paillier_bits}"
            )
        if self.min_noise_multiplier is not None and not (
            math.isfinite(self.min_noise_multiplier) and self.min_noise_multiplier > 0
        ):
            raise InvalidArgument("min_noise_multiplier must be a positive number or None")

    def check(self, setup: RoundSetup, *, has_identity: bool = False) -> None:
        """Raise :class:`ProtocolAbort` if this client must not take part in ``setup``."""
        require_active = has_identity if self.require_active is None else self.require_active
        if require_active and not setup.active:
            why = "it has an identity" if self.require_active is None else "require_active=True"
            raise ProtocolAbort(
                "the server asked for an honest-but-curious round; this node takes part only "
                f"in rounds in the active threat model ({why})"
            )
        if setup.active and not has_identity:
            raise ProtocolAbort(
                "the server asked for an active round; this node has no identity (set the "
                "node config keys secfl-identity and secfl-registry)"
            )
        if setup.protocol not in self.protocols:
            raise ProtocolAbort(
                f"the server asked for protocol {setup.protocol!r}; this client accepts only "
                f"{self.protocols} (pass protocols=... to SecflClientMod to change it)"
            )
        if setup.n_clients < self.min_clients:
            raise ProtocolAbort(
                f"the round has {plural(setup.n_clients, 'client')}; this client requires at "
                f"least {self.min_clients} (min_clients)"
            )
        if setup.paillier is not None and setup.paillier.n.bit_length() < self.min_paillier_bits:
            raise ProtocolAbort(
                f"the Paillier modulus has {setup.paillier.n.bit_length()} bits; this client "
                f"requires at least {self.min_paillier_bits} (min_paillier_bits)"
            )
        if self.min_noise_multiplier is not None:
            z = 0.0 if setup.dp is None else _floor_noise_multiplier(setup)
            if z < self.min_noise_multiplier:
                have = "no DP" if setup.dp is None else f"noise multiplier {z:.4g}"
                raise ProtocolAbort(
                    f"the round has {have} at the fewest survivors it may finish with; this "
                    f"client requires distributed DP with noise_multiplier >= "
                    f"{self.min_noise_multiplier}"
                )

    def check_plan(self, setup: RoundSetup, pipeline: Pipeline) -> None:
        """Raise :class:`ProtocolAbort` if a client that asks for a noise multiplier would
        add shares too small for the discrete Gaussian's bound (``ddg_collapse``): the
        multiplier is then nominal and the guarantee collapses (e.g. a server that chose
        few bits or a large ``max_cohort``)."""
        if self.min_noise_multiplier is None or pipeline.dp_plan is None:
            return
        why = ddg_collapse(pipeline.dp_plan.noise, n_clients=setup.n_clients)
        if why is not None:
            raise ProtocolAbort(
                f"the round's distributed-DP plan collapses, and this client requires "
                f"noise_multiplier >= {self.min_noise_multiplier} in earnest: {why}"
            )


def _floor_noise_multiplier(setup: RoundSetup) -> float:
    """The noise multiplier of a round that finishes with its fewest survivors m: z itself,
    or z sqrt(m / M) when the shares are sized for M = ``noise_clients`` > m (a server
    could otherwise name a large M and a client would add almost no noise).

    m is the floor the parties that release the sum enforce: SecAgg clients refuse to
    unmask below ``provisioned_survivors(n, dropout)`` (or the threshold, larger); Paillier
    key holders decrypt from the set-up's ``min_clients``, which the server writes, so the
    smaller of the two counts."""
    assert setup.dp is not None
    z = setup.dp.noise_multiplier or 0.0
    m = provisioned_survivors(setup.n_clients, setup.dropout)
    if setup.paillier is not None:
        m = min(m, setup.paillier.min_clients)
    return z * math.sqrt(min(1.0, m / (setup.dp.noise_clients or m)))


def _f64(v: float) -> bytes:
    if not math.isfinite(v):
        raise InvalidArgument(f"set-up floats must be finite, got {v}")
    return _F64.pack(v)


def _read_f64(r: wire.Reader) -> float:
    v: float = _F64.unpack(r.raw(8))[0]
    if not math.isfinite(v):
        raise IntegrityError("set-up frame carries a non-finite number")
    return v


def _pick(options: tuple[T, ...], index: int, what: str) -> T:
    if index >= len(options):
        raise IntegrityError(f"set-up frame has unknown {what} code {index}")
    return options[index]
