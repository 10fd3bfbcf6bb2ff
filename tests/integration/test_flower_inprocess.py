"""secfl over Flower's Message API, in process (no SuperLink / SuperNode processes).

A loopback ``Grid`` delivers every message the way a SuperNode does: the ClientApp gets a
fresh copy of the message and of the node's ``Context`` (both through Flower's protobuf
serialization), and only the context it returns survives to the next message. The apps are
those of ``examples/flower_app``. The real deployment engine is exercised by
``test_flower_e2e.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the flower extra (flwr) is not installed")

from flower_loopback import LoopbackGrid, server_identity  # noqa: F401
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg, FedAvgM, Strategy
from phe import PaillierPrivateKey

from secfl.dp import AdaptiveClipConfig
from secfl.dp.accounting import Neighboring
from secfl.errors import InvalidArgument
from secfl.fl import FedAvgConfig, FederatedAveraging, Weighting
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.identities import (
    Registry,
    load_paillier_public_key,
    save_paillier_key,
    save_signing_key,
)
from secfl.integrations.flower import (
    KEY_HOLDER_STATE,
    NODE_IDENTITY,
    NODE_PAILLIER_KEY,
    NODE_PAILLIER_PUBLIC_KEY,
    NODE_REGISTRY,
    RECORD_KEY,
    STATE_KEY,
    SecflClientMod,
    SecureAggregation,
    secfl_mod,
)
from secfl.pipeline import DistributedDP, PipelineConfig
from secfl.protocols.secagg import ThreatModel

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "flower_app"
sys.path.insert(0, str(APP_DIR))
from secfl_flower_app import client_app as example_client  # noqa: E402
from secfl_flower_app import task  # noqa: E402

SECURE = ["secagg", "secagg+", "paillier"]


def client_app(mod=secfl_mod) -> ClientApp:
    """The example's ClientApp code behind ``mod``."""
    app = ClientApp(mods=[mod])
    app.train()(example_client.train)
    app.evaluate()(example_client.evaluate)
    return app


def initial() -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in task.initial_arrays().items()})


def as_dict(arrays: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: a.numpy() for k, a in arrays.items()}


def delta(global_arrays: dict[str, np.ndarray], partition: int) -> np.ndarray:
    """What a node contributes: its trained arrays minus the global ones, flattened."""
    new, _, _ = task.train(global_arrays, partition, lr=0.05, steps=2)
    return np.concatenate(
        [
            new[k].astype(np.float64) - global_arrays[k].astype(np.float64)
            for k in ("weight", "bias")
        ]
    )


def kill_at(grid: LoopbackGrid, round_phase_nodes: dict[tuple[int, str], list[int]]):
    """An on_stage hook that kills nodes (by index in sorted node ids) before a phase."""

    def hook(server_round: int, phase: str, nodes: tuple[int, ...]) -> None:
        for i in round_phase_nodes.get((server_round, phase), []):
            grid.dead.add(sorted(grid.partition)[i])

    return hook


def run(
    grid: LoopbackGrid, rounds: int = 2, *, wrapped: Strategy | None = None, **kwargs
) -> tuple[SecureAggregation, list]:
    """``rounds`` rounds of ``wrapped`` (FedAvg by default) behind SecureAggregation;
    returns the strategy and the global model before each round. Unless ``weighting`` is
    given, every survivor counts once (the nodes of ``client_app`` all have as many
    examples)."""
    opts = {
        "protocol": "secagg+",
        "clip_bound": 5.0,
        "stage_timeout": 0.05,
        "train_timeout": 0.2,
        "weighting": Weighting.UNIFORM,
    }
    opts.update(kwargs)
    strategy = SecureAggregation(wrapped or FedAvg(fraction_evaluate=0.0), **opts)
    globals_seen: list[dict[str, np.ndarray]] = []
    strategy.start(
        grid=grid,
        initial_arrays=initial(),
        num_rounds=rounds,
        evaluate_fn=lambda r, arrays: globals_seen.append(as_dict(arrays)),
    )
    return strategy, globals_seen


def expected_sum(grid: LoopbackGrid, global_arrays, survivors) -> np.ndarray:
    return sum(delta(global_arrays, grid.partition[n]) for n in survivors)


def keys_for(protocol: str, keys: PaillierPrivateKey) -> PaillierPrivateKey | None:
    """The session's key pair for the server to hold when ``protocol`` is Paillier."""
    return keys if protocol == "paillier" else None


