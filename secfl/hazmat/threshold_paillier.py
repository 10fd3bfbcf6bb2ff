"""Threshold Paillier (Shoup 2000; Damgard-Jurik 2001 with s = 1): t-of-m decryption.

Hazmat: correct and fast, not misuse-resistant by itself. Who asks for a decryption and of
what is the protocol's business (:mod:`secfl.protocols.paillier_threshold`,
``protocols/paillier-sum-v2.md``).

Design
------
* **Keys** (a trusted dealer). n = p q with safe primes p = 2p' + 1, q = 2q' + 1; m = p'q'.
  The public key is phe-compatible (g = n + 1): clients encrypt exactly as for
  paillier-sum-v1 (:mod:`secfl.hazmat.paillier`). The secret d satisfies d = 0 mod m and
  d = 1 mod n; it is shared with a random polynomial f of degree t - 1 over Z_{n m},
  f(0) = d, holder i getting s_i = f(i). With Delta = m_holders! (written ``delta``), the
  public verification keys are v (a random square generating the squares of Z*_{n^2},
  checked by the dealer) and v_i = v^(Delta s_i) mod n^2.
* **Partial decryption** of c by holder i: c_i = c^(2 Delta s_i) mod n^2, with a
  non-interactive proof that log_{c^4}(c_i^2) = log_v(v_i) (Chaum-Pedersen, made
  non-interactive with SHA-256 over a domain-separated transcript). The exponent is the
  full-size share (about 2|n| bits); nothing is shortened.
* **Batching.** One proof covers a whole vector of N ciphertexts: with 128-bit
  coefficients rho_j derived by SHAKE-256 from a hash of the whole statement (every c_j and
  every c_{j,i}), the holder proves log_{U^4}(W^2) = log_v(v_i) for U = prod c_j^rho_j and
  W = prod c_{j,i}^rho_j (Bellare-Garay-Rabin's small-exponent test). The squares of
  Z*_{n^2} form a cyclic group of order n p' q' whose every prime factor exceeds 2^128, so
  a wrong c_{j,i} passes with probability at most 2^-128 per hash query (see the spec).
* **Combination** of t valid partials (set S): c' = prod_{i in S} c_i^(2 mu_i) with the
  integers mu_i = Delta prod_{i' != i} i' / (i' - i); c' = c^(4 Delta^2 d) = (1 + n)^(4
  Delta^2 M), so M = L(c') (4 Delta^2)^-1 mod n.
* **Randomness** only from the injected :class:`~secfl.hazmat.rng.Csprng` (safe-prime
  candidates, polynomial, v, proof nonces), so a seeded generator reproduces a key and its
  proofs exactly (known-answer vectors). Proof nonces are hedged: hashed with the share
  and the statement, so a replayed generator cannot reuse a nonce for another statement.
* **Not constant time**: gmpy2's modular exponentiation, like phe's, leaks timing that
  depends on the share; run key holders where their timing is not observable at fine grain.
* Key shares refuse pickling and keep s_i out of ``repr``; :meth:`KeyShare.private_number`
  exports it explicitly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import gmpy2
import numpy as np
import phe
from gmpy2 import mpz

from secfl._text import plural
from secfl.errors import InsufficientSurvivors, IntegrityError, InvalidArgument
from secfl.hazmat.rng import Csprng

__all__ = [
    "CHALLENGE_BITS",
    "KEY_BITS",
    "RHO_BITS",
    "KeyShare",
    "PartialDecryption",
    "ThresholdDecryption",
    "ThresholdPublicKey",
    "combine",
    "combine_verified",
    "deal_key",
    "generate_key",
    "generate_safe_prime",
    "partial_decrypt",
    "screen_partials",
    "verify_partial",
]

KEY_BITS = (2048, 3072)
"""Modulus sizes :func:`generate_key` makes."""
MIN_MODULUS_BITS = 1024
"""Smallest n :func:`deal_key` accepts: p', q' > 2^510 exceed every challenge (2^256)."""
MAX_HOLDERS = 32
CHALLENGE_BITS = 256
"""The Fiat-Shamir challenge e: a whole SHA-256 output."""
RHO_BITS = 128
"""Batching coefficients rho_j (soundness 2^-128 per hash query)."""
HIDING_BITS = 128
"""Statistical zero-knowledge slack of the proof's nonce r over e * Delta * s_i."""

