"""The plaintext baseline's two messages (plaintext-v1) as small typed classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from secfl import wire
from secfl.errors import IntegrityError

__all__ = ["Input", "Request"]


def _open(data: bytes, expected: int, what: str) -> tuple[wire.Reader, int]:
    msg_type, body = wire.unframe(data)
    if msg_type != expected:
        raise IntegrityError(f"expected {what} (type {expected}), got {msg_type}")
    r = wire.Reader(body)
    return r, r.u64()


@dataclass(frozen=True)
class Request:
    """Server -> client: send your input of ``dim`` values over Z_{2^bits}."""

    TYPE: ClassVar[int] = 0x01
    round_id: int
    dim: int
    bits: int

    def to_bytes(self) -> bytes:
        body = wire.Writer().u64(self.round_id).u32(self.dim).u8(self.bits).getvalue()
        return wire.frame(self.TYPE, body)

    @classmethod
    def from_bytes(cls, data: bytes) -> Request:
        r, round_id = _open(data, cls.TYPE, "a request")
        out = cls(round_id, r.u32(), r.u8())
        r.finish()
        return out


@dataclass(frozen=True)
class Input:
    """Client -> server: its input, in the clear."""

    TYPE: ClassVar[int] = 0x02
    round_id: int
    vector: np.ndarray
    bits: int

    def to_bytes(self) -> bytes:
        body = wire.Writer().u64(self.round_id).vector(self.vector, self.bits).getvalue()
        return wire.frame(self.TYPE, body)

    @classmethod
    def from_bytes(cls, data: bytes, *, bits: int, dim: int) -> Input:
        r, round_id = _open(data, cls.TYPE, "an input message")
        vector = r.vector(bits, expected=dim)
        r.finish()
        return cls(round_id, vector, bits)
