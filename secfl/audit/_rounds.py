"""Round configurations shared by the audit's state machines, fuzzers and statistical checks.

Everything random is drawn from :class:`~secfl.hazmat.rng.Csprng` seeded with bytes that
Hypothesis chose (or with fixed labels), so every audit example is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from phe import PaillierPrivateKey, PaillierPublicKey

from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols.base import AggregationProtocol, ClientId, sum_vectors
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel

# The fixed 1024-bit TEST key of protocols/vectors/paillier/key.json. Its factors are
# public: it is insecure by design and used here only so that audits are fast and
# reproducible (no prime generation per example). Never use it for real data.
_TEST_P = int(
    "b04c231b2f241b4c81b44c2bb06fb6f24cf99a26f145c9c4126fb9399da4640351017041b5823f6243d0e4"
    "26c046e22cc7fb6603ced981bd6e57c89e4bafda69",
    16,
)
_TEST_Q = int(
    "d8536867e29708c38a26337aed4785c187d62a962ce42079504f555f55977f2031db2a6608c3c57961f435"
    "cd5ad4bdbdd0f1b3cbe35c97b69705cbf55ce1405d",
    16,
)

ROUND_ID = 0x5EC0A0D17
"""Round id of every audited round; replays come from round ``ROUND_ID - 1``."""


def derive(seed: bytes, label: str) -> Csprng:
    """An independent generator for ``label`` from a Hypothesis-drawn ``seed``."""
    return Csprng(seed=hashlib.sha256(b"secfl-audit/" + label.encode() + b"/" + seed).digest())


@lru_cache(maxsize=1)
def audit_paillier_keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """The public 1024-bit test key pair (insecure by design; audits only)."""
    public = PaillierPublicKey(_TEST_P * _TEST_Q)
    return public, PaillierPrivateKey(public, _TEST_P, _TEST_Q)


def random_inputs(
    rng: Csprng, clients: Iterable[ClientId], *, bits: int, dim: int
) -> dict[ClientId, np.ndarray]:
    """Uniform inputs over Z_{2^bits} for each client."""
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
    return {c: (rng.uint64(dim) & mask).astype(uint_dtype(bits)) for c in clients}


def expected_sum(
    inputs: Mapping[ClientId, np.ndarray], survivors: Iterable[ClientId], *, bits: int
) -> np.ndarray:
    """The exact aggregate: the sum over Z_{2^bits} of the survivors' inputs."""
    dim = next(iter(inputs.values())).size
    return sum_vectors({c: inputs[c] for c in survivors}, bits=bits, dim=dim)


def mask_dim(bits: int, extra: int = 0) -> int:
    """The smallest vector length carrying >= 64 mask bits (so "masked == input" means a
    broken mask, not chance), plus ``extra``."""
    return -(-64 // bits) + extra


# ----------------------------------------------------------------------------- SecAgg
@dataclass(frozen=True)
class SecAggSpec:
    """One audited SecAgg(+) round: configuration, coalition and behaviour of the server.

    ``adversarial``: the server may deviate (split survivor views, forged lists, replays,
    key substitution in active mode) and the network may tamper; the coalition is then
    at most 2t - holders - 1 clients (the bound under which a lying server still cannot
    collect t shares of both secrets of one client). Otherwise the server is honest, the
    network only loses, delays, duplicates and reorders, and the coalition is up to t - 1.
    """

    n: int
    threshold: int
    degree: int | None
    bits: int
    dim: int
    active: bool
    adversarial: bool
    coalition: tuple[int, ...]
    seed: bytes

    @property
    def config(self) -> SecAggConfig:
        model = ThreatModel.ACTIVE if self.active else ThreatModel.HONEST_BUT_CURIOUS
        return SecAggConfig(
            bits=self.bits,
            threshold=self.threshold,
            n_clients=self.n,
            degree=self.degree,
            threat_model=model,
        )

    @property
    def clients(self) -> list[int]:
        return list(range(1, self.n + 1))


@lru_cache(maxsize=16)
def identities(n: int) -> dict[ClientId, SigningKey]:
    """Fixed long-term Ed25519 identities of clients 1..n (the same in every round)."""
    rng = Csprng(seed=hashlib.sha256(b"secfl-audit/identities/%d" % n).digest())
    return {c: SigningKey.generate(rng=rng) for c in range(1, n + 1)}


def secagg_protocol(config: SecAggConfig, rng: Csprng) -> SecAggProtocol:
    ids = identities(config.n_clients) if config.threat_model is ThreatModel.ACTIVE else None
    return SecAggProtocol(config, rng=rng, identities=ids)


# ----------------------------------------------------------------------------- Paillier
@dataclass(frozen=True)
class PaillierSpec:
    """One audited Paillier round (the aggregator may deviate; the key holder is honest)."""

    n: int
    bits: int
    value_bits: int
    min_clients: int
    dim: int
    seed: bytes

    @property
    def config(self) -> PaillierConfig:
        public, _ = audit_paillier_keys()
        return PaillierConfig(
            public_key=public,
            bits=self.bits,
            n_clients=self.n,
            value_bits=self.value_bits,
            min_clients=self.min_clients,
        )

    @property
    def clients(self) -> list[int]:
        return list(range(1, self.n + 1))


def paillier_inputs(spec: PaillierSpec, rng: Csprng) -> dict[ClientId, np.ndarray]:
    """Inputs over Z_{2^bits} whose centred value fits ``value_bits`` signed bits."""
    half = 1 << (spec.value_bits - 1)
    out = {}
    for c in spec.clients:
        signed = (rng.uint64(spec.dim) % np.uint64(2 * half)).astype(np.int64) - half
        out[c] = (signed % (1 << spec.bits)).astype(uint_dtype(spec.bits))
    return out


def paillier_holder(config: PaillierConfig) -> PaillierKeyHolder:
    _, private = audit_paillier_keys()
    return PaillierKeyHolder(config, private)


def plain_protocol(bits: int) -> AggregationProtocol:
    return PlaintextProtocol(bits=bits)


__all__ = [
    "ROUND_ID",
    "PaillierProtocol",
    "PaillierSpec",
    "SecAggSpec",
    "audit_paillier_keys",
    "derive",
    "expected_sum",
    "identities",
    "mask_dim",
    "paillier_holder",
    "paillier_inputs",
    "plain_protocol",
    "random_inputs",
    "secagg_protocol",
]
