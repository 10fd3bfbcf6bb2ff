import json
import warnings

import numpy as np
import pytest

from secfl.cli import main
from secfl.errors import InvalidArgument
from secfl.fl import FedAvgConfig, FederatedAveraging
from secfl.fl.fedavg import RoundRecord
from secfl.hazmat.rng import Csprng
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.runtime.scenario import Scenario, run_scenario
from secfl.runtime.simulator import simulate_round

P = PlaintextProtocol(bits=32)


def inputs(n, d):
    return {c: np.full(d, c, dtype=np.uint32) for c in range(1, n + 1)}


def test_simulate_counts_bytes_and_checks_sum():
    rep = simulate_round(P, inputs(4, 10))
    assert rep.correct
    assert rep.result is not None
    assert rep.result.aggregate.tolist() == [10] * 10
    assert rep.bytes_up_per_client == 8 + 8 + 4 + 40
    assert rep.bytes_down_per_client == 8 + 13
    assert rep.dropped == 0
    assert len(rep.client_seconds) == 4
    assert rep.server_seconds >= 0


def test_dropouts_follow_schedule():
    rep = simulate_round(P, inputs(4, 3), dropouts={2: "input", 3: "input"})
    assert rep.correct
    assert rep.result is not None
    assert rep.result.aggregate.tolist() == [5, 5, 5]
    assert rep.dropped == 2
    assert rep.bytes_up[2] == 0
    assert rep.bytes_down[2] == 0


def test_everyone_dropping_is_a_clean_abort():
    rep = simulate_round(P, inputs(2, 3), dropouts={1: "input", 2: "input"})
    assert not rep.correct
    assert rep.aborted is not None
    assert "InsufficientSurvivors" in rep.aborted
    assert rep.dropped == 2


def test_simulator_validates():
    with pytest.raises(InvalidArgument, match="unknown phase"):
        simulate_round(P, inputs(2, 3), dropouts={1: "nope"})
    with pytest.raises(InvalidArgument, match="unknown client"):
        simulate_round(P, inputs(2, 3), dropouts={9: "input"})
    with pytest.raises(InvalidArgument, match="same length"):
        simulate_round(P, {1: np.zeros(2, np.uint32), 2: np.zeros(3, np.uint32)})


def test_scenario_is_deterministic_with_seed():
    a, _ = run_scenario(Scenario(protocol="plain", clients=5, dim=20, dropout=0.4, seed=3))
    b, _ = run_scenario(Scenario(protocol="plain", clients=5, dim=20, dropout=0.4, seed=3))
    assert a.result is not None
    assert b.result is not None
    assert a.correct
    assert a.dropped == 2
    assert np.array_equal(a.result.aggregate, b.result.aggregate)
    assert a.result.dropped == b.result.dropped


def test_scenario_validates():
    with pytest.raises(InvalidArgument, match="unknown protocol"):
        Scenario(protocol="nope", clients=2, dim=2)
    with pytest.raises(InvalidArgument, match="dropout"):
        Scenario(protocol="plain", clients=2, dim=2, dropout=1.0)


