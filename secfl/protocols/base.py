"""The sans-I/O session shapes every aggregation protocol shares.

A round is a sequence of *phases*. In each phase the server sends one request to each
participating client and collects at most one response from each; the runtime decides when
a phase's deadline has passed and calls :meth:`ServerSession.advance`. Clients that did not
respond by then are dropouts from that phase on. Sessions only consume and produce bytes
(framed by :mod:`secfl.wire`): no sockets, threads, clocks or printing, and randomness is an
injected :class:`~secfl.hazmat.rng.Csprng`. Every protocol sums vectors over Z_{2^bits}:
the server's result is the sum of the surviving clients' inputs, never any single input.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from secfl._text import plural
from secfl.errors import InvalidArgument, LocalProtocolError, ProtocolAbort
from secfl.hazmat.prg import uint_dtype

__all__ = [
    "KEY_HOLDER",
    "PROTOCOLS",
    "AggregationProtocol",
    "ClientSession",
    "Party",
    "Phase",
    "ProtocolName",
    "RoundResult",
    "ServerSession",
    "ServerWork",
    "require_local_phase",
    "validate_client_ids",
    "validate_round",
]

ClientId = int
PartyId = int
"""Who a message is for or from: a client id (1..2^32-1), or one of the reserved ids below."""

KEY_HOLDER: PartyId = -1
"""The Paillier key holder: a party of the session, reached by whatever drives the round
like any client (never written on the wire; clients are 1..2^32-1)."""


class NamedValue(str, enum.Enum):
    """A string-valued enum member that compares, hashes, prints and formats as its value,
    so that wire names, dictionary keys and messages stay plain strings."""

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(str(self.value))

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ProtocolName(NamedValue):
    """The aggregation protocols, by the name every layer (CLI, pipeline, wire) uses."""

    PLAIN = "plain"
    """No protection: the server sees every input (baseline; plaintext-v1)."""
    SECAGG = "secagg"
    """Pairwise masking on the complete graph (Bonawitz et al. 2017; secagg-v1)."""
    SECAGG_PLUS = "secagg+"
    """Pairwise masking on a sparse random graph (Bell et al. 2020; secagg-v1)."""
    PAILLIER = "paillier"
    """Packed Paillier encryption summed by the server (paillier-sum-v1)."""


PROTOCOLS: tuple[str, ...] = tuple(p.value for p in ProtocolName)
"""Protocol names accepted everywhere (CLI, pipeline, benchmarks)."""


class Phase(NamedValue):
    """The phases every session shares; protocols with several rounds of messages add
    their own enum (e.g. :class:`~secfl.protocols.secagg.SecAggPhase`)."""

    START = "start"
    """Built, not yet started."""
    INPUT = "input"
    """The one phase of single-message protocols: each client sends its input."""
    DONE = "done"
    ABORTED = "aborted"


@dataclass(frozen=True)
class RoundResult:
    """What the server learns: the sum over Z_{2^bits} of the survivors' inputs."""

    aggregate: np.ndarray
    survivors: frozenset[ClientId]
    dropped: frozenset[ClientId]
    excluded: Mapping[ClientId, str] = field(default_factory=dict)
    """Clients the server proved to have cheated and left out (a subset of ``dropped``),
    each with what it did (SecAgg's active mode, secagg-v3)."""


class _Unpicklable:
    """Sessions hold secrets (keys, seeds, inputs): refuse pickling and secret-free repr."""

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds secret state and cannot be pickled")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} phase={getattr(self, 'phase', '?')}>"


class Party(abc.ABC):
    """A non-client party of a round (e.g. the Paillier key holder): it answers requests
    the server session addresses to its :data:`PartyId`, and keeps its own state."""

    @abc.abstractmethod
    def handle(self, data: bytes) -> bytes | None:
        """Answer one request; raise a :class:`~secfl.errors.SecflError` to refuse it."""


class ServerWork(abc.ABC):
    """A self-contained piece of a server session's computation: no session state, no I/O,
    the same result wherever it runs. A driver with workers may run the pieces there
    (:meth:`ServerSession.offload`). A piece can hold what the server itself learns (the
    reconstructed keys of dropped clients, the survivors' self-mask seeds), so it travels
    only inside the server's trust domain (its own worker processes or cluster), never to a
    client; its ``repr`` shows no secret."""

    @abc.abstractmethod
    def run(self) -> np.ndarray:
        """A vector over Z_{2^bits} that the session adds into its sum."""


class ServerSession(_Unpicklable, abc.ABC):
    """Server side of one round.

    Subclasses keep ``_phase`` (the phase being collected) and ``_result`` (set when the
    round is done) up to date; :attr:`phase` and :attr:`result` read them.
    """

    _phase: str
    _result: RoundResult | None

    @property
    def phase(self) -> str:
        """Name of the phase whose responses are being collected ("done" at the end)."""
        return self._phase

    @abc.abstractmethod
    def start(self) -> dict[ClientId, bytes]:
        """Begin the round: the first request for every client."""

    @abc.abstractmethod
    def receive(self, client_id: ClientId, data: bytes) -> None:
        """Take one client's response to the current phase.

        Raises a :class:`~secfl.errors.SecflError` for an unknown, duplicate, out-of-phase or
        malformed message; the session's state is unchanged when it raises.
        """

    @abc.abstractmethod
    def advance(self) -> dict[ClientId, bytes]:
        """Close the current phase (missing responders are dropouts) and return the next
        phase's requests; an empty dict once the round is done. Raises
        :class:`~secfl.errors.ProtocolAbort` (e.g. too few survivors) to end the round.
        """

    def offload(self, parts: int) -> list[ServerWork]:
        """The heavy work the next :meth:`advance` would do, split into at most ``parts``
        pieces for a driver that can run them in parallel; empty when there is none (the
        default). A driver that takes pieces runs every one (anywhere) and hands their
        results to :meth:`absorb` before calling :meth:`advance`; a driver that never calls
        this gets the same round, computed inside :meth:`advance`. Raises what
        :meth:`advance` would raise when the phase cannot close."""
        return []

    def absorb(self, results: Sequence[np.ndarray]) -> None:
        """The results of the pieces :meth:`offload` returned, in their order."""
        raise LocalProtocolError(f"{type(self).__name__} offloads no work to absorb")

    @property
    def result(self) -> RoundResult:
        """The round's result; raises :class:`ProtocolAbort` before the round is done."""
        if self._result is None:
            raise LocalProtocolError(
                f"result read before the round is done (phase {str(self._phase)!r})"
            )
        return self._result


