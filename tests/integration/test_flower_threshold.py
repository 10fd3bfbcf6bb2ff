"""Threshold Paillier (paillier-sum-v2) over Flower's Message API, in process.

Five data nodes (an Ed25519 identity each, the registry, the pinned threshold public key)
and five key-holder nodes (one share each of a 3-of-5 key, and the registry) on the
loopback ``Grid`` of ``flower_loopback.py``: the strategy finds the holders, leaves them
out of training, and has any three of them decrypt the signed inputs' sum. A holder that
is down or lies (a partial whose proof fails) costs nothing while three remain, and a
liar is named. The real engine runs the same round in ``test_flower_e2e.py``.
"""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the flower extra (flwr) is not installed")

from flower_loopback import LoopbackGrid, server_identity  # noqa: F401
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg
from test_flower_inprocess import (
    as_dict,
    client_app,
    example_client,
    expected_sum,
    initial,
    kill_at,
)

from secfl import wire
from secfl.errors import InvalidArgument
from secfl.fl import Weighting
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SIGNATURE_BYTES, SigningKey
from secfl.identities import Registry, save_signing_key
from secfl.integrations.flower import (
    KEY_HOLDER_STATE,
    NODE_IDENTITY,
    NODE_PAILLIER_SHARE,
    NODE_PAILLIER_THRESHOLD_PUBLIC_KEY,
    NODE_REGISTRY,
    RECORD_KEY,
    SecflClientMod,
    SecureAggregation,
)
from secfl.protocols.paillier_threshold_messages import DecryptRequest
from secfl.protocols.secagg import ThreatModel
from secfl.threshold_keys import (
    PUBLIC_FILE,
    load_threshold_public_key,
    save_threshold_key,
    share_file,
)

DATA, HOLDERS, T = 5, 5, 3
IDS = (900, 17, 4_000_000_000, 3, 250)  # registry ids of data partitions 0..4
MOD = SecflClientMod()  # the default policy: 2048-bit keys at least, min_clients 3


def holder_partition(index: int) -> int:
    """The partition of the node holding share ``index`` (1..5): partitions 5..9."""
    return DATA + index - 1


@pytest.fixture(scope="module")
def dealt() -> tuple[tp.ThresholdPublicKey, tuple[tp.KeyShare, ...]]:
    rng = Csprng(seed=b"flower threshold".ljust(32, b"\0"))
    return tp.generate_key(bits=2048, holders=HOLDERS, threshold=T, rng=rng)


@pytest.fixture
def federation(tmp_path: Path, dealt) -> tuple[Registry, tp.ThresholdPublicKey, dict]:
    """Key files as ``secfl paillier-key --holders 5 --threshold 3`` and ``secfl
    identities`` write them, and the node config of every partition."""
    public, shares = dealt
    keys = tmp_path / "keys"
    save_threshold_key(public, shares, keys)
    rng = Csprng(seed=b"flower threshold pki".ljust(32, b"\0"))
    signing = {cid: SigningKey.generate(rng=rng) for cid in IDS}
    registry = Registry({cid: k.verify_key() for cid, k in signing.items()})
    registry.save(tmp_path / "registry.json")
    configs: dict[int, dict[str, str]] = {}
    for p, cid in enumerate(IDS):
        save_signing_key(signing[cid], tmp_path / f"client-{cid}.pem")
        configs[p] = {
            NODE_IDENTITY: str(tmp_path / f"client-{cid}.pem"),
            NODE_REGISTRY: str(tmp_path / "registry.json"),
            NODE_PAILLIER_THRESHOLD_PUBLIC_KEY: str(keys / PUBLIC_FILE),
        }
    for i in range(1, HOLDERS + 1):
        configs[holder_partition(i)] = {
            NODE_PAILLIER_SHARE: str(keys / share_file(i)),
            NODE_REGISTRY: str(tmp_path / "registry.json"),
        }
    assert load_threshold_public_key(keys / PUBLIC_FILE) == public
    return registry, public, configs


def grid_of(configs: dict, mod=MOD) -> LoopbackGrid:
    return LoopbackGrid(client_app(mod), n_nodes=DATA + HOLDERS, node_config=configs)


def run(grid: LoopbackGrid, registry, public, rounds: int = 1, **kwargs):
    opts = {
        "protocol": "paillier-threshold",
        "paillier_threshold_public_key": public,
        "registry": registry,
        "clip_bound": 5.0,
        "stage_timeout": 0.05,
        "train_timeout": 0.2,
        "weighting": Weighting.UNIFORM,
    }
    opts.update(kwargs)
    strategy = SecureAggregation(FedAvg(fraction_evaluate=0.0), **opts)
    seen: list[dict[str, np.ndarray]] = []
    strategy.start(
        grid=grid,
        initial_arrays=initial(),
        num_rounds=rounds,
        evaluate_fn=lambda r, arrays: seen.append(as_dict(arrays)),
    )
    return strategy, seen


def holder_nodes(grid: LoopbackGrid) -> dict[int, int]:
    nodes = sorted(grid.partition)
    return {i: nodes[holder_partition(i)] for i in range(1, HOLDERS + 1)}


