"""The ``secfl`` command line, through ``secfl.cli.main``: exit codes and what it prints
(``main`` returns the status, also for --help and usage errors).

Small arguments only: every test here runs in a second or two.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import pytest

import secfl
from secfl.cli import _parser, main
from secfl.protocols.paillier import PaillierProtocol
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggPhase
from secfl.runtime.scenario import Scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("simulate", "privacy", "audit", "identities", "paillier-key", "demo")
# The smallest sweep the benchmark runner accepts: one plain cell, no peers, no plots.
TINY_BENCH = [
    "--quick",
    "--protocols",
    "plain",
    "--clients",
    "4",
    "--dims",
    "10",
    "--dropouts",
    "0",
    "--dp",
    "off",
    "--repeats",
    "1",
    "--no-flower",
    "--no-phe",
    "--no-plots",
    "--no-progress",
]


# ----------------------------------------------------------------------------- bench
def test_bench_help_is_the_runners_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: secfl bench")
    for flag in ("--quick", "--out", "--protocols", "--budget"):
        assert flag in out


def test_bench_passes_its_flags_to_the_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["bench", *TINY_BENCH, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith("secfl bench --quick --protocols plain")
    assert results["grid"]["protocols"] == ["plain"]
    assert results["grid"]["clients"] == [4]
    assert results["grid"]["dims"] == [10]
    assert results["cells"]
    assert all(c["correct"] for c in results["cells"])
    assert f"wrote {out}/results.json" in capsys.readouterr().out


def test_bench_refuses_an_unknown_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--no-such-flag"]) == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_bench_writes_a_fresh_folder_in_the_working_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = _digest(ROOT / "docs" / "benchmarks")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", *TINY_BENCH]) == 0
    assert main(["bench", *TINY_BENCH]) == 0
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 2, folders  # two runs, two folders, even within one second
    for folder in folders:
        assert re.fullmatch(r"secfl-bench-quick-\d{8}-\d{6}(-\d+)?", folder.name)
        assert (folder / "results.json").is_file()
    assert _digest(ROOT / "docs" / "benchmarks") == committed


def test_make_bench_refreshes_the_committed_results_explicitly() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "-m benchmarks --out docs/benchmarks" in recipe


# ----------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", [None, *COMMANDS, "bench"])
def test_help_has_no_markup(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"] if command else ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: secfl")
    for markup in ("`", ":class:", ":func:", ":mod:", "**"):
        assert markup not in out, f"{markup!r} in the help of {command or 'secfl'}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"secfl {secfl.__version__}\n"


def _options() -> list[tuple[str, argparse.Action]]:
    parser, _ = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        (name, action)
        for name, command in sub.choices.items()
        for action in command._actions
        if action.option_strings and action.dest != "help"
    ]


def test_every_option_says_what_it_is_with_its_default_and_choices() -> None:
    for command, action in _options():
        where = f"secfl {command} {action.option_strings[0]}"
        assert action.help, where
        assert len(action.help) > 10, where
        if action.default not in (None, False):
            assert "(default: %(default)s)" in action.help, where
        for choice in action.choices or ():
            assert choice in action.help, f"{where}: choice {choice!r} is not explained"


def test_dropout_phase_help_lists_every_protocols_phases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    phases = (*PlaintextProtocol.phases, *PaillierProtocol.phases, *SecAggPhase)
    for phase in phases:
        assert re.search(rf"\b{phase}\b", out), phase
    assert "consistency (secagg with --active)" in out
    for text in ("(default: plain)", "(default: 10)", "(default: 1000)", "(default: 32)"):
        assert text in out


def test_privacy_help_explains_delta_and_mechanism(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["privacy", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "delta of the (epsilon, delta)-DP guarantee (default: 1e-05)" in out
    assert "gaussian (central Gaussian)" in out
    assert "(default: gaussian)" in out


# ----------------------------------------------------------------------------- simulate
def test_simulate_says_when_secagg_plus_planned_the_complete_graph(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["simulate", "--protocol", "secagg+", "--clients", "5", "--dim", "4", "--seed", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  protocol +secagg\+$", out, re.M)
    assert re.search(r"^  graph +complete$", out, re.M)
    assert "note: 5 clients are too few for a sparse SecAgg+ graph" in out
    assert "ran as classic SecAgg" in out

    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["protocol"] == "secagg+"
    assert data["graph"] == "complete"
    assert "complete graph" in data["note"]


def test_simulate_sparse_secagg_plus_has_no_note(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--protocol", "secagg+", "--clients", "50", "--dim", "2", "--json"]
    assert main([*argv, "--seed", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["protocol"], data["graph"]) == ("secagg+", "sparse")
    assert "note" not in data


def test_simulate_secagg_and_plain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--protocol", "secagg", "--clients", "4", "--dim", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["protocol"], data["graph"]) == ("secagg", "complete")
    assert "note" not in data
    assert main(["simulate", "--clients", "3", "--dim", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["protocol"] == "plain"
    assert "graph" not in data


def test_simulate_is_the_same_round_on_each_engine(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--protocol", "secagg+", "--clients", "30", "--dim", "8", "--seed", "4"]
    argv += ["--dropout", "0.2", "--dropout-phase", "share", "--json"]
    runs = {}
    for engine in ("serial", "processes"):
        assert main([*argv, "--engine", engine]) == 0
        runs[engine] = json.loads(capsys.readouterr().out)
    assert main([*argv, "--workers", "3"]) == 0  # processes by default
    runs["default"] = json.loads(capsys.readouterr().out)
    assert (runs["default"]["engine"], runs["default"]["workers"]) == ("processes", 3)
    assert runs["serial"]["workers"] == 1
    same = ("dropped", "correct", "aborted", "bytes_up_per_client", "bytes_down_per_client")
    for key in same:
        assert runs["serial"][key] == runs["processes"][key] == runs["default"][key], key
    assert runs["serial"]["dropped"] == 6
    assert len(runs["default"]["worker_peak_rss_bytes"]) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "serial", "--workers", "2"], "workers goes with engine 'processes' or"),
        (["--address", "head:6379"], "an address names a Ray cluster"),
        (["--workers", "0"], "workers must be an integer >= 1"),
    ],
)
def test_simulate_refuses_engine_options_that_do_not_fit(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["simulate", "--clients", "3", "--dim", "2", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("secfl: error: InvalidArgument: ")
    assert message in err


def test_simulate_help_describes_the_engines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "{serial,processes,ray}" in out
    assert "(default: processes)" in out
    assert "needs the ray extra" in out
    assert "--address ADDRESS" in out
    assert "--timeout SECONDS" in out


def test_simulate_refuses_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--clients", "3", "--bogus", "1"]) == 2
    assert "unrecognized arguments: --bogus 1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- privacy
def test_privacy_refuses_a_noise_multiplier_and_a_target_epsilon(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["privacy", "--noise-multiplier", "1", "--target-epsilon", "5"]) == 2
    err = capsys.readouterr().err
    assert "secfl privacy: error: argument --target-epsilon: not allowed with argument " in err
    assert "--noise-multiplier" in err


def test_privacy_needs_one_of_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["privacy"]) == 2
    assert "one of the arguments --noise-multiplier --target-epsilon is required" in (
        capsys.readouterr().err
    )


def test_privacy_refuses_distributed_options_with_the_gaussian_mechanism(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["privacy", "--noise-multiplier", "1", "--clients", "50", "--bits", "20"]) == 2
    err = capsys.readouterr().err
    assert "secfl privacy: error: argument --clients, --bits: applies to --mechanism ddg" in err


def test_privacy_reports_epsilon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["privacy", "--noise-multiplier", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["noise_multiplier"] == 1.0
    assert data["epsilon"] > 0
    assert "clients" not in data
    argv = ["privacy", "--mechanism", "ddg", "--noise-multiplier", "1", "--clients", "50"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["clients"], data["bits"], data["dimension"]) == (50, 32, 10_000)


# ----------------------------------------------------------------------------- audit
def _properties(data: dict[str, object]) -> object:
    protocols = data["protocols"]
    assert isinstance(protocols, dict)
    for report in protocols.values():
        for p in report["properties"]:
            p.pop("seconds")
    return protocols


def test_audit_prints_the_seed_it_drew_and_how_to_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit", "--protocol", "plain", "--examples", "3"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"seed (\d+), drawn\)", out)
    assert match, out
    seed = match.group(1)
    assert f"replay: secfl audit --protocol plain --examples 3 --seed {seed}\n" in out + "\n"

    assert main(["audit", "--protocol", "plain", "--examples", "3", "--json"]) == 0
    drawn = json.loads(capsys.readouterr().out)
    assert isinstance(drawn["seed"], int)
    assert drawn["seed_drawn"] is True
    assert drawn["replay"].endswith(f"--seed {drawn['seed']}")

    # The replay runs the same examples.
    argv = ["audit", "--protocol", "plain", "--examples", "3", "--json"]
    assert main([*argv, "--seed", str(drawn["seed"])]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["seed"] == drawn["seed"]
    assert replayed["seed_drawn"] is False
    assert _properties(replayed) == _properties(drawn)


# ----------------------------------------------------------------------------- grammar
def test_one_client_is_singular() -> None:
    sc = Scenario(protocol="secagg", clients=3, dim=2, dropout=0.67, dropout_phase="advertise")
    report, _ = run_scenario(sc)
    assert report.aborted is not None
    assert "only 1 client advertised keys" in report.aborted


def test_privacy_warns_when_a_ddg_plan_collapses(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["privacy", "--mechanism", "ddg", "--noise-multiplier", "1", "--clients", "2000"]
    argv += ["--bits", "14", "--dimension", "4096", "--sampling-rate", "0.05", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "Skellam" in out["warning"]
    assert "warning: weak plan" in captured.err


def test_privacy_refuses_skellam_under_add_remove(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["privacy", "--mechanism", "skellam", "--noise-multiplier", "1"]
    assert main([*argv, "--neighboring", "add-remove"]) == 2
    assert "use --mechanism ddg" in capsys.readouterr().err
