"""Hypothesis properties of the codec, the wire decoder and the plaintext round."""

import contextlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secfl import wire
from secfl.encoding import FixedPointCodec, Rounding, plan_codec
from secfl.errors import IntegrityError, InvalidArgument, SecflError
from secfl.hazmat.rng import Csprng
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.runtime.simulator import simulate_round

floats_in_unit = st.floats(-1.0, 1.0, allow_nan=False, width=64)


@st.composite
def codec_and_vectors(draw):
    n = draw(st.integers(1, 20))
    bits = draw(st.integers(16, 64))
    c = plan_codec(n_clients=n, clip_bound=1.0, bits=bits)
    d = draw(st.integers(1, 16))
    xs = [draw(hnp.arrays(np.float64, d, elements=floats_in_unit)) for _ in range(n)]
    return c, xs


@given(codec_and_vectors(), st.sampled_from(list(Rounding)), st.binary(min_size=32, max_size=32))
def test_round_trip_within_one_quantum(cv, rounding, seed):
    c, xs = cv
    got = c.decode(c.encode(xs[0], rounding=rounding, rng=Csprng(seed=seed)))
    bound = c.quantum / 2 if rounding is Rounding.NEAREST else c.quantum
    assert np.all(np.abs(got - xs[0]) <= bound * (1 + 1e-12))


def _ring_sum(c: FixedPointCodec, encs):
    total = np.zeros(encs[0].size, dtype=np.uint64)
    for e in encs:
        total += e.astype(np.uint64)
    if c.bits < 64:
        total &= np.uint64((1 << c.bits) - 1)
    return total.astype(c.dtype)


@given(codec_and_vectors(), st.binary(min_size=32, max_size=32))
def test_decoded_sum_within_n_quanta(cv, seed):
    c, xs = cv
    rng = Csprng(seed=seed)
    encs = [c.encode(x, rounding=Rounding.STOCHASTIC, rng=rng) for x in xs]
    got = c.decode(_ring_sum(c, encs))
    exact = np.sum(xs, axis=0)
    # Float64 decoding adds relative error ~2^-53 on top of len(xs) quanta of rounding.
    assert np.all(np.abs(got - exact) <= len(xs) * c.quantum + 1e-9 * len(xs))


@given(st.binary(max_size=200))
def test_unframe_arbitrary_bytes_only_documented_errors(data):
    try:
        msg_type, body = wire.unframe(data)
    except (IntegrityError, InvalidArgument):
        return
    assert wire.HEADER_BYTES + len(body) == len(data)
    assert 0 <= msg_type <= 255


@given(st.binary(max_size=200), st.integers(1, 64))
def test_reader_arbitrary_bytes_only_documented_errors(data, bits):
    r = wire.Reader(data)
    try:
        r.u8()
        r.blob(max_len=64)
        r.vector(bits)
        r.finish()
    except (IntegrityError, InvalidArgument):
        pass


@given(st.data())
def test_plaintext_server_never_raises_undocumented_errors(data):
    p = PlaintextProtocol(bits=16)
    server = p.server(round_id=1, client_ids=frozenset({1, 2}), dim=3)
    server.start()
    for _ in range(data.draw(st.integers(1, 4))):
        msg = data.draw(
            st.binary(max_size=40) | st.just(b"SF\x01\x02\x00\x00\x00\x0e" + b"\0" * 14)
        )
        with contextlib.suppress(SecflError):
            server.receive(data.draw(st.sampled_from([1, 2, 3])), msg)


@given(
    st.integers(1, 12),
    st.integers(1, 8),
    st.sets(st.integers(1, 12)),
    st.binary(min_size=32, max_size=32),
)
def test_plaintext_round_sums_survivors(n, d, dropped, seed):
    rng = Csprng(seed=seed)
    inputs = {c: rng.uint64(d) for c in range(1, n + 1)}
    dropouts = {c: "input" for c in dropped if c <= n}
    rep = simulate_round(PlaintextProtocol(bits=64), inputs, dropouts=dropouts)
    if len(dropouts) == n:
        assert rep.aborted is not None
    else:
        assert rep.correct
        assert rep.result is not None
        assert rep.result.survivors == set(inputs) - set(dropouts)
