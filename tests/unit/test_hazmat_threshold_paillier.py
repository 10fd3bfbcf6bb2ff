"""Threshold Paillier (hazmat): safe primes, dealing, partial decryption, batched proofs,
combination, identification of a lying holder, phe compatibility, secrets."""

from __future__ import annotations

import itertools
import math
import pickle

import gmpy2
import numpy as np
import pytest
import sympy

from secfl.errors import InsufficientSurvivors, IntegrityError, InvalidArgument
from secfl.hazmat import paillier as pa
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng


def seeded(tag: int) -> Csprng:
    return Csprng(seed=tag.to_bytes(32, "little"))


@pytest.fixture(scope="module")
def primes() -> tuple[int, int]:
    rng = seeded(1)
    return tp.generate_safe_prime(512, rng=rng), tp.generate_safe_prime(512, rng=rng)


@pytest.fixture(scope="module")
def key(primes) -> tuple[tp.ThresholdPublicKey, tuple[tp.KeyShare, ...]]:
    p, q = primes
    return tp.deal_key(p, q, holders=5, threshold=3, rng=seeded(2))


def encrypt(pk: tp.ThresholdPublicKey, values: list[int]) -> list[int]:
    phe_key = pk.to_phe()
    return [phe_key.raw_encrypt(m) for m in values]


def partials(shares, cts, context=b"ctx", seed=3):
    rng = seeded(seed)
    return [tp.partial_decrypt(s, cts, context=context, rng=rng) for s in shares]


# --------------------------------------------------------------------------------------
# Safe primes and dealing


