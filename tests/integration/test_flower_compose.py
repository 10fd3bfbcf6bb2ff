"""SecureAggregation composes with the wrapped Flower strategy, or refuses it.

Each strategy of the FedAvg family runs twice on the same federation (five nodes with
different example counts, a FedProx-aware training function): bare, on the nodes' plain
replies, and wrapped by :class:`SecureAggregation`. The final models must agree: with
``protocol="plain"`` at 64 bits to float32 precision, with a protected protocol to the
codec's quantum. Every strategy that needs the individual updates is refused at
construction, in words that name the secure alternative.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the flower extra (flwr) is not installed")

from flower_loopback import LoopbackGrid, server_identity  # noqa: F401
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import (
    Bulyan,
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
    MultiKrum,
    QFedAvg,
    Strategy,
)

from secfl.errors import InvalidArgument
from secfl.fl import Weighting
from secfl.integrations.flower import SecflClientMod, SecureAggregation

FEATURES, ROUNDS = 6, 3
COUNTS = {p: 20 + 13 * p for p in range(5)}  # unequal: FedAvg weights by them
ALL_PROTOCOLS = ("plain", "secagg", "secagg+", "paillier")


def _data(p: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(500 + p)
    x = rng.normal(size=(COUNTS[p], FEATURES)) + 0.3 * p
    y = x @ np.linspace(-1, 1, FEATURES) + 0.2 * p
    return x, y


def _train(msg: Message, context: Context) -> Message:
    """Two steps of gradient descent on the node's data, with FedProx's proximal term when
    the strategy sends ``proximal-mu``."""
    p = int(context.node_config["partition-id"])
    x, y = _data(p)
    start = msg.content["arrays"]["w"].numpy().astype(np.float64)
    mu = float(msg.content["config"].get("proximal-mu", 0.0))
    w = start.copy()
    for _ in range(2):
        grad = 2.0 * x.T @ (x @ w - y) / len(y) + mu * (w - start)
        w = w - 0.02 * grad
    loss = float(np.mean((x @ w - y) ** 2))
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(w.astype(np.float32))}),
            "metrics": MetricRecord({"train-loss": loss, "num-examples": COUNTS[p]}),
        }
    )
    return Message(content, reply_to=msg)


def _app(*mods) -> ClientApp:
    app = ClientApp(mods=list(mods))
    app.train()(_train)
    return app


def _initial() -> ArrayRecord:
    return ArrayRecord({"w": Array(np.zeros(FEATURES, np.float32))})


def _final(strategy: Strategy, app: ClientApp) -> np.ndarray:
    result = strategy.start(grid=LoopbackGrid(app), initial_arrays=_initial(), num_rounds=ROUNDS)
    return result.arrays["w"].numpy().astype(np.float64)


STRATEGIES = {
    "FedAvg": lambda: FedAvg(fraction_evaluate=0.0),
    "FedProx": lambda: FedProx(fraction_evaluate=0.0, proximal_mu=2.0),
    "FedAvgM": lambda: FedAvgM(
        fraction_evaluate=0.0, server_learning_rate=0.7, server_momentum=0.9
    ),
    "FedAdam": lambda: FedAdam(fraction_evaluate=0.0, eta=0.05, beta_1=0.9, beta_2=0.99),
    "FedYogi": lambda: FedYogi(fraction_evaluate=0.0, eta=0.05, beta_1=0.9, beta_2=0.99),
    "FedAdagrad": lambda: FedAdagrad(fraction_evaluate=0.0, eta=0.05),
}


# The codec's quantum at clip bound 10: about 1e-8 at 64 bits (float32 precision decides),
# about 1e-7 at 32 bits (observed: up to 1.4e-6 after FedAdagrad's division by sqrt(v)).
@pytest.mark.parametrize(
    ("protocol", "bits", "tolerance"),
    [("plain", 64, 1e-7), ("secagg+", 32, 1e-5), ("paillier", 32, 1e-5)],
)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_the_wrapped_strategy_trains_the_same_model_as_the_bare_one(
    name, protocol, bits, tolerance, paillier_keys
):
    bare = _final(STRATEGIES[name](), _app())
    secure = SecureAggregation(
        STRATEGIES[name](),
        protocol=protocol,
        bits=bits,
        clip_bound=10.0,  # no update is clipped: the bare strategy does not clip
        dropout=0.0,
        stage_timeout=0.05,
        train_timeout=0.2,
        paillier_keys=paillier_keys if protocol == "paillier" else None,
    )
    wrapped = _final(secure, _app(SecflClientMod(protocols=ALL_PROTOCOLS)))
    assert [r.aborted for r in secure.history] == [None] * ROUNDS
    np.testing.assert_allclose(wrapped, bare, rtol=0, atol=tolerance)
    assert np.max(np.abs(bare)) > 100 * tolerance  # the model did move


def test_the_strategys_server_optimizer_is_not_dropped():
    """The issue's case: FedAdam with a vanishing server step stays where it started."""
    secure = SecureAggregation(
        FedAdam(fraction_evaluate=0.0, eta=1e-9),
        protocol="secagg+",
        clip_bound=10.0,
        dropout=0.0,
        stage_timeout=0.05,
        train_timeout=0.2,
    )
    final = _final(secure, _app(SecflClientMod()))
    assert [r.aborted for r in secure.history] == [None] * ROUNDS
    assert np.max(np.abs(final)) < 1e-6
    plain_fedavg = _final(FedAvg(fraction_evaluate=0.0), _app())
    assert np.max(np.abs(plain_fedavg)) > 0.1  # what dropping FedAdam's step would give