@pytest.mark.parametrize("protocol", SECURE)
def test_two_rounds_with_a_node_killed_mid_round_sum_the_survivors(protocol, paillier_keys):
    grid = LoopbackGrid(client_app())
    phase = "input" if protocol == "paillier" else "mask"
    # Paillier has one phase: kill before round 2 starts; SecAgg: after keys were shared.
    hook = kill_at(grid, {(2, phase): [3]})
    keys = keys_for(protocol, paillier_keys)
    strategy, seen = run(grid, protocol=protocol, on_stage=hook, paillier_keys=keys)
    assert strategy.core.paillier_key_pair() is keys  # the one key of the run, or none
    r1, r2 = strategy.history
    assert r1.aborted is None
    assert r2.aborted is None
    assert r1.survivors == r1.nodes
    assert len(r1.nodes) == 5
    victim = sorted(grid.partition)[3]
    assert victim not in r2.survivors
    assert len(r2.survivors) == 4
    assert "no reply" in r2.dropped[victim]
    for record, before in ((r1, seen[0]), (r2, seen[1])):
        np.testing.assert_allclose(
            record.aggregate, expected_sum(grid, before, record.survivors), rtol=0, atol=1e-6
        )
        mean = record.aggregate / len(record.survivors)
        np.testing.assert_allclose(
            np.concatenate([seen[record.round][k] for k in ("weight", "bias")]),
            np.concatenate([before[k] for k in ("weight", "bias")]) + mean,
            atol=1e-6,
        )


@pytest.mark.parametrize("phase", ["advertise", "share", "mask", "unmask"])
def test_a_dropout_in_any_secagg_phase_leaves_a_correct_sum(phase):
    grid = LoopbackGrid(client_app())
    strategy, seen = run(
        grid, rounds=1, protocol="secagg", on_stage=kill_at(grid, {(1, phase): [0]})
    )
    (record,) = strategy.history
    victim = sorted(grid.partition)[0]
    assert record.aborted is None
    # Killed after sending its masked input (unmask phase): its input is in the sum.
    assert (victim in record.survivors) == (phase == "unmask")
    np.testing.assert_allclose(
        record.aggregate, expected_sum(grid, seen[0], record.survivors), atol=1e-6
    )


def test_too_many_dropouts_abort_cleanly_and_keep_the_model():
    grid = LoopbackGrid(client_app())
    strategy, seen = run(
        grid, rounds=1, protocol="secagg", on_stage=kill_at(grid, {(1, "mask"): [0, 1, 2]})
    )
    (record,) = strategy.history
    assert record.aborted is not None
    assert "InsufficientSurvivors" in record.aborted
    assert record.aggregate is None
    assert record.survivors == ()
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])
    # The survivors' secrets were not left behind on the nodes that answered.
    for node in grid.get_node_ids():
        state = grid.context(node).state.config_records[STATE_KEY]
        assert state["status"] in ("active", "aborted")


def test_distributed_dp_round_uses_the_same_rotation_on_both_sides():
    grid = LoopbackGrid(client_app())
    dp = DistributedDP(noise_multiplier=1e-3, max_cohort=20, noise_clients=4)
    strategy, seen = run(grid, rounds=1, protocol="secagg+", dp=dp)
    (record,) = strategy.history
    assert record.aborted is None
    assert record.epsilon is not None
    assert record.epsilon > 0
    # Noise of std noise_multiplier * clip_bound = 5e-3 on the sum; a wrong rotation or
    # scale would be off by the size of the updates themselves (~0.1-1).
    err = record.aggregate - expected_sum(grid, seen[0], record.survivors)
    assert np.max(np.abs(err)) < 0.05


def test_weighting_by_examples_travels_inside_the_secure_sum():
    grid = LoopbackGrid(client_app())
    strategy, seen = run(grid, rounds=1, protocol="secagg", weighting=Weighting.EXAMPLES)
    (record,) = strategy.history
    w = task.EXAMPLES / 1000
    assert record.aggregate[-1] == pytest.approx(5 * w)
    np.testing.assert_allclose(
        record.aggregate[:-1], w * expected_sum(grid, seen[0], record.survivors), atol=1e-6
    )


def test_plaintext_is_refused_by_default_and_runs_when_the_client_allows_it():
    grid = LoopbackGrid(client_app())
    strategy, _ = run(grid, rounds=1, protocol="plain")
    (record,) = strategy.history
    assert record.aborted is not None
    assert all("accepts only" in why for why in record.dropped.values())

    grid = LoopbackGrid(client_app(SecflClientMod(protocols=("plain",))))
    strategy, seen = run(grid, rounds=1, protocol="plain")
    (record,) = strategy.history
    assert record.aborted is None
    np.testing.assert_allclose(
        record.aggregate, expected_sum(grid, seen[0], record.survivors), atol=1e-6
    )


def test_client_policy_min_clients_and_noise():
    grid = LoopbackGrid(client_app(SecflClientMod(min_clients=6)), n_nodes=5)
    strategy, _ = run(grid, rounds=1)
    assert strategy.history[0].aborted is not None
    grid = LoopbackGrid(client_app(SecflClientMod(min_noise_multiplier=0.5)))
    strategy, _ = run(
        grid, rounds=1, dp=DistributedDP(noise_multiplier=0.1, max_cohort=20, noise_clients=4)
    )
    assert all("noise_multiplier >= 0.5" in why for why in strategy.history[0].dropped.values())