@pytest.mark.parametrize("bits", [64, 128, 512])
def test_safe_primes_are_safe_and_exactly_sized(bits) -> None:
    rng = seeded(bits)
    for _ in range(3):
        p = tp.generate_safe_prime(bits, rng=rng)
        assert p.bit_length() == bits
        assert p >> (bits - 2) == 0b11
        assert sympy.isprime(p)
        assert sympy.isprime((p - 1) // 2)


def test_safe_prime_generation_is_reproducible_from_the_csprng() -> None:
    assert tp.generate_safe_prime(256, rng=seeded(9)) == tp.generate_safe_prime(256, rng=seeded(9))
    assert tp.generate_safe_prime(256, rng=seeded(9)) != tp.generate_safe_prime(256, rng=seeded(8))


def test_dealt_key_satisfies_its_definition(primes, key) -> None:
    p, q = primes
    pk, shares = key
    n, m = p * q, (p - 1) // 2 * ((q - 1) // 2)
    nsq = n * n
    assert pk.n == n
    assert pk.to_phe().g == n + 1
    assert (pk.threshold, pk.holders, pk.delta) == (3, 5, 120)
    # v generates the squares of Z*_{n^2} (order n m): no maximal-subgroup power is 1
    v = pk.verification_base
    assert all(pow(v, n * m // f, nsq) != 1 for f in (p, q, (p - 1) // 2, (q - 1) // 2))
    assert pow(v, n * m, nsq) == 1
    for s in shares:
        assert pk.verification_keys[s.index - 1] == pow(v, pk.delta * s.private_number(), nsq)
    # every 3 shares interpolate to d with d = 0 mod m, d = 1 mod n (over Z_{nm})
    for subset in itertools.combinations(shares, 3):
        d = 0
        for s in subset:
            lam_num, lam_den = 1, 1
            for o in subset:
                if o is not s:
                    lam_num *= o.index
                    lam_den *= o.index - s.index
            d += s.private_number() * lam_num * pow(lam_den, -1, n * m)
        d %= n * m
        assert d % m == 0
        assert d % n == 1


def test_deal_refuses_bad_primes_and_parameters(primes) -> None:
    p, q = primes
    rng = seeded(4)
    with pytest.raises(InvalidArgument, match="safe primes"):
        tp.deal_key(p, p, holders=3, threshold=2, rng=rng)
    with pytest.raises(InvalidArgument, match="safe primes"):
        tp.deal_key(p, int(gmpy2.next_prime(q)), holders=3, threshold=2, rng=rng)
    small = tp.generate_safe_prime(256, rng=rng)
    with pytest.raises(InvalidArgument, match="1024"):
        tp.deal_key(small, tp.generate_safe_prime(256, rng=rng), holders=3, threshold=2, rng=rng)
    for holders, threshold in [(1, 1), (3, 0), (3, 4), (tp.MAX_HOLDERS + 1, 2)]:
        with pytest.raises(InvalidArgument):
            tp.deal_key(p, q, holders=holders, threshold=threshold, rng=rng)
    with pytest.raises(InvalidArgument):
        tp.generate_key(bits=1024, holders=3, threshold=2)
    with pytest.raises(InvalidArgument):
        tp.generate_key(bits=True, holders=3, threshold=2)  # type: ignore[arg-type]


def test_dealing_is_reproducible_from_the_csprng(primes, key) -> None:
    p, q = primes
    again, shares = tp.deal_key(p, q, holders=5, threshold=3, rng=seeded(2))
    assert again == key[0]
    assert again.fingerprint() == key[0].fingerprint()
    assert [s.private_number() for s in shares] == [s.private_number() for s in key[1]]


def test_a_share_must_match_its_verification_key(key) -> None:
    pk, shares = key
    with pytest.raises(InvalidArgument, match="v_2"):
        tp.KeyShare(pk, 2, shares[0].private_number())
    with pytest.raises(InvalidArgument):
        tp.KeyShare(pk, 6, shares[0].private_number())


def test_generate_key_2048_decrypts() -> None:
    pk, shares = tp.generate_key(bits=2048, holders=3, threshold=2, rng=seeded(5))
    assert pk.bits == 2048
    cts = encrypt(pk, [42])
    assert tp.combine(pk, cts, partials(shares[1:], cts), context=b"ctx").plaintexts == (42,)


# --------------------------------------------------------------------------------------
# Decryption


def test_every_threshold_subset_decrypts(key) -> None:
    pk, shares = key
    values = [0, 1, 12345, pk.n - 1, pk.n // 2]
    cts = encrypt(pk, values)
    parts = partials(shares, cts)
    for subset in itertools.combinations(parts, 3):
        res = tp.combine(pk, cts, list(subset), context=b"ctx")
        assert res.plaintexts == tuple(values)
        assert res.used == tuple(p.index for p in subset)
        assert not res.rejected
    # more than t: the t lowest indices are combined
    assert tp.combine(pk, cts, parts[::-1], context=b"ctx").used == (1, 2, 3)


def test_fewer_than_threshold_raise(key) -> None:
    pk, shares = key
    cts = encrypt(pk, [5])
    with pytest.raises(InsufficientSurvivors, match="needs 3"):
        tp.combine(pk, cts, partials(shares[:2], cts), context=b"ctx")


def test_phe_ciphertexts_and_packed_vectors_decrypt(key) -> None:
    pk, shares = key
    phe_key = pk.to_phe()
    c = phe_key.encrypt(271828).ciphertext(be_secure=False)
    assert tp.combine(pk, [c], partials(shares[:3], [c]), context=b"ctx").plaintexts == (271828,)
    layout = pa.PackingLayout.plan(modulus_bits=pk.bits, value_bits=12, n_clients=4)
    rng = seeded(6)
    xs = [rng.integers_below(4096, 300).astype(np.int64) - 2048 for _ in range(3)]
    total = pa.sum_vectors([pa.encrypt_vector(phe_key, x, layout, randomness=rng) for x in xs])
    cts = [int(c) for c in total.ciphertexts]
    res = tp.combine(pk, cts, partials(shares[2:], cts, context=b"sum"), context=b"sum")
    got = pa.decode_plaintexts(res.plaintexts, layout, count=300, n_summed=3)
    assert np.array_equal(got, xs[0] + xs[1] + xs[2])


# --------------------------------------------------------------------------------------
# Proofs: a lying holder is identified and excluded


def forged(part: tp.PartialDecryption, **changes) -> tp.PartialDecryption:
    fields = {
        "index": part.index,
        "values": part.values,
        "challenge": part.challenge,
        "response": part.response,
    }
    fields.update(changes)
    return tp.PartialDecryption(**fields)


def test_a_lying_holder_is_identified_and_the_rest_decrypt(key) -> None:
    pk, shares = key
    nsq = pk.n**2
    values = list(range(40))
    cts = encrypt(pk, values)
    parts = partials(shares, cts)
    # one wrong value among 40 (multiplied by an encryption of 1's partial: a shifted plaintext)
    lie = list(parts[1].values)
    lie[17] = lie[17] * pow(pk.n + 1, 2 * pk.delta, nsq) % nsq
    liar = forged(parts[1], values=tuple(lie))
    with pytest.raises(IntegrityError, match="holder 2"):
        tp.verify_partial(pk, cts, liar, context=b"ctx")
    res = tp.combine(pk, cts, [parts[0], liar, parts[2], parts[4]], context=b"ctx")
    assert res.plaintexts == tuple(values)
    assert res.used == (1, 3, 5)
    assert list(res.rejected) == [2]
    with pytest.raises(InsufficientSurvivors, match=r"refused holders \[2\]"):
        tp.combine(pk, cts, [parts[0], liar, parts[2]], context=b"ctx")


def test_a_holder_using_another_exponent_fails_its_proof(key) -> None:
    pk, shares = key
    cts = encrypt(pk, [3, 4])
    cheat = tp.KeyShare(pk, 1, shares[0].private_number())
    cheat._exp = cheat._exp + 2 * pk.delta  # s_1 + 1 everywhere, a consistent lie
    bad = tp.partial_decrypt(cheat, cts, context=b"ctx", rng=seeded(7))
    with pytest.raises(IntegrityError, match="holder 1"):
        tp.verify_partial(pk, cts, bad, context=b"ctx")


def test_proofs_bind_context_ciphertexts_order_index_and_response(key) -> None:
    pk, shares = key
    cts = encrypt(pk, [10, 20, 30])
    part = partials(shares[:1], cts)[0]
    tp.verify_partial(pk, cts, part, context=b"ctx")
    cases = [
        (cts, part, b"other context"),
        (cts[::-1], part, b"ctx"),
        (cts, forged(part, values=part.values[::-1]), b"ctx"),
        (cts, forged(part, index=2), b"ctx"),
        (cts, forged(part, response=part.response + 1), b"ctx"),
        (cts, forged(part, challenge=part.challenge ^ 1), b"ctx"),
    ]
    for c, p, ctx in cases:
        with pytest.raises(IntegrityError):
            tp.verify_partial(pk, c, p, context=ctx)


def test_malformed_partials_raise_integrity_error(key) -> None:
    pk, shares = key
    nsq = pk.n**2
    cts = encrypt(pk, [1, 2])
    part = partials(shares[:1], cts)[0]
    for values in [(0, part.values[1]), (nsq, part.values[1]), (pk.n, part.values[1])]:
        with pytest.raises(IntegrityError, match="not a unit"):
            tp.verify_partial(pk, cts, forged(part, values=values), context=b"ctx")
    with pytest.raises(IntegrityError, match="1 partial decryptions for 2"):
        tp.verify_partial(pk, cts, forged(part, values=part.values[:1]), context=b"ctx")
    with pytest.raises(IntegrityError, match="holder 9"):
        tp.verify_partial(pk, cts, forged(part, index=9), context=b"ctx")
    with pytest.raises(IntegrityError, match="response"):
        tp.verify_partial(pk, cts, forged(part, response=1 << (pk.nonce_bits + 1)), context=b"c")
    with pytest.raises(IntegrityError, match="not a unit"):
        tp.partial_decrypt(shares[0], [pk.n], context=b"ctx", rng=seeded(1))
    res = tp.combine(pk, cts, [part, part, *partials(shares[1:4], cts)], context=b"ctx")
    assert 1 in res.rejected
    assert res.used == (2, 3, 4)


def test_an_order_two_change_is_refused_too(key) -> None:
    """The relation proven is about c_{j,i}^2, which -c_{j,i} also satisfies; the hash
    binds the exact values, so the change is refused anyway (and combination, which
    squares, would cancel it)."""
    pk, shares = key
    nsq = pk.n**2
    cts = encrypt(pk, [99, 100])
    parts = partials(shares[:3], cts)
    neg = forged(parts[0], values=(nsq - parts[0].values[0], parts[0].values[1]))
    with pytest.raises(IntegrityError, match="holder 1"):
        tp.verify_partial(pk, cts, neg, context=b"ctx")
    squared_away = tp._lagrange_delta([1, 2, 3], pk.delta)
    assert all(mu % 1 == 0 for mu in squared_away)  # exponents 2 mu_i are even


def test_partials_round_trip_through_bytes(key) -> None:
    pk, shares = key
    cts = encrypt(pk, [7, 8, 9])
    part = partials(shares[3:4], cts)[0]
    data = part.to_bytes(pk)
    assert len(data) == 4 + 3 * pk.ciphertext_bytes + 32 + pk.response_bytes
    assert tp.PartialDecryption.from_bytes(data, pk, count=3) == part
    for bad in (data[:-1], data + b"\0"):
        with pytest.raises(IntegrityError):
            tp.PartialDecryption.from_bytes(bad, pk, count=3)
    with pytest.raises(IntegrityError, match="holder 0"):
        tp.PartialDecryption.from_bytes(b"\0\0\0\0" + data[4:], pk, count=3)


def test_seeded_proofs_are_reproducible_and_fresh_ones_differ(key) -> None:
    pk, shares = key
    cts = encrypt(pk, [1])
    assert partials(shares[:1], cts, seed=11) == partials(shares[:1], cts, seed=11)
    a, b = partials(shares[:1], cts, seed=11)[0], partials(shares[:1], cts, seed=12)[0]
    assert a.values == b.values
    assert a.response != b.response


def test_multi_pow_matches_pow(key) -> None:
    pk, _ = key
    nsq = pk.n**2
    rng = seeded(13)
    bases = [int.from_bytes(rng.bytes(64), "big") % nsq for _ in range(37)]
    exps = [int.from_bytes(rng.bytes(16), "big") for _ in range(37)] + [0, 1, (1 << 128) - 1]
    bases += [3, 5, 7]
    expected = math.prod(pow(b, e, nsq) for b, e in zip(bases, exps, strict=True)) % nsq
    assert tp._multi_pow([gmpy2.mpz(b) for b in bases], exps, gmpy2.mpz(nsq)) == expected


# --------------------------------------------------------------------------------------
# Secrets


def test_shares_refuse_pickle_and_keep_the_secret_out_of_repr(key) -> None:
    pk, shares = key
    s = shares[0]
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert str(s.private_number()) not in repr(s)
    assert hex(s.private_number())[2:] not in repr(s)
    assert "fingerprint" in repr(pk)


def test_a_replayed_csprng_never_reuses_a_nonce_across_statements(key) -> None:
    """Two proofs with one r would give (z - z') = (e - e') Delta s_i: the share."""
    pk, shares = key
    cts = encrypt(pk, [1])
    a = tp.partial_decrypt(shares[0], cts, context=b"one", rng=seeded(21))
    b = tp.partial_decrypt(shares[0], cts, context=b"two", rng=seeded(21))
    leak = (a.challenge - b.challenge) * pk.delta * shares[0].private_number()
    assert a.response - b.response != leak


def test_public_keys_with_a_trivial_or_non_square_base_are_refused(key) -> None:
    """With v = 1 every v_i = v^w holds, and a proof would bind no exponent."""
    pk, _ = key
    vks = list(pk.verification_keys)
    with pytest.raises(InvalidArgument, match="differ from 1"):
        tp.ThresholdPublicKey(pk.n, threshold=3, verification_base=1, verification_keys=vks)
    with pytest.raises(InvalidArgument, match="differ from 1"):
        tp.ThresholdPublicKey(
            pk.n,
            threshold=3,
            verification_base=pk.verification_base,
            verification_keys=[1, *vks[1:]],
        )
    non_square = next(x for x in range(2, 100) if gmpy2.jacobi(x, pk.n) == -1)
    with pytest.raises(InvalidArgument, match="not a square"):
        tp.ThresholdPublicKey(
            pk.n, threshold=3, verification_base=non_square, verification_keys=vks
        )
