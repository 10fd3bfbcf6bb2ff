"""Smoke test of the benchmark suite: ``--quick`` into a temporary directory.

No timing assertions: the machine may be loaded. The outputs must exist and parse, and
every cell the sweep did not run must be listed with a reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import runner
from benchmarks.cells import Cell


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("bench")
    rc = runner.main(["--quick", "--out", str(out), "--no-progress"])
    return rc, out


def test_quick_writes_outputs_that_parse(quick: tuple[int, Path]) -> None:
    rc, out = quick
    results = json.loads((out / "results.json").read_text())
    # Every secfl cell runs and sums correctly on this machine: a failed or incorrect cell
    # is a bug (a cell that cannot run here is "skipped", with its reason).
    assert results["failed"] == []
    assert all(cell["correct"] for cell in results["cells"])
    assert rc == 0
    assert results["command"].startswith("python -m benchmarks --quick")
    env = results["environment"]
    assert env["cores"]
    assert env["python"]
    assert "numpy" in env["versions"]
    assert len(results["load_average"]["start"]) == 3
    assert results["cells"], "the quick grid measured nothing"
    for cell in results["cells"]:
        for key in ("client_seconds", "server_seconds", "bytes_up_per_client", "expansion"):
            assert isinstance(cell[key], int | float)
        assert isinstance(cell["correct"], bool)
    for skipped in results["skipped"]:
        assert skipped["reason"]
    assert "fits" in results["scaling"]
    md = (out / "results.md").read_text()
    assert md.startswith("# ")
    assert "| protocol |" in md
    assert (out / "scaling.md").read_text().startswith("# ")
    for rel in results["plots"]:
        assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_planned_cell_is_measured_skipped_or_failed(quick: tuple[int, Path]) -> None:
    _, out = quick
    results = json.loads((out / "results.json").read_text())
    seen = {
        (c["protocol"], c["n"], c["d"], c["dropout"], c["dp"])
        for group in ("cells", "skipped", "failed")
        for c in results[group]
    }
    planned = runner.plan(runner.QUICK, flower=results["peers"]["flower"]["available"])
    missing = [c for c in planned if (c.protocol, c.n, c.d, c.dropout, c.dp) not in seen]
    assert not missing, f"silently dropped: {missing}"


def test_estimate_bounds_from_measured_cells() -> None:
    small = Cell("secagg+", 10, 1000, 0.1)
    big = Cell("secagg+", 10, 100_000, 0.1)
    assert runner.estimate(big, []) is None
    est = runner.estimate(big, [(small, 0.5)])
    assert est is not None
    assert est > 0.5
    other = Cell("plain", 10, 100_000, 0.1)
    assert runner.estimate(other, [(small, 0.5)]) is None  # other protocol: no estimate


def test_flower_missing_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import flower_peer

    monkeypatch.setattr(flower_peer.importlib.util, "find_spec", lambda name: None)
    ok, why = flower_peer.available()
    assert not ok
    assert "flwr" in why
    assert "bench" in why


def test_engines_benchmark_writes_a_row_per_engine(tmp_path: Path) -> None:
    from benchmarks import engines

    argv = ["--clients", "12", "--engines", "serial", "processes", "--out", str(tmp_path)]
    assert engines.main(argv) == 0
    data = json.loads((tmp_path / "engines.json").read_text())
    rows = {r["engine"]: r for r in data["rows"]}
    assert set(rows) == {"serial", "processes"}
    assert all(r["finished"] and r["round"]["correct"] for r in rows.values())
    assert rows["processes"]["round"]["workers"] >= 1
    section = engines.markdown_section(tmp_path / "engines.json")
    assert section.startswith("## Measured: whole rounds on each simulator engine")
    assert "| 12 | processes |" in section
    assert (tmp_path / "engines.md").read_text().startswith("# Simulator engines")


def test_secagg_scaling_benchmark_fits_exponents(tmp_path: Path) -> None:
    from benchmarks import secagg_scaling

    argv = ["--clients", "10", "30", "--dim", "5", "--out", str(tmp_path)]
    assert secagg_scaling.main(argv) == 0
    data = json.loads((tmp_path / "secagg-scaling.json").read_text())
    assert [r["clients"] for r in data["rows"]] == [10, 30]
    assert all(r["correct"] and r["engine"] == "processes" for r in data["rows"])
    rows = data["rows"]
    assert secagg_scaling.exponent(rows, "bytes_up_per_client") == pytest.approx(
        math.log(rows[1]["bytes_up_per_client"] / rows[0]["bytes_up_per_client"]) / math.log(3)
    )
    text = (tmp_path / "scaling.md").read_text()
    assert secagg_scaling.START in text
    assert secagg_scaling.END in text
    assert "Fitted exponents" in text
