"""Vector Paillier: packing layout, sums, phe interop, randomness, CRT, wire validation."""

from __future__ import annotations

import math
import pickle

import gmpy2
import numpy as np
import phe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secfl.errors import EncodingOverflow, IntegrityError, InvalidArgument, SecflError
from secfl.hazmat import paillier as pa
from secfl.hazmat.rng import Csprng

BITS = 1024


def seeded(tag: int) -> Csprng:
    return Csprng(seed=tag.to_bytes(32, "little"))


@pytest.fixture(scope="module")
def keys() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    return phe.generate_paillier_keypair(n_length=BITS)


@pytest.fixture(scope="module")
def other_keys() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    return phe.generate_paillier_keypair(n_length=BITS)


def plan(pub: phe.PaillierPublicKey, value_bits: int, n_clients: int) -> pa.PackingLayout:
    return pa.PackingLayout.plan(
        modulus_bits=pub.n.bit_length(), value_bits=value_bits, n_clients=n_clients
    )


def encrypt_sum_decrypt(keys, layout, vectors, seed=0):
    pub, priv = keys
    rng = seeded(seed)
    cts = [pa.encrypt_vector(pub, v, layout, randomness=rng) for v in vectors]
    total = pa.sum_vectors(cts)
    assert total.n_summed == len(vectors)
    return pa.decrypt_vector(priv, total)


# --------------------------------------------------------------------------------------
# Layout


def test_plan_densest_layout_2048() -> None:
    layout = pa.PackingLayout.plan(modulus_bits=2048, value_bits=24, n_clients=10)
    assert layout.slot_bits == 28  # 24 + ceil(log2 10)
    assert layout.slots_per_ciphertext == 2047 // 28 == 73
    assert layout.offset == 1 << 23
    assert (layout.min_value, layout.max_value) == (-(1 << 23), (1 << 23) - 1)
    assert layout.headroom_bits == 4
    assert layout.ciphertexts_for(100_000) == 1370
    assert layout.ciphertexts_for(0) == 0


@pytest.mark.parametrize("value_bits", [1, 2, 8, 16, 24, 33, 40])
@pytest.mark.parametrize("n_clients", [1, 2, 3, 4, 5, 10, 16, 17, 100, 1000])
def test_slot_is_the_narrowest_that_holds_the_sum(value_bits: int, n_clients: int) -> None:
    layout = pa.PackingLayout.plan(modulus_bits=4096, value_bits=value_bits, n_clients=n_clients)
    biggest_sum = n_clients * ((1 << value_bits) - 1)
    assert biggest_sum < 1 << layout.slot_bits
    assert biggest_sum >= 1 << (layout.slot_bits - 1)
    if value_bits >= 8:
        assert layout.slot_bits == value_bits + math.ceil(math.log2(n_clients))
    assert layout.slots_per_ciphertext * layout.slot_bits <= 4095
    assert (layout.slots_per_ciphertext + 1) * layout.slot_bits > 4095


def test_plan_impossible_layouts_raise_encoding_overflow() -> None:
    with pytest.raises(EncodingOverflow, match="28-bit slot"):
        pa.PackingLayout.plan(modulus_bits=16, value_bits=24, n_clients=10)
    with pytest.raises(EncodingOverflow, match="> 64"):
        pa.PackingLayout.plan(modulus_bits=2048, value_bits=60, n_clients=100)


def test_explicit_layout_is_validated() -> None:
    good = pa.PackingLayout.plan(modulus_bits=1024, value_bits=16, n_clients=4)
    assert (
        pa.PackingLayout(
            modulus_bits=1024, value_bits=16, n_clients=4, slot_bits=18, slots_per_ciphertext=56
        )
        == good
    )
    with pytest.raises(EncodingOverflow, match="at most 56 slots"):
        pa.PackingLayout(
            modulus_bits=1024, value_bits=16, n_clients=4, slot_bits=18, slots_per_ciphertext=57
        )
    with pytest.raises(EncodingOverflow, match="needs 18 bits"):
        pa.PackingLayout(
            modulus_bits=1024, value_bits=16, n_clients=4, slot_bits=17, slots_per_ciphertext=1
        )
    wider = pa.PackingLayout(
        modulus_bits=1024, value_bits=16, n_clients=4, slot_bits=32, slots_per_ciphertext=31
    )
    assert wider.headroom_bits == 16


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modulus_bits": 1024, "value_bits": 0, "n_clients": 1},
        {"modulus_bits": 1024, "value_bits": 65, "n_clients": 1},
        {"modulus_bits": 1024, "value_bits": 8, "n_clients": 0},
        {"modulus_bits": 1024, "value_bits": True, "n_clients": 1},
        {"modulus_bits": 1024.0, "value_bits": 8, "n_clients": 1},
    ],
)
def test_plan_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as info:
        pa.PackingLayout.plan(**kwargs)
    assert isinstance(info.value, ValueError)


