"""The audit of paillier-sum-v2 (secfl/audit/threshold.py): it passes on the real code and
fails, with the rule named, when a key holder's or the aggregator's check is removed."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from secfl.audit import AuditFailure
from secfl.audit import threshold as th
from secfl.audit.properties import Budget, Tally, audit_properties
from secfl.errors import IntegrityError, ProtocolAbort
from secfl.hazmat import threshold_paillier as tp
from secfl.protocols import paillier_threshold as pt

P = th.Plan


def _property(name: str):
    (prop,) = [p for p in audit_properties("paillier-threshold") if p.name == name]
    return prop


@pytest.mark.parametrize(
    "ops",
    [
        (),
        (("power", 1, 1, 2),),
        (("relabel", 1, 4, 2),),
        (("replay", 2, 2, 2),),
        (("combine", 1, 2, 2),),
        (("rerandomize", 3, 3, 2),),
        (("twice", 1, 1, 2),),
        (("unsigned", 2, 2, 2),),
        (("outsider", 1, 1, 2),),
        (("colluder-own", 1, 6, 4), ("colluder-rerandomized", 2, 6, 2)),
        (("colluder-copy", 1, 6, 2),),
    ],
)
def test_every_aggregator_move_is_refused_or_within_the_guarantee(ops) -> None:
    plans = [P(th.ROUND, (1, 2, 3), ops), P(th.OLD_ROUND, (2, 3, 4), ())]
    th.check_aggregator_plan(plans, [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (1, 1)])


def test_a_holder_that_skips_the_signatures_is_caught(monkeypatch) -> None:
    monkeypatch.setattr(pt, "_check_signed_input", lambda *args: None)
    with pytest.raises(AuditFailure, match=r"decrypt-only-signed-sets.*client 1's entry"):
        th.check_aggregator_plan([P(th.ROUND, (2, 3), (("power", 1, 1, 2),))], [(1, 0)])


def test_a_holder_that_answers_twice_a_round_is_caught(monkeypatch) -> None:
    real = pt.ThresholdPaillierKeyHolder.handle

    def forgetful(self, data):
        self._done_rounds = set()
        return real(self, data)

    monkeypatch.setattr(pt.ThresholdPaillierKeyHolder, "handle", forgetful)
    plans = [P(th.ROUND, (1, 2, 3), ()), P(th.ROUND, (1, 2, 3, 4), ())]
    deliveries = [(h, 0) for h in (1, 2, 3)] + [(h, 1) for h in (1, 2, 3)]
    with pytest.raises(AuditFailure) as info:
        th.check_aggregator_plan(plans, deliveries)
    rules = {v.rule for v in info.value.violations}
    assert {"one-answer-per-round", "one-set-per-round"} <= rules


@pytest.mark.parametrize("lie", th.LIES)
def test_each_lie_is_named(lie) -> None:
    th.check_lying_holders({2: lie, 5: "value"}, dropped=[4])


def test_an_aggregator_that_trusts_every_partial_is_caught(monkeypatch) -> None:
    monkeypatch.setattr(tp, "screen_partials", lambda pk, cts, partials, context: (partials, {}))
    with pytest.raises(AuditFailure, match="liars-"):
        th.check_lying_holders({1: "value"}, dropped=[])


def test_the_properties_pass_and_the_search_finds_a_removed_check(monkeypatch) -> None:
    budget = Budget(examples=20, seed=4)
    for name in ("aggregator-search", "lying-holders"):
        tally = Tally()
        _property(name).run(budget, tally)
        assert tally.examples >= 5
    # Without the signature check a holder decrypts what the aggregator derived; the
    # search finds such a request by itself (it is not told which move breaks it).
    monkeypatch.setattr(pt, "_check_signed_input", lambda *args: None)
    with pytest.raises(AuditFailure, match="decrypt-only-signed-sets"):
        _property("aggregator-search").run(Budget(examples=40, seed=4), Tally())


@pytest.mark.parametrize("flaw", th.FLAWS)
def test_every_changed_request_is_refused(flaw) -> None:
    th.check_request_forgery(flaw, 1)


@pytest.mark.parametrize("forgery", th.FORGERIES)
def test_every_forged_input_is_refused_and_the_sum_stays_exact(forgery) -> None:
    th.check_client_forgery(forgery, which=2)


def test_a_client_that_ignores_the_key_fingerprint_is_caught(monkeypatch) -> None:
    real = pt.m.Request.from_bytes
    own = th._world().public.fingerprint()

    def blind(data: bytes) -> pt.m.Request:  # reads every field but the key's name
        return dataclasses.replace(real(data), fingerprint=own)

    monkeypatch.setattr(pt.m.Request, "from_bytes", staticmethod(blind))
    with pytest.raises(AuditFailure, match="client-checks-request"):
        th.check_request_forgery("key", 1)


def test_an_aggregator_that_skips_signatures_is_caught(monkeypatch) -> None:
    monkeypatch.setattr(pt, "_check_signed_input", lambda *args: None)
    with pytest.raises(AuditFailure, match="refuses-forgeries"):
        th.check_client_forgery("foreign-signature", which=2)


@pytest.mark.parametrize("parameter", th.BOUNDS)
def test_every_config_bound_holds(parameter) -> None:
    for offset in range(8):
        th.check_config_bound(parameter, offset)


def test_a_loosened_bound_is_caught(monkeypatch) -> None:
    real = pt.ThresholdPaillierConfig.__post_init__

    def loose(self) -> None:  # a min_clients of 1 slips through
        if self.min_clients == 1:
            object.__setattr__(self, "min_clients", 2)
            real(self)
            object.__setattr__(self, "min_clients", 1)
            return
        real(self)

    monkeypatch.setattr(pt.ThresholdPaillierConfig, "__post_init__", loose)
    with pytest.raises(AuditFailure, match="min-clients at offset 1 was accepted"):
        th.check_config_bound("min-clients", 1)


def test_fresh_randomness_holds_and_a_fixed_generator_is_caught(monkeypatch) -> None:
    th.check_fresh_randomness()
    real = pt.ThresholdPaillierProtocol.client

    def fixed(self, *, round_id, client_id, value):
        self._rng = th._seeded("one seed for every client")
        return real(self, round_id=round_id, client_id=client_id, value=value)

    monkeypatch.setattr(pt.ThresholdPaillierProtocol, "client", fixed)
    with pytest.raises(AuditFailure, match="fresh-randomness"):
        th.check_fresh_randomness()


def test_a_holder_that_refuses_a_signed_set_is_caught(monkeypatch) -> None:
    real = pt.ThresholdPaillierKeyHolder.handle

    def timid(self, data):  # refuses every request of five inputs or more
        cfg = th._world().config
        request = pt.m.DecryptRequest.from_bytes(
            data, size=cfg.input_bytes(th.DIM), max_inputs=cfg.n_clients
        )
        if len(request.inputs) >= 5:
            raise ProtocolAbort("too many")
        return real(self, data)

    monkeypatch.setattr(pt.ThresholdPaillierKeyHolder, "handle", timid)
    with pytest.raises(AuditFailure, match="answers-signed-sets"):
        th.check_aggregator_plan([P(th.ROUND, th.HONEST, ())], [(1, 0)])


def test_an_unregistered_client_gets_a_typed_refusal_not_a_crash(monkeypatch) -> None:
    # Without the registry look-up the holder calls .verify on None: the audit's explicit
    # example of the "outsider" move (on a set of distinct inputs) reaches it.
    def unchecked(cfg, round_id, cid, dim, digest, sig) -> None:
        cfg.registry.get(cid).verify(sig, cfg._signed_message(round_id, cid, dim, digest))

    monkeypatch.setattr(pt, "_check_signed_input", unchecked)
    with pytest.raises(AttributeError):
        _property("aggregator-search").run(Budget(examples=5, seed=1), Tally())


@pytest.mark.parametrize("dim", [1, th.DIM])
def test_a_full_round_gives_the_exact_sum(dim) -> None:
    th.check_full_round(dim)


def test_a_holder_that_refuses_the_largest_request_is_caught(monkeypatch) -> None:
    real = pt.m.DecryptRequest.from_bytes

    def strict(data, *, size, max_inputs):  # "at most" read as "fewer than"
        return real(data, size=size, max_inputs=max_inputs - 1)

    monkeypatch.setattr(pt.m.DecryptRequest, "from_bytes", staticmethod(strict))
    with pytest.raises(AuditFailure, match="full-round"):
        th.check_full_round(th.DIM)


@pytest.mark.parametrize("shape", th.SHAPES)
def test_an_out_of_range_input_ends_the_round_with_a_clean_integrity_error(shape) -> None:
    th.check_out_of_range_input(2, shape)


def test_a_refusal_that_names_the_decrypted_value_is_caught(monkeypatch) -> None:
    # the aggregator no longer replaces the decoder's error (which names the slot value)
    monkeypatch.setattr(pt.contextlib, "suppress", lambda *errors: contextlib.nullcontext())
    with pytest.raises(AuditFailure, match="names a decrypted value"):
        th.check_out_of_range_input(1, "every-slot")


def test_a_refusal_that_chains_the_decoder_error_is_caught(monkeypatch) -> None:
    @contextlib.contextmanager
    def chaining(*errors):
        try:
            yield
        except IntegrityError as e:
            raise IntegrityError("the sum is malformed") from e

    monkeypatch.setattr(pt.contextlib, "suppress", chaining)
    with pytest.raises(AuditFailure, match="chains"):
        th.check_out_of_range_input(1, "every-slot")


def test_key_generation_draws_from_its_generator_and_a_fixed_one_is_caught(monkeypatch) -> None:
    th.check_key_generation()
    real = tp.deal_key

    def fixed(p, q, *, holders, threshold, rng):  # the dealer ignores the generator given
        return real(p, q, holders=holders, threshold=threshold, rng=th._seeded("dealer"))

    monkeypatch.setattr(tp, "deal_key", fixed)
    with pytest.raises(AuditFailure, match="keygen-randomness"):
        th.check_key_generation()
