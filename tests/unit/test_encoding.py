import math

import numpy as np
import pytest

from secfl.encoding import FixedPointCodec, Norm, Rounding, plan_codec, required_bits
from secfl.errors import EncodingOverflow, InvalidArgument, SecflError
from secfl.hazmat.rng import Csprng


def codec(bits: int = 32, scale_bits: int = 16, max_abs: float = 1.0, n: int = 10):
    return FixedPointCodec(bits=bits, scale_bits=scale_bits, max_abs=max_abs, n_clients=n)


def test_encode_known_values():
    c = codec(bits=16, scale_bits=4, max_abs=2.0, n=4)
    enc = c.encode(np.array([0.0, 1.0, -1.0, 0.5, -2.0], dtype=np.float64))
    assert enc.dtype == np.uint16
    assert enc.tolist() == [0, 16, 65536 - 16, 8, 65536 - 32]


def test_nearest_rounds_half_to_even():
    c = codec(bits=16, scale_bits=0, max_abs=4.0, n=1)
    assert c.quantize(np.array([0.5, 1.5, 2.5, -0.5])).tolist() == [0, 2, 2, 0]


@pytest.mark.parametrize("bits", [8, 12, 16, 24, 32, 40, 63, 64])
def test_round_trip_within_half_quantum(bits):
    c = plan_codec(n_clients=1, clip_bound=1.0, bits=bits)
    x = np.linspace(-1.0, 1.0, 1001)
    assert c.encode(x).dtype.itemsize * 8 >= bits
    err = np.abs(c.decode(c.encode(x)) - x)
    assert err.max() <= c.quantum / 2


def test_sum_of_negatives_decodes_signed():
    c = codec(n=3)
    parts = [c.encode(np.array([-0.75, 0.25])) for _ in range(3)]
    total = (parts[0].astype(np.uint64) + parts[1] + parts[2]) & np.uint64(2**32 - 1)
    assert c.decode(total.astype(np.uint32)).tolist() == [-2.25, 0.75]


def test_float32_input_accepted():
    c = codec()
    assert c.encode(np.ones(3, dtype=np.float32)).tolist() == [65536] * 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rejected(bad):
    with pytest.raises(InvalidArgument, match="index 1"):
        codec().encode(np.array([0.0, bad, 0.0]))


def test_integer_input_rejected():
    with pytest.raises(InvalidArgument, match="float32 or float64"):
        codec().encode(np.array([1, 2, 3]))


def test_out_of_range_raises_overflow_not_wrap():
    with pytest.raises(EncodingOverflow, match="max_abs"):
        codec(max_abs=1.0).encode(np.array([1.5]))


def test_stochastic_needs_rng():
    with pytest.raises(InvalidArgument, match="rng"):
        codec().encode(np.zeros(2), rounding=Rounding.STOCHASTIC)


def test_stochastic_rounding_is_unbiased():
    # 0.3 quanta: nearest rounding always gives 0; stochastic must average to 0.3.
    c = codec(scale_bits=0, max_abs=1.0, n=1)
    x = np.full(200_000, 0.3)
    q = c.quantize(x, rounding=Rounding.STOCHASTIC, rng=Csprng(seed=bytes(32)))
    assert set(np.unique(q).tolist()) == {0, 1}
    # std of the mean = sqrt(0.21/200000) ~ 0.001; allow 5 sigma.
    assert abs(q.mean() - 0.3) < 0.005


def test_stochastic_rounding_deterministic_for_a_seed():
    c = codec()
    x = np.linspace(-1, 1, 100)
    a = c.encode(x, rounding=Rounding.STOCHASTIC, rng=Csprng(seed=b"\x01" * 32))
    b = c.encode(x, rounding=Rounding.STOCHASTIC, rng=Csprng(seed=b"\x01" * 32))
    assert np.array_equal(a, b)


