"""The Flower strategy that runs secure rounds (see :mod:`secfl.integrations.flower`)."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import phe
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    ConfigRecordValues,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from secfl.dp.accounting import Neighboring, RdpAccountant
from secfl.dp.clipping import AdaptiveClipConfig
from secfl.errors import (
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    LocalProtocolError,
    ProtocolAbort,
    SecflError,
)
from secfl.fl.round import RoundCore, RoundShape, Weighting, accounting_relation
from secfl.hazmat.rng import Csprng
from secfl.hazmat.threshold_paillier import ThresholdPublicKey
from secfl.identities import Registry
from secfl.integrations._flower_common import (
    _KEY_HOLDER_MESSAGE_TYPE,
    FIND_KEY_HOLDERS,
    FORMAT_VERSION,
    IDENTIFY,
    NODE_PAILLIER_KEY,
    NODE_PAILLIER_SHARE,
    RECORD_KEY,
    _get_bytes,
    _get_int,
    _Layout,
    _log,
    one_line_reason,
)
from secfl.integrations._flower_compose import check_composable, strategy_step
from secfl.integrations._flower_wire import (
    PAILLIER_THRESHOLD,
    SEED_BYTES,
    PaillierParams,
    RoundSetup,
)
from secfl.paillier_keys import PaillierPrivateKey, PaillierPublicKey
from secfl.pipeline import (
    DistributedDP,
    Pipeline,
    PipelineConfig,
    RemoteKeyHolder,
    build_protocol,
)
from secfl.protocols.base import (
    KEY_HOLDER,
    AggregationProtocol,
    PartyId,
    ProtocolName,
    ServerSession,
)
from secfl.protocols.paillier import PaillierPhase, PaillierProtocol, key_fingerprint
from secfl.protocols.paillier_threshold import (
    KEY_HOLDER_PARTY_BASE,
    ThresholdPaillierConfig,
    ThresholdPaillierProtocol,
    ThresholdPaillierServer,
)
from secfl.protocols.secagg import ThreatModel


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
    key_holders: Mapping[int, int] = field(default_factory=dict)
    """Threshold Paillier: key-holder index (1..m) -> the node that holds that share (the
    holders found this round; a missing index was not found)."""
    key_holder_failures: Mapping[int, str] = field(default_factory=dict)
    """Threshold Paillier: key-holder index -> why its partial decryption is not in the
    result (not found, no reply by the deadline, a refusal, or a partial whose proof failed:
    a holder that lied is named here)."""


StageHook = Callable[[int, str, tuple[int, ...]], None]
"""``(round, phase, node ids)``, called before each phase's requests are sent."""


_FLOWER_FIXED_SAMPLE = (
    "the wrapped strategy samples a fixed-size share of the connected nodes ({k}): under "
    "add/remove-one that is a swap, not an add/remove pair (the neighbour without a node "
    "samples another in its place, and the sums differ by two updates), which secfl does not "
    "account for distributed noise. Train every connected node each round (fraction_train="
    "1.0 and no node left out by the strategy), or use neighboring=Neighboring.ZERO_OUT"
)


