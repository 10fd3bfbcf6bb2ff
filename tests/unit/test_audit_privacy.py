"""The empirical privacy audit: canaries through the real pipeline and protocols.

* The lower bound never exceeds the accounted epsilon (at 95% confidence; seeded runs).
* A deliberately broken noise path (clients' or the server's noise monkeypatched away or
  scaled down) is caught: the lower bound then exceeds the accounted epsilon.

Small runs only (each a few seconds); the default configuration runs behind ``slow``.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from secfl.audit import AuditFailure, PrivacyAuditConfig, PrivacyMechanism, run_privacy_audit
from secfl.cli import main
from secfl.dp.mechanisms import DistributedNoise, GaussianMechanism
from secfl.errors import InvalidArgument

logging.getLogger("absl").setLevel(logging.ERROR)

GAUSSIAN, DDG, SKELLAM = PrivacyMechanism.GAUSSIAN, PrivacyMechanism.DDG, PrivacyMechanism.SKELLAM


def _config(mechanism: PrivacyMechanism, z: float, canaries: int, rounds: int, protocol: str):
    return PrivacyAuditConfig(
        mechanism=mechanism,
        noise_multiplier=z,
        canaries=canaries,
        rounds=rounds,
        protocol=protocol,
    )


@pytest.mark.parametrize(
    ("mechanism", "z", "canaries", "rounds", "protocol"),
    [
        (GAUSSIAN, 0.5, 1024, 1, "plain"),
        (GAUSSIAN, 1.0, 1024, 1, "plain"),
        (GAUSSIAN, 2.0, 1024, 1, "plain"),
        (DDG, 1.0, 64, 2, "secagg+"),
        (SKELLAM, 1.0, 32, 2, "secagg"),
    ],
)
def test_lower_bound_never_exceeds_the_accounted_epsilon(
    mechanism: PrivacyMechanism, z: float, canaries: int, rounds: int, protocol: str
) -> None:
    report = run_privacy_audit(_config(mechanism, z, canaries, rounds, protocol), seed=17)
    assert report.config.confidence == 0.95
    assert 0.0 <= report.lower_bound <= report.accounted_epsilon
    assert report.passed
    report.check()  # does not raise
    if mechanism is GAUSSIAN and z <= 1.0:
        assert report.lower_bound > 1.0  # the audit has power: far from a vacuous 0


def test_more_rounds_at_less_noise_give_a_larger_bound() -> None:
    # Noise of z = 0.5 over 4 rounds is stronger evidence than one round of z = 2.
    strong = run_privacy_audit(_config(GAUSSIAN, 0.5, 1024, 4, "plain"), seed=3)
    weak = run_privacy_audit(_config(GAUSSIAN, 2.0, 1024, 1, "plain"), seed=3)
    assert weak.lower_bound < strong.lower_bound <= strong.accounted_epsilon
    assert weak.accounted_epsilon < strong.accounted_epsilon


def _no_client_noise(monkeypatch: pytest.MonkeyPatch, scale: float = 0.0) -> None:
    """Break the distributed noise: every client's share scaled by ``scale`` (0: none)."""
    original = DistributedNoise.sample

    def broken(self: DistributedNoise, *, rng) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.rint(original(self, rng=rng) * scale).astype(np.int64)

    monkeypatch.setattr(DistributedNoise, "sample", broken)


def _no_server_noise(monkeypatch: pytest.MonkeyPatch, scale: float = 0.0) -> None:
    original = GaussianMechanism.add_noise

    def broken(self: GaussianMechanism, x: np.ndarray, *, rng) -> np.ndarray:  # type: ignore[no-untyped-def]
        arr = np.asarray(x, dtype=np.float64)
        return arr + scale * (original(self, arr, rng=rng) - arr)

    monkeypatch.setattr(GaussianMechanism, "add_noise", broken)


