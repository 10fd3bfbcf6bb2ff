import pickle

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secfl.errors import InvalidArgument
from secfl.hazmat import prg
from secfl.hazmat.rng import Csprng

SEED = bytes(range(32))


def _reference_keystream(seed: bytes, n: int, label: bytes = b"") -> bytes:
    enc = Cipher(algorithms.AES(seed), modes.CTR(label.ljust(16, b"\0"))).encryptor()
    return enc.update(b"\0" * n) + enc.finalize()


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, (1 << 20) + 16, (1 << 20) + 15, 3 << 20])
def test_keystream_matches_aes_ctr(n):
    assert prg.keystream(SEED, n) == _reference_keystream(SEED, n)


def test_labels_give_distinct_streams():
    assert prg.keystream(SEED, 32, label=b"a") == _reference_keystream(SEED, 32, b"a")
    assert prg.keystream(SEED, 32, label=b"a") != prg.keystream(SEED, 32, label=b"b")


@pytest.mark.parametrize("bits", [1, 7, 8, 13, 16, 24, 32, 33, 64])
def test_expand_uniform_range_and_prefix(bits):
    v = prg.expand_uniform(SEED, 1000, bits)
    assert v.dtype == prg.uint_dtype(bits)
    if bits < 64:
        assert int(v.max()) < 1 << bits
    assert np.array_equal(prg.expand_uniform(SEED, 10, bits), v[:10])


def test_expand_uniform_is_uniform_chi_square():
    v = prg.expand_uniform(SEED, 160_000, 4)
    counts = np.bincount(v, minlength=16)
    expected = 10_000
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 37.7  # p = 0.001 for 15 degrees of freedom


def test_prg_validates():
    with pytest.raises(InvalidArgument):
        prg.keystream(b"short", 4)
    with pytest.raises(InvalidArgument):
        prg.keystream(SEED, 4, label=b"x" * 13)
    with pytest.raises(InvalidArgument):
        prg.expand_into(np.empty((4, 4), dtype=np.uint8)[:, ::2], SEED)
    with pytest.raises(InvalidArgument):
        prg.uint_dtype(65)


def test_csprng_deterministic_and_forward():
    a, b = Csprng(seed=SEED), Csprng(seed=SEED)
    assert a.bytes(40) == b.bytes(40)
    assert a.bytes(40) != Csprng(seed=SEED).bytes(40)


def test_csprng_os_seeded_differs():
    assert Csprng().bytes(32) != Csprng().bytes(32)


def test_csprng_uniform_range_and_mean():
    u = Csprng(seed=SEED).uniform(100_000)
    assert u.min() >= 0.0
    assert u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005


@pytest.mark.parametrize("bound", [1, 2, 3, 10, 2**31 - 1, 2**63])
def test_integers_below(bound):
    v = Csprng(seed=SEED).integers_below(bound, 5000)
    assert v.dtype == np.uint64
    assert int(v.max()) < bound
    if bound == 3:
        assert np.all(np.abs(np.bincount(v.astype(np.int64)) - 5000 / 3) < 150)


def test_csprng_refuses_pickle_and_hides_state():
    r = Csprng(seed=SEED)
    with pytest.raises(TypeError):
        pickle.dumps(r)
    assert SEED.hex() not in repr(r)


def test_csprng_validates():
    with pytest.raises(InvalidArgument):
        Csprng(seed=b"short")
    with pytest.raises(InvalidArgument):
        Csprng(seed=SEED).integers_below(0, 1)
    with pytest.raises(InvalidArgument):
        Csprng(seed=SEED).bytes(-1)


def test_spawn_is_independent():
    r = Csprng(seed=SEED)
    child = r.spawn()
    assert child.bytes(16) != r.bytes(16)
