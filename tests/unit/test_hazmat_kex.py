"""X25519 + HKDF key agreement."""

from __future__ import annotations

import copy
import pickle

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secfl.errors import IntegrityError, InvalidArgument, SecflError
from secfl.hazmat.kex import HKDF_SALT, KEY_BYTES, KexPrivateKey, KexPublicKey
from secfl.hazmat.rng import Csprng

P = 2**255 - 19
SMALL_ORDER_U = [
    0,
    1,
    P - 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
]


def _rng(tag: int = 0) -> Csprng:
    return Csprng(seed=bytes([tag]) * 32)


def test_both_sides_derive_the_same_key() -> None:
    rng = _rng()
    a, b = KexPrivateKey.generate(rng=rng), KexPrivateKey.generate(rng=rng)
    assert len(a.private_bytes()) == len(a.public_key().to_bytes()) == KEY_BYTES
    ka = a.exchange(b.public_key(), info=b"round 1")
    kb = b.exchange(a.public_key(), info=b"round 1")
    assert ka == kb
    assert len(ka) == 32


def test_info_and_length_change_the_key() -> None:
    rng = _rng()
    a, b = KexPrivateKey.generate(rng=rng), KexPrivateKey.generate(rng=rng)
    k1 = a.exchange(b.public_key(), info=b"mask")
    k2 = a.exchange(b.public_key(), info=b"aead")
    assert k1 != k2
    k64 = a.exchange(b.public_key(), info=b"mask", length=64)
    assert len(k64) == 64
    assert k64[:32] == k1  # HKDF-Expand is a prefix-stable stream


def test_matches_cryptography_and_hkdf_directly() -> None:
    """Independent recomputation with cryptography's own objects."""
    rng = _rng(3)
    a = KexPrivateKey.generate(rng=rng)
    b = KexPrivateKey.generate(rng=rng)
    raw_a = X25519PrivateKey.from_private_bytes(a.private_bytes())
    raw_b_pub = X25519PublicKey.from_public_bytes(b.public_key().to_bytes())
    shared = raw_a.exchange(raw_b_pub)
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=b"x").derive(shared)
    assert a.exchange(b.public_key(), info=b"x") == expected


def test_rfc7748_public_key_vector() -> None:
    """RFC 7748 section 6.1: Alice's private and public key."""
    priv = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    pub = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    key = KexPrivateKey.from_bytes(priv)
    assert key.public_key().to_bytes() == pub
    assert key.private_bytes() == priv


def test_generate_is_deterministic_under_a_seeded_rng() -> None:
    a = KexPrivateKey.generate(rng=_rng(7)).private_bytes()
    b = KexPrivateKey.generate(rng=_rng(7)).private_bytes()
    c = KexPrivateKey.generate(rng=_rng(8)).private_bytes()
    assert a == b
    assert a != c


def test_public_key_round_trip_eq_and_hash() -> None:
    pk = KexPrivateKey.generate(rng=_rng()).public_key()
    again = KexPublicKey.from_bytes(pk.to_bytes())
    assert again == pk
    assert hash(again) == hash(pk)
    assert len({pk, again}) == 1
    other = KexPrivateKey.generate(rng=_rng(1)).public_key()
    assert other != pk
    assert pk != pk.to_bytes()


@pytest.mark.parametrize("u", SMALL_ORDER_U)
def test_small_order_public_keys_are_refused(u: int) -> None:
    raw = u.to_bytes(32, "little")
    # The blocklist is right: cryptography itself cannot derive a secret with these points.
    with pytest.raises(ValueError, match="shared key"):
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    with pytest.raises(IntegrityError, match="small order"):
        KexPublicKey.from_bytes(raw)


@pytest.mark.parametrize("u", [P, P + 1, 2**255 - 1])
def test_non_canonical_encodings_are_refused(u: int) -> None:
    with pytest.raises(IntegrityError, match="canonical"):
        KexPublicKey.from_bytes(u.to_bytes(32, "little"))


def test_high_bit_is_refused() -> None:
    pk = KexPrivateKey.generate(rng=_rng()).public_key().to_bytes()
    flipped = pk[:31] + bytes([pk[31] | 0x80])
    with pytest.raises(IntegrityError):
        KexPublicKey.from_bytes(flipped)


