import math

import numpy as np
import pytest

from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.paillier_keys import PaillierPrivateKey, generate_paillier_keypair
from secfl.pipeline import (
    DistributedDP,
    DPMechanism,
    Pipeline,
    PipelineConfig,
    RemoteKeyHolder,
    build_protocol,
)
from secfl.protocols.paillier import PaillierProtocol
from secfl.protocols.secagg import SecAggProtocol, ThreatModel
from secfl.runtime.simulator import simulate_round


def run(pipeline, updates, rng, dropouts=None, paillier=None):
    protocol = build_protocol(pipeline, rng=rng, paillier=paillier)
    inputs = {c: pipeline.client_side(u, rng=rng).encoded for c, u in updates.items()}
    rep = simulate_round(protocol, inputs, dropouts=dropouts or {})
    assert rep.correct, rep.aborted
    return pipeline.server_side(rep.result.aggregate), rep


@pytest.mark.parametrize("protocol", ["plain", "secagg", "secagg+"])
def test_sum_of_clipped_updates(protocol):
    rng = Csprng(seed=bytes(32))
    p = Pipeline(PipelineConfig(protocol=protocol, clip_bound=1.0), n_clients=6, dim=50, rng=rng)
    updates = {c: (rng.uniform(50) - 0.5) * 0.2 for c in range(1, 7)}
    updates[3] = updates[3] * 100  # this one gets clipped
    total, _ = run(p, updates, rng)
    expected = sum(u * min(1.0, 1.0 / np.linalg.norm(u)) for u in updates.values())
    assert np.allclose(total, expected, atol=6 * p.codec.quantum)


@pytest.mark.parametrize("mechanism", list(DPMechanism))
@pytest.mark.parametrize("protocol", ["secagg", "paillier"])
def test_distributed_noise_has_the_planned_variance(protocol, mechanism, small_paillier_keys):
    n, dim, z, clip = 8, 1000, 1.0, 1.0
    rng = Csprng(seed=bytes([7]) * 32)
    cfg = PipelineConfig(
        protocol=protocol,
        clip_bound=clip,
        paillier_bits=1024,
        dp=DistributedDP(mechanism=mechanism, noise_multiplier=z),
    )
    p = Pipeline(cfg, n_clients=n, dim=dim, dropout=0.25, rng=rng)
    assert p.min_survivors == 6
    assert p.input_dim == 1024
    zeros = {c: np.zeros(dim) for c in range(1, n + 1)}
    paillier = small_paillier_keys if protocol == "paillier" else None
    dropouts = {1: "mask" if protocol == "secagg" else "input"}
    total, rep = run(p, zeros, rng, dropouts=dropouts, paillier=paillier)
    survivors = len(rep.result.survivors)
    assert survivors == 7
    # Each share has variance sigma^2 / min_survivors (integer units); the rotation is
    # orthonormal, so the decoded noise has variance survivors/min * sigma^2 / scale^2.
    sigma = z * p.dp_plan.noise.l2_sensitivity
    expected_var = survivors / p.min_survivors * sigma**2 / p.codec.scale**2
    got = float(np.var(total))
    # ~1000 samples: the sample variance is within 20% with overwhelming probability
    assert got == pytest.approx(expected_var, rel=0.2)
    # and the noise std is comparable to z * clip (the point of the calibration)
    assert math.sqrt(expected_var) >= z * clip * 0.9
    event = p.dp_event(survivors=survivors)
    assert event is not None


def test_dp_signal_survives_noise_on_average():
    n, dim = 10, 64
    rng = Csprng(seed=bytes([3]) * 32)
    cfg = PipelineConfig(protocol="secagg", clip_bound=1.0, dp=DistributedDP(noise_multiplier=0.1))
    p = Pipeline(cfg, n_clients=n, dim=dim, rng=rng)
    signal = np.full(dim, 0.1)  # norm 0.8 < clip
    total, _ = run(p, {c: signal for c in range(1, n + 1)}, rng)
    assert np.abs(total.mean() - n * 0.1) < 0.05


def test_dp_requires_a_secure_protocol():
    with pytest.raises(InvalidArgument, match="secure protocol"):
        PipelineConfig(protocol="plain", dp=DistributedDP())


def test_bad_updates_rejected():
    rng = Csprng(seed=bytes(32))
    p = Pipeline(PipelineConfig(protocol="plain"), n_clients=2, dim=3, rng=rng)
    with pytest.raises(InvalidArgument, match="shape"):
        p.client_side(np.zeros(4), rng=rng)
    with pytest.raises(InvalidArgument, match="NaN"):
        p.client_side(np.array([0.0, np.nan, 0.0]), rng=rng)
    with pytest.raises(InvalidArgument):
        p.client_side(np.zeros(3, dtype=np.int64), rng=rng)


def test_dp_config_validation():
    with pytest.raises(InvalidArgument):
        DistributedDP(noise_multiplier=0.0)
    with pytest.raises(InvalidArgument):
        DistributedDP(delta=1.0)


def test_paillier_slots_hold_a_clients_noise_share(small_paillier_keys):
    # Few survivors provisioned -> large shares: the packing range must include the noise.
    rng = Csprng(seed=b"\1" * 32)
    cfg = PipelineConfig(protocol="paillier", paillier_bits=1024, dp=DistributedDP())
    p = Pipeline(cfg, n_clients=4, dim=4000, dropout=0.5, rng=rng)
    zeros = {c: np.zeros(4000) for c in range(1, 5)}
    total, _ = run(p, zeros, rng, paillier=small_paillier_keys)
    assert total.shape == (4000,)


