"""SecAgg's messages (secagg-v2 section 4) as small typed classes: bytes in, bytes out.

Each class knows its wire type, writes itself with :meth:`to_bytes` and parses with
``from_bytes``, which checks everything structural (frame type, the round id, lengths, the
bounds that keep parsing cheap) and raises :class:`~secfl.errors.IntegrityError` for
malformed bytes or :class:`~secfl.errors.ProtocolAbort` for another round's message. What a
message *means* (is this client my neighbour, does the signature verify) is the session's
business (:mod:`secfl.protocols.secagg`). The audit builds its forgeries from these classes.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from secfl import wire
from secfl._text import plural
from secfl.errors import IntegrityError, InvalidArgument, ProtocolAbort
from secfl.hazmat import aead, dleq, shamir
from secfl.protocols import _messages

__all__ = [
    "KEY_BYTES",
    "SIG_BYTES",
    "Advertise",
    "AdvertiseRequest",
    "Check",
    "Complaint",
    "KeyEntry",
    "Keys",
    "MaskRequest",
    "MaskedInput",
    "ShareKeys",
    "Shares",
    "Signatures",
    "SignedShareKeys",
    "SignedShares",
    "SurvivorConsistency",
    "Survivors",
    "Unmask",
    "UnmaskEntry",
]

KEY_BYTES = 32
SIG_BYTES = 64
ENVELOPE_BYTES = aead.OVERHEAD + 8 + 2 * shamir.SHARE_BYTES
"""A sealed share envelope: (u32 owner, u32 holder, two Shamir shares) under AES-GCM."""

M = TypeVar("M")


def open_frame(data: bytes, expected: int, round_id: int) -> wire.Reader:
    """The body reader of a frame of type ``expected`` for ``round_id``, past the round id."""
    r, got = _messages.open_frame(data, expected)
    if got != round_id:
        raise ProtocolAbort(f"message is for round {got}, this session is round {round_id}")
    return r


def u32s(ids: Iterable[int]) -> bytes:
    """Big-endian u32s, no count."""
    ids = list(ids)
    return struct.pack(f">{len(ids)}I", *ids)


def _read_count(r: wire.Reader, limit: int, what: str) -> int:
    count = r.u32()
    if count > limit:
        raise IntegrityError(f"{what}: {count} in the message, more than the {limit} allowed")
    return count


_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")


def _records(r: wire.Reader, count: int, size: int) -> list[bytes]:
    """``count`` fixed-size records, taken in one bounds-checked read (the count is
    already bounded by the caller)."""
    raw = r.raw(count * size)
    return [raw[i : i + size] for i in range(0, count * size, size)]


def _pack(layout: struct.Struct, *fields: int, what: str) -> bytes:
    """``layout.pack(*fields)``; a field that does not fit its u32 is the caller's error
    (as :class:`wire.Writer` reports it)."""
    try:
        return layout.pack(*fields)
    except struct.error as e:
        raise InvalidArgument(f"a {what} field does not fit its u32: {e}") from e


def read_ids(r: wire.Reader, *, limit: int) -> tuple[int, ...]:
    """A u32 count and that many strictly increasing u32 client ids."""
    count = r.u32()
    if count > limit:
        raise IntegrityError(
            f"id list of {plural(count, 'entry', 'entries')} exceeds the {limit} clients allowed"
        )
    ids = struct.unpack(f">{count}I", r.raw(4 * count))
    if any(b <= a for a, b in itertools.pairwise(ids)):
        raise IntegrityError("id list must be strictly increasing (sorted, no duplicates)")
    return ids


@dataclass(frozen=True)
class AdvertiseRequest:
    """Server -> client: the round's parameters; asks for fresh public keys."""

    TYPE: ClassVar[int] = 0x10
    round_id: int
    mode: int
    dim: int
    bits: int
    threshold: int
    degree: int

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u8(self.mode).u32(self.dim).u8(self.bits)
        return wire.frame(self.TYPE, w.u32(self.threshold).u32(self.degree).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int) -> AdvertiseRequest:
        r = open_frame(data, cls.TYPE, round_id)
        out = cls(round_id, r.u8(), r.u32(), r.u8(), r.u32(), r.u32())
        r.finish()
        return out


@dataclass(frozen=True)
class Advertise:
    """Client -> server: its two X25519 public keys (and their signature when active)."""

    TYPE: ClassVar[int] = 0x11
    round_id: int
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""

    def to_bytes(self) -> bytes:
        body = wire.Writer().u64(self.round_id).raw(self.c_pk).raw(self.s_pk).raw(self.signature)
        return wire.frame(self.TYPE, body.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, signed: bool) -> Advertise:
        r = open_frame(data, cls.TYPE, round_id)
        out = cls(round_id, r.raw(KEY_BYTES), r.raw(KEY_BYTES), r.raw(SIG_BYTES) if signed else b"")
        r.finish()
        return out


