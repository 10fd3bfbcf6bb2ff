"""A revealed X25519 output with a proof that it is right (Chaum-Pedersen, Fiat-Shamir).

The holder of an X25519 key pair (a, A) reveals K = X25519(a, B) for a peer key B and
proves, without revealing a, that K is what its own key gives: that the discrete logs of
(the Edwards images of) A and K agree, to the bases 8·G and 8·B. Anyone who has A and B
then checks the proof and gets K. SecAgg's active mode uses it for complaints: a
client that cannot open an envelope proves the channel secret it used, so the server
can open the envelope itself and see who cheated (``protocols/secagg-v3.md`` section 3).

Statement (all in the order-L subgroup; a = 8 w with w = a_clamped / 8 < L):
``w·(8G) = Â`` and ``w·(8B̂) = K̂``, where Â and B̂ are the points with the public keys'
u-coordinates and even x, and the sign of w is chosen so that the first holds for Â.
The proof is (c, z) with R1 = z·8G - c·Â, R2 = z·8B̂ - c·K̂ and c = H(context, A, B, K̂,
R1, R2) mod L (SHA-512). The nonce is derived from the secret and the statement, as in
EdDSA, so proving needs no randomness and the same inputs give the same proof.
"""

from __future__ import annotations

import hashlib

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat import _curve25519 as ed
from secfl.hazmat.kex import KexPrivateKey, KexPublicKey

__all__ = ["PROOF_BYTES", "REVEALED_BYTES", "prove_exchange", "verify_exchange"]

REVEALED_BYTES = 32
"""The revealed output: the Edwards encoding of K̂ (its u-coordinate is the X25519 output)."""
PROOF_BYTES = 64
"""(c, z), two little-endian scalars below L."""

_BASE8 = ed.multiply(8, ed.BASE)
_DOMAIN = b"secfl/dleq-x25519/v1/"


def _clamp(raw: bytes) -> int:
    k = bytearray(raw)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def _scalar(*parts: bytes) -> int:
    h = hashlib.sha512()
    for part in parts:
        h.update(len(part).to_bytes(4, "big") + part)
    return int.from_bytes(h.digest(), "little") % ed.L


def _lift8(key: KexPublicKey) -> tuple[ed.Point, ed.Point]:
    """(the point a public key stands for, 8 times it); refuses twist keys."""
    point = ed.from_montgomery(int.from_bytes(key.to_bytes(), "little"))
    return point, ed.multiply(8, point)


def _challenge(
    context: bytes, prover: KexPublicKey, peer: KexPublicKey, revealed: bytes, *points: ed.Point
) -> int:
    encoded = [ed.encode(p) for p in points]
    return _scalar(
        _DOMAIN + b"challenge", context, prover.to_bytes(), peer.to_bytes(), revealed, *encoded
    )


def prove_exchange(
    key: KexPrivateKey, peer: KexPublicKey, *, context: bytes
) -> tuple[bytes, bytes]:
    """(revealed, proof) for X25519(key, peer), bound to ``context`` (the caller names the
    round and the parties in it, so a proof cannot be replayed elsewhere)."""
    if not isinstance(context, bytes):
        raise InvalidArgument(f"context must be bytes, got {type(context).__name__}")
    secret = key.private_bytes()
    w = _clamp(secret) >> 3
    own = key.public_key()
    own_point, _ = _lift8(own)
    if not ed.equal(ed.multiply(w, _BASE8), own_point):
        w = ed.L - w  # our key stands for -w·8G's u-coordinate too; use the even-x one
    _, peer8 = _lift8(peer)
    revealed = ed.encode(ed.multiply(w, peer8))
    r = _scalar(_DOMAIN + b"nonce", secret, context, peer.to_bytes(), revealed)
    r1, r2 = ed.multiply(r, _BASE8), ed.multiply(r, peer8)
    c = _challenge(context, own, peer, revealed, r1, r2)
    z = (r + c * w) % ed.L
    return revealed, c.to_bytes(32, "little") + z.to_bytes(32, "little")


def verify_exchange(
    prover: KexPublicKey, peer: KexPublicKey, revealed: bytes, proof: bytes, *, context: bytes
) -> bytes:
    """Check ``proof`` and return the 32-byte X25519 output of the prover's key with
    ``peer`` (what X25519 itself returns); raise :class:`IntegrityError` otherwise."""
    if len(revealed) != REVEALED_BYTES or len(proof) != PROOF_BYTES:
        raise IntegrityError(
            f"a proven exchange is {REVEALED_BYTES} + {PROOF_BYTES} bytes, got "
            f"{len(revealed)} + {len(proof)}"
        )
    c, z = int.from_bytes(proof[:32], "little"), int.from_bytes(proof[32:], "little")
    if c >= ed.L or z >= ed.L:
        raise IntegrityError("proof scalar not below the group order")
    k = ed.decode(revealed)
    own, own8 = _lift8(prover)
    _, peer8 = _lift8(peer)
    for name, point in (("revealed point", k), ("prover's key", own)):
        if ed.equal(point, ed.IDENTITY) or not ed.equal(ed.multiply(ed.L, point), ed.IDENTITY):
            raise IntegrityError(f"the {name} is not in the prime-order subgroup")
    if ed.equal(own8, ed.IDENTITY) or ed.equal(peer8, ed.IDENTITY):
        raise IntegrityError("a key of small order")
    r1 = ed.add(ed.multiply(z, _BASE8), ed.negate(ed.multiply(c, own)))
    r2 = ed.add(ed.multiply(z, peer8), ed.negate(ed.multiply(c, k)))
    if _challenge(context, prover, peer, revealed, r1, r2) != c:
        raise IntegrityError("the proof of the revealed X25519 output does not verify")
    return ed.to_montgomery(k).to_bytes(32, "little")
