"""Packed Paillier's messages (paillier-sum-v1 section 8) as small typed classes.

``to_bytes`` writes a frame, ``from_bytes`` parses one and checks everything structural
(frame type, exact lengths), raising :class:`~secfl.errors.IntegrityError` for malformed
bytes. The round id is returned, not checked: each party compares it with its own and says
why it refuses (:mod:`secfl.protocols.paillier`). The audit builds its forgeries from these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from secfl import wire
from secfl.protocols._messages import VectorMessage, open_frame

__all__ = ["FINGERPRINT_BYTES", "DecryptedSum", "EncryptedSum", "Input", "Request"]

FINGERPRINT_BYTES = 16


@dataclass(frozen=True)
class Request:
    """Aggregator -> client: the round's parameters and the public key's fingerprint."""

    TYPE: ClassVar[int] = 0x30
    round_id: int
    dim: int
    bits: int
    value_bits: int
    n_clients: int
    fingerprint: bytes

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(self.dim).u8(self.bits).u8(self.value_bits)
        return wire.frame(self.TYPE, w.u32(self.n_clients).raw(self.fingerprint).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> Request:
        r, round_id = open_frame(data, cls.TYPE)
        out = cls(round_id, r.u32(), r.u8(), r.u8(), r.u32(), r.raw(FINGERPRINT_BYTES))
        r.finish()
        return out


@dataclass(frozen=True)
class Input:
    """Client -> aggregator: its packed ciphertexts (``size`` bytes, fixed by the round)."""

    TYPE: ClassVar[int] = 0x31
    round_id: int
    ciphertexts: bytes

    def to_bytes(self) -> bytes:
        return wire.frame(
            self.TYPE, wire.Writer().u64(self.round_id).raw(self.ciphertexts).getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, size: int) -> Input:
        r, round_id = open_frame(data, cls.TYPE)
        out = cls(round_id, r.raw(size))
        r.finish()
        return out


@dataclass(frozen=True)
class EncryptedSum:
    """Aggregator -> key holder: the product of ``n_summed`` inputs of ``count`` values."""

    TYPE: ClassVar[int] = 0x32
    round_id: int
    n_summed: int
    count: int
    ciphertexts: bytes

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(self.n_summed).u32(self.count)
        return wire.frame(self.TYPE, w.raw(self.ciphertexts).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedSum:
        """The ciphertexts are the rest of the frame; the key holder checks their length."""
        r, round_id = open_frame(data, cls.TYPE)
        n_summed, count = r.u32(), r.u32()
        return cls(round_id, n_summed, count, r.raw(r.remaining))


@dataclass(frozen=True)
class DecryptedSum(VectorMessage):
    """Key holder -> aggregator: the aggregate over Z_{2^bits} (``vector``)."""

    TYPE: ClassVar[int] = 0x33
    WHAT: ClassVar[str] = "a decrypted sum"