@dataclass(frozen=True)
class KeyEntry:
    """One neighbour's advertised keys, as relayed by the server, with the neighbour's
    Shamir evaluation point ``x`` (1 + its index in the sorted member list U1)."""

    client: int
    x: int
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""

    def to_bytes(self) -> bytes:
        """The entry's record in KEYS (a server caches it: every neighbour gets the same)."""
        head = _pack(_TWO_U32, self.client, self.x, what="key entry")
        return head + bytes(self.c_pk) + bytes(self.s_pk) + bytes(self.signature)


def _key_entry(b: bytes) -> KeyEntry:
    client, x = _TWO_U32.unpack_from(b)
    k = 8 + KEY_BYTES
    return KeyEntry(client, x, b[8:k], b[k : k + KEY_BYTES], b[k + KEY_BYTES :])


@dataclass(frozen=True)
class Keys:
    """Server -> client (secagg-v2): how many clients advertised (m = |U1|) and the keys
    and evaluation points of the client's neighbours only, in increasing id."""

    TYPE: ClassVar[int] = 0x1A
    round_id: int
    members: int
    entries: tuple[KeyEntry, ...]

    def to_bytes(self) -> bytes:
        return self.frame(self.round_id, self.members, [e.to_bytes() for e in self.entries])

    @classmethod
    def frame(cls, round_id: int, members: int, records: Sequence[bytes]) -> bytes:
        """KEYS from its entries' records (:meth:`KeyEntry.to_bytes`), in increasing id."""
        head = wire.Writer().u64(round_id).u32(members).u32(len(records))
        return wire.frame(cls.TYPE, head.getvalue() + b"".join(records))

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, max_clients: int, signed: bool) -> Keys:
        r = open_frame(data, cls.TYPE, round_id)
        members = r.u32()
        if members > max_clients:
            raise IntegrityError(
                f"KEYS counts {members} members, more than the {max_clients} clients allowed"
            )
        count = _read_count(r, max(members - 1, 0), "key entries")
        sig = SIG_BYTES if signed else 0
        entries = tuple(_key_entry(b) for b in _records(r, count, 8 + 2 * KEY_BYTES + sig))
        r.finish()
        if any(b.client <= a.client for a, b in itertools.pairwise(entries)):
            raise IntegrityError("key entries must be in strictly increasing client id")
        return cls(round_id, members, entries)


ENVELOPE_RECORD = np.dtype([("client", ">u4"), ("envelope", f"V{ENVELOPE_BYTES}")])
"""One (u32 client id, sealed envelope) record of SHARE_KEYS and SHARES, as on the wire."""
SIGNED_ENVELOPE_RECORD = np.dtype(
    [("client", ">u4"), ("envelope", f"V{ENVELOPE_BYTES}"), ("signature", f"V{SIG_BYTES}")]
)
"""secagg-v3 (active): the record with the sender's signature on the envelope."""


@dataclass(frozen=True)
class _Envelopes:
    """A list of (client id, sealed share envelope) and, in the signed messages of
    secagg-v3, each envelope's sender's signature (``signatures``, in the same order)."""

    TYPE: ClassVar[int]
    RECORD: ClassVar[np.dtype] = ENVELOPE_RECORD
    round_id: int
    envelopes: tuple[tuple[int, bytes], ...]
    signatures: tuple[bytes, ...] = ()

    def to_bytes(self) -> bytes:
        signed = "signature" in (self.RECORD.names or ())
        if len(self.signatures) != (len(self.envelopes) if signed else 0):
            need = "one signature per envelope" if signed else "no signatures"
            raise InvalidArgument(f"{type(self).__name__} needs {need}")
        sigs = self.signatures or (b"",) * len(self.envelopes)
        body = b"".join(
            _pack(_U32, c, what="envelope") + bytes(env) + bytes(sig)
            for (c, env), sig in zip(self.envelopes, sigs, strict=True)
        )
        return self.frame(self.round_id, len(self.envelopes), body)

    @classmethod
    def frame(cls, round_id: int, count: int, records: bytes) -> bytes:
        """The message from ``count`` records already on the wire (:attr:`RECORD`)."""
        head = wire.Writer().u64(round_id).u32(count)
        return wire.frame(cls.TYPE, head.getvalue() + records)

    @classmethod
    def records_from_bytes(cls, data: bytes, *, round_id: int, max_entries: int) -> np.ndarray:
        """The records as one :attr:`RECORD` array (the server's path: no Python object per
        envelope)."""
        r = open_frame(data, cls.TYPE, round_id)
        count = _read_count(r, max_entries, "share envelopes")
        records = np.frombuffer(r.raw(count * cls.RECORD.itemsize), dtype=cls.RECORD)
        r.finish()
        return records

    @classmethod
    def from_bytes(cls: type[M], data: bytes, *, round_id: int, max_entries: int) -> M:
        records = cls.records_from_bytes(data, round_id=round_id, max_entries=max_entries)  # type: ignore[attr-defined]
        ids = records["client"].tolist()
        envelopes = tuple(zip(ids, (e.tobytes() for e in records["envelope"]), strict=True))
        sigs: tuple[bytes, ...] = ()
        if "signature" in (records.dtype.names or ()):
            sigs = tuple(g.tobytes() for g in records["signature"])
        return cls(round_id, envelopes, sigs)  # type: ignore[call-arg]