def data_nodes(grid: LoopbackGrid) -> list[int]:
    return sorted(grid.partition)[:DATA]


def assert_exact(record, grid, before) -> None:
    assert record.aborted is None, record.aborted
    np.testing.assert_allclose(
        record.aggregate, expected_sum(grid, before, record.survivors), atol=1e-6
    )


def test_three_of_five_holders_decrypt_the_exact_sum_and_no_holder_trains(federation):
    registry, public, configs = federation
    grid = grid_of(configs)
    strategy, seen = run(grid, registry, public, rounds=2)
    r1, r2 = strategy.history
    assert list(r1.phase_seconds) == ["find-key-holders", "identify", "input", "decrypt"]
    assert list(r2.phase_seconds) == ["identify", "input", "decrypt"]  # holders kept
    for record, before in ((r1, seen[0]), (r2, seen[1])):
        assert sorted(record.nodes) == data_nodes(grid)  # the key holders did not train
        assert sorted(record.survivors) == data_nodes(grid)
        assert dict(record.key_holders) == holder_nodes(grid)
        assert dict(record.key_holder_failures) == {}
        assert dict(record.client_ids) == dict(zip(data_nodes(grid), IDS, strict=True))
        assert_exact(record, grid, before)
    for node in holder_nodes(grid).values():
        assert grid.context(node).state.config_records[KEY_HOLDER_STATE]["last_round"] == 2
    # No party of the ServerApp holds a share: every partial came from a node.
    for obj in (strategy, strategy.core):
        assert not any(isinstance(v, tp.KeyShare) for v in vars(obj).values())


def test_one_key_holder_down_the_round_still_decrypts_with_three_of_four(federation):
    registry, public, configs = federation
    grid = grid_of(configs)
    down = holder_partition(2)
    # Round 1: holder 2 dies after the inputs are in (it never answers the decryption
    # request); round 2: it is gone from the start (the probe does not find it).
    strategy, seen = run(
        grid, registry, public, rounds=2, on_stage=kill_at(grid, {(1, "decrypt"): [down]})
    )
    r1, r2 = strategy.history
    assert_exact(r1, grid, seen[0])
    assert "decrypt" in r1.key_holder_failures[2]
    assert "no reply within" in r1.key_holder_failures[2]
    assert set(r1.key_holder_failures) == {2}
    assert "find-key-holders" in r2.phase_seconds  # a holder failed: looked for them again
    assert r2.key_holder_failures == {2: "not found among the connected nodes"}
    assert 2 not in r2.key_holders
    assert_exact(r2, grid, seen[1])
    assert len(r2.survivors) == DATA


def _lying(indices: set[int]):
    """A mod in front of the secfl mod: the key holders of ``indices`` change one byte of
    their partial decryption (inside the values, so the frame still parses)."""

    def mod(msg: Message, context: Context, call_next) -> Message:
        reply = call_next(msg, context)
        share = context.node_config.get(NODE_PAILLIER_SHARE, "")
        record = reply.content.config_records.get(RECORD_KEY) if reply.has_content() else None
        if record is None or not isinstance(share, str) or "reply" not in record:
            return reply
        if not any(share.endswith(share_file(i)) for i in indices):
            return reply
        partial = bytearray(record["reply"])  # type: ignore[arg-type]
        if not partial:
            return reply
        partial[8 + 8 + 32 + 4 + 10] ^= 1  # header, round, set digest, index: a value byte
        fields = dict(record.items())
        fields["reply"] = bytes(partial)
        return Message(RecordDict({RECORD_KEY: ConfigRecord(fields)}), reply_to=msg)

    return mod


def test_a_lying_key_holder_is_named_and_the_round_decrypts_with_the_others(federation):
    registry, public, configs = federation

    def app_with_liars(indices: set[int]) -> ClientApp:
        app = ClientApp(mods=[_lying(indices), MOD])
        app.train()(example_client.train)
        return app

    grid = LoopbackGrid(app_with_liars({4}), n_nodes=DATA + HOLDERS, node_config=configs)
    strategy, seen = run(grid, registry, public)
    (record,) = strategy.history
    assert_exact(record, grid, seen[0])
    liar = holder_nodes(grid)[4]
    assert set(record.key_holder_failures) == {4}
    assert f"node {liar}: partial refused" in record.key_holder_failures[4]

    # Two liars and one holder down: two valid partials, below t = 3. The round aborts,
    # the model stays, and the liars are still named.
    grid = LoopbackGrid(app_with_liars({1, 5}), n_nodes=DATA + HOLDERS, node_config=configs)
    grid.dead.add(holder_nodes(grid)[3])
    strategy, seen = run(grid, registry, public)
    (record,) = strategy.history
    assert record.aborted is not None
    assert set(record.key_holder_failures) == {1, 3, 5}
    for i in (1, 5):
        assert "partial refused" in record.key_holder_failures[i]
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])


