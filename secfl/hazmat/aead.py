"""AES-256-GCM envelopes: ``nonce (12 bytes) || ciphertext || tag (16 bytes)``.

SecAgg's ``AE.enc``/``AE.dec``: a client encrypts its Shamir shares to each peer under the
key both derived with :mod:`secfl.hazmat.kex`, and the server relays the opaque envelopes.
``associated_data`` is authenticated but not encrypted; protocols put the sender, the
recipient and the round in it so an envelope cannot be replayed elsewhere.

Nonces are drawn from the injected :class:`~secfl.hazmat.rng.Csprng`. With random 96-bit
nonces one key must seal at most 2^32 messages (NIST SP 800-38D); SecAgg derives a fresh
key per pair of parties and round, far below that bound.

Every failure to open (short input, wrong key, tampered bytes, wrong associated data)
raises :class:`~secfl.errors.IntegrityError`; the reason is deliberately not distinguished.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat.rng import Csprng

__all__ = ["KEY_BYTES", "NONCE_BYTES", "OVERHEAD", "TAG_BYTES", "seal", "unseal"]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
"""Envelope size minus plaintext size (28 bytes)."""

# AES-GCM encrypts at most 2^39 - 256 bits per nonce.
_MAX_PLAINTEXT = (1 << 36) - 32


def _as_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _aesgcm(key: object) -> AESGCM:
    raw = _as_bytes("key", key)
    if len(raw) != KEY_BYTES:
        raise InvalidArgument(f"AES-256-GCM key must be {KEY_BYTES} bytes, got {len(raw)}")
    return AESGCM(raw)


def seal(key: bytes, plaintext: bytes, *, associated_data: bytes, rng: Csprng) -> bytes:
    """Encrypt and authenticate ``plaintext``; returns ``nonce || ciphertext || tag``."""
    aes = _aesgcm(key)
    data = _as_bytes("plaintext", plaintext)
    ad = _as_bytes("associated_data", associated_data)
    if len(data) > _MAX_PLAINTEXT:
        raise InvalidArgument(f"plaintext must be at most {_MAX_PLAINTEXT} bytes")
    nonce = rng.bytes(NONCE_BYTES)
    return nonce + aes.encrypt(nonce, data, ad)


def unseal(key: bytes, envelope: bytes, *, associated_data: bytes) -> bytes:
    """Authenticate and decrypt an envelope made by :func:`seal` with the same key and AD.

    Raises :class:`IntegrityError` if the envelope is too short or fails authentication.
    """
    aes = _aesgcm(key)
    env = _as_bytes("envelope", envelope)
    ad = _as_bytes("associated_data", associated_data)
    if len(env) < OVERHEAD:
        raise IntegrityError(f"AEAD envelope must be at least {OVERHEAD} bytes, got {len(env)}")
    try:
        return aes.decrypt(env[:NONCE_BYTES], env[NONCE_BYTES:], ad)
    except InvalidTag:
        raise IntegrityError("AEAD envelope failed authentication") from None