def test_cli_simulate_json(capsys):
    rc = main(["simulate", "--protocol", "plain", "--clients", "20", "--dim", "100", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["correct"] is True
    assert out["clients"] == 20
    assert out["dim"] == 100
    assert out["plaintext_bytes_per_client"] == 400
    assert out["bytes_up_per_client"] == 8 + 8 + 4 + 400
    for key in ("protocol", "dropped", "client_seconds", "server_seconds", "bytes_down_per_client"):
        assert key in out


def test_cli_error_is_clean(capsys):
    rc = main(["simulate", "--clients", "0", "--json"])
    assert rc == 2
    assert "InvalidArgument" in capsys.readouterr().err


class _Corrupting(PlaintextProtocol):
    """Client 2's session garbles its reply: the server must drop it, not abort the round."""

    def client(self, *, round_id, client_id, value):
        inner = super().client(round_id=round_id, client_id=client_id, value=value)
        if client_id != 2:
            return inner

        class Bad:
            def handle(self, data):
                return inner.handle(data)[:-1]

        return Bad()


def test_malformed_client_message_drops_that_client_only():
    rep = simulate_round(_Corrupting(bits=32), inputs(3, 4))
    assert rep.correct
    assert rep.result is not None
    assert rep.result.survivors == {1, 3}
    assert "IntegrityError" in rep.rejected[2]


def test_unknown_dropout_phase_rejected_even_without_dropouts():
    with pytest.raises(InvalidArgument, match="dropout phase"):
        run_scenario(Scenario(protocol="plain", clients=2, dim=2, dropout_phase="nope"))


@pytest.mark.parametrize("protocol", ["secagg", "secagg+"])
def test_cli_simulate_secure_protocols(capsys, protocol):
    argv = ["simulate", "--protocol", protocol, "--clients", "12", "--dim", "50", "--json"]
    rc = main([*argv, "--dropout", "0.2", "--dropout-phase", "mask", "--seed", "4"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["correct"] is True
    assert out["dropped"] == 2


@pytest.mark.parametrize("mechanism", ["gaussian", "ddg", "skellam"])
def test_cli_privacy(capsys, mechanism):
    argv = ["privacy", "--mechanism", mechanism, "--noise-multiplier", "1.0"]
    if mechanism != "gaussian":  # zero-out is never Poisson-sampled
        zero_out = [*argv, "--neighboring", "zero-out", "--sampling-rate", "0.1", "--json"]
        assert main(zero_out) == 2
        assert "zero-out has no sound bound" in capsys.readouterr().err
    if mechanism == "skellam":  # zero-out only, so never Poisson-sampled
        assert main([*argv, "--sampling-rate", "0.1", "--json"]) == 2
        assert "zero-out has no sound bound" in capsys.readouterr().err
        rc = main(["privacy", "--mechanism", "skellam", "--noise-multiplier", "8.0", "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0
        assert 0 < out["epsilon"] < 20
        assert out["neighboring"] == "zero-out"
        return
    rc = main([*argv, "--sampling-rate", "0.1", "--rounds", "50", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(out) >= {
        "mechanism",
        "epsilon",
        "delta",
        "rounds",
        "noise_multiplier",
        "sampling_rate",
    }
    assert 0 < out["epsilon"] < 20
    assert out["accounting"] == "pld"  # the Gaussian's, and for ddg the smaller of the two
    more = main([*argv, "--sampling-rate", "0.1", "--rounds", "100", "--json"])
    assert more == 0
    assert json.loads(capsys.readouterr().out)["epsilon"] > out["epsilon"]


def test_cli_privacy_target_epsilon(capsys):
    rc = main(
        [
            "privacy",
            "--target-epsilon",
            "2",
            "--sampling-rate",
            "0.01",
            "--rounds",
            "1000",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["epsilon"] <= 2
    # PLD (dp-accounting's PLD calibration: 0.9593); its RDP needed 1.02229
    assert out["noise_multiplier"] == pytest.approx(0.9593, rel=2e-3)
    assert out["accounting"] == "pld"
    assert out["neighboring"] == "add-remove"


def test_cli_privacy_needs_noise_or_target(capsys):
    assert main(["privacy"]) == 2
    assert "noise-multiplier" in capsys.readouterr().err


def test_cli_audit_json(capsys):
    rc = main(["audit", "--protocol", "plain", "--examples", "5", "--seed", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["passed"] is True
    props = out["protocols"]["plain"]["properties"]
    assert props
    for prop in props:
        assert set(prop) >= {"name", "examples", "passed", "counterexample"}


def test_active_scenario_signs_and_survives_dropouts(capsys):
    args = "simulate --protocol secagg --clients 7 --dim 50 --active --dropout 0.15"
    rc = main([*args.split(), "--dropout-phase", "share", "--seed", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["correct"] is True
    assert out["threat_model"] == "active"
    assert out["dropped"] == 1
    with pytest.raises(InvalidArgument, match="'secagg' only"):
        Scenario(protocol="secagg+", clients=5, dim=2, active=True)


def test_a_drivers_own_bug_is_raised_not_recorded_as_an_abort():
    """LocalProtocolError (a session called out of order) propagates out of the driver."""
    from secfl.errors import LocalProtocolError
    from secfl.protocols.plaintext import PlaintextProtocol

    class Broken(PlaintextProtocol):
        def server(self, **kwargs):  # type: ignore[no-untyped-def]
            session = super().server(**kwargs)
            session.start()  # started once here, and again by the driver
            return session

    with pytest.raises(LocalProtocolError, match="start"):
        simulate_round(Broken(bits=16), {1: np.zeros(2, np.uint16), 2: np.zeros(2, np.uint16)})


def test_a_codec_planned_for_fewer_clients_is_refused_not_wrapped():
    """Issue 16 case 13: a 2-client codec in a 10-client round would wrap silently."""
    from secfl.encoding import plan_codec
    from secfl.errors import EncodingOverflow
    from secfl.protocols.plaintext import PlaintextProtocol

    codec = plan_codec(n_clients=2, clip_bound=1.0, bits=16)
    inputs = {c: codec.encode(np.full(3, 0.99)) for c in range(1, 11)}
    with pytest.raises(EncodingOverflow, match="n_clients=2"):
        simulate_round(PlaintextProtocol(bits=16), inputs, codec=codec)
    report = simulate_round(PlaintextProtocol(bits=16), inputs)
    with pytest.raises(EncodingOverflow, match="a sum of 10 encodings may wrap"):
        codec.decode(report.result.aggregate, n_summed=10)
    with pytest.raises(InvalidArgument, match="same bits"):
        simulate_round(PlaintextProtocol(bits=32), {1: np.zeros(3, np.uint32)}, codec=codec)


def test_fraction_clipped_is_released_only_when_accounted():
    """Under DP the exact clipped fraction is not covered by epsilon: with a fixed bound it
    is withheld (None); with adaptive clipping the noised estimate is released."""
    from secfl.dp import AdaptiveClipConfig
    from secfl.fl import FedAvgConfig, FederatedAveraging
    from secfl.hazmat.rng import Csprng
    from secfl.pipeline import DistributedDP, PipelineConfig

    def local_update(idx: int, params: np.ndarray) -> tuple[np.ndarray, int]:
        return params + (idx + 1.0), 1  # norm >= 2: every update is clipped at bound 1

    def run(dp: DistributedDP | None, adaptive: AdaptiveClipConfig | None) -> object:
        fed = FederatedAveraging(
            FedAvgConfig(
                rounds=1,
                pipeline=PipelineConfig(protocol="secagg", clip_bound=1.0, dp=dp),
                dropout=0.0,
                adaptive_clip=adaptive,
            ),
            initial=np.zeros(4),
            n_clients=6,
            local_update=local_update,
            rng=Csprng(seed=bytes(32)),
        )
        fed.run()
        return fed.history[0].fraction_clipped

    dp = DistributedDP(noise_multiplier=1.0, max_cohort=7, noise_clients=6)
    assert run(None, None) == 1.0
    assert run(dp, None) is None
    noised = run(dp, AdaptiveClipConfig(initial_bound=1.0))
    assert isinstance(noised, float)
    assert 0.0 <= noised <= 1.0


def test_the_target_epsilon_is_solved_for_a_pessimistic_cohort():
    """P[some round is smaller] <= TARGET_MISS, computed exactly for small cases."""
    from math import comb

    from secfl.fl.fedavg import TARGET_MISS, _small_cohort

    for n, q, rounds in ((20, 0.5, 3), (60, 0.2, 10), (200, 0.05, 1)):
        k = _small_cohort(n, q, rounds)
        below = sum(comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k))
        assert 1 - (1 - below) ** rounds <= TARGET_MISS * 1.0001
        above = sum(comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k + 1))
        assert k == 2 or above * rounds > TARGET_MISS  # the largest such k
    assert _small_cohort(10, 1.0, 5) == 10


def _twenty_clients(config: FedAvgConfig, n_clients: int = 20) -> FederatedAveraging:
    """A seeded FederatedAveraging run of ``config`` over 20 clients (or ``n_clients``) that
    each add 0.01."""
    return FederatedAveraging(
        config,
        initial=np.zeros(4),
        n_clients=n_clients,
        local_update=lambda i, p: (p + 0.01, 1),
        rng=Csprng(seed=bytes(32)),
    )


def test_the_cohort_bound_is_computed_exactly_and_refused_when_missing_or_short():
    """Issue 17: under add/remove the scale is planned for a public max_cohort that makes a
    larger round (which fails) at most COHORT_MISS x delta likely over the run."""
    from math import comb

    from secfl.dp.accounting import Neighboring
    from secfl.errors import InvalidArgument
    from secfl.fl import FedAvgConfig, FederatedAveraging
    from secfl.fl.fedavg import COHORT_MISS, _needed_max_cohort
    from secfl.pipeline import DistributedDP, DPMechanism, PipelineConfig

    for n, q, rounds, delta in ((20, 0.5, 3, 1e-5), (60, 0.2, 10, 1e-6), (200, 0.05, 1, 1e-5)):
        k = _needed_max_cohort(n, q, rounds, delta)

        def above(k: int, n: int = n + 1, q: float = q) -> float:
            return sum(comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k + 1, n + 1))

        assert rounds * above(k) <= COHORT_MISS * delta * 1.0001
        assert rounds * above(k - 1) > COHORT_MISS * delta  # the smallest such k
    assert _needed_max_cohort(10, 1.0, 5, 1e-5) == 11  # every client, and one more

    def fed(dp: DistributedDP, n: int = 20, **kwargs: object) -> FederatedAveraging:
        cfg = FedAvgConfig(rounds=2, pipeline=PipelineConfig(protocol="secagg", dp=dp), **kwargs)
        return _twenty_clients(cfg, n)

    # 20 clients at q = 0.5: a round without one client samples fewer than 2 with
    # probability 3.8e-5, far above 1e-9 x delta (section 10.5, fewer than two clients);
    # refused first, whatever else the config lacks
    for dp in (DistributedDP(), DistributedDP(max_cohort=21, noise_clients=10)):
        with pytest.raises(InvalidArgument, match=r"fewer than 2.*3\.8e-05 per round.*to 0\.863"):
            fed(dp, sampling_rate=0.5)
    need = _needed_max_cohort(60, 0.5, 2, 1e-5)  # 60 clients at q = 0.5 pass that bound
    for dp in (DistributedDP(), DistributedDP(max_cohort=need - 1)):
        with pytest.raises(InvalidArgument, match=f"max_cohort={need}, noise_clients=30"):
            fed(dp, 60, sampling_rate=0.5)
    with pytest.raises(InvalidArgument, match="max_cohort=21, noise_clients=20"):
        fed(DistributedDP())  # every client in every round: the add neighbour has 21
    zero_out = Neighboring.ZERO_OUT
    with pytest.raises(InvalidArgument, match="max_cohort=7\\) is below the 8 clients"):
        fed(DistributedDP(max_cohort=7, neighboring=zero_out), clients_per_round=8)
    fed(DistributedDP(neighboring=zero_out), clients_per_round=8)  # one cohort size
    # Under add/remove a fixed-size sample swaps the client for another (spec 10.5)
    for dp in (DistributedDP(), DistributedDP(max_cohort=21, noise_clients=8)):
        with pytest.raises(InvalidArgument, match=r"fixed-size sample .* is a swap"):
            fed(dp, clients_per_round=8)
    fed(DistributedDP(neighboring=Neighboring.ZERO_OUT))  # same cohorts, nothing to bound
    with pytest.raises(InvalidArgument, match="zero-out has no sound bound under Poisson"):
        fed(DistributedDP(neighboring=Neighboring.ZERO_OUT), sampling_rate=0.5)
    fed(DistributedDP(neighboring=Neighboring.ZERO_OUT), sampling_rate=1.0)  # not sampled
    skellam = DistributedDP(mechanism=DPMechanism.SKELLAM, neighboring=Neighboring.ZERO_OUT)
    with pytest.raises(InvalidArgument, match="Skellam has only a zero-out bound"):
        fed(skellam, sampling_rate=0.5)
    # max_cohort alone: the shares would still follow the cohort (section 10.5)
    with pytest.raises(InvalidArgument, match=r"give DistributedDP\(noise_clients=30\)"):
        fed(DistributedDP(max_cohort=need), 60, sampling_rate=0.5)
    history = fed(DistributedDP(max_cohort=need, noise_clients=30), 60, sampling_rate=0.5).run()
    assert all(r.aborted is None for r in history)
    history = fed(DistributedDP(max_cohort=21, noise_clients=20)).run()
    assert all(r.aborted is None for r in history)


def test_noise_clients_gives_every_cohort_the_same_shares_and_scale():
    """Section 10.5: with one share size, a client that is sampled but drops out leaves the
    sum's distribution unchanged, and adding a surviving client adds one share of the same
    size (post-processing of the pair accounted). Per-cohort shares differ with the cohort."""
    from secfl.errors import InvalidArgument
    from secfl.hazmat.rng import Csprng
    from secfl.pipeline import DistributedDP, Pipeline, PipelineConfig

    def noise(dp: DistributedDP, n: int) -> tuple[object, int]:
        pipe = Pipeline(
            PipelineConfig(protocol="secagg", dp=dp),
            n_clients=n,
            dim=1000,
            dropout=0.2,
            rng=Csprng(seed=bytes(32)),
        )
        assert pipe.dp_plan is not None
        return pipe.dp_plan.noise, pipe.codec.scale_bits

    sized = DistributedDP(max_cohort=120, noise_clients=80)
    cohorts = (2, 3, 50, 79, 80, 81, 99, 100, 101, 120)
    assert len({noise(sized, n) for n in cohorts}) == 1
    per_cohort = DistributedDP(max_cohort=120)
    assert noise(per_cohort, 100)[0] != noise(per_cohort, 101)[0]  # m(100) = 80, m(101) = 81
    small = Pipeline(
        PipelineConfig(protocol="secagg", dp=sized),
        n_clients=50,
        dim=1000,
        dropout=0.2,
        rng=Csprng(seed=bytes(32)),
    )
    assert small.min_survivors == 40  # the protocol's floor still follows the cohort
    event = small.dp_event(survivors=40)
    assert event is not None
    assert event.noise_multiplier == pytest.approx((40 / 80) ** 0.5, rel=1e-9)  # 40 of 80
    with pytest.raises(InvalidArgument, match="noise_clients=121 exceeds max_cohort=120"):
        DistributedDP(max_cohort=120, noise_clients=121)
    with pytest.raises(InvalidArgument, match="noise_clients=80 goes with max_cohort"):
        DistributedDP(noise_clients=80)


def test_the_scale_is_the_max_cohorts_and_a_larger_round_fails_leaving_the_model(monkeypatch):
    from secfl.fl import FedAvgConfig, FederatedAveraging
    from secfl.hazmat.rng import Csprng
    from secfl.pipeline import DistributedDP, Pipeline, PipelineConfig

    dp = DistributedDP(max_cohort=300)
    cfg = PipelineConfig(protocol="secagg+", dp=dp)
    scales = {
        Pipeline(
            cfg, n_clients=n, dim=10000, dropout=0.2, rng=Csprng(seed=bytes(32))
        ).codec.scale_bits
        for n in (2, 20, 25, 26, 57, 58, 121, 122, 249, 250, 300)
    }
    assert len(scales) == 1  # without max_cohort: 26, 25, 24, 23 across these cohorts
    with pytest.raises(InvalidArgument, match=r"cohort of 301 clients exceeds.*max_cohort=300"):
        Pipeline(cfg, n_clients=301, dim=10000, rng=Csprng(seed=bytes(32)))

    # FedAvg refuses a K this small for 20 clients at q = 0.5 (tested above); let it pass
    # here so that rounds above K happen.
    monkeypatch.setattr("secfl.fl.fedavg._needed_max_cohort", lambda *a: 10)
    monkeypatch.setattr("secfl.fl.fedavg._check_small_rounds", lambda *a: None)  # likewise
    small = DistributedDP(max_cohort=10, noise_clients=8)
    fed = FederatedAveraging(
        FedAvgConfig(
            rounds=10, pipeline=PipelineConfig(protocol="secagg", dp=small), sampling_rate=0.5
        ),
        initial=np.zeros(4),
        n_clients=20,
        local_update=lambda i, p: (p + 0.01, 1),
        rng=Csprng(seed=bytes(32)),
    )
    for _ in range(10):  # about 41% of rounds sample more than 10 of the 20 clients
        before = fed.params.copy()
        record = fed.run_round()
        if record.sampled > 10:
            assert (
                record.aborted
                == f"{record.sampled} clients sampled, above DistributedDP(max_cohort=10)"
            )
            np.testing.assert_array_equal(fed.params, before)
            break
    else:
        pytest.fail("the seeded run never sampled more than 10 clients")


def test_simulated_dropouts_are_independent_coins_and_required_under_add_remove():
    """Spec 10.5, assumption (A): a fixed number of simulated dropouts makes one client's
    presence change who else drops (a swap), so add/remove DP needs per-client coins, and a
    round lost to them (which could depend on that presence) must be as unlikely as one
    above max_cohort."""
    from types import SimpleNamespace

    from secfl.dp.accounting import Neighboring
    from secfl.errors import InvalidArgument
    from secfl.fl import FedAvgConfig, FederatedAveraging
    from secfl.fl.fedavg import COHORT_MISS, _dropout_abort_probability
    from secfl.pipeline import DistributedDP, PipelineConfig
    from secfl.protocols.secagg import SecAggPhase

    def fed(dp: DistributedDP | None, **kwargs: object) -> FederatedAveraging:
        protocol = "plain" if dp is None else "secagg"  # plain: fast, and the same coins
        cfg = FedAvgConfig(
            rounds=40, pipeline=PipelineConfig(protocol=protocol, dp=dp), dropout=0.3, **kwargs
        )
        return _twenty_clients(cfg)

    sized = DistributedDP(max_cohort=21, noise_clients=16)
    with pytest.raises(InvalidArgument, match=r"exactly floor.*Give simulated_dropout=0\.00029"):
        fed(sized)
    fed(DistributedDP(neighboring=Neighboring.ZERO_OUT))  # the cohort's count is the same
    with pytest.raises(InvalidArgument, match=r"simulated_dropout must be .* \[0, dropout=0\.3\]"):
        FedAvgConfig(rounds=1, dropout=0.3, simulated_dropout=0.4)
    # Coins: a round of 20 loses more than 6 with probability ~1e-3: far above 1e-9 x delta
    with pytest.raises(InvalidArgument, match=r"the chance per round is 0\.00\d+.*e\.g\. 0\.00039"):
        fed(sized, simulated_dropout=0.1)
    assert 40 * _dropout_abort_probability(21, 1.0, 0.00039, 0.3) <= COHORT_MISS * 1e-5
    assert all(r.aborted is None for r in fed(sized, simulated_dropout=0.00039).run())
    # Each client drops on its own coin: exactly those whose uniform is below p
    fa = fed(None, simulated_dropout=0.3)
    fa._rng = SimpleNamespace(uniform=lambda n: np.array([0.1, 0.5, 0.29, 0.31, 0.0])[:n])
    protocol = SimpleNamespace(phases=(SecAggPhase.ADVERTISE, SecAggPhase.MASK))
    assert set(fa._dropouts(protocol, [11, 12, 13, 14, 15])) == {11, 13, 15}
    fixed = [r.dropped for r in fed(None).run()]
    assert set(fixed) == {6}  # floor(0.3 * 20) every round
    coins = [r.dropped for r in fed(None, simulated_dropout=0.1).run()]
    assert len(set(coins)) > 2  # Binomial(20, 0.1): the count varies
    assert 1.0 <= sum(coins) / len(coins) <= 3.0  # mean 2


def test_a_malformed_update_under_dp_is_the_zero_out_neighbour():
    """Known issue 8 (fixed): with distributed DP a client whose update is malformed sends
    zeros and its noise share instead of being left out, so the round is exactly the one
    where that client's update is zero (same seeds, same released sum); without DP it is
    left out."""
    from secfl.dp.accounting import Neighboring
    from secfl.pipeline import DistributedDP, PipelineConfig

    def run(dp: DistributedDP | None, broken: float) -> tuple[np.ndarray, RoundRecord]:
        def local_update(idx: int, params: np.ndarray) -> tuple[np.ndarray, int]:
            return (params + broken if idx == 3 else params + 0.01), 1

        fed = FederatedAveraging(
            FedAvgConfig(rounds=1, pipeline=PipelineConfig(protocol="secagg", dp=dp)),
            initial=np.zeros(4),
            n_clients=8,
            local_update=local_update,
            rng=Csprng(seed=bytes(32)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the zero update's "unchanged" warning
            (record,) = fed.run()
        return fed.params, record

    dp = DistributedDP(noise_multiplier=1.0, neighboring=Neighboring.ZERO_OUT)
    params, record = run(dp, float("nan"))
    zeroed, clean = run(dp, 0.0)
    assert "NaN" in record.rejected[3]
    assert record.survivors == clean.survivors == 8
    np.testing.assert_array_equal(params, zeroed)
    params, record = run(None, float("nan"))
    assert 3 in record.rejected
    assert record.survivors == 7
    np.testing.assert_allclose(params, np.full(4, 0.01), atol=1e-6)
