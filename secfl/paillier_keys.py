"""secfl's Paillier key objects: typed, hard to misuse, convertible to and from ``phe``'s.

``phe`` keys are plain objects: they pickle with their primes, print them in no repr but
hand them out as attributes, and any object with an ``n`` passes for a public key. secfl's
:class:`PaillierPrivateKey` refuses pickling, keeps the primes out of its repr, and gives
them up only through :meth:`PaillierPrivateKey.private_numbers`, an explicit act (as tink's
key objects do). Every public secfl API that takes a key accepts these (and, converted at
the boundary, ``phe``'s); :meth:`to_phe` / :meth:`from_phe` cross to ``phe`` code.
"""

from __future__ import annotations

import hashlib
from typing import NoReturn

import phe

from secfl.errors import InvalidArgument

__all__ = [
    "KEY_BITS",
    "PaillierPrivateKey",
    "PaillierPublicKey",
    "as_phe_private_key",
    "as_phe_public_key",
    "generate_paillier_keypair",
]

KEY_BITS = (2048, 3072)
"""Modulus sizes secfl generates (112- and 128-bit security)."""
_MIN_BITS = 1024  # what the protocol layer accepts from elsewhere (test keys, old files)


class PaillierPublicKey:
    """The modulus n; equal keys have equal n."""

    __slots__ = ("_phe",)

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidArgument(f"n must be an int, got {type(n).__name__}")
        if n.bit_length() < _MIN_BITS or n % 2 == 0:
            raise InvalidArgument(f"n must be an odd modulus of >= {_MIN_BITS} bits")
        self._phe = phe.PaillierPublicKey(n)

    @classmethod
    def from_phe(cls, key: phe.PaillierPublicKey) -> PaillierPublicKey:
        if not isinstance(key, phe.PaillierPublicKey):
            raise InvalidArgument(f"expected a phe.PaillierPublicKey, got {type(key).__name__}")
        return cls(int(key.n))

    def to_phe(self) -> phe.PaillierPublicKey:
        return self._phe

    @property
    def n(self) -> int:
        return int(self._phe.n)

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    def fingerprint(self) -> bytes:
        """First 16 bytes of SHA-256 over n (big-endian): the key's name on the wire."""
        n = self.n
        return hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).digest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, fingerprint={self.fingerprint().hex()})"


class PaillierPrivateKey:
    """The primes p, q of a public key's n. Refuses pickling; no secret in its repr."""

    __slots__ = ("_phe", "_public")

    def __init__(self, public_key: PaillierPublicKey, p: int, q: int) -> None:
        if not isinstance(public_key, PaillierPublicKey):
            raise InvalidArgument("public_key must be a secfl PaillierPublicKey")
        if not (isinstance(p, int) and isinstance(q, int)) or p * q != public_key.n:
            raise InvalidArgument("p * q must equal the public key's n")
        self._public = public_key
        self._phe = phe.PaillierPrivateKey(public_key.to_phe(), p, q)

    @classmethod
    def from_phe(cls, key: phe.PaillierPrivateKey) -> PaillierPrivateKey:
        if not isinstance(key, phe.PaillierPrivateKey):
            raise InvalidArgument(f"expected a phe.PaillierPrivateKey, got {type(key).__name__}")
        return cls(PaillierPublicKey.from_phe(key.public_key), int(key.p), int(key.q))

    def to_phe(self) -> phe.PaillierPrivateKey:
        return self._phe

    @property
    def public_key(self) -> PaillierPublicKey:
        return self._public

    def private_numbers(self) -> tuple[int, int]:
        """The primes (p, q): an explicit export of the secret, e.g. to write a key file."""
        return int(self._phe.p), int(self._phe.q)

    def __reduce__(self) -> NoReturn:
        raise TypeError("PaillierPrivateKey holds secret primes and cannot be pickled")

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(<secret>, public_key={self._public!r})"


def generate_paillier_keypair(*, bits: int = 2048) -> PaillierPrivateKey:
    """A fresh key pair (``.public_key`` is the public half), primes from OS randomness."""
    if isinstance(bits, bool) or bits not in KEY_BITS:
        raise InvalidArgument(f"bits must be one of {KEY_BITS}, got {bits!r}")
    _, private = phe.generate_paillier_keypair(n_length=bits)
    return PaillierPrivateKey.from_phe(private)


def as_phe_public_key(key: PaillierPublicKey | phe.PaillierPublicKey) -> phe.PaillierPublicKey:
    """The ``phe`` key behind a secfl or ``phe`` public key (for the hazmat layer)."""
    if isinstance(key, PaillierPublicKey):
        return key.to_phe()
    if isinstance(key, phe.PaillierPublicKey):
        return key
    raise InvalidArgument(f"expected a Paillier public key, got {type(key).__name__}")


def as_phe_private_key(
    key: PaillierPrivateKey | phe.PaillierPrivateKey,
) -> phe.PaillierPrivateKey:
    """The ``phe`` key behind a secfl or ``phe`` private key (for the hazmat layer)."""
    if isinstance(key, PaillierPrivateKey):
        return key.to_phe()
    if isinstance(key, phe.PaillierPrivateKey):
        return key
    raise InvalidArgument(f"expected a Paillier private key, got {type(key).__name__}")
