import numpy as np
import pytest
from scipy.linalg import hadamard

from secfl.dp import RandomizedHadamard, fwht, gaussian, padded_dimension
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng

SEED = bytes(range(32))


@pytest.mark.parametrize(("d", "padded"), [(1, 1), (2, 2), (3, 4), (1000, 1024), (1024, 1024)])
def test_padded_dimension(d, padded):
    assert padded_dimension(d) == padded


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_fwht_matches_hadamard_matrix_and_is_involution(n):
    x = gaussian(n, stddev=1.0, rng=Csprng(seed=bytes([n]) * 32))
    expected = hadamard(n) @ x / np.sqrt(n)
    assert np.allclose(fwht(x), expected, atol=1e-12)
    assert np.allclose(fwht(fwht(x)), x, atol=1e-12)


def test_fwht_rejects_bad_lengths():
    for bad in (np.ones(3), np.ones(0), np.ones((2, 2))):
        with pytest.raises(InvalidArgument):
            fwht(bad)


def test_rotation_matrix_has_orthonormal_columns():
    rot = RandomizedHadamard(dimension=13, seed=SEED)
    m = np.stack([rot.forward(e) for e in np.eye(13)], axis=1)  # 16 x 13
    assert m.shape == (16, 13)
    assert np.allclose(m.T @ m, np.eye(13), atol=1e-12)
    # Entries are +-1/sqrt(16): energy is spread evenly.
    assert np.allclose(np.abs(m), 0.25)


def test_forward_inverse_and_norm():
    x = gaussian(1000, stddev=1e3, rng=Csprng(seed=bytes(32)))
    rot = RandomizedHadamard(dimension=1000, seed=SEED)
    y = rot.forward(x)
    assert y.shape == (1024,)
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x), rel=1e-12)
    assert np.allclose(rot.inverse(y), x, rtol=0, atol=1e-9)
    assert rot.inverse(y).shape == (1000,)


def test_float32_input_and_spread():
    x = np.zeros(4096, dtype=np.float32)
    x[7] = 1.0  # all energy in one coordinate
    y = RandomizedHadamard(dimension=4096, seed=SEED).forward(x)
    assert np.allclose(np.abs(y), 1 / 64)


def test_seed_determines_signs():
    a = RandomizedHadamard(dimension=100, seed=SEED)
    b = RandomizedHadamard(dimension=100, seed=SEED)
    c = RandomizedHadamard(dimension=100, seed=bytes(32))
    assert np.array_equal(a.signs(), b.signs())
    assert not np.array_equal(a.signs(), c.signs())
    assert set(np.unique(a.signs())) == {-1.0, 1.0}
    assert a == b
    assert SEED.hex() not in repr(a)


def test_validation():
    with pytest.raises(InvalidArgument):
        RandomizedHadamard(dimension=0, seed=SEED)
    with pytest.raises(InvalidArgument):
        RandomizedHadamard(dimension=4, seed=b"short")
    rot = RandomizedHadamard(dimension=4, seed=SEED)
    with pytest.raises(InvalidArgument):
        rot.forward(np.ones(5))
    with pytest.raises(InvalidArgument):
        rot.forward(np.ones(4, dtype=np.int64))
    with pytest.raises(InvalidArgument):
        rot.inverse(np.ones(3))