def test_a_node_that_asks_for_noise_refuses_a_collapsing_plan(monkeypatch):
    """The mod checks the plan it builds (ClientPolicy.check_plan) before training: here
    every plan is made to look collapsing, and every node refuses the round."""
    monkeypatch.setattr(
        "secfl.integrations._flower_wire.ddg_collapse", lambda noise, n_clients: "forced"
    )
    grid = LoopbackGrid(client_app(SecflClientMod(min_noise_multiplier=0.5)))
    dp = DistributedDP(noise_multiplier=1.0, max_cohort=20, noise_clients=4)
    strategy, _ = run(grid, rounds=1, dp=dp)
    (record,) = strategy.history
    assert record.aborted is not None
    assert record.dropped
    assert all("plan collapses" in why for why in record.dropped.values())


def test_node_state_holds_no_secret_after_the_round():
    grid = LoopbackGrid(client_app())
    run(grid, rounds=1, protocol="secagg")
    for node in grid.partition:
        state = grid.context(node).state.config_records[STATE_KEY]
        assert state["status"] == "done"
        assert state["last_round"] == 1
        assert state["seed"] == state["value"] == state["transcript"] == b""


def test_a_node_never_runs_the_same_round_twice():
    grid = LoopbackGrid(client_app())
    run(grid, rounds=1, protocol="secagg")
    first = next(m for m in grid.sent if "setup" in m.content.config_records[RECORD_KEY])
    again = Message(
        RecordDict(dict(first.content.items())),
        dst_node_id=first.metadata.dst_node_id,
        message_type=first.metadata.message_type,
    )
    again.metadata.__dict__["_message_id"] = uuid4().hex
    reply = grid.deliver(again)
    assert reply.has_error()
    assert "never run twice" in (reply.error.reason or "")


def test_out_of_order_or_forged_requests_are_refused_and_end_the_round_on_that_node():
    grid = LoopbackGrid(client_app())
    strategy = SecureAggregation(FedAvg(), protocol="secagg", clip_bound=5.0, stage_timeout=0.05)
    stop = {}

    def hook(server_round, phase, nodes):
        if phase == "mask":
            stop["nodes"] = nodes
            raise KeyboardInterrupt  # freeze the round after the share phase

    strategy.on_stage = hook
    with pytest.raises(KeyboardInterrupt):
        strategy.start(grid=grid, initial_arrays=initial(), num_rounds=1)
    node = stop["nodes"][0]
    late = Message(
        RecordDict({RECORD_KEY: ConfigRecord({"v": 1, "round": 0, "request": b"old"})}),
        dst_node_id=node,
        message_type="train",
    )
    late.metadata.__dict__["_message_id"] = uuid4().hex
    reply = grid.deliver(late)
    assert "no round 0 in progress" in (reply.error.reason or "")
    assert grid.context(node).state.config_records[STATE_KEY]["status"] == "active"
    forged = Message(
        RecordDict({RECORD_KEY: ConfigRecord({"v": 1, "round": 1, "request": b"SF\x01\x99"})}),
        dst_node_id=node,
        message_type="train",
    )
    forged.metadata.__dict__["_message_id"] = uuid4().hex
    reply = grid.deliver(forged)
    assert reply.has_error()
    assert "IntegrityError" in (reply.error.reason or "")
    state = grid.context(node).state.config_records[STATE_KEY]
    assert state["status"] == "aborted"
    assert state["seed"] == b""


def test_messages_without_a_secfl_record_pass_through():
    grid = LoopbackGrid(client_app())
    node = next(iter(grid.partition))
    msg = Message(RecordDict({"arrays": initial()}), dst_node_id=node, message_type="evaluate")
    msg.metadata.__dict__["_message_id"] = uuid4().hex
    reply = grid.deliver(msg)
    assert not reply.has_error()
    assert "eval-loss" in reply.content["metrics"]


def test_misuse_raises_typed_errors(paillier_keys):
    with pytest.raises(InvalidArgument, match="Flower Strategy"):
        SecureAggregation(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="unknown protocol"):
        SecureAggregation(FedAvg(), protocol="rot13")
    with pytest.raises(InvalidArgument, match="stage_timeout"):
        SecureAggregation(FedAvg(), stage_timeout=0)
    with pytest.raises(InvalidArgument, match="distributed DP needs a secure protocol"):
        SecureAggregation(FedAvg(), protocol="plain", dp=DistributedDP())
    for dp in (DistributedDP(), DistributedDP(max_cohort=20)):  # scale or shares would follow
        with pytest.raises(  # the cohort
            InvalidArgument, match=r"add/remove-one.*DistributedDP\(max_cohort=K, noise_clients=M\)"
        ):
            SecureAggregation(FedAvg(), dp=dp)
    SecureAggregation(FedAvg(), dp=DistributedDP(neighboring=Neighboring.ZERO_OUT))
    with pytest.raises(InvalidArgument, match="not both"):
        SecureAggregation(
            FedAvg(),
            protocol="paillier",
            paillier_keys=paillier_keys,
            paillier_public_key=paillier_keys.public_key,
        )
    with pytest.raises(InvalidArgument, match="'paillier' only"):
        SecureAggregation(FedAvg(), protocol="secagg", paillier_keys=paillier_keys)
    with pytest.raises(InvalidArgument, match="protocols"):
        SecflClientMod(protocols=("rot13",))
    with pytest.raises(InvalidArgument, match="min_clients"):
        SecflClientMod(min_clients=1)


