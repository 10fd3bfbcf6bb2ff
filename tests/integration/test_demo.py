"""``secfl demo``: like-for-like rows, and the DP variant's sampled (amplified) epsilon."""

import dataclasses
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from secfl.cli import main
from secfl.demo import VARIANTS, DemoSettings, make_model, train_variants
from secfl.dp.accounting import PoissonSampledEvent, RdpAccountant
from secfl.hazmat.rng import Csprng
from secfl.pipeline import Pipeline

# ~24 clients a round: only a tiny dropout rate makes losing a round to dropouts as unlikely
# as add/remove DP needs (1e-9 x delta over the run); the default rate is for ~96 a round.
SMALL = DemoSettings(n_clients=60, sampling_rate=0.5, rounds=3, simulated_dropout=1e-6)


@pytest.fixture(scope="module")
def small_run():
    return train_variants(SMALL, progress=False)


def test_rows_are_like_for_like(small_run):
    results, warm = small_run
    assert [r.variant for r in results] == list(VARIANTS)
    assert warm > 0  # the warm-up ran before, and apart from, every timed row
    configs = [r.config for r in results]
    for c in configs:  # everything but the noise is the same in every variant
        assert c.sampling_rate == SMALL.sampling_rate
        assert c.clients_per_round is None
        assert c.dropout == SMALL.dropout > 0  # the plaintext baseline drops clients too
        assert c.simulated_dropout == SMALL.simulated_dropout > 0  # each on its own coin
        assert c.rounds == SMALL.rounds
        assert c.server_momentum == SMALL.server_momentum
        assert c.pipeline.clip_bound == SMALL.clip_bound
        assert c.pipeline.bits == SMALL.bits
        assert dataclasses.replace(c.pipeline, protocol="secagg+", dp=None) == dataclasses.replace(
            configs[0].pipeline, protocol="secagg+", dp=None
        )
    for r in results:
        assert len(r.history) == SMALL.rounds
        for rec in r.history:
            assert rec.aborted is None
            assert rec.survivors == rec.sampled - rec.dropped
    # Without noise the variants draw the same randomness: the same clients sampled and
    # dropped each round, and the same sum, hence the same model.
    plain = [(x.sampled, x.dropped, x.metrics["accuracy"]) for x in results[0].history]
    for r in results[1:3]:
        assert [(x.sampled, x.dropped, x.metrics["accuracy"]) for x in r.history] == plain


def test_dp_epsilon_is_accounted_with_sampling(small_run):
    results, _ = small_run
    (dp_run,) = [r for r in results if r.variant.dp]
    config = dp_run.config
    dp = config.pipeline.dp
    assert dp is not None
    assert config.sampling_rate is not None
    assert config.sampling_rate < 1
    dim = sum(p.numel() for p in make_model().parameters())
    sampled, full = RdpAccountant(), RdpAccountant()
    for rec in dp_run.history:
        pipeline = Pipeline(
            config.pipeline,
            n_clients=rec.sampled,
            dim=dim,
            dropout=config.dropout,
            rng=Csprng(seed=bytes(32)),
        )
        event = pipeline.dp_event(survivors=rec.survivors)
        assert event is not None
        sampled.compose(PoissonSampledEvent(config.sampling_rate, event))
        full.compose(event)
    reported = dp_run.history[-1].epsilon
    assert reported == pytest.approx(sampled.get_epsilon(dp.delta), rel=1e-9)
    assert reported < full.get_epsilon(dp.delta)  # amplification by sampling is in it
    for r in results:
        if not r.variant.dp:
            assert all(rec.epsilon is None for rec in r.history)


def test_demo_json_reports_epsilon_delta_and_dropouts(capsys, tmp_path):
    png = tmp_path / "acc.png"
    assert main(["demo", "--json", "--rounds", "1", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["warmup_seconds"] > 0
    rows = out["variants"]
    assert [v["protocol"] for v in rows] == ["plain", "secagg+", "paillier", "secagg+"]
    assert [v["dp"] for v in rows] == [False, False, False, True]
    for v in rows:
        assert set(v) >= {"name", "final_accuracy", "seconds", "mb_sent", "epsilon", "delta"}
        assert [r["round"] for r in v["rounds"]] == [1]
    assert [v["dropout"] for v in rows] == [rows[0]["dropout"]] * 4
    assert [v["sampling_rate"] for v in rows] == [rows[0]["sampling_rate"]] * 4
    dp_row = rows[-1]
    assert dp_row["dp"]
    assert dp_row["epsilon"] > 0
    assert dp_row["delta"] == 1e-5
    assert all(v["epsilon"] is None and v["delta"] is None for v in rows[:3])
    assert png.stat().st_size > 1000


def test_default_dp_variant_is_private_and_close_to_plaintext():
    """The defaults' claims (epsilon <= 8 at delta 1e-5, accuracy within 5 points of the
    plaintext baseline); SecAgg+ and Paillier compute the plaintext sum exactly."""
    variants = [v for v in VARIANTS if v.protocol == "plain" or v.dp]
    results, _ = train_variants(DemoSettings(), variants=variants, progress=False)
    plain, dp = (r.history[-1] for r in results)
    assert dp.epsilon is not None
    assert dp.epsilon <= 8.0
    assert results[1].config.pipeline.dp is not None
    assert results[1].config.pipeline.dp.delta == 1e-5
    assert dp.metrics["accuracy"] >= plain.metrics["accuracy"] - 0.05
