"""Synthetic rounds: random float updates, planned codec, chosen protocol and dropouts.

Shared by ``secfl simulate`` and the benchmarks so both measure exactly the same thing.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from secfl.encoding import FixedPointCodec
from secfl.errors import InvalidArgument
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.paillier_keys import PaillierPublicKey, generate_paillier_keypair
from secfl.pipeline import PROTOCOLS, Pipeline, PipelineConfig, RemoteKeyHolder, build_protocol
from secfl.protocols import paillier_threshold as pt
from secfl.protocols.base import AggregationProtocol, ClientId, ClientSession, ProtocolName
from secfl.protocols.secagg import ThreatModel
from secfl.runtime.engines import (
    ENGINES,
    ClientRecipe,
    Engine,
    check_engine_options,
    open_pool,
)
from secfl.runtime.simulator import SimulationReport, drive_round

__all__ = [
    "ENGINES",
    "PROTOCOLS",
    "SIMULATE_PROTOCOLS",
    "Engine",
    "Scenario",
    "report_json",
    "run_scenario",
]

PAILLIER_THRESHOLD = pt.PROTOCOL_NAME
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


class _Seeds:
    """Every generator of a scenario, derived from one root by label: from the seed (a
    reproducible round) or from 32 bytes of OS randomness. Each client's generators depend
    on its id only, so any split of the clients over workers builds the same sessions."""

    __slots__ = ("_root",)

    def __init__(self, seed: int | None) -> None:
        if seed is None:
            self._root = os.urandom(32)
        else:
            self._root = hashlib.sha256(f"secfl-scenario:{seed}".encode()).digest()

    @classmethod
    def from_root(cls, root: bytes) -> _Seeds:
        seeds = cls.__new__(cls)
        seeds._root = root
        return seeds

    def export_root(self) -> bytes:
        """The root, for a recipe travelling to a worker (the explicit act of export)."""
        return self._root

    def rng(self, label: str) -> Csprng:
        return Csprng(seed=hashlib.sha256(self._root + b":" + label.encode()).digest())

    def __repr__(self) -> str:
        return "_Seeds(<secret root>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("_Seeds holds secret state and cannot be pickled")


class _ScenarioClients(ClientRecipe):
    """The clients of a scenario, built where they run (a worker) from the scenario, its
    seeds and the public keys: client ``c`` draws its input from the generator
    ``data:c``, its protocol secrets from ``client:c`` and (active mode) its signing key
    from ``identity:c``. Pickled to the workers; simulation only (the root reaches every
    worker, as every client's secrets are in the simulator anyway)."""

    def __init__(
        self,
        sc: Scenario,
        seeds: _Seeds,
        *,
        paillier_n: int | None,
        registry: tuple[bytes, ...] | None,
        threshold_key: tp.ThresholdPublicKey | None = None,
    ) -> None:
        self.scenario = sc
        self.seeds = seeds
        self.paillier_n = paillier_n
        self.registry = registry
        self.threshold_key = threshold_key  # paillier-sum-v2: the public key (no share)
        self.bits = sc.bits
        self.dim = sc.dim
        self._built: tuple[Pipeline, dict[ClientId, VerifyKey] | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["seeds"] = self.seeds.export_root()
        state["_built"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["seeds"] = _Seeds.from_root(state["seeds"])
        self.__dict__.update(state)

    def _pipeline(self) -> tuple[Pipeline, dict[ClientId, VerifyKey] | None]:
        if self._built is None:
            pipeline = _pipeline(self.scenario, self.seeds)
            registry = None
            if self.registry is not None:
                registry = {
                    c: VerifyKey.from_bytes(raw) for c, raw in enumerate(self.registry, start=1)
                }
            self._built = (pipeline, registry)
        return self._built

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def _key_holder(n: int) -> RemoteKeyHolder:
        return RemoteKeyHolder(public_key=PaillierPublicKey(n))

    def value(self, client_id: ClientId) -> np.ndarray:
        pipeline, _ = self._pipeline()
        x = self.seeds.rng(f"data:{client_id}").uniform(self.dim) * (2 * CLIP_BOUND) - CLIP_BOUND
        return pipeline.codec.encode(x)

    def session(self, client_id: ClientId, value: np.ndarray, *, round_id: int) -> ClientSession:
        pipeline, registry = self._pipeline()
        identities = None
        if registry is not None:
            key = SigningKey.generate(rng=self.seeds.rng(f"identity:{client_id}"))
            identities = {client_id: key}
        if self.threshold_key is not None:
            assert identities is not None
            assert registry is not None
            config = _threshold_config(pipeline, self.threshold_key, registry)
            threshold = pt.ThresholdPaillierProtocol(
                config, identities=identities, rng=self.seeds.rng(f"client:{client_id}")
            )
            return threshold.client(round_id=round_id, client_id=client_id, value=value)
        paillier = None
        if self.paillier_n is not None:
            paillier = self._key_holder(self.paillier_n)
        protocol = build_protocol(
            pipeline,
            rng=self.seeds.rng(f"client:{client_id}"),
            paillier=paillier,
            registry=registry,
            identities=identities,
        )
        return protocol.client(round_id=round_id, client_id=client_id, value=value)


def _config(sc: Scenario) -> PipelineConfig:
    threshold = sc.protocol == PAILLIER_THRESHOLD  # the codec is planned as for paillier
    return PipelineConfig(
        protocol=ProtocolName.PAILLIER if threshold else sc.protocol,
        clip_bound=CLIP_BOUND,
        bits=sc.bits,
        threat_model=ThreatModel.ACTIVE if sc.active else ThreatModel.HONEST_BUT_CURIOUS,
    )


def _pipeline(sc: Scenario, seeds: _Seeds) -> Pipeline:
    # Without DP the pipeline draws nothing from its generator.
    return Pipeline(
        _config(sc), n_clients=sc.clients, dim=sc.dim, dropout=sc.dropout, rng=seeds.rng("pipeline")
    )


def run_scenario(
    sc: Scenario,
    *,
    engine: Engine | str = Engine.PROCESSES,
    workers: int | None = None,
    address: str | None = None,
    timeout: float | None = None,
) -> tuple[SimulationReport, FixedPointCodec]:
    """Generate inputs, encode them, run the round, return the report and the codec.

    Protocol ``'paillier'`` decrypts with a 2048-bit key pair made for this round; with
    ``active`` the simulator holds every client's signing key.

    ``engine`` (:class:`~secfl.runtime.engines.Engine`): where the client sessions run --
    ``'processes'`` (default: ``workers`` local processes, default one per core),
    ``'serial'`` (all in this process) or ``'ray'`` (``workers`` Ray actors, default one
    per CPU of the Ray cluster: a local instance started for the round, or the cluster at
    ``address``; the ``ray`` extra). The server runs in this process (its heavy last step,
    SecAgg's mask removal, on the workers: :meth:`ServerSession.offload`). With a
    ``seed`` every engine gives the same round: aggregate, dropouts, refusals, rejections
    and byte counts. ``timeout``: seconds a worker may take to answer one batch of
    requests, the first including building its clients' sessions (default: no limit; a
    worker that dies is detected anyway).
    """
    chosen = check_engine_options(engine, workers=workers, address=address, timeout=timeout)
    seeds = _Seeds(sc.seed)
    pipeline = _pipeline(sc, seeds)
    codec = pipeline.codec
    identities = _identities(sc, seeds) if sc.active else None
    paillier = None
    if sc.protocol == ProtocolName.PAILLIER:
        paillier = generate_paillier_keypair(bits=_config(sc).paillier_bits)
    protocol: AggregationProtocol
    threshold_key = None
    if sc.protocol == PAILLIER_THRESHOLD:
        protocol, threshold_key = _threshold_protocol(pipeline, sc, seeds)
        identities = None  # the clients' keys are re-derived where they run
    else:
        protocol = build_protocol(
            pipeline, rng=seeds.rng("protocol"), paillier=paillier, identities=identities
        )
    if sc.dropout_phase is not None and sc.dropout_phase not in protocol.phases:
        raise InvalidArgument(
            f"unknown dropout phase {sc.dropout_phase!r}; {sc.protocol} has {protocol.phases}"
        )
    if threshold_key is not None:
        identities = _identities(sc, seeds)
    recipe = _ScenarioClients(
        sc,
        seeds,
        paillier_n=None if paillier is None else paillier.public_key.n,
        registry=None
        if identities is None
        else tuple(identities[c].verify_key().to_bytes() for c in range(1, sc.clients + 1)),
        threshold_key=threshold_key,
    )
    del identities  # the parent keeps only the registry, inside its protocol
    n_drop = math.floor(sc.dropout * sc.clients)
    phase = sc.dropout_phase or protocol.phases[0]
    order = np.argsort(seeds.rng("dropouts").uint64(sc.clients), kind="stable")
    dropouts = {int(i) + 1: phase for i in order[:n_drop]}
    clients = list(range(1, sc.clients + 1))
    pool = open_pool(chosen, recipe, 1, clients, workers=workers, address=address, timeout=timeout)
    with pool:
        report = drive_round(protocol, pool, clients, dim=sc.dim, dropouts=dropouts, round_id=1)
    return report, codec


def _identities(sc: Scenario, seeds: _Seeds) -> dict[ClientId, SigningKey]:
    """Every client's signing key, each from its own label (as a worker re-derives it)."""
    return {
        c: SigningKey.generate(rng=seeds.rng(f"identity:{c}")) for c in range(1, sc.clients + 1)
    }


def _threshold_config(
    pipeline: Pipeline, public: tp.ThresholdPublicKey, registry: dict[ClientId, VerifyKey]
) -> pt.ThresholdPaillierConfig:
    return pt.ThresholdPaillierConfig(
        public_key=public,
        registry=registry,
        bits=pipeline.codec.bits,
        n_clients=pipeline.codec.n_clients,
        value_bits=pipeline.value_bits,
        min_clients=2,
    )


def _threshold_protocol(
    pipeline: Pipeline, sc: Scenario, seeds: _Seeds
) -> tuple[AggregationProtocol, tp.ThresholdPublicKey]:
    """paillier-sum-v2 with a 3-of-5 key dealt for this round and all five key holders in
    this process (the clients are built where they run, from the public key)."""
    public, shares = tp.generate_key(
        bits=pipeline.config.paillier_bits,
        holders=THRESHOLD_HOLDERS,
        threshold=THRESHOLD_T,
        rng=seeds.rng("threshold-key"),
    )
    registry = {c: k.verify_key() for c, k in _identities(sc, seeds).items()}
    config = _threshold_config(pipeline, public, registry)
    rng = seeds.rng("protocol")
    holders = [pt.ThresholdPaillierKeyHolder(config, s, rng=rng.spawn()) for s in shares]
    return pt.ThresholdPaillierProtocol(config, key_holders=holders, rng=rng), public


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
        "engine": report.engine,
        "workers": report.workers,
        "peak_rss_bytes": report.peak_rss_bytes,
        "worker_peak_rss_bytes": list(report.worker_peak_rss_bytes),
    }
