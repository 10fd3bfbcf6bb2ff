"""Edwards25519 group arithmetic in pure Python, for the one thing ``cryptography`` cannot
do: prove statements about X25519 secrets (:mod:`secfl.hazmat.dleq`).

Points are extended twisted-Edwards coordinates (X : Y : Z : T), x = X/Z, y = Y/Z,
xy = T/Z, on -x^2 + y^2 = 1 + d x^2 y^2 over GF(2^255 - 19) (RFC 8032 section 5.1), with
the unified addition of RFC 8032 section 5.1.4 (no exceptional cases). Curve25519's
Montgomery u-coordinate (X25519, RFC 7748) maps to the Edwards y by y = (u - 1)/(u + 1).

Not constant-time. It runs on public values and, when a client proves a channel secret,
on that client's round channel key a, which stays secret (it protects every envelope the
client sent). The exposure is one proof per complaint, made only when an envelope does
not open, with a key used for one round: a timing attack would need many precise
measurements of the same key, which a round does not give. Do not use it for long-lived
secrets or in a loop an adversary can trigger.
"""

from __future__ import annotations

from typing import NamedTuple

from secfl.errors import IntegrityError

P = 2**255 - 19
"""The field prime."""
L = 2**252 + 27742317777372353535851937790883648493
"""The order of the prime-order subgroup (the group has order 8 L)."""
D = (-121665 * pow(121666, P - 2, P)) % P
"""The Edwards curve constant d."""
_SQRT_M1 = pow(2, (P - 1) // 4, P)


class Point(NamedTuple):
    """A point in extended coordinates."""

    X: int
    Y: int
    Z: int
    T: int


IDENTITY = Point(0, 1, 1, 0)


def add(p: Point, q: Point) -> Point:
    """p + q (RFC 8032 section 5.1.4, complete for a = -1)."""
    a = (p.Y - p.X) * (q.Y - q.X) % P
    b = (p.Y + p.X) * (q.Y + q.X) % P
    c = 2 * D * p.T * q.T % P
    d = 2 * p.Z * q.Z % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return Point(e * f % P, g * h % P, f * g % P, e * h % P)


def negate(p: Point) -> Point:
    return Point(-p.X % P, p.Y, p.Z, -p.T % P)


def multiply(k: int, p: Point) -> Point:
    """k * p for k >= 0 (double-and-add, most significant bit first)."""
    acc = IDENTITY
    for bit in bin(k)[2:] if k else "":
        acc = add(acc, acc)
        if bit == "1":
            acc = add(acc, p)
    return acc


def equal(p: Point, q: Point) -> bool:
    return (p.X * q.Z - q.X * p.Z) % P == 0 and (p.Y * q.Z - q.Y * p.Z) % P == 0


def _affine(p: Point) -> tuple[int, int]:
    zi = pow(p.Z, P - 2, P)
    return p.X * zi % P, p.Y * zi % P


def encode(p: Point) -> bytes:
    """The 32-byte RFC 8032 encoding: y little-endian, the sign of x in the top bit."""
    x, y = _affine(p)
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _recover(y: int, sign: int) -> Point:
    """The point with this y and x of this parity (RFC 8032 section 5.1.3, step 2-4)."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        x = x * _SQRT_M1 % P
        if (v * x * x - u) % P:
            raise IntegrityError("not a point on Curve25519")
    if x == 0 and sign:
        raise IntegrityError("not a canonical point encoding (x = 0 with the sign bit set)")
    if x & 1 != sign:
        x = P - x
    return Point(x, y, 1, x * y % P)


def decode(data: bytes) -> Point:
    """Parse a canonical 32-byte encoding of a point on the curve (any order)."""
    if len(data) != 32:
        raise IntegrityError(f"a point encoding is 32 bytes, got {len(data)}")
    n = int.from_bytes(data, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= P:
        raise IntegrityError("not a canonical point encoding (y >= p)")
    return _recover(y, sign)


def from_montgomery(u: int) -> Point:
    """The point with Montgomery u-coordinate ``u`` and even x: one of the two points an
    X25519 public key stands for (X25519 cannot tell them apart). Raises for u = -1 (no
    Edwards image) and for a u on the quadratic twist rather than the curve."""
    if (u + 1) % P == 0:
        raise IntegrityError("u = -1 has no Edwards image")
    return _recover((u - 1) * pow(u + 1, P - 2, P) % P, 0)


def to_montgomery(p: Point) -> int:
    """The Montgomery u-coordinate (1 + y)/(1 - y) of p (p must not be the identity)."""
    _, y = _affine(p)
    if y == 1:
        raise IntegrityError("the identity has no Montgomery u-coordinate")
    return (1 + y) * pow(1 - y, P - 2, P) % P


BASE = from_montgomery(9)
"""The base point: Montgomery u = 9, Edwards y = 4/5, x even (RFC 8032's B)."""
