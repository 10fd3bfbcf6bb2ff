"""The client/server transform chain around a protocol.

Client: update -> clip (L2) -> [rotate -> scale -> conditional rounding -> integer noise,
with distributed DP] or [encode with stochastic rounding] -> protocol input over
Z_{2^bits}. Server: aggregate over Z_{2^bits} -> decode -> [unrotate] -> the sum of the
clipped updates (plus the summed noise). :class:`Pipeline` validates that the pieces fit
(n clients x clip bound x scale + noise tail in the ring) when it is built, before any
round, and :func:`make_protocol` builds each protocol for the number of clients.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from phe import PaillierPrivateKey, PaillierPublicKey, generate_paillier_keypair

from secfl.dp.accounting import DpEvent
from secfl.dp.clipping import clip_l2
from secfl.dp.mechanisms import DistributedPlan, NoiseKind, conditional_round, plan_distributed
from secfl.dp.rotation import RandomizedHadamard, padded_dimension
from secfl.encoding import FixedPointCodec, Rounding, plan_codec, required_bits
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.protocols.base import PROTOCOLS, AggregationProtocol, ProtocolName
from secfl.protocols.graphs import plan_secagg_plus
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel

__all__ = [
    "PROTOCOLS",
    "ClippedUpdate",
    "DPMechanism",
    "DistributedDP",
    "Pipeline",
    "PipelineConfig",
    "RemoteKeyHolder",
    "make_protocol",
]


@functools.lru_cache(maxsize=2)
def paillier_keypair(bits: int) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A key pair per key size, generated once per process (key generation takes seconds)."""
    public, private = generate_paillier_keypair(n_length=bits)
    return public, private


def make_protocol(
    name: str,
    *,
    codec: FixedPointCodec,
    dropout: float = 0.0,
    rng: Csprng | None = None,
    paillier_bits: int = 2048,
    min_survivors: int | None = None,
    client_bound: int | None = None,
    threat_model: ThreatModel = ThreatModel.HONEST_BUT_CURIOUS,
    registry: Mapping[int, VerifyKey] | None = None,
    identities: Mapping[int, SigningKey] | None = None,
    remote_key_holder: RemoteKeyHolder | None = None,
) -> AggregationProtocol:
    """Build a protocol by name for the clients and ring of ``codec``.

    SecAgg uses the complete graph with the largest majority threshold that still
    tolerates ``dropout``; SecAgg+ takes degree and threshold from
    :func:`~secfl.protocols.graphs.plan_secagg_plus` for that dropout rate and a 5%
    corrupt-client rate (complete graph when n is too small for a sparser one).
    Paillier packs each client's range per slot (the codec's bound for one client, or
    ``client_bound``, the largest |entry| one client can send, when noise widens it), with
    a key holder in the same process. ``min_survivors`` (distributed DP) is the fewest
    contributions the round may finish with: SecAgg clients refuse to unmask, and the
    Paillier key holder to decrypt, with fewer. ``ThreatModel.ACTIVE`` (SecAgg only) takes
    the same threshold but never below 2/3 of the share holders plus one, verifies
    signatures against ``registry`` (client id -> verify key) and signs with ``identities``
    (the signing keys of the clients this process runs; the registry defaults to theirs).
    ``remote_key_holder`` (Paillier): a key holder in another process, whose public key is
    used instead of a key pair made here; the protocol then has no key-holder party here,
    and the driver delivers the messages addressed to
    :data:`~secfl.protocols.base.KEY_HOLDER` to that process.
    """
    rng = rng or Csprng()
    bits, n_clients = codec.bits, codec.n_clients
    active = threat_model is ThreatModel.ACTIVE
    if active and name != ProtocolName.SECAGG:
        raise InvalidArgument(_ACTIVE_ONLY_SECAGG.format(name=name))
    if name == ProtocolName.PLAIN:
        return PlaintextProtocol(bits=bits)
    if name == ProtocolName.PAILLIER:
        if remote_key_holder is not None:
            public, private = remote_key_holder.public_key, None
        else:
            public, private = paillier_keypair(paillier_bits)
        if client_bound is None:
            value_bits = min(bits, required_bits(1, codec.max_abs, codec.scale_bits))
        else:  # signed range [-2^(b-1), 2^(b-1)) must hold +-client_bound
            value_bits = min(bits, client_bound.bit_length() + 1)
        pcfg = PaillierConfig(
            public_key=public,
            bits=bits,
            n_clients=n_clients,
            value_bits=value_bits,
            min_clients=max(2, min_survivors or 2),
        )
        holder = None if private is None else PaillierKeyHolder(pcfg, private)
        return PaillierProtocol(pcfg, key_holder=holder, rng=rng)
    if name == ProtocolName.SECAGG:
        holders = n_clients - 1
        floor = (2 * holders) // 3 + 1 if active else holders // 2 + 1
        threshold = max(floor, holders - math.ceil(dropout * n_clients) - 1)
        cfg = SecAggConfig(
            bits=bits,
            threshold=min(threshold, holders),
            n_clients=n_clients,
            min_survivors=min_survivors,
            threat_model=threat_model,
        )
        return SecAggProtocol(cfg, rng=rng, registry=registry, identities=identities)
    if name == ProtocolName.SECAGG_PLUS:
        plan = plan_secagg_plus(n_clients, dropout=max(dropout, 0.05), corrupt=0.05)
        cfg = SecAggConfig(
            bits=bits,
            threshold=plan.threshold,
            n_clients=n_clients,
            degree=plan.degree,
            min_survivors=min_survivors,
        )
        return SecAggProtocol(cfg, rng=rng)
    raise InvalidArgument(f"unknown protocol {name!r}; choose from {PROTOCOLS}")


