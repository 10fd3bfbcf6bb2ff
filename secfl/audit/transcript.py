"""Record what the server (and a coalition of clients) saw in a round; check it against the spec.

A :class:`TranscriptRecorder` wraps an :class:`~secfl.protocols.base.AggregationProtocol`:
the sessions it builds behave exactly like the wrapped protocol's, and every message they
exchange is kept in a :class:`Transcript` (bytes, who sent them, whether the receiver
accepted them). Any driver works: the in-memory simulator, a hand-written schedule, an
adversarial state machine::

    recorder = TranscriptRecorder(coalition={3})
    report = simulate_round(recorder.wrap(protocol), inputs, dropouts={2: "mask"})
    check_view(recorder.transcript)      # raises AuditFailure if the view is forbidden

:func:`check_view` computes the **adversary's view** from the transcript and compares it
with the leakage the protocol's specification allows (``protocols/secagg-v1.md`` section 10
with the messages of ``protocols/secagg-v2.md``,
``protocols/paillier-sum-v1.md`` section 10, ``protocols/plaintext-v1.md``):

* The adversary is the server together with the coalition. Everything a client *sends*
  travels through the server, so the server's view is every message any client emitted
  (whether or not the session then accepted it: a rejected message was still seen) plus
  the coalition members' own secrets: in SecAgg, each coalition member can open the share
  envelopes addressed to it, so it holds both shares of every owner that addressed one.
* Rules are checked on that view (the rule names are those of ``docs/audit.md``); each
  broken rule becomes one :class:`~secfl.audit.Violation` of the raised
  :class:`~secfl.audit.AuditFailure`.

The transcript holds the clients' inputs and shares: it refuses pickling and its ``repr``
shows counts only.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from secfl import wire
from secfl._text import plural
from secfl.audit._errors import AuditFailure, Violation
from secfl.errors import InvalidArgument, SecflError
from secfl.hazmat import aead, shamir
from secfl.protocols import paillier as _pl
from secfl.protocols import plaintext as _pt
from secfl.protocols import secagg as _sa
from secfl.protocols.base import (
    AggregationProtocol,
    ClientId,
    ClientSession,
    Party,
    PartyId,
    ProtocolName,
    RoundResult,
    ServerSession,
)

__all__ = [
    "Decryption",
    "Delivery",
    "Exchange",
    "RevealedShare",
    "ShareKind",
    "Transcript",
    "TranscriptRecorder",
    "check_view",
]

SERVER: ClientId = 0
"""Party id of the server in a transcript (client ids are >= 1)."""

# Fixed SecAgg sizes (protocols/secagg-v1.md sections 4.3 and 7).
_KEY = 32
_SIG = 64
_COMPLAINT = 4 + 32 + 64  # secagg-v3 CHECK: u32 sender, revealed point, proof
_ENVELOPE = aead.OVERHEAD + 8 + 2 * shamir.SHARE_BYTES  # 124 bytes

# Below this many random bits a masked vector may equal its input by chance.
_MIN_MASK_BITS = 40


class ShareKind(enum.Enum):
    """Which of a SecAgg client's two secrets a Shamir share belongs to (wire value)."""

    SELF_MASK_SEED = 0
    """b_u: removes u's self mask. Revealed for owners that survived."""
    MASKING_KEY = 1
    """s_u^SK: recomputes u's pairwise masks. Revealed for owners that dropped."""


@dataclass(frozen=True)
class Exchange:
    """One request a client session handled, and what it answered.

    ``error`` is ``"ClassName: message"`` when ``handle`` raised a
    :class:`~secfl.errors.SecflError` (then ``response`` is ``None``).
    """

    client: ClientId
    request: bytes
    response: bytes | None
    error: str | None

    @property
    def answered(self) -> bool:
        return self.error is None and self.response is not None


@dataclass(frozen=True)
class Delivery:
    """One message given to the server session's ``receive``; ``error`` if it was refused."""

    client: ClientId
    data: bytes
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Decryption:
    """One request to a Paillier key holder, and its reply (or the refusal)."""

    request: bytes
    reply: bytes | None
    error: str | None


@dataclass(frozen=True)
class RevealedShare:
    """A share of ``owner``'s secret of ``kind``, revealed by ``holder`` in UNMASK.

    ``share`` is its 44-byte encoding (``secfl.hazmat.shamir.shares_from_bytes``); the
    holder's evaluation point is 1 + its index in the sorted member list U1 (the ``x`` its
    KEYS entry carries, secagg-v2).
    """

    owner: ClientId
    kind: ShareKind
    holder: ClientId
    share: bytes = field(default=b"", repr=False, compare=False)


