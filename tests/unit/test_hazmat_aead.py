"""AES-256-GCM envelopes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat.aead import NONCE_BYTES, OVERHEAD, seal, unseal
from secfl.hazmat.rng import Csprng

KEY = bytes(range(32))


def _rng(tag: int = 0) -> Csprng:
    return Csprng(seed=bytes([tag]) * 32)


def test_overhead_constant() -> None:
    assert OVERHEAD == 28


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=300), ad=st.binary(max_size=40))
def test_round_trip(plaintext: bytes, ad: bytes) -> None:
    env = seal(KEY, plaintext, associated_data=ad, rng=_rng())
    assert len(env) == len(plaintext) + OVERHEAD
    assert unseal(KEY, env, associated_data=ad) == plaintext


def test_layout_is_nonce_then_aesgcm_output() -> None:
    """Independent decryption with cryptography's AESGCM."""
    env = seal(KEY, b"hello", associated_data=b"ad", rng=_rng())
    nonce, body = env[:NONCE_BYTES], env[NONCE_BYTES:]
    assert AESGCM(KEY).decrypt(nonce, body, b"ad") == b"hello"


def test_nonces_come_from_the_rng_and_differ() -> None:
    a = seal(KEY, b"m", associated_data=b"", rng=_rng(1))
    b = seal(KEY, b"m", associated_data=b"", rng=_rng(1))
    assert a == b  # deterministic under a seeded rng
    rng = _rng(2)
    c = seal(KEY, b"m", associated_data=b"", rng=rng)
    d = seal(KEY, b"m", associated_data=b"", rng=rng)
    assert c[:NONCE_BYTES] != d[:NONCE_BYTES]


def test_every_single_bit_flip_is_detected() -> None:
    env = seal(KEY, b"secret shares", associated_data=b"ad", rng=_rng())
    for i in range(len(env)):
        for bit in (0, 7):
            bad = bytearray(env)
            bad[i] ^= 1 << bit
            with pytest.raises(IntegrityError):
                unseal(KEY, bytes(bad), associated_data=b"ad")


def test_wrong_key_ad_truncation_and_extension_are_detected() -> None:
    env = seal(KEY, b"payload", associated_data=b"from 1 to 2", rng=_rng())
    with pytest.raises(IntegrityError):
        unseal(bytes(32), env, associated_data=b"from 1 to 2")
    with pytest.raises(IntegrityError):
        unseal(KEY, env, associated_data=b"from 2 to 1")
    with pytest.raises(IntegrityError):
        unseal(KEY, env[:-1], associated_data=b"from 1 to 2")
    with pytest.raises(IntegrityError):
        unseal(KEY, env + b"\x00", associated_data=b"from 1 to 2")


@pytest.mark.parametrize("size", [0, 1, OVERHEAD - 1])
def test_short_envelopes_raise_integrity_error(size: int) -> None:
    with pytest.raises(IntegrityError, match="at least"):
        unseal(KEY, bytes(size), associated_data=b"")


def test_empty_plaintext_envelope_is_exactly_overhead() -> None:
    env = seal(KEY, b"", associated_data=b"", rng=_rng())
    assert len(env) == OVERHEAD
    assert unseal(KEY, env, associated_data=b"") == b""


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(InvalidArgument, match="32 bytes"):
        seal(bytes(size), b"", associated_data=b"", rng=_rng())
    with pytest.raises(InvalidArgument, match="32 bytes"):
        unseal(bytes(size), bytes(OVERHEAD), associated_data=b"")


def test_non_bytes_arguments_are_invalid() -> None:
    with pytest.raises(InvalidArgument):
        seal(KEY, "text", associated_data=b"", rng=_rng())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        seal(KEY, b"", associated_data=None, rng=_rng())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        unseal(KEY, None, associated_data=b"")  # type: ignore[arg-type]