_ACTIVE_ONLY_SECAGG = (
    "the active threat model is provided for protocol 'secagg' (complete graph) only, not "
    "{name!r}: see protocols/secagg-v1.md section 12"
)


@dataclass(frozen=True)
class RemoteKeyHolder:
    """A Paillier key holder in another process: its public key. The driver of the round
    delivers the aggregator's messages to :data:`~secfl.protocols.base.KEY_HOLDER` there."""

    public_key: PaillierPublicKey

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, PaillierPublicKey):
            raise InvalidArgument("public_key must be a phe.PaillierPublicKey")


class DPMechanism(enum.Enum):
    """Integer noise each client adds before protection (distributed DP)."""

    DISCRETE_GAUSSIAN = "ddg"
    """Distributed discrete Gaussian (Kairouz, Liu, Steinke, ICML 2021)."""
    SKELLAM = "skellam"
    """Distributed Skellam (Agarwal, Kairouz, Liu, NeurIPS 2021)."""


@dataclass(frozen=True)
class DistributedDP:
    """Distributed DP: every client adds a share of the noise, so the *sum* is private.

    The summed noise has standard deviation ``noise_multiplier`` times the (integer) L2
    sensitivity when at least the round's minimum number of clients survive; updates are
    rotated (randomized Hadamard) and conditionally rounded first (``beta`` bounds the
    rounding's norm growth). Needs a secure protocol: with ``plain`` the server would see
    every client's lightly noised update.
    """

    mechanism: DPMechanism = DPMechanism.DISCRETE_GAUSSIAN
    noise_multiplier: float = 1.0
    delta: float = 1e-5
    beta: float = math.exp(-0.5)

    def __post_init__(self) -> None:
        if not isinstance(self.mechanism, DPMechanism):
            raise InvalidArgument(f"mechanism must be a DPMechanism, got {self.mechanism!r}")
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise InvalidArgument(f"noise_multiplier must be > 0, got {self.noise_multiplier}")
        if not 0.0 < self.delta < 1.0:
            raise InvalidArgument(f"delta must be in (0, 1), got {self.delta}")
        if not 0.0 <= self.beta < 1.0:
            raise InvalidArgument(f"beta must be in [0, 1), got {self.beta}")


@dataclass(frozen=True)
class PipelineConfig:
    """User choices for the client/server chain, validated at construction."""

    protocol: str = ProtocolName.SECAGG_PLUS
    clip_bound: float = 1.0
    bits: int = 32
    paillier_bits: int = 2048
    dp: DistributedDP | None = None
    threat_model: ThreatModel = ThreatModel.HONEST_BUT_CURIOUS
    """``ACTIVE``: a server that may deviate (SecAgg only; needs a registry of identities)."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InvalidArgument(f"unknown protocol {self.protocol!r}; choose from {PROTOCOLS}")
        if not isinstance(self.threat_model, ThreatModel):
            raise InvalidArgument(f"threat_model must be a ThreatModel, got {self.threat_model!r}")
        if self.threat_model is ThreatModel.ACTIVE and self.protocol != ProtocolName.SECAGG:
            raise InvalidArgument(_ACTIVE_ONLY_SECAGG.format(name=self.protocol))
        if not (math.isfinite(self.clip_bound) and self.clip_bound > 0):
            raise InvalidArgument(f"clip_bound must be a positive number, got {self.clip_bound}")
        if self.dp is not None and self.protocol == ProtocolName.PLAIN:
            raise InvalidArgument(
                "distributed DP needs a secure protocol (secagg, secagg+ or paillier): with "
                "plain the server sees each client's update with only its share of the noise"
            )


@dataclass(frozen=True)
class ClippedUpdate:
    """A client's protocol input and what clipping did to its update."""

    encoded: np.ndarray
    norm: float
    clipped: bool


