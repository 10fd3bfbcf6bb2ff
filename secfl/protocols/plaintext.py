"""The plaintext (unprotected) baseline: clients send their encoded inputs in the clear.

It gives *no* privacy: the server sees every input. It exists as the reference every other
protocol is measured against (same codec, same framing, same session shape), so overhead
ratios compare like with like. One phase: the server asks, each client answers with its
vector, the server sums whoever answered.
"""

from __future__ import annotations

import numpy as np

from secfl import wire
from secfl.errors import InsufficientSurvivors, ProtocolAbort
from secfl.protocols import plaintext_messages as m
from secfl.protocols.base import (
    AggregationProtocol,
    ClientId,
    ClientSession,
    Phase,
    ProtocolName,
    RoundResult,
    ServerSession,
    check_input,
    require_local_phase,
    require_phase,
    sum_vectors,
    validate_round,
)

__all__ = ["PlaintextProtocol"]

MSG_REQUEST = m.Request.TYPE
MSG_INPUT = m.Input.TYPE
_INPUT, _DONE, _START = Phase.INPUT, Phase.DONE, Phase.START


class PlaintextProtocol(AggregationProtocol):
    """Sum of inputs over Z_{2^bits}, sent in the clear."""

    name = ProtocolName.PLAIN
    phases = (_INPUT,)

    def __init__(self, *, bits: int) -> None:
        wire.packed_width(bits)  # validates 1..64
        self._bits = bits

    @property
    def bits(self) -> int:
        return self._bits

    def server(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int) -> ServerSession:
        return _Server(round_id=round_id, client_ids=client_ids, dim=dim, bits=self._bits)

    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        return _Client(
            round_id=round_id, value=check_input(value, bits=self._bits), bits=self._bits
        )


class _Server(ServerSession):
    def __init__(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int, bits: int):
        validate_round(client_ids, dim)
        self._round_id = round_id
        self._clients = client_ids
        self._dim = dim
        self._bits = bits
        self._phase = _START
        self._inputs: dict[ClientId, np.ndarray] = {}
        self._result: RoundResult | None = None

    def start(self) -> dict[ClientId, bytes]:
        require_local_phase(self._phase, _START, "start()")
        self._phase = _INPUT
        req = m.Request(self._round_id, self._dim, self._bits).to_bytes()
        return dict.fromkeys(self._clients, req)

    def receive(self, client_id: ClientId, data: bytes) -> None:
        require_phase(self._phase, _INPUT, "an input message")
        if client_id not in self._clients:
            raise ProtocolAbort(f"client {client_id} is not part of round {self._round_id}")
        if client_id in self._inputs:
            raise ProtocolAbort(f"client {client_id} already sent its input this round")
        msg = m.Input.from_bytes(data, bits=self._bits, dim=self._dim)
        if msg.round_id != self._round_id:
            raise ProtocolAbort(f"client {client_id} sent an input for another round")
        self._inputs[client_id] = msg.vector

    def advance(self) -> dict[ClientId, bytes]:
        require_local_phase(self._phase, _INPUT, "advance()")
        if not self._inputs:
            raise InsufficientSurvivors("no client sent an input; nothing to aggregate")
        survivors = frozenset(self._inputs)
        self._result = RoundResult(
            aggregate=sum_vectors(self._inputs, bits=self._bits, dim=self._dim),
            survivors=survivors,
            dropped=self._clients - survivors,
        )
        self._inputs = {}
        self._phase = _DONE
        return {}


class _Client(ClientSession):
    def __init__(self, *, round_id: int, value: np.ndarray, bits: int) -> None:
        self._round_id = round_id
        self._value = value
        self._bits = bits
        self._phase = _INPUT

    def _respond(self, data: bytes) -> bytes:
        require_phase(self._phase, _INPUT, "a request")
        req = m.Request.from_bytes(data)
        round_id, dim, bits = req.round_id, req.dim, req.bits
        if round_id != self._round_id or dim != self._value.size or bits != self._bits:
            raise ProtocolAbort(
                f"server asked for round {round_id}, dim {dim}, bits {bits}; this client holds "
                f"round {self._round_id}, dim {self._value.size}, bits {self._bits}"
            )
        self._phase = _DONE
        return m.Input(round_id, self._value, self._bits).to_bytes()
