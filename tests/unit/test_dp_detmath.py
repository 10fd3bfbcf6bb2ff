"""CPU-independent float arithmetic (secfl.dp._detmath) against plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secfl.dp import l2_norm
from secfl.dp._detmath import exp_scalar, fixed_order_sum, log, log_scalar, sin_cos_2pi

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)


def _pairwise(values: list[float]) -> float:
    """encoding-v1 section 10.1: pad to a power of two, add the halves until one is left."""
    terms = list(values) or [0.0]
    while len(terms) & (len(terms) - 1):
        terms.append(0.0)
    while len(terms) > 1:
        half = len(terms) // 2
        terms = [terms[i] + terms[i + half] for i in range(half)]
    return terms[0]


@given(st.lists(finite, max_size=300))
def test_fixed_order_sum_is_the_specified_pairwise_order(values: list[float]) -> None:
    assert fixed_order_sum(np.array(values, dtype=np.float64)) == _pairwise(values)


@given(st.lists(finite, min_size=1, max_size=300))
def test_l2_norm_is_the_specified_computation(values: list[float]) -> None:
    peak = max(abs(v) for v in values)
    expected = (
        0.0 if peak == 0 else peak * math.sqrt(_pairwise([(v / peak) * (v / peak) for v in values]))
    )
    assert l2_norm(np.array(values)) == expected


def test_fixed_order_sum_is_accurate_on_long_vectors() -> None:
    x = np.linspace(0.0, 1.0, 1_000_003) ** 2
    assert fixed_order_sum(x) == pytest.approx(math.fsum(x.tolist()), rel=1e-14)


def test_log_is_within_a_few_ulps_over_the_whole_range() -> None:
    exponents = np.linspace(-1074.0, 1023.0, 20_001)
    x = np.concatenate([2.0**exponents * 1.37, np.linspace(1e-6, 3.0, 20_001)])
    x = x[(x > 0) & np.isfinite(x)]
    ref = np.array([math.log(v) for v in x])
    err = np.abs(log(x) - ref)
    assert np.all(err <= 4 * np.spacing(np.abs(ref)) + 1e-300)
    assert log(np.array([1.0]))[0] == 0.0


def test_sin_cos_match_libm_on_the_unit_turn() -> None:
    u = np.concatenate([np.linspace(0.0, 1.0, 40_001, endpoint=False), [0.25, 0.5, 0.75]])
    s, c = sin_cos_2pi(u)
    assert np.max(np.abs(s - np.sin(2 * np.pi * u))) < 2e-15
    assert np.max(np.abs(c - np.cos(2 * np.pi * u))) < 2e-15
    assert np.all(s * s + c * c == pytest.approx(1.0, abs=1e-15))


@pytest.mark.parametrize("x", [1e-300, 0.1, 1.0, 2.0, 10.0, 1e300])
def test_scalars_agree_with_libm_to_one_ulp(x: float) -> None:
    assert abs(log_scalar(x) - math.log(x)) <= math.ulp(math.log(x))
    y = -min(x, 700.0)
    assert abs(exp_scalar(y) - math.exp(y)) <= math.ulp(math.exp(y))