class Pipeline:
    """The chain for one round of ``n_clients`` updates of length ``dim``.

    ``dropout`` is the fraction of clients the round must tolerate; with distributed DP
    the noise is provisioned for the ``min_survivors = n - floor(dropout * n)`` clients
    the protocol is then configured to require. ``rng`` draws the protocol's keys and the
    round's public rotation seed. ``registry`` (client id -> verify key) is required by the
    active threat model; ``remote_key_holder`` puts the Paillier private key elsewhere.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        n_clients: int,
        dim: int,
        dropout: float = 0.0,
        rng: Csprng,
        registry: Mapping[int, VerifyKey] | None = None,
        remote_key_holder: RemoteKeyHolder | None = None,
    ) -> None:
        if dim < 1:
            raise InvalidArgument(f"dim must be >= 1, got {dim}")
        self.config = config
        self.dim = dim
        self.min_survivors = max(2, n_clients - math.floor(dropout * n_clients))
        self.dp_plan: DistributedPlan | None = None
        self._rotation: RandomizedHadamard | None = None
        dp = config.dp
        if dp is None:
            self.codec: FixedPointCodec = plan_codec(
                n_clients=n_clients, clip_bound=config.clip_bound, bits=config.bits
            )
        else:
            kind = (
                NoiseKind.DISCRETE_GAUSSIAN
                if dp.mechanism is DPMechanism.DISCRETE_GAUSSIAN
                else NoiseKind.SKELLAM
            )
            self.dp_plan = plan_distributed(
                bits=config.bits,
                n_clients=n_clients,
                min_clients=min(self.min_survivors, n_clients),
                clip_bound=config.clip_bound,
                dimension=padded_dimension(dim),
                noise_multiplier=dp.noise_multiplier,
                kind=kind,
                beta=dp.beta,
            )
            self.codec = FixedPointCodec(
                bits=config.bits,
                scale_bits=self.dp_plan.scale_bits,
                max_abs=config.clip_bound,
                n_clients=n_clients,
            )
            self._rotation = RandomizedHadamard(dimension=dim, seed=rng.bytes(32))
        self.protocol = make_protocol(
            config.protocol,
            codec=self.codec,
            dropout=dropout,
            rng=rng,
            paillier_bits=config.paillier_bits,
            min_survivors=self.min_survivors if dp is not None else None,
            client_bound=self._client_bound(),
            threat_model=config.threat_model,
            registry=registry,
            remote_key_holder=remote_key_holder,
        )

    def _client_bound(self) -> int | None:
        """Largest |entry| one client sends under DP: its rounded, rotated update (at most
        the rounding's L2 bound) plus its noise share's tail (failure 1e-9 per round)."""
        if self.dp_plan is None:
            return None
        noise = self.dp_plan.noise
        tail = noise.tail_bound(n_clients=1, failure_probability=1e-9)
        return math.ceil(noise.l2_sensitivity) + tail

    @property
    def input_dim(self) -> int:
        """Length of the protocol's input vectors (padded to a power of two under DP)."""
        return self._rotation.padded_dimension if self._rotation is not None else self.dim

    def client_side(self, update: np.ndarray, *, rng: Csprng) -> ClippedUpdate:
        """Clip ``update`` to L2 norm ``clip_bound``, then encode it (and noise it under DP)."""
        x = np.asarray(update)
        if x.shape != (self.dim,) or x.dtype not in (np.float32, np.float64):
            raise InvalidArgument(
                f"an update must be a float32/float64 vector of shape ({self.dim},), got "
                f"{x.dtype} {x.shape}"
            )
        if not np.isfinite(x).all():
            raise InvalidArgument("the update contains NaN or inf")
        clip = clip_l2(x.astype(np.float64), bound=self.config.clip_bound)
        if self.dp_plan is None or self._rotation is None:
            encoded = self.codec.encode(clip.clipped, rounding=Rounding.STOCHASTIC, rng=rng)
        else:
            noise = self.dp_plan.noise
            scaled = self._rotation.forward(clip.clipped) * self.codec.scale
            q = conditional_round(scaled, norm_bound=noise.l2_sensitivity, rng=rng)
            q += noise.sample(rng=rng)
            encoded = self.codec.to_ring(q)
        return ClippedUpdate(encoded=encoded, norm=clip.norm, clipped=clip.was_clipped)

    def server_side(self, aggregate: np.ndarray) -> np.ndarray:
        """The aggregate over Z_{2^bits} -> the float64 sum of the clipped updates (+ noise)."""
        total = self.codec.decode(aggregate)
        if self._rotation is None:
            return total
        return self._rotation.inverse(total)

    def dp_event(self, *, survivors: int) -> DpEvent | None:
        """The privacy event of releasing this round's sum of ``survivors`` noised updates."""
        if self.dp_plan is None:
            return None
        return self.dp_plan.noise.event(n_clients=survivors)