# ------------------------------------------------------------------ active threat model
IDS = (900, 17, 4_000_000_000, 3, 250)  # registry ids of partitions 0..4: any distinct u32


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Registry, dict[int, dict[str, str]]]:
    """A registry of IDS plus one client that never shows up; node configs naming the keys."""
    rng = Csprng(seed=b"flower pki".ljust(32, b"\0"))
    keys = {cid: SigningKey.generate(rng=rng) for cid in (*IDS, 77)}
    registry = Registry({cid: k.verify_key() for cid, k in keys.items()})
    registry.save(tmp_path / "registry.json")
    configs = {}
    for p, cid in enumerate(IDS):
        save_signing_key(keys[cid], tmp_path / f"client-{cid}.pem")
        configs[p] = {
            NODE_IDENTITY: str(tmp_path / f"client-{cid}.pem"),
            NODE_REGISTRY: str(tmp_path / "registry.json"),
        }
    return registry, configs


def run_active(grid: LoopbackGrid, registry: Registry, rounds: int = 1, **kwargs):
    opts = {"protocol": "secagg", "threat_model": ThreatModel.ACTIVE, "registry": registry}
    return run(grid, rounds=rounds, **opts, **kwargs)


def test_active_rounds_use_registry_ids_and_survive_a_dropout(pki):
    registry, configs = pki
    grid = LoopbackGrid(client_app(), node_config=configs)
    # n = 5: t = 3 of 4 holders (> 2/3), so one node may drop; kill it after the keys.
    strategy, seen = run_active(
        grid, registry, rounds=2, on_stage=kill_at(grid, {(2, "mask"): [2]})
    )
    r1, r2 = strategy.history
    assert list(r1.phase_seconds) == ["identify", "advertise", "share", "check", "mask",
                                      "consistency", "unmask"]  # fmt: skip
    by_node = {n: IDS[p] for n, p in grid.partition.items()}
    assert dict(r1.client_ids) == by_node
    assert r1.aborted is None
    assert r2.aborted is None
    victim = sorted(grid.partition)[2]
    assert "mask: no reply" in r2.dropped[victim]
    assert len(r2.survivors) == 4
    for record, before in ((r1, seen[0]), (r2, seen[1])):
        np.testing.assert_allclose(
            record.aggregate, expected_sum(grid, before, record.survivors), atol=1e-6
        )


def test_active_round_nodes_without_identity_or_with_another_registry_refuse(pki, tmp_path):
    registry, configs = pki
    other = tmp_path / "other.json"
    Registry({**registry.verify_keys, 78: SigningKey.generate(rng=Csprng()).verify_key()}).save(
        other
    )
    configs = {**configs, 0: {}, 1: {**configs[1], NODE_REGISTRY: str(other)}}
    grid = LoopbackGrid(client_app(), node_config=configs)
    strategy, seen = run_active(grid, registry)
    (record,) = strategy.history
    nodes = sorted(grid.partition)
    assert "has no identity" in record.dropped[nodes[0]]
    assert "registry" in record.dropped[nodes[1]]
    assert "is not this node's" in record.dropped[nodes[1]]
    # 3 of 5 left: active SecAgg with n = 5 needs t + 1 = 4 (t > 2/3 of 4 holders).
    assert record.aborted is not None
    assert "InsufficientSurvivors" in record.aborted
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])


def test_nodes_with_an_identity_refuse_a_downgrade_to_honest_but_curious(pki):
    _, configs = pki
    grid = LoopbackGrid(client_app(), node_config=configs)
    strategy, seen = run(grid, rounds=1, protocol="secagg")
    (record,) = strategy.history
    assert record.aborted is not None
    assert all("active threat model" in why for why in record.dropped.values())
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])


def test_two_nodes_claiming_one_identity_only_the_first_is_kept(pki):
    registry, configs = pki
    configs = {**configs, 4: configs[3]}  # partition 4 holds partition 3's key
    grid = LoopbackGrid(client_app(), node_config=configs)
    strategy, _ = run_active(grid, registry)
    (record,) = strategy.history
    nodes = sorted(grid.partition)
    assert "claimed first" in record.dropped[nodes[4]]
    assert record.aborted is None
    assert len(record.survivors) == 4


