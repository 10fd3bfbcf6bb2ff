"""The mutation harness (tools/mutation): its mutants, their ids, and a few audit kills."""

import ast
from pathlib import Path

import pytest

from tools.mutation import harness
from tools.mutation.equivalent import EQUIVALENT
from tools.mutation.mutants import OPERATORS, SCOPE, apply, enumerate_mutants, mutants_of_source

ROOT = Path(__file__).resolve().parents[2]

_SOURCE = b"""
class ProtocolAbort(Exception): ...
class IntegrityError(Exception): ...
class InvalidArgument(Exception): ...

def check(v, peers, seen, count, holds, rng, noise, key):
    if v not in peers or v in seen:
        raise IntegrityError("unexpected")
    if count != len(holds):
        raise ProtocolAbort("count")
    if count < 3:
        raise InvalidArgument("hygiene: not a security check")
    try:
        key.verify(b"sig", _advertise_message(round_id, v))
    except ValueError:
        raise IntegrityError("bad signature") from None
    seed = rng.bytes(32)
    child = rng.spawn()
    q = count
    q += noise.sample(rng=rng)
    return seed, child, gaussian(3, stddev=2.0, rng=rng)
"""


def _by_operator(source: bytes = _SOURCE) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in mutants_of_source("x.py", source):
        out.setdefault(m.operator, []).append(m.replacement)
    return out


def test_every_operator_fires_on_its_pattern_and_only_there():
    ops = _by_operator()
    assert set(ops) == set(OPERATORS)
    assert ops["guard"] == ["False", "False"]  # not the InvalidArgument guard
    assert sorted(ops["guard-or"]) == ["v in seen", "v not in peers"]
    assert sorted(ops["guard-bound"]) == ["count < len(holds)", "count > len(holds)"]
    assert ops["swallow"] == ["pass"]
    assert ops["drop-call"] == ["pass"]  # key.verify(...)
    assert ops["rng-zero"] == ["bytes(32)"]
    assert ops["unbind"] == ["0", "0"]  # round_id and v in the signed message
    assert ops["noise-drop"] == ["0"]  # the draw added to q, not the one returned
    assert ops["noise-shrink"] == ["(2.0) / 2"]
    assert len(ops["rng-fixed"]) == 3  # spawn() and two rng= arguments


def test_ids_are_stable_under_edits_elsewhere():
    before = {m.id: m.original for m in mutants_of_source("x.py", _SOURCE)}
    edited = b"import os\n\n\ndef other():\n    return 1\n" + _SOURCE
    after = {m.id: m.original for m in mutants_of_source("x.py", edited)}
    assert before == after


def test_the_real_scope_enumerates_deterministically_and_every_mutant_applies():
    first = enumerate_mutants(ROOT)
    again = enumerate_mutants(ROOT)
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.id for m in first}) == len(first) > 200
    assert {m.path for m in first} <= set(SCOPE)
    sources = {p: (ROOT / p).read_bytes() for p in SCOPE}
    for m in first:
        mutated = apply(m, sources[m.path])
        assert mutated != sources[m.path]
        # lines keep their numbers, so tracebacks and coverage still point at the original
        assert mutated.count(b"\n") == sources[m.path].count(b"\n"), m.id
        ast.parse(mutated)
    ids = {m.id for m in first}
    assert set(EQUIVALENT) <= ids, "an equivalent mutant's id no longer exists"
    assert "secfl/hazmat/sign.py::VerifyKey.verify::drop-call#0" in ids
    assert "secfl/protocols/secagg.py::SecAggClient._on_keys::guard-or#1" in ids


def test_apply_refuses_a_source_that_changed():
    (m,) = [m for m in mutants_of_source("x.py", _SOURCE) if m.operator == "swallow"]
    with pytest.raises(ValueError, match="changed"):
        apply(m, _SOURCE.replace(b"bad signature", b"bad sig"))


def test_every_module_in_scope_has_tests_mapped():
    assert set(harness.TESTS) >= {p for p in SCOPE if (ROOT / p).exists()}
    for files in harness.TESTS.values():
        for f in files:
            assert (ROOT / f).exists(), f


# Each mutant below removes one protection that only a property added with the harness catches;
# the audit (the named property alone, a small budget) must fail on it. About 20 s in all.
_KILLS = [
    # a client accepts a key list that reuses a key (secagg state machine, reused-key)
    ("secfl/protocols/secagg.py::SecAggClient._on_keys::guard#6", "secagg/honest-but-curious"),
    # the server accepts an UNMASK that reveals one owner's share twice (client-forgery)
    ("secfl/protocols/secagg.py::SecAggServer._recv_unmask::guard#3", "secagg/client-forgery"),
    # every client's self-mask seed b_u is zero (fresh-randomness)
    ("secfl/protocols/secagg.py::SecAggClient.__init__::rng-zero#0", "secagg/fresh-randomness"),
    # a client's distributed-DP noise share is never added (dp-noise)
    ("secfl/pipeline.py::Pipeline.client_side::noise-drop#0", "secagg/dp-noise"),
    # the honest-but-curious threshold bound t > holders / 2 is not enforced (parameter-bounds)
    ("secfl/protocols/secagg.py::SecAggConfig.__post_init__::guard#9", "secagg/parameter-bounds"),
]


@pytest.mark.parametrize(("mutant_id", "prop"), _KILLS)
def test_the_audit_kills_a_mutant_that_removes_a_protection(mutant_id, prop):
    (mutant,) = [m for m in enumerate_mutants(ROOT) if m.id == mutant_id]
    args = ["--examples", "40", "--seed", "1", "--only", prop]
    killed, _, err = harness._run(None, "audit", args, 300)
    assert killed is not None, err
    assert killed["killed"] is False, f"the unmutated code fails {prop}: {killed}"
    result, _, err = harness._run(mutant, "audit", args, 300)
    assert result is not None, err
    assert result["killed"] is True, f"{prop} missed {mutant.describe()}"
    assert result["by"] == prop
