"""The secfl exception family.

Every error secfl raises on purpose derives from :class:`SecflError`, so callers can catch
one root. Argument errors also derive from :class:`ValueError` (as Hypothesis' do from
``TypeError``). Security checks raise; they never return ``False``. Messages say what was
wrong and what to change.
"""

from __future__ import annotations

__all__ = [
    "EncodingOverflow",
    "EngineError",
    "InsufficientSurvivors",
    "IntegrityError",
    "InvalidArgument",
    "LocalProtocolError",
    "MissingDependency",
    "ProtocolAbort",
    "SecflError",
]


class SecflError(Exception):
    """Root of every error secfl raises deliberately."""


class InvalidArgument(SecflError, ValueError):
    """A parameter or input is invalid; the message names it and the accepted range."""


class EncodingOverflow(SecflError):
    """A fixed-point value or a sum of values does not fit the planned modulus.

    Raised before a round starts (by the headroom planner) or when an input exceeds the
    range the plan was built for; never a silent wrap-around.
    """


class ProtocolAbort(SecflError):
    """An honest party stopped the round because continuing could break its guarantees.

    Examples: the server's survivor set changed between phases, a message arrived out of
    order, or a peer's signature did not verify.
    """


class IntegrityError(SecflError):
    """Bytes failed authentication or are not a well-formed encoding (bad tag, bad frame)."""


class InsufficientSurvivors(ProtocolAbort):
    """Fewer parties than the threshold survived; the round cannot complete safely."""


class LocalProtocolError(SecflError, RuntimeError):
    """A session was driven out of order by its own caller: ``start()`` twice, ``result``
    before the round is done, ``advance()`` after it ended.

    This is a bug in the code driving the session, not a peer's misbehaviour
    (:class:`ProtocolAbort`, :class:`IntegrityError`), so drivers let it propagate instead of
    recording an aborted round (the split h11 makes between ``LocalProtocolError`` and
    ``RemoteProtocolError``).
    """


class MissingDependency(SecflError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra."""


class EngineError(SecflError):
    """A simulation engine could not run the round: a worker process or Ray actor died,
    stopped answering, failed with an unexpected exception, or could not be started. The
    message says which worker and what happened."""