def test_holders_decrypt_once_per_round_and_fewer_than_t_found_aborts_before_training(
    federation,
):
    registry, public, configs = federation
    grid = grid_of(configs)
    run(grid, registry, public)
    asked = next(m for m in grid.sent if "partial" in m.content.config_records[RECORD_KEY])
    again = Message(
        RecordDict(dict(asked.content.items())),
        dst_node_id=asked.metadata.dst_node_id,
        message_type="train",
    )
    again.metadata.__dict__["_message_id"] = uuid4().hex
    reply = grid.deliver(again)
    assert "already decrypted" in (reply.error.reason or "")

    grid = grid_of(configs)
    for i in (1, 2, 3):
        grid.dead.add(holder_nodes(grid)[i])
    strategy, seen = run(grid, registry, public)
    (record,) = strategy.history
    assert "2 of the 5 threshold key holders found" in (record.aborted or "")
    assert list(record.phase_seconds) == ["find-key-holders"]  # nobody trained
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])


def test_data_nodes_encrypt_only_under_the_threshold_key_they_pinned(federation, tmp_path):
    registry, public, configs = federation
    rng = Csprng(seed=b"another threshold key".ljust(32, b"\0"))
    other, other_shares = tp.generate_key(bits=2048, holders=HOLDERS, threshold=T, rng=rng)
    save_threshold_key(other, other_shares, tmp_path / "other")
    configs = dict(configs)
    configs[0] = {k: v for k, v in configs[0].items() if k != NODE_PAILLIER_THRESHOLD_PUBLIC_KEY}
    configs[1] = {
        **configs[1],
        NODE_PAILLIER_THRESHOLD_PUBLIC_KEY: str(tmp_path / "other" / PUBLIC_FILE),
    }
    grid = grid_of(configs)
    strategy, seen = run(grid, registry, public)
    (record,) = strategy.history
    nodes = data_nodes(grid)
    assert "pinned" in record.dropped[nodes[0]]
    assert "other than the one this node pinned" in record.dropped[nodes[1]]
    assert sorted(record.survivors) == nodes[2:]
    assert_exact(record, grid, seen[0])


def test_threshold_misconfigurations_are_refused_at_construction(federation, paillier_keys):
    registry, public, _ = federation
    ok = {
        "protocol": "paillier-threshold",
        "paillier_threshold_public_key": public,
        "registry": registry,
    }
    SecureAggregation(FedAvg(), **ok)
    cases = [
        ({"paillier_threshold_public_key": None}, "needs paillier_threshold_public_key"),
        ({"registry": None}, "needs registry"),
        ({"paillier_bits": 3072}, "set paillier_bits=2048"),
        ({"paillier_keys": paillier_keys}, "no party holds the private key"),
        ({"protocol": "paillier"}, "with protocol 'paillier-threshold' only"),
    ]
    for change, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            SecureAggregation(FedAvg(), **{**ok, **change})
    with pytest.raises(InvalidArgument, match="leave threat_model unset"):
        SecureAggregation(FedAvg(), **ok, threat_model=ThreatModel.HONEST_BUT_CURIOUS)


def _forge_decrypt_requests(forge):
    """A lying ServerApp: ``forge(inputs)`` rewrites the signed inputs of every decryption
    request it sends to the key holders (``inputs``: (client id, ciphertexts, signature))."""

    def tamper(msg: Message) -> None:
        record = msg.content.config_records[RECORD_KEY]
        if "partial" not in record:
            return
        frame = record["partial"]
        assert isinstance(frame, bytes)
        _, body = wire.unframe(frame)
        count = int.from_bytes(body[12:16], "big")  # u64 round | u32 dim | u32 count
        size = (len(body) - 16) // count - 4 - SIGNATURE_BYTES
        request = DecryptRequest.from_bytes(frame, size=size, max_inputs=count)
        inputs = forge(request.inputs)
        record["partial"] = DecryptRequest(request.round_id, request.dim, inputs).to_bytes()

    return tamper


@pytest.mark.parametrize(
    ("forge", "refusal"),
    [
        # One client's ciphertext passed off as the round's sum.
        (lambda inputs: inputs[:1], "refusing to decrypt a sum of 1 signed input"),
        # One client's signed input listed again under another client's id.
        (
            lambda inputs: (inputs[0], (inputs[1][0], *inputs[0][1:]), *inputs[2:]),
            "identical",
        ),
        # ... or only under another client's id (its signature names its own id).
        (
            lambda inputs: ((inputs[1][0], *inputs[0][1:]), *inputs[2:]),
            "signature does not cover these ciphertexts",
        ),
    ],
)
def test_a_single_clients_ciphertext_disguised_as_a_sum_is_refused_by_every_holder(
    federation, forge, refusal
):
    registry, public, configs = federation
    grid = grid_of(configs)
    grid.tamper = _forge_decrypt_requests(forge)
    strategy, seen = run(grid, registry, public)
    (record,) = strategy.history
    assert record.aborted is not None
    assert "0 valid partial decryptions" in record.aborted
    assert set(record.key_holder_failures) == set(range(1, HOLDERS + 1))
    for why in record.key_holder_failures.values():
        assert "refused" in why
        assert refusal in why
    for k, v in seen[1].items():
        np.testing.assert_array_equal(v, seen[0][k])
