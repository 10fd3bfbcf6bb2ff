"""The plaintext baseline's two messages (plaintext-v1) as small typed classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from secfl import wire
from secfl.protocols._messages import VectorMessage, open_frame

__all__ = ["Input", "Request"]


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
        r, round_id = open_frame(data, cls.TYPE, "a request")
        out = cls(round_id, r.u32(), r.u8())
        r.finish()
        return out


@dataclass(frozen=True)
class Input(VectorMessage):
    """Client -> server: its input, in the clear."""

    TYPE: ClassVar[int] = 0x02
    WHAT: ClassVar[str] = "an input message"