def test_exchange_refuses_all_zero_secret_even_if_parsing_is_bypassed() -> None:
    key = KexPrivateKey.generate(rng=_rng())
    weak = KexPublicKey(X25519PublicKey.from_public_bytes(bytes(32)))
    with pytest.raises(IntegrityError, match="all-zero"):
        key.exchange(weak, info=b"")


@pytest.mark.parametrize("size", [0, 31, 33])
def test_wrong_lengths_are_invalid_arguments(size: int) -> None:
    with pytest.raises(InvalidArgument):
        KexPublicKey.from_bytes(bytes(size))
    with pytest.raises(InvalidArgument):
        KexPrivateKey.from_bytes(bytes(size))


def test_bad_arguments() -> None:
    key = KexPrivateKey.generate(rng=_rng())
    peer = KexPrivateKey.generate(rng=_rng(1)).public_key()
    for length in (0, 255 * 32 + 1):
        with pytest.raises(InvalidArgument, match="length"):
            key.exchange(peer, info=b"", length=length)
    with pytest.raises(InvalidArgument):
        key.exchange(peer.to_bytes(), info=b"")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        key.exchange(peer, info="text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KexPublicKey.from_bytes("x" * 32)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KexPrivateKey(bytes(32))  # type: ignore[arg-type]
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(IntegrityError, SecflError)


def test_private_key_is_not_printed_or_pickled() -> None:
    key = KexPrivateKey.generate(rng=_rng())
    secret = key.private_bytes()
    assert secret.hex() not in repr(key)
    assert secret.hex()[:8] not in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)
    with pytest.raises(AttributeError):
        key.extra = 1  # type: ignore[attr-defined]


def test_points_of_the_twist_are_refused() -> None:
    """X25519 computes on the quadratic twist too; no honest key lies there, and a proof
    about the curve's group (secfl.hazmat.dleq) cannot cover one."""
    twist = [u for u in range(2, 40) if pow(u**3 + 486662 * u * u + u, (P - 1) // 2, P) != 1]
    assert twist  # u = 2 is one
    for u in twist:
        with pytest.raises(IntegrityError, match="twist"):
            KexPublicKey.from_bytes(u.to_bytes(32, "little"))
    KexPublicKey.from_bytes((9).to_bytes(32, "little"))  # the base point is on the curve


def test_a_key_plus_any_torsion_point_has_the_same_agreement_class() -> None:
    """X25519 clamps secrets to multiples of 8, so a key and the same key plus a point of
    order dividing 8 (other bytes) agree on every shared secret: their agreement classes
    are equal, and distinct honest keys' classes differ."""
    from secfl.hazmat import _curve25519 as ed

    rng = _rng(9)
    a, peer = KexPrivateKey.generate(rng=rng), KexPrivateKey.generate(rng=rng)
    point = ed.from_montgomery(int.from_bytes(a.public_key().to_bytes(), "little"))
    u = next(  # a point of order 8 L: L times it is a torsion point of order 8
        u
        for u in range(2, 200)
        if pow(u**3 + 486662 * u * u + u, (P - 1) // 2, P) == 1
        and not ed.equal(ed.multiply(4 * ed.L, ed.from_montgomery(u)), ed.IDENTITY)
    )
    t8 = ed.multiply(ed.L, ed.from_montgomery(u))
    twins = set()
    for k in range(1, 8):
        raw = ed.to_montgomery(ed.add(point, ed.multiply(k, t8))).to_bytes(32, "little")
        twin = KexPublicKey.from_bytes(raw)
        twins.add(raw)
        assert twin.agreement_class() == a.public_key().agreement_class()
        shared = X25519PrivateKey.from_private_bytes(peer.private_bytes()).exchange(
            X25519PublicKey.from_public_bytes(raw)
        )
        assert shared == X25519PrivateKey.from_private_bytes(peer.private_bytes()).exchange(
            X25519PublicKey.from_public_bytes(a.public_key().to_bytes())
        )
    assert len(twins) >= 3  # other bytes
    assert a.public_key().agreement_class() != peer.public_key().agreement_class()
