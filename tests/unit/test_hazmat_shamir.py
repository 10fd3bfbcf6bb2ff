"""Vectorized Shamir secret sharing over GF(2^24 + 43)."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat import shamir
from secfl.hazmat.rng import Csprng
from secfl.hazmat.shamir import (
    CHUNKS,
    MAX_THRESHOLD,
    PRIME,
    SECRET_BYTES,
    SHARE_BYTES,
    lagrange_at_zero,
    reconstruct,
    reconstruct_many,
    share,
    shares_from_bytes,
    shares_to_bytes,
)


def _rng(tag: int = 0) -> Csprng:
    return Csprng(seed=bytes([tag]) * 32)


def _secrets(m: int, tag: int = 99) -> list[bytes]:
    rng = _rng(tag)
    return [rng.bytes(SECRET_BYTES) for _ in range(m)]


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def test_constants() -> None:
    assert _is_prime(PRIME)
    assert 2**24 < PRIME < 2**25
    assert CHUNKS * 24 >= SECRET_BYTES * 8
    assert SHARE_BYTES == CHUNKS * 4
    # The exactness bound: MAX_THRESHOLD products of two elements fit int64, one more may not.
    assert MAX_THRESHOLD * (PRIME - 1) ** 2 <= 2**63 - 1 < (MAX_THRESHOLD + 1) * (PRIME - 1) ** 2
    assert MAX_THRESHOLD == 32767


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_any_threshold_subset(data: st.DataObject) -> None:
    t = data.draw(st.integers(1, 8), label="t")
    n = data.draw(st.integers(t, 12), label="n")
    m = data.draw(st.integers(0, 4), label="m")
    seed = data.draw(st.binary(min_size=32, max_size=32), label="seed")
    xs = np.array(
        data.draw(st.lists(st.integers(1, PRIME - 1), min_size=n, max_size=n, unique=True)),
        dtype=np.int64,
    )
    secrets = [data.draw(st.binary(min_size=32, max_size=32)) for _ in range(m)]
    sh = share(secrets, threshold=t, xs=xs, rng=Csprng(seed=seed))
    assert sh.shape == (n, m, CHUNKS)
    assert sh.dtype == np.int64
    assert sh.min(initial=0) >= 0
    assert sh.max(initial=0) < PRIME
    k = data.draw(st.integers(t, n), label="k")
    pick = np.array(data.draw(st.permutations(range(n)))[:k])
    assert reconstruct(sh[pick], xs[pick], threshold=t) == secrets


def test_every_t_subset_reconstructs() -> None:
    secrets = _secrets(3)
    xs = np.arange(1, 7)
    sh = share(secrets, threshold=3, xs=xs, rng=_rng())
    for subset in itertools.combinations(range(6), 3):
        idx = np.array(subset)
        assert reconstruct(sh[idx], xs[idx], threshold=3) == secrets
        assert reconstruct(sh[idx[::-1]], xs[idx[::-1]], threshold=3) == secrets


def test_extra_shares_beyond_threshold_are_ignored() -> None:
    secrets = _secrets(2)
    xs = np.arange(1, 6)
    sh = share(secrets, threshold=3, xs=xs, rng=_rng())
    bad = sh.copy()
    bad[3:] = 0  # rows past the threshold are not used
    assert reconstruct(bad, xs, threshold=3) == secrets


def test_secret_sized_arrays_are_accepted() -> None:
    secrets = _secrets(4)
    arr = np.frombuffer(b"".join(secrets), dtype=np.uint8).reshape(4, 32)
    xs = np.arange(1, 5)
    a = share(secrets, threshold=2, xs=xs, rng=_rng(1))
    b = share(arr, threshold=2, xs=xs, rng=_rng(1))
    assert np.array_equal(a, b)
    assert reconstruct(b, xs, threshold=2) == secrets


def test_extreme_secrets_round_trip() -> None:
    secrets = [bytes(32), b"\xff" * 32, bytes(range(32))]
    xs = np.array([PRIME - 1, 1, 2**24, 12345])
    sh = share(secrets, threshold=4, xs=xs, rng=_rng())
    assert reconstruct(sh, xs, threshold=4) == secrets


def test_fewer_than_threshold_shares_do_not_reveal_the_secret() -> None:
    secrets = _secrets(50)
    xs = np.arange(1, 11)
    sh = share(secrets, threshold=5, xs=xs, rng=_rng())
    # Interpolating t-1 shares (as if the threshold were t-1) gives unrelated values.
    lam = lagrange_at_zero(xs[:4])
    guess = (lam @ sh[:4].reshape(4, -1)) % PRIME
    truth = share(secrets, threshold=1, xs=np.array([1]), rng=_rng())[0].reshape(-1)
    assert np.count_nonzero(guess == truth) <= 2  # chance agreement only (~1/p each)
    with pytest.raises(InvalidArgument, match="at least threshold"):
        reconstruct(sh[:4], xs[:4], threshold=5)


def test_single_shares_are_uniform_whatever_the_secret() -> None:
    """With t = 2 one share is secret + uniform coefficient: it must look uniform on [0, p)."""
    m = 1000
    for secret in (bytes(32), b"\xff" * 32):
        sh = share([secret] * m, threshold=2, xs=np.array([1, 2]), rng=_rng(4))
        one = sh[0].reshape(-1).astype(np.float64) / PRIME  # m * CHUNKS values
        # Mean and quartiles of U(0,1); 11000 samples give sd ~ 0.003 for the mean.
        assert abs(one.mean() - 0.5) < 0.015
        for q in (0.25, 0.5, 0.75):
            assert abs(np.mean(one < q) - q) < 0.02
        # Identical secrets get independent polynomials.
        assert len(np.unique(sh[0], axis=0)) == m


def test_one_corrupted_share_changes_or_rejects_the_result() -> None:
    secrets = _secrets(8)
    xs = np.arange(1, 6)
    sh = share(secrets, threshold=3, xs=xs, rng=_rng())
    bad = sh.copy()
    bad[1, :, :] = (bad[1, :, :] + 1) % PRIME
    with contextlib.suppress(IntegrityError):
        out = reconstruct(bad[:3], xs[:3], threshold=3)
        assert all(a != b for a, b in zip(out, secrets, strict=True))


def test_non_encoding_result_is_an_integrity_error() -> None:
    xs = np.array([7])
    for chunk, value in ((0, 1 << 24), (CHUNKS - 1, 1 << 16), (3, PRIME - 1)):
        fake = np.zeros((1, 1, CHUNKS), dtype=np.int64)
        fake[0, 0, chunk] = value
        with pytest.raises(IntegrityError, match="inconsistent"):
            reconstruct(fake, xs, threshold=1)
    ok = np.zeros((1, 1, CHUNKS), dtype=np.int64)
    ok[0, 0, CHUNKS - 1] = (1 << 16) - 1
    assert reconstruct(ok, xs, threshold=1) == [bytes(30) + b"\xff\xff"]


def _lagrange_reference(xs: list[int]) -> list[int]:
    out = []
    for j, xj in enumerate(xs):
        num, den = 1, 1
        for k, xk in enumerate(xs):
            if k != j:
                num = num * xk % PRIME
                den = den * (xk - xj) % PRIME
        out.append(num * pow(den, PRIME - 2, PRIME) % PRIME)
    return out


def test_lagrange_matches_python_int_reference() -> None:
    g = np.random.default_rng(0)
    for t in (1, 2, 3, 7, 40):
        xs = g.choice(PRIME - 1, size=t, replace=False) + 1
        assert lagrange_at_zero(xs).tolist() == _lagrange_reference(xs.tolist())


def test_lagrange_interpolates_low_degree_monomials_in_blocks() -> None:
    """sum_j lambda_j x_j^k = [k == 0] for k < t; t large enough to use several blocks."""
    t = 1500
    xs = np.random.default_rng(1).choice(PRIME - 1, size=t, replace=False) + 1
    lam = [int(v) for v in lagrange_at_zero(xs)]
    xi = [int(v) for v in xs]
    for k in (0, 1, 2, t - 1):
        total = sum(lj * pow(x, k, PRIME) for lj, x in zip(lam, xi, strict=True)) % PRIME
        assert total == (1 if k == 0 else 0)


def test_lagrange_batched_matches_rows() -> None:
    g = np.random.default_rng(2)
    xs = np.stack([g.choice(np.arange(1, 1000), size=6, replace=False) for _ in range(12)])
    xs = xs.reshape(3, 4, 6)
    lam = lagrange_at_zero(xs)
    assert lam.shape == xs.shape
    for idx in np.ndindex(3, 4):
        assert lam[idx].tolist() == _lagrange_reference(xs[idx].tolist())


def test_matmul_exact_at_the_threshold_bound() -> None:
    """Worst case for the float64 split: MAX_THRESHOLD terms of (p-1) * (p-1)."""
    a = np.full((2, MAX_THRESHOLD), PRIME - 1, dtype=np.int64)
    b = np.full((MAX_THRESHOLD, 3), PRIME - 1, dtype=np.int64)
    b[:, 1] = (1 << 24) + 42 - 4095  # lo part 0 / hi at its maximum
    out = shamir._matmul_mod(a, b)
    assert out[0, 0] == MAX_THRESHOLD * (PRIME - 1) ** 2 % PRIME
    assert out[1, 1] == MAX_THRESHOLD * (PRIME - 1) * int(b[0, 1]) % PRIME


def test_large_share_round_trip_with_blocks() -> None:
    t, n = 900, 1300  # 2^20 // 900 = 1165 rows per block: two blocks
    secrets = _secrets(2)
    xs = np.arange(1, n + 1)
    sh = share(secrets, threshold=t, xs=xs, rng=_rng())
    pick = np.random.default_rng(3).permutation(n)[:t]
    assert (pick >= 1165).any()  # the subset mixes rows of both blocks
    assert reconstruct(sh[pick], xs[pick], threshold=t) == secrets


def test_reconstruct_many_each_with_its_own_holder_set() -> None:
    m, n, t = 30, 12, 5
    secrets = _secrets(m)
    xs = np.arange(1, n + 1)
    sh = share(secrets, threshold=t, xs=xs, rng=_rng())
    g = np.random.default_rng(4)
    holders = np.stack([g.permutation(n)[: t + 1] for _ in range(m)])  # (m, t+1)
    holders[::3] = holders[0]  # some sets repeat (deduplicated internally)
    per_secret = sh[holders, np.arange(m)[:, None], :]  # (m, t+1, CHUNKS)
    out = reconstruct_many(per_secret, xs[holders], threshold=t)
    assert out.shape == (m, SECRET_BYTES)
    assert out.dtype == np.uint8
    assert [row.tobytes() for row in out] == secrets
    with pytest.raises(InvalidArgument, match="at least threshold"):
        reconstruct_many(per_secret, xs[holders], threshold=t + 2)
    empty = reconstruct_many(
        np.zeros((0, t, CHUNKS), dtype=np.int64), np.zeros((0, t), np.int64), threshold=t
    )
    assert empty.shape == (0, SECRET_BYTES)


def test_unique_rows_groups_rows_even_when_hashes_collide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = np.random.default_rng(6)
    base = g.integers(1, PRIME, size=(5, 7))
    x = base[g.integers(0, 5, size=40)]
    uniq, inverse = shamir._unique_rows(x)
    assert np.array_equal(uniq[inverse], x)
    assert len(uniq) == len(np.unique(x, axis=0))
    # Every row hashing alike forces the exact fallback.
    monkeypatch.setattr(shamir, "_row_hash", lambda a: np.zeros(len(a), dtype=np.uint64))
    uniq, inverse = shamir._unique_rows(x)
    assert np.array_equal(uniq[inverse], x)
    assert len(uniq) == len(np.unique(x, axis=0))


def test_reconstruct_many_rejects_bad_input() -> None:
    sh = np.zeros((2, 3, CHUNKS), dtype=np.int64)
    xs = np.array([[1, 2, 3], [4, 5, 4]])
    with pytest.raises(InvalidArgument, match="distinct"):
        reconstruct_many(sh, xs, threshold=3)
    with pytest.raises(InvalidArgument, match="shape"):
        reconstruct_many(sh[:, :2], np.array([[1, 2, 3], [4, 5, 6]]), threshold=2)
    sh[1, 2, 0] = PRIME
    with pytest.raises(IntegrityError, match="outside the field"):
        reconstruct_many(sh, np.array([[1, 2, 3], [4, 5, 6]]), threshold=3)


@pytest.mark.parametrize("threshold", [0, -1, MAX_THRESHOLD + 1, True, 2.0, "3"])
def test_bad_threshold(threshold: object) -> None:
    with pytest.raises(InvalidArgument, match="threshold"):
        share(_secrets(1), threshold=threshold, xs=np.arange(1, 4), rng=_rng())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("xs", "match"),
    [
        (np.array([1, 2, 2]), "distinct"),
        (np.array([0, 1, 2]), "in 1.."),
        (np.array([1, 2, PRIME]), "in 1.."),
        (np.array([1, 2, -3]), "in 1.."),
        (np.array([1.0, 2.0, 3.0]), "integers"),
        (np.array([[1, 2, 3]]), "1-D"),
        (np.array([1, 2]), "at least threshold"),
        (np.array([2**64 - 1, 1, 2], dtype=np.uint64), "in 1.."),
    ],
)
def test_bad_evaluation_points(xs: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        share(_secrets(1), threshold=3, xs=xs, rng=_rng())


def test_bad_secrets() -> None:
    xs = np.arange(1, 4)
    with pytest.raises(InvalidArgument, match="not one bytes"):
        share(bytes(32), threshold=2, xs=xs, rng=_rng())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="secret 1"):
        share([bytes(32), bytes(31)], threshold=2, xs=xs, rng=_rng())
    with pytest.raises(InvalidArgument, match="uint8"):
        share(np.zeros((2, 32), dtype=np.int64), threshold=2, xs=xs, rng=_rng())
    with pytest.raises(InvalidArgument, match="uint8"):
        share(np.zeros((2, 33), dtype=np.uint8), threshold=2, xs=xs, rng=_rng())


def test_reconstruct_rejects_bad_input() -> None:
    xs = np.arange(1, 4)
    sh = share(_secrets(2), threshold=3, xs=xs, rng=_rng())
    with pytest.raises(InvalidArgument, match="distinct"):
        reconstruct(sh, np.array([1, 2, 1]), threshold=3)
    with pytest.raises(InvalidArgument, match="shape"):
        reconstruct(sh[:, :, :5], xs, threshold=3)
    with pytest.raises(InvalidArgument, match="shape"):
        reconstruct(sh, np.arange(1, 5), threshold=3)
    with pytest.raises(InvalidArgument, match="integer numpy array"):
        reconstruct(sh.astype(np.float64), xs, threshold=3)
    for value in (PRIME, -1):
        bad = sh.copy()
        bad[2, 1, 4] = value
        with pytest.raises(IntegrityError, match="outside the field"):
            reconstruct(bad, xs, threshold=3)


def test_share_bytes_round_trip() -> None:
    xs = np.arange(1, 5)
    secrets = _secrets(3)
    sh = share(secrets, threshold=2, xs=xs, rng=_rng())
    wire = [shares_to_bytes(row) for row in sh]
    assert all(len(w) == 3 * SHARE_BYTES for w in wire)
    back = np.stack([shares_from_bytes(w, 3) for w in wire])
    assert back.dtype == np.int64
    assert np.array_equal(back, sh)
    assert reconstruct(back[[3, 1]], xs[[3, 1]], threshold=2) == secrets
    # Little-endian uint32 layout.
    assert wire[0][:4] == int(sh[0, 0, 0]).to_bytes(4, "little")
    assert shares_from_bytes(b"", 0).shape == (0, CHUNKS)


@pytest.mark.parametrize("value", [PRIME, PRIME + 1, 2**32 - 1])
def test_share_bytes_reject_out_of_field_elements(value: int) -> None:
    good = shares_to_bytes(np.zeros((2, CHUNKS), dtype=np.int64))
    pos = SHARE_BYTES + 4 * 7
    bad = good[:pos] + value.to_bytes(4, "little") + good[pos + 4 :]
    with pytest.raises(IntegrityError, match="outside the field"):
        shares_from_bytes(bad, 2)
    ok = good[:pos] + (PRIME - 1).to_bytes(4, "little") + good[pos + 4 :]
    assert shares_from_bytes(ok, 2)[1, 7] == PRIME - 1


def test_share_bytes_reject_bad_lengths_and_arguments() -> None:
    good = shares_to_bytes(np.zeros((2, CHUNKS), dtype=np.int64))
    with pytest.raises(IntegrityError, match="expected 2 shares"):
        shares_from_bytes(good[:-1], 2)
    with pytest.raises(IntegrityError):
        shares_from_bytes(good + b"\x00" * 4, 2)
    with pytest.raises(IntegrityError):
        shares_from_bytes(good, 3)
    with pytest.raises(InvalidArgument, match="count"):
        shares_from_bytes(good, -1)
    with pytest.raises(InvalidArgument):
        shares_from_bytes("text", 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="outside the field"):
        shares_to_bytes(np.full((1, CHUNKS), PRIME, dtype=np.int64))
    with pytest.raises(InvalidArgument, match="last dimension"):
        shares_to_bytes(np.zeros((1, CHUNKS + 1), dtype=np.int64))


def _dealt(m: int, t: int, seed: int = 3):
    secret = bytes(range(seed, seed + 32))
    xs = np.arange(1, m + 1)
    shares = shamir.share([secret], threshold=t, xs=xs, rng=Csprng(seed=bytes([seed]) * 32))
    return secret, xs, shares[:, 0, :].copy()


@pytest.mark.parametrize(("m", "t"), [(5, 3), (9, 6), (10, 7), (40, 27)])
def test_decoding_corrects_up_to_half_the_redundancy(m, t) -> None:
    secret, xs, shares = _dealt(m, t)
    assert shamir.consistent(shares, xs, threshold=t)
    e = (m - t) // 2
    wrong = list(range(0, m, max(1, m // max(e, 1))))[:e]
    for i in wrong:  # every chunk of a wrong share moved
        shares[i] = (shares[i] + 1 + i) % shamir.PRIME
    assert shamir.consistent(shares, xs, threshold=t) == (e == 0)
    assert shamir.decode(shares, xs, threshold=t) == (secret, sorted(wrong))


def test_more_wrong_shares_than_decoding_can_take_are_refused() -> None:
    m, t = 10, 6
    _, xs, shares = _dealt(m, t)
    for i in (0, 4, 7):  # e = 2
        shares[i] = (shares[i] + 5) % shamir.PRIME
    assert not shamir.consistent(shares, xs, threshold=t)
    with pytest.raises(IntegrityError, match="cannot decode"):
        shamir.decode(shares, xs, threshold=t)


def test_one_wrong_share_without_redundancy_is_detected_not_silent() -> None:
    m, t = 8, 7  # one spare share: detect, cannot correct
    _, xs, shares = _dealt(m, t)
    shares[3, 5] = (shares[3, 5] + 1) % shamir.PRIME
    assert not shamir.consistent(shares, xs, threshold=t)
    with pytest.raises(IntegrityError):
        shamir.decode(shares, xs, threshold=t)


def test_barycentric_weights_for_a_set_less_one_point() -> None:
    xs = np.arange(1, 20)
    full = shamir.barycentric(xs)
    for gone in (1, 7, 19):
        rest = xs[xs != gone]
        derived = full[rest - 1] * ((rest - gone) % shamir.PRIME) % shamir.PRIME
        assert np.array_equal(derived, shamir.barycentric(rest))


@pytest.mark.parametrize("values", [(1, 1, 2, 2, 3), (1, 1, 2, 3, 3)])
def test_a_decoding_that_misses_too_many_shares_is_refused(values) -> None:
    """No constant (t = 1) lies within e = 2 of these five shares. Berlekamp-Welch's square
    system still has a solution; the polynomial it yields misses 3 or more shares, all on
    one side of it for one of the two cases, and must be refused, not returned."""
    xs = np.arange(1, 6)
    shares = np.repeat(np.array(values, dtype=np.int64)[:, None], shamir.CHUNKS, axis=1)
    with pytest.raises(IntegrityError, match="cannot decode"):
        shamir.decode(shares, xs, threshold=1)
