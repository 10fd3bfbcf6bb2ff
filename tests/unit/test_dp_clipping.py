import math

import numpy as np
import pytest

from secfl.dp import (
    AdaptiveClipConfig,
    AdaptiveClipper,
    clip_l2,
    clip_per_layer,
    l2_norm,
    per_layer_l2_bound,
    update_noise_multiplier,
)
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng


def test_within_bound_is_unchanged_copy():
    x = np.array([3.0, 4.0])
    res = clip_l2(x, bound=5.0)
    assert not res.was_clipped
    assert res.norm == 5.0
    assert np.array_equal(res.clipped, x)
    assert res.clipped is not x


def test_clips_to_bound_and_keeps_direction():
    x = np.array([3.0, 4.0, 0.0])
    res = clip_l2(x, bound=1.0)
    assert res.was_clipped
    assert res.norm == pytest.approx(5.0)
    assert l2_norm(res.clipped) <= 1.0
    assert np.allclose(res.clipped, x / 5.0, rtol=1e-12)


def test_float32_keeps_dtype_and_bound_in_float32():
    x = np.full(1000, 0.1, dtype=np.float32)
    res = clip_l2(x, bound=0.3)
    assert res.clipped.dtype == np.float32
    assert l2_norm(res.clipped) <= 0.3
    assert l2_norm(res.clipped) > 0.3 * (1 - 1e-5)


def test_huge_entries_do_not_overflow():
    x = np.array([1e300, -1e300, 1e300])
    res = clip_l2(x, bound=2.0)
    assert math.isfinite(res.norm)
    assert res.norm == pytest.approx(math.sqrt(3) * 1e300)
    assert np.allclose(res.clipped, np.array([1, -1, 1]) * 2 / math.sqrt(3))


@pytest.mark.parametrize(
    "bad", [np.array([1.0, np.nan]), np.array([np.inf]), np.array([1, 2]), np.array(["a"])]
)
def test_rejects_bad_input(bad):
    with pytest.raises(InvalidArgument):
        clip_l2(bad, bound=1.0)


@pytest.mark.parametrize("bound", [0.0, -1.0, math.inf, math.nan, True])
def test_rejects_bad_bound(bound):
    with pytest.raises(InvalidArgument):
        clip_l2(np.ones(3), bound=bound)


def test_per_layer_clipping():
    tensors = {"w": np.full((2, 2), 2.0), "b": np.array([0.1, 0.1])}
    res = clip_per_layer(tensors, bounds={"w": 1.0, "b": 1.0})
    assert res.clipped == frozenset({"w"})
    assert res.norms["w"] == pytest.approx(4.0)
    assert res.tensors["w"].shape == (2, 2)
    assert l2_norm(res.tensors["w"]) <= 1.0
    assert np.array_equal(res.tensors["b"], tensors["b"])
    assert res.fraction_clipped == 0.5
    assert per_layer_l2_bound({"w": 3.0, "b": 4.0}) == pytest.approx(5.0)


def test_per_layer_names_must_match():
    with pytest.raises(InvalidArgument, match="missing"):
        clip_per_layer({"w": np.ones(2), "b": np.ones(2)}, bounds={"w": 1.0})
    with pytest.raises(InvalidArgument, match="unknown"):
        clip_per_layer({"w": np.ones(2)}, bounds={"w": 1.0, "typo": 1.0})


def _round(clipper, norms, *, rng=None):
    results = [clipper.clip(np.array([n])) for n in norms]
    total = sum(clipper.unclipped_indicator(r) for r in results)
    if rng is not None:
        total = clipper.noise_sum(total, rng=rng)
    return clipper.update(noised_indicator_sum=total, n_clients=len(norms))


def test_adaptive_bound_grows_when_everything_is_clipped():
    clipper = AdaptiveClipper(AdaptiveClipConfig(initial_bound=1.0, target_quantile=0.5))
    report = _round(clipper, [10.0] * 8)
    assert report.unclipped_fraction == 0.0
    assert report.fraction_clipped == 1.0
    assert report.bound == 1.0
    assert report.next_bound == pytest.approx(math.exp(0.2 * 0.5))
    assert clipper.bound > 1.0


def test_adaptive_bound_shrinks_when_nothing_is_clipped():
    clipper = AdaptiveClipper(
        AdaptiveClipConfig(initial_bound=1.0, target_quantile=0.8, learning_rate=0.5)
    )
    report = _round(clipper, [0.1] * 8)
    assert report.unclipped_fraction == 1.0
    assert report.fraction_clipped == 0.0
    assert clipper.bound == pytest.approx(math.exp(-0.5 * 0.2))


def test_adaptive_bound_converges_to_the_quantile():
    rng = Csprng(seed=bytes(32))
    norms = np.linspace(0.01, 10.0, 200)  # the 0.3-quantile is about 3.0
    clipper = AdaptiveClipper(
        AdaptiveClipConfig(
            initial_bound=0.1, target_quantile=0.3, learning_rate=0.3, count_noise_stddev=1.0
        )
    )
    for _ in range(150):
        _round(clipper, norms, rng=rng)
    assert 2.5 < clipper.bound < 3.5
    assert len(clipper.reports) == 150
    assert clipper.reports[-1].round == 149
    assert abs(clipper.reports[-1].fraction_clipped - 0.7) < 0.1


def test_adaptive_clamps_and_validates():
    cfg = AdaptiveClipConfig(initial_bound=1.0, max_bound=1.05)
    clipper = AdaptiveClipper(cfg)
    _round(clipper, [5.0] * 4)
    assert clipper.bound == 1.05
    for bad in (
        {"initial_bound": 0.0},
        {"initial_bound": 1.0, "target_quantile": 1.0},
        {"initial_bound": 1.0, "learning_rate": 0.0},
        {"initial_bound": 1.0, "count_noise_stddev": -1.0},
        {"initial_bound": 1.0, "min_bound": 2.0},
    ):
        with pytest.raises(InvalidArgument):
            AdaptiveClipConfig(**bad)
    with pytest.raises(InvalidArgument):
        clipper.update(noised_indicator_sum=1.0, n_clients=0)
    with pytest.raises(InvalidArgument):
        AdaptiveClipper(object())  # type: ignore[arg-type]


def test_update_noise_multiplier_splits_budget():
    z_u = update_noise_multiplier(1.0, count_noise_stddev=5.0)
    assert (z_u**-2 + (2 * 5.0) ** -2) ** -0.5 == pytest.approx(1.0)
    assert z_u > 1.0
    with pytest.raises(InvalidArgument, match="count_noise_stddev"):
        update_noise_multiplier(1.0, count_noise_stddev=0.4)