def test_layout_must_fit_the_key(keys) -> None:
    pub, _ = keys
    layout = pa.PackingLayout.plan(modulus_bits=2048, value_bits=24, n_clients=10)
    with pytest.raises(EncodingOverflow, match=r"modulus_bits=public_key\.n\.bit_length"):
        pa.encrypt_vector(pub, np.zeros(3, np.int64), layout, randomness=seeded(1))


# --------------------------------------------------------------------------------------
# Sums


@st.composite
def summands(draw: st.DrawFn) -> tuple[int, int, list[np.ndarray]]:
    n_clients = draw(st.integers(1, 5))
    value_bits = draw(st.integers(1, 40))
    n_summed = draw(st.integers(1, n_clients))
    count = draw(st.integers(0, 80))
    lo, hi = -(1 << (value_bits - 1)), (1 << (value_bits - 1)) - 1
    vectors = [
        draw(hnp.arrays(np.int64, count, elements=st.integers(lo, hi))) for _ in range(n_summed)
    ]
    return n_clients, value_bits, vectors


@settings(max_examples=25, deadline=None)
@given(case=summands(), seed=st.integers(0, 2**32))
def test_sum_of_packed_vectors_is_exact(keys, case, seed) -> None:
    n_clients, value_bits, vectors = case
    layout = plan(keys[0], value_bits, n_clients)
    got = encrypt_sum_decrypt(keys, layout, vectors, seed)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.sum(vectors, axis=0, dtype=np.int64))


def test_many_ciphertexts_and_negative_values(keys) -> None:
    pub, _ = keys
    layout = plan(pub, 24, 10)
    g = np.random.default_rng(7)
    vectors = [g.integers(layout.min_value, layout.max_value + 1, 3001) for _ in range(10)]
    assert layout.ciphertexts_for(3001) > 50  # the fixed-base (table) path
    got = encrypt_sum_decrypt(keys, layout, vectors)
    np.testing.assert_array_equal(got, np.sum(vectors, axis=0))
    assert got.min() < 0 < got.max()


@pytest.mark.parametrize(("value_bits", "n_clients"), [(8, 4), (8, 5), (24, 10), (1, 3), (31, 2)])
def test_headroom_boundary_extremes_fit_exactly(keys, value_bits, n_clients) -> None:
    pub, _ = keys
    layout = plan(pub, value_bits, n_clients)
    count = layout.slots_per_ciphertext + 3
    top = np.full(count, layout.max_value, np.int64)
    bottom = np.full(count, layout.min_value, np.int64)
    got = encrypt_sum_decrypt(keys, layout, [top] * n_clients)
    np.testing.assert_array_equal(got, n_clients * top)
    got = encrypt_sum_decrypt(keys, layout, [bottom] * n_clients)
    np.testing.assert_array_equal(got, n_clients * bottom)
    mixed = [top if i % 2 else bottom for i in range(n_clients)]
    np.testing.assert_array_equal(encrypt_sum_decrypt(keys, layout, mixed), np.sum(mixed, axis=0))


def test_one_more_client_than_planned_raises(keys) -> None:
    pub, _ = keys
    layout = plan(pub, 8, 4)
    assert layout.slot_bits == 10  # 4 * 255 = 1020 < 1024: no spare bit
    rng = seeded(3)
    top = np.full(10, layout.max_value, np.int64)
    cts = [pa.encrypt_vector(pub, top, layout, randomness=rng) for _ in range(5)]
    with pytest.raises(EncodingOverflow, match="n_clients=4"):
        pa.sum_vectors(cts)
    running = cts[0]
    for ct in cts[1:4]:
        running = pa.add(running, ct)
    assert running.n_summed == 4
    with pytest.raises(EncodingOverflow):
        pa.add(running, cts[4])