def test_skellam_tail_bound_not_below_gaussian_at_large_variance():
    from secfl.dp.mechanisms import NoiseKind, noise_tail_bound

    for v in (1e12, 2.8e14, 1e17):
        args = {"total_variance": v, "dimension": 1024, "failure_probability": 1e-9}
        assert noise_tail_bound(kind=NoiseKind.SKELLAM, **args) >= noise_tail_bound(
            kind=NoiseKind.DISCRETE_GAUSSIAN, **args
        )


@pytest.mark.parametrize(("n", "dropout", "threshold"), [(5, 0.2, 3), (10, 0.2, 7), (10, 0.0, 8)])
def test_active_secagg_threshold_exceeds_two_thirds(n, dropout, threshold):
    rng = Csprng(seed=bytes(32))
    registry = {c: SigningKey.generate(rng=rng).verify_key() for c in range(1, n + 1)}
    cfg = PipelineConfig(protocol="secagg", threat_model=ThreatModel.ACTIVE)
    pipe = Pipeline(cfg, n_clients=n, dim=4, dropout=dropout, rng=rng)
    protocol = build_protocol(pipe, rng=rng, registry=registry)
    assert isinstance(protocol, SecAggProtocol)
    assert protocol.config.threat_model is ThreatModel.ACTIVE
    assert protocol.config.threshold == threshold
    assert protocol.registry == registry


def test_active_threat_model_is_secagg_only_and_needs_a_registry():
    for protocol in ("plain", "secagg+", "paillier"):
        with pytest.raises(InvalidArgument, match="'secagg'"):
            PipelineConfig(protocol=protocol, threat_model=ThreatModel.ACTIVE)
    cfg = PipelineConfig(protocol="secagg", threat_model=ThreatModel.ACTIVE)
    rng = Csprng(seed=bytes(32))
    pipe = Pipeline(cfg, n_clients=5, dim=4, rng=rng)
    with pytest.raises(InvalidArgument, match="identities"):
        build_protocol(pipe, rng=rng)


def test_the_pipeline_holds_no_protocol_and_no_key():
    pipe = Pipeline(PipelineConfig(protocol="paillier"), n_clients=3, dim=4, rng=Csprng())
    assert not hasattr(pipe, "protocol")
    assert not any(isinstance(v, PaillierPrivateKey) for v in vars(pipe).values())


def test_paillier_keys_are_explicit_and_must_fit(small_paillier_keys, paillier_keys):
    rng = Csprng(seed=bytes(32))
    paillier = Pipeline(
        PipelineConfig(protocol="paillier", paillier_bits=1024), n_clients=3, dim=4, rng=rng
    )
    with pytest.raises(InvalidArgument, match="needs its keys"):
        build_protocol(paillier, rng=rng)
    with pytest.raises(InvalidArgument, match="paillier_bits=2048"):
        build_protocol(paillier, rng=rng, paillier=paillier_keys)  # a 2048-bit key
    secagg = Pipeline(PipelineConfig(protocol="secagg"), n_clients=3, dim=4, rng=rng)
    with pytest.raises(InvalidArgument, match="'paillier' only"):
        build_protocol(secagg, rng=rng, paillier=small_paillier_keys)
    with pytest.raises(InvalidArgument, match="ACTIVE only"):
        build_protocol(secagg, rng=rng, registry={})
    # A remote key holder: the public key is used as it is; no key-holder party here.
    remote = RemoteKeyHolder(paillier_keys.public_key)
    protocol = build_protocol(paillier, rng=rng, paillier=remote)
    assert isinstance(protocol, PaillierProtocol)
    assert protocol.config.public_key == paillier_keys.public_key.to_phe()
    assert protocol.parties() == {}


def test_paillier_key_pair_is_not_pickled_or_printed(small_paillier_keys):
    import pickle

    assert str(small_paillier_keys.private_numbers()[0]) not in repr(small_paillier_keys)
    assert "bits=1024" in repr(small_paillier_keys)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(small_paillier_keys)
    with pytest.raises(InvalidArgument, match="bits"):
        generate_paillier_keypair(bits=512)


def test_dp_rounding_coins_come_from_the_client_rng(monkeypatch):
    # With the noise silenced, what is left of client_side under distributed DP is the
    # randomized rounding of the rotated update: two generators must round differently.
    cfg = PipelineConfig(protocol="secagg", clip_bound=1.0, dp=DistributedDP(noise_multiplier=1.0))
    p = Pipeline(cfg, n_clients=4, dim=64, rng=Csprng(seed=bytes([5]) * 32))
    noise = p.dp_plan.noise
    monkeypatch.setattr(
        type(noise), "sample", lambda self, *, rng: np.zeros(self.dimension, np.int64)
    )
    update = np.linspace(-0.1, 0.1, 64)
    a = p.client_side(update, rng=Csprng(seed=bytes([1]) * 32)).encoded
    b = p.client_side(update, rng=Csprng(seed=bytes([2]) * 32)).encoded
    assert not np.array_equal(a, b)