def test_a_key_substituted_by_the_server_is_caught_by_the_signature(pki):
    registry, configs = pki
    grid = LoopbackGrid(client_app(), node_config=configs)
    victim = sorted(grid.partition)[1]

    def substitute_a_key(msg: Message) -> None:
        record = msg.content.config_records[RECORD_KEY]
        request = record["request"]
        # KEYS (share phase, secagg-v2 0x1A): header 8 | round 8 | m 4 | count 4 | first
        # entry: id 4, point 4, then its encryption key. Flip one bit of that key, for one
        # node only.
        if msg.metadata.dst_node_id == victim and request[:4] == b"SF\x01\x1a":
            forged = bytearray(request)
            forged[8 + 8 + 4 + 4 + 4 + 4] ^= 1
            record["request"] = bytes(forged)

    grid.tamper = substitute_a_key
    strategy, seen = run_active(grid, registry)
    (record,) = strategy.history
    assert "signature verification failed" in record.dropped[victim]
    assert record.aborted is None
    np.testing.assert_allclose(
        record.aggregate, expected_sum(grid, seen[0], record.survivors), atol=1e-6
    )


def test_an_active_node_with_envelopes_that_do_not_open_is_excluded(pki, monkeypatch):
    """secagg-v3 over Flower: the node holding id IDS[1] sends every neighbour an envelope
    that does not open; its neighbours complain, the server excludes it with evidence,
    and the round completes with the other four (the simulator's path, same session)."""
    from secfl.audit.forgery import corrupt_envelopes
    from secfl.protocols.secagg import SecAggClient

    registry, configs = pki
    grid = LoopbackGrid(client_app(), node_config=configs)
    cheater = IDS[1]
    honest_on_keys = SecAggClient._on_keys

    def on_keys(self: SecAggClient, data: bytes) -> bytes:
        reply = honest_on_keys(self, data)
        if self.id != cheater:
            return reply
        return corrupt_envelopes(reply, self, set(self._peers), self._signing_key)

    monkeypatch.setattr(SecAggClient, "_on_keys", on_keys)
    strategy, seen = run_active(grid, registry)
    (record,) = strategy.history
    node = next(n for n, p in grid.partition.items() if IDS[p] == cheater)
    assert record.aborted is None
    assert record.dropped[node].startswith("excluded: sent client")
    assert node not in record.survivors
    assert len(record.survivors) == 4
    np.testing.assert_allclose(
        record.aggregate, expected_sum(grid, seen[0], record.survivors), atol=1e-6
    )


def test_active_misuse_raises_typed_errors(pki):
    registry, _ = pki
    with pytest.raises(InvalidArgument, match="needs the registry"):
        SecureAggregation(FedAvg(), protocol="secagg", threat_model=ThreatModel.ACTIVE)
    with pytest.raises(InvalidArgument, match="'secagg' \\(complete graph\\) only"):
        SecureAggregation(
            FedAvg(), protocol="secagg+", threat_model=ThreatModel.ACTIVE, registry=registry
        )
    with pytest.raises(InvalidArgument, match="used only by it"):
        SecureAggregation(FedAvg(), registry=registry, threat_model=ThreatModel.HONEST_BUT_CURIOUS)


# ------------------------------------------------------------------ Paillier key holder node
KEY_HOLDER = 5  # partition of the node that holds the Paillier private key (6 nodes)


@pytest.fixture
def paillier_files(tmp_path: Path, paillier_keys: PaillierPrivateKey):
    save_paillier_key(paillier_keys, tmp_path / "paillier.key", tmp_path / "paillier.pub")
    return load_paillier_public_key(tmp_path / "paillier.pub"), str(tmp_path / "paillier.key")


def key_holder_grid(key_path: str | None, mod=secfl_mod) -> LoopbackGrid:
    config = {KEY_HOLDER: {NODE_PAILLIER_KEY: key_path}} if key_path else {}
    return LoopbackGrid(client_app(mod), n_nodes=6, node_config=config)


def test_paillier_key_on_a_key_holder_node_sums_without_the_server_holding_it(paillier_files):
    public, key_path = paillier_files
    grid = key_holder_grid(key_path)
    strategy, seen = run(grid, rounds=2, protocol="paillier", paillier_public_key=public)
    holder = sorted(grid.partition)[KEY_HOLDER]
    assert strategy.key_holder_node == holder
    r1, r2 = strategy.history
    assert "find-key-holder" in r1.phase_seconds  # found once, then cached
    assert "find-key-holder" not in r2.phase_seconds
    for record, before in ((r1, seen[0]), (r2, seen[1])):
        assert record.aborted is None
        assert "decrypt" in record.phase_seconds
        assert holder not in record.nodes  # the key holder does not train
        assert len(record.survivors) == 5
        np.testing.assert_allclose(
            record.aggregate, expected_sum(grid, before, record.survivors), atol=1e-6
        )
    state = grid.context(holder).state.config_records[KEY_HOLDER_STATE]
    assert state["last_round"] == 2
    # The ServerApp side never had the private key: its protocol asks the node.
    for holder in (strategy, strategy.core):
        for v in vars(holder).values():
            assert not isinstance(v, PaillierPrivateKey | PaillierPrivateKey)