def test_value_out_of_range_raises(keys) -> None:
    pub, _ = keys
    layout = plan(pub, 8, 2)
    rng = seeded(4)
    for bad in (128, -129):
        values = np.array([0, 1, bad, 2], np.int64)
        with pytest.raises(EncodingOverflow, match=f"value {bad} at index 2"):
            pa.encrypt_vector(pub, values, layout, randomness=rng)
    with pytest.raises(InvalidArgument, match="integer array"):
        pa.encrypt_vector(pub, np.zeros(3), layout, randomness=rng)
    with pytest.raises(InvalidArgument, match="1-D"):
        pa.encrypt_vector(pub, np.zeros((2, 2), np.int64), layout, randomness=rng)
    with pytest.raises(InvalidArgument, match="Csprng or a RandomnessPool"):
        pa.encrypt_vector(pub, np.zeros(2, np.int64), layout, randomness=None)


def test_full_int64_range_with_64_bit_slots(keys) -> None:
    pub, _ = keys
    layout = plan(pub, 64, 1)
    assert layout.slot_bits == 64
    info = np.iinfo(np.int64)
    values = np.array([info.min, -1, 0, 1, info.max], np.int64)
    np.testing.assert_array_equal(encrypt_sum_decrypt(keys, layout, [values]), values)
    unsigned = np.array([0, 5, info.max], np.uint64)
    np.testing.assert_array_equal(
        encrypt_sum_decrypt(keys, layout, [unsigned]), unsigned.astype(np.int64)
    )


def test_extreme_sums_of_many_clients_reach_int64_bounds(keys) -> None:
    # 2^24 clients x 40-bit values: 64-bit slots; craft the extreme slot sums directly.
    pub, priv = keys
    layout = plan(pub, 40, 1 << 24)
    assert layout.slot_bits == 64
    k = layout.slots_per_ciphertext
    n = layout.n_clients
    for slot_sum, expected in ((n * ((1 << 40) - 1), n * layout.max_value), (0, -(1 << 63))):
        m = sum(slot_sum << (i * 64) for i in range(k))
        c = pa.encrypt_int(pub, m, rng=seeded(5))
        vector = pa.CiphertextVector(pub, layout, [c], count=k, n_summed=n)
        np.testing.assert_array_equal(pa.decrypt_vector(priv, vector), np.full(k, expected))


def test_empty_vector(keys) -> None:
    pub, priv = keys
    layout = plan(pub, 16, 3)
    ct = pa.encrypt_vector(pub, np.zeros(0, np.int64), layout, randomness=seeded(6))
    assert ct.ciphertexts == ()
    assert pa.ciphertexts_to_bytes(ct) == b""
    assert pa.decrypt_vector(priv, pa.add(ct, ct)).shape == (0,)


def test_mismatched_vectors_are_refused(keys, other_keys) -> None:
    pub, _ = keys
    layout = plan(pub, 16, 3)
    rng = seeded(8)
    a = pa.encrypt_vector(pub, np.arange(5), layout, randomness=rng)
    shorter = pa.encrypt_vector(pub, np.arange(4), layout, randomness=rng)
    other_layout = pa.encrypt_vector(pub, np.arange(5), plan(pub, 16, 4), randomness=rng)
    foreign = pa.encrypt_vector(other_keys[0], np.arange(5), layout, randomness=rng)
    for b in (shorter, other_layout, foreign):
        with pytest.raises(InvalidArgument):
            pa.add(a, b)
    with pytest.raises(InvalidArgument, match="does not belong"):
        pa.decrypt_vector(other_keys[1], a)
    with pytest.raises(InvalidArgument):
        pa.sum_vectors([])


# --------------------------------------------------------------------------------------
# phe interop


def test_encrypt_int_decrypts_with_phe(keys) -> None:
    pub, priv = keys
    rng = seeded(9)
    for m in (0, 1, 123456789, pub.n - 1):
        c = pa.encrypt_int(pub, m, rng=rng)
        assert isinstance(c, int)
        assert priv.raw_decrypt(c) == m
    c = pa.encrypt_int(pub, 42, rng=rng)
    assert priv.decrypt(phe.EncryptedNumber(pub, c, exponent=0)) == 42
    with pytest.raises(InvalidArgument):
        pa.encrypt_int(pub, pub.n, rng=rng)
    with pytest.raises(InvalidArgument):
        pa.encrypt_int(pub, -1, rng=rng)


def test_phe_ciphertexts_decrypt_with_ours(keys) -> None:
    pub, priv = keys
    for m in (0, 7, 2**500 + 3, pub.n - 1):
        assert pa.decrypt_int(priv, pub.raw_encrypt(m)) == m
    # phe's float encoding round-trips through our raw decryption too.
    enc = pub.encrypt(17)
    assert pa.decrypt_int(priv, enc.ciphertext()) == 17


