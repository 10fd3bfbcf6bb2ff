"""End-to-end federated training with torch: the user's own model and train loop."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from secfl.cli import main  # noqa: E402
from secfl.errors import InvalidArgument  # noqa: E402
from secfl.fl import FedAvgConfig, Weighting  # noqa: E402
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
    # dropout 0.5 of 3 clients -> 1 drops; SecAgg with 3 clients needs all 3 (t + 1 = 3)
    pipeline = PipelineConfig(protocol="secagg", clip_bound=5.0)
    cfg = FedAvgConfig(rounds=1, pipeline=pipeline, dropout=0.5)
    history = federated_train(model, data, train, config=cfg, rng=Csprng(seed=bytes(32)))
    assert history[0].aborted is not None
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


def test_demo_cli_smoke(capsys, tmp_path):
    pytest.importorskip("sklearn")
    png = tmp_path / "acc.png"
    assert main(["demo", "--json", "--rounds", "1", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [v["protocol"] for v in out["variants"]]
    assert names == ["plain", "secagg+", "paillier", "secagg+"]
    assert [v["dp"] for v in out["variants"]] == [False, False, False, True]
    assert out["variants"][-1]["epsilon"] > 0
    assert out["variants"][0]["epsilon"] is None
    for v in out["variants"]:
        assert set(v) >= {
            "name",
            "protocol",
            "dp",
            "final_accuracy",
            "seconds",
            "mb_sent",
            "epsilon",
        }
    assert png.stat().st_size > 1000


def test_dp_federation_reports_growing_epsilon():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = toy_data(n_clients=10)
    pipeline = PipelineConfig(protocol="secagg+", clip_bound=5.0, dp=DistributedDP())
    cfg = FedAvgConfig(rounds=3, pipeline=pipeline, sampling_rate=0.8)
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
            protocol="secagg", dp=DistributedDP(noise_multiplier=0.3) if dp else None
        ),
        adaptive_clip=AdaptiveClipConfig(initial_bound=0.01, learning_rate=0.5),
    )
    history = federated_train(nn.Linear(2, 1), data, train, config=cfg, rng=Csprng(seed=bytes(32)))
    bounds = [r.clip_bound for r in history]
    assert all(r.aborted is None for r in history)
    assert bounds[0] == pytest.approx(0.01)
    assert bounds[-1] > bounds[0] * 2
    assert history[0].fraction_clipped == 1.0