_LABEL = b"secfl threshold-paillier v1"
_SIEVE_PRIMES: np.ndarray | None = None
_SIEVE_BOUND = 1 << 15
_SIEVE_WINDOW = 1 << 14
_MPZ = type(mpz(0))


# --------------------------------------------------------------------------------------
# Small helpers


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | _MPZ):
        raise InvalidArgument(f"{name} must be an int, got {type(value).__name__}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise InvalidArgument(f"{name} must be {bound}, got {v}")
    return v


def _width(x: int) -> int:
    return (int(x).bit_length() + 7) // 8


def _u32(x: int) -> bytes:
    return int(x).to_bytes(4, "big")


def _blob(b: bytes) -> bytes:
    return _u32(len(b)) + b


def _random_below(bound: Any, rng: Csprng) -> Any:
    """Uniform in [0, bound) by rejection from little-endian rng bytes."""
    bits = int(bound).bit_length()
    mask = (1 << bits) - 1
    while True:
        x = mpz.from_bytes(rng.bytes((bits + 7) // 8), "little") & mask
        if x < bound:
            return x


def _random_bits(bits: int, rng: Csprng) -> Any:
    """Uniform in [0, 2^bits)."""
    return mpz.from_bytes(rng.bytes((bits + 7) // 8), "little") & ((1 << bits) - 1)


# --------------------------------------------------------------------------------------
# Safe primes


def _small_primes() -> np.ndarray:
    global _SIEVE_PRIMES
    if _SIEVE_PRIMES is None:
        flags = np.ones(_SIEVE_BOUND, dtype=bool)
        flags[:2] = False
        for i in range(2, math.isqrt(_SIEVE_BOUND) + 1):
            if flags[i]:
                flags[i * i :: i] = False
        _SIEVE_PRIMES = np.flatnonzero(flags)[2:]  # 5, 7, 11, ... (2 and 3 by construction)
    return _SIEVE_PRIMES


def generate_safe_prime(bits: int, *, rng: Csprng) -> int:
    """A safe prime p = 2p' + 1 of exactly ``bits`` bits with its two top bits set.

    Candidates p' = 5 mod 6 (so p' is odd and 3 divides neither p' nor p) start at a uniform
    point drawn from ``rng`` and are sieved, with numpy, for primes below 2^15 dividing p'
    or p. A survivor is tested with a base-2 Fermat test on p, then p' with 40
    Miller-Rabin rounds (gmpy2); given p' prime, the Fermat test on p is a Pocklington
    proof (p - 1 = 2p', 2^2 - 1 = 3 is prime to p), so p is proven prime once p' is.
    """
    bits = _check_int("bits", bits, 64, 8192)
    top = mpz(3) << (bits - 3)  # p' has bits - 1 bits, top two set
    primes = _small_primes()
    inv6 = np.array([pow(6, -1, int(r)) for r in primes], dtype=np.int64)
    while True:
        start = top | _random_bits(bits - 3, rng)
        start += (5 - start % 6) % 6
        # offsets k with p' = start + 6k inside the window; p' must keep bits - 1 bits
        residues = np.array([int(start % int(r)) for r in primes], dtype=np.int64)
        alive = np.ones(_SIEVE_WINDOW, dtype=bool)
        # p' = 0 mod r  <=> k = -start / 6;  p = 2p' + 1 = 0 mod r <=> p' = (r - 1) / 2
        k0 = (-residues * inv6) % primes
        k1 = (((primes - 1) // 2 - residues) * inv6) % primes
        for r, a, b in zip(primes.tolist(), k0.tolist(), k1.tolist(), strict=True):
            alive[a::r] = False
            alive[b::r] = False
        for k in np.flatnonzero(alive).tolist():
            pp = start + 6 * k
            if pp.bit_length() != bits - 1:
                break
            p = 2 * pp + 1
            if gmpy2.powmod(2, p - 1, p) != 1:
                continue
            if gmpy2.is_prime(pp, 40):
                return int(p)


def _is_safe_prime(p: int) -> bool:
    return p > 7 and p % 2 == 1 and gmpy2.is_prime(p, 40) and gmpy2.is_prime((p - 1) // 2, 40)


# --------------------------------------------------------------------------------------
# Keys


class ThresholdPublicKey:
    """n (phe-compatible, g = n + 1), the threshold t of m holders, v and every v_i."""

    __slots__ = ("_n", "_nsq", "_phe", "_threshold", "_v", "_vks")

    def __init__(
        self, n: int, *, threshold: int, verification_base: int, verification_keys: Sequence[int]
    ) -> None:
        n = _check_int("n", n, 3)
        if n.bit_length() < MIN_MODULUS_BITS or n % 2 == 0:
            raise InvalidArgument(f"n must be an odd modulus of >= {MIN_MODULUS_BITS} bits")
        vks = tuple(verification_keys)
        m = len(vks)
        if not 2 <= m <= MAX_HOLDERS:
            raise InvalidArgument(f"holders must be in 2..{MAX_HOLDERS}, got {m}")
        t = _check_int("threshold", threshold, 1, m)
        nsq = n * n
        for name, x in [("verification_base", verification_base)] + [
            (f"verification key {i}", vk) for i, vk in enumerate(vks, 1)
        ]:
            value = _check_int(name, x, 1, nsq - 1)
            if math.gcd(value, n) != 1:
                raise InvalidArgument(f"{name} is not a unit mod n^2")
        if verification_base == 1 or any(vk == 1 for vk in vks):
            raise InvalidArgument("v and every v_i must differ from 1")
        if gmpy2.jacobi(mpz(verification_base) % n, n) != 1:
            raise InvalidArgument("v is not a square mod n^2 (its Jacobi symbol mod n is not 1)")
        self._n = mpz(n)
        self._nsq = self._n * self._n
        self._threshold = t
        self._v = mpz(verification_base)
        self._vks = tuple(mpz(vk) for vk in vks)
        self._phe = phe.PaillierPublicKey(n)

    @property
    def n(self) -> int:
        return int(self._n)

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    @property
    def threshold(self) -> int:
        """t: how many valid partial decryptions recover a plaintext."""
        return self._threshold

    @property
    def holders(self) -> int:
        """m: how many key shares exist (indices 1..m)."""
        return len(self._vks)

    @property
    def delta(self) -> int:
        """Delta = m!"""
        return math.factorial(self.holders)

    @property
    def verification_base(self) -> int:
        return int(self._v)

    @property
    def verification_keys(self) -> tuple[int, ...]:
        """v_1 .. v_m (v_i is ``verification_keys[i - 1]``)."""
        return tuple(int(x) for x in self._vks)

    def to_phe(self) -> phe.PaillierPublicKey:
        """The ``phe`` public key (g = n + 1) clients encrypt under."""
        return self._phe

    @property
    def nonce_bits(self) -> int:
        """Bits of the proof nonce r: 2|n| + bits(Delta) + challenge + hiding."""
        return 2 * self.bits + self.delta.bit_length() + CHALLENGE_BITS + HIDING_BITS

    @property
    def response_bytes(self) -> int:
        """Wire width of the proof response z < 2^(nonce_bits + 1)."""
        return (self.nonce_bits + 1 + 7) // 8

    @property
    def ciphertext_bytes(self) -> int:
        return (2 * self.bits + 7) // 8

    def to_bytes(self) -> bytes:
        """Canonical encoding (what :meth:`fingerprint` and every proof hash bind)."""
        w = self.ciphertext_bytes
        parts = [_LABEL + b" public key", _blob(self.n.to_bytes(_width(self.n), "big"))]
        parts += [_u32(self.threshold), _u32(self.holders), int(self._v).to_bytes(w, "big")]
        parts += [int(vk).to_bytes(w, "big") for vk in self._vks]
        return b"".join(parts)

    def fingerprint(self) -> bytes:
        """First 16 bytes of SHA-256 over :meth:`to_bytes`: names the whole threshold key."""
        return hashlib.sha256(self.to_bytes()).digest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ThresholdPublicKey) and other.to_bytes() == self.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return (
            f"ThresholdPublicKey(bits={self.bits}, threshold={self.threshold}, "
            f"holders={self.holders}, fingerprint={self.fingerprint().hex()})"
        )


class KeyShare:
    """Holder ``index``'s share s_i of d. Refuses pickling; no secret in its repr."""

    __slots__ = ("_exp", "_index", "_public_key", "_s")

    def __init__(self, public_key: ThresholdPublicKey, index: int, share: int) -> None:
        if not isinstance(public_key, ThresholdPublicKey):
            raise InvalidArgument("public_key must be a ThresholdPublicKey")
        index = _check_int("index", index, 1, public_key.holders)
        if isinstance(share, bool) or not isinstance(share, int | _MPZ):
            raise InvalidArgument(f"share must be an int, got {type(share).__name__}")
        if not 0 <= share < public_key.n**2:
            raise InvalidArgument("share must be in 0..n^2 - 1")  # never echo a secret
        expected = public_key._vks[index - 1]
        if gmpy2.powmod(public_key._v, public_key.delta * share, public_key._nsq) != expected:
            raise InvalidArgument(f"the share does not match verification key v_{index}")
        self._public_key = public_key
        self._index = index
        self._s = mpz(share)
        self._exp = 2 * public_key.delta * self._s

    @property
    def public_key(self) -> ThresholdPublicKey:
        return self._public_key

    @property
    def index(self) -> int:
        return self._index

    def private_number(self) -> int:
        """The share s_i: an explicit export of the secret, e.g. to write a key file."""
        return int(self._s)

    def __repr__(self) -> str:
        return f"KeyShare(index={self._index}, <secret>, public_key={self._public_key!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyShare holds a secret key share and cannot be pickled")


def _horner(coeffs: Sequence[Any], x: int, mod: Any) -> Any:
    acc = mpz(0)
    for a in reversed(coeffs):
        acc = (acc * x + a) % mod
    return acc


def deal_key(
    p: int, q: int, *, holders: int, threshold: int, rng: Csprng
) -> tuple[ThresholdPublicKey, tuple[KeyShare, ...]]:
    """The dealer's step: share the key of n = p q (safe primes) t-of-m.

    ``p`` and ``q`` must be distinct safe primes with n of at least 1024 bits. The dealer
    must forget p, q and d afterwards; each share goes to its holder only.
    """
    p, q = _check_int("p", p, 5), _check_int("q", q, 5)
    holders = _check_int("holders", holders, 2, MAX_HOLDERS)
    threshold = _check_int("threshold", threshold, 1, holders)
    if not isinstance(rng, Csprng):
        raise InvalidArgument("rng must be a secfl.hazmat.rng.Csprng")
    if p == q or not (_is_safe_prime(p) and _is_safe_prime(q)):
        raise InvalidArgument("p and q must be distinct safe primes (p = 2p' + 1, p' prime)")
    n = mpz(p) * q
    if n.bit_length() < MIN_MODULUS_BITS:
        raise InvalidArgument(f"n = p q has {n.bit_length()} bits, fewer than {MIN_MODULUS_BITS}")
    pp, qq = mpz(p - 1) // 2, mpz(q - 1) // 2
    m = pp * qq
    if gmpy2.gcd(n, m) != 1:  # p = q' or q = p' (a Cunningham chain)
        raise InvalidArgument("gcd(n, p'q') != 1: choose other safe primes")
    nm, nsq = n * m, n * n
    d = m * gmpy2.invert(m, n)  # d = 0 mod m, d = 1 mod n
    coeffs = [d] + [_random_below(nm, rng) for _ in range(threshold - 1)]
    shares = [_horner(coeffs, i, nm) for i in range(1, holders + 1)]
    order = nm  # |squares of Z*_{n^2}| = n p' q'
    while True:
        r = _random_below(nsq, rng)
        if r == 0 or gmpy2.gcd(r, n) != 1:
            continue
        v = r * r % nsq
        if all(gmpy2.powmod(v, order // f, nsq) != 1 for f in (mpz(p), mpz(q), pp, qq)):
            break  # v generates the cyclic group of squares
    delta = math.factorial(holders)
    vks = [int(gmpy2.powmod(v, delta * s, nsq)) for s in shares]
    public = ThresholdPublicKey(
        int(n), threshold=threshold, verification_base=int(v), verification_keys=vks
    )
    return public, tuple(KeyShare(public, i, int(s)) for i, s in enumerate(shares, 1))


def generate_key(
    *, bits: int = 2048, holders: int, threshold: int, rng: Csprng | None = None
) -> tuple[ThresholdPublicKey, tuple[KeyShare, ...]]:
    """A fresh dealer-made t-of-m key of ``bits`` (2048 or 3072) bits.

    Two safe primes of ``bits / 2`` bits from ``rng`` (an OS-seeded :class:`Csprng` when
    ``None``); about 10-60 s at 2048 bits in pure Python with gmpy2, minutes at 3072.
    """
    if isinstance(bits, bool) or bits not in KEY_BITS:
        raise InvalidArgument(f"bits must be one of {KEY_BITS}, got {bits!r}")
    rng = rng if rng is not None else Csprng()
    while True:
        p = generate_safe_prime(bits // 2, rng=rng)
        q = generate_safe_prime(bits // 2, rng=rng)
        if p != q and math.gcd(p * q, (p - 1) * (q - 1) // 4) == 1:
            return deal_key(p, q, holders=holders, threshold=threshold, rng=rng)


# --------------------------------------------------------------------------------------
# Partial decryption and its batched proof


@dataclass(frozen=True)
class PartialDecryption:
    """Holder ``index``'s c_j^(2 Delta s_i) for every ciphertext, and the proof (e, z)."""

    index: int
    values: tuple[int, ...]
    challenge: int
    response: int

    def to_bytes(self, public_key: ThresholdPublicKey) -> bytes:
        """u32 index | values (W bytes each, big-endian) | e (32 bytes) | z (Z bytes)."""
        w = public_key.ciphertext_bytes
        return b"".join(
            [
                _u32(self.index),
                b"".join(int(x).to_bytes(w, "big") for x in self.values),
                int(self.challenge).to_bytes(CHALLENGE_BITS // 8, "big"),
                int(self.response).to_bytes(public_key.response_bytes, "big"),
            ]
        )

    @classmethod
    def from_bytes(
        cls, data: bytes, public_key: ThresholdPublicKey, *, count: int
    ) -> PartialDecryption:
        """Parse ``count`` values; structure only (the proof is checked by
        :func:`verify_partial`). Raises :class:`IntegrityError` on a wrong length or an
        index outside 1..m."""
        w, zb = public_key.ciphertext_bytes, public_key.response_bytes
        expected = 4 + count * w + CHALLENGE_BITS // 8 + zb
        if len(data) != expected:
            raise IntegrityError(f"a partial decryption of {count} values is {expected} bytes")
        index = int.from_bytes(data[:4], "big")
        if not 1 <= index <= public_key.holders:
            raise IntegrityError(f"partial decryption from holder {index}, not in 1..m")
        body = data[4 : 4 + count * w]
        values = tuple(int.from_bytes(body[i : i + w], "big") for i in range(0, len(body), w))
        rest = data[4 + count * w :]
        e = int.from_bytes(rest[: CHALLENGE_BITS // 8], "big")
        z = int.from_bytes(rest[CHALLENGE_BITS // 8 :], "big")
        return cls(index, values, e, z)


def _digest(label: bytes, values: Sequence[Any], width: int) -> bytes:
    h = hashlib.sha256(_LABEL + b" " + label)
    h.update(_u32(len(values)))
    for x in values:
        h.update(int(x).to_bytes(width, "big"))
    return h.digest()


def _statement(
    public_key: ThresholdPublicKey,
    index: int,
    context: bytes,
    ciphertexts: Sequence[Any],
    values: Sequence[Any],
) -> bytes:
    """SHA-256 of everything the proof is about (key, holder, context, c_j, c_{j,i})."""
    w = public_key.ciphertext_bytes
    h = hashlib.sha256(_LABEL + b" statement")
    h.update(_blob(public_key.to_bytes()))
    h.update(_u32(index))
    h.update(_blob(context))
    h.update(_digest(b"ciphertexts", ciphertexts, w))
    h.update(_digest(b"partials", values, w))
    return h.digest()


def _rhos(statement: bytes, count: int) -> list[int]:
    """rho_j: 16-byte big-endian blocks of SHAKE-256(label | statement)."""
    size = RHO_BITS // 8
    stream = hashlib.shake_256(_LABEL + b" rho" + statement).digest(size * count)
    return [int.from_bytes(stream[i : i + size], "big") for i in range(0, len(stream), size)]


def _challenge(
    public_key: ThresholdPublicKey, statement: bytes, big_c: Any, big_ci: Any, a: Any, b: Any
) -> int:
    w = public_key.ciphertext_bytes
    h = hashlib.sha256(_LABEL + b" challenge")
    h.update(statement)
    for x in (big_c, big_ci, a, b):
        h.update(int(x).to_bytes(w, "big"))
    return int.from_bytes(h.digest(), "big")


def _multi_pow(bases: Sequence[Any], exps: Sequence[int], mod: Any) -> Any:
    """prod bases[j]^exps[j] mod ``mod`` for exponents of at most RHO_BITS bits
    (Pippenger's bucket method, 8-bit windows: ~ (N + 512) * 16 multiplications)."""
    window = 8
    acc = mpz(1)
    for shift in range(RHO_BITS - window, -window, -window):
        if acc != 1:
            for _ in range(window):
                acc = acc * acc % mod
        buckets: list[Any] = [None] * (1 << window)
        for base, e in zip(bases, exps, strict=True):
            digit = (e >> shift) & 0xFF
            if digit:
                cur = buckets[digit]
                buckets[digit] = base if cur is None else cur * base % mod
        running: Any = None
        total: Any = None
        for digit in range(len(buckets) - 1, 0, -1):
            bucket = buckets[digit]
            if bucket is not None:
                running = bucket if running is None else running * bucket % mod
            if running is not None:
                total = running if total is None else total * running % mod
        if total is not None:
            acc = acc * total % mod
    return acc


def _check_units(values: Sequence[Any], n: Any, nsq: Any, what: str) -> list[Any]:
    out = []
    for j, x in enumerate(values):
        if isinstance(x, bool) or not isinstance(x, int | _MPZ):
            raise InvalidArgument(f"{what} {j} must be an int, got {type(x).__name__}")
        value = mpz(x)
        if not 0 < value < nsq or gmpy2.gcd(value, n) != 1:
            raise IntegrityError(f"{what} {j} is not a unit in (0, n^2)")
        out.append(value)
    return out


def _check_context(context: bytes) -> bytes:
    if not isinstance(context, bytes):
        raise InvalidArgument(f"context must be bytes, got {type(context).__name__}")
    return context


def _nonce(share: KeyShare, statement: bytes, rng: Csprng) -> Any:
    """The proof's r, hedged: SHAKE-256 of (s_i, the statement, 32 fresh Csprng bytes).

    A Csprng replayed from a saved state (a restored holder, a reused seed) can then never
    give one r for two statements, which would reveal s_i from the two responses."""
    pk = share.public_key
    seed = hashlib.sha256(
        _LABEL
        + b" nonce"
        + int(share._s).to_bytes(pk.ciphertext_bytes, "big")
        + statement
        + rng.bytes(32)
    ).digest()
    nbytes = (pk.nonce_bits + 7) // 8
    raw = hashlib.shake_256(seed).digest(nbytes)
    return mpz.from_bytes(raw, "little") & ((1 << pk.nonce_bits) - 1)


def partial_decrypt(
    share: KeyShare, ciphertexts: Sequence[int], *, context: bytes, rng: Csprng
) -> PartialDecryption:
    """Holder i's partial decryptions of ``ciphertexts`` and one batched proof.

    ``context`` (e.g. a round's id and input digest) is bound into the proof, so a proof
    cannot be replayed for another request. Each ciphertext must be a unit in (0, n^2)
    (else :class:`IntegrityError`).
    """
    if not isinstance(share, KeyShare):
        raise InvalidArgument("share must be a KeyShare")
    if not isinstance(rng, Csprng):
        raise InvalidArgument("rng must be a secfl.hazmat.rng.Csprng")
    context = _check_context(context)
    pk = share.public_key
    n, nsq = pk._n, pk._nsq
    cs = _check_units(ciphertexts, n, nsq, "ciphertext")
    if not cs:
        raise InvalidArgument("nothing to decrypt: ciphertexts is empty")
    exp = share._exp  # 2 Delta s_i
    values = [gmpy2.powmod(c, exp, nsq) for c in cs]
    statement = _statement(pk, share.index, context, cs, values)
    u = _multi_pow(cs, _rhos(statement, len(cs)), nsq)
    big_c = gmpy2.powmod(u, 4, nsq)
    x = exp // 2  # Delta s_i
    big_ci = gmpy2.powmod(big_c, x, nsq)  # = (prod c_{j,i}^rho_j)^2 for honest values
    r = _nonce(share, statement, rng)
    a = gmpy2.powmod(big_c, r, nsq)
    b = gmpy2.powmod(pk._v, r, nsq)
    e = _challenge(pk, statement, big_c, big_ci, a, b)
    z = r + e * x
    return PartialDecryption(share.index, tuple(int(y) for y in values), e, int(z))


def verify_partial(
    public_key: ThresholdPublicKey,
    ciphertexts: Sequence[int],
    partial: PartialDecryption,
    *,
    context: bytes,
) -> None:
    """Return ``None`` if ``partial`` is holder ``partial.index``'s correct partial
    decryption of ``ciphertexts`` under ``context``; else raise :class:`IntegrityError`."""
    if not isinstance(public_key, ThresholdPublicKey):
        raise InvalidArgument("public_key must be a ThresholdPublicKey")
    if not isinstance(partial, PartialDecryption):
        raise InvalidArgument("partial must be a PartialDecryption")
    context = _check_context(context)
    pk = public_key
    n, nsq = pk._n, pk._nsq
    cs = _check_units(ciphertexts, n, nsq, "ciphertext")
    i = partial.index
    if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= pk.holders:
        raise IntegrityError(f"partial decryption names holder {i!r}, not one of 1..m")
    if len(partial.values) != len(cs):
        raise IntegrityError(
            f"holder {i} sent {len(partial.values)} partial decryptions for {len(cs)} ciphertexts"
        )
    values = _check_units(partial.values, n, nsq, f"holder {i}'s partial decryption")
    e, z = partial.challenge, partial.response
    if not (isinstance(e, int) and 0 <= e < 1 << CHALLENGE_BITS):
        raise IntegrityError(f"holder {i}'s proof has a malformed challenge")
    if not (isinstance(z, int) and 0 <= z < 1 << (pk.nonce_bits + 1)):
        raise IntegrityError(f"holder {i}'s proof has a malformed response")
    statement = _statement(pk, i, context, cs, values)
    rhos = _rhos(statement, len(cs))
    big_c = gmpy2.powmod(_multi_pow(cs, rhos, nsq), 4, nsq)
    big_ci = gmpy2.powmod(_multi_pow(values, rhos, nsq), 2, nsq)
    vi = pk._vks[i - 1]
    a = gmpy2.powmod(big_c, z, nsq) * gmpy2.powmod(gmpy2.invert(big_ci, nsq), e, nsq) % nsq
    b = gmpy2.powmod(pk._v, z, nsq) * gmpy2.powmod(gmpy2.invert(vi, nsq), e, nsq) % nsq
    if _challenge(pk, statement, big_c, big_ci, a, b) != e:
        raise IntegrityError(f"holder {i}'s proof of correct partial decryption does not verify")


# --------------------------------------------------------------------------------------
# Combination


@dataclass(frozen=True)
class ThresholdDecryption:
    """The plaintexts, the holders whose partials were combined, and those refused."""

    plaintexts: tuple[int, ...]
    used: tuple[int, ...]
    rejected: Mapping[int, str]


def _lagrange_delta(indices: Sequence[int], delta: int) -> list[int]:
    """mu_i = Delta * prod_{i' != i} i' / (i' - i), integers."""
    out = []
    for i in indices:
        num, den = delta, 1
        for k in indices:
            if k != i:
                num *= k
                den *= k - i
        if num % den:  # pragma: no cover - Delta = m! makes this exact
            raise AssertionError("Lagrange coefficient is not an integer")
        out.append(num // den)
    return out


def screen_partials(
    public_key: ThresholdPublicKey,
    ciphertexts: Sequence[int],
    partials: Sequence[PartialDecryption],
    *,
    context: bytes,
) -> tuple[tuple[PartialDecryption, ...], dict[int, str]]:
    """Verify every partial: the valid ones (one per holder) and, by holder index, why
    each other was refused (a failed proof, or two answers from one holder)."""
    if not isinstance(public_key, ThresholdPublicKey):
        raise InvalidArgument("public_key must be a ThresholdPublicKey")
    valid: dict[int, PartialDecryption] = {}
    rejected: dict[int, str] = {}
    for part in partials:
        if not isinstance(part, PartialDecryption):
            raise InvalidArgument("partials must be PartialDecryption objects")
        if part.index in valid or part.index in rejected:
            rejected[part.index] = "sent more than one partial decryption"
            valid.pop(part.index, None)
            continue
        try:
            verify_partial(public_key, ciphertexts, part, context=context)
        except IntegrityError as exc:
            rejected[part.index] = str(exc)
            continue
        valid[part.index] = part
    return tuple(valid[i] for i in sorted(valid)), rejected


def combine(
    public_key: ThresholdPublicKey,
    ciphertexts: Sequence[int],
    partials: Sequence[PartialDecryption],
    *,
    context: bytes,
) -> ThresholdDecryption:
    """Verify every partial, drop (and name) the holders whose proof fails, and combine
    the t lowest valid indices into the plaintexts.

    Raises :class:`InsufficientSurvivors` when fewer than t distinct holders sent a valid
    partial decryption (its message names the refused holders).
    """
    valid, rejected = screen_partials(public_key, ciphertexts, partials, context=context)
    return combine_verified(public_key, ciphertexts, valid, rejected=rejected)


def combine_verified(
    public_key: ThresholdPublicKey,
    ciphertexts: Sequence[int],
    partials: Sequence[PartialDecryption],
    *,
    rejected: Mapping[int, str] | None = None,
) -> ThresholdDecryption:
    """Combine partials that :func:`screen_partials` accepted (distinct holders, proofs
    verified); ``rejected`` is carried into the result and named in the error raised
    (:class:`InsufficientSurvivors`) when fewer than t remain."""
    pk = public_key
    if not isinstance(pk, ThresholdPublicKey):
        raise InvalidArgument("public_key must be a ThresholdPublicKey")
    refused = dict(rejected or {})
    valid = {p.index: p for p in partials}
    if len(valid) != len(partials):
        raise InvalidArgument("partials must come from distinct holders")
    if len(valid) < pk.threshold:
        named = f"; refused holders {sorted(refused)}" if refused else ""
        raise InsufficientSurvivors(
            f"{plural(len(valid), 'valid partial decryption')}, the key needs {pk.threshold}{named}"
        )
    used = sorted(valid)[: pk.threshold]
    mus = _lagrange_delta(used, pk.delta)
    n, nsq = pk._n, pk._nsq
    inv = gmpy2.invert(4 * mpz(pk.delta) ** 2 % n, n)
    exps = [2 * mu for mu in mus]
    columns = [valid[i].values for i in used]
    if any(len(col) != len(ciphertexts) for col in columns):
        raise InvalidArgument("every partial must hold one value per ciphertext")
    plaintexts = []
    for j in range(len(ciphertexts)):
        acc = mpz(1)
        for col, ex in zip(columns, exps, strict=True):
            base = mpz(col[j])
            if ex < 0:
                base, ex = gmpy2.invert(base, nsq), -ex
            acc = acc * gmpy2.powmod(base, ex, nsq) % nsq
        if acc % n != 1:  # pragma: no cover - verified partials always give 1 mod n
            raise IntegrityError("combined partial decryptions are not 1 mod n")
        plaintexts.append(int((acc - 1) // n * inv % n))
    return ThresholdDecryption(tuple(plaintexts), tuple(used), refused)