@pytest.mark.parametrize("scale", [0.0, 0.1])
def test_broken_client_noise_is_caught(monkeypatch: pytest.MonkeyPatch, scale: float) -> None:
    _no_client_noise(monkeypatch, scale)
    report = run_privacy_audit(_config(DDG, 4.0, 128, 1, "secagg+"), seed=5)
    assert report.lower_bound > report.accounted_epsilon
    assert not report.passed
    assert report.verdict == "VIOLATION"
    with pytest.raises(AuditFailure, match="privacy-lower-bound") as info:
        report.check()
    assert info.value.violations[0].rule == "privacy-lower-bound"


@pytest.mark.parametrize("scale", [0.0, 0.1])
def test_broken_server_noise_is_caught(monkeypatch: pytest.MonkeyPatch, scale: float) -> None:
    _no_server_noise(monkeypatch, scale)
    report = run_privacy_audit(_config(GAUSSIAN, 2.0, 1024, 1, "plain"), seed=5)
    assert report.lower_bound > report.accounted_epsilon
    assert not report.passed


def test_seeded_runs_replay() -> None:
    config = _config(GAUSSIAN, 1.0, 32, 1, "secagg+")
    a, b = run_privacy_audit(config, seed=9), run_privacy_audit(config, seed=9)
    assert a.to_json() | {"seconds": 0} == b.to_json() | {"seconds": 0}
    assert a.seed_drawn is False
    other = PrivacyAuditConfig(mechanism=GAUSSIAN, protocol="plain", canaries=8, clip_bound=0.5)
    assert "--clip-bound 0.5" in run_privacy_audit(other, seed=1).replay_command
    drawn = run_privacy_audit(config)
    assert drawn.seed_drawn is True
    assert drawn.replay_command.endswith(f"--seed {drawn.seed}")


def test_config_is_validated() -> None:
    with pytest.raises(InvalidArgument, match="secure protocol"):
        PrivacyAuditConfig(mechanism=DDG, protocol="plain")
    with pytest.raises(InvalidArgument, match="paillier"):
        PrivacyAuditConfig(protocol="paillier")
    with pytest.raises(InvalidArgument, match="canaries"):
        PrivacyAuditConfig(canaries=2)
    with pytest.raises(InvalidArgument, match="mechanism"):
        PrivacyAuditConfig(mechanism="ddg")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="bits"):
        PrivacyAuditConfig(bits=3)
    with pytest.raises(InvalidArgument, match="seed"):
        run_privacy_audit(PrivacyAuditConfig(), seed=-1)


# ----------------------------------------------------------------------------- CLI
TINY = ["audit", "--privacy", "--mechanism", "gaussian", "--protocol", "plain", "--canaries"]


def test_cli_prints_bound_and_accounted_epsilon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "256", "--rounds", "2", "--seed", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("lower_bound", "accounted_epsilon", "delta", "confidence", "canaries"):
        assert key in data
    assert data["rounds"] == 2
    assert data["mechanism"] == "gaussian"
    assert data["verdict"] == "consistent"
    assert data["lower_bound"] <= data["accounted_epsilon"]
    assert data["replay"].endswith("--seed 4")

    assert main([*TINY, "256", "--rounds", "2", "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert "lower_bound" in text
    assert "accounted_epsilon" in text
    assert "consistent" in text
    assert "replay: secfl audit --privacy" in text


def test_cli_exit_status_1_on_a_violation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_server_noise(monkeypatch)
    assert main([*TINY, "1024", "--noise-multiplier", "2", "--rounds", "1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "VIOLATION"
    assert data["passed"] is False


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--canaries", "8"],
        ["audit", "--privacy", "--examples", "3"],
        ["audit", "--privacy", "--protocol", "secagg", "--protocol", "plain"],
    ],
)
def test_cli_refuses_options_of_the_other_audit(argv: list[str]) -> None:
    assert main(argv) == 2


def test_cli_reports_a_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--privacy", "--mechanism", "ddg", "--protocol", "plain"]) == 2
    assert "secure protocol" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mechanism",
    [
        m if m is PrivacyMechanism.DDG else pytest.param(m, marks=pytest.mark.slow)
        for m in PrivacyMechanism
    ],
)
def test_default_configuration(mechanism: PrivacyMechanism) -> None:
    report = run_privacy_audit(PrivacyAuditConfig(mechanism=mechanism), seed=1)
    assert report.passed
    assert report.lower_bound > 1.0
