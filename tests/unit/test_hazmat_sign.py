"""Ed25519 identities."""

from __future__ import annotations

import copy
import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SIGNATURE_BYTES, SigningKey, VerifyKey

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


def _rng(tag: int = 0) -> Csprng:
    return Csprng(seed=bytes([tag]) * 32)


def test_sign_verify_round_trip() -> None:
    sk = SigningKey.generate(rng=_rng())
    sig = sk.sign(b"survivors: 1,2,3")
    assert len(sig) == SIGNATURE_BYTES == 64
    vk = VerifyKey.from_bytes(sk.verify_key().to_bytes())
    vk.verify(sig, b"survivors: 1,2,3")  # returns without raising


def test_rfc8032_test_1() -> None:
    """RFC 8032 section 7.1, TEST 1 (empty message)."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    sk = SigningKey.from_bytes(seed)
    assert sk.verify_key().to_bytes() == pub
    assert sk.sign(b"") == sig
    VerifyKey.from_bytes(pub).verify(sig, b"")
    assert sk.private_bytes() == seed


def test_wrong_message_key_or_tampered_signature_raise() -> None:
    sk = SigningKey.generate(rng=_rng())
    vk = sk.verify_key()
    sig = sk.sign(b"message")
    with pytest.raises(IntegrityError):
        vk.verify(sig, b"messagE")
    with pytest.raises(IntegrityError):
        SigningKey.generate(rng=_rng(1)).verify_key().verify(sig, b"message")
    for i in (0, 31, 32, 63):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            vk.verify(bytes(bad), b"message")


@pytest.mark.parametrize("size", [0, 63, 65])
def test_malformed_signature_length_is_integrity_error(size: int) -> None:
    vk = SigningKey.generate(rng=_rng()).verify_key()
    with pytest.raises(IntegrityError, match="64 bytes"):
        vk.verify(bytes(size), b"m")


def _edwards_add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def _x_from_y(y: int) -> int:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if x * x % P != x2:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert x * x % P == x2
    return x


def test_blocklisted_order_8_points_really_have_order_8() -> None:
    """Independent check of the constant: 8 * P == identity and 4 * P != identity."""
    for y in (Y8, P - Y8):
        pt = (_x_from_y(y), y)
        acc = pt
        for _ in range(2):
            acc = _edwards_add(acc, acc)
        assert acc != (0, 1)
        assert _edwards_add(acc, acc) == (0, 1)


def _small_order_encodings() -> list[bytes]:
    out = []
    for y in (0, 1, P - 1, Y8, P - Y8):
        for sign in (0, 1):
            out.append((y | (sign << 255)).to_bytes(32, "little"))
    return out


@pytest.mark.parametrize("raw", _small_order_encodings())
def test_small_order_verify_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(IntegrityError):
        VerifyKey.from_bytes(raw)


def test_identity_key_forgery_is_blocked() -> None:
    """OpenSSL accepts (R=identity, S=0) under the identity key for any message."""
    identity = (1).to_bytes(32, "little")
    forged = identity + bytes(32)
    Ed25519PublicKey.from_public_bytes(identity).verify(forged, b"any message at all")
    with pytest.raises(IntegrityError, match="small order"):
        VerifyKey.from_bytes(identity)


def test_non_canonical_and_off_curve_keys_are_refused() -> None:
    with pytest.raises(IntegrityError, match="canonical"):
        VerifyKey.from_bytes((P + 2).to_bytes(32, "little"))
    # y = 2: (y^2 - 1) / (d y^2 + 1) is not a square mod p, so no point has y = 2.
    x2 = 3 * pow(4 * D + 1, P - 2, P) % P
    assert pow(x2, (P - 1) // 2, P) != 1
    with pytest.raises(IntegrityError, match="not a point"):
        VerifyKey.from_bytes((2).to_bytes(32, "little"))


@pytest.mark.parametrize("k", range(19))
@pytest.mark.parametrize("sign_bit", [0, 1])
def test_every_encoding_with_y_at_or_above_p_is_refused(k: int, sign_bit: int) -> None:
    # y = p + k (k < 19) spells the point of y = k a second time; y = p itself is 0 again
    with pytest.raises(IntegrityError, match="canonical"):
        VerifyKey.from_bytes((P + k | sign_bit << 255).to_bytes(32, "little"))


def test_honest_keys_always_parse() -> None:
    rng = _rng(5)
    for _ in range(50):
        vk = SigningKey.generate(rng=rng).verify_key()
        assert VerifyKey.from_bytes(vk.to_bytes()) == vk


def test_verify_key_eq_hash_repr() -> None:
    a = SigningKey.generate(rng=_rng()).verify_key()
    b = VerifyKey.from_bytes(a.to_bytes())
    c = SigningKey.generate(rng=_rng(1)).verify_key()
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a.to_bytes().hex()[:16] in repr(a)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_wrong_key_lengths_are_invalid_arguments(size: int) -> None:
    with pytest.raises(InvalidArgument):
        VerifyKey.from_bytes(bytes(size))
    with pytest.raises(InvalidArgument):
        SigningKey.from_bytes(bytes(size))


def test_non_bytes_arguments_are_invalid() -> None:
    sk = SigningKey.generate(rng=_rng())
    with pytest.raises(InvalidArgument):
        sk.sign("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        sk.verify_key().verify(None, b"")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        SigningKey(bytes(32))  # type: ignore[arg-type]


def test_generate_is_deterministic_under_a_seeded_rng() -> None:
    assert (
        SigningKey.generate(rng=_rng(9)).private_bytes()
        == SigningKey.generate(rng=_rng(9)).private_bytes()
    )
    assert (
        SigningKey.generate(rng=_rng(9)).private_bytes()
        != SigningKey.generate(rng=_rng(10)).private_bytes()
    )


def test_signing_key_is_not_printed_or_pickled() -> None:
    sk = SigningKey.generate(rng=_rng())
    assert sk.private_bytes().hex()[:8] not in repr(sk)
    with pytest.raises(TypeError):
        pickle.dumps(sk)
    with pytest.raises(TypeError):
        copy.copy(sk)
    with pytest.raises(AttributeError):
        sk.extra = 1  # type: ignore[attr-defined]


def test_on_curve_check_agrees_with_eulers_criterion() -> None:
    """Random y: accepted iff (y^2 - 1) / (d y^2 + 1) is a square (independent pow check)."""
    rng = _rng(11)
    accepted = rejected = 0
    for _ in range(200):
        y = int.from_bytes(rng.bytes(32), "little") % P
        x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
        on_curve = pow(x2, (P - 1) // 2, P) == 1
        raw = y.to_bytes(32, "little")
        if on_curve:
            VerifyKey.from_bytes(raw)
            accepted += 1
        else:
            with pytest.raises(IntegrityError, match="not a point"):
                VerifyKey.from_bytes(raw)
            rejected += 1
    assert accepted > 50
    assert rejected > 50
