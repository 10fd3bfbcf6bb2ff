"""End-to-end federated training with torch: the user's own model and train loop."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from secfl.errors import InvalidArgument  # noqa: E402
from secfl.fl import FedAvgConfig, FederatedAveraging, Weighting  # noqa: E402
from secfl.hazmat.rng import Csprng  # noqa: E402
from secfl.integrations.torch import ParameterLayout, federated_train  # noqa: E402
from secfl.pipeline import DistributedDP, PipelineConfig  # noqa: E402
from secfl.protocols.secagg import ThreatModel  # noqa: E402


def toy_data(n_clients=6, per_client=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.tensor([[2.0], [-1.0]])
    data = []
    for _ in range(n_clients):
        x = torch.randn(per_client, 2, generator=gen)
        data.append((x, x @ w + 0.5))
    return data


def train(model, data):
    x, y = data
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def loss(model, data):
    with torch.no_grad():
        return float(sum(nn.functional.mse_loss(model(x), y) for x, y in data) / len(data))


@pytest.mark.parametrize("protocol", ["plain", "secagg", "secagg+"])
def test_three_round_federation_learns_and_keeps_the_users_model(protocol):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = toy_data()
    before = loss(model, data)
    pipeline = PipelineConfig(protocol=protocol, clip_bound=5.0)
    cfg = FedAvgConfig(rounds=3, pipeline=pipeline, dropout=0.2)
    history = federated_train(
        model,
        data,
        train,
        config=cfg,
        evaluate=lambda m: {"loss": loss(m, data)},
        rng=Csprng(seed=bytes(32)),
    )
    assert len(history) == 3
    assert all(r.aborted is None for r in history)
    assert history[-1].metrics["loss"] < before / 2
    assert loss(model, data) == pytest.approx(history[-1].metrics["loss"])  # same object


def test_secure_and_plain_rounds_agree_up_to_quantization():
    data = toy_data()
    finals = {}
    for protocol in ("plain", "secagg"):
        torch.manual_seed(0)
        model = nn.Linear(2, 1)
        cfg = FedAvgConfig(rounds=2, pipeline=PipelineConfig(protocol=protocol, clip_bound=5.0))
        federated_train(model, data, train, config=cfg, rng=Csprng(seed=bytes(32)))
        finals[protocol] = ParameterLayout.of(model).flatten(model)
    assert np.allclose(finals["plain"], finals["secagg"], atol=1e-6)


def test_paillier_round():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = toy_data(n_clients=4)
    pipeline = PipelineConfig(protocol="paillier", clip_bound=5.0)
    cfg = FedAvgConfig(rounds=1, pipeline=pipeline)
    history = federated_train(model, data, train, config=cfg, rng=Csprng(seed=bytes(32)))
    assert history[0].aborted is None
    assert history[0].survivors == 4


def test_layout_keeps_dtype_device_and_skips_integer_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    layout = ParameterLayout.of(model)
    names = [e.name for e in layout.entries]
    assert "1.running_mean" in names
    assert "1.num_batches_tracked" not in names
    vec = layout.flatten(model) + 1.0
    layout.load_into(model, vec)
    assert model[0].weight.dtype == torch.float64
    assert np.allclose(layout.flatten(model), vec)


def test_bad_client_update_is_left_out_and_named():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = toy_data(n_clients=4)

    def sometimes_nan(m, d):
        train(m, d)
        if d is data[2]:
            with torch.no_grad():
                m.weight.fill_(float("nan"))

    cfg = FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="secagg", clip_bound=5.0))
    history = federated_train(model, data, sometimes_nan, config=cfg, rng=Csprng(seed=bytes(32)))
    assert history[0].aborted is None
    assert 2 in history[0].rejected
    assert "client 2" in history[0].rejected[2]
    assert history[0].survivors == 3


def test_failed_round_leaves_model_unchanged():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    start = ParameterLayout.of(model).flatten(model)
    data = toy_data(n_clients=3)

    def train_poisoned(m, d):  # two of three clients send NaN: too few valid updates
        train(m, d)
        if d is not data[0]:
            with torch.no_grad():
                m.bias.fill_(float("nan"))

    pipeline = PipelineConfig(protocol="secagg", clip_bound=5.0)
    cfg = FedAvgConfig(rounds=1, pipeline=pipeline)
    history = federated_train(model, data, train_poisoned, config=cfg, rng=Csprng(seed=bytes(32)))
    assert history[0].aborted == "only 1 valid client update; a secure sum needs at least 2"
    assert np.array_equal(ParameterLayout.of(model).flatten(model), start)


def test_example_weighting():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = toy_data()
    cfg = FedAvgConfig(
        rounds=2,
        pipeline=PipelineConfig(protocol="secagg+", clip_bound=5.0),
        weighting=Weighting.EXAMPLES,
        example_cap=100,
    )
    history = federated_train(model, data, train, config=cfg, rng=Csprng(seed=bytes(32)))
    assert all(r.aborted is None for r in history)


def test_config_validation():
    with pytest.raises(InvalidArgument):
        FedAvgConfig(rounds=0)
    with pytest.raises(InvalidArgument):
        FedAvgConfig(rounds=1, clients_per_round=3, sampling_rate=0.5)
    assert FedAvgConfig(rounds=1).pipeline == PipelineConfig()
    with pytest.raises(InvalidArgument, match="PipelineConfig"):
        FedAvgConfig(rounds=1, pipeline={"protocol": "secagg"})  # type: ignore[arg-type]
    active = PipelineConfig(protocol="secagg", threat_model=ThreatModel.ACTIVE)
    with pytest.raises(InvalidArgument, match="HONEST_BUT_CURIOUS"):
        FedAvgConfig(rounds=1, pipeline=active)
    with pytest.raises(InvalidArgument):
        federated_train(
            nn.Linear(2, 1), toy_data(n_clients=1), train, config=FedAvgConfig(rounds=1)
        )


def test_dp_federation_reports_growing_epsilon():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = toy_data(n_clients=10)
    dp = DistributedDP(max_cohort=11, noise_clients=8)
    pipeline = PipelineConfig(protocol="secagg+", clip_bound=5.0, dp=dp)
    cfg = FedAvgConfig(rounds=3, pipeline=pipeline)  # every client (10 are too few to sample)
    history = federated_train(model, data, train, config=cfg, rng=Csprng(seed=bytes(32)))
    eps = [r.epsilon for r in history if r.aborted is None]
    assert len(eps) >= 2
    assert all(e is not None and e > 0 for e in eps)
    assert eps == sorted(eps)


@pytest.mark.parametrize("dp", [False, True])
def test_adaptive_clipping_moves_the_bound(dp):
    from secfl.dp.clipping import AdaptiveClipConfig

    torch.manual_seed(0)
    data = toy_data(n_clients=10)
    # Updates here have norm ~1-3: a tiny initial bound clips everyone, so it must grow.
    cfg = FedAvgConfig(
        rounds=4,
        pipeline=PipelineConfig(
            protocol="secagg",
            dp=DistributedDP(noise_multiplier=0.3, max_cohort=11, noise_clients=10) if dp else None,
        ),
        adaptive_clip=AdaptiveClipConfig(initial_bound=0.01, learning_rate=0.5),
    )
    history = federated_train(nn.Linear(2, 1), data, train, config=cfg, rng=Csprng(seed=bytes(32)))
    bounds = [r.clip_bound for r in history]
    assert all(r.aborted is None for r in history)
    assert bounds[0] == pytest.approx(0.01)
    assert bounds[-1] > bounds[0] * 2
    # Under DP only the noised estimate is released (the exact count is not covered).
    assert history[0].fraction_clipped == (pytest.approx(1.0, abs=0.5) if dp else 1.0)


# ----------------------------------------------------------------- a PyTorch user's habits
def loaders(n_clients=4, sizes=None, batch_size=1000):
    """One DataLoader per client, with the given numbers of examples."""
    from torch.utils.data import DataLoader, TensorDataset

    gen = torch.Generator().manual_seed(1)
    sizes = sizes or [40] * n_clients
    out = []
    for n in sizes:
        x = torch.randn(n, 2, generator=gen)
        out.append(
            DataLoader(
                TensorDataset(x, x @ torch.tensor([[2.0], [-1.0]]) + 0.5), batch_size=batch_size
            )
        )
    return out


def loader_loss(model, loaders_):
    with torch.no_grad():
        return float(
            sum(nn.functional.mse_loss(model(x), y) for dl in loaders_ for x, y in dl)
            / len(loaders_)
        )


def test_an_optimizer_built_next_to_the_model_trains_it():
    """Case 1: the optimizer is made once, outside train(); secfl trains that very model."""
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # the common style

    def train_outside(m, loader):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.mse_loss(m(x), y).backward()
            optimizer.step()

    data = loaders()
    before = loader_loss(model, data)
    cfg = FedAvgConfig(rounds=3, pipeline=PipelineConfig(protocol="secagg", clip_bound=5.0))
    history = federated_train(model, data, train_outside, config=cfg, rng=Csprng(seed=bytes(32)))
    assert all(r.unchanged == () for r in history)
    assert loader_loss(model, data) < before / 2


def test_a_client_whose_training_changes_nothing_is_reported():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    cfg = FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="plain", clip_bound=5.0))
    with pytest.warns(UserWarning, match="all-zero update"):
        (record,) = federated_train(model, loaders(), lambda m, d: None, config=cfg)
    assert record.unchanged == (0, 1, 2, 3)


def test_evaluate_is_checked_before_round_1_and_may_return_a_number():
    """Case 2: a two-argument evaluate fails before any training; a float is accepted."""
    calls = []

    def train_counting(m, d):
        calls.append(d)

    cfg = FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="plain", clip_bound=5.0))
    with pytest.raises(InvalidArgument, match="evaluate must take one argument, the model"):
        federated_train(
            nn.Linear(2, 1), loaders(), train_counting, config=cfg, evaluate=lambda m, loader: 0.0
        )
    with pytest.raises(InvalidArgument, match="a number or a dict"):
        federated_train(
            nn.Linear(2, 1), loaders(), train_counting, config=cfg, evaluate=lambda m: "good"
        )
    assert calls == []  # nothing trained
    (record,) = federated_train(
        nn.Linear(2, 1), loaders(), train_batches, config=cfg, evaluate=lambda m: 0.25
    )
    assert record.metrics == {"metric": 0.25}


def test_examples_are_counted_in_the_dataset_not_in_batches():
    """Case 3: with batch_size=1000, clients of 10 and 1000 examples still weigh 10 : 1000."""
    from secfl.integrations.torch import _examples

    small, big = loaders(sizes=[10, 1000])
    assert (_examples(small), _examples(big)) == (10, 1000)
    assert _examples(toy_data()[0]) == 40  # a tuple of tensors: their first dimension


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (lambda: loaders(1)[0], "one element per client, got one DataLoader"),
        (lambda: (d for d in loaders()), "generator or iterator"),
        (lambda: [loaders(1)[0]], "at least 2 clients"),
    ],
)
def test_one_loader_or_a_generator_is_refused(bad, match):
    """Case 4."""
    cfg = FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="plain"))
    with pytest.raises(InvalidArgument, match=match):
        federated_train(nn.Linear(2, 1), bad(), train, config=cfg)


def train_batches(m, loader):
    for batch in loader:
        train(m, batch)


def test_a_malformed_update_is_left_out_and_the_round_goes_on():
    """Case 5: as the guide says, the client is named in `rejected`, the round goes on."""
    torch.manual_seed(0)
    data = loaders(5)

    def train_breaking_client_0(m, loader):
        if loader is data[0]:
            with torch.no_grad():
                m.weight.fill_(float("nan"))
        else:
            train_batches(m, loader)

    cfg = FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="secagg", clip_bound=5.0))
    (record,) = federated_train(nn.Linear(2, 1), data, train_breaking_client_0, config=cfg)
    assert record.aborted is None
    assert set(record.rejected) == {0}
    assert "NaN" in record.rejected[0]
    assert record.survivors == 4


def test_a_wrong_shape_update_is_left_out_in_the_simulator():
    def local_update(idx, params):
        return (np.zeros(params.size + 1) if idx == 0 else params + 0.1), 1

    fed = FederatedAveraging(
        FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="secagg")),
        initial=np.zeros(3),
        n_clients=4,
        local_update=local_update,
        rng=Csprng(seed=bytes(32)),
    )
    (record,) = fed.run()
    assert record.aborted is None
    assert "shape" in record.rejected[0]
    np.testing.assert_allclose(fed.params, np.full(3, 0.1), atol=1e-6)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PipelineConfig(bits=2), "bits=2"),
        (lambda: PipelineConfig(bits=100), "bits=100"),
        (lambda: PipelineConfig(bits=32.0), "bits must be an int"),
        (lambda: FedAvgConfig(rounds=2.5), "rounds must be a whole number"),
        (lambda: FedAvgConfig(rounds=2, dropout=0.6), "too high for secagg\\+"),
        (lambda: PipelineConfig(dp="ddg"), "DistributedDP"),
    ],
)
def test_configs_are_validated_at_construction_in_their_own_words(make, match):
    """Case 6 and 7: refused when built, naming an option the user can set."""
    with pytest.raises(InvalidArgument, match=match):
        make()


def test_a_dropout_secagg_cannot_survive_is_refused_before_training():
    cfg = FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="secagg"), dropout=0.4)
    with pytest.raises(InvalidArgument, match="leaves 3 survivors"):
        federated_train(nn.Linear(2, 1), loaders(5), train_batches, config=cfg)
    with pytest.raises(InvalidArgument, match="config must be a FedAvgConfig"):
        federated_train(nn.Linear(2, 1), loaders(5), train_batches, config=None)


def test_progress_by_default_quiet_on_request_and_on_round_called(capsys):
    """Case 8: a line per round on stderr; quiet=True silences it; on_round still runs."""
    cfg = FedAvgConfig(rounds=2, pipeline=PipelineConfig(protocol="plain", clip_bound=5.0))
    seen = []
    federated_train(
        nn.Linear(2, 1),
        loaders(),
        train_batches,
        config=cfg,
        evaluate=lambda m: {"loss": 1.0},
        on_round=seen.append,
    )
    err = capsys.readouterr().err
    assert "secfl round 1/2: 4/4 clients, loss 1" in err
    assert "secfl round 2/2" in err
    assert [r.round for r in seen] == [1, 2]
    federated_train(nn.Linear(2, 1), loaders(), train_batches, config=cfg, quiet=True)
    assert capsys.readouterr().err == ""


def test_a_seed_reproduces_the_model_bytes():
    """Case 8: same seed (and torch seed) -> identical model bytes, with DP noise."""
    dp = DistributedDP(max_cohort=7, noise_clients=5)
    pipeline = PipelineConfig(protocol="secagg+", clip_bound=5.0, dp=dp)
    cfg = FedAvgConfig(rounds=2, pipeline=pipeline)

    def run(seed):
        torch.manual_seed(0)
        model = nn.Linear(2, 1)
        federated_train(model, loaders(6), train_batches, config=cfg, seed=seed, quiet=True)
        return ParameterLayout.of(model).flatten(model).tobytes()

    assert run(7) == run(7)
    assert run(7) != run(8)
    with pytest.raises(InvalidArgument, match="seed or rng"):
        federated_train(nn.Linear(2, 1), loaders(), train_batches, config=cfg, seed=1, rng=Csprng())


def test_target_epsilon_solves_the_noise_and_is_met():
    """Case 9: a target epsilon in the config; the accountant picks the noise multiplier."""
    from secfl.fl import FederatedAveraging

    dp = DistributedDP(noise_multiplier=None, max_cohort=58, noise_clients=30)
    cfg = FedAvgConfig(
        rounds=3,
        pipeline=PipelineConfig(protocol="secagg", clip_bound=1.0, dp=dp),
        sampling_rate=0.5,
        target_epsilon=8.0,
    )
    fed = FederatedAveraging(
        cfg,
        initial=np.zeros(4),
        n_clients=60,
        local_update=lambda i, p: (p + 0.01, 1),
        rng=Csprng(seed=bytes(32)),
    )
    z = fed.config.pipeline.dp.noise_multiplier
    assert z is not None
    assert 0 < z < 20
    history = fed.run()
    assert history[-1].epsilon is not None
    assert history[-1].epsilon <= 8.0 * 1.05  # solved for a pessimistic round size


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_epsilon": 8.0}, "target_epsilon solves the noise multiplier"),
        ({"target_epsilon": 8.0, "dp": DistributedDP()}, "target_epsilon solves"),
        ({"dp": DistributedDP(noise_multiplier=None)}, "needs FedAvgConfig\\(target_epsilon"),
    ],
)
def test_target_epsilon_and_noise_multiplier_are_not_both_given(kwargs, match):
    dp = kwargs.pop("dp", None)
    with pytest.raises(InvalidArgument, match=match):
        FedAvgConfig(rounds=2, pipeline=PipelineConfig(protocol="secagg", dp=dp), **kwargs)


def test_a_weak_epsilon_is_warned_about_once():
    from secfl.fl import FederatedAveraging

    cfg = FedAvgConfig(
        rounds=3,
        pipeline=PipelineConfig(
            protocol="secagg", dp=DistributedDP(noise_multiplier=0.3, max_cohort=6, noise_clients=5)
        ),
    )
    fed = FederatedAveraging(
        cfg,
        initial=np.zeros(4),
        n_clients=5,
        local_update=lambda i, p: (p + 0.01, 1),
        rng=Csprng(seed=bytes(32)),
    )
    with pytest.warns(UserWarning, match="a weak guarantee") as caught:
        fed.run()
    assert len([w for w in caught if "epsilon" in str(w.message)]) == 1


def test_encoding_and_dp_time_is_reported_apart_from_the_protocol():
    """Case 13: DP encoding is not hidden from the cost report."""
    pipeline = PipelineConfig(
        protocol="secagg", clip_bound=5.0, dp=DistributedDP(max_cohort=5, noise_clients=4)
    )
    cfg = FedAvgConfig(rounds=1, pipeline=pipeline)
    (record,) = federated_train(nn.Linear(2, 1), loaders(4), train_batches, config=cfg, quiet=True)
    assert record.encode_seconds > 0
    assert record.crypto_seconds > 0


def test_a_dp_plan_that_cannot_fit_is_refused_before_training_in_the_users_words():
    """Case 7: DP at bits=8 names options the user has (bits, noise, clients)."""
    from secfl.errors import EncodingOverflow

    pipeline = PipelineConfig(
        protocol="secagg", bits=8, dp=DistributedDP(max_cohort=21, noise_clients=20)
    )
    cfg = FedAvgConfig(rounds=1, pipeline=pipeline)
    data = [(torch.randn(4, 1000), torch.randn(4, 1)) for _ in range(20)]
    model = nn.Linear(1000, 1)
    trained = []
    with pytest.raises(EncodingOverflow, match=r"does not fit bits=8.*raise bits"):
        federated_train(model, data, lambda m, d: trained.append(d), config=cfg)
    assert trained == []