def test_key_holder_decrypts_once_per_round_and_only_large_enough_sums(paillier_files):
    public, key_path = paillier_files
    grid = key_holder_grid(key_path)
    run(grid, rounds=1, protocol="paillier", paillier_public_key=public)
    asked = next(m for m in grid.sent if "decrypt" in m.content.config_records[RECORD_KEY])
    again = Message(
        RecordDict(dict(asked.content.items())),
        dst_node_id=asked.metadata.dst_node_id,
        message_type="train",
    )
    again.metadata.__dict__["_message_id"] = uuid4().hex
    reply = grid.deliver(again)
    assert "already decrypted" in (reply.error.reason or "")

    # Three of five clients die before sending: the aggregator (min 2) asks for a sum of 2,
    # which the key holder refuses (its own min_clients is 3).
    grid = key_holder_grid(key_path)
    hook = kill_at(grid, {(1, "input"): [0, 1, 2]})
    strategy, seen = run(
        grid, rounds=1, protocol="paillier", paillier_public_key=public, on_stage=hook
    )
    (record,) = strategy.history
    assert record.aborted is not None
    assert "refusing to decrypt a sum of 2 inputs (allowed 3..5)" in record.aborted
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])


def test_missing_or_dead_key_holder_aborts_the_round_cleanly(paillier_files):
    public, key_path = paillier_files
    strategy, _ = run(
        key_holder_grid(None), rounds=1, protocol="paillier", paillier_public_key=public
    )
    assert "holds the Paillier private key" in (strategy.history[0].aborted or "")

    grid = key_holder_grid(key_path)
    hook = kill_at(grid, {(1, "decrypt"): [KEY_HOLDER]})
    strategy, seen = run(
        grid, rounds=2, protocol="paillier", paillier_public_key=public, on_stage=hook
    )
    r1, r2 = strategy.history
    assert "did not answer" in (r1.aborted or "")
    assert "holds the Paillier private key" in (r2.aborted or "")  # looked for it again
    for k, v in seen[2].items():
        np.testing.assert_array_equal(v, seen[0][k])
    with pytest.raises(InvalidArgument, match="'paillier' only"):
        SecureAggregation(FedAvg(), protocol="secagg", paillier_public_key=public)


def test_nodes_that_pinned_a_paillier_key_refuse_rounds_under_another(
    paillier_files, tmp_path, small_paillier_keys
):
    public, key_path = paillier_files
    other = tmp_path / "other"
    other.mkdir()
    # a different key than the strategy's
    save_paillier_key(small_paillier_keys, other / "k", other / "p")
    pinned = {NODE_PAILLIER_PUBLIC_KEY: str(tmp_path / "paillier.pub")}
    wrong = {NODE_PAILLIER_PUBLIC_KEY: str(other / "p")}
    config = {0: pinned, 1: pinned, 2: pinned, 3: wrong, 4: wrong}
    config[KEY_HOLDER] = {NODE_PAILLIER_KEY: key_path}
    grid = LoopbackGrid(client_app(), n_nodes=6, node_config=config)
    strategy, seen = run(grid, rounds=1, protocol="paillier", paillier_public_key=public)
    (record,) = strategy.history
    nodes = sorted(grid.partition)
    assert record.aborted is None
    assert sorted(record.survivors) == nodes[:3]
    for n in nodes[3:5]:
        assert "other than the one this node pinned" in record.dropped[n]
    np.testing.assert_allclose(
        record.aggregate, expected_sum(grid, seen[0], record.survivors), atol=1e-6
    )


def test_active_round_with_distributed_dp(pki):
    registry, configs = pki
    grid = LoopbackGrid(client_app(), node_config=configs)
    dp = DistributedDP(noise_multiplier=1e-3, max_cohort=20, noise_clients=5)
    strategy, seen = run_active(grid, registry, dp=dp)
    (record,) = strategy.history
    assert record.aborted is None
    assert record.epsilon is not None
    err = record.aggregate - expected_sum(grid, seen[0], record.survivors)
    assert np.max(np.abs(err)) < 0.05  # noise std 5e-3 on the sum (see the DP test above)


# ------------------------------------------------------------------ one core, two transports
COUNTS = {p: 10 + 37 * p for p in range(5)}  # example counts; 158 and 158+ are capped at 150
CAP = 150


