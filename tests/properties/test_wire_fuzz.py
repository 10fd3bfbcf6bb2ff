"""Wire fuzzing: mutated frames of every message type only raise SecflError (secfl.audit.fuzz)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secfl.audit.fuzz import FuzzTarget, Mutation, check_mutated_frame, fuzz_targets, mutations
from secfl.protocols import secagg

PROTOCOLS = ["plain", "secagg", "secagg+", "paillier"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mutated_frames_only_raise_secfl_errors(protocol):
    @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(
        target=st.sampled_from(fuzz_targets(protocol)),
        seed=st.binary(min_size=32, max_size=32),
        mutation=mutations(),
    )
    def prop(target, seed, mutation):
        check_mutated_frame(target, seed, mutation)

    prop()


def test_every_message_type_has_a_target():
    types = {t.msg_type for p in PROTOCOLS for t in fuzz_targets(p)}
    # secagg-v2 replaced KEYS 0x12 and SURVIVORS 0x16 by 0x1A and 0x1B (wire-v1 section 5);
    # secagg-v3 added the active mode's 0x1C-0x1F
    secagg = {*range(0x10, 0x20)} - {0x12, 0x16}
    assert types == {0x01, 0x02, *secagg, *range(0x30, 0x34)}


@pytest.mark.parametrize(
    ("mutation", "outcome"),
    [
        (Mutation("length", value=(1 << 32) - 1), "refused"),
        (Mutation("u32", at=8, value=(1 << 32) - 1, fix_length=True), "refused"),
        (Mutation("truncate", at=20, fix_length=True), "refused"),
        (Mutation("round", value=1), "refused"),
        (Mutation("type", value=secagg.MSG_MASKED_INPUT), "unchanged"),
    ],
)
def test_known_mutations_of_a_masked_input(mutation, outcome):
    target = FuzzTarget("secagg", secagg.MSG_MASKED_INPUT, "server", "hbc")
    assert check_mutated_frame(target, bytes(32), mutation) == outcome


def test_client_bound_mutation_closes_the_client():
    target = FuzzTarget("secagg", secagg.MSG_KEYS, "client", "active")
    assert check_mutated_frame(target, bytes(32), Mutation("flip", at=8 * 40)) == "refused"


def test_unknown_mutation_kind_is_a_value_error():
    with pytest.raises(ValueError, match="unknown mutation"):
        Mutation("melt").apply(b"SF\x01\x01\x00\x00\x00\x00")
