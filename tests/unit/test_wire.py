import numpy as np
import pytest

from secfl import wire
from secfl.errors import IntegrityError, InvalidArgument


def test_frame_layout():
    assert wire.frame(2, b"ab") == b"SF\x01\x02\x00\x00\x00\x02ab"
    t, body = wire.unframe(b"SF\x01\x02\x00\x00\x00\x02ab")
    assert t == 2
    assert bytes(body) == b"ab"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"SF\x01", "shorter"),
        (b"XX\x01\x02\x00\x00\x00\x00", "magic"),
        (b"SF\x02\x02\x00\x00\x00\x00", "version"),
        (b"SF\x01\x02\x00\x00\x00\x03ab", "declares"),
        (b"SF\x01\x02\x00\x00\x00\x01ab", "declares"),
    ],
)
def test_unframe_rejects(data, match):
    with pytest.raises(IntegrityError, match=match):
        wire.unframe(data)


@pytest.mark.parametrize("bits", [1, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 63, 64])
def test_vector_round_trip(bits):
    from secfl.hazmat.prg import expand_uniform

    v = expand_uniform(b"\x07" * 32, 257, bits)
    body = wire.Writer().vector(v, bits).getvalue()
    assert len(body) == 4 + 257 * wire.packed_width(bits)
    r = wire.Reader(body)
    out = r.vector(bits, expected=257)
    r.finish()
    assert out.dtype == v.dtype
    assert np.array_equal(out, v)


def test_vector_packing_is_little_endian_at_ceil_k_over_8():
    body = wire.Writer().vector(np.array([0x123456, 1], dtype=np.uint32), 24).getvalue()
    assert body == b"\x00\x00\x00\x02" + b"\x56\x34\x12" + b"\x01\x00\x00"


def test_non_canonical_vector_rejected():
    body = b"\x00\x00\x00\x01" + b"\xff\xff\xff"  # 24-bit entry read as 20-bit
    with pytest.raises(IntegrityError, match="non-canonical"):
        wire.Reader(body).vector(20)


def test_huge_count_rejected_without_allocation():
    body = b"\xff\xff\xff\xff" + b"\x00" * 8
    with pytest.raises(IntegrityError, match="truncated"):
        wire.Reader(body).vector(64)


def test_blob_limit_and_trailing_bytes():
    body = wire.Writer().blob(b"hello").u8(1).getvalue()
    r = wire.Reader(body)
    assert r.blob(max_len=5) == b"hello"
    with pytest.raises(IntegrityError, match="trailing"):
        r.finish()
    with pytest.raises(IntegrityError, match="limit"):
        wire.Reader(body).blob(max_len=4)


def test_writer_validates():
    with pytest.raises(InvalidArgument):
        wire.Writer().u8(256)
    with pytest.raises(InvalidArgument):
        wire.Writer().vector(np.array([16], dtype=np.uint8), 4)
    with pytest.raises(InvalidArgument):
        wire.Writer().vector(np.array([-1], dtype=np.int64), 8)
    with pytest.raises(InvalidArgument):
        wire.frame(256, b"")


def test_integers_big_endian():
    body = wire.Writer().u16(0x0102).u32(0x03040506).u64(7).getvalue()
    assert body == bytes.fromhex("0102030405060000000000000007")
    r = wire.Reader(body)
    assert (r.u16(), r.u32(), r.u64()) == (0x0102, 0x03040506, 7)


def test_non_contiguous_memoryview_and_bad_bits():
    data = bytes(wire.frame(1, b"xy"))
    strided = memoryview(bytes(x for b in data for x in (b, 0)))[::2]
    assert wire.unframe(strided)[0] == 1
    with pytest.raises(InvalidArgument):
        wire.Writer().vector(np.array([1], dtype=np.uint8), -1)
    with pytest.raises(InvalidArgument):
        wire.Reader(12345)  # type: ignore[arg-type]