class ClientSession(_Unpicklable, abc.ABC):
    """Client side of one round, holding that client's input vector.

    Subclasses implement :meth:`_respond` and keep ``_phase`` up to date; :meth:`handle`
    closes the session for good ("aborted") as soon as any request fails.
    """

    _phase: str

    @property
    def phase(self) -> str:
        """Name of the phase the client expects a request for next ("done" at the end)."""
        return self._phase

    def handle(self, data: bytes) -> bytes | None:
        """Answer one server request; ``None`` when the request needs no answer.

        Raises :class:`~secfl.errors.ProtocolAbort` (or another
        :class:`~secfl.errors.SecflError`) when the request is malformed, out of order or
        would make the client break the protocol's guarantees; the client then refuses
        every later request.
        """
        if self._phase in (Phase.DONE, Phase.ABORTED):
            raise ProtocolAbort(f"this client's round is {self._phase}; no more requests")
        try:
            return self._respond(data)
        except Exception:
            self._phase = Phase.ABORTED
            raise

    @abc.abstractmethod
    def _respond(self, data: bytes) -> bytes | None:
        """Answer a request in the current phase (the state changes only on success)."""


class AggregationProtocol(abc.ABC):
    """A configured protocol: builds the sessions of one round."""

    name: str
    phases: tuple[str, ...]

    @property
    @abc.abstractmethod
    def bits(self) -> int:
        """Inputs and the result are vectors over Z_{2^bits}."""

    @abc.abstractmethod
    def server(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int) -> ServerSession:
        """The server session of round ``round_id`` with these clients."""

    @abc.abstractmethod
    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        """The session of client ``client_id`` contributing ``value`` (over Z_{2^bits})."""

    def parties(self) -> Mapping[PartyId, Party]:
        """The non-client parties this process runs (none by default): a driver delivers
        the server's requests addressed to one of these ids to that party."""
        return {}


def validate_client_ids(client_ids: frozenset[ClientId]) -> None:
    """Client ids are distinct integers in 1..2^32-1 (0 is reserved for "the server")."""
    if not client_ids:
        raise InvalidArgument("a round needs at least one client")
    for cid in client_ids:
        if not isinstance(cid, int) or not 1 <= cid < 1 << 32:
            raise InvalidArgument(f"client ids must be integers in 1..2^32-1, got {cid!r}")


def validate_round(
    client_ids: frozenset[ClientId], dim: int, *, max_clients: int | None = None
) -> None:
    """A round's invitation: valid ids, no more than the configuration was planned for
    (``max_clients``, e.g. the slots' or the threshold's n), and a positive dimension."""
    validate_client_ids(client_ids)
    if max_clients is not None and len(client_ids) > max_clients:
        raise InvalidArgument(
            f"{plural(len(client_ids), 'client')} invited but the configuration is for "
            f"{max_clients}"
        )
    if dim < 1:
        raise InvalidArgument(f"dim must be >= 1, got {dim}")


def require_phase(actual: str, expected: str, what: str) -> None:
    """Raise :class:`ProtocolAbort` unless a peer's message arrives in the phase that
    expects it."""
    if actual != expected:
        raise ProtocolAbort(
            f"{what} arrived in phase {str(actual)!r}; it belongs to {str(expected)!r}"
        )


def require_local_phase(actual: str, expected: str, what: str) -> None:
    """Raise :class:`LocalProtocolError` unless the caller calls ``what`` in its phase."""
    if actual != expected:
        raise LocalProtocolError(
            f"{what} called in phase {str(actual)!r}; it belongs to {str(expected)!r}"
        )


def check_input(value: np.ndarray, *, bits: int, dim: int | None = None) -> np.ndarray:
    """Validate a client input over Z_{2^bits}: 1-D, unsigned, right length and range."""
    arr = np.asarray(value)
    dt = uint_dtype(bits)
    if arr.ndim != 1 or arr.dtype != dt:
        raise InvalidArgument(
            f"input must be a 1-D {dt} vector over Z_2^{bits}, got {arr.dtype} shape {arr.shape}"
        )
    if dim is not None and arr.size != dim:
        raise InvalidArgument(f"input has {arr.size} entries, the round expects {dim}")
    if bits < dt.itemsize * 8 and arr.size and int(arr.max()) >> bits:
        raise InvalidArgument(f"input has entries >= 2^{bits}")
    return arr


def sum_vectors(vectors: Mapping[ClientId, np.ndarray], *, bits: int, dim: int) -> np.ndarray:
    """Sum vectors over Z_{2^bits} (wrap-around in the storage dtype, then mask)."""
    dt = uint_dtype(bits)
    acc = np.zeros(dim, dtype=dt)
    for v in vectors.values():
        np.add(acc, v, out=acc)
    if bits < dt.itemsize * 8:
        acc &= dt.type((1 << bits) - 1)
    return acc
