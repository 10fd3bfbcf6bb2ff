"""Versioned, length-checked binary framing for protocol messages (no pickle).

A frame is ``MAGIC (2 bytes "SF") | version (u8) | message type (u8) | body length (u32 BE)
| body``. Bodies are sequences of fixed-width big-endian integers, length-prefixed byte
strings and integer vectors over Z_{2^k} packed little-endian at ceil(k/8) bytes per entry.
Every length is checked against the bytes actually present *before* anything is allocated,
so decoding untrusted bytes either returns values or raises :class:`IntegrityError` (or
:class:`InvalidArgument` for a caller's bad parameters), never another exception and never
an unbounded allocation. Normative description: ``protocols/wire-v1.md``.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np

from secfl._text import plural
from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat.prg import uint_dtype

__all__ = [
    "HEADER_BYTES",
    "MAGIC",
    "MAX_FRAME_BYTES",
    "VERSION",
    "Reader",
    "Writer",
    "frame",
    "packed_width",
    "unframe",
]

MAGIC: Final = b"SF"
VERSION: Final = 1
HEADER_BYTES: Final = 8
MAX_FRAME_BYTES: Final = (1 << 32) - 1
_HEADER = struct.Struct(">2sBBI")


def packed_width(bits: int) -> int:
    """Bytes per entry of a packed Z_{2^bits} vector: ceil(bits / 8)."""
    if not 1 <= bits <= 64:
        raise InvalidArgument(f"bits must be in 1..64, got {bits}")
    return (bits + 7) // 8


def frame(msg_type: int, body: bytes) -> bytes:
    """Wrap ``body`` in a version-1 frame of type ``msg_type`` (0..255)."""
    if not 0 <= msg_type <= 255:
        raise InvalidArgument(f"message type must be in 0..255, got {msg_type}")
    if len(body) > MAX_FRAME_BYTES:
        raise InvalidArgument(f"message body of {len(body)} bytes exceeds the 2^32-1 limit")
    return _HEADER.pack(MAGIC, VERSION, msg_type, len(body)) + body


def unframe(data: bytes) -> tuple[int, memoryview]:
    """Check a frame's header and length; return ``(message type, body)``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument(f"a frame must be bytes, got {type(data).__name__}")
    view = _byte_view(data)
    if len(view) < HEADER_BYTES:
        raise IntegrityError(f"frame of {len(view)} bytes is shorter than its 8-byte header")
    magic, version, msg_type, length = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise IntegrityError(f"bad frame magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise IntegrityError(f"unsupported wire version {version}; this library speaks {VERSION}")
    if length != len(view) - HEADER_BYTES:
        raise IntegrityError(
            f"frame declares a {length}-byte body but carries {len(view) - HEADER_BYTES}"
        )
    return msg_type, view[HEADER_BYTES:]


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B")


class Writer:
    """Accumulates a message body."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> Writer:
        return self._pack(">B", v)

    def u16(self, v: int) -> Writer:
        return self._pack(">H", v)

    def u32(self, v: int) -> Writer:
        return self._pack(">I", v)

    def u64(self, v: int) -> Writer:
        return self._pack(">Q", v)

    def raw(self, b: bytes) -> Writer:
        """Fixed-size bytes: the reader must know the length."""
        self._parts.append(bytes(b))
        return self

    def blob(self, b: bytes) -> Writer:
        """Length-prefixed (u32) bytes."""
        self.u32(len(b))
        return self.raw(b)

    def vector(self, v: np.ndarray, bits: int) -> Writer:
        """u32 count, then entries of Z_{2^bits} at ceil(bits/8) little-endian bytes each."""
        width = packed_width(bits)
        arr = np.asarray(v)
        if arr.ndim != 1 or arr.dtype.kind != "u":
            raise InvalidArgument(f"expected a 1-D unsigned vector, got {arr.dtype} {arr.shape}")
        if bits < 64 and arr.size and int(arr.max()) >> bits:
            raise InvalidArgument(f"vector has entries >= 2^{bits}")
        self.u32(arr.size)
        le = arr.astype(uint_dtype(bits).newbyteorder("<"), copy=False)
        if le.itemsize == width:
            self._parts.append(le.tobytes())
        else:  # e.g. 24-bit entries in 3 bytes: keep the low `width` bytes of each word
            words = le.view(np.uint8).reshape(-1, le.itemsize)
            self._parts.append(np.ascontiguousarray(words[:, :width]).tobytes())
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def _pack(self, fmt: str, v: int) -> Writer:
        try:
            self._parts.append(struct.pack(fmt, v))
        except struct.error as e:
            raise InvalidArgument(f"value {v!r} does not fit wire field {fmt}") from e
        return self


class Reader:
    """Reads a message body; every read is bounds-checked against the bytes present."""

    __slots__ = ("_pos", "_view")

    def __init__(self, body: bytes | memoryview) -> None:
        if not isinstance(body, bytes | bytearray | memoryview):
            raise InvalidArgument(f"a message body must be bytes, got {type(body).__name__}")
        self._view = _byte_view(body)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._view) - self._pos

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.remaining:
            raise IntegrityError(
                f"message truncated: {what} needs {n} bytes, {self.remaining} remain"
            )
        out = self._view[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return int(self._take(1, "u8")[0])

    def u16(self) -> int:
        return int.from_bytes(self._take(2, "u16"), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4, "u32"), "big")

    def u64(self) -> int:
        return int.from_bytes(self._take(8, "u64"), "big")

    def raw(self, n: int) -> bytes:
        return bytes(self._take(n, f"{n}-byte field"))

    def blob(self, *, max_len: int | None = None) -> bytes:
        n = self.u32()
        if max_len is not None and n > max_len:
            raise IntegrityError(f"byte field of {n} bytes exceeds its limit of {max_len}")
        return self.raw(n)

    def vector(self, bits: int, *, expected: int | None = None) -> np.ndarray:
        """A packed Z_{2^bits} vector; ``expected`` pins its length."""
        count = self.u32()
        if expected is not None and count != expected:
            raise IntegrityError(
                f"vector has {plural(count, 'entry', 'entries')}, expected {expected}"
            )
        width = packed_width(bits)
        raw = np.frombuffer(self._take(count * width, f"{count}-entry vector"), dtype=np.uint8)
        dt = uint_dtype(bits)
        out: np.ndarray
        if dt.itemsize == width:
            out = raw.view(dt.newbyteorder("<")).astype(dt)
        else:
            words = np.zeros((count, dt.itemsize), dtype=np.uint8)
            words[:, :width] = raw.reshape(count, width)
            out = words.view(dt.newbyteorder("<")).reshape(count).astype(dt)
        if bits < dt.itemsize * 8 and count and int(out.max()) >> bits:
            raise IntegrityError(f"vector has entries >= 2^{bits} (non-canonical encoding)")
        return out

    def finish(self) -> None:
        """Raise unless every byte of the body was consumed."""
        if self.remaining:
            raise IntegrityError(f"{self.remaining} unexpected trailing bytes in message")