class SecureAggregation(Strategy):
    """A Flower strategy that securely aggregates the updates of another strategy's round.

    ``strategy`` keeps its whole job but one: it samples nodes, builds their training
    messages, runs evaluation, aggregates metrics and makes its server-side update; only the
    sum of the nodes' updates is computed by a secfl round instead of in the clear (by the
    same :class:`~secfl.fl.round.RoundCore` as the simulator's
    :class:`~secfl.fl.FederatedAveraging`). Each node's update is clipped to L2 norm
    ``clip_bound`` (or to a bound that ``adaptive_clip`` moves each round) and, as in
    Flower's FedAvg, weighted by the metric ``strategy.weighted_by_key`` (``num-examples``)
    inside the secure sum, so the server learns only the total weight. The strategy's own
    ``aggregate_train`` then runs on the resulting average: FedAvg and FedProx take it as the
    new model, FedAvgM, FedAdam, FedYogi and FedAdagrad apply their server optimizer to it.
    A strategy that needs the individual updates (FedMedian, FedTrimmedAvg, Krum, Bulyan,
    Flower's DP wrappers, or an unknown ``aggregate_train``) is refused here, with the
    secure alternative (see :mod:`secfl.integrations._flower_compose`). A round that aborts
    (too few survivors) leaves the model and the strategy's state unchanged. Under a
    protected protocol no node's example count leaves it in the clear: the mod removes it
    from the node's train metrics, which are then averaged uniformly over the survivors.

    ``protocol``, ``clip_bound``, ``bits``, ``dropout`` (the fraction of nodes a round must
    tolerate), ``dp`` and ``paillier_bits`` mean what they mean in
    :class:`~secfl.pipeline.PipelineConfig` and :class:`~secfl.pipeline.Pipeline`. By
    default (``protocol=None``, ``threat_model=None``): with a ``registry`` of the nodes'
    identities, ``secagg`` in the active threat model (a SuperLink that may deviate);
    without one, ``secagg+``, which like every protocol's honest-but-curious mode assumes
    a SuperLink that follows the protocol (a lying one can isolate an input: see
    protocols/secagg-v1.md section 10.2).
    ``weighting`` is ``None`` (follow the strategy: by examples, each count capped at
    ``example_cap``) or :attr:`Weighting.UNIFORM` to count every survivor once instead
    (no weight slot in the sum). ``train_timeout`` bounds the first phase (it includes local
    training), ``stage_timeout`` every later one; a node that has not answered by then is a
    dropout. The Paillier private key stays in this process (the key holder is the
    ServerApp).

    ``threat_model=ThreatModel.ACTIVE`` (protocol ``"secagg"``) protects against a server
    that deviates from the protocol: every node signs its keys and the survivor list with
    its own identity, checked against ``registry`` (the same file every node holds). A
    round then starts with an ``identify`` phase (training, and each node's registry id).

    ``paillier_public_key`` (protocol ``"paillier"``): the private key is **not** in this
    process but on a SuperNode whose node config names it (``secfl-paillier-key``); the
    strategy finds that node, leaves it out of training, and asks it to decrypt each round's
    encrypted sum. Without it the ServerApp holds the key pair itself (``paillier_keys``, or
    one it makes on the first Paillier round and keeps for the run), and Paillier then
    protects the updates from the SuperLink and the network only.

    ``paillier_threshold_public_key`` (protocol ``"paillier-threshold"``,
    ``protocols/paillier-sum-v2.md``; with ``registry``): the private key is shared t-of-m
    among m key-holder SuperNodes (node config ``secfl-paillier-share`` and
    ``secfl-registry``). Each round the strategy finds them (exchange
    ``find-key-holders``), leaves them out of training, has the data nodes identify
    themselves and send ciphertexts signed with their registry keys, and sends every signed
    input to every holder; each holder checks the signatures, forms the product itself and
    returns a partial decryption with a proof. The strategy verifies the proofs and combines
    any t valid ones: up to m - t holders may be down, slow or lying (a holder whose proof
    fails is named in :attr:`SecureRoundRecord.key_holder_failures`).
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        protocol: str | None = None,
        clip_bound: float = 1.0,
        bits: int = 32,
        dropout: float = 0.2,
        dp: DistributedDP | None = None,
        paillier_bits: int = 2048,
        weighting: Weighting | None = None,
        example_cap: int = 1000,
        adaptive_clip: AdaptiveClipConfig | None = None,
        train_timeout: float = 600.0,
        stage_timeout: float = 60.0,
        poll_interval: float = 0.2,
        on_stage: StageHook | None = None,
        threat_model: ThreatModel | None = None,
        registry: Registry | None = None,
        paillier_public_key: PaillierPublicKey | phe.PaillierPublicKey | None = None,
        paillier_keys: PaillierPrivateKey | None = None,
        paillier_threshold_public_key: ThresholdPublicKey | None = None,
        rng: Csprng | None = None,
    ) -> None:
        if not isinstance(strategy, Strategy):
            raise InvalidArgument(
                f"strategy must be a Flower Strategy (e.g. FedAvg()), got {type(strategy).__name__}"
            )
        if isinstance(strategy, SecureAggregation):
            raise InvalidArgument("SecureAggregation cannot wrap another SecureAggregation")
        check_composable(strategy)
        threshold = _check_threshold(
            protocol,
            paillier_threshold_public_key,
            threat_model=threat_model,
            registry=registry,
            paillier_bits=paillier_bits,
            others=paillier_public_key is not None or paillier_keys is not None,
        )
        self.protocol: str = PAILLIER_THRESHOLD if threshold else ""
        """The protocol name the nodes see (set below for every protocol)."""
        self.threshold_public_key = paillier_threshold_public_key
        self.threshold_holder_nodes: dict[int, int] = {}
        """Threshold key-holder index -> node (found by probing; kept while all answer)."""
        if threshold:  # the codec is planned as for 'paillier' (same packing)
            protocol, threat_model = ProtocolName.PAILLIER, ThreatModel.HONEST_BUT_CURIOUS
        if threat_model is None:  # identities exist: a server that may lie is assumed
            active = registry is not None
            threat_model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
        if protocol is None:
            active = threat_model is ThreatModel.ACTIVE
            protocol = ProtocolName.SECAGG if active else ProtocolName.SECAGG_PLUS
        if weighting is None:
            weighting = Weighting.EXAMPLES
        if dp is not None and dp.noise_multiplier is None:
            raise InvalidArgument(
                "over Flower, give DistributedDP its noise_multiplier (secfl privacy "
                "--target-epsilon solves for one); noise_multiplier=None goes with "
                "FedAvgConfig(target_epsilon=...) in the simulator"
            )
        self.config = PipelineConfig(
            protocol=protocol,
            clip_bound=clip_bound,
            bits=bits,
            paillier_bits=paillier_bits,
            dp=dp,
            threat_model=threat_model,
        )
        if dp is not None:
            accounting_relation(dp)  # a relation secfl can bound (Skellam: zero-out), first
        if (
            dp is not None
            and dp.noise_clients is None
            and dp.neighboring is Neighboring.ADD_OR_REMOVE_ONE
        ):
            raise InvalidArgument(
                "over Flower a round's cohort is the strategy's selection of the connected "
                "nodes, so under add/remove-one the distributed-DP scale and noise shares must "
                "be sized for public counts, or the aggregate reveals who is connected: give "
                "DistributedDP(max_cohort=K, noise_clients=M), K at least N + 1 for the most "
                "nodes N that may connect (the add neighbour has one more; a larger round "
                "fails before anything is sent, and that failure is not accounted) and M the "
                "survivors the noise is planned for (a round with fewer is accounted with the "
                "noise it has), or neighboring=ZERO_OUT"
            )
        fraction = getattr(strategy, "fraction_train", 1.0)
        if (
            dp is not None
            and dp.neighboring is Neighboring.ADD_OR_REMOVE_ONE
            and isinstance(fraction, numbers.Real)
            and fraction < 1.0
        ):
            raise InvalidArgument(_FLOWER_FIXED_SAMPLE.format(k=f"fraction_train={fraction}"))
        if not threshold and (threat_model is ThreatModel.ACTIVE) != (registry is not None):
            raise InvalidArgument(
                "the active threat model needs the registry of the nodes' identities (and a "
                "registry is used only by it): pass both threat_model=ThreatModel.ACTIVE and "
                "registry=Registry.load(path), or neither"
            )
        if registry is not None and not isinstance(registry, Registry):
            raise InvalidArgument(f"registry must be a secfl Registry, got {type(registry)}")
        self.registry = registry
        self.protocol = self.protocol or self.config.protocol
        if paillier_public_key is not None:
            if protocol != ProtocolName.PAILLIER:
                raise InvalidArgument("paillier_public_key goes with protocol 'paillier' only")
            if isinstance(paillier_public_key, phe.PaillierPublicKey):
                paillier_public_key = PaillierPublicKey.from_phe(paillier_public_key)
            if not isinstance(paillier_public_key, PaillierPublicKey):
                raise InvalidArgument(
                    "paillier_public_key must be a secfl PaillierPublicKey (load_paillier_"
                    f"public_key(path)), got {type(paillier_public_key).__name__}"
                )
        if paillier_keys is not None and paillier_public_key is not None:
            raise InvalidArgument(
                "give paillier_keys (this process decrypts) or paillier_public_key (a "
                "key-holder node decrypts), not both"
            )
        self.paillier_public_key = paillier_public_key
        self.key_holder_node: int | None = None
        """The SuperNode holding the Paillier private key (found on first use)."""
        if not 0.0 <= dropout < 1.0:
            raise InvalidArgument(f"dropout must be in [0, 1), got {dropout}")
        self.core = RoundCore(
            self.config,
            weighting=weighting,
            example_cap=example_cap,
            adaptive_clip=adaptive_clip,
            paillier_keys=paillier_keys,
        )
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
        self.train_timeout = train_timeout
        self.stage_timeout = stage_timeout
        self.poll_interval = poll_interval
        self.on_stage = on_stage
        self._rng = rng or Csprng()
        self.weight_key = str(getattr(strategy, "weighted_by_key", "num-examples"))
        self.history: list[SecureRoundRecord] = []
        self._pending: tuple[int, ArrayRecord | None, MetricRecord | None] | None = None

    @property
    def accountant(self) -> RdpAccountant | None:
        """The privacy accountant (``None`` without DP)."""
        return self.core.accountant

    # ---------------------------------------------------------------- Strategy API
    def summary(self) -> None:
        """Log this strategy's secfl settings, then the wrapped strategy's summary."""
        cfg = self.config
        _log.info(
            "\t├──> secfl secure aggregation: protocol=%s threat_model=%s clip_bound=%s bits=%d "
            "dropout=%s dp=%s weighting=%s",
            self.protocol,
            "ACTIVE" if self.protocol == PAILLIER_THRESHOLD else cfg.threat_model.name,
            cfg.clip_bound,
            cfg.bits,
            self.dropout,
            cfg.dp,
            f"by {self.weight_key!r} (capped at {self.example_cap})"
            if self.weighting is Weighting.EXAMPLES
            else "uniform (overrides the strategy's)",
        )
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Run the whole secure round now (it takes several message exchanges).

        Returns no messages: :meth:`aggregate_train` hands the round's result to
        ``Strategy.start``. Nodes are chosen and configured by the wrapped strategy's
        ``configure_train``.
        """
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        connected = frozenset(grid.get_node_ids())  # the population the strategy sampled from
        new_arrays, metrics = self.run_round(
            grid, server_round, arrays, messages, connected=connected
        )
        self._pending = (server_round, new_arrays, metrics)
        return []

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The wrapped strategy's server step on the secure average of the round run by
        :meth:`configure_train`; ``(None, None)`` if that round aborted."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != server_round:
            return None, None
        _, average, metrics = pending
        if average is None or metrics is None:
            return None, None
        new_arrays, _ = strategy_step(
            self.strategy, server_round, average, metrics, self.weight_key
        )
        return new_arrays, metrics

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
        *,
        connected: frozenset[int] | None = None,
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """One secure round over the nodes that ``messages`` (training messages) address.

        ``connected``: the nodes connected when the strategy sampled (default: now); under
        add/remove-one DP a round that trains fewer of them (key holders aside) aborts.

        Returns the average of the survivors' models (the global model plus their clipped,
        weighted mean update; ``None`` if the round aborted) and the aggregated training
        metrics; the round's :class:`SecureRoundRecord` is appended to
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
        helpers: set[int] = set()  # key holders: connected, never sampled to train
        remote = None
        if self.paillier_public_key is not None:
            try:
                holder = run.find_key_holder()
            except SecflError as e:
                run.finish(None, f"{type(e).__name__}: {e}")
                return None, None
            helpers.add(holder)
            if holder in by_node:  # the key holder does not train
                del by_node[holder]
                run.set_nodes(tuple(sorted(by_node)))
            remote = RemoteKeyHolder(self.paillier_public_key)
        if self.threshold_public_key is not None:
            try:
                found = run.find_threshold_holders()
            except SecflError as e:
                run.finish(None, f"{type(e).__name__}: {e}")
                return None, None
            helpers.update(found.values())
            trains = tuple(sorted(set(by_node) - set(found.values())))  # holders do not train
            by_node = {n: by_node[n] for n in trains}
            run.set_nodes(trains)
        nodes = run.nodes
        if len(nodes) < 2:
            run.finish(None, "fewer than 2 nodes were sampled")
            return None, None
        dp = self.config.dp
        if dp is not None and dp.neighboring is Neighboring.ADD_OR_REMOVE_ONE:
            population = connected if connected is not None else frozenset(grid.get_node_ids())
            left_out = population - set(nodes) - helpers
            if left_out:  # whatever the strategy's knobs: a fixed-size sample is a swap
                sampled = f"{len(nodes)} of {len(nodes) + len(left_out)} connected nodes"
                run.finish(None, _FLOWER_FIXED_SAMPLE.format(k=sampled))
                return None, None
        cap = self.config.dp.max_cohort if self.config.dp is not None else None
        if cap is not None and len(nodes) > cap:
            run.finish(None, f"{len(nodes)} nodes sampled, above DistributedDP(max_cohort={cap})")
            return None, None
        layout = _Layout.of(arrays)
        shape = self.core.shape(layout.size)
        seed = self._rng.bytes(SEED_BYTES)  # public: it only draws the rotation (DP)
        round_rng = Csprng(seed=seed)  # the rotation seed, then the server's protocol
        pipeline = Pipeline(
            shape.pipeline_config(self.config),
            n_clients=len(nodes),
            dim=shape.input_dim,
            dropout=self.dropout,
            rng=round_rng,
        )
        protocol: AggregationProtocol
        if self.threshold_public_key is not None:
            protocol = self._threshold_protocol(pipeline, round_rng)
        else:
            protocol = build_protocol(
                pipeline,
                rng=round_rng,
                paillier=remote if remote is not None else self.core.paillier_key_pair(),
                registry=self.registry.verify_keys if self.registry is not None else None,
            )
        result = run.drive(pipeline, protocol, shape, seed, by_node)
        if result is None:
            return None, None
        base = layout.flatten(arrays, what="the global model")
        step = self.core.step(
            base,
            pipeline,
            shape,
            result.aggregate,
            survivors=len(result.survivors),
            rng=self._rng,
        )
        if step.params is None:
            run.finish(None, f"the survivors' {step.aborted}", epsilon=step.epsilon)
            return None, None
        new_arrays = layout.apply(arrays, step.params)
        run.finish(step.total, None, epsilon=step.epsilon)
        metrics = self._metrics(run)
        return new_arrays, metrics

    def _threshold_protocol(self, pipeline: Pipeline, rng: Csprng) -> ThresholdPaillierProtocol:
        """paillier-sum-v2 over the round's codec; every key holder is a remote node."""
        assert self.threshold_public_key is not None
        assert self.registry is not None
        min_survivors = pipeline.min_survivors if pipeline.dp_plan is not None else None
        config = ThresholdPaillierConfig(
            public_key=self.threshold_public_key,
            registry=self.registry.verify_keys,
            bits=pipeline.codec.bits,
            n_clients=pipeline.codec.n_clients,
            value_bits=pipeline.value_bits,
            min_clients=max(2, min_survivors or 2),
        )
        return ThresholdPaillierProtocol(config, rng=rng)

    def _metrics(self, run: _Round) -> MetricRecord:
        out = MetricRecord()
        aggr = getattr(self.strategy, "train_metrics_aggr_fn", None)
        contents = [  # under DP, nodes keep their metrics unless they chose to release them
            run.train_metrics[n]
            for n in run.survivors
            if n in run.train_metrics and run.train_metrics[n].metric_records
        ]
        if self.config.protocol != ProtocolName.PLAIN:  # nodes keep their counts: average uniformly
            for content in contents:
                for record in content.metric_records.values():
                    record[self.weight_key] = 1
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
        self.holder_nodes: dict[int, int] = {}  # threshold key-holder index -> node
        self.holder_failures: dict[int, str] = {}
        self.session: ServerSession | None = None

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

    def find_threshold_holders(self) -> dict[int, int]:
        """The nodes holding shares of the strategy's threshold key, by holder index.

        Kept from the last round while every holder answered there; otherwise every node is
        asked (exchange ``find-key-holders``). An index claimed by two nodes is used for
        neither (a misconfiguration: the round runs with the others, and says so). Fewer
        than t holders found aborts the round before anyone trains.
        """
        owner = self.owner
        key = owner.threshold_public_key
        assert key is not None
        found = dict(owner.threshold_holder_nodes)
        if len(found) < key.holders:
            fields: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "round": self.round}
            fields["threshold-probe"] = key.fingerprint()
            outgoing = {
                n: (RecordDict({RECORD_KEY: ConfigRecord(fields)}), _KEY_HOLDER_MESSAGE_TYPE)
                for n in sorted(self.grid.get_node_ids())
            }
            replies = self._exchange(FIND_KEY_HOLDERS, outgoing, owner.stage_timeout)
            claims: dict[int, list[int]] = {}
            for node in sorted(replies):
                reply = replies[node]
                record = None if reply.has_error() else reply.content.config_records.get(RECORD_KEY)
                index = record.get("key-holder-index") if record is not None else None
                if isinstance(index, int) and not isinstance(index, bool) and index:
                    claims.setdefault(index, []).append(node)
            found = {}
            for index, nodes in sorted(claims.items()):
                if not 1 <= index <= key.holders:
                    continue
                if len(nodes) > 1:
                    self.holder_failures[index] = (
                        f"nodes {nodes} all claim to hold share {index}: used for none "
                        f"(check their {NODE_PAILLIER_SHARE!r} node config)"
                    )
                    _log.warning("secfl round %d: %s", self.round, self.holder_failures[index])
                    continue
                found[index] = nodes[0]
        for index in range(1, key.holders + 1):
            if index not in found:
                self.holder_failures.setdefault(index, "not found among the connected nodes")
        self.holder_nodes = found
        owner.threshold_holder_nodes = dict(found)
        if len(found) < key.threshold:
            owner.threshold_holder_nodes = {}
            raise InsufficientSurvivors(
                f"{len(found)} of the {key.holders} threshold key holders found; decryption "
                f"needs {key.threshold} (node config {NODE_PAILLIER_SHARE!r} on each holder)"
            )
        return found

    def _remote_partials(self, phase: str, requests: Mapping[PartyId, bytes]) -> dict[int, bytes]:
        """Send a DECRYPT_REQUEST to each asked threshold key holder's node, in one exchange;
        their answers by party id (missing ones are recorded in ``holder_failures``)."""
        owner = self.owner
        assert self.setup is not None
        setup = self.setup.to_bytes()
        outgoing: dict[int, tuple[RecordDict, str]] = {}
        node_party: dict[int, int] = {}
        for party, request in sorted(requests.items()):
            index = KEY_HOLDER_PARTY_BASE - party
            node = self.holder_nodes.get(index)
            if node is None:
                continue  # not found: already recorded
            fields: dict[str, ConfigRecordValues] = {"v": FORMAT_VERSION, "round": self.round}
            fields["setup"], fields["partial"] = setup, request
            self.bytes_down += len(setup) + len(request)
            content = RecordDict({RECORD_KEY: ConfigRecord(fields)})
            outgoing[node] = (content, _KEY_HOLDER_MESSAGE_TYPE)
            node_party[node] = party
        replies = self._exchange(phase, outgoing, owner.stage_timeout) if outgoing else {}
        answers: dict[int, bytes] = {}
        for node, party in sorted(node_party.items()):
            index = KEY_HOLDER_PARTY_BASE - party
            reply = replies.get(node)
            why = None
            if reply is None:
                why = f"{phase}: node {node}: no reply within {owner.stage_timeout:g} s"
            elif reply.has_error():
                reason = one_line_reason(reply.error.reason or "") or f"error {reply.error.code}"
                why = f"{phase}: node {node} refused: {reason}"
            else:
                record = reply.content.config_records.get(RECORD_KEY)
                try:
                    if record is None or _get_int(record, "round") != self.round:
                        raise IntegrityError("the reply carries no secfl record of this round")
                    answers[party] = _get_bytes(record, "reply")
                    self.bytes_up += len(answers[party])
                except SecflError as e:
                    why = f"{phase}: node {node}: rejected: {e}"
            if why is not None:
                self.holder_failures[index] = why
                owner.threshold_holder_nodes = {}  # look for the holders again next round
        return answers

    def _parties(
        self, protocol: AggregationProtocol, phase: str, requests: dict[PartyId, bytes]
    ) -> dict[PartyId, bytes]:
        """Deliver the requests to non-client parties (in this process, the Paillier key
        holder's node, or the threshold key holders' nodes, these in one exchange)."""
        answers: dict[PartyId, bytes] = {}
        partials: dict[PartyId, bytes] = {}
        holders = self.owner.threshold_public_key
        for pid, request in sorted(requests.items()):
            index = KEY_HOLDER_PARTY_BASE - pid
            if pid not in protocol.parties() and holders and 1 <= index <= holders.holders:
                partials[pid] = request
                continue
            answer = self._party(protocol, pid, request)
            if answer is not None:
                answers[pid] = answer
        if partials:
            answers.update(self._remote_partials(phase, partials))
        return answers

    def _party(self, protocol: AggregationProtocol, party: int, request: bytes) -> bytes | None:
        """Deliver a request to a non-client party: in this process, or the key-holder node."""
        local = protocol.parties()
        if party in local:
            return local[party].handle(request)
        if party == KEY_HOLDER and self.owner.paillier_public_key is not None:
            return self.remote_decrypt(request)
        raise ProtocolAbort(f"the session addressed party {party}, which this round has not")

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
        reply = self._exchange(PaillierPhase.DECRYPT, outgoing, owner.stage_timeout).get(node)
        if reply is None:
            owner.key_holder_node = None  # look for it again next round
            raise ProtocolAbort(
                f"the key holder (node {node}) did not answer within {owner.stage_timeout:g} s"
            )
        if reply.has_error():
            why = one_line_reason(reply.error.reason or "") or f"error {reply.error.code}"
            raise ProtocolAbort(f"the key holder (node {node}) refused: {why}")
        record = reply.content.config_records.get(RECORD_KEY)
        if record is None or _get_int(record, "round") != self.round:
            raise IntegrityError("the key holder's reply carries no secfl record of this round")
        answer = _get_bytes(record, "reply")
        self.bytes_up += len(answer)
        return answer

    def drive(
        self,
        pipeline: Pipeline,
        protocol: AggregationProtocol,
        shape: RoundShape,
        seed: bytes,
        training: Mapping[int, Message],
    ) -> _Result | None:
        """Run ``protocol``'s server session phase by phase; ``None`` (and a record) if the
        round aborts.

        The first exchange carries each node's training message and the round set-up: in
        the honest-but-curious model with the protocol's first request, in the active one
        alone (the ``identify`` phase), since the session needs the nodes' registry ids.
        """
        setup = self.setup = self._setup_template(pipeline, protocol, shape, seed)
        try:
            first = not setup.active
            if setup.active:
                self._identify(setup, training)
            session = protocol.server(
                round_id=self.round,
                client_ids=frozenset(self.client_of.values()),
                dim=pipeline.input_dim,
            )
            self.session = session
            requests = session.start()
            while requests:
                phase = session.phase
                others = {p: requests.pop(p) for p in sorted(set(requests) - set(self.node_of))}
                for pid, answer in self._parties(protocol, phase, others).items():
                    session.receive(pid, answer)
                outgoing = {
                    self.node_of[cid]: self._message(
                        request, training[self.node_of[cid]], setup if first else None, cid
                    )
                    for cid, request in requests.items()
                }
                if not outgoing:
                    requests = session.advance()
                    continue
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
        except LocalProtocolError:
            raise  # this driver's own bug, never an aborted round
        except SecflError as e:
            self._name_lying_holders()
            self.finish(None, f"{type(e).__name__}: {e}")
            return None
        self._name_lying_holders()
        self.survivors = tuple(sorted(self.node_of[c] for c in result.survivors))
        for cid, why in result.excluded.items():  # proven cheaters (secagg-v3)
            self.dropped.setdefault(self.node_of[cid], f"excluded: {why}")
        for cid in result.dropped:
            self.dropped.setdefault(self.node_of[cid], "dropped")
        return _Result(result.aggregate, result.survivors)

    def _name_lying_holders(self) -> None:
        """Record the threshold key holders whose answer the aggregator refused (a failed
        proof: a holder that lied about its partial decryption), with their node."""
        session = self.session
        if not isinstance(session, ThresholdPaillierServer):
            return
        for index, why in sorted(session.rejected_holders.items()):
            node = self.holder_nodes.get(index)
            self.holder_failures[index] = f"node {node}: partial refused: {why}"
            _log.warning(
                "secfl round %d: threshold key holder %d (node %s): partial refused: %s",
                self.round,
                index,
                node,
                why,
            )
            self.owner.threshold_holder_nodes = {}

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

    def _setup_template(
        self, pipeline: Pipeline, protocol: AggregationProtocol, shape: RoundShape, seed: bytes
    ) -> RoundSetup:
        owner = self.owner
        cfg = owner.config
        paillier = None
        fingerprint = b""
        threat_model = cfg.threat_model
        if isinstance(protocol, PaillierProtocol | ThresholdPaillierProtocol):
            pcfg = protocol.config
            paillier = PaillierParams(
                n=int(pcfg.public_key.n),
                value_bits=pcfg.effective_value_bits,
                min_clients=pcfg.min_clients,
            )
        if isinstance(protocol, ThresholdPaillierProtocol):
            fingerprint = protocol.config.public_key.fingerprint()
            threat_model = ThreatModel.ACTIVE
        registry = owner.registry
        return RoundSetup(
            round_id=self.round,
            client_id=0 if registry is not None else 1,
            n_clients=len(self.nodes),
            dim=shape.model_dim,
            protocol=owner.protocol,
            bits=pipeline.codec.bits,
            scale_bits=pipeline.codec.scale_bits,
            clip_bound=shape.clip_bound,
            dropout=owner.dropout,
            weighting=owner.weighting,
            example_cap=owner.example_cap,
            weight_key=owner.weight_key,
            pipeline_seed=seed,
            dp=cfg.dp,
            paillier_bits=cfg.paillier_bits,
            paillier=paillier,
            threat_model=threat_model,
            registry_digest=registry.digest() if registry is not None else b"",
            adaptive=shape.adaptive,
            threshold_fingerprint=fingerprint,
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
            why = one_line_reason(reply.error.reason or "") or f"error {reply.error.code}"
            self.dropped[node] = f"{phase}: {why}"
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
            key_holders=dict(self.holder_nodes),
            key_holder_failures=dict(sorted(self.holder_failures.items())),
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


def _check_threshold(
    protocol: str | None,
    key: ThresholdPublicKey | None,
    *,
    threat_model: ThreatModel | None,
    registry: Registry | None,
    paillier_bits: int,
    others: bool,
) -> bool:
    """Whether the strategy runs paillier-sum-v2; refuses every inconsistent combination."""
    if protocol != PAILLIER_THRESHOLD:
        if key is not None:
            raise InvalidArgument(
                f"paillier_threshold_public_key goes with protocol {PAILLIER_THRESHOLD!r} only"
            )
        return False
    if not isinstance(key, ThresholdPublicKey):
        raise InvalidArgument(
            f"protocol {PAILLIER_THRESHOLD!r} needs paillier_threshold_public_key="
            "load_threshold_public_key('paillier-threshold.pub') (from secfl paillier-key "
            f"--holders m --threshold t; the shares go to m key-holder SuperNodes), got {key!r}"
        )
    if registry is None:
        raise InvalidArgument(
            f"protocol {PAILLIER_THRESHOLD!r} needs registry=Registry.load(path): every client "
            "signs its ciphertexts with its registered key and the key holders check them"
        )
    if threat_model not in (None, ThreatModel.ACTIVE):
        raise InvalidArgument(
            f"protocol {PAILLIER_THRESHOLD!r} runs in the active threat model (signed inputs, "
            "key holders that do not trust the aggregator): leave threat_model unset"
        )
    if others:
        raise InvalidArgument(
            "paillier_public_key and paillier_keys go with protocol 'paillier'; a threshold "
            "round has only paillier_threshold_public_key (no party holds the private key)"
        )
    if paillier_bits != key.bits:
        raise InvalidArgument(
            f"the threshold key has a {key.bits}-bit modulus but paillier_bits={paillier_bits}: "
            f"set paillier_bits={key.bits} (the codec's packing is planned for it)"
        )
    return True
