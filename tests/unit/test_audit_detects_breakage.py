"""Deliberately broken client checks make the audit fail, with a readable counterexample."""

import pytest

from secfl.audit import run_audit
from secfl.audit.properties import Budget, Tally, audit_properties
from secfl.protocols import secagg


def _hbc_property():
    (prop,) = [p for p in audit_properties("secagg") if p.name == "honest-but-curious"]
    return prop


def test_audit_fails_when_clients_stop_checking_survivor_lists(monkeypatch):
    # secagg-v2 section 6: a client refuses a survivor count below t + 1 or one that leaves
    # it out, a list naming non-neighbours or neighbours whose shares never arrived. The
    # broken client believes whatever neighbours the list names.
    monkeypatch.setattr(
        secagg.SecAggClient, "_check_survivors", lambda self, shown: frozenset(shown.neighbours)
    )
    report = run_audit(protocols=["secagg"], examples=60, seed=1)
    assert not report.passed
    (secagg_report,) = report.protocols
    failed = {r.name: r for r in secagg_report.properties if not r.passed}
    assert set(failed) <= {"honest-but-curious", "active"}
    result = next(iter(failed.values()))
    text = result.counterexample
    assert text is not None
    # what broke, in words, and the minimized schedule that breaks it
    assert "[survivor-list-rules] client" in text
    assert "accepted the survivor list" in text
    assert "state.setup(spec=SecAggSpec(" in text
    assert "schedule (last" in text
    as_json = report.to_json()
    assert as_json["passed"] is False
    props = as_json["protocols"]["secagg"]["properties"]
    assert any(p["counterexample"] and "survivor-list-rules" in p["counterexample"] for p in props)
    assert "FAILED" in report.format_text()
    assert "== counterexample: secagg / " in report.format_text()


def test_audit_catches_a_removed_overlap_refusal(monkeypatch):
    # Rule 4 of secagg-v2 section 6: refuse a list naming a neighbour whose shares never
    # arrived. Here the client believes it holds every neighbour's shares when it checks.
    real = secagg.SecAggClient._check_survivors

    def no_overlap_check(self, shown):
        held = self._held
        self._held = dict.fromkeys(self._neighbours)
        try:
            return real(self, shown)
        finally:
            self._held = held

    monkeypatch.setattr(secagg.SecAggClient, "_check_survivors", no_overlap_check)
    # It takes a withheld envelope and a round that goes on: a few hundred examples. Try a
    # few fixed seeds so that the test does not hinge on one search path.
    for seed in (1, 4, 6):
        try:
            _hbc_property().run(Budget(examples=300, seed=seed), Tally())
        except AssertionError as e:
            error = e
            break
    else:
        pytest.fail("the audit did not notice a client that stopped refusing such lists")
    assert "whose shares never arrived" in str(error)
    notes = "\n".join(getattr(error, "__notes__", []))
    assert "plan=[Deviation(" in notes  # the lying server's plan that exposes it


def test_the_same_budget_passes_with_the_checks_in_place():
    tally = Tally()
    _hbc_property().run(Budget(examples=60, seed=1), tally)
    assert tally.examples >= 60
    assert tally.steps > tally.examples
