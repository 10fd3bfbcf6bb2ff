"""paillier-sum-v2's messages (``protocols/paillier-sum-v2.md`` section 9) as typed classes.

``to_bytes`` writes a wire-v1 frame; ``from_bytes`` parses one and checks everything
structural (frame type, exact lengths, canonical order), raising
:class:`~secfl.errors.IntegrityError` for malformed bytes. Sizes that depend on the round
(``size``: the bytes of one client's ciphertexts) are passed in by the party, which knows
its configuration; nothing on the wire chooses how much a parser allocates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from secfl import wire
from secfl.errors import IntegrityError
from secfl.hazmat.sign import SIGNATURE_BYTES
from secfl.protocols._messages import open_frame

__all__ = [
    "FINGERPRINT_BYTES",
    "DecryptRequest",
    "Partial",
    "Request",
    "SignedInput",
    "input_digest",
    "input_set_digest",
    "signed_input_message",
]

FINGERPRINT_BYTES = 16
DIGEST_BYTES = 32
_INPUT_LABEL = b"secfl paillier-sum-v2 input"
_SET_LABEL = b"secfl paillier-sum-v2 input set"


@dataclass(frozen=True)
class Request:
    """Aggregator -> client (0x34): the round's parameters and the threshold key's name."""

    TYPE: ClassVar[int] = 0x34
    round_id: int
    dim: int
    bits: int
    value_bits: int
    n_clients: int
    min_clients: int
    fingerprint: bytes

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(self.dim).u8(self.bits).u8(self.value_bits)
        w.u32(self.n_clients).u32(self.min_clients).raw(self.fingerprint)
        return wire.frame(self.TYPE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> Request:
        r, round_id = open_frame(data, cls.TYPE, "a paillier-sum-v2 request")
        out = cls(round_id, r.u32(), r.u8(), r.u8(), r.u32(), r.u32(), r.raw(FINGERPRINT_BYTES))
        r.finish()
        return out


@dataclass(frozen=True)
class SignedInput:
    """Client -> aggregator (0x35): its ciphertexts and its Ed25519 signature over
    :func:`signed_input_message`."""

    TYPE: ClassVar[int] = 0x35
    round_id: int
    ciphertexts: bytes
    signature: bytes

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).raw(self.ciphertexts).raw(self.signature)
        return wire.frame(self.TYPE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, size: int) -> SignedInput:
        r, round_id = open_frame(data, cls.TYPE, "a signed paillier-sum-v2 input")
        out = cls(round_id, r.raw(size), r.raw(SIGNATURE_BYTES))
        r.finish()
        return out


@dataclass(frozen=True)
class DecryptRequest:
    """Aggregator -> each key holder (0x36): every signed input it will sum, by client id
    in increasing order (``inputs``: (client id, ciphertexts, signature))."""

    TYPE: ClassVar[int] = 0x36
    round_id: int
    dim: int
    inputs: tuple[tuple[int, bytes, bytes], ...]

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(self.dim).u32(len(self.inputs))
        for cid, cts, sig in self.inputs:
            w.u32(cid).raw(cts).raw(sig)
        return wire.frame(self.TYPE, w.getvalue())

    @staticmethod
    def peek_dim(data: bytes) -> int:
        """The dimension, read before the body (the holder derives ``size`` from it)."""
        r, _ = open_frame(data, DecryptRequest.TYPE, "a decryption request")
        return r.u32()

    @classmethod
    def from_bytes(cls, data: bytes, *, size: int, max_inputs: int) -> DecryptRequest:
        r, round_id = open_frame(data, cls.TYPE, "a decryption request")
        dim, count = r.u32(), r.u32()
        if count > max_inputs:
            raise IntegrityError(f"a decryption request of {count} inputs; at most {max_inputs}")
        entry = 4 + size + SIGNATURE_BYTES
        if r.remaining != count * entry:
            raise IntegrityError(
                f"a decryption request of {count} inputs is {count * entry} body bytes after "
                f"its header, got {r.remaining}"
            )
        inputs = []
        last = 0
        for _ in range(count):
            cid = r.u32()
            if cid <= last:
                raise IntegrityError("inputs must be listed once each, by increasing client id")
            last = cid
            inputs.append((cid, r.raw(size), r.raw(SIGNATURE_BYTES)))
        r.finish()
        return cls(round_id, dim, tuple(inputs))


@dataclass(frozen=True)
class Partial:
    """Key holder -> aggregator (0x37): the digest of the input set it summed and its
    partial decryption with proof (``body``: :meth:`PartialDecryption.to_bytes`)."""

    TYPE: ClassVar[int] = 0x37
    round_id: int
    set_digest: bytes
    body: bytes

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).raw(self.set_digest).raw(self.body)
        return wire.frame(self.TYPE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, size: int) -> Partial:
        r, round_id = open_frame(data, cls.TYPE, "a partial decryption")
        out = cls(round_id, r.raw(DIGEST_BYTES), r.raw(size))
        r.finish()
        return out


def input_digest(ciphertexts: bytes) -> bytes:
    """SHA-256 of one client's ciphertext bytes."""
    return hashlib.sha256(ciphertexts).digest()


def signed_input_message(
    *,
    fingerprint: bytes,
    round_id: int,
    client_id: int,
    dim: int,
    bits: int,
    value_bits: int,
    n_clients: int,
    min_clients: int,
    digest: bytes,
) -> bytes:
    """What a client signs: label | key | round | its id | parameters | SHA-256(ciphertexts)."""
    w = wire.Writer().raw(fingerprint).u64(round_id).u32(client_id).u32(dim)
    w.u8(bits).u8(value_bits).u32(n_clients).u32(min_clients).raw(digest)
    return _INPUT_LABEL + w.getvalue()


def input_set_digest(
    *, fingerprint: bytes, round_id: int, dim: int, entries: list[tuple[int, bytes]]
) -> bytes:
    """SHA-256 naming the summed set: key, round, dim and each (client id, input digest)
    in increasing id order. It is the context every partial decryption's proof binds."""
    w = wire.Writer().raw(fingerprint).u64(round_id).u32(dim).u32(len(entries))
    for cid, digest in entries:
        w.u32(cid).raw(digest)
    return hashlib.sha256(_SET_LABEL + w.getvalue()).digest()
