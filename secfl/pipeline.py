"""The numeric chain around a protocol, and the factory that builds a round's protocol.

Client: update -> clip (L2) -> [rotate -> scale -> conditional rounding -> integer noise,
with distributed DP] or [encode with stochastic rounding] -> protocol input over
Z_{2^bits}. Server: aggregate over Z_{2^bits} -> decode -> [unrotate] -> the sum of the
clipped updates (plus the summed noise). :class:`Pipeline` validates that the pieces fit
(n clients x clip bound x scale + noise tail in the ring) when it is built, before any
round; it holds no protocol and no key. :func:`build_protocol` builds the round's protocol
for a pipeline from keys its caller passes in: nothing is generated or looked up here.
"""

from __future__ import annotations

import enum
import functools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from secfl.dp.accounting import DpEvent, Neighboring
from secfl.dp.clipping import clip_l2
from secfl.dp.mechanisms import (
    DistributedPlan,
    NoiseKind,
    conditional_round,
    ddg_collapse,
    plan_distributed,
)
from secfl.dp.rotation import RandomizedHadamard, padded_dimension
from secfl.encoding import MAX_BITS, MIN_BITS, FixedPointCodec, Rounding, plan_codec, required_bits
from secfl.errors import EncodingOverflow, InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.paillier_keys import PaillierPrivateKey, PaillierPublicKey
from secfl.protocols.base import PROTOCOLS, AggregationProtocol, ProtocolName
from secfl.protocols.graphs import plan_secagg_plus
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel

__all__ = [
    "PROTOCOLS",
    "SECAGG_PLUS_CORRUPT",
    "ClippedUpdate",
    "DPMechanism",
    "DistributedDP",
    "Pipeline",
    "PipelineConfig",
    "RemoteKeyHolder",
    "build_protocol",
]

SECAGG_PLUS_CORRUPT = 0.05
"""The fraction of corrupt clients SecAgg+ graphs are planned against (with the dropout)."""


