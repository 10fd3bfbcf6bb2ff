"""Randomized Hadamard rotation: spread a vector's energy evenly over its coordinates.

Before integer noise is added (distributed DP), each client rotates its clipped update by
``R = H D / sqrt(d')``: ``d'`` is the dimension padded to a power of two, ``D`` a diagonal
of random signs and ``H`` the Walsh-Hadamard matrix. ``R`` is orthogonal, so the L2 norm
(and hence the sensitivity) is unchanged, while each rotated coordinate is sub-Gaussian
with variance proxy ``||x||^2 / d'`` (Kairouz, Liu, Steinke, ICML 2021, Sec. 4): no single
coordinate carries much of the signal, so modular wrap-around and rounding hurt little.
The server undoes the rotation on the decoded sum with :meth:`RandomizedHadamard.inverse`.

The signs come from a **public** 32-byte seed that all clients and the server share for a
round (e.g. derived from the round number); hiding it is not needed for privacy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from secfl.errors import InvalidArgument
from secfl.hazmat.prg import SEED_BYTES
from secfl.hazmat.rng import Csprng

__all__ = ["RandomizedHadamard", "fwht", "padded_dimension"]


def padded_dimension(dimension: int) -> int:
    """The smallest power of two >= ``dimension`` (the rotated vector's length)."""
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
        raise InvalidArgument(f"dimension must be an int >= 1, got {dimension!r}")
    return 1 << (dimension - 1).bit_length()


def fwht(x: np.ndarray) -> np.ndarray:
    """The orthonormal fast Walsh-Hadamard transform ``H x / sqrt(n)``, O(n log n).

    ``x`` is a float vector whose length is a power of two; the result is a new float64
    array. The transform is its own inverse.
    """
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InvalidArgument(f"fwht expects a 1-D vector, got shape {arr.shape}")
    n = arr.size
    if n == 0 or n & (n - 1):
        raise InvalidArgument(f"fwht needs a power-of-two length, got {n}")
    y = np.array(arr, dtype=np.float64, copy=True)
    h = 1
    while h < n:
        # Butterflies between blocks of width h: (a, b) -> (a + b, a - b), in place.
        view = y.reshape(-1, 2, h)
        a = view[:, 0, :]
        b = view[:, 1, :]
        total = a + b
        np.subtract(a, b, out=b)
        a[...] = total
        h *= 2
    y *= 1.0 / math.sqrt(n)
    return y


@dataclass(frozen=True, kw_only=True)
class RandomizedHadamard:
    """The rotation ``x -> H D pad(x) / sqrt(d')`` for one round, and its exact inverse.

    ``dimension`` is the length of the unrotated update; ``seed`` the round's public
    32-byte seed, expanded with :class:`~secfl.hazmat.rng.Csprng` into one sign per padded
    coordinate. Equal seeds give equal rotations on every party.
    """

    dimension: int
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        padded_dimension(self.dimension)  # validates
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_BYTES:
            raise InvalidArgument(f"seed must be {SEED_BYTES} bytes")

    @property
    def padded_dimension(self) -> int:
        """Length of rotated vectors: ``dimension`` rounded up to a power of two."""
        return padded_dimension(self.dimension)

    def signs(self) -> np.ndarray:
        """The diagonal of ``D`` as float64 +-1 values (deterministic in the seed)."""
        n = self.padded_dimension
        raw = Csprng(seed=self.seed).bytes((n + 7) // 8)
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n]
        out: np.ndarray = 1.0 - 2.0 * bits.astype(np.float64)
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Rotate a length-``dimension`` float vector; returns ``padded_dimension`` floats."""
        arr = np.asarray(x)
        if arr.dtype not in (np.float32, np.float64):
            raise InvalidArgument(f"expected a float32 or float64 vector, got {arr.dtype}")
        if arr.shape != (self.dimension,):
            raise InvalidArgument(
                f"expected a vector of shape ({self.dimension},), got {arr.shape}"
            )
        padded = np.zeros(self.padded_dimension, dtype=np.float64)
        padded[: self.dimension] = arr
        padded *= self.signs()
        return fwht(padded)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Undo :meth:`forward`: ``D H y / sqrt(d')`` truncated to ``dimension`` (float64)."""
        arr = np.asarray(y)
        if arr.dtype not in (np.float32, np.float64):
            raise InvalidArgument(f"expected a float32 or float64 vector, got {arr.dtype}")
        if arr.shape != (self.padded_dimension,):
            raise InvalidArgument(
                f"expected a vector of shape ({self.padded_dimension},), got {arr.shape}"
            )
        out = fwht(arr)
        out *= self.signs()
        result: np.ndarray = out[: self.dimension].copy()
        return result