def test_constructor_rejects_plan_that_wraps():
    with pytest.raises(EncodingOverflow, match="needs 33 bits"):
        FixedPointCodec(bits=32, scale_bits=30, max_abs=1.0, n_clients=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 7}, "bits"),
        ({"bits": 65}, "bits"),
        ({"max_abs": 0.0}, "max_abs"),
        ({"max_abs": math.nan}, "max_abs"),
        ({"n": 0}, "n_clients"),
        ({"scale_bits": 60}, "scale_bits"),
    ],
)
def test_constructor_validates(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        codec(**kwargs)


def test_planner_from_precision_picks_minimal_bits():
    c = plan_codec(n_clients=1000, clip_bound=1.0, precision=1e-5)
    assert c.scale_bits == 17  # 2^-17 <= 1e-5 < 2^-16
    assert c.quantum <= 1e-5
    assert c.bits == required_bits(1000, 1.0, 17)
    # one fewer bit would not hold the worst-case sum
    worst = 1000 * (math.floor(1.0 * 2**17) + 1)
    assert worst < 2 ** (c.bits - 1)
    assert worst >= 2 ** (c.bits - 2)


def test_planner_from_bits_picks_finest_scale():
    c = plan_codec(n_clients=10, clip_bound=1.0, bits=32)
    assert c.scale_bits == 27
    with pytest.raises(EncodingOverflow):
        FixedPointCodec(bits=32, scale_bits=28, max_abs=1.0, n_clients=10)


def test_planner_worst_case_sum_does_not_wrap():
    n = 7
    c = plan_codec(n_clients=n, clip_bound=0.5, bits=16)
    rng = Csprng(seed=bytes(32))
    x = np.full(4, 0.5)
    total = np.zeros(4, dtype=np.uint64)
    for _ in range(n):
        total += c.encode(x, rounding=Rounding.STOCHASTIC, rng=rng)
    total &= np.uint64(0xFFFF)
    assert np.allclose(c.decode(total.astype(np.uint16)), n * 0.5, atol=n * c.quantum)
    total_neg = (np.uint64(0) - total) & np.uint64(0xFFFF)
    assert np.allclose(c.decode(total_neg.astype(np.uint16)), -n * 0.5, atol=n * c.quantum)


def test_planner_overflow_names_parameters():
    with pytest.raises(EncodingOverflow, match=r"precision|clip_bound"):
        plan_codec(n_clients=10**6, clip_bound=1e6, precision=1e-12)
    with pytest.raises(EncodingOverflow, match="raise bits"):
        plan_codec(n_clients=1000, clip_bound=1.0, precision=1e-9, bits=32)


def test_planner_needs_precision_or_bits():
    with pytest.raises(InvalidArgument):
        plan_codec(n_clients=2, clip_bound=1.0)


def test_planner_norm_must_be_enum():
    with pytest.raises(InvalidArgument):
        plan_codec(n_clients=2, clip_bound=1.0, bits=16, norm="l2")  # type: ignore[arg-type]
    assert plan_codec(n_clients=2, clip_bound=1.0, bits=16, norm=Norm.LINF).bits == 16


def test_centred_rejects_wrong_dtype():
    with pytest.raises(InvalidArgument, match="dtype"):
        codec().decode(np.zeros(3, dtype=np.uint64))


def test_errors_are_secfl_errors():
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(EncodingOverflow, SecflError)


def test_planner_precision_just_below_a_power_of_two():
    p = math.nextafter(2**-10, 0)
    assert plan_codec(n_clients=1, clip_bound=1.0, precision=p).quantum <= p


def test_huge_clip_bound_is_encoding_overflow():
    with pytest.raises(EncodingOverflow):
        plan_codec(n_clients=1, clip_bound=1e300, bits=64)
    with pytest.raises(EncodingOverflow):
        FixedPointCodec(bits=64, scale_bits=52, max_abs=1e300, n_clients=1)


def test_float32_scaled_in_float64():
    c = codec(bits=40, scale_bits=30, max_abs=1.0, n=1)
    x32 = np.array([-0.3, 0.1], dtype=np.float32)
    assert np.array_equal(c.quantize(x32), c.quantize(x32.astype(np.float64)))


def test_decode_rejects_values_outside_ring():
    c = FixedPointCodec(bits=12, scale_bits=2, max_abs=1.0, n_clients=1)
    with pytest.raises(InvalidArgument, match="Z_M"):
        c.decode(np.array([5000], dtype=np.uint16))
