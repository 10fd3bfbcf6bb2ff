"""Issue 18, item 2: the audit's lying server finds the withholding + split-list isolation
by search, against honest-but-curious SecAgg, and the active mode stops it."""

from __future__ import annotations

import pytest

from secfl.audit import AuditFailure, check_view
from secfl.audit.isolation import IsolationPlan, run_plan, search_isolation
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.protocols.secagg import SecAggConfig, ThreatModel


def best_plan(n: int, t: int, *, active: bool) -> IsolationPlan:
    plans = (
        search_isolation(n, t, active=active, rng=Csprng(seed=bytes([i]) * 32)) for i in (1, 2, 3)
    )
    return max(plans, key=lambda p: p.progress)


def config(n: int, t: int, *, active: bool) -> SecAggConfig:
    model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
    return SecAggConfig(bits=16, threshold=t, n_clients=n, threat_model=model)


@pytest.mark.parametrize(("n", "t"), [(6, 3), (10, 5)])
def test_the_search_finds_an_isolating_schedule_against_honest_but_curious_secagg(n, t):
    plan = best_plan(n, t, active=False)
    assert plan.progress == 1.0
    # Envelopes were withheld: the victim masks with fewer than all n - 1 others.
    assert len(plan.holds[plan.victim]) < n - 1
    transcript = run_plan(plan, config(n, t, active=False), dim=4, rng=Csprng(seed=bytes(32)))
    with pytest.raises(AuditFailure, match=f"can unmask client {plan.victim}'s input"):
        check_view(transcript)


@pytest.mark.parametrize(("n", "t"), [(7, 5), (10, 7)])
def test_the_active_mode_leaves_the_search_nothing(n, t):
    plan = best_plan(n, t, active=True)
    assert plan.progress < 0.5
    transcript = run_plan(plan, config(n, t, active=True), dim=4, rng=Csprng(seed=bytes(32)))
    check_view(transcript)  # no input unmasked, whatever the plan


def test_the_honest_schedule_is_where_the_search_starts_and_bad_sizes_are_refused():
    plan = search_isolation(5, 3, active=False, rng=Csprng(seed=bytes(32)), steps=0)
    assert all(plan.holds[w] == plan.shown[w] == set(range(1, 6)) - {w} for w in range(1, 6))
    with pytest.raises(InvalidArgument, match="2 <= t < n"):
        search_isolation(3, 3, active=False, rng=Csprng(seed=bytes(32)))
    with pytest.raises(InvalidArgument, match="complete graph"):
        run_plan(
            plan, SecAggConfig(bits=16, threshold=3, n_clients=5, degree=4), dim=4, rng=Csprng()
        )
