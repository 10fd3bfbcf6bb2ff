"""Adversarial state machines of secfl.audit, run under the loaded Hypothesis profile.

ci: 60 examples per machine, 25 steps each (the whole file runs in about 15 s on
2 cores); dev: the profile's 50; thorough: the profile's 2000 with 50 steps. The machines
and their invariants are documented in secfl/audit/machines.py and docs/audit.md.
"""

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from secfl.audit import machines

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
EXAMPLES = {"ci": 60}.get(PROFILE, settings.default.max_examples)
STEPS = 50 if PROFILE == "thorough" else 25

BUDGET = settings(
    settings.default,
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)


@pytest.mark.parametrize(
    "machine",
    [
        machines.PlainAudit,
        machines.SecAggHbcAudit,
        machines.SecAggActiveAudit,
        machines.SecAggPlusAudit,
        machines.PaillierAudit,
    ],
    ids=lambda m: m.__name__,
)
def test_audit_machine(machine):
    run_state_machine_as_test(machine, settings=BUDGET)
