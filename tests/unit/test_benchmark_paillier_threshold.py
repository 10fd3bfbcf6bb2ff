"""Smoke test of ``benchmarks.paillier_threshold``: a tiny round, no timing assertions."""

from __future__ import annotations

from benchmarks import paillier_threshold as bench


def test_tiny_round_is_exact_and_reports_every_party() -> None:
    r = bench.run(quick=True, sample=3, progress=False, dim=150)
    full, first = r["round_all"], r["round_t_first"]
    assert full["correct"] is True
    assert first["correct"] is True
    assert sorted(full["holder_cpu_s"]) == [1, 2, 3, 4, 5]
    assert sorted(first["holder_cpu_s"]) == [1, 2, 3]
    assert full["ciphertexts"] == 2
    assert full["speedup_cpu"] > 0
    assert r["naive_phe"]["sample"] == 3
    text = bench.markdown(r)
    assert "extrapolated linearly" in text
    assert "key holder 5" in text
