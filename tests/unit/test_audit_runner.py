import json

import pytest

from secfl.audit import PROTOCOLS, AuditUnavailable, _hypothesis, run_audit
from secfl.errors import InvalidArgument, SecflError


def test_plain_audit_report_shape():
    report = run_audit(protocols=["plain"], examples=5, seed=3)
    assert report.passed
    data = report.to_json()
    json.dumps(data)
    assert data["passed"] is True
    assert list(data["protocols"]) == ["plain"]
    props = data["protocols"]["plain"]["properties"]
    assert [p["name"] for p in props] == [
        "schedule",
        "wire-fuzz",
        "client-forgery",
        "request-forgery",
    ]
    for p in props:
        assert {"name", "examples", "passed", "counterexample"} <= set(p)
        assert p["examples"] >= 5
        assert p["counterexample"] is None
    assert props[0]["steps"] > 0
    text = report.format_text()
    assert "PASSED" in text
    assert "schedule" in text
    assert "wire-fuzz" in text


def test_seeded_runs_are_reproducible():
    a = run_audit(protocols=["plain"], examples=5, seed=11).to_json()
    b = run_audit(protocols=["plain"], examples=5, seed=11).to_json()
    for data in (a, b):
        data.pop("seconds")
        for p in data["protocols"]["plain"]["properties"]:
            p.pop("seconds")
    assert a == b


def test_every_protocol_has_properties():
    from secfl.audit.properties import audit_properties

    for name in PROTOCOLS:
        props = audit_properties(name)
        assert props
        assert all(p.checked and "\n" not in p.checked for p in props)
        assert len({p.name for p in props}) == len(props)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocols": ["nope"]},
        {"protocols": []},
        {"protocols": "plain"},
        {"examples": 0},
        {"examples": True},
        {"seed": -1},
    ],
)
def test_arguments_are_validated(kwargs):
    with pytest.raises(InvalidArgument):
        run_audit(**kwargs)


def test_missing_hypothesis_is_a_clear_error(monkeypatch):
    def no_hypothesis(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(_hypothesis.importlib, "import_module", no_hypothesis)
    with pytest.raises(AuditUnavailable, match=r"pip install 'secfl\[dev\]'") as info:
        run_audit(protocols=["plain"], examples=1)
    assert isinstance(info.value, SecflError)
    assert isinstance(info.value, ImportError)


def test_an_unseeded_run_draws_and_reports_its_seed(monkeypatch):
    """Without a seed, run_audit draws one for Hypothesis and reports it (so the run can
    be replayed); the fixed-seed statistical checks stay on seed 0, as before."""
    from secfl.audit import properties

    seen = []

    def fake(protocol):
        def run(budget, tally):
            seen.append((budget.seed, budget.stats_seed))
            tally.examples = 1

        return [properties.AuditProperty(protocol, "fake", "records its budget", run)]

    monkeypatch.setattr(properties, "audit_properties", fake)
    report = run_audit(protocols=["plain"], examples=1)
    assert isinstance(report.seed, int)
    assert report.seed_drawn
    assert seen == [(report.seed, 0)]
    assert (
        report.replay_command == f"secfl audit --protocol plain --examples 1 --seed {report.seed}"
    )
    assert report.to_json()["replay"] == report.replay_command
    assert f"seed {report.seed}, drawn)" in report.format_text()

    seen.clear()
    again = run_audit(protocols=["plain"], examples=1, seed=report.seed)
    assert not again.seed_drawn
    assert seen == [(report.seed, report.seed)]
    assert run_audit(examples=1, seed=5).replay_command == "secfl audit --examples 1 --seed 5"


def test_fixed_seed_checks_use_the_stats_seed():
    from secfl.audit.properties import Budget, Tally, _fixed

    seeds = []
    run = _fixed(lambda trials, seed: seeds.append(seed) or "", per_trial=1, cap=3)
    run(Budget(examples=2, seed=9, stats_seed=0), Tally())
    run(Budget(examples=2, seed=9), Tally())
    run(Budget(examples=2), Tally())
    assert seeds == [0, 9, 0]


def test_one_failed_property_is_singular():
    from secfl.audit import AuditReport, PropertyResult, ProtocolReport

    bad = PropertyResult("p", "checks", 1, 0, False, "AssertionError: no", 0.0)
    report = AuditReport((ProtocolReport("plain", (bad,)),), examples=1, seed=3)
    text = report.format_text()
    assert "FAILED (1 property)" in text
    assert "budget 1 example per property, seed 3" in text
