"""What every protocol's message classes share: opening a frame, and a round's vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from secfl import wire
from secfl.errors import IntegrityError

__all__ = ["VectorMessage", "open_frame"]

V = TypeVar("V", bound="VectorMessage")


def open_frame(data: bytes, expected: int, what: str = "a message") -> tuple[wire.Reader, int]:
    """A reader of a frame of type ``expected``, past its leading u64 round id, and that id."""
    msg_type, body = wire.unframe(data)
    if msg_type != expected:
        raise IntegrityError(f"expected {what} (type {expected:#04x}), got type {msg_type:#04x}")
    r = wire.Reader(body)
    return r, r.u64()


@dataclass(frozen=True)
class VectorMessage:
    """A round id and one vector over Z_{2^bits} (an input, a masked input, a sum)."""

    TYPE: ClassVar[int]
    WHAT: ClassVar[str]
    round_id: int
    vector: np.ndarray
    bits: int

    def to_bytes(self) -> bytes:
        body = wire.Writer().u64(self.round_id).vector(self.vector, self.bits).getvalue()
        return wire.frame(self.TYPE, body)

    @classmethod
    def from_bytes(cls: type[V], data: bytes, *, bits: int, dim: int) -> V:
        r, round_id = open_frame(data, cls.TYPE, cls.WHAT)
        vector = r.vector(bits, expected=dim)
        r.finish()
        return cls(round_id, vector, bits)
