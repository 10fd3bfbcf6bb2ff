"""Clients that misbehave on purpose inside a simulation worker (engine tests).

A module of its own, importable by name, so that worker processes (``spawn``) and Ray
actors can unpickle the recipe: they import it from ``tests/`` (on their ``sys.path`` or
``PYTHONPATH``).
"""

from __future__ import annotations

import os
import time

import numpy as np

from secfl.errors import ProtocolAbort
from secfl.protocols.base import ClientId, ClientSession
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.runtime.engines import ClientRecipe


class FaultyClients(ClientRecipe):
    """Plaintext clients over Z_2^16; ``faults`` make some misbehave inside their worker."""

    bits = 16
    dim = 3

    def __init__(self, faults: dict[ClientId, str]) -> None:
        self.faults = faults

    def value(self, client_id: ClientId) -> np.ndarray:
        return np.full(self.dim, client_id, dtype=np.uint16)

    def session(self, client_id: ClientId, value: np.ndarray, *, round_id: int) -> ClientSession:
        inner = PlaintextProtocol(bits=self.bits).client(
            round_id=round_id, client_id=client_id, value=value
        )
        return Faulty(inner, self.faults.get(client_id))


class Faulty(ClientSession):
    def __init__(self, inner: ClientSession, fault: str | None) -> None:
        self._inner = inner
        self._fault = fault
        self._phase = inner.phase

    def _respond(self, data: bytes) -> bytes | None:
        if self._fault == "refuse":
            raise ProtocolAbort("this client refuses on purpose")
        if self._fault == "garbage":
            return b"not a message"
        if self._fault == "crash":
            os._exit(3)
        if self._fault == "bug":
            raise KeyError("a bug inside a session")
        if self._fault == "hang":
            time.sleep(30)
        answer = self._inner.handle(data)
        self._phase = self._inner.phase
        return answer
