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
    assert [p["name"] for p in props] == ["schedule", "wire-fuzz"]
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