@dataclass(frozen=True)
class RemoteKeyHolder:
    """A Paillier key holder in another process: its public key. The driver of the round
    delivers the aggregator's messages to :data:`~secfl.protocols.base.KEY_HOLDER` there."""

    public_key: PaillierPublicKey

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, PaillierPublicKey):
            raise InvalidArgument("public_key must be a secfl PaillierPublicKey")


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
    sensitivity when at least the round's minimum number of clients survive (or, with
    ``noise_clients``, at least that many); updates are
    rotated (randomized Hadamard) and conditionally rounded first (``beta`` bounds the
    rounding's norm growth). Needs a secure protocol: with ``plain`` the server would see
    every client's lightly noised update.
    """

    mechanism: DPMechanism = DPMechanism.DISCRETE_GAUSSIAN
    noise_multiplier: float | None = 1.0
    """``None``: solved by the driver from ``FedAvgConfig(target_epsilon=...)``."""
    delta: float = 1e-5
    beta: float = math.exp(-0.5)
    neighboring: Neighboring = Neighboring.ADD_OR_REMOVE_ONE
    """The relation the run's epsilon is accounted for (server side; not sent to clients).
    Skellam has only a zero-out bound: it needs ``Neighboring.ZERO_OUT`` here, explicitly."""
    max_cohort: int | None = None
    """A public bound on a round's cohort: the fixed-point scale is planned for it, so the
    scale the aggregate reveals is the same whoever is sampled (add/remove-one changes the
    cohort's size). A round with more clients fails before anything is sent. ``None``:
    the scale is planned for each round's own cohort, sound only where presence does not
    change that size (zero-out)."""
    noise_clients: int | None = None
    """A public number of shares the noise is sized for: every client's share has variance
    ``(noise_multiplier * sensitivity)^2 / noise_clients`` in every round, whoever is
    sampled, so a sum of at least that many shares has at least the planned noise (a round
    with fewer survivors is accounted with the noise it has). Needed with ``max_cohort``
    under add/remove-one: a share sized for the round's own cohort differs between
    neighbouring datasets, and the variance of the sum shows it (distributed-dp-v1 section
    10.5). ``None``: each round's shares are sized for its provisioned survivors."""

    def __post_init__(self) -> None:
        if not isinstance(self.mechanism, DPMechanism):
            raise InvalidArgument(f"mechanism must be a DPMechanism, got {self.mechanism!r}")
        if not isinstance(self.neighboring, Neighboring):
            raise InvalidArgument(f"neighboring must be a Neighboring, got {self.neighboring!r}")
        z = self.noise_multiplier
        if z is not None and not (isinstance(z, int | float) and math.isfinite(z) and z > 0):
            raise InvalidArgument(f"noise_multiplier must be a number > 0, got {z!r}")
        if not 0.0 < self.delta < 1.0:
            raise InvalidArgument(f"delta must be in (0, 1), got {self.delta}")
        if not 0.0 <= self.beta < 1.0:
            raise InvalidArgument(f"beta must be in [0, 1), got {self.beta}")
        k = self.max_cohort
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
            raise InvalidArgument(f"max_cohort must be an int >= 2 or None, got {k!r}")
        m = self.noise_clients
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 2):
            raise InvalidArgument(f"noise_clients must be an int >= 2 or None, got {m!r}")
        if m is not None and k is None:
            raise InvalidArgument(
                f"noise_clients={m} goes with max_cohort (the scale must have room for the "
                f"largest cohort's shares): give DistributedDP(max_cohort=K) too"
            )
        if m is not None and k is not None and m > k:
            raise InvalidArgument(
                f"noise_clients={m} exceeds max_cohort={k}: no round could have the planned "
                f"noise; size the noise for at most max_cohort clients"
            )


_ACTIVE_ONLY_SECAGG = (
    "the active threat model is provided for protocol 'secagg' (complete graph) only, not "
    "{name!r}: see protocols/secagg-v1.md section 12"
)


def provisioned_survivors(n_clients: int, dropout: float) -> int:
    """The survivors a round of ``n_clients`` tolerating ``dropout`` provisions noise for."""
    return max(2, n_clients - math.floor(dropout * n_clients))


@functools.lru_cache(maxsize=64)
def cohort_noise_floor(max_cohort: int, dropout: float) -> int:
    """The share count m with max_cohort / m >= n / provisioned_survivors(n) for every cohort
    n <= max_cohort: planned with it, the scale leaves room for any such round's noise."""
    worst = max(n / provisioned_survivors(n, dropout) for n in range(2, max_cohort + 1))
    return max(1, math.floor(max_cohort / worst))


def _solved(noise_multiplier: float | None) -> float:
    if noise_multiplier is None:
        raise InvalidArgument(
            "DistributedDP(noise_multiplier=None) is solved from FedAvgConfig(target_epsilon="
            "...) by federated averaging; elsewhere give the noise multiplier"
        )
    return noise_multiplier


@dataclass(frozen=True)
class PipelineConfig:
    """User choices for the client/server chain, validated at construction.

    ``protocol`` (default ``secagg+``): every protocol in its default, honest-but-curious
    mode assumes a server that follows the protocol; against one that deviates only
    ``secagg`` with ``threat_model=ThreatModel.ACTIVE`` holds (docs/threat-model.md).
    """

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
        if isinstance(self.clip_bound, bool) or not isinstance(self.clip_bound, int | float):
            raise InvalidArgument(f"clip_bound must be a number, got {self.clip_bound!r}")
        if not (math.isfinite(self.clip_bound) and self.clip_bound > 0):
            raise InvalidArgument(f"clip_bound must be a positive number, got {self.clip_bound}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise InvalidArgument(f"bits must be an int, got {self.bits!r}")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise InvalidArgument(
                f"bits={self.bits}: the ring Z_2^bits must have {MIN_BITS} to {MAX_BITS} bits "
                f"(32 suits most models; more headroom for many clients or fine precision)"
            )
        if isinstance(self.paillier_bits, bool) or not isinstance(self.paillier_bits, int):
            raise InvalidArgument(f"paillier_bits must be an int, got {self.paillier_bits!r}")
        if self.dp is not None and not isinstance(self.dp, DistributedDP):
            raise InvalidArgument(f"dp must be a DistributedDP or None, got {self.dp!r}")
        if self.dp is not None and self.protocol == ProtocolName.PLAIN:
            raise InvalidArgument(
                "distributed DP needs a secure protocol (secagg, secagg+ or paillier): with "
                "plain the server sees each client's update with only its share of the noise"
            )

    def check_paillier_keys(self, keys: PaillierPrivateKey | RemoteKeyHolder) -> None:
        """Raise :class:`InvalidArgument` unless ``keys`` fit this config: protocol
        ``'paillier'``, and a key pair made here has a modulus of ``paillier_bits`` bits."""
        if not isinstance(keys, PaillierPrivateKey | RemoteKeyHolder):
            raise InvalidArgument(
                f"Paillier keys must be a PaillierPrivateKey or a RemoteKeyHolder, got {type(keys)}"
            )
        if self.protocol != ProtocolName.PAILLIER:
            raise InvalidArgument(
                f"Paillier keys go with protocol 'paillier' only, not {self.protocol!r}"
            )
        if isinstance(keys, PaillierPrivateKey) and keys.public_key.bits != self.paillier_bits:
            raise InvalidArgument(
                f"the Paillier key pair has a {keys.public_key.bits}-bit modulus but the config "
                f"asks for paillier_bits={self.paillier_bits}: set paillier_bits="
                f"{keys.public_key.bits} or pass a "
                f"key pair of {self.paillier_bits} bits"
            )


@dataclass(frozen=True)
class ClippedUpdate:
    """A client's protocol input and what clipping did to its update."""

    encoded: np.ndarray
    norm: float
    clipped: bool


class Pipeline:
    """The numeric chain for one round of ``n_clients`` updates of length ``dim``.

    ``dropout`` is the fraction of clients the round must tolerate; with distributed DP
    the protocol (:func:`build_protocol`) is configured to require ``min_survivors = n -
    floor(dropout * n)`` clients, and the noise is provisioned for them (or for the public
    ``DistributedDP.noise_clients``). ``rng`` draws the
    round's public rotation seed (distributed DP only).
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        n_clients: int,
        dim: int,
        dropout: float = 0.0,
        rng: Csprng,
    ) -> None:
        if dim < 1:
            raise InvalidArgument(f"dim must be >= 1, got {dim}")
        self.config = config
        self.dim = dim
        self.dropout = dropout
        self.min_survivors = provisioned_survivors(n_clients, dropout)
        self.dp_plan: DistributedPlan | None = None
        self._rotation: RandomizedHadamard | None = None
        dp = config.dp
        if dp is None:
            self.codec: FixedPointCodec = plan_codec(
                n_clients=n_clients, clip_bound=config.clip_bound, bits=config.bits
            )
        else:
            if dp.max_cohort is not None and n_clients > dp.max_cohort:
                raise InvalidArgument(
                    f"a cohort of {n_clients} clients exceeds DistributedDP(max_cohort="
                    f"{dp.max_cohort}), the public bound the scale is planned for: raise "
                    f"max_cohort or sample fewer clients"
                )
            kind = (
                NoiseKind.DISCRETE_GAUSSIAN
                if dp.mechanism is DPMechanism.DISCRETE_GAUSSIAN
                else NoiseKind.SKELLAM
            )
            plan = functools.partial(
                plan_distributed,
                bits=config.bits,
                clip_bound=config.clip_bound,
                dimension=padded_dimension(dim),
                noise_multiplier=_solved(dp.noise_multiplier),
                kind=kind,
                beta=dp.beta,
            )
            try:
                scale_bits = None
                noise_clients = dp.noise_clients or min(self.min_survivors, n_clients)
                if dp.noise_clients is not None:  # one share size: room for max_cohort of them
                    assert dp.max_cohort is not None  # DistributedDP checks
                    scale_bits = plan(
                        n_clients=dp.max_cohort, min_clients=dp.noise_clients
                    ).scale_bits
                elif dp.max_cohort is not None:  # room for any cohort up to it, and the
                    # sampler's range for the largest shares (two survivors)
                    k = dp.max_cohort
                    scale_bits = min(
                        plan(n_clients=k, min_clients=cohort_noise_floor(k, dropout)).scale_bits,
                        plan(n_clients=2, min_clients=2).scale_bits,
                    )
                self.dp_plan = plan(
                    n_clients=n_clients, min_clients=noise_clients, scale_bits=scale_bits
                )
            except EncodingOverflow as e:  # said in the planner's terms: say it in ours
                over = (
                    f"{n_clients} clients"
                    if dp.max_cohort is None
                    else f"max_cohort={dp.max_cohort} clients"
                    + (f" (noise_clients={dp.noise_clients})" if dp.noise_clients else "")
                )
                fewer = (
                    "the number of clients per round"
                    if dp.max_cohort is None
                    else "max_cohort (with fewer clients per round)"
                )
                raise EncodingOverflow(
                    f"distributed DP over {over} does not fit bits={config.bits} "
                    f"(noise_multiplier={dp.noise_multiplier}, clip_bound={config.clip_bound}, "
                    f"{dim} values): raise bits (32 suits most runs), or lower the noise "
                    f"multiplier or {fewer}. The planner: {e}"
                ) from None
            collapse = ddg_collapse(self.dp_plan.noise, n_clients=n_clients)
            if collapse is not None:
                warnings.warn(f"weak distributed-DP plan: {collapse}", stacklevel=2)
            self.codec = FixedPointCodec(
                bits=config.bits,
                scale_bits=self.dp_plan.scale_bits,
                max_abs=config.clip_bound,
                n_clients=n_clients,
            )
            self._rotation = RandomizedHadamard(dimension=dim, seed=rng.bytes(32))

    @property
    def value_bits(self) -> int:
        """Signed bits that hold every entry one client sends (at most the ring's): its
        encoded update, or under DP its rounded, rotated update (at most the rounding's L2
        bound) plus its noise share's tail (failure 1e-9 per round). Paillier packs slots
        of this width."""
        bits = self.codec.bits
        if self.dp_plan is None:
            return min(bits, required_bits(1, self.codec.max_abs, self.codec.scale_bits))
        noise = self.dp_plan.noise
        tail = noise.tail_bound(n_clients=1, failure_probability=1e-9)
        bound = math.ceil(noise.l2_sensitivity) + tail
        return min(bits, bound.bit_length() + 1)  # [-2^(b-1), 2^(b-1)) holds +-bound

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


def build_protocol(
    pipeline: Pipeline,
    *,
    rng: Csprng,
    paillier: PaillierPrivateKey | RemoteKeyHolder | None = None,
    registry: Mapping[int, VerifyKey] | None = None,
    identities: Mapping[int, SigningKey] | None = None,
) -> AggregationProtocol:
    """The protocol of ``pipeline``'s round: its config's protocol and threat model, over
    the codec's ring and clients, tolerating the pipeline's ``dropout``.

    Keys are explicit. ``paillier`` (protocol ``'paillier'`` only, and required there): the
    :class:`PaillierPrivateKey` when this process decrypts the sum, or a
    :class:`RemoteKeyHolder` when another process holds the private key. ``registry``
    (client id -> verify key) and ``identities`` (the signing keys of the clients this
    process runs; the registry defaults to theirs) go with ``ThreatModel.ACTIVE`` only.
    ``rng`` draws the protocol's secrets.

    SecAgg uses the complete graph with the largest majority threshold that still
    tolerates the dropout; SecAgg+ takes degree and threshold from
    :func:`~secfl.protocols.graphs.plan_secagg_plus` for that dropout rate and a 5%
    corrupt-client rate (complete graph when n is too small for a sparser one). Paillier
    packs slots of :attr:`Pipeline.value_bits`. Under distributed DP the protocol refuses
    to finish with fewer than :attr:`Pipeline.min_survivors` contributions: SecAgg clients
    refuse to unmask, and the Paillier key holder to decrypt. ``ThreatModel.ACTIVE``
    (SecAgg only) takes the same threshold but never below 2/3 of the share holders plus
    one, and signs and verifies with the identities.
    """
    config = pipeline.config
    name, bits, n_clients = config.protocol, pipeline.codec.bits, pipeline.codec.n_clients
    active = config.threat_model is ThreatModel.ACTIVE
    if (registry is not None or identities is not None) and not active:
        raise InvalidArgument(
            "a registry and identities go with threat_model=ThreatModel.ACTIVE only: "
            "drop them, or configure the active threat model (protocol 'secagg')"
        )
    if paillier is not None:
        config.check_paillier_keys(paillier)
    min_survivors = pipeline.min_survivors if pipeline.dp_plan is not None else None
    if name == ProtocolName.PLAIN:
        return PlaintextProtocol(bits=bits)
    if name == ProtocolName.PAILLIER:
        if paillier is None:
            raise InvalidArgument(
                "protocol 'paillier' needs its keys: pass paillier=generate_paillier_keypair("
                f"bits={config.paillier_bits}) where this process decrypts the sum, or a "
                "RemoteKeyHolder where another process holds the private key"
            )
        pcfg = PaillierConfig(
            public_key=paillier.public_key,
            bits=bits,
            n_clients=n_clients,
            value_bits=pipeline.value_bits,
            min_clients=max(2, min_survivors or 2),
        )
        # A remote key holder is another process's party: the driver routes to it.
        holder = (
            None if isinstance(paillier, RemoteKeyHolder) else PaillierKeyHolder(pcfg, paillier)
        )
        return PaillierProtocol(pcfg, key_holder=holder, rng=rng)
    if name == ProtocolName.SECAGG:
        holders = n_clients - 1
        floor = (2 * holders) // 3 + 1 if active else holders // 2 + 1
        threshold = max(floor, holders - math.ceil(pipeline.dropout * n_clients) - 1)
        cfg = SecAggConfig(
            bits=bits,
            threshold=min(threshold, holders),
            n_clients=n_clients,
            min_survivors=min_survivors,
            threat_model=config.threat_model,
        )
        return SecAggProtocol(cfg, rng=rng, registry=registry, identities=identities)
    plan = plan_secagg_plus(
        n_clients, dropout=max(pipeline.dropout, 0.05), corrupt=SECAGG_PLUS_CORRUPT
    )
    cfg = SecAggConfig(
        bits=bits,
        threshold=plan.threshold,
        n_clients=n_clients,
        degree=plan.degree,
        min_survivors=min_survivors,
    )
    return SecAggProtocol(cfg, rng=rng)
