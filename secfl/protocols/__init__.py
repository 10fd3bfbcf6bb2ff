"""Sans-I/O aggregation protocols, one module per specification in ``protocols/``."""

from secfl.protocols.base import AggregationProtocol, ClientSession, RoundResult, ServerSession
from secfl.protocols.plaintext import PlaintextProtocol

__all__ = [
    "AggregationProtocol",
    "ClientSession",
    "PlaintextProtocol",
    "RoundResult",
    "ServerSession",
]
