"""The one-run lower bound (Steinke, Nasr, Jagielski 2023) against an independent
computation: the p-value in mpmath at 50 digits, and closed forms where they exist."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from secfl.audit.one_run import (
    GUESS_FRACTIONS,
    epsilon_lower_bound,
    one_run_p_value,
    score_guesses,
)
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng


def _reference_p_value(m: int, r: int, v: int, eps: float, delta: float) -> mpmath.mpf:
    """Theorem 3 of the paper, term by term, in 50-digit arithmetic."""
    with mpmath.workdps(50):
        q = mpmath.e**eps / (1 + mpmath.e**eps)
        pmf = [mpmath.binomial(r, j) * q**j * (1 - q) ** (r - j) for j in range(r + 1)]
        tail = mpmath.fsum(pmf[v:])
        alpha = max(
            (mpmath.fsum(pmf[v - i : v]) / i for i in range(1, v + 1)), default=mpmath.mpf(0)
        )
        return min(mpmath.mpf(1), tail + 2 * m * delta * alpha)


@pytest.mark.parametrize(
    ("m", "r", "v", "eps", "delta"),
    [
        (1000, 100, 90, 1.0, 1e-5),
        (1000, 1000, 1000, 5.0, 1e-5),
        (100, 20, 15, 0.5, 0.0),
        (5000, 400, 330, 1.2, 1e-5),
        (64, 64, 0, 0.3, 1e-5),
        (256, 102, 101, 2.5, 1e-6),
    ],
)
def test_p_value_matches_a_50_digit_computation(
    m: int, r: int, v: int, eps: float, delta: float
) -> None:
    ours = one_run_p_value(m=m, r=r, v=v, epsilon=eps, delta=delta)
    ref = float(_reference_p_value(m, r, v, eps, delta))
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("r", [10, 100, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_all_correct_without_delta_has_a_closed_form(r: int, confidence: float) -> None:
    # v = r, delta = 0: the p-value is q^r, so the bound solves q^r = 1 - confidence.
    q = (1 - confidence) ** (1 / r)
    expected = math.log(q / (1 - q))
    got = epsilon_lower_bound(m=r, r=r, v=r, delta=0.0, confidence=confidence)
    assert got == pytest.approx(expected, rel=1e-9)
    assert got <= expected * (1 + 1e-12)  # the search returns a rejected epsilon, never above


def test_bound_is_a_rejected_epsilon_and_grows_with_evidence() -> None:
    kw = {"m": 1000, "delta": 1e-5, "confidence": 0.95}
    bounds = [epsilon_lower_bound(r=200, v=v, **kw) for v in (100, 130, 160, 190, 200)]
    assert bounds[0] == 0.0  # half right: no evidence at all
    assert bounds == sorted(bounds)
    assert bounds[-1] > 2.5
    for v, eps in zip((130, 160, 190, 200), bounds[1:], strict=True):
        assert one_run_p_value(m=1000, r=200, v=v, epsilon=eps, delta=1e-5) < 0.05
    # delta costs something: the bound is lower with a larger delta.
    assert epsilon_lower_bound(r=200, v=190, **{**kw, "delta": 1e-3}) < bounds[3]


def test_score_guesses_pays_for_the_choice_of_rule() -> None:
    m = 400
    included = np.arange(m) % 2 == 0
    perfect = included.astype(float)
    out = score_guesses(perfect, included, delta=0.0, confidence=0.95)
    assert out.correct == out.guesses == m  # the largest rule wins with perfect scores
    # Bonferroni: the bound is that of one rule at level 0.05 / len(GUESS_FRACTIONS).
    single = epsilon_lower_bound(
        m=m, r=m, v=m, delta=0.0, confidence=1 - 0.05 / len(GUESS_FRACTIONS)
    )
    assert out.lower_bound == single
    assert single < epsilon_lower_bound(m=m, r=m, v=m, delta=0.0, confidence=0.95)


def test_scores_that_say_nothing_give_a_small_bound() -> None:
    rng = Csprng(seed=bytes(32))
    m = 2000
    included = (rng.uint64(m) & np.uint64(1)).astype(bool)
    scores = rng.uniform(m)  # independent of who is in
    out = score_guesses(scores, included, delta=1e-5, confidence=0.95)
    assert out.lower_bound < 0.3


def test_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="v"):
        epsilon_lower_bound(m=10, r=5, v=6, delta=0.0, confidence=0.95)
    with pytest.raises(InvalidArgument, match="confidence"):
        epsilon_lower_bound(m=10, r=5, v=5, delta=0.0, confidence=95)
    with pytest.raises(InvalidArgument, match="delta"):
        one_run_p_value(m=10, r=5, v=5, epsilon=1.0, delta=1.5)
    with pytest.raises(InvalidArgument, match="same length"):
        score_guesses(np.zeros(4), np.zeros(5, dtype=bool), delta=0.0, confidence=0.95)
