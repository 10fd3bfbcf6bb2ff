"""Synthetic rounds: random float updates, planned codec, chosen protocol and dropouts.

Shared by ``secfl simulate`` and the benchmarks so both measure exactly the same thing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from secfl.encoding import FixedPointCodec
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.paillier_keys import generate_paillier_keypair
from secfl.pipeline import PROTOCOLS, Pipeline, PipelineConfig, build_protocol
from secfl.protocols.base import AggregationProtocol, ClientId, ProtocolName
from secfl.protocols.paillier_threshold import PROTOCOL_NAME as PAILLIER_THRESHOLD
from secfl.protocols.secagg import ThreatModel
from secfl.runtime.simulator import SimulationReport, simulate_round

__all__ = ["PROTOCOLS", "SIMULATE_PROTOCOLS", "Scenario", "report_json", "run_scenario"]

SIMULATE_PROTOCOLS: tuple[str, ...] = (*PROTOCOLS, PAILLIER_THRESHOLD)
"""What ``secfl simulate`` runs: every pipeline protocol, and paillier-sum-v2 with a 3-of-5
key dealt for the round (threshold decryption by key holders that check signed inputs)."""
THRESHOLD_HOLDERS, THRESHOLD_T = 5, 3

DEFAULT_BITS = 32
CLIP_BOUND = 1.0


@dataclass(frozen=True)
class Scenario:
    """One synthetic round: who takes part, how big, who drops and when.

    ``active``: SecAgg in the active threat model (the simulator holds every client's
    signing key), to measure what signatures and the consistency phase cost.
    """

    protocol: str
    clients: int
    dim: int
    dropout: float = 0.0
    dropout_phase: str | None = None
    seed: int | None = None
    bits: int = DEFAULT_BITS
    active: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in SIMULATE_PROTOCOLS:
            raise InvalidArgument(
                f"unknown protocol {self.protocol!r}; choose from {SIMULATE_PROTOCOLS}"
            )
        if self.active and self.protocol != ProtocolName.SECAGG:
            raise InvalidArgument(
                f"the active threat model runs with protocol 'secagg' only, not {self.protocol!r}"
            )
        if self.clients < 1 or self.dim < 1:
            raise InvalidArgument("clients and dim must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidArgument(f"dropout must be a fraction in [0, 1), got {self.dropout}")


def _rng(seed: int | None, label: str) -> Csprng:
    if seed is None:
        return Csprng()
    return Csprng(seed=hashlib.sha256(f"secfl-scenario:{seed}:{label}".encode()).digest())


def run_scenario(sc: Scenario) -> tuple[SimulationReport, FixedPointCodec]:
    """Generate inputs, encode them, run the round, return the report and the codec.

    Protocol ``'paillier'`` decrypts with a 2048-bit key pair made for this round; with
    ``active`` the simulator holds every client's signing key.
    """
    threshold = sc.protocol == PAILLIER_THRESHOLD  # the codec is planned as for paillier
    config = PipelineConfig(
        protocol=ProtocolName.PAILLIER if threshold else sc.protocol,
        clip_bound=CLIP_BOUND,
        bits=sc.bits,
        threat_model=ThreatModel.ACTIVE if sc.active else ThreatModel.HONEST_BUT_CURIOUS,
    )
    protocol_rng = _rng(sc.seed, "protocol")  # without DP the pipeline draws nothing from it
    pipeline = Pipeline(
        config, n_clients=sc.clients, dim=sc.dim, dropout=sc.dropout, rng=protocol_rng
    )
    codec = pipeline.codec
    identities = None
    if sc.active:
        keys = _rng(sc.seed, "identities")
        identities = {c: SigningKey.generate(rng=keys) for c in range(1, sc.clients + 1)}
    paillier = None
    if sc.protocol == ProtocolName.PAILLIER:
        paillier = generate_paillier_keypair(bits=config.paillier_bits)
    protocol: AggregationProtocol
    if threshold:
        protocol = _threshold_protocol(pipeline, sc, protocol_rng)
    else:
        protocol = build_protocol(
            pipeline, rng=protocol_rng, paillier=paillier, identities=identities
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


def _threshold_protocol(pipeline: Pipeline, sc: Scenario, rng: Csprng) -> AggregationProtocol:
    """paillier-sum-v2 with a 3-of-5 key dealt for this round, every client's identity and
    all five key holders in this process."""
    from secfl.hazmat import threshold_paillier as tp
    from secfl.protocols import paillier_threshold as pt

    public, shares = tp.generate_key(
        bits=pipeline.config.paillier_bits,
        holders=THRESHOLD_HOLDERS,
        threshold=THRESHOLD_T,
        rng=_rng(sc.seed, "threshold-key"),
    )
    keys = _rng(sc.seed, "identities")
    identities = {c: SigningKey.generate(rng=keys) for c in range(1, sc.clients + 1)}
    config = pt.ThresholdPaillierConfig(
        public_key=public,
        registry={c: k.verify_key() for c, k in identities.items()},
        bits=pipeline.codec.bits,
        n_clients=pipeline.codec.n_clients,
        value_bits=pipeline.value_bits,
        min_clients=2,
    )
    holders = [pt.ThresholdPaillierKeyHolder(config, s, rng=rng.spawn()) for s in shares]
    return pt.ThresholdPaillierProtocol(config, identities=identities, key_holders=holders, rng=rng)


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
