"""Hypothesis properties of the DP building blocks."""

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secfl.dp import (
    AccountingMethod,
    GaussianEvent,
    RandomizedHadamard,
    clip_l2,
    conditional_round,
    epsilon_for_noise_multiplier,
    l2_norm,
    required_bits_with_noise,
    rounded_l2_bound,
)
from secfl.encoding import required_bits
from secfl.hazmat.rng import Csprng

finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
bounds = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)


@st.composite
def float_vectors(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    elements = finite32 if dtype == np.float32 else finite64
    return draw(hnp.arrays(dtype, st.integers(1, 64), elements=elements))


@given(x=float_vectors(), bound=bounds)
def test_clip_norm_bound_holds_for_any_input(x, bound):
    res = clip_l2(x, bound=bound)
    assert res.clipped.dtype == x.dtype
    assert res.clipped.shape == x.shape
    assert l2_norm(res.clipped) <= bound
    assert res.was_clipped == (l2_norm(x) > bound)
    if not res.was_clipped:
        assert np.array_equal(res.clipped, x)


@given(x=float_vectors(), bound=st.floats(min_value=1e-3, max_value=1e3))
def test_clip_preserves_direction(x, bound):
    norm = l2_norm(x)
    assume(norm > 0 and math.isfinite(norm))
    y = clip_l2(x, bound=bound).clipped.astype(np.float64)
    ny = l2_norm(y)
    # Directions agree to the output dtype's precision (entries tiny relative to the peak
    # may flush to zero in float32, which moves the direction by at most ~sqrt(d) ulps).
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    assume(ny > 0)
    unit_x = x.astype(np.float64) / norm
    assert np.abs(y / ny - unit_x).max() <= tol
    # And the clipped vector is as long as allowed (not shrunk more than rounding needs).
    assert ny >= min(norm, bound) * (1 - 1e-5)


@given(
    x=hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)),
    seed=st.binary(min_size=32, max_size=32),
)
def test_rotation_round_trip_and_norm(x, seed):
    rot = RandomizedHadamard(dimension=x.size, seed=seed)
    y = rot.forward(x)
    scale = max(1.0, float(np.abs(x).max()))
    assert abs(l2_norm(y) - l2_norm(x)) <= 1e-12 * scale * math.sqrt(x.size) * 10
    assert np.allclose(rot.inverse(y), x, rtol=0, atol=1e-12 * scale * 10)


@given(
    n=st.integers(1, 10_000),
    max_abs=st.floats(1e-6, 1e6),
    scale_bits=st.integers(-20, 40),
    noise=st.integers(0, 2**40),
)
def test_required_bits_with_noise_is_monotone_extension(n, max_abs, scale_bits, noise):
    base = required_bits(n, max_abs, scale_bits)
    with_noise = required_bits_with_noise(
        n_clients=n, max_abs=max_abs, scale_bits=scale_bits, noise_bound=noise
    )
    assert with_noise >= base
    # The total fits: n * (floor(c 2^s) + 1) + noise < 2^(bits - 1).
    total = n * (math.floor(math.ldexp(max_abs, scale_bits)) + 1) + noise
    assert total < 2 ** (with_noise - 1)


@given(
    x=hnp.arrays(np.float64, st.integers(1, 64), elements=st.floats(-50, 50)),
    seed=st.integers(0, 255),
    beta=st.sampled_from([0.0, 0.01, math.exp(-0.5), 0.9]),
)
def test_conditional_round_never_exceeds_bound(x, seed, beta):
    norm = l2_norm(x)
    assume(norm > 0)
    bound = rounded_l2_bound(l2_bound=norm, dimension=x.size, beta=beta)
    q = conditional_round(x, norm_bound=bound, rng=Csprng(seed=bytes([seed]) * 32))
    assert float(np.sqrt(np.sum(q.astype(np.float64) ** 2))) <= bound
    assert (np.abs(q - x) < 1).all()


@given(
    z=st.floats(0.5, 20),
    factor=st.floats(1.01, 4),
    q=st.floats(1e-3, 1.0),
    rounds=st.integers(1, 5000),
)
def test_gaussian_epsilon_decreases_with_noise_and_grows_with_rounds(z, factor, q, rounds):
    def eps(zz, tt):
        return epsilon_for_noise_multiplier(
            zz,
            delta=1e-5,
            q=q,
            rounds=tt,
            mechanism=GaussianEvent,
            orders=[2.0, 4.0, 8.0, 32.0],
            method=AccountingMethod.RDP,  # the property of the RDP path (PLD: the unit tests)
        )

    base = eps(z, rounds)
    assert eps(z * factor, rounds) <= base
    assert eps(z, rounds + 1) >= base
