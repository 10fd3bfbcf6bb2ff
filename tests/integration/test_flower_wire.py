"""The Flower integration's round set-up frame and client policy (no Flower needed)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from secfl import wire
from secfl.errors import IntegrityError, InvalidArgument, ProtocolAbort
from secfl.fl import Weighting
from secfl.hazmat.rng import Csprng
from secfl.integrations._flower_wire import (
    MSG_RUNTIME_SETUP,
    ClientPolicy,
    PaillierParams,
    RoundSetup,
)
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, build_protocol
from secfl.protocols.paillier import PaillierProtocol
from secfl.protocols.secagg import ThreatModel

PAILLIER = PaillierParams(n=(1 << 2047) + 1, value_bits=27, min_clients=4)
THRESHOLD = {
    "protocol": "paillier-threshold",
    "paillier": PAILLIER,
    "threshold_fingerprint": bytes(range(100, 116)),
    "threat_model": ThreatModel.ACTIVE,
    "registry_digest": bytes(range(32)),
    "client_id": 0,
}


def setup(**changes) -> RoundSetup:
    base = RoundSetup(
        round_id=7,
        client_id=2,
        n_clients=5,
        dim=9,
        protocol="secagg+",
        bits=32,
        scale_bits=26,
        clip_bound=5.0,
        dropout=0.2,
        weighting=Weighting.UNIFORM,
        example_cap=1000,
        weight_key="num-examples",
        pipeline_seed=bytes(range(32)),
        dp=None,
        paillier_bits=2048,
        paillier=None,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"dp": DistributedDP(mechanism=DPMechanism.SKELLAM, noise_multiplier=0.7)},
        {"dp": DistributedDP(noise_multiplier=0.5, max_cohort=40)},
        {"dp": DistributedDP(noise_multiplier=0.5, max_cohort=40, noise_clients=31)},
        {"weighting": Weighting.EXAMPLES, "weight_key": "exemples-\u00e9"},
        {"adaptive": True, "weighting": Weighting.EXAMPLES},
        {"protocol": "paillier", "paillier": PAILLIER},
        {"protocol": "plain", "scale_bits": -3},
        {
            "protocol": "secagg",
            "threat_model": ThreatModel.ACTIVE,
            "registry_digest": bytes(range(32, 64)),
            "client_id": 0,
        },
        {
            "protocol": "secagg",
            "threat_model": ThreatModel.ACTIVE,
            "registry_digest": bytes(32),
            "client_id": 4_000_000_000,
        },
        THRESHOLD,
    ],
)
def test_setup_frames_round_trip(changes):
    s = setup(**changes)
    data = s.to_bytes()
    assert wire.unframe(data)[0] == MSG_RUNTIME_SETUP
    assert RoundSetup.from_bytes(data) == s


def test_malformed_setup_frames_raise_integrity_errors():
    data = setup().to_bytes()
    for cut in (0, 5, 8, 20, len(data) - 1):
        with pytest.raises((IntegrityError, InvalidArgument)):
            RoundSetup.from_bytes(data[:cut])
    # 1 had no threat model, 2 no round shape, 3 no max_cohort, 4 no paillier-threshold,
    # 5 no noise_clients
    for version in (1, 2, 3, 4, 5, 7):
        body = bytearray(data)
        body[8] = version
        with pytest.raises(IntegrityError, match="version"):
            RoundSetup.from_bytes(bytes(body))
    body = bytearray(data)
    body[-1] = 2  # threat model code
    with pytest.raises(IntegrityError, match="threat model"):
        RoundSetup.from_bytes(bytes(body))
    body = bytearray(data)
    body[8 + 1 + 8 + 12] = 9  # protocol code
    with pytest.raises(IntegrityError, match="protocol"):
        RoundSetup.from_bytes(bytes(body))
    with pytest.raises(IntegrityError, match="trailing"):
        RoundSetup.from_bytes(wire.frame(MSG_RUNTIME_SETUP, bytes(data[8:]) + b"\0"))
    with pytest.raises(IntegrityError, match="set-up frame"):
        RoundSetup.from_bytes(wire.frame(0x01, bytes(data[8:])))
    with pytest.raises(IntegrityError, match="older secfl"):
        RoundSetup.from_bytes(wire.frame(0x50, bytes(data[8:])))


def test_invalid_setups_are_refused_at_construction():
    with pytest.raises(InvalidArgument, match="client_id"):
        setup(client_id=6)
    with pytest.raises(InvalidArgument, match="Paillier"):
        setup(protocol="paillier")
    with pytest.raises(InvalidArgument, match="pipeline_seed"):
        setup(pipeline_seed=b"short")
    active = {"threat_model": ThreatModel.ACTIVE, "registry_digest": bytes(32)}
    with pytest.raises(InvalidArgument, match="'secagg' and 'paillier-threshold' only"):
        setup(**active)  # secagg+
    with pytest.raises(InvalidArgument, match="registry_digest"):
        setup(protocol="secagg", threat_model=ThreatModel.ACTIVE)
    with pytest.raises(InvalidArgument, match="active threat model only"):
        setup(registry_digest=bytes(32))


@pytest.mark.parametrize(
    "dp",
    [
        None,
        DistributedDP(noise_multiplier=0.5),
        DistributedDP(noise_multiplier=0.5, max_cohort=40, noise_clients=31),
    ],
)
@pytest.mark.parametrize("protocol", ["secagg", "secagg+", "paillier"])
def test_client_pipeline_matches_the_servers(protocol, dp):
    seed = bytes(32)
    paillier = PAILLIER if protocol == "paillier" else None
    server = Pipeline(
        setup(protocol=protocol, dp=dp, paillier=paillier).pipeline_config(),
        n_clients=5,
        dim=9,
        dropout=0.2,
        rng=Csprng(seed=seed),
    )
    s = setup(
        protocol=protocol,
        dp=dp,
        pipeline_seed=seed,
        scale_bits=server.codec.scale_bits,
        paillier=paillier,
    )
    client = s.client_pipeline()
    assert client.codec == server.codec
    assert client.input_dim == server.input_dim
    assert client.value_bits == server.value_bits
    assert client.min_survivors == server.min_survivors
    assert client.dp_plan == server.dp_plan  # the same shares (one size with noise_clients)
    mine = s.client_protocol(client, rng=Csprng(seed=seed))
    if protocol == "paillier":  # from the set-up's public parameters: no private key here
        assert isinstance(mine, PaillierProtocol)
        assert mine.config.value_bits == PAILLIER.value_bits
    else:  # the same threshold, degree and ring as the server's
        assert mine.config == build_protocol(server, rng=Csprng(seed=seed)).config
    update = np.full(9, 0.25)
    if dp is None:  # deterministic: exact multiples of the quantum
        a = client.client_side(update, rng=Csprng(seed=bytes(32))).encoded
        b = server.client_side(update, rng=Csprng(seed=bytes(32))).encoded
        assert (a == b).all()
    with pytest.raises(ProtocolAbort, match="different secfl versions"):
        dataclasses.replace(s, scale_bits=s.scale_bits + 1).client_pipeline()


def test_client_policy():
    policy = ClientPolicy()
    with pytest.raises(ProtocolAbort, match="accepts only"):
        policy.check(setup(protocol="plain"))
    with pytest.raises(ProtocolAbort, match="at least 3"):
        policy.check(setup(n_clients=2, client_id=1))
    small = PaillierParams(n=(1 << 1023) + 1, value_bits=27, min_clients=2)
    with pytest.raises(ProtocolAbort, match="min_paillier_bits"):
        policy.check(setup(protocol="paillier", paillier=small))
    strict = ClientPolicy(min_noise_multiplier=1.0)
    with pytest.raises(ProtocolAbort, match="no DP"):
        strict.check(setup())
    strict.check(setup(dp=DistributedDP(noise_multiplier=1.0)))
    # Shares sized for a huge public count: z = 1 on paper, 1 * sqrt(4 / 100000) in a round
    # of 5 that may finish with 4 survivors. The check is on what the round can have.
    huge = DistributedDP(noise_multiplier=1.0, max_cohort=100_000, noise_clients=100_000)
    with pytest.raises(ProtocolAbort, match=r"noise multiplier 0\.006325 at the fewest survivors"):
        strict.check(setup(dp=huge))
    strict.check(setup(dp=DistributedDP(noise_multiplier=1.0, max_cohort=20, noise_clients=4)))
    with pytest.raises(ProtocolAbort, match=r"noise multiplier 0\.8944"):  # sqrt(4/5)
        strict.check(setup(dp=DistributedDP(noise_multiplier=1.0, max_cohort=20, noise_clients=5)))
    # Paillier: the key holder decrypts from the set-up's min_clients, which the server
    # writes; a small one is the floor (here 2 of M = 4: 1 * sqrt(2/4))
    sized = DistributedDP(noise_multiplier=1.0, max_cohort=20, noise_clients=4)
    low = PaillierParams(n=PAILLIER.n, value_bits=PAILLIER.value_bits, min_clients=2)
    with pytest.raises(ProtocolAbort, match=r"noise multiplier 0\.7071"):
        strict.check(setup(protocol="paillier", paillier=low, dp=sized))
    fair = PaillierParams(n=PAILLIER.n, value_bits=PAILLIER.value_bits, min_clients=4)
    strict.check(setup(protocol="paillier", paillier=fair, dp=sized))
    with pytest.raises(InvalidArgument, match=r"dropout must be in \[0, 1\)"):
        setup(dropout=-1.0)  # would overstate the fewest survivors
    policy.check(setup())
    active = setup(protocol="secagg", threat_model=ThreatModel.ACTIVE, registry_digest=bytes(32))
    with pytest.raises(ProtocolAbort, match="no identity"):
        policy.check(active)
    policy.check(active, has_identity=True)
    with pytest.raises(ProtocolAbort, match="it has an identity"):
        policy.check(setup(), has_identity=True)  # no downgrade by default
    with pytest.raises(ProtocolAbort, match="require_active=True"):
        ClientPolicy(require_active=True).check(setup(), has_identity=True)
    ClientPolicy(require_active=False).check(setup(), has_identity=True)
    with pytest.raises(InvalidArgument):
        ClientPolicy(protocols=())
    with pytest.raises(InvalidArgument):
        ClientPolicy(min_noise_multiplier=float("nan"))


def test_threshold_setups_carry_the_key_fingerprint_and_are_active_only():
    """Set-up version 5 on: protocol 4 (paillier-threshold) ends its Paillier block with the
    threshold key's fingerprint, and runs in the active threat model only."""
    data = setup(**THRESHOLD).to_bytes()
    assert data[8] == 6  # setup_version
    assert bytes(range(100, 116)) in data
    with pytest.raises(InvalidArgument, match="fingerprint"):
        setup(**{**THRESHOLD, "threshold_fingerprint": b""})
    with pytest.raises(InvalidArgument, match="fingerprint"):
        setup(protocol="paillier", paillier=PAILLIER, threshold_fingerprint=bytes(16))
    with pytest.raises(InvalidArgument, match="active threat model only"):
        setup(
            protocol="paillier-threshold",
            paillier=PAILLIER,
            threshold_fingerprint=bytes(16),
        )
    assert ClientPolicy().protocols[-1] == "paillier-threshold"  # protected: on by default


def test_a_client_that_asks_for_noise_refuses_a_collapsing_plan():
    """A nominal noise multiplier over shares too small for the ddg bound (14 bits, 2000
    clients, d = 4096: sigma_l = 0.73) is refused by a client with min_noise_multiplier."""
    from secfl.dp.accounting import Neighboring

    def pipeline(bits: int) -> Pipeline:
        dp = DistributedDP(noise_multiplier=1.0, neighboring=Neighboring.ZERO_OUT)
        cfg = setup(protocol="secagg", bits=bits, dp=dp).pipeline_config()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the pipeline warns; the policy refuses
            return Pipeline(cfg, n_clients=2000, dim=4096, rng=Csprng(seed=bytes(32)))

    big = setup(n_clients=2000)
    strict = ClientPolicy(min_noise_multiplier=1.0)
    with pytest.raises(ProtocolAbort, match=r"collapses.*sigma_l = 0\.73"):
        strict.check_plan(big, pipeline(14))
    strict.check_plan(big, pipeline(20))  # sigma_l large enough
    ClientPolicy().check_plan(big, pipeline(14))  # no noise asked for: the warning only
