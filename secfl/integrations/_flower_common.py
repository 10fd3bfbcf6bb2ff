"""What the Flower mod and strategy share: record names and layout, the node-config
keys, and the mapping between a model's arrays and one flat vector (see
:mod:`secfl.integrations.flower`)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict
from flwr.common.constant import ErrorCode

from secfl.errors import IntegrityError, InvalidArgument
from secfl.protocols.base import Phase

RECORD_KEY = "secfl"
"""Name of the ``ConfigRecord`` that carries secfl frames in a Flower message."""
STATE_KEY = "secfl.client"
"""Name of the ``ConfigRecord`` in a node's ``Context.state`` that holds the round state."""
FORMAT_VERSION = 1
"""Version of the record layout (keys and their meaning) in messages and in the state."""
MOD_REFUSED = ErrorCode.MOD_FAILED_PRECONDITION
"""Flower error code of a node's refusal."""
NODE_IDENTITY = "secfl-identity"
"""Node config key: path of the node's Ed25519 signing key (PKCS#8 PEM), active mode."""
NODE_REGISTRY = "secfl-registry"
"""Node config key: path of the registry of every client's verify key, active mode."""
NODE_PAILLIER_PUBLIC_KEY = "secfl-paillier-public-key"
"""Node config key: path of the Paillier public key this node encrypts under (pinned): a
round under any other key is refused."""
NODE_PAILLIER_KEY = "secfl-paillier-key"
"""Node config key: path of the Paillier private key, on the key-holder node only."""
NODE_PAILLIER_THRESHOLD_PUBLIC_KEY = "secfl-paillier-threshold-public-key"
"""Node config key: path of the threshold Paillier public key (``paillier-threshold.pub``
from ``secfl paillier-key --holders m --threshold t``); a node takes part in
``paillier-threshold`` rounds under this key only, and in none without it."""
NODE_PAILLIER_SHARE = "secfl-paillier-share"
"""Node config key: path of a threshold key holder's share (``paillier-share-<i>.key``), on
that key-holder node only (with ``secfl-registry``, to check the clients' signatures)."""
_KEY_HOLDER_MESSAGE_TYPE = "train"
"""Flower message type of key-holder requests: a ClientApp runs its mods only around a
handler it registered, and every ClientApp of a training run registers ``train``."""
KEY_HOLDER_STATE = "secfl.key-holder"
"""``Context.state`` record of the key holder: the last round it decrypted a sum for."""
FIND_KEY_HOLDERS = "find-key-holders"
"""Name of the exchange in which a threshold round finds its key-holder nodes."""
IDENTIFY = "identify"
"""Name of the first phase of an active round: the nodes train and say who they are."""

_log = logging.getLogger("flwr.secfl")

# A node's round status: "active" while its session runs, then the session's final phase.
_ACTIVE, _DONE, _ABORTED = "active", Phase.DONE.value, Phase.ABORTED.value


# ============================================================================ arrays
@dataclass(frozen=True)
class _Layout:
    """Which arrays of an ``ArrayRecord`` are aggregated (the floating-point ones), in order.

    Integer arrays (e.g. BatchNorm's ``num_batches_tracked``) are not aggregated: the new
    global model keeps their global values.
    """

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    size: int

    @classmethod
    def of(cls, record: ArrayRecord) -> _Layout:
        keys, shapes, size = [], [], 0
        for key, array in record.items():
            value = array.numpy()
            if value.dtype.kind != "f":
                continue
            keys.append(key)
            shapes.append(tuple(value.shape))
            size += int(value.size)
        if size == 0:
            raise InvalidArgument(
                "the ArrayRecord has no floating-point arrays: there is nothing to aggregate"
            )
        return cls(tuple(keys), tuple(shapes), size)

    def flatten(self, record: ArrayRecord, *, what: str) -> np.ndarray:
        """The aggregated arrays of ``record`` as one float64 vector."""
        parts = []
        for key, shape in zip(self.keys, self.shapes, strict=True):
            if key not in record:
                raise InvalidArgument(f"{what} has no array {key!r}")
            value = record[key].numpy()
            if tuple(value.shape) != shape or value.dtype.kind != "f":
                raise InvalidArgument(
                    f"{what}: array {key!r} is {value.dtype} {value.shape}, the global model's "
                    f"is a float array of shape {shape}"
                )
            parts.append(value.astype(np.float64).reshape(-1))
        out = np.concatenate(parts)
        if not np.isfinite(out).all():
            raise InvalidArgument(f"{what} contains NaN or inf")
        return out

    def apply(self, record: ArrayRecord, flat: np.ndarray) -> ArrayRecord:
        """A copy of ``record`` with its aggregated arrays replaced by ``flat``."""
        new: dict[str, Array] = {}
        start = 0
        index = dict(zip(self.keys, self.shapes, strict=True))
        for key, array in record.items():
            value = array.numpy()
            if key in index:
                n = int(np.prod(index[key], dtype=np.int64))
                value = flat[start : start + n].reshape(index[key]).astype(value.dtype)
                start += n
            new[key] = Array(np.ascontiguousarray(value))
        return ArrayRecord(new)


def _single_array_record(content: RecordDict, *, what: str) -> ArrayRecord:
    records = list(content.array_records.values())
    if len(records) != 1:
        raise InvalidArgument(
            f"{what} must carry exactly one ArrayRecord (the model), found {len(records)}"
        )
    return records[0]


# ============================================================================ records
def _get_int(record: ConfigRecord, key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise IntegrityError(f"secfl record field {key!r} must be an integer")
    return value


def _get_bytes(record: ConfigRecord, key: str) -> bytes:
    value = record.get(key)
    if not isinstance(value, bytes):
        raise IntegrityError(f"secfl record field {key!r} must be bytes")
    return value


def _get_str(record: ConfigRecord, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise IntegrityError(f"secfl record field {key!r} must be a string")
    return value


# ============================================================================ reasons
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_FRAME = re.compile(r'^\s+File "')
_FLOWER_WRAP = re.compile(r"<class '([^']+)'>:<'(.*)'>", re.DOTALL)
"""How Flower words a ClientApp's exception: ``<class 'ValueError'>:<'message'>``."""


def one_line_reason(text: str, limit: int = 200) -> str:
    """The gist of an error reply's reason, on one line of at most ``limit`` characters.

    A ClientApp that raises under Flower's simulation engine comes back with the whole Ray
    traceback as its reason (terminal colour codes included), which would swamp a round's
    ``dropped`` map and its log line. This strips ANSI escape sequences, rewords Flower's
    ``<class 'T'>:<'message'>`` as ``T: message``, keeps of a traceback only the exception
    line that first follows a frame (``RuntimeError: boom``: in a chain, the root cause),
    collapses whitespace (other multi-line text becomes one line) and cuts what is past
    ``limit`` with an ellipsis.
    """
    if limit < 1:
        raise InvalidArgument(f"limit must be at least 1 character, got {limit}")
    text = _ANSI.sub("", text).strip()
    wrapped = _FLOWER_WRAP.fullmatch(text)
    if wrapped is not None:
        text = wrapped[1] + (f": {wrapped[2]}" if wrapped[2] else "")
    lines = text.splitlines()
    if any(_FRAME.match(line) for line in lines):
        text = next((line for line in reversed(lines) if line.strip()), "")
        in_frame = False
        for line in lines:
            if _FRAME.match(line):
                in_frame = True
            elif in_frame and line.strip() and not line[0].isspace():
                text = line
                break
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"