def test_single_slot_vector_is_a_phe_ciphertext(keys) -> None:
    pub, priv = keys
    layout = pa.PackingLayout(
        modulus_bits=pub.n.bit_length(),
        value_bits=32,
        n_clients=2,
        slot_bits=33,
        slots_per_ciphertext=1,
    )
    ct = pa.encrypt_vector(pub, np.array([-5, 9], np.int64), layout, randomness=seeded(10))
    raw = [int(c) for c in ct.ciphertexts]
    assert [priv.raw_decrypt(c) for c in raw] == [layout.offset - 5, layout.offset + 9]
    # ...and phe-made ciphertexts of shifted values sum with ours.
    theirs = pa.CiphertextVector(
        pub,
        layout,
        [pub.raw_encrypt(layout.offset + 100), pub.raw_encrypt(layout.offset - 1)],
        count=2,
        n_summed=1,
    )
    np.testing.assert_array_equal(pa.decrypt_vector(priv, pa.add(ct, theirs)), [95, 8])
    # phe's own homomorphic addition on our ciphertexts.
    total = phe.EncryptedNumber(pub, raw[0]) + phe.EncryptedNumber(pub, raw[1])
    assert priv.decrypt(total) == 2 * layout.offset + 4


def test_generate_keypair_2048_roundtrip() -> None:
    pub, priv = pa.generate_keypair()
    assert isinstance(pub, phe.PaillierPublicKey)
    assert isinstance(priv, phe.PaillierPrivateKey)
    assert pub.n.bit_length() == 2048
    layout = plan(pub, 24, 10)
    assert layout.slots_per_ciphertext == 73
    values = np.array([-3, 0, 5], np.int64)
    ct = pa.encrypt_vector(pub, values, layout, randomness=seeded(11))
    np.testing.assert_array_equal(pa.decrypt_vector(priv, ct), values)
    assert priv.raw_decrypt(pa.encrypt_int(pub, 99, rng=seeded(12))) == 99
    assert len(pa.ciphertexts_to_bytes(ct)) == 512


@pytest.mark.parametrize("bits", [1024, 4096, True, "2048"])
def test_generate_keypair_rejects_other_sizes(bits: object) -> None:
    with pytest.raises(InvalidArgument):
        pa.generate_keypair(bits=bits)


# --------------------------------------------------------------------------------------
# CRT decryption


