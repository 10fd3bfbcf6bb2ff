"""A revealed X25519 output with its Chaum-Pedersen proof (secfl.hazmat.dleq)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from secfl.errors import IntegrityError
from secfl.hazmat import _curve25519 as ed
from secfl.hazmat.dleq import PROOF_BYTES, REVEALED_BYTES, prove_exchange, verify_exchange
from secfl.hazmat.kex import KexPrivateKey, KexPublicKey
from secfl.hazmat.rng import Csprng

CTX = b"round 7, client 3 about client 5"


def _pair(tag: int) -> tuple[KexPrivateKey, KexPrivateKey]:
    rng = Csprng(seed=bytes([tag]) * 32)
    return KexPrivateKey.generate(rng=rng), KexPrivateKey.generate(rng=rng)


def _x25519(a: KexPrivateKey, b: KexPrivateKey) -> bytes:
    peer = X25519PrivateKey.from_private_bytes(b.private_bytes()).public_key()
    return X25519PrivateKey.from_private_bytes(a.private_bytes()).exchange(peer)


@settings(max_examples=12, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_the_verified_output_is_what_x25519_computes(sa: bytes, sb: bytes) -> None:
    a, b = KexPrivateKey.from_bytes(sa), KexPrivateKey.from_bytes(sb)
    revealed, proof = prove_exchange(a, b.public_key(), context=CTX)
    assert (len(revealed), len(proof)) == (REVEALED_BYTES, PROOF_BYTES)
    got = verify_exchange(a.public_key(), b.public_key(), revealed, proof, context=CTX)
    assert got == _x25519(a, b) == _x25519(b, a)


def test_proving_is_deterministic() -> None:
    a, b = _pair(1)
    assert prove_exchange(a, b.public_key(), context=CTX) == prove_exchange(
        a, b.public_key(), context=CTX
    )
    assert prove_exchange(a, b.public_key(), context=CTX) != prove_exchange(
        a, b.public_key(), context=CTX + b"!"
    )


def test_a_proof_binds_its_context_prover_and_peer() -> None:
    a, b = _pair(2)
    c, _ = _pair(3)
    revealed, proof = prove_exchange(a, b.public_key(), context=CTX)
    wrong = [
        (a.public_key(), b.public_key(), CTX + b"?"),  # another round or pair
        (b.public_key(), a.public_key(), CTX),  # the roles swapped
        (c.public_key(), b.public_key(), CTX),  # another prover
        (a.public_key(), c.public_key(), CTX),  # another peer
    ]
    for prover, peer, context in wrong:
        with pytest.raises(IntegrityError):
            verify_exchange(prover, peer, revealed, proof, context=context)


def test_a_wrong_output_is_refused_even_with_its_own_consistent_looking_proof() -> None:
    """The prover knows its secret a: it still cannot prove X25519(a', B) for a' != a, nor
    any point but a·B's (here: the output with a different secret, the negation, a
    shifted point, the output for another peer)."""
    a, b = _pair(4)
    c, _ = _pair(5)
    revealed, proof = prove_exchange(a, b.public_key(), context=CTX)
    k = ed.decode(revealed)
    other, _ = prove_exchange(c, b.public_key(), context=CTX)
    for fake in (
        other,
        ed.encode(ed.negate(k)),
        ed.encode(ed.add(k, ed.BASE)),
        prove_exchange(a, c.public_key(), context=CTX)[0],
    ):
        with pytest.raises(IntegrityError):
            verify_exchange(a.public_key(), b.public_key(), fake, proof, context=CTX)


def test_tampered_and_malformed_proofs_are_refused() -> None:
    a, b = _pair(6)
    revealed, proof = prove_exchange(a, b.public_key(), context=CTX)
    pa, pb = a.public_key(), b.public_key()
    c = int.from_bytes(proof[:32], "little")
    z = int.from_bytes(proof[32:], "little")
    bad_proofs = [
        proof[:-1],  # short
        bytes(64),
        (c + ed.L).to_bytes(32, "little") + proof[32:],  # c not reduced: same value mod L
        proof[:32] + (z + ed.L).to_bytes(32, "little"),  # z not reduced
        proof[:32] + ((z + 1) % ed.L).to_bytes(32, "little"),
    ]
    for bad in bad_proofs:
        with pytest.raises(IntegrityError):
            verify_exchange(pa, pb, revealed, bad, context=CTX)
    for flip in range(0, 256, 17):  # every bit region of the proof
        bad = bytearray(proof)
        bad[flip // 8 % PROOF_BYTES] ^= 1 << (flip % 8)
        with pytest.raises(IntegrityError):
            verify_exchange(pa, pb, revealed, bytes(bad), context=CTX)


def test_revealed_points_outside_the_prime_order_subgroup_are_refused() -> None:
    a, b = _pair(7)
    revealed, proof = prove_exchange(a, b.public_key(), context=CTX)
    order2 = ed.Point(0, ed.P - 1, 1, 0)
    k = ed.decode(revealed)
    y = int.from_bytes(revealed, "little") & ((1 << 255) - 1)
    for bad in (
        ed.encode(ed.add(k, order2)),  # a torsion component
        ed.encode(ed.IDENTITY),
        (y + ed.P).to_bytes(32, "little") if y + ed.P < 2**255 else bytes(32),  # y >= p
        revealed[:31],
    ):
        with pytest.raises(IntegrityError):
            verify_exchange(a.public_key(), b.public_key(), bad, proof, context=CTX)


def test_a_prover_key_with_a_torsion_component_is_refused() -> None:
    """A key A + T (T of order 2) is on the curve and not of small order, so X25519 and
    the key parser take it; its discrete log to 8G does not exist, so no proof about it
    may verify (grinding the challenge mod 8 would otherwise forge one)."""
    a, b = _pair(8)
    own = ed.from_montgomery(int.from_bytes(a.public_key().to_bytes(), "little"))
    twisted = ed.add(own, ed.Point(0, ed.P - 1, 1, 0))
    key = KexPublicKey.from_bytes(ed.to_montgomery(twisted).to_bytes(32, "little"))
    revealed, proof = prove_exchange(a, b.public_key(), context=CTX)
    with pytest.raises(IntegrityError, match="prime-order subgroup"):
        verify_exchange(key, b.public_key(), revealed, proof, context=CTX)


def test_curve_arithmetic_matches_rfc8032_base_point() -> None:
    x, y = (
        15112221349535400772501151409588531511454012693041857206046113283949847762202,
        46316835694926478169428394003475163141307993866256225615783033603165251855960,
    )
    assert ed.equal(ed.BASE, ed.Point(x, y, 1, x * y % ed.P))
    assert ed.equal(ed.multiply(ed.L, ed.BASE), ed.IDENTITY)
    assert ed.to_montgomery(ed.BASE) == 9
    assert ed.equal(ed.decode(ed.encode(ed.multiply(12345, ed.BASE))), ed.multiply(12345, ed.BASE))
