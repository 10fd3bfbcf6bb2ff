"""Ed25519 identities (RFC 8032): long-term signing keys for the malicious-server setting.

In SecAgg (Bonawitz et al. 2017) each client signs its advertised public keys and the
survivor set it saw, so a server cannot substitute keys or lie about who is alive.

Verification raises :class:`~secfl.errors.IntegrityError`; it never returns ``False``.
Verify keys are parsed strictly: a non-canonical encoding, a point not on the curve, or a
point of small order is refused at parse time. OpenSSL accepts small-order keys, and under
such a key a signature can be forged for any message (e.g. the identity key with
``R = identity, S = 0``), so the check matters.
"""

from __future__ import annotations

import hmac
from typing import NoReturn

import gmpy2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat._curve25519 import D, P
from secfl.hazmat.rng import Csprng

__all__ = ["KEY_BYTES", "SIGNATURE_BYTES", "SigningKey", "VerifyKey"]

KEY_BYTES = 32
"""Size of an Ed25519 private seed and of an encoded verify key."""

SIGNATURE_BYTES = 64

_P, _D = P, D
# y-coordinates of the eight points of order dividing 8 (libsodium's blocklist): identity
# (y=1), order 2 (y=-1), order 4 (y=0), order 8 (y = +-_Y8).
_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})


def _as_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _check_point(raw: bytes) -> None:
    """Raise IntegrityError unless ``raw`` encodes a curve point of large order."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise IntegrityError("Ed25519 verify key is not canonically encoded")
    if y in _SMALL_ORDER_Y:
        raise IntegrityError("Ed25519 verify key is a point of small order")
    # x^2 = u / v with u = y^2 - 1, v = d y^2 + 1 must be a nonzero square; u / v is a square
    # iff u * v is (v != 0 as d is not a square; u = 0 only for y = +-1, refused above).
    # gmpy2's Legendre symbol is ~100x faster than Euler's criterion with pow().
    y2 = y * y % _P
    if int(gmpy2.legendre((y2 - 1) * (_D * y2 + 1) % _P, _P)) != 1:
        raise IntegrityError("Ed25519 verify key is not a point on the curve")


class VerifyKey:
    """An Ed25519 public key: checks signatures, raising on failure."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidArgument("use VerifyKey.from_bytes(...) or SigningKey.verify_key()")
        self._key = key
        self._raw = key.public_bytes_raw()

    @classmethod
    def from_bytes(cls, data: bytes) -> VerifyKey:
        """Parse a 32-byte verify key.

        Raises :class:`InvalidArgument` for a wrong length and :class:`IntegrityError` for a
        non-canonical, off-curve or small-order point.
        """
        raw = _as_bytes("verify key", data)
        if len(raw) != KEY_BYTES:
            raise InvalidArgument(f"an Ed25519 verify key is {KEY_BYTES} bytes, got {len(raw)}")
        _check_point(raw)
        try:
            key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:  # pragma: no cover - checked above
            raise IntegrityError("invalid Ed25519 verify key") from exc
        return cls(key)

    def to_bytes(self) -> bytes:
        """The 32-byte raw encoding."""
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> None:
        """Return ``None`` if ``signature`` is valid for ``message``, else raise.

        Raises :class:`IntegrityError` for a malformed or invalid signature.
        """
        sig = _as_bytes("signature", signature)
        msg = _as_bytes("message", message)
        if len(sig) != SIGNATURE_BYTES:
            raise IntegrityError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes, got {len(sig)}")
        try:
            self._key.verify(sig, msg)
        except InvalidSignature:
            raise IntegrityError("Ed25519 signature verification failed") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((VerifyKey, self._raw))

    def __repr__(self) -> str:
        return f"VerifyKey({self._raw.hex()[:16]}...)"


class SigningKey:
    """An Ed25519 private key. Build it with :meth:`generate` or :meth:`from_bytes`.

    Signatures are deterministic (RFC 8032), so signing takes no randomness. Refuses
    pickling and never shows its bytes in ``repr``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidArgument("use SigningKey.generate(rng=...) or .from_bytes(...)")
        self._key = key

    @classmethod
    def generate(cls, *, rng: Csprng) -> SigningKey:
        """A fresh signing key from a 32-byte seed drawn from ``rng``."""
        return cls(Ed25519PrivateKey.from_private_bytes(rng.bytes(KEY_BYTES)))

    @classmethod
    def from_bytes(cls, data: bytes) -> SigningKey:
        """Load a signing key from its 32-byte seed."""
        raw = _as_bytes("signing key", data)
        if len(raw) != KEY_BYTES:
            raise InvalidArgument(f"an Ed25519 signing key is {KEY_BYTES} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """Export the 32-byte seed (an explicit act; handle with care)."""
        return self._key.private_bytes_raw()

    def verify_key(self) -> VerifyKey:
        """The matching verify key."""
        return VerifyKey(self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        """A 64-byte signature on ``message``."""
        return self._key.sign(_as_bytes("message", message))

    def __repr__(self) -> str:
        return "SigningKey(<secret>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey holds secret key material and cannot be pickled")