def counting_app(replies: list[Message]) -> ClientApp:
    """The example's training, reporting partition-specific example counts; every reply a
    node sends is appended to ``replies`` (what leaves the node)."""
    app = ClientApp(mods=[_recording(replies), secfl_mod])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        p = int(context.node_config["partition-id"])
        arrays = {k: a.numpy() for k, a in msg.content["arrays"].items()}
        new, _, train_loss = task.train(arrays, p, **TRAIN)
        content = RecordDict(
            {
                "arrays": ArrayRecord({k: Array(v) for k, v in new.items()}),
                "metrics": MetricRecord({"train-loss": train_loss, "num-examples": COUNTS[p]}),
            }
        )
        return Message(content, reply_to=msg)

    return app


def _recording(replies: list[Message]):
    def mod(msg: Message, context: Context, call_next) -> Message:
        reply = call_next(msg, context)
        replies.append(reply)
        return reply

    return mod


TRAIN = {"lr": 0.05, "steps": 2}


PIPELINE_FIELDS = {f.name for f in dataclasses.fields(PipelineConfig)}


def simulate(
    rounds: int, *, paillier_keys: PaillierPrivateKey | None = None, **options
) -> tuple[np.ndarray, FederatedAveraging]:
    """The same federation in the in-memory simulator: partition p is client p.

    ``options`` are SecureAggregation's keyword arguments; the pipeline's go into the
    config's :class:`PipelineConfig`, as they mean the same on both transports.
    """
    pipeline = PipelineConfig(**{k: v for k, v in options.items() if k in PIPELINE_FIELDS})
    rest = {k: v for k, v in options.items() if k not in PIPELINE_FIELDS}
    template = task.initial_arrays()

    def local_update(idx: int, params: np.ndarray) -> tuple[np.ndarray, int]:
        arrays = {"weight": params[:-1].astype(np.float32), "bias": params[-1:].astype(np.float32)}
        new, _, _ = task.train(arrays, idx, **TRAIN)
        return np.concatenate([new["weight"], new["bias"]]), COUNTS[idx]

    initial_flat = np.concatenate([template["weight"], template["bias"]])
    fed = FederatedAveraging(
        FedAvgConfig(rounds=rounds, pipeline=pipeline, **rest),
        initial=initial_flat,
        n_clients=5,
        local_update=local_update,
        rng=Csprng(seed=bytes(32)),
        paillier_keys=paillier_keys,
    )
    fed.run()
    return fed.params, fed


