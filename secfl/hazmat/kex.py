"""X25519 key agreement with HKDF-SHA256 key derivation (RFC 7748, RFC 5869).

SecAgg's ``KA.agree``: two parties exchange 32-byte public keys and each derives the same
symmetric key. ``exchange`` never returns the raw Diffie-Hellman output (only
:mod:`secfl.hazmat.dleq` reveals it, with a proof, when a protocol must); it goes through
HKDF-SHA256 with a fixed salt and a caller-chosen ``info`` string, which is where the
protocol binds its context (protocol version, round, purpose, the two identities in a
canonical order) so keys for different purposes never collide.

Public keys are parsed strictly: only the canonical encoding (u < 2^255 - 19, top bit
clear) of a point on the curve (not its twist) is accepted, and the points of small order
(whose shared secret is all zeros and therefore known to everyone) are refused at parse
time. ``exchange`` checks for the all-zero output again as a second line of defence.
"""

from __future__ import annotations

import hmac
from typing import NoReturn

import gmpy2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat.rng import Csprng

__all__ = ["HKDF_SALT", "KEY_BYTES", "MAX_DERIVED_BYTES", "KexPrivateKey", "KexPublicKey", "derive"]

KEY_BYTES = 32
"""Size of an X25519 private key, public key and raw shared secret."""

HKDF_SALT = b"secfl/kex/x25519-hkdf-sha256/v1"
"""Fixed, public HKDF salt (domain separation from other uses of X25519 keys)."""

MAX_DERIVED_BYTES = 255 * 32
"""HKDF-SHA256 can derive at most 255 hash blocks."""

_P = 2**255 - 19
_A = 486662  # Curve25519: v^2 = u^3 + A u^2 + u
_A24 = (_A - 2) // 4
# u-coordinates of the points of small order on Curve25519 and its twist (libsodium's
# blocklist, reduced mod p): X25519 with any of them yields the all-zero secret.
_SMALL_ORDER_U = frozenset(
    {
        0,
        1,
        _P - 1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    }
)


def _check_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def derive(shared: bytes, *, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 of a raw X25519 output, as :meth:`KexPrivateKey.exchange` derives it
    (also for an output revealed with a proof, :mod:`secfl.hazmat.dleq`)."""
    if hmac.compare_digest(shared, bytes(KEY_BYTES)):
        raise IntegrityError("X25519 exchange produced an all-zero shared secret")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info)
    return hkdf.derive(shared)


class KexPublicKey:
    """An X25519 public key: 32 bytes, canonical, not of small order."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: X25519PublicKey) -> None:
        if not isinstance(key, X25519PublicKey):
            raise InvalidArgument("use KexPublicKey.from_bytes(...) or KexPrivateKey.public_key()")
        self._key = key
        self._raw = key.public_bytes_raw()

    @classmethod
    def from_bytes(cls, data: bytes) -> KexPublicKey:
        """Parse a 32-byte public key; refuse non-canonical and small-order encodings.

        Raises :class:`InvalidArgument` for a wrong length and :class:`IntegrityError` for
        an encoding that is not a valid peer key.
        """
        raw = _check_bytes("public key", data)
        if len(raw) != KEY_BYTES:
            raise InvalidArgument(f"an X25519 public key is {KEY_BYTES} bytes, got {len(raw)}")
        u = int.from_bytes(raw, "little")
        if u >= _P:
            raise IntegrityError("X25519 public key is not canonically encoded")
        if u in _SMALL_ORDER_U:
            raise IntegrityError("X25519 public key is a point of small order")
        if int(gmpy2.legendre((u * u * u + _A * u * u + u) % _P, _P)) != 1:
            # X25519 computes on the twist too; a key there has no place in a proof about
            # the curve's group (secfl.hazmat.dleq), and no honest key lies there.
            raise IntegrityError("X25519 public key is a point of the twist, not the curve")
        try:
            key = X25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:  # pragma: no cover - length is checked above
            raise IntegrityError("invalid X25519 public key") from exc
        return cls(key)

    def to_bytes(self) -> bytes:
        """The 32-byte raw encoding."""
        return self._raw

    def agreement_class(self) -> bytes:
        """What X25519 sees of this key: the u-coordinate of 8 times its point. Clamped
        secrets are multiples of 8, so two keys of one class (one of them with a torsion
        component added: other bytes, the same point of prime order) give every secret the
        same shared secret. Compare classes, not bytes, to tell whether two keys are the
        same. Three x-only doublings (RFC 7748's formulas), about 10 microseconds."""
        x, z = gmpy2.mpz(int.from_bytes(self._raw, "little")), gmpy2.mpz(1)
        for _ in range(3):
            aa, bb = (x + z) ** 2 % _P, (x - z) ** 2 % _P
            e = aa - bb
            x, z = aa * bb % _P, e * (aa + _A24 * e) % _P
        return int(x * gmpy2.invert(z, _P) % _P).to_bytes(KEY_BYTES, "little")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KexPublicKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((KexPublicKey, self._raw))

    def __repr__(self) -> str:
        return f"KexPublicKey({self._raw.hex()[:16]}...)"


class KexPrivateKey:
    """An X25519 private key. Build it with :meth:`generate` or :meth:`from_bytes`.

    Refuses pickling and never shows its bytes in ``repr``; export is explicit through
    :meth:`private_bytes`.
    """

    __slots__ = ("_key",)

    def __init__(self, key: X25519PrivateKey) -> None:
        if not isinstance(key, X25519PrivateKey):
            raise InvalidArgument("use KexPrivateKey.generate(rng=...) or .from_bytes(...)")
        self._key = key

    @classmethod
    def generate(cls, *, rng: Csprng) -> KexPrivateKey:
        """A fresh private key from 32 bytes of ``rng`` (clamped by X25519 itself)."""
        return cls(X25519PrivateKey.from_private_bytes(rng.bytes(KEY_BYTES)))

    @classmethod
    def from_bytes(cls, data: bytes) -> KexPrivateKey:
        """Load a private key from its 32 raw bytes."""
        raw = _check_bytes("private key", data)
        if len(raw) != KEY_BYTES:
            raise InvalidArgument(f"an X25519 private key is {KEY_BYTES} bytes, got {len(raw)}")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """Export the 32 raw secret bytes (an explicit act; handle with care)."""
        return self._key.private_bytes_raw()

    def public_key(self) -> KexPublicKey:
        """The matching public key."""
        return KexPublicKey(self._key.public_key())

    def exchange(self, peer: KexPublicKey, *, info: bytes, length: int = 32) -> bytes:
        """Derive ``length`` bytes shared with ``peer``: HKDF-SHA256(X25519(self, peer)).

        Both parties get the same bytes for the same ``info``. Raises
        :class:`IntegrityError` if the Diffie-Hellman output is all zeros (a small-order
        peer key), so a key everyone can compute is never returned.
        """
        if not isinstance(peer, KexPublicKey):
            raise InvalidArgument(f"peer must be a KexPublicKey, got {type(peer).__name__}")
        info = _check_bytes("info", info)
        if not isinstance(length, int) or not 1 <= length <= MAX_DERIVED_BYTES:
            raise InvalidArgument(f"length must be in 1..{MAX_DERIVED_BYTES}, got {length!r}")
        try:
            shared = self._key.exchange(peer._key)
        except ValueError as exc:
            raise IntegrityError("X25519 exchange produced an all-zero shared secret") from exc
        return derive(shared, info=info, length=length)

    def __repr__(self) -> str:
        return "KexPrivateKey(<secret>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KexPrivateKey holds secret key material and cannot be pickled")
