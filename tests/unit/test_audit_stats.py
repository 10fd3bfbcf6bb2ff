import numpy as np
import pytest

from secfl.audit import _rounds as rounds
from secfl.audit import stats
from secfl.protocols import paillier as pl
from secfl.protocols import secagg


def spec(**kw):
    base = dict(
        n=5,
        threshold=3,
        degree=None,
        bits=16,
        dim=6,
        active=False,
        adversarial=False,
        coalition=(),
        seed=bytes(32),
    )
    base.update(kw)
    return rounds.SecAggSpec(**base)


@pytest.mark.parametrize("protocol", ["secagg", "secagg+"])
def test_masked_inputs_look_uniform(protocol):
    assert "passed" in stats.check_masked_uniform(protocol, trials=2)


def test_uniformity_check_fails_without_masks(monkeypatch):
    monkeypatch.setattr(secagg._Masker, "add", lambda self, acc, seed, label, sign: None)
    with pytest.raises(AssertionError, match="uniformity tests failed"):
        stats.check_masked_uniform("secagg", trials=1)


@pytest.mark.parametrize(
    ("kw", "drops"),
    [({}, ()), ({"bits": 13, "dim": 5}, (2,)), ({"n": 8, "degree": 4, "bits": 64}, (3,))],
)
def test_masks_cancel(kw, drops):
    assert "unmasked independently" in stats.check_masks_cancel(spec(**kw), drops)


def test_masks_cancel_detects_a_one_sided_pairwise_mask(monkeypatch):
    real = secagg._Masker.add

    def one_sided(self, acc, seed, label, sign):
        # the larger id of each pair adds its pairwise mask instead of subtracting it
        real(self, acc, seed, label, abs(sign) if label == b"pair" else sign)

    monkeypatch.setattr(secagg._Masker, "add", one_sided)
    with pytest.raises(AssertionError, match="do not cancel"):
        stats.check_masks_cancel(spec(), ())


def test_paillier_ciphertexts_are_rerandomized():
    assert "all distinct" in stats.check_rerandomized(trials=1, per_client=64)


def test_reused_paillier_randomness_is_detected(monkeypatch):
    real = pl.hp.encrypt_vector

    def fixed_randomness(public_key, values, layout, *, randomness):
        from secfl.hazmat.rng import Csprng

        return real(public_key, values, layout, randomness=Csprng(seed=bytes(32)))

    monkeypatch.setattr(pl.hp, "encrypt_vector", fixed_randomness)
    with pytest.raises(AssertionError, match="repeated ciphertexts"):
        stats.check_rerandomized(trials=1, per_client=8)


def test_chi2_critical_values():
    # Upper 1e-6 quantiles (reference: scipy.stats.chi2.isf(1e-6, dof)).
    for dof, exact in ((15, 56.493), (31, 83.643), (255, 377.078)):
        assert exact <= stats.chi2_critical(dof) <= exact * 1.02  # slightly conservative
    assert np.isfinite(stats.chi2_critical(1))
