"""The transport-neutral round core (secfl.fl.round): shapes, the client step, the server step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secfl.dp import AdaptiveClipConfig
from secfl.errors import InvalidArgument
from secfl.fl.round import RoundCore, RoundShape, Weighting, encode_update
from secfl.hazmat.rng import Csprng
from secfl.pipeline import DistributedDP, Pipeline, PipelineConfig, build_protocol
from secfl.runtime import simulate_round


def rng(i: int = 0) -> Csprng:
    return Csprng(seed=bytes([i]) * 32)


@pytest.mark.parametrize(
    ("weighted", "adaptive", "extra"), [(False, False, 0.0), (True, False, 1.0), (True, True, 1.25)]
)
def test_shape_leaves_room_for_the_slots(weighted, adaptive, extra):
    shape = RoundShape(model_dim=4, clip_bound=2.0, weighted=weighted, adaptive=adaptive)
    assert shape.input_dim == 4 + weighted + adaptive
    assert shape.pipeline_clip_bound == pytest.approx(math.sqrt(4.0 + extra))
    assert shape.pipeline_config(PipelineConfig()).clip_bound == shape.pipeline_clip_bound


@pytest.mark.parametrize(
    "changes",
    [{"model_dim": 0}, {"model_dim": 2.5}, {"clip_bound": 0.0}, {"example_cap": 0}],
)
def test_shape_refuses_bad_values(changes):
    with pytest.raises(InvalidArgument):
        RoundShape(**{"model_dim": 3, "clip_bound": 1.0, **changes})


def test_weight_is_floored_capped_and_finite():
    shape = RoundShape(model_dim=1, clip_bound=1.0, weighted=True, example_cap=100)
    assert [shape.weight(x) for x in (-3, 0, 49.9, 100, 10**6)] == [0.0, 0.0, 0.49, 1.0, 1.0]
    with pytest.raises(InvalidArgument, match="finite"):
        shape.weight(math.nan)


def pipeline_for(shape: RoundShape, n: int = 3, **config) -> Pipeline:
    base = PipelineConfig(protocol="secagg", **config)
    return Pipeline(shape.pipeline_config(base), n_clients=n, dim=shape.input_dim, rng=rng(9))


def test_clipping_never_shrinks_the_weight_or_the_indicator():
    """A huge update is clipped to C; its weight and indicator arrive intact in the sum."""
    shape = RoundShape(model_dim=4, clip_bound=0.5, weighted=True, example_cap=10, adaptive=True)
    pipe = pipeline_for(shape, n=2)
    out = encode_update(shape, pipe, np.full(4, 100.0), examples=10, rng=rng(1))
    assert out.clipped
    assert out.norm == pytest.approx(200.0)
    decoded = pipe.server_side(out.encoded)
    assert decoded[-2] == pytest.approx(1.0, abs=1e-6)  # the weight
    assert decoded[-1] == pytest.approx(-0.5, abs=1e-6)  # clipped: indicator 0 - 1/2
    assert np.linalg.norm(decoded[:-2]) == pytest.approx(0.5, abs=1e-6)


def test_encode_update_refuses_a_wrong_shape():
    shape = RoundShape(model_dim=4, clip_bound=1.0)
    with pytest.raises(InvalidArgument, match="shape"):
        encode_update(shape, pipeline_for(shape), np.zeros(5), rng=rng())


def run_round(core: RoundCore, params: np.ndarray, updates, examples):
    shape = core.shape(params.size)
    config = shape.pipeline_config(core.config)
    round_rng = rng(9)
    pipe = Pipeline(config, n_clients=len(updates), dim=shape.input_dim, rng=round_rng)
    protocol = build_protocol(pipe, rng=round_rng, paillier=core.paillier_key_pair())
    inputs = {
        i + 1: encode_update(shape, pipe, u, examples=e, rng=rng(i)).encoded
        for i, (u, e) in enumerate(zip(updates, examples, strict=True))
    }
    report = simulate_round(protocol, inputs)
    assert report.result is not None
    return core.step(
        params, pipe, shape, report.result.aggregate, survivors=len(inputs), rng=rng(7)
    )


def test_weighted_mean_and_momentum():
    core = RoundCore(
        PipelineConfig(protocol="secagg", clip_bound=10.0),
        weighting=Weighting.EXAMPLES,
        example_cap=4,
        server_momentum=0.5,
        server_lr=2.0,
    )
    params = np.zeros(2)
    updates = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([1.0, 1.0])]
    first = run_round(core, params, updates, [1, 3, 0])
    assert first.aborted is None
    mean = np.array([0.25, 0.75])  # (1*[1,0] + 3*[0,1] + 0*[1,1]) / 4
    np.testing.assert_allclose(first.params, 2.0 * mean, atol=1e-6)
    second = run_round(core, first.params, updates, [1, 3, 0])
    np.testing.assert_allclose(second.params, first.params + 2.0 * (0.5 * mean + mean), atol=1e-6)


def test_zero_total_weight_aborts_and_keeps_the_optimizer_state():
    core = RoundCore(
        PipelineConfig(protocol="secagg", clip_bound=10.0),
        weighting=Weighting.EXAMPLES,
        server_momentum=0.9,
    )
    params = np.ones(2)
    good = run_round(core, params, [np.ones(2)] * 3, [5, 5, 5])
    assert good.params is not None
    velocity = core._velocity.copy()
    bad = run_round(core, good.params, [np.ones(2)] * 3, [0, 0, 0])
    assert bad.params is None
    assert bad.aborted == "zero total weight"
    np.testing.assert_array_equal(core._velocity, velocity)


def test_adaptive_bound_moves_and_dp_is_accounted():
    core = RoundCore(
        PipelineConfig(protocol="secagg", dp=DistributedDP(noise_multiplier=1.0)),
        adaptive_clip=AdaptiveClipConfig(initial_bound=1.0),
    )
    assert core.epsilon() == 0.0
    out = run_round(core, np.zeros(3), [np.full(3, 0.01)] * 3, [1, 1, 1])
    assert out.aborted is None
    assert core.clip_bound < 1.0  # every update fit under the bound: it shrinks
    assert out.epsilon is not None
    assert out.epsilon > 0


def test_core_refuses_bad_options():
    with pytest.raises(InvalidArgument, match="server_momentum"):
        RoundCore(PipelineConfig(), server_momentum=1.0)
    with pytest.raises(InvalidArgument, match="weighting"):
        RoundCore(PipelineConfig(), weighting="examples")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="example_cap"):
        RoundCore(PipelineConfig(), example_cap=0)


def test_a_run_keeps_one_paillier_key_pair(paillier_keys):
    given = RoundCore(PipelineConfig(protocol="paillier"), paillier_keys=paillier_keys)
    assert given.paillier_key_pair() is paillier_keys
    made = RoundCore(PipelineConfig(protocol="paillier"))
    first = made.paillier_key_pair()
    assert first is not None
    assert first.public_key.bits == 2048
    assert made.paillier_key_pair() is first  # made once, then kept for the run
    out = run_round(made, np.zeros(2), [np.full(2, 0.5)] * 3, [1, 1, 1])
    assert out.aborted is None
    np.testing.assert_allclose(out.params, np.full(2, 0.5), atol=1e-6)
    assert RoundCore(PipelineConfig(protocol="secagg")).paillier_key_pair() is None
    with pytest.raises(InvalidArgument, match="'paillier' only"):
        RoundCore(PipelineConfig(protocol="secagg"), paillier_keys=paillier_keys)
    with pytest.raises(InvalidArgument, match="paillier_bits=1024"):
        RoundCore(
            PipelineConfig(protocol="paillier", paillier_bits=1024), paillier_keys=paillier_keys
        )
    with pytest.raises(InvalidArgument, match="generates Paillier keys of 2048 or 3072"):
        RoundCore(PipelineConfig(protocol="paillier", paillier_bits=512))


def test_given_small_keys_run_with_dp_in_the_simulator(small_paillier_keys):
    """The DP plan is checked before round 1 without asking for a key pair of its own."""
    from secfl.fl import FedAvgConfig, FederatedAveraging

    dp = DistributedDP(max_cohort=5, noise_clients=4)
    pipeline = PipelineConfig(protocol="paillier", paillier_bits=1024, dp=dp)
    fed = FederatedAveraging(
        FedAvgConfig(rounds=1, pipeline=pipeline),
        initial=np.zeros(4),
        n_clients=4,
        local_update=lambda i, p: (p + 0.01, 1),
        rng=rng(3),
        paillier_keys=small_paillier_keys,
    )
    (record,) = fed.run()
    assert record.aborted is None


def test_skellam_needs_zero_out_chosen_explicitly():
    """No add/remove bound for Skellam: refused, never silently accounted as zero-out."""
    from secfl.dp import Neighboring
    from secfl.pipeline import DistributedDP, DPMechanism, PipelineConfig

    skellam = DistributedDP(mechanism=DPMechanism.SKELLAM)
    with pytest.raises(InvalidArgument, match=r"neighboring=Neighboring\.ZERO_OUT"):
        RoundCore(PipelineConfig(protocol="secagg", dp=skellam))
    zero_out = DistributedDP(mechanism=DPMechanism.SKELLAM, neighboring=Neighboring.ZERO_OUT)
    core = RoundCore(PipelineConfig(protocol="secagg", dp=zero_out))
    assert core.accountant is not None
    assert core.accountant.neighboring is Neighboring.ZERO_OUT
    ddg = RoundCore(PipelineConfig(protocol="secagg", dp=DistributedDP()))
    assert ddg.accountant is not None
    assert ddg.accountant.neighboring is Neighboring.ADD_OR_REMOVE_ONE