@dataclass(frozen=True)
class ShareKeys(_Envelopes):
    """Client -> server: one sealed envelope of its shares per neighbour (id = recipient)."""

    TYPE: ClassVar[int] = 0x13


@dataclass(frozen=True)
class Shares(_Envelopes):
    """Server -> client: the envelopes addressed to it (id = sender)."""

    TYPE: ClassVar[int] = 0x14


@dataclass(frozen=True)
class SignedShareKeys(_Envelopes):
    """secagg-v3, active: SHARE_KEYS with the sender's signature on each envelope."""

    TYPE: ClassVar[int] = 0x1C
    RECORD: ClassVar[np.dtype] = SIGNED_ENVELOPE_RECORD


@dataclass(frozen=True)
class SignedShares(_Envelopes):
    """secagg-v3, active: SHARES with each sender's signature on its envelope."""

    TYPE: ClassVar[int] = 0x1D
    RECORD: ClassVar[np.dtype] = SIGNED_ENVELOPE_RECORD


@dataclass(frozen=True)
class Complaint:
    """An envelope from ``sender`` that its recipient cannot open, with the recipient's
    channel secret for it (an Edwards point) and the proof that the secret is right."""

    sender: int
    revealed: bytes
    proof: bytes


COMPLAINT_BYTES = 4 + dleq.REVEALED_BYTES + dleq.PROOF_BYTES


@dataclass(frozen=True)
class Check:
    """Client -> server (secagg-v3, active): the envelopes it could not open, if any,
    signed by the client (the signature is over ``complaints`` of section 4)."""

    TYPE: ClassVar[int] = 0x1E
    round_id: int
    complaints: tuple[Complaint, ...]
    signature: bytes

    def body(self) -> bytes:
        """The complaint records as on the wire (what the signature covers)."""
        return b"".join(
            _pack(_U32, c.sender, what="complaint") + bytes(c.revealed) + bytes(c.proof)
            for c in self.complaints
        )

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(len(self.complaints)).raw(self.body())
        return wire.frame(self.TYPE, w.raw(self.signature).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, max_entries: int) -> Check:
        r = open_frame(data, cls.TYPE, round_id)
        count = _read_count(r, max_entries, "complaints")
        k = dleq.REVEALED_BYTES
        complaints = tuple(
            Complaint(_U32.unpack_from(b)[0], b[4 : 4 + k], b[4 + k :])
            for b in _records(r, count, COMPLAINT_BYTES)
        )
        signature = r.raw(SIG_BYTES)
        r.finish()
        if any(b.sender <= a.sender for a, b in itertools.pairwise(complaints)):
            raise IntegrityError("complaints must be in strictly increasing sender id")
        return cls(round_id, complaints, signature)


@dataclass(frozen=True)
class MaskRequest:
    """Server -> client (secagg-v3, active): the neighbours to mask with (U2' ∩ N(u),
    increasing id): those that shared keys, answered CHECK and were not found cheating."""

    TYPE: ClassVar[int] = 0x1F
    round_id: int
    neighbours: tuple[int, ...]

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(len(self.neighbours))
        return wire.frame(self.TYPE, w.raw(u32s(self.neighbours)).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, max_clients: int) -> MaskRequest:
        r = open_frame(data, cls.TYPE, round_id)
        neighbours = read_ids(r, limit=max_clients)
        r.finish()
        return cls(round_id, neighbours)