class Transcript:
    """Everything recorded in one round; built by a :class:`TranscriptRecorder`.

    Attributes (read them, do not change them):

    * ``protocol``: the wrapped protocol's name (``"plain"``, ``"secagg"``, ``"secagg+"``,
      ``"paillier"``, or another protocol's name: only the common rules apply to it);
    * ``round_id`` (``None`` until a session is built), ``bits``, ``coalition``;
    * SecAgg: ``threshold``, ``degree``, ``active``; Paillier: ``paillier_n``,
      ``min_clients``;
    * ``inputs``: each client's input, as given to its session (never part of the view;
      used to check that no input went out unprotected);
    * ``exchanges`` (every request each client handled, in order), ``deliveries`` (every
      message given to the server), ``requests`` (what the server session emitted, as
      ``(client, frame)``), ``decryptions`` (Paillier key-holder traffic);
    * ``result`` / ``abort``: how the server session ended, if it did.
    """

    def __init__(self, *, coalition: frozenset[ClientId]) -> None:
        self.coalition = coalition
        self.protocol = ""
        self.round_id: int | None = None
        self.bits = 0
        self.threshold: int | None = None
        self.degree: int | None = None
        self.active = False
        self.paillier_n: int | None = None
        self.min_clients: int | None = None
        self.inputs: dict[ClientId, np.ndarray] = {}
        self.exchanges: list[Exchange] = []
        self.deliveries: list[Delivery] = []
        self.requests: list[tuple[ClientId, bytes]] = []
        self.decryptions: list[Decryption] = []
        self.result: RoundResult | None = None
        self.abort: str | None = None

    def emitted(self, msg_type: int) -> list[tuple[ClientId, bytes]]:
        """Every message of ``msg_type`` a client sent (in order), as ``(client, frame)``."""
        return [
            (e.client, e.response)
            for e in self.exchanges
            if e.response is not None and _type_of(e.response) == msg_type
        ]

    def answered(self, msg_type: int) -> list[Exchange]:
        """The requests of ``msg_type`` that a client answered (in order)."""
        return [e for e in self.exchanges if e.answered and _type_of(e.request) == msg_type]

    def masked_inputs(self) -> dict[ClientId, list[np.ndarray]]:
        """SecAgg: every MASKED_INPUT vector each client sent."""
        out: dict[ClientId, list[np.ndarray]] = {}
        for c, frame in self.emitted(_sa.MSG_MASKED_INPUT):
            vector = _lenient(lambda r: r.vector(self.bits), frame, _sa.MSG_MASKED_INPUT)
            if isinstance(vector, np.ndarray):
                out.setdefault(c, []).append(vector)
        return out

    def revealed_shares(self) -> list[RevealedShare]:
        """SecAgg: every share sent in an UNMASK message (what the server learned)."""
        out = []
        for holder, frame in self.emitted(_sa.MSG_UNMASK):
            entries = _parse_unmask(frame)
            for owner, kind, share in entries or []:
                out.append(RevealedShare(owner, kind, holder, share))
        return out

    def __repr__(self) -> str:
        return (
            f"<Transcript {self.protocol or '?'} round={self.round_id} "
            f"exchanges={len(self.exchanges)} deliveries={len(self.deliveries)}>"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("Transcript holds the clients' inputs and shares; it cannot be pickled")


# ----------------------------------------------------------------------------- recording
class TranscriptRecorder:
    """Records one round of a protocol: wrap the protocol, run the round, read ``transcript``.

    ``coalition``: ids of the clients assumed to collude with the server (their view is
    added to the server's when the transcript is checked). The wrapped protocol's
    non-client parties (the Paillier key holder) are recorded too::

        recorder = TranscriptRecorder()
        protocol = PaillierProtocol(cfg, key_holder=PaillierKeyHolder(cfg, key), rng=rng)
        simulate_round(recorder.wrap(protocol), inputs)

    One recorder records one round: building a session for another round id raises
    :class:`~secfl.errors.InvalidArgument`.
    """

    def __init__(self, *, coalition: Iterable[ClientId] = ()) -> None:
        members = frozenset(coalition)
        for c in members:
            if not isinstance(c, int) or isinstance(c, bool) or not 1 <= c < 1 << 32:
                raise InvalidArgument(f"coalition ids must be client ids in 1..2^32-1, got {c!r}")
        self._transcript = Transcript(coalition=members)
        self._wrapped = False

    @property
    def transcript(self) -> Transcript:
        return self._transcript

    def wrap(self, protocol: AggregationProtocol) -> AggregationProtocol:
        """A protocol whose sessions behave like ``protocol``'s and are recorded."""
        if not isinstance(protocol, AggregationProtocol):
            raise InvalidArgument("wrap() needs an AggregationProtocol")
        if self._wrapped:
            raise InvalidArgument("this recorder already wraps a protocol; use one per round")
        self._wrapped = True
        tr = self._transcript
        tr.protocol = protocol.name
        tr.bits = protocol.bits
        if isinstance(protocol, _sa.SecAggProtocol):
            cfg = protocol.config
            tr.threshold = cfg.threshold
            tr.degree = cfg.degree
            tr.active = cfg.threat_model is _sa.ThreatModel.ACTIVE
        elif isinstance(protocol, _pl.PaillierProtocol):
            tr.paillier_n = int(protocol.config.public_key.n)
            tr.min_clients = protocol.config.min_clients
        return _RecordingProtocol(protocol, self)

    def _bind_round(self, round_id: int) -> None:
        tr = self._transcript
        if tr.round_id is None:
            tr.round_id = round_id
        elif tr.round_id != round_id:
            raise InvalidArgument(
                f"this recorder records round {tr.round_id}; use a new one for round {round_id}"
            )


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class _RecordingProtocol(AggregationProtocol):
    def __init__(self, inner: AggregationProtocol, recorder: TranscriptRecorder) -> None:
        self._inner = inner
        self._recorder = recorder
        self.name = inner.name
        self.phases = inner.phases
        decryptions = recorder.transcript.decryptions
        self._parties = {
            pid: _RecordingParty(party, decryptions) for pid, party in inner.parties().items()
        }

    def parties(self) -> Mapping[PartyId, Party]:
        return self._parties

    @property
    def bits(self) -> int:
        return self._inner.bits

    def server(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int) -> ServerSession:
        self._recorder._bind_round(round_id)
        inner = self._inner.server(round_id=round_id, client_ids=client_ids, dim=dim)
        return _RecordingServer(inner, self._recorder.transcript)

    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        self._recorder._bind_round(round_id)
        inner = self._inner.client(round_id=round_id, client_id=client_id, value=value)
        self._recorder.transcript.inputs[client_id] = np.array(value, copy=True)
        return _RecordingClient(inner, client_id, self._recorder.transcript)


class _RecordingServer(ServerSession):
    __slots__ = ("_inner", "_tr")

    def __init__(self, inner: ServerSession, transcript: Transcript) -> None:
        self._inner = inner
        self._tr = transcript

    @property
    def phase(self) -> str:
        return self._inner.phase

    def start(self) -> dict[ClientId, bytes]:
        out = self._inner.start()
        self._tr.requests.extend(sorted(_to_clients(out).items()))
        return out

    def receive(self, client_id: ClientId, data: bytes) -> None:
        if client_id <= 0:  # a party's answer: recorded by _RecordingParty
            self._inner.receive(client_id, data)
            return
        try:
            self._inner.receive(client_id, data)
        except SecflError as e:
            self._tr.deliveries.append(Delivery(client_id, bytes(data), _describe(e)))
            raise
        self._tr.deliveries.append(Delivery(client_id, bytes(data), None))

    def advance(self) -> dict[ClientId, bytes]:
        try:
            out = self._inner.advance()
        except SecflError as e:
            self._tr.abort = _describe(e)
            raise
        self._tr.requests.extend(sorted(_to_clients(out).items()))
        if not out:
            self._tr.result = self._inner.result
        return out

    @property
    def result(self) -> RoundResult:
        return self._inner.result


def _to_clients(requests: Mapping[PartyId, bytes]) -> dict[ClientId, bytes]:
    """The requests addressed to clients (ids >= 1), without those to other parties."""
    return {c: r for c, r in requests.items() if c >= 1}


class _RecordingParty(Party):
    """Records a non-client party's traffic (the Paillier key holder's decryptions)."""

    __slots__ = ("_decryptions", "_inner")

    def __init__(self, inner: Party, decryptions: list[Decryption]) -> None:
        self._inner = inner
        self._decryptions = decryptions

    def handle(self, data: bytes) -> bytes | None:
        try:
            reply = self._inner.handle(data)
        except SecflError as e:
            self._decryptions.append(Decryption(bytes(data), None, _describe(e)))
            raise
        self._decryptions.append(Decryption(bytes(data), reply, None))
        return reply


class _RecordingClient(ClientSession):
    __slots__ = ("_id", "_inner", "_tr")

    def __init__(self, inner: ClientSession, client_id: ClientId, transcript: Transcript) -> None:
        self._inner = inner
        self._id = client_id
        self._tr = transcript

    @property
    def phase(self) -> str:
        return self._inner.phase

    def handle(self, data: bytes) -> bytes | None:
        try:
            reply = self._inner.handle(data)
        except SecflError as e:
            self._tr.exchanges.append(Exchange(self._id, bytes(data), None, _describe(e)))
            raise
        self._tr.exchanges.append(
            Exchange(self._id, bytes(data), None if reply is None else bytes(reply), None)
        )
        return reply

    def _respond(self, data: bytes) -> bytes | None:  # handle() is overridden
        return self._inner.handle(data)


# ----------------------------------------------------------------------------- decoding
def _type_of(frame: bytes) -> int | None:
    """The message type of a well-formed frame (wire-v1 header checks), else ``None``."""
    if (
        len(frame) >= wire.HEADER_BYTES
        and frame[:2] == wire.MAGIC
        and frame[2] == wire.VERSION
        and int.from_bytes(frame[4:8], "big") == len(frame) - wire.HEADER_BYTES
    ):
        return frame[3]
    return None


def _body(frame: bytes) -> memoryview | None:
    try:
        return wire.unframe(frame)[1]
    except SecflError:
        return None


def _round_of(frame: bytes) -> int | None:
    body = _body(frame)
    if body is None or len(body) < 8:
        return None
    return int.from_bytes(body[:8], "big")


def _id_list(r: wire.Reader) -> list[int] | None:
    count = r.u32()
    if count * 4 > r.remaining:
        return None
    ids = [r.u32() for _ in range(count)]
    if any(b <= a for a, b in itertools.pairwise(ids)):
        return None
    return ids


def _lenient(parse: Callable[[wire.Reader], object], frame: bytes, msg_type: int) -> object:
    """Parse a frame of ``msg_type`` (u64 round id first); ``None`` if it is malformed."""
    try:
        t, body = wire.unframe(frame)
        if t != msg_type:
            return None
        r = wire.Reader(body)
        r.u64()
        out = parse(r)
        r.finish()
    except SecflError:
        return None
    return out


@dataclass(frozen=True)
class _KeysView:
    """What a KEYS request (secagg-v2) told its client: m = |U1|, and for each neighbour
    its two public keys (64 bytes) and its evaluation point."""

    members: int
    keys: dict[int, bytes]
    points: dict[int, int]


@dataclass(frozen=True)
class _SurvivorsView:
    """What a SURVIVORS request (secagg-v2) told client ``to``: |U3| and U3 ∩ N(to)."""

    total: int
    listed: list[int]

    def survivors(self, to: ClientId) -> set[int]:
        """The survivors this client acts on: the listed neighbours and itself."""
        return {*self.listed, to}


def _parse_survivors(frame: bytes) -> _SurvivorsView | None:
    def parse(r: wire.Reader) -> object:
        total = r.u32()
        listed = _id_list(r)
        return None if listed is None else _SurvivorsView(total, listed)

    out = _lenient(parse, frame, _sa.MSG_SURVIVORS)
    return out if isinstance(out, _SurvivorsView) else None


def _parse_keys(frame: bytes, active: bool) -> _KeysView | None:
    def parse(r: wire.Reader) -> object:
        members = r.u32()
        keys: dict[int, bytes] = {}
        points: dict[int, int] = {}
        for _ in range(r.u32()):
            v = r.u32()
            points[v] = r.u32()
            keys[v] = r.raw(2 * _KEY)
            if active:
                r.raw(_SIG)
        return _KeysView(members, keys, points)

    out = _lenient(parse, frame, _sa.MSG_KEYS)
    return out if isinstance(out, _KeysView) else None


def evaluation_points(transcript: Transcript) -> dict[ClientId, int]:
    """Each client's Shamir evaluation point, as the KEYS requests clients answered
    state it (secagg-v2: the x of every neighbour's entry)."""
    out: dict[ClientId, int] = {}
    for e in transcript.answered(_sa.MSG_KEYS):
        view = _parse_keys(e.request, transcript.active)
        if view is not None:
            out.update(view.points)
    return out


def _parse_pairs(frame: bytes, msg_type: int, size: int) -> list[tuple[int, bytes]] | None:
    """SHARE_KEYS / SHARES / SIGNATURES: u32 count, count x (u32 id, raw(size))."""

    def parse(r: wire.Reader) -> object:
        count = r.u32()
        if count * (4 + size) > r.remaining:
            return None
        return [(r.u32(), r.raw(size)) for _ in range(count)]

    out = _lenient(parse, frame, msg_type)
    return out if isinstance(out, list) else None


def _parse_ids(frame: bytes, msg_type: int) -> set[int] | None:
    """MASK_REQUEST: a u32 count and that many u32 ids."""
    out = _lenient(_id_list, frame, msg_type)
    return set(out) if isinstance(out, list) else None


def _complained(response: bytes | None) -> set[int]:
    """The senders a CHECK response complains about (none for anything else)."""
    if response is None or _type_of(response) != _sa.MSG_CHECK:
        return set()

    def parse(r: wire.Reader) -> object:
        count = r.u32()
        if count * _COMPLAINT + _SIG > r.remaining:
            return None
        senders = set()
        for _ in range(count):
            senders.add(r.u32())
            r.raw(_COMPLAINT - 4)
        r.raw(_SIG)
        return senders

    out = _lenient(parse, response, _sa.MSG_CHECK)
    return out if isinstance(out, set) else set()


def _parse_unmask(frame: bytes) -> list[tuple[int, ShareKind, bytes]] | None:
    def parse(r: wire.Reader) -> object:
        count = r.u32()
        if count * (5 + shamir.SHARE_BYTES) > r.remaining:
            return None
        out = []
        for _ in range(count):
            owner, kind = r.u32(), r.u8()
            share = r.raw(shamir.SHARE_BYTES)
            if kind not in (0, 1):
                return None
            out.append((owner, ShareKind(kind), share))
        return out

    out = _lenient(parse, frame, _sa.MSG_UNMASK)
    return out if isinstance(out, list) else None


def _parse_signature(frame: bytes) -> bytes | None:
    out = _lenient(lambda r: r.raw(_SIG), frame, _sa.MSG_CONSISTENCY)
    return out if isinstance(out, bytes) else None


# ----------------------------------------------------------------------------- checking
def check_view(transcript: Transcript, *, threshold: int | None = None) -> None:
    """Raise :class:`~secfl.audit.AuditFailure` if the recorded view breaks the spec.

    ``threshold`` overrides the SecAgg threshold t recorded from the protocol's
    configuration (it must be given for a SecAgg transcript recorded without one). The
    rules checked depend on ``transcript.protocol``; ``docs/audit.md`` lists them. For
    SecAgg the coalition must have fewer than t members (the specification claims nothing
    beyond), else :class:`~secfl.errors.InvalidArgument`.
    """
    if not isinstance(transcript, Transcript):
        raise InvalidArgument("check_view() needs a Transcript (TranscriptRecorder.transcript)")
    violations = _common_rules(transcript)
    if transcript.protocol in (ProtocolName.SECAGG, ProtocolName.SECAGG_PLUS):
        t = transcript.threshold if threshold is None else threshold
        if t is None or isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise InvalidArgument(f"a SecAgg transcript needs a threshold >= 1, got {t!r}")
        if len(transcript.coalition) >= t:
            raise InvalidArgument(
                f"a coalition of {plural(len(transcript.coalition), 'client')} is not below the "
                f"threshold t={t}: secagg-v1 claims nothing for t or more colluding clients"
            )
        violations += _SecAggCheck(transcript, t).run()
    elif transcript.protocol == ProtocolName.PAILLIER:
        violations += _paillier_rules(transcript)
    if violations:
        raise AuditFailure(violations)


def _common_rules(tr: Transcript) -> list[Violation]:
    """Rules every session of every protocol follows (protocols/base.py)."""
    out: list[Violation] = []
    refused: set[ClientId] = set()
    answered: dict[tuple[ClientId, int | None], int] = {}
    for e in tr.exchanges:
        if e.error is not None:
            refused.add(e.client)
            continue
        if e.client in refused:
            out.append(
                Violation(
                    "sticky-abort",
                    f"client {e.client} answered a {_name(e.request)} request after it had "
                    f"refused one (a client that raised must refuse every later request)",
                )
            )
            refused.discard(e.client)  # report once
        if e.response is None:
            continue
        key = (e.client, _type_of(e.response))
        answered[key] = answered.get(key, 0) + 1
        if answered[key] == 2:
            out.append(
                Violation(
                    "answer-once",
                    f"client {e.client} sent two {_name(e.response)} messages (a client "
                    f"never answers two requests of the same phase)",
                )
            )
        got = _round_of(e.request)
        if tr.round_id is not None and got != tr.round_id:
            out.append(
                Violation(
                    "round-binding",
                    f"client {e.client} answered a {_name(e.request)} request of round {got}; "
                    f"its session is round {tr.round_id}",
                )
            )
    return out


_NAMES = {
    _pt.MSG_REQUEST: "REQUEST",
    _pt.MSG_INPUT: "INPUT",
    _sa.MSG_ADVERTISE_REQUEST: "ADVERTISE_REQUEST",
    _sa.MSG_ADVERTISE: "ADVERTISE",
    _sa.MSG_KEYS: "KEYS",
    _sa.MSG_SHARE_KEYS: "SHARE_KEYS",
    _sa.MSG_SHARES: "SHARES",
    _sa.MSG_SIGNED_SHARE_KEYS: "SIGNED_SHARE_KEYS",
    _sa.MSG_SIGNED_SHARES: "SIGNED_SHARES",
    _sa.MSG_CHECK: "CHECK",
    _sa.MSG_MASK_REQUEST: "MASK_REQUEST",
    _sa.MSG_MASKED_INPUT: "MASKED_INPUT",
    _sa.MSG_SURVIVORS: "SURVIVORS",
    _sa.MSG_CONSISTENCY: "CONSISTENCY",
    _sa.MSG_SIGNATURES: "SIGNATURES",
    _sa.MSG_UNMASK: "UNMASK",
    _pl.MSG_REQUEST: "PAILLIER_REQUEST",
    _pl.MSG_INPUT: "PAILLIER_INPUT",
    _pl.MSG_ENCRYPTED_SUM: "PAILLIER_ENCRYPTED_SUM",
    _pl.MSG_DECRYPTED_SUM: "PAILLIER_DECRYPTED_SUM",
}


def _name(frame: bytes) -> str:
    t = _type_of(frame)
    if t is None:
        return "malformed"
    return _NAMES.get(t, f"type-{t:#04x}")


def message_name(msg_type: int) -> str:
    """The spec's name of a message type (``0x15`` -> ``"MASKED_INPUT"``)."""
    return _NAMES.get(msg_type, f"type-{msg_type:#04x}")


class _SecAggCheck:
    """The rules of secagg-v1 sections 8 and 10 on one transcript."""

    def __init__(self, tr: Transcript, threshold: int) -> None:
        self.tr = tr
        self.t = threshold
        self.out: list[Violation] = []
        self.honest = set(tr.inputs) - tr.coalition
        # What each client accepted, in protocol order.
        self.members: dict[ClientId, int] = {}  # m = |U1| as the client was told
        self.keys: dict[ClientId, dict[int, bytes]] = {}  # its neighbours' keys
        self.held: dict[ClientId, set[int]] = {}
        self.lists: dict[ClientId, list[int]] = {}  # the survivor list a client acted on
        self.totals: dict[ClientId, _SurvivorsView] = {}
        # Every well-formed list any client was sent (secagg-v2: restricted to its
        # recipient's neighbours, with the recipient itself added).
        self.all_lists: list[tuple[ClientId, set[int]]] = []
        all_neighbours: dict[ClientId, set[int]] = {}
        for e in tr.exchanges:
            t = _type_of(e.request)
            if t == _sa.MSG_SURVIVORS and _round_of(e.request) == tr.round_id:
                shown = _parse_survivors(e.request)
                if shown is not None:
                    self.all_lists.append((e.client, shown.survivors(e.client)))
            if t == _sa.MSG_KEYS and _round_of(e.request) == tr.round_id:
                view = _parse_keys(e.request, tr.active)
                if view is not None:
                    all_neighbours.setdefault(e.client, set()).update(view.keys)
            if not e.answered:
                continue
            if t == _sa.MSG_KEYS:
                parsed = _parse_keys(e.request, tr.active)
                if parsed is None:
                    self._bad(e, "a malformed KEYS request")
                    continue
                self.members[e.client], self.keys[e.client] = parsed.members, parsed.keys
            elif t in (_sa.MSG_SHARES, _sa.MSG_SIGNED_SHARES):
                signed = t == _sa.MSG_SIGNED_SHARES
                pairs = _parse_pairs(e.request, t, _ENVELOPE + (_SIG if signed else 0))
                if pairs is None:
                    self._bad(e, f"a malformed {_name(e.request)} request")
                    continue
                # secagg-v3: the envelopes it complained about are not held.
                self.held[e.client] = {u for u, _ in pairs} - _complained(e.response)
            elif t == _sa.MSG_MASK_REQUEST:
                names = _parse_ids(e.request, t)
                if names is None:
                    self._bad(e, "a malformed MASK_REQUEST")
                    continue
                unheld = names - self.held.get(e.client, set())
                if unheld:
                    self.out.append(
                        Violation(
                            "survivor-list-rules",
                            f"client {e.client} masked with neighbours {sorted(unheld)} whose "
                            "shares it does not hold (secagg-v3 section 5)",
                        )
                    )
                self.held[e.client] = names
            elif t == _sa.MSG_SURVIVORS:
                shown = _parse_survivors(e.request)
                if shown is None:
                    self._bad(e, "a malformed SURVIVORS request")
                    continue
                self.lists[e.client] = sorted(shown.survivors(e.client))
                self.totals[e.client] = shown
        # Who may name u in a survivor list: u itself and the clients u was a neighbour of.
        self.listers: dict[ClientId, set[int]] = {}
        for r, neighbours in all_neighbours.items():
            for u in neighbours:
                self.listers.setdefault(u, {u}).add(r)
        # What the adversary holds.
        self.envelopes: set[tuple[int, int]] = set()  # (owner, holder)
        for t, size in (
            (_sa.MSG_SHARE_KEYS, _ENVELOPE),
            (_sa.MSG_SIGNED_SHARE_KEYS, _ENVELOPE + _SIG),
        ):
            for owner, frame in tr.emitted(t):
                for holder, _ in _parse_pairs(frame, t, size) or []:
                    self.envelopes.add((owner, holder))
        self.revealed = tr.revealed_shares()

    def _bad(self, e: Exchange, what: str) -> None:
        self.out.append(Violation("accepts-only-valid", f"client {e.client} answered {what}"))

    def run(self) -> list[Violation]:
        self._unmask_messages()
        self._survivor_lists()
        self._keys()
        if self.tr.active:
            self._signatures()
        self._masked_inputs()
        self._secrets()
        return self.out

    def _neighbours(self, v: ClientId) -> frozenset[int]:
        """N(v) as v accepted it (secagg-v2: the clients whose keys its KEYS carried)."""
        return frozenset(self.keys.get(v, {}))

    # ---- what honest clients sent
    def _unmask_messages(self) -> None:
        for holder, frame in self.tr.emitted(_sa.MSG_UNMASK):
            entries = _parse_unmask(frame)
            if entries is None:
                self.out.append(
                    Violation("well-formed", f"client {holder} sent a malformed UNMASK message")
                )
                continue
            if holder in self.tr.coalition:
                continue
            owners = [u for u, _, _ in entries]
            if len(set(owners)) != len(owners):
                self.out.append(
                    Violation(
                        "one-share-per-owner",
                        f"client {holder} revealed two shares of the same owner in one UNMASK",
                    )
                )
            held = self.held.get(holder, set())
            if set(owners) != held:
                self.out.append(
                    Violation(
                        "reveal-held",
                        f"client {holder} revealed shares of {sorted(set(owners))} but held "
                        f"the shares of {sorted(held)} (exactly one share per held owner)",
                    )
                )
            listed = self.lists.get(holder)
            for u, kind, _ in entries:
                if listed is None:
                    self.out.append(
                        Violation(
                            "kind-follows-list",
                            f"client {holder} revealed shares without a survivor list",
                        )
                    )
                    break
                want = ShareKind.SELF_MASK_SEED if u in listed else ShareKind.MASKING_KEY
                if kind is not want:
                    self.out.append(
                        Violation(
                            "kind-follows-list",
                            f"client {holder} revealed the {kind.name} share of client {u}, "
                            f"which its survivor list {listed} makes a "
                            f"{'survivor' if u in listed else 'dropout'}",
                        )
                    )

    def _survivor_lists(self) -> None:
        t = self.t
        for v, shown in sorted(self.totals.items()):
            if v in self.tr.coalition:
                continue
            problems = []
            listed = set(shown.listed)
            if shown.total < t + 1:
                problems.append(f"counts {shown.total} < t + 1 = {t + 1} survivors")
            members = self.members.get(v)
            if len(listed) + 1 > shown.total or (members is not None and shown.total > members):
                problems.append(
                    f"counts {shown.total} survivors with {len(listed)} listed neighbours plus "
                    f"the client itself and {members} members"
                )
            if v in self.keys:
                outside = listed - self._neighbours(v)
                if outside:
                    problems.append(f"names {sorted(outside)}, which are not its neighbours")
                if len(self.keys[v]) + 1 == members and shown.total != len(listed) + 1:
                    problems.append("disagrees with its own count on the complete graph")
            lying = (listed & self._neighbours(v)) - self.held.get(v, set())
            if lying:
                problems.append(f"names neighbours {sorted(lying)} whose shares never arrived")
            for p in problems:
                self.out.append(
                    Violation(
                        "survivor-list-rules",
                        f"client {v} accepted the survivor list {self.lists[v]} (count "
                        f"{shown.total}), which {p}",
                    )
                )

    def _keys(self) -> None:
        t = self.t
        advertised: dict[int, bytes] = {}
        for c, frame in self.tr.emitted(_sa.MSG_ADVERTISE):
            body = _body(frame)
            if body is not None and len(body) >= 8 + 2 * _KEY:
                advertised[c] = bytes(body[8 : 8 + 2 * _KEY])
        for v, members in sorted(self.members.items()):
            if v in self.tr.coalition:
                continue
            if v in self.keys.get(v, {}) or members < t + 1:
                self.out.append(
                    Violation(
                        "keys-rules",
                        f"client {v} accepted a KEYS request of {members} members with "
                        f"neighbours {sorted(self.keys.get(v, {}))} (it must not list the "
                        f"client and must count at least t + 1 = {t + 1} members)",
                    )
                )
            if not self.tr.active:
                continue
            for w, keys in sorted(self.keys.get(v, {}).items()):
                if advertised.get(w) != keys:
                    self.out.append(
                        Violation(
                            "authentic-keys",
                            f"client {v} accepted public keys for client {w} that client {w} "
                            f"never advertised (a substituted key, in active mode)",
                        )
                    )

    def _signatures(self) -> None:
        sent: dict[int, bytes] = {}
        for w, frame in self.tr.emitted(_sa.MSG_CONSISTENCY):
            sig = _parse_signature(frame)
            if sig is not None:
                sent[w] = sig
        for e in self.tr.answered(_sa.MSG_SIGNATURES):
            v = e.client
            if v in self.tr.coalition:
                continue
            pairs = _parse_pairs(e.request, _sa.MSG_SIGNATURES, _SIG)
            if pairs is None:
                self._bad(e, "a malformed SIGNATURES request")
                continue
            mine = self.lists.get(v)
            signers = [w for w, _ in pairs]
            good = {w for w, sig in pairs if sent.get(w) == sig and self.lists.get(w) == mine}
            if len(set(signers)) != len(signers) or len(good) < self.t + 1:
                self.out.append(
                    Violation(
                        "consistency",
                        f"client {v} unmasked on {len(good)} signatures of its own survivor list "
                        f"{mine} (signers {signers}); it needs t + 1 = {self.t + 1} distinct "
                        f"clients that signed the same list",
                    )
                )

    def _masked_inputs(self) -> None:
        bits = self.tr.bits
        parsed = self.tr.masked_inputs()
        for u in sorted({c for c, _ in self.tr.emitted(_sa.MSG_MASKED_INPUT)}):
            if not parsed.get(u):
                self.out.append(
                    Violation("well-formed", f"client {u} sent a malformed MASKED_INPUT")
                )
        for u, ys in sorted(parsed.items()):
            x = self.tr.inputs.get(u)
            if u not in self.honest or x is None or x.size * bits < _MIN_MASK_BITS:
                continue
            for y in ys:
                if y.shape == x.shape and np.array_equal(y, x):
                    self.out.append(
                        Violation(
                            "input-masked",
                            f"client {u} sent its input unmasked as MASKED_INPUT "
                            f"({x.size} entries of {bits} bits equal to its input)",
                        )
                    )

    # ---- what the adversary can reconstruct
    def _secrets(self) -> None:
        t, tr = self.t, self.tr
        holders: dict[tuple[int, ShareKind], set[int]] = {}
        for s in self.revealed:
            holders.setdefault((s.owner, s.kind), set()).add(s.holder)
        for owner, holder in self.envelopes:
            if holder in tr.coalition:
                for kind in ShareKind:
                    holders.setdefault((owner, kind), set()).add(holder)

        def known(u: int, kind: ShareKind) -> bool:
            return u in tr.coalition or len(holders.get((u, kind), ())) >= t

        masked = tr.masked_inputs()
        accepted_masked = {
            d.client
            for d in tr.deliveries
            if d.accepted and _type_of(d.data) == _sa.MSG_MASKED_INPUT
        }
        pairs = self._masking_pairs()
        for u in sorted(self.honest):
            b_known = known(u, ShareKind.SELF_MASK_SEED)
            s_known = known(u, ShareKind.MASKING_KEY)
            if b_known and s_known:
                self.out.append(
                    Violation(
                        "double-masking",
                        f"the server (with coalition {sorted(tr.coalition)}) holds >= t={t} "
                        f"shares of both b_{u} (holders "
                        f"{sorted(holders.get((u, ShareKind.SELF_MASK_SEED), ()))}) and "
                        f"s_{u}^SK (holders {sorted(holders.get((u, ShareKind.MASKING_KEY), ()))})",
                    )
                )
            listers = self.listers.get(u, {u})
            survivor = all(u in listed for r, listed in self.all_lists if r in listers)
            if u in accepted_masked and survivor and s_known:
                self.out.append(
                    Violation(
                        "survivor-key",
                        f"client {u}'s masked input was accepted and every survivor list names "
                        f"it, yet the server holds >= t={t} shares of its masking key s_{u}^SK",
                    )
                )
            if u in masked and b_known and u in pairs:
                hidden = [w for w in pairs[u] if not (s_known or known(w, ShareKind.MASKING_KEY))]
                if not hidden:
                    self.out.append(
                        Violation(
                            "input-hidden",
                            f"the server can unmask client {u}'s input: it knows b_{u} and every "
                            f"pairwise mask of u (with {sorted(pairs[u])})",
                        )
                    )

    def _masking_pairs(self) -> dict[ClientId, set[int]]:
        """H_u for each client that sent a masked input: whose shares it received."""
        out: dict[ClientId, set[int]] = {}
        for e in self.tr.exchanges:
            if (
                e.answered
                and e.response is not None
                and _type_of(e.response) == _sa.MSG_MASKED_INPUT
                and e.client in self.held
            ):
                out[e.client] = set(self.held[e.client])
        return out


def _paillier_rules(tr: Transcript) -> list[Violation]:
    out: list[Violation] = []
    n = tr.paillier_n
    if n is None:
        return out
    width = (2 * n.bit_length() + 7) // 8
    seen: dict[int, ClientId] = {}
    singles: set[bytes] = set()
    for c, frame in tr.emitted(_pl.MSG_INPUT):
        body = _body(frame)
        raw = bytes(body[8:]) if body is not None and len(body) >= 8 else b""
        if not raw or len(raw) % width:
            out.append(Violation("well-formed", f"client {c} sent a malformed PAILLIER_INPUT"))
            continue
        singles.add(raw)
        for i in range(0, len(raw), width):
            ct = int.from_bytes(raw[i : i + width], "big")
            if ct % n == 1:
                out.append(
                    Violation(
                        "input-encrypted",
                        f"client {c}'s ciphertext {i // width} is 1 + m*n mod n^2: it carries "
                        f"the plaintext with no obfuscator",
                    )
                )
            if ct in seen:
                out.append(
                    Violation(
                        "rerandomized",
                        f"client {c} sent a ciphertext equal to one client {seen[ct]} sent "
                        f"(every encryption must use fresh randomness)",
                    )
                )
            seen[ct] = c
    decrypted: set[int] = set()
    for d in tr.decryptions:
        if d.reply is None:
            continue
        try:
            t, body = wire.unframe(d.request)
            r = wire.Reader(body)
            round_id, n_summed = r.u64(), r.u32()
            r.u32()
            raw = r.raw(r.remaining)
        except SecflError:
            out.append(Violation("key-holder", "the key holder answered a malformed request"))
            continue
        if t != _pl.MSG_ENCRYPTED_SUM:
            out.append(Violation("key-holder", f"the key holder answered a {_name(d.request)}"))
        if tr.min_clients is not None and n_summed < tr.min_clients:
            out.append(
                Violation(
                    "key-holder",
                    f"the key holder decrypted a sum of {n_summed} < min_clients="
                    f"{tr.min_clients} inputs",
                )
            )
        if round_id in decrypted:
            out.append(Violation("key-holder", f"the key holder decrypted round {round_id} twice"))
        decrypted.add(round_id)
        if raw in singles:
            out.append(
                Violation(
                    "key-holder",
                    "the key holder decrypted one client's ciphertext as if it were a sum",
                )
            )
    return out