VARIANTS = {
    "fixed": {},
    "adaptive+momentum": {
        "adaptive_clip": AdaptiveClipConfig(initial_bound=0.3, count_noise_stddev=0.0),
        "server_momentum": 0.6,
        "server_lr": 0.8,
    },
    "ddg": {"dp": DistributedDP(noise_multiplier=0.002, max_cohort=20, noise_clients=5)},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("weighting", [Weighting.UNIFORM, Weighting.EXAMPLES])
@pytest.mark.parametrize("protocol", SECURE)
def test_the_simulator_and_flower_train_the_same_model(protocol, weighting, variant, paillier_keys):
    """One config, one federation, two transports: the same model (to the codec's quantum;
    with DP, to the noise), the same clip bounds and the same epsilon each round."""
    options = {
        "protocol": protocol,
        "weighting": weighting,
        "example_cap": CAP,
        "clip_bound": 0.3,  # some updates are clipped
        "dropout": 0.0,
        "paillier_keys": keys_for(protocol, paillier_keys),
        **VARIANTS[variant],
    }
    rounds = 3
    sim_params, fed = simulate(rounds, **options)
    replies: list[Message] = []
    grid = LoopbackGrid(counting_app(replies))
    # Over Flower the server optimizer is the wrapped strategy's: FedAvgM's momentum and
    # learning rate must move the model as the simulator's RoundCore does.
    lr, momentum = options.pop("server_lr", 1.0), options.pop("server_momentum", 0.0)
    wrapped = FedAvgM(fraction_evaluate=0.0, server_learning_rate=lr, server_momentum=momentum)
    strategy, seen = run(grid, rounds=rounds, wrapped=wrapped, **options)
    assert [r.aborted for r in strategy.history] == [None] * rounds
    final = seen[-1]
    flower_params = np.concatenate([final["weight"], final["bias"]])
    # Each transport draws its own rounding and noise: without DP the models agree to the
    # codec's quantum (and float32), with DP to a few noise standard deviations.
    tolerance = 1e-2 if "dp" in options else 1e-5
    np.testing.assert_allclose(flower_params, sim_params, rtol=0, atol=tolerance)
    assert np.max(np.abs(sim_params)) > 30 * tolerance  # the model did move
    assert [r.epsilon for r in strategy.history] == [r.epsilon for r in fed.history]
    if "adaptive_clip" in options:
        assert strategy.core.clip_bound == pytest.approx(fed.core.clip_bound, rel=1e-6)
        assert fed.core.clip_bound != pytest.approx(0.3)
    # No node's example count left it in the clear: only the secure sum carries it.
    for reply in replies:
        for record in reply.content.metric_records.values():
            assert "num-examples" not in record


@pytest.mark.parametrize("release", [False, True])
def test_under_dp_train_metrics_stay_on_the_node_unless_released(release):
    """A node's train loss is computed from its data and not covered by epsilon."""
    replies: list[Message] = []
    app = ClientApp(mods=[_recording(replies), SecflClientMod(release_metrics_under_dp=release)])
    app.train()(example_client.train)
    strategy, _ = run(
        LoopbackGrid(app),
        rounds=1,
        dp=DistributedDP(noise_multiplier=1e-3, max_cohort=20, noise_clients=4),
    )
    assert strategy.history[0].aborted is None
    sent = [
        key for reply in replies for rec in reply.content.metric_records.values() for key in rec
    ]
    assert ("train-loss" in sent) == release
    assert "num-examples" not in sent  # never in the clear under a protected protocol


def test_a_round_above_max_cohort_fails_before_anything_is_sent():
    grid = LoopbackGrid(client_app())
    strategy, _ = run(
        grid, rounds=1, dp=DistributedDP(noise_multiplier=1e-3, max_cohort=2, noise_clients=2)
    )
    (record,) = strategy.history
    assert record.aborted is not None
    assert "nodes sampled, above DistributedDP(max_cohort=2)" in record.aborted


def test_a_fixed_size_sample_under_add_remove_is_refused_as_a_swap():
    """Spec 10.5: a strategy that trains a fixed share of the connected nodes swaps a node
    for another between add/remove neighbours; refused at construction, and a round that
    samples fewer nodes than are connected anyway releases nothing."""
    dp = DistributedDP(noise_multiplier=1e-3, max_cohort=20, noise_clients=3)
    with pytest.raises(InvalidArgument, match=r"fraction_train=0\.6.*is a swap"):
        SecureAggregation(FedAvg(fraction_train=0.6), dp=dp)
    SecureAggregation(
        FedAvg(fraction_train=0.6), dp=DistributedDP(neighboring=Neighboring.ZERO_OUT)
    )
    sampling = FedAvg(fraction_evaluate=0.0)
    grid = LoopbackGrid(client_app())
    strategy = SecureAggregation(sampling, dp=dp, stage_timeout=0.05, train_timeout=0.2)
    sampling.fraction_train = 0.6  # changed after the check: the round catches it
    strategy.start(grid=grid, initial_arrays=initial(), num_rounds=1)
    (record,) = strategy.history
    assert record.aborted is not None
    assert "3 of 5 connected nodes" in record.aborted
    assert "is a swap" in record.aborted
    assert grid.sent == []  # refused before any node was asked for anything


def test_identities_make_the_active_threat_model_the_default(pki):
    """Issue 18, item 2: wherever identities exist, a server that may lie is assumed."""
    registry, _ = pki
    with_ids = SecureAggregation(FedAvg(), registry=registry)
    assert with_ids.config.threat_model is ThreatModel.ACTIVE
    assert with_ids.config.protocol == "secagg"
    plain = SecureAggregation(FedAvg())
    assert plain.config.threat_model is ThreatModel.HONEST_BUT_CURIOUS
    assert plain.config.protocol == "secagg+"
    with pytest.raises(InvalidArgument, match="active threat model"):
        SecureAggregation(FedAvg(), registry=registry, protocol="secagg+")


def _nan_on_partition_0(msg: Message, context: Context) -> Message:
    reply = example_client.train(msg, context)
    if int(context.node_config["partition-id"]) == 0:
        arrays = reply.content["arrays"]
        reply.content["arrays"] = ArrayRecord(
            {k: Array(np.full_like(a.numpy(), np.nan)) for k, a in arrays.items()}
        )
    return reply


def _raises_on_partition_0(msg: Message, context: Context) -> Message:
    if int(context.node_config["partition-id"]) == 0:
        raise FloatingPointError("loss is NaN")
    return example_client.train(msg, context)


@pytest.mark.parametrize(
    ("train", "reason"), [(_nan_on_partition_0, "NaN"), (_raises_on_partition_0, "loss is NaN")]
)
def test_a_failing_node_under_dp_sends_zeros_and_its_share(train, reason):
    """Known issue 8 (fixed), the Flower path: with distributed DP a node whose update is
    NaN, or whose ClientApp raises on its data, takes part with zeros and its noise share
    (its data does not decide the share count); without DP it is dropped."""
    app = ClientApp(mods=[secfl_mod])
    app.train()(train)
    grid = LoopbackGrid(app)
    broken = next(node for node, part in grid.partition.items() if part == 0)
    dp = DistributedDP(noise_multiplier=1.0, neighboring=Neighboring.ZERO_OUT)
    strategy, _ = run(grid, rounds=1, dp=dp)
    (record,) = strategy.history
    assert record.aborted is None
    assert broken not in record.dropped, record.dropped
    assert broken in record.survivors
    strategy, _ = run(LoopbackGrid(app), rounds=1)
    (record,) = strategy.history
    assert broken in record.dropped
    assert reason in record.dropped[broken]