@dataclass(frozen=True)
class MaskedInput(_messages.VectorMessage):
    """Client -> server: its masked input over Z_{2^bits} (the session checks the round)."""

    TYPE: ClassVar[int] = 0x15
    WHAT: ClassVar[str] = "a masked input"


@dataclass(frozen=True)
class Survivors:
    """Server -> client u (secagg-v2): how many masked inputs are in the sum (|U3|, u's
    own included) and which of u's neighbours sent one (U3 ∩ N(u), increasing id)."""

    TYPE: ClassVar[int] = 0x1B
    round_id: int
    total: int
    neighbours: tuple[int, ...]

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(self.total).u32(len(self.neighbours))
        return wire.frame(self.TYPE, w.raw(u32s(self.neighbours)).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, max_clients: int) -> Survivors:
        r = open_frame(data, cls.TYPE, round_id)
        total = r.u32()
        if total > max_clients:
            raise IntegrityError(
                f"SURVIVORS counts {total} survivors, more than the {max_clients} clients allowed"
            )
        neighbours = read_ids(r, limit=max(total - 1, 0))
        r.finish()
        return cls(round_id, total, neighbours)


@dataclass(frozen=True)
class SurvivorConsistency:
    """Client -> server (active): its signature on the survivor list it was shown."""

    TYPE: ClassVar[int] = 0x17
    round_id: int
    signature: bytes

    def to_bytes(self) -> bytes:
        body = wire.Writer().u64(self.round_id).raw(self.signature).getvalue()
        return wire.frame(self.TYPE, body)

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int) -> SurvivorConsistency:
        r = open_frame(data, cls.TYPE, round_id)
        out = cls(round_id, r.raw(SIG_BYTES))
        r.finish()
        return out


@dataclass(frozen=True)
class Signatures:
    """Server -> client (active): the survivors' signatures on the survivor list."""

    TYPE: ClassVar[int] = 0x18
    round_id: int
    entries: tuple[tuple[int, bytes], ...]

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(len(self.entries))
        for client, sig in self.entries:
            w.u32(client).raw(sig)
        return wire.frame(self.TYPE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, max_entries: int) -> Signatures:
        r = open_frame(data, cls.TYPE, round_id)
        count = _read_count(r, max_entries, "signatures")
        entries = tuple((r.u32(), r.raw(SIG_BYTES)) for _ in range(count))
        r.finish()
        return cls(round_id, entries)


@dataclass(frozen=True)
class UnmaskEntry:
    """One revealed share: whose secret, which one (0 self-mask seed, 1 masking key)."""

    owner: int
    kind: int
    share: bytes


_UNMASK_ENTRY = np.dtype(
    [("owner", ">u4"), ("kind", "u1"), ("share", "<u4", (shamir.CHUNKS,))]
)  # packed: 4 + 1 + 44 = 49 bytes, the wire layout of one UnmaskEntry


@dataclass(frozen=True)
class Unmask:
    """Client -> server: exactly one share per neighbour whose shares it holds."""

    TYPE: ClassVar[int] = 0x19
    round_id: int
    entries: tuple[UnmaskEntry, ...]

    @staticmethod
    def arrays_from_bytes(
        data: bytes, *, round_id: int, max_entries: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same message parsed in one pass (the server's path): owners and kinds as
        int64 vectors and the shares as an int64 ``(count, CHUNKS)`` array; every share
        element checked to be < p (:class:`IntegrityError`)."""
        r = open_frame(data, Unmask.TYPE, round_id)
        count = _read_count(r, max_entries, "revealed shares")
        rec = np.frombuffer(r.raw(count * _UNMASK_ENTRY.itemsize), dtype=_UNMASK_ENTRY)
        r.finish()
        shares = rec["share"].astype(np.int64)
        if shares.size and int(shares.max()) >= shamir.PRIME:
            raise IntegrityError(f"share element outside the field [0, {shamir.PRIME})")
        return rec["owner"].astype(np.int64), rec["kind"].astype(np.int64), shares

    def to_bytes(self) -> bytes:
        w = wire.Writer().u64(self.round_id).u32(len(self.entries))
        for e in self.entries:
            w.u32(e.owner).u8(e.kind).raw(e.share)
        return wire.frame(self.TYPE, w.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, *, round_id: int, max_entries: int) -> Unmask:
        r = open_frame(data, cls.TYPE, round_id)
        count = _read_count(r, max_entries, "revealed shares")
        entries = tuple(
            UnmaskEntry(r.u32(), r.u8(), r.raw(shamir.SHARE_BYTES)) for _ in range(count)
        )
        r.finish()
        return cls(round_id, entries)
