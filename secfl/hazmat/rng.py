"""Injected randomness: a CSPRNG object every randomized step takes explicitly.

``Csprng()`` seeds an AES-256-CTR stream from the OS (``os.urandom``); ``Csprng(seed=...)``
is deterministic, for tests and known-answer vectors. Bulk draws (noise, stochastic
rounding, masks) come from the keystream, so they are fast and never touch ``random`` or
numpy's default generator. Instances refuse to be pickled and never print their key.
"""

from __future__ import annotations

import os
from typing import NoReturn

import numpy as np

from secfl.errors import InvalidArgument
from secfl.hazmat.prg import SEED_BYTES, expand_into, keystream

__all__ = ["Csprng"]

_SMALL = 64
_POOL = 4096


class Csprng:
    """A forward-only random stream: AES-256-CTR keyed by a 32-byte seed.

    Each bulk draw reads the key's "draw" stream, then replaces the key by 32 bytes of its
    "rekey" stream, so successive draws are independent and a captured state reveals no
    past output. Small draws (nonces, seeds: at most ``_SMALL`` bytes) are served from a
    pool of ``_POOL`` bytes taken from the key's "pool" stream (the key is replaced at
    the same time), which makes them ~50x cheaper than a cipher set-up per draw; served
    bytes are dropped from the pool.
    """

    __slots__ = ("_key", "_pool")

    def __init__(self, *, seed: bytes | None = None) -> None:
        if seed is None:
            seed = os.urandom(SEED_BYTES)
        elif not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
            raise InvalidArgument(f"Csprng seed must be {SEED_BYTES} bytes")
        self._key = bytes(seed)
        self._pool = b""

    def _fill(self, out: np.ndarray) -> np.ndarray:
        expand_into(out, self._key, label=b"draw")
        self._key = keystream(self._key, SEED_BYTES, label=b"rekey")
        return out

    def bytes(self, n: int) -> bytes:
        """``n`` uniformly random bytes."""
        if n < 0:
            raise InvalidArgument(f"n must be >= 0, got {n}")
        if n > _SMALL:
            return self._fill(np.empty(n, dtype=np.uint8)).tobytes()
        if len(self._pool) < n:
            fresh = keystream(self._key, SEED_BYTES + _POOL, label=b"pool")
            self._key, self._pool = fresh[:SEED_BYTES], fresh[SEED_BYTES:]
        out, self._pool = self._pool[:n], self._pool[n:]
        return out

    def uint64(self, size: int) -> np.ndarray:
        """``size`` integers uniform over [0, 2^64)."""
        return self._fill(np.empty(_check_size(size), dtype=np.uint64))

    def uniform(self, size: int) -> np.ndarray:
        """``size`` float64 values uniform over [0, 1) with 53 random bits each."""
        top53 = self.uint64(size) >> np.uint64(11)
        out = np.empty(top53.size, dtype=np.float64)
        # copyto from int64 is a fast SIMD cast; astype from uint64 is several times slower.
        np.copyto(out, top53.view(np.int64), casting="unsafe")
        out *= 2.0**-53
        return out

    def integers_below(self, bound: int, size: int) -> np.ndarray:
        """``size`` integers uniform over [0, bound), 1 <= bound <= 2^63, by rejection."""
        if not 1 <= bound <= 1 << 63:
            raise InvalidArgument(f"bound must be in 1..2^63, got {bound}")
        size = _check_size(size)
        out = np.empty(size, dtype=np.uint64)
        # Reject draws above the largest multiple of bound below 2^64 (no modulo bias).
        limit = np.uint64(((1 << 64) // bound) * bound - 1)
        b = np.uint64(bound)
        filled = 0
        while filled < size:
            need = size - filled
            draw = self.uint64(need + need // 8 + 8)
            ok = draw[draw <= limit][:need] % b
            out[filled : filled + ok.size] = ok
            filled += ok.size
        return out

    def spawn(self) -> Csprng:
        """An independent child generator (for a party or a worker)."""
        return Csprng(seed=self.bytes(SEED_BYTES))

    def __repr__(self) -> str:
        return "Csprng(<secret state>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Csprng holds secret state and cannot be pickled")


def _check_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument(f"size must be >= 0, got {size}")
    return size
