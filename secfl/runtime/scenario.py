"""Synthetic rounds: random float updates, planned codec, chosen protocol and dropouts.

Shared by ``secfl simulate`` and the benchmarks so both measure exactly the same thing.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from phe import PaillierPrivateKey, PaillierPublicKey, generate_paillier_keypair

from secfl.encoding import FixedPointCodec, plan_codec, required_bits
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.protocols.base import AggregationProtocol, ClientId
from secfl.protocols.graphs import plan_secagg_plus
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol
from secfl.runtime.simulator import SimulationReport, simulate_round

__all__ = ["PROTOCOLS", "Scenario", "make_protocol", "report_json", "run_scenario"]

PROTOCOLS: tuple[str, ...] = ("plain", "secagg", "secagg+", "paillier")
DEFAULT_BITS = 32
CLIP_BOUND = 1.0


@dataclass(frozen=True)
class Scenario:
    """One synthetic round: who takes part, how big, who drops and when."""

    protocol: str
    clients: int
    dim: int
    dropout: float = 0.0
    dropout_phase: str | None = None
    seed: int | None = None
    bits: int = DEFAULT_BITS

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InvalidArgument(f"unknown protocol {self.protocol!r}; choose from {PROTOCOLS}")
        if self.clients < 1 or self.dim < 1:
            raise InvalidArgument("clients and dim must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidArgument(f"dropout must be a fraction in [0, 1), got {self.dropout}")


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


def _rng(seed: int | None, label: str) -> Csprng:
    if seed is None:
        return Csprng()
    return Csprng(seed=hashlib.sha256(f"secfl-scenario:{seed}:{label}".encode()).digest())


def run_scenario(sc: Scenario) -> tuple[SimulationReport, FixedPointCodec]:
    """Generate inputs, encode them, run the round, return the report and the codec."""
    codec = plan_codec(n_clients=sc.clients, clip_bound=CLIP_BOUND, bits=sc.bits)
    protocol = make_protocol(
        sc.protocol, codec=codec, dropout=sc.dropout, rng=_rng(sc.seed, "protocol")
    )
    if sc.dropout_phase is not None and sc.dropout_phase not in protocol.phases:
        raise InvalidArgument(
            f"unknown dropout phase {sc.dropout_phase!r}; {sc.protocol} has {protocol.phases}"
        )
    data_rng = _rng(sc.seed, "data")
    inputs: dict[ClientId, np.ndarray] = {}
    for cid in range(1, sc.clients + 1):
        x = data_rng.uniform(sc.dim) * (2 * CLIP_BOUND) - CLIP_BOUND
        inputs[cid] = codec.encode(x)
    n_drop = math.floor(sc.dropout * sc.clients)
    phase = sc.dropout_phase or protocol.phases[0]
    order = np.argsort(_rng(sc.seed, "dropouts").uint64(sc.clients), kind="stable")
    dropouts = {int(i) + 1: phase for i in order[:n_drop]}
    return simulate_round(protocol, inputs, dropouts=dropouts), codec


def report_json(report: SimulationReport) -> dict[str, Any]:
    """The stable JSON fields of ``secfl simulate --json``."""
    return {
        "protocol": report.protocol,
        "clients": report.clients,
        "dim": report.dim,
        "dropped": report.dropped,
        "correct": report.correct,
        "aborted": report.aborted,
        "client_seconds": report.client_seconds_mean,
        "client_seconds_p95": report.client_seconds_p95,
        "server_seconds": report.server_seconds,
        "wall_seconds": report.wall_seconds,
        "bytes_up_per_client": report.bytes_up_per_client,
        "bytes_down_per_client": report.bytes_down_per_client,
        "plaintext_bytes_per_client": 4 * report.dim,
    }
