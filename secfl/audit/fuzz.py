"""Wire fuzzing: valid frames of every message type, mutated, fed to the session receiving them.

A :class:`FuzzTarget` names one message type and the party that receives it. Its valid
frames come from real sessions driven honestly up to the point where that message is
sent (so they are exactly what the protocol produces, for the configuration and seed
Hypothesis drew); a :class:`Mutation` then damages one (bit flips, truncation, trailing
bytes, a lying length field, a huge or zero count, another type, version or round id, a
spliced body) and the frame goes to the receiving session. The property
(:func:`check_mutated_frame`):

* the receiver raises only :class:`~secfl.errors.SecflError` subclasses (never
  ``IndexError``, ``KeyError``, ``ValueError``, ``struct.error``, ``MemoryError``...), and
  allocates at most ``MEMORY_LIMIT`` bytes while parsing (tracemalloc peak);
* after refusing, the session is in the state its API promises: a **server** (or
  aggregator) is unchanged -- its phase is the same, it then accepts the original frame
  and the round finishes with the exact sum of all inputs; a **client** is closed -- its
  phase is ``aborted`` and it refuses the original frame with
  :class:`~secfl.errors.ProtocolAbort` -- and the round goes on without it (exact sum of
  the others, or a typed abort); the **key holder** refuses the original again or decrypts
  it to the right aggregate;
* when the damaged frame is accepted, the round still ends with a result or a typed error.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from secfl.audit._hypothesis import require_hypothesis
from secfl.protocols.base import KEY_HOLDER, Phase, ProtocolName

require_hypothesis()

from hypothesis import strategies as st  # noqa: E402

from secfl import wire  # noqa: E402
from secfl.audit import _rounds as rounds  # noqa: E402
from secfl.audit.transcript import message_name  # noqa: E402
from secfl.errors import ProtocolAbort, SecflError  # noqa: E402
from secfl.protocols import paillier as pl  # noqa: E402
from secfl.protocols import plaintext as pt  # noqa: E402
from secfl.protocols import secagg as sa  # noqa: E402
from secfl.protocols.base import AggregationProtocol, ClientSession, ServerSession  # noqa: E402

__all__ = [
    "MEMORY_LIMIT",
    "FuzzTarget",
    "Mutation",
    "check_mutated_frame",
    "fuzz_targets",
    "mutations",
]

MEMORY_LIMIT = 32 << 20
"""Most bytes (tracemalloc peak) a session may allocate while refusing or parsing a frame
of these small test rounds."""

_TO_SERVER = "server"
_TO_CLIENT = "client"
_TO_KEY_HOLDER = "key holder"
_TO_AGGREGATOR = "aggregator"


@dataclass(frozen=True)
class FuzzTarget:
    """A message type of one protocol and who receives it (``mode`` picks the config)."""

    protocol: str
    msg_type: int
    receiver: str
    mode: str = ""  # SecAgg: "hbc" or "active"

    def __str__(self) -> str:
        mode = f", {self.mode}" if self.mode else ""
        return f"{message_name(self.msg_type)} ({self.msg_type:#04x}) -> {self.receiver}{mode}"


def fuzz_targets(protocol: str) -> list[FuzzTarget]:
    """Every message type of ``protocol`` ("plain", "secagg", "secagg+", "paillier")."""
    if protocol == ProtocolName.PLAIN:
        return [
            FuzzTarget("plain", pt.MSG_REQUEST, _TO_CLIENT),
            FuzzTarget("plain", pt.MSG_INPUT, _TO_SERVER),
        ]
    if protocol in (ProtocolName.SECAGG, ProtocolName.SECAGG_PLUS):
        to_client = (sa.MSG_ADVERTISE_REQUEST, sa.MSG_KEYS, sa.MSG_SURVIVORS)
        to_server = (sa.MSG_ADVERTISE, sa.MSG_MASKED_INPUT, sa.MSG_UNMASK)
        hbc = ((sa.MSG_SHARES,), (sa.MSG_SHARE_KEYS,))
        # secagg-v3: active mode signs envelopes, checks them, then asks for the masks.
        active = (
            (sa.MSG_SIGNED_SHARES, sa.MSG_MASK_REQUEST, sa.MSG_SIGNATURES),
            (sa.MSG_SIGNED_SHARE_KEYS, sa.MSG_CHECK, sa.MSG_CONSISTENCY),
        )
        modes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {"hbc": hbc}
        if protocol == ProtocolName.SECAGG:
            modes["active"] = active
        return [
            FuzzTarget(protocol, t, _TO_CLIENT if t in down else _TO_SERVER, mode)
            for mode, (extra_down, extra_up) in modes.items()
            for down in [to_client + extra_down]
            for t in sorted(down + to_server + extra_up)
        ]
    if protocol == ProtocolName.PAILLIER:
        return [
            FuzzTarget(ProtocolName.PAILLIER, pl.MSG_REQUEST, _TO_CLIENT),
            FuzzTarget(ProtocolName.PAILLIER, pl.MSG_INPUT, _TO_SERVER),
            FuzzTarget(ProtocolName.PAILLIER, pl.MSG_ENCRYPTED_SUM, _TO_KEY_HOLDER),
            FuzzTarget(ProtocolName.PAILLIER, pl.MSG_DECRYPTED_SUM, _TO_AGGREGATOR),
        ]
    raise ValueError(f"unknown protocol {protocol!r}")


# ----------------------------------------------------------------------------- mutations
_KNOWN_TYPES = (0x01, 0x02, *range(0x10, 0x20), *range(0x30, 0x34), 0x00, 0xFF)
_LIES = (0, 1, 2, 3, 0xFF, 0xFFFF, 1 << 24, (1 << 31) - 1, 1 << 31, (1 << 32) - 1)


@dataclass(frozen=True)
class Mutation:
    """How a valid frame is damaged. ``at`` and ``size`` are reduced modulo the frame (or
    body) length; ``fix_length`` rewrites the header's length field to match a body whose
    length changed, so that the body parser (not the framing) sees the damage."""

    kind: str
    at: int = 0
    size: int = 0
    value: int = 0
    data: bytes = b""
    fix_length: bool = False

    def apply(self, frame: bytes) -> bytes:
        out = bytearray(frame)
        body_len = len(out) - wire.HEADER_BYTES
        if self.kind == "flip":
            for k in range(max(1, self.size)):
                bit = (self.at + 7919 * k) % (8 * len(out))
                out[bit // 8] ^= 1 << (bit % 8)
        elif self.kind == "truncate":
            del out[self.at % len(out) :]
        elif self.kind == "extend":
            out += self.data or b"\x00"
        elif self.kind == "cut":
            if body_len:
                start = wire.HEADER_BYTES + self.at % body_len
                del out[start : start + max(1, self.size)]
        elif self.kind == "length":
            out[4:8] = (self.value % (1 << 32)).to_bytes(4, "big")
            return bytes(out)
        elif self.kind == "u32":
            if body_len >= 4:
                start = wire.HEADER_BYTES + self.at % (body_len - 3)
                out[start : start + 4] = (self.value % (1 << 32)).to_bytes(4, "big")
        elif self.kind == "type":
            out[3] = self.value % 256
        elif self.kind == "version":
            out[2] = self.value % 256
        elif self.kind == "magic":
            out[0:2] = (self.value % 65536).to_bytes(2, "big")
        elif self.kind == "round":
            if body_len >= 8:
                out[8:16] = (self.value % (1 << 64)).to_bytes(8, "big")
        elif self.kind == "splice":
            del out[wire.HEADER_BYTES :]
            out += self.data
        elif self.kind == "zero":
            out[wire.HEADER_BYTES :] = bytes(body_len)
        else:
            raise ValueError(f"unknown mutation {self.kind!r}")
        if self.fix_length and len(out) >= wire.HEADER_BYTES:
            out[4:8] = (len(out) - wire.HEADER_BYTES).to_bytes(4, "big")
        return bytes(out)


def mutations() -> st.SearchStrategy[Mutation]:
    """Damage to a valid frame: bit flips, truncation, trailing bytes, cut-out bytes, a
    lying length field, a lying 32-bit field (counts: zero, small, huge), another message
    type / version / magic / round id, a spliced or zeroed body."""
    at = st.integers(0, 1 << 16)
    lie = st.sampled_from(_LIES) | st.integers(0, (1 << 32) - 1)
    return st.one_of(
        st.builds(Mutation, st.just("flip"), at=at, size=st.integers(1, 4)),
        st.builds(Mutation, st.just("truncate"), at=at, fix_length=st.booleans()),
        st.builds(
            Mutation,
            st.just("extend"),
            data=st.binary(min_size=1, max_size=64),
            fix_length=st.booleans(),
        ),
        st.builds(
            Mutation, st.just("cut"), at=at, size=st.integers(1, 64), fix_length=st.booleans()
        ),
        st.builds(Mutation, st.just("length"), value=lie),
        st.builds(Mutation, st.just("u32"), at=at, value=lie),
        st.builds(Mutation, st.just("type"), value=st.sampled_from(_KNOWN_TYPES)),
        st.builds(Mutation, st.just("version"), value=st.integers(0, 255)),
        st.builds(Mutation, st.just("magic"), value=st.integers(0, 65535)),
        st.builds(Mutation, st.just("round"), value=st.integers(0, (1 << 64) - 1)),
        st.builds(
            Mutation, st.just("splice"), data=st.binary(max_size=256), fix_length=st.just(True)
        ),
        st.builds(Mutation, st.just("zero")),
    )


# ----------------------------------------------------------------------------- honest rounds
def _type(frame: bytes) -> int:
    return wire.unframe(frame)[0]


class _Round:
    """An honest round driven step by step (to reach the frame under test)."""

    def __init__(self, protocol: AggregationProtocol, inputs: dict[int, np.ndarray]) -> None:
        self.protocol = protocol
        self.inputs = inputs
        self.clients: dict[int, ClientSession] = {
            c: protocol.client(round_id=rounds.ROUND_ID, client_id=c, value=v)
            for c, v in inputs.items()
        }
        dim = next(iter(inputs.values())).size
        self.server: ServerSession = protocol.server(
            round_id=rounds.ROUND_ID, client_ids=frozenset(inputs), dim=dim
        )
        self.parties = protocol.parties()
        self.requests = self.server.start()
        self.gone: set[int] = set()

    def until(self, msg_type: int) -> dict[int, bytes]:
        """Run until ``msg_type`` is about to be delivered; the frames of that type
        (requests to the clients or their replies), nothing of them delivered yet."""
        for _ in range(len(self.protocol.phases) + 1):
            if self.requests and _type(next(iter(self.requests.values()))) == msg_type:
                return dict(sorted(self.requests.items()))
            replies = self._answer(self.requests)
            if replies and _type(next(iter(replies.values()))) == msg_type:
                self.requests = {}
                return replies
            for c, reply in replies.items():
                self.server.receive(c, reply)
            self.requests = self.server.advance()
        raise AssertionError(f"an honest round never sent a {message_name(msg_type)}")

    def _answer(self, requests: dict[int, bytes]) -> dict[int, bytes]:
        out = {}
        for c, req in sorted(requests.items()):
            if c in self.gone:
                continue
            try:
                reply = (self.parties[c] if c in self.parties else self.clients[c]).handle(req)
            except SecflError:
                self.gone.add(c)  # e.g. too few neighbours left: a dropout
                continue
            if reply is not None:
                out[c] = reply
        return out

    def finish(self, replies: dict[int, bytes] | None = None) -> None:
        """Deliver ``replies`` (refusals are dropouts), then run the round to its end."""
        pending = replies or {}
        for _ in range(len(self.protocol.phases) + 2):
            for c, reply in pending.items():
                try:
                    self.server.receive(c, reply)
                except SecflError:
                    self.gone.add(c)
            if self.server.phase in (Phase.DONE, Phase.ABORTED):
                return
            requests = self.server.advance()
            if not requests:
                return
            pending = self._answer(requests)
        raise AssertionError("the round did not end")

    def expect_exact(self, survivors: set[int] | None = None) -> None:
        result = self.server.result
        want = rounds.expected_sum(self.inputs, result.survivors, bits=self.protocol.bits)
        if not np.array_equal(result.aggregate, want):
            raise AssertionError("the round finished with a wrong aggregate")
        if survivors is not None and result.survivors != survivors:
            raise AssertionError(
                f"survivors {sorted(result.survivors)}, expected {sorted(survivors)}"
            )


def _build(target: FuzzTarget, seed: bytes) -> _Round:
    """A fresh honest round for ``target`` from ``seed`` (Paillier's with its key holder)."""
    pick = [int(x) for x in rounds.derive(seed, "fuzz/config").uint64(4)]
    if target.protocol == ProtocolName.PLAIN:
        bits = (8, 13, 16, 32, 64)[pick[0] % 5]
        n = 1 + pick[1] % 4
        inputs = rounds.random_inputs(
            rounds.derive(seed, "inputs"), range(1, n + 1), bits=bits, dim=1 + pick[2] % 5
        )
        return _Round(rounds.plain_protocol(bits), inputs)
    if target.protocol in (ProtocolName.SECAGG, ProtocolName.SECAGG_PLUS):
        active = target.mode == "active"
        bits = (8, 13, 16, 32, 64)[pick[0] % 5]
        if target.protocol == ProtocolName.SECAGG_PLUS:
            n, degree, t = 6 + pick[1] % 3, 2, 2
        else:
            n, degree = 4 + pick[1] % 3, None
            t = (2 * (n - 1)) // 3 + 1 if active else (n - 1) // 2 + 1
        model = sa.ThreatModel.ACTIVE if active else sa.ThreatModel.HONEST_BUT_CURIOUS
        config = sa.SecAggConfig(
            bits=bits, threshold=t, n_clients=n, degree=degree, threat_model=model
        )
        inputs = rounds.random_inputs(
            rounds.derive(seed, "inputs"), range(1, n + 1), bits=bits, dim=1 + pick[2] % 4
        )
        protocol = rounds.secagg_protocol(config, rounds.derive(seed, "protocol"))
        return _Round(protocol, inputs)
    bits = (8, 16, 32)[pick[0] % 3]
    spec = rounds.PaillierSpec(
        n=2 + pick[1] % 3,
        bits=bits,
        value_bits=2 + pick[3] % (bits - 1),
        min_clients=2,
        dim=1 + pick[2] % 60,
        seed=seed,
    )
    paillier = rounds.PaillierProtocol(
        spec.config,
        key_holder=rounds.paillier_holder(spec.config),
        rng=rounds.derive(seed, "protocol"),
    )
    inputs = rounds.paillier_inputs(spec, rounds.derive(seed, "inputs"))
    return _Round(paillier, inputs)


# ----------------------------------------------------------------------------- the property
def _feed(receive: Callable[[bytes], object], data: bytes) -> tuple[SecflError | None, object]:
    """``receive(data)`` with its allocation bounded: (the SecflError it raised, or None;
    what it returned)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        return None, receive(data)
    except SecflError as e:
        return e, None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        if started:
            tracemalloc.stop()
        if peak > MEMORY_LIMIT:
            raise AssertionError(
                f"handling a {len(data)}-byte frame allocated {peak} bytes (limit {MEMORY_LIMIT})"
            )


def check_mutated_frame(target: FuzzTarget, seed: bytes, mutation: Mutation) -> str:
    """Feed ``mutation`` of a valid ``target`` frame to its receiver; raise AssertionError
    (or let an undocumented exception escape) if the receiver misbehaves. Returns what
    happened, for statistics: ``"refused"``, ``"accepted"`` or ``"unchanged"``."""
    rnd = _build(target, seed)
    if target.receiver == _TO_KEY_HOLDER:
        return _key_holder_case(rnd, mutation)
    if target.receiver == _TO_AGGREGATOR:
        return _aggregator_case(rnd, mutation)
    frames = rnd.until(target.msg_type)
    victim = min(frames)
    original = frames.pop(victim)
    damaged = mutation.apply(original)
    if damaged == original:
        return "unchanged"
    what = message_name(target.msg_type)
    if target.receiver == _TO_SERVER:
        phase = rnd.server.phase
        error, _ = _feed(lambda b: rnd.server.receive(victim, b), damaged)
        if error is None:
            _end_anyhow(rnd, frames)
            return "accepted"
        if rnd.server.phase != phase:
            raise AssertionError(
                f"the server moved from {phase!r} to {rnd.server.phase!r} while refusing a "
                f"damaged {what} ({type(error).__name__}: {error})"
            )
        rnd.server.receive(victim, original)  # it must still take the real one
        rnd.finish(frames)
        rnd.expect_exact(set(rnd.inputs) - rnd.gone)
        return "refused"
    client = rnd.clients[victim]
    error, reply = _feed(client.handle, damaged)
    if error is None:
        replies = rnd._answer(frames)
        if isinstance(reply, bytes):
            replies[victim] = reply
        _end_anyhow(rnd, replies)
        return "accepted"
    if client.phase != Phase.ABORTED:
        raise AssertionError(
            f"client {victim} refused a damaged {what} ({type(error).__name__}) but is in "
            f"phase {client.phase!r}, not 'aborted'"
        )
    try:
        client.handle(original)
    except ProtocolAbort:
        pass
    else:
        raise AssertionError(
            f"client {victim} answered the original {what} after refusing a damaged one "
            f"(a client that raised must refuse every later request)"
        )
    rnd.gone.add(victim)
    try:
        rnd.finish(rnd._answer(frames))
    except SecflError:
        return "refused"  # too few clients left: a typed abort
    rnd.expect_exact()
    return "refused"


def _end_anyhow(rnd: _Round, replies: dict[int, bytes]) -> None:
    """After a damaged frame was accepted the round must still end, or abort typed."""
    try:
        rnd.finish(replies)
    except SecflError:
        return


def _key_holder_case(rnd: _Round, mutation: Mutation) -> str:
    key_holder = rnd.parties[KEY_HOLDER]
    original = rnd.until(pl.MSG_ENCRYPTED_SUM)[KEY_HOLDER]
    damaged = mutation.apply(original)
    if damaged == original:
        return "unchanged"
    error, _ = _feed(key_holder.handle, damaged)
    if error is None:
        return "accepted"
    try:
        reply = key_holder.handle(original)
    except ProtocolAbort:
        return "refused"  # the damaged attempt spent the round id
    assert reply is not None
    r = wire.Reader(wire.unframe(reply)[1])
    r.u64()
    got = r.vector(rnd.protocol.bits)
    want = rounds.expected_sum(rnd.inputs, rnd.inputs, bits=rnd.protocol.bits)
    if not np.array_equal(got, want):
        raise AssertionError("the key holder decrypted the original sum to a wrong aggregate")
    return "refused"


def _aggregator_case(rnd: _Round, mutation: Mutation) -> str:
    reply = rnd.until(pl.MSG_DECRYPTED_SUM)[KEY_HOLDER]
    error, _ = _feed(lambda b: rnd.server.receive(KEY_HOLDER, b), mutation.apply(reply))
    if error is None:
        error, _ = _feed(lambda _: rnd.server.advance(), b"")
    return "accepted" if error is None else "refused"