def test_weighting_follows_the_strategys_key():
    """FedAvg(weighted_by_key=...) weights by that metric, inside the secure sum."""

    def train_by_shots(msg: Message, context: Context) -> Message:
        reply = _train(msg, context)
        metrics = reply.content["metrics"]
        metrics["shots"] = 1 + 3 * int(context.node_config["partition-id"])
        metrics["num-examples"] = 1  # must not be the weight
        return reply

    def app(*mods) -> ClientApp:
        a = ClientApp(mods=list(mods))
        a.train()(train_by_shots)
        return a

    bare = _final(FedAvg(fraction_evaluate=0.0, weighted_by_key="shots"), app())
    secure = SecureAggregation(
        FedAvg(fraction_evaluate=0.0, weighted_by_key="shots"),
        protocol="secagg",
        clip_bound=10.0,
        dropout=0.0,
        stage_timeout=0.05,
        train_timeout=0.2,
    )
    assert secure.weighting is Weighting.EXAMPLES
    assert secure.weight_key == "shots"
    np.testing.assert_allclose(_final(secure, app(SecflClientMod())), bare, atol=1e-5)


def _dp_server_fixed() -> Strategy:
    return DifferentialPrivacyServerSideFixedClipping(
        FedAvg(), noise_multiplier=1000.0, clipping_norm=1.0, num_sampled_clients=10
    )


REFUSED = {
    "DifferentialPrivacyServerSideFixedClipping": (_dp_server_fixed, "DistributedDP"),
    "DifferentialPrivacyServerSideAdaptiveClipping": (
        lambda: DifferentialPrivacyServerSideAdaptiveClipping(
            FedAvg(), noise_multiplier=1.0, num_sampled_clients=10, clipped_count_stddev=5.0
        ),
        "adaptive_clip",
    ),
    "DifferentialPrivacyClientSideFixedClipping": (
        lambda: DifferentialPrivacyClientSideFixedClipping(
            FedAvg(), noise_multiplier=1.0, clipping_norm=1.0, num_sampled_clients=10
        ),
        "DistributedDP",
    ),
    "DifferentialPrivacyClientSideAdaptiveClipping": (
        lambda: DifferentialPrivacyClientSideAdaptiveClipping(
            FedAvg(), noise_multiplier=1.0, num_sampled_clients=10, clipped_count_stddev=5.0
        ),
        "DistributedDP",
    ),
    "FedMedian": (FedMedian, "clip_bound"),
    "FedTrimmedAvg": (FedTrimmedAvg, "clip_bound"),
    "Krum": (Krum, "clip_bound"),
    "MultiKrum": (MultiKrum, "clip_bound"),
    "Bulyan": (Bulyan, "clip_bound"),
    "QFedAvg": (lambda: QFedAvg(client_learning_rate=0.1), "clip_bound"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_strategies_that_need_individual_updates_are_refused(name):
    make, alternative = REFUSED[name]
    with pytest.raises(InvalidArgument, match=name) as e:
        SecureAggregation(make(), protocol="secagg+")
    assert alternative in str(e.value)


class _Reweighting(FedAvg):
    """Unknown to secfl: an aggregate_train that may need the individual updates."""

    def aggregate_train(self, server_round, replies):
        return super().aggregate_train(server_round, list(replies)[:1])


class _Declared(FedAvg):
    """A server step on the average only, declared so."""

    secfl_composable = True

    def aggregate_train(self, server_round, replies):
        arrays, metrics = super().aggregate_train(server_round, replies)
        assert arrays is not None
        return ArrayRecord({"w": Array(arrays["w"].numpy() * 0.5)}), metrics


def test_an_unknown_aggregate_train_is_refused_unless_declared_composable():
    with pytest.raises(InvalidArgument, match="overrides aggregate_train"):
        SecureAggregation(_Reweighting(), protocol="secagg+")
    secure = SecureAggregation(
        _Declared(fraction_evaluate=0.0),
        protocol="secagg+",
        clip_bound=10.0,
        dropout=0.0,
        stage_timeout=0.05,
        train_timeout=0.2,
    )
    bare = _final(_Declared(fraction_evaluate=0.0), _app())
    np.testing.assert_allclose(_final(secure, _app(SecflClientMod())), bare, atol=1e-5)


def test_a_strategy_outside_the_fedavg_family_is_refused():
    class Custom(Strategy):
        def configure_train(self, *a):
            return []

        def aggregate_train(self, *a):
            return None, None

        def configure_evaluate(self, *a):
            return []

        def aggregate_evaluate(self, *a):
            return None

        def summary(self):
            pass

    with pytest.raises(InvalidArgument, match="FedAvg family"):
        SecureAggregation(Custom(), protocol="secagg+")


def test_an_aborted_round_leaves_the_strategys_state_alone():
    """Too many dropouts: no server step, so FedAvgM's momentum is not fed a stale model."""
    strategy = FedAvgM(fraction_evaluate=0.0, server_momentum=0.9)
    secure = SecureAggregation(
        strategy, protocol="secagg", clip_bound=10.0, stage_timeout=0.05, train_timeout=0.2
    )
    app = _app(SecflClientMod(min_clients=3))
    grid = LoopbackGrid(app, n_nodes=5)
    grid.dead.update(sorted(grid.partition)[:3])  # 2 of 5 answer: below every threshold
    grid.get_node_ids = lambda: list(grid.partition)  # type: ignore[method-assign]
    seen: list[np.ndarray] = []
    secure.start(
        grid=grid,
        initial_arrays=_initial(),
        num_rounds=1,
        evaluate_fn=lambda r, arrays: seen.append(arrays["w"].numpy()),
    )
    assert "InsufficientSurvivors" in str(secure.history[0].aborted)
    assert strategy.momentum_vector is None
    np.testing.assert_array_equal(seen[-1], np.zeros(FEATURES))  # after round 1
