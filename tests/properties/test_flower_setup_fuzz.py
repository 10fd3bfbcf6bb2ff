"""The Flower set-up frame (RUNTIME_SETUP, 0x51): round trips, and untrusted bytes only ever
raise secfl's typed errors (a node parses it from whatever the SuperLink delivers)."""

from __future__ import annotations

import contextlib
import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from secfl.audit.fuzz import Mutation, mutations
from secfl.errors import IntegrityError, InvalidArgument
from secfl.fl import Weighting
from secfl.integrations._flower_wire import PaillierParams, RoundSetup
from secfl.pipeline import DistributedDP, DPMechanism
from secfl.protocols.secagg import ThreatModel

finite = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@st.composite
def setups(draw: st.DrawFn) -> RoundSetup:
    protocol = draw(st.sampled_from(["plain", "secagg", "secagg+", "paillier"]))
    n_clients = draw(st.integers(2, 10_000))
    active = protocol == "secagg" and draw(st.booleans())
    dp = draw(
        st.none()
        | st.builds(
            DistributedDP,
            mechanism=st.sampled_from(list(DPMechanism)),
            noise_multiplier=finite,
            delta=st.floats(min_value=1e-12, max_value=0.5),
            beta=st.floats(min_value=0.0, max_value=0.99),
        )
    )
    paillier = None
    if protocol == "paillier":
        paillier = PaillierParams(
            n=draw(st.integers(3, 1 << 4096)),
            value_bits=draw(st.integers(1, 64)),
            min_clients=draw(st.integers(2, n_clients)),
        )
    return RoundSetup(
        round_id=draw(st.integers(0, (1 << 64) - 1)),
        client_id=(
            draw(st.integers(0, (1 << 32) - 1)) if active else draw(st.integers(1, n_clients))
        ),
        n_clients=n_clients,
        dim=draw(st.integers(1, (1 << 32) - 1)),
        protocol=protocol,
        bits=draw(st.integers(1, 64)),
        scale_bits=draw(st.integers(-64, 191)),
        clip_bound=draw(finite),
        dropout=draw(st.floats(min_value=0.0, max_value=0.99)),
        weighting=draw(st.sampled_from([Weighting.UNIFORM, Weighting.EXAMPLES])),
        example_cap=draw(st.integers(1, (1 << 32) - 1)),
        weight_key=draw(st.text(max_size=20)),
        pipeline_seed=draw(st.binary(min_size=32, max_size=32)),
        dp=dp,
        paillier_bits=draw(st.integers(0, (1 << 16) - 1)),
        paillier=paillier,
        threat_model=ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS,
        registry_digest=draw(st.binary(min_size=32, max_size=32)) if active else b"",
        adaptive=draw(st.booleans()),
    )


@given(setups())
def test_setup_frames_round_trip(setup: RoundSetup) -> None:
    assert RoundSetup.from_bytes(setup.to_bytes()) == setup


@given(setups(), mutations())
def test_mutated_setup_frames_parse_to_a_valid_setup_or_raise_typed_errors(
    setup: RoundSetup, mutation: Mutation
) -> None:
    data = mutation.apply(setup.to_bytes())
    try:
        parsed = RoundSetup.from_bytes(data)
    except (IntegrityError, InvalidArgument):
        return
    # Whatever parses is a valid set-up (its invariants were checked) that re-encodes to a
    # frame parsing to the same thing.
    assert RoundSetup.from_bytes(parsed.to_bytes()) == parsed
    assert dataclasses.replace(parsed) == parsed  # re-runs the invariant checks


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_typed_errors(data: bytes) -> None:
    with contextlib.suppress(IntegrityError, InvalidArgument):
        RoundSetup.from_bytes(data)
