"""Keyed pseudo-random generator: AES-256-CTR keystream expanded into numpy buffers.

A 32-byte seed is the AES key; the counter starts at a 16-byte nonce (all zeros unless a
stream label is given), so one seed gives one stream per label. Keystream bytes are written
straight into a preallocated array with ``update_into`` (no intermediate Python bytes), which
reaches several GB/s per core with AES-NI.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secfl.errors import InvalidArgument

__all__ = [
    "SEED_BYTES",
    "KeystreamBuffer",
    "expand_into",
    "expand_uniform",
    "keystream",
    "uint_dtype",
]

if sys.byteorder != "little":  # pragma: no cover - words are read in native order
    raise ImportError(
        "secfl.hazmat.prg reads keystream words little-endian; big-endian hosts are unsupported"
    )

SEED_BYTES = 32
_BLOCK = 16
_CHUNK = 1 << 20  # bytes of zeros encrypted per update_into call

_zeros = np.zeros(_CHUNK + _BLOCK, dtype=np.uint8)


def uint_dtype(bits: int) -> np.dtype[np.unsignedinteger]:
    """The smallest unsigned numpy dtype that holds integers of ``bits`` bits (1..64)."""
    if not 1 <= bits <= 64:
        raise InvalidArgument(f"bits must be in 1..64, got {bits}")
    for width, dt in ((8, np.uint8), (16, np.uint16), (32, np.uint32)):
        if bits <= width:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _cipher(seed: bytes, label: bytes) -> Cipher[modes.CTR]:
    if len(seed) != SEED_BYTES:
        raise InvalidArgument(f"PRG seed must be {SEED_BYTES} bytes, got {len(seed)}")
    if len(label) > _BLOCK - 4:
        raise InvalidArgument(f"PRG stream label must be at most {_BLOCK - 4} bytes")
    nonce = label.ljust(_BLOCK, b"\x00")
    return Cipher(algorithms.AES(seed), modes.CTR(nonce))


def expand_into(out: np.ndarray, seed: bytes, *, label: bytes = b"") -> np.ndarray:
    """Fill the C-contiguous array ``out`` with keystream bytes of ``(seed, label)``.

    Returns ``out``. The bytes are uniform; interpret them through ``out``'s dtype.
    """
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidArgument("PRG output buffer must be a writeable C-contiguous array")
    raw = out.reshape(-1).view(np.uint8)
    enc = _cipher(seed, label).encryptor()
    # update_into needs len(out) >= len(in) + block - 1, so the last chunk goes through a copy.
    total = raw.size
    pos = 0
    while total - pos >= _CHUNK + _BLOCK:
        enc.update_into(_zeros[:_CHUNK].data, raw[pos : pos + _CHUNK + _BLOCK].data)
        pos += _CHUNK
    if pos < total:
        rest = total - pos
        tmp = np.empty(rest + _BLOCK, dtype=np.uint8)
        enc.update_into(_zeros[:rest].data, tmp.data)
        raw[pos:] = tmp[:rest]
    enc.finalize()
    return out


def keystream(seed: bytes, nbytes: int, *, label: bytes = b"") -> bytes:
    """``nbytes`` keystream bytes of ``(seed, label)``."""
    if nbytes < 0:
        raise InvalidArgument(f"nbytes must be >= 0, got {nbytes}")
    return expand_into(np.empty(nbytes, dtype=np.uint8), seed, label=label).tobytes()


def expand_uniform(seed: bytes, count: int, bits: int, *, label: bytes = b"") -> np.ndarray:
    """``count`` integers uniform over Z_{2^bits}, in the smallest unsigned dtype that fits.

    Uniform because each entry is a whole number of keystream bytes reduced by a power of
    two (a bit mask), which introduces no bias.
    """
    if count < 0:
        raise InvalidArgument(f"count must be >= 0, got {count}")
    dt = uint_dtype(bits)
    out = expand_into(np.empty(count, dtype=dt), seed, label=label)
    if bits < dt.itemsize * 8:
        out &= dt.type((1 << bits) - 1)
    return out


class KeystreamBuffer:
    """A reusable vector of ``count`` words refilled with keystream by one cipher call.

    For hot loops (one mask per neighbour): the buffer carries the block of slack that
    ``update_into`` needs, so each :meth:`fill` writes in place with no copy and no
    allocation. The returned array is overwritten by the next fill.
    """

    __slots__ = ("_raw", "_zeros", "words")

    def __init__(self, count: int, dtype: np.dtype[np.unsignedinteger]) -> None:
        if count < 0:
            raise InvalidArgument(f"count must be >= 0, got {count}")
        nbytes = count * np.dtype(dtype).itemsize
        self._zeros = np.zeros(nbytes, dtype=np.uint8)
        self._raw = np.empty(nbytes + _BLOCK, dtype=np.uint8)
        self.words = self._raw[:nbytes].view(dtype)

    def __repr__(self) -> str:
        return f"KeystreamBuffer(<{self.words.size} secret words>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeystreamBuffer holds keystream (a mask) and cannot be pickled")

    def fill(self, seed: bytes, *, label: bytes = b"") -> np.ndarray:
        """Keystream of ``(seed, label)`` as words (same bytes as :func:`expand_into`)."""
        enc = _cipher(seed, label).encryptor()
        enc.update_into(self._zeros.data, self._raw.data)
        enc.finalize()
        return self.words
