import math

import pytest

from secfl.errors import InvalidArgument
from secfl.protocols.graphs import _log2_binom_tail, neighbourhoods, plan_secagg_plus

SEED = bytes(32)


@pytest.mark.parametrize(("n", "k"), [(10, 2), (10, 4), (31, 8), (100, 20)])
def test_harary_graph_is_k_regular_and_symmetric(n, k):
    g = neighbourhoods(range(1, n + 1), degree=k, seed=SEED)
    assert set(g) == set(range(1, n + 1))
    for c, nbrs in g.items():
        assert len(nbrs) == k
        assert c not in nbrs
        assert all(c in g[v] for v in nbrs)


def test_graph_depends_on_seed_only():
    a = neighbourhoods([5, 1, 9, 3, 7, 2], degree=2, seed=SEED)
    assert a == neighbourhoods([1, 2, 3, 5, 7, 9], degree=2, seed=SEED)
    others = [neighbourhoods(range(1, 30), degree=4, seed=bytes([i]) * 32) for i in range(3)]
    assert others[0] != others[1] or others[1] != others[2]


def test_complete_graph_when_degree_large_or_none():
    g = neighbourhoods(range(1, 6), degree=None, seed=SEED)
    assert g[1] == {2, 3, 4, 5}
    assert neighbourhoods(range(1, 6), degree=4, seed=SEED) == g


@pytest.mark.parametrize("k", [0, 3, -2])
def test_bad_degree(k):
    with pytest.raises(InvalidArgument):
        neighbourhoods(range(1, 10), degree=k, seed=SEED)


def test_binomial_tail_matches_exact_sum():
    k, p, a = 20, 0.3, 9
    exact = sum(math.comb(k, i) * p**i * (1 - p) ** (k - i) for i in range(a, k + 1))
    assert math.isclose(2 ** _log2_binom_tail(k, p, a), exact, rel_tol=1e-9)


def test_plan_meets_its_bounds_and_grows_logarithmically():
    plans = {n: plan_secagg_plus(n, dropout=0.1, corrupt=0.1) for n in (1000, 10**4, 10**6)}
    for n, plan in plans.items():
        assert plan.degree is not None
        assert plan.threshold > plan.degree / 2
        assert plan.log2_correctness_failure <= -30 - math.log2(n)
        assert plan.log2_privacy_failure <= -40 - math.log2(n)
    assert plans[10**6].degree < 2 * plans[1000].degree  # O(log n), not O(n)


def test_plan_rejects_impossible_rates():
    with pytest.raises(InvalidArgument, match=r"0\.5"):
        plan_secagg_plus(100, dropout=0.3, corrupt=0.25)
    with pytest.raises(InvalidArgument):
        plan_secagg_plus(1, dropout=0.1, corrupt=0.1)
