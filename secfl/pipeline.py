"""The client/server transform chain around a protocol.

Client: update -> clip (L2) -> encode (fixed point, stochastic rounding) -> protocol input
over Z_{2^bits}. Server: aggregate over Z_{2^bits} -> decode -> sum of clipped updates.
:class:`Pipeline` validates that the pieces fit (n clients x clip bound x scale in the
ring) when it is built, before any round, and :func:`make_protocol` builds each protocol
with parameters suited to the number of clients.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from phe import PaillierPrivateKey, PaillierPublicKey, generate_paillier_keypair

from secfl.encoding import FixedPointCodec, Rounding, plan_codec, required_bits
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.protocols.base import AggregationProtocol
from secfl.protocols.graphs import plan_secagg_plus
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol

__all__ = ["PROTOCOLS", "ClippedUpdate", "Pipeline", "PipelineConfig", "make_protocol"]

PROTOCOLS: tuple[str, ...] = ("plain", "secagg", "secagg+", "paillier")
"""Protocol names accepted everywhere (CLI, pipeline, benchmarks)."""


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
) -> AggregationProtocol:
    """Build a protocol by name for the clients and ring of ``codec``.

    SecAgg uses the complete graph with the largest majority threshold that still
    tolerates ``dropout``; SecAgg+ takes degree and threshold from
    :func:`~secfl.protocols.graphs.plan_secagg_plus` for that dropout rate and a 5%
    corrupt-client rate (complete graph when n is too small for a sparser one).
    Paillier packs each client's range (the codec's bound for one client) per slot, with
    a key holder in the same process.
    """
    rng = rng or Csprng()
    bits, n_clients = codec.bits, codec.n_clients
    if name == "plain":
        return PlaintextProtocol(bits=bits)
    if name == "paillier":
        public, private = paillier_keypair(paillier_bits)
        value_bits = min(bits, required_bits(1, codec.max_abs, codec.scale_bits))
        pcfg = PaillierConfig(
            public_key=public, bits=bits, n_clients=n_clients, value_bits=value_bits
        )
        holder = PaillierKeyHolder(pcfg, private)
        return PaillierProtocol(pcfg, key_holder=holder.decrypt_sum, rng=rng)
    if name == "secagg":
        holders = n_clients - 1
        threshold = max(holders // 2 + 1, holders - math.ceil(dropout * n_clients) - 1)
        cfg = SecAggConfig(bits=bits, threshold=min(threshold, holders), n_clients=n_clients)
        return SecAggProtocol(cfg, rng=rng)
    if name == "secagg+":
        plan = plan_secagg_plus(n_clients, dropout=max(dropout, 0.05), corrupt=0.05)
        cfg = SecAggConfig(
            bits=bits, threshold=plan.threshold, n_clients=n_clients, degree=plan.degree
        )
        return SecAggProtocol(cfg, rng=rng)
    raise InvalidArgument(f"unknown protocol {name!r}; choose from {PROTOCOLS}")


@dataclass(frozen=True)
class PipelineConfig:
    """User choices for the client/server chain, validated at construction."""

    protocol: str = "secagg+"
    clip_bound: float = 1.0
    bits: int = 32
    paillier_bits: int = 2048

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InvalidArgument(f"unknown protocol {self.protocol!r}; choose from {PROTOCOLS}")
        if not (math.isfinite(self.clip_bound) and self.clip_bound > 0):
            raise InvalidArgument(f"clip_bound must be a positive number, got {self.clip_bound}")


@dataclass(frozen=True)
class ClippedUpdate:
    """A client's protocol input and what clipping did to its update."""

    encoded: np.ndarray
    norm: float
    clipped: bool


class Pipeline:
    """The chain for one round of ``n_clients`` (the most inputs ever summed)."""

    def __init__(
        self, config: PipelineConfig, *, n_clients: int, dropout: float = 0.0, rng: Csprng
    ) -> None:
        self.config = config
        self.codec: FixedPointCodec = plan_codec(
            n_clients=n_clients, clip_bound=config.clip_bound, bits=config.bits
        )
        self.protocol = make_protocol(
            config.protocol,
            codec=self.codec,
            dropout=dropout,
            rng=rng,
            paillier_bits=config.paillier_bits,
        )

    def client_side(self, update: np.ndarray, *, rng: Csprng) -> ClippedUpdate:
        """Clip ``update`` to L2 norm ``clip_bound``, then encode it (unbiased rounding)."""
        x = np.asarray(update)
        if x.ndim != 1 or x.dtype not in (np.float32, np.float64):
            raise InvalidArgument(
                f"an update must be a 1-D float32/float64 vector, got {x.dtype} {x.shape}"
            )
        if not np.isfinite(x).all():
            raise InvalidArgument("the update contains NaN or inf")
        norm = float(np.linalg.norm(x.astype(np.float64)))
        bound = self.config.clip_bound
        clipped = norm > bound
        if clipped:
            x = x.astype(np.float64) * (bound / norm)
            np.clip(x, -bound, bound, out=x)  # guard the last ulp of the rescale
        encoded = self.codec.encode(x, rounding=Rounding.STOCHASTIC, rng=rng)
        return ClippedUpdate(encoded=encoded, norm=norm, clipped=clipped)

    def server_side(self, aggregate: np.ndarray) -> np.ndarray:
        """The aggregate over Z_{2^bits} -> the float64 sum of the clipped updates."""
        return self.codec.decode(aggregate)