def test_crt_decryption_equals_textbook_decryption(keys) -> None:
    pub, priv = keys
    n, nsq = pub.n, pub.n * pub.n
    lam = math.lcm(priv.p - 1, priv.q - 1)
    mu = pow((pow(n + 1, lam, nsq) - 1) // n, -1, n)
    g = np.random.default_rng(13)
    for _ in range(20):
        c = int.from_bytes(g.bytes(2 * BITS // 8), "big") % nsq
        if math.gcd(c, n) != 1:
            continue
        textbook = (pow(c, lam, nsq) - 1) // n * mu % n
        assert pa.decrypt_int(priv, c) == textbook == priv.raw_decrypt(c)


def test_decrypt_int_validates(keys) -> None:
    pub, priv = keys
    for bad in (0, pub.n * pub.n, priv.p):
        with pytest.raises(IntegrityError):
            pa.decrypt_int(priv, bad)
    with pytest.raises(InvalidArgument):
        pa.decrypt_int(pub, 5)


# --------------------------------------------------------------------------------------
# Randomness


def test_two_encryptions_of_the_same_vector_differ(keys) -> None:
    pub, priv = keys
    layout = plan(pub, 16, 2)
    values = np.arange(-50, 250, dtype=np.int64)
    rng = seeded(14)
    a = pa.encrypt_vector(pub, values, layout, randomness=rng)
    b = pa.encrypt_vector(pub, values, layout, randomness=rng)
    assert all(x != y for x, y in zip(a.ciphertexts, b.ciphertexts, strict=True))
    np.testing.assert_array_equal(pa.decrypt_vector(priv, a), pa.decrypt_vector(priv, b))


def test_seeded_encryption_is_reproducible(keys) -> None:
    pub, _ = keys
    layout = plan(pub, 16, 2)
    values = np.arange(300, dtype=np.int64)
    a = pa.encrypt_vector(pub, values, layout, randomness=seeded(15))
    b = pa.encrypt_vector(pub, values, layout, randomness=seeded(15))
    assert a.ciphertexts == b.ciphertexts


def test_fixed_base_table_matches_powmod(keys) -> None:
    pub, _ = keys
    nsq = gmpy2.mpz(pub.n) ** 2
    h = gmpy2.powmod(3, pub.n, nsq)
    table = pa._build_table(h, nsq, 32)
    exps = bytes(32) + b"\x01" + bytes(31) + bytes([255] * 32) + seeded(16).bytes(32 * 5)
    got = pa._fixed_base_powers(table, nsq, exps)
    for i, r in enumerate(got):
        a = int.from_bytes(exps[32 * i : 32 * (i + 1)], "little")
        assert r == gmpy2.powmod(h, a, nsq)


def test_pool_hands_out_each_obfuscator_once(keys) -> None:
    pub, priv = keys
    pool = pa.RandomnessPool(pub, rng=seeded(17))
    pool.fill(40)
    assert len(pool) == 40
    pool.fill(10)  # already enough: no-op
    assert len(pool) == 40
    first, second = pool.take(25), pool.take(25)  # 15 ready + 10 made on demand
    assert len(pool) == 0
    everything = [int(r) for r in first + second]
    assert len(set(everything)) == 50
    # each obfuscator is an n-th residue: R^lambda = 1 mod n^2
    lam = math.lcm(priv.p - 1, priv.q - 1)
    nsq = pub.n * pub.n
    assert all(pow(r, lam, nsq) == 1 for r in everything[:5])


def test_pool_encrypts_and_is_consumed(keys) -> None:
    pub, priv = keys
    layout = plan(pub, 16, 2)
    values = np.arange(-500, 500, dtype=np.int64)
    pool = pa.RandomnessPool(pub, rng=seeded(18))
    pool.fill(2 * layout.ciphertexts_for(values.size))
    a = pa.encrypt_vector(pub, values, layout, randomness=pool)
    b = pa.encrypt_vector(pub, values, layout, randomness=pool)
    assert len(pool) == 0
    assert not set(a.ciphertexts) & set(b.ciphertexts)
    np.testing.assert_array_equal(pa.decrypt_vector(priv, pa.add(a, b)), 2 * values)


def test_pool_workers_give_the_same_obfuscators(keys) -> None:
    pub, _ = keys
    serial = pa.RandomnessPool(pub, rng=seeded(19))
    parallel = pa.RandomnessPool(pub, rng=seeded(19), workers=2)
    serial.fill(150)
    parallel.fill(150)
    assert serial.take(150) == parallel.take(150)


def test_pool_is_bound_to_its_key_and_validated(keys, other_keys) -> None:
    pub, _ = keys
    layout = plan(pub, 16, 2)
    pool = pa.RandomnessPool(other_keys[0], rng=seeded(20))
    with pytest.raises(InvalidArgument, match="different public key"):
        pa.encrypt_vector(pub, np.arange(3), layout, randomness=pool)
    for kwargs in ({"workers": 0}, {"exponent_bits": 128}, {"exponent_bits": 260}):
        with pytest.raises(InvalidArgument):
            pa.RandomnessPool(pub, rng=seeded(21), **kwargs)
    longer = pa.RandomnessPool(pub, rng=seeded(22), exponent_bits=512)
    longer.fill(8)
    assert len(longer) == 8


def test_secret_holders_refuse_pickle_and_hide_state(keys) -> None:
    pub, priv = keys
    pool = pa.RandomnessPool(pub, rng=seeded(23))
    pool.fill(6)
    with pytest.raises(TypeError):
        pickle.dumps(pool)
    assert repr(pool) == f"RandomnessPool(n_bits={BITS}, ready=6)"
    crt = pa._Crt(priv)
    assert str(priv.p) not in repr(crt)
    with pytest.raises(TypeError):
        pickle.dumps(crt)


# --------------------------------------------------------------------------------------
# Wire form


def test_bytes_roundtrip_and_width(keys) -> None:
    pub, priv = keys
    layout = plan(pub, 20, 3)
    values = np.arange(-100, 100, dtype=np.int64)
    ct = pa.encrypt_vector(pub, values, layout, randomness=seeded(24))
    data = pa.ciphertexts_to_bytes(ct)
    width = pa.ciphertext_bytes(pub)
    assert width == 256
    assert len(data) == len(ct.ciphertexts) * width
    back = pa.ciphertexts_from_bytes(data, pub, layout, count=values.size, n_summed=1)
    assert back.ciphertexts == ct.ciphertexts
    np.testing.assert_array_equal(pa.decrypt_vector(priv, back), values)
    again = pickle.loads(pickle.dumps(ct))
    assert again.ciphertexts == ct.ciphertexts
    assert "ciphertexts=" in repr(ct)
    assert str(int(ct.ciphertexts[0])) not in repr(ct)


def _replace(data: bytes, index: int, width: int, value: int) -> bytes:
    return data[: index * width] + value.to_bytes(width, "big") + data[(index + 1) * width :]


def test_malformed_bytes_raise_integrity_error(keys) -> None:
    pub, priv = keys
    layout = plan(pub, 20, 3)
    ct = pa.encrypt_vector(pub, np.arange(200, dtype=np.int64), layout, randomness=seeded(25))
    data = pa.ciphertexts_to_bytes(ct)
    width = pa.ciphertext_bytes(pub)

    def parse(blob: bytes) -> pa.CiphertextVector:
        return pa.ciphertexts_from_bytes(blob, pub, layout, count=200, n_summed=1)

    for blob in (data[:-1], data + b"\x00", data + bytes(width), b""):
        with pytest.raises(IntegrityError, match="bytes"):
            parse(blob)
    for value in (0, pub.n * pub.n, (1 << (8 * width)) - 1, priv.p * 12345, pub.n):
        with pytest.raises(IntegrityError, match="ciphertext 1"):
            parse(_replace(data, 1, width, value))
    # A bit flip inside the valid range decrypts to garbage, which the slot checks catch.
    flipped = bytearray(data)
    flipped[width + 100] ^= 0x01
    with pytest.raises(IntegrityError):
        pa.decrypt_vector(priv, parse(bytes(flipped)))
    with pytest.raises(InvalidArgument):
        pa.ciphertexts_from_bytes("text", pub, layout, count=200, n_summed=1)
    with pytest.raises(EncodingOverflow):
        pa.ciphertexts_from_bytes(data, pub, layout, count=200, n_summed=4)


@pytest.mark.parametrize(("summed", "claimed"), [(2, 3), (3, 2)])
def test_wrong_n_summed_is_detected_by_padding(keys, summed, claimed) -> None:
    """Padding slots decode to n_summed x offset exactly: a sum of fewer inputs than
    claimed leaves them below, of more inputs above (both refused)."""
    pub, priv = keys
    layout = plan(pub, 20, 3)
    rng = seeded(26)
    count = layout.slots_per_ciphertext + 1  # leaves padding slots
    cts = [pa.encrypt_vector(pub, np.zeros(count, np.int64), layout, randomness=rng)] * summed
    data = pa.ciphertexts_to_bytes(pa.sum_vectors(cts))
    vector = pa.ciphertexts_from_bytes(data, pub, layout, count=count, n_summed=claimed)
    with pytest.raises(IntegrityError, match="n_summed"):
        pa.decrypt_vector(priv, vector)


def test_out_of_range_contribution_is_detected(keys) -> None:
    pub, priv = keys
    layout = plan(pub, 8, 2)
    k = layout.slots_per_ciphertext
    too_big = (1 << layout.slot_bits) - 1  # a client claiming the whole slot
    forged = pa.CiphertextVector(
        pub, layout, [pa.encrypt_int(pub, too_big, rng=seeded(27))], count=k, n_summed=1
    )
    with pytest.raises(IntegrityError, match="slot 0"):
        pa.decrypt_vector(priv, forged)
    beyond = pa.CiphertextVector(
        pub, layout, [pa.encrypt_int(pub, pub.n - 1, rng=seeded(28))], count=k, n_summed=1
    )
    with pytest.raises(IntegrityError, match="plaintext"):
        pa.decrypt_vector(priv, beyond)


def test_constructor_validates_ciphertexts(keys) -> None:
    pub, _ = keys
    layout = plan(pub, 8, 2)
    good = pub.raw_encrypt(1)
    with pytest.raises(InvalidArgument, match="need 1 ciphertexts"):
        pa.CiphertextVector(pub, layout, [good, good], count=3, n_summed=1)
    with pytest.raises(InvalidArgument, match=r"int or gmpy2\.mpz"):
        pa.CiphertextVector(pub, layout, [str(good)], count=3, n_summed=1)
    with pytest.raises(IntegrityError):
        pa.CiphertextVector(pub, layout, [0], count=3, n_summed=1)
    with pytest.raises(InvalidArgument):
        pa.CiphertextVector(pub, layout, [good], count=-1, n_summed=1)


def test_errors_are_secfl_errors() -> None:
    for cls in (EncodingOverflow, IntegrityError, InvalidArgument):
        assert issubclass(cls, SecflError)
