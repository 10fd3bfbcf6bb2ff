"""Vectorized Shamir t-of-n secret sharing of many 32-byte secrets at once.

SecAgg (Bonawitz et al. 2017) shares two 32-byte secrets per client (a mask seed and a key
agreement private key) to every other client, and the server later reconstructs, for each
client, one of the two from the shares of the survivors. This module does that for whole
batches with numpy and exact integer arithmetic: no Python object per field element.

Design
------
* **Field.** GF(p) with ``p = PRIME = 2^24 + 43 = 16777259``, the smallest prime above
  2^24. Field elements are int64 in ``[0, p)``.
* **Secrets as field elements.** A 32-byte secret is cut into ``CHUNKS = 11`` little-endian
  chunks of 24 bits (the last chunk holds bytes 30..31, so it is below 2^16). Every chunk
  is below 2^24 < p, so the embedding is injective, and each chunk is shared with its own
  independent random polynomial of degree ``threshold - 1`` (coefficients uniform over
  [0, p) from the injected :class:`~secfl.hazmat.rng.Csprng`). Each chunk's t-1 shares are
  therefore perfectly independent of the chunk; the secret is protected information-
  theoretically, chunk by chunk.
* **Exactness bound.** Sharing is one matrix product ``V @ C`` (``V`` the Vandermonde
  matrix of the evaluation points, ``C`` the coefficients) and reconstruction is one
  product ``lambda @ S``; both sum ``t`` products of two elements below p and reduce mod
  p once at the end. ``(p - 1)^2 < 2^48.00001``, so such a sum fits int64 whenever
  ``t * (p - 1)^2 <= 2^63 - 1``, i.e. ``t <= MAX_THRESHOLD = 32767``. The products run
  on float64 BLAS (5-10x faster than numpy's int64 matmul) with the right operand split
  into 12-bit halves, so every partial sum is an integer below ``2^51.01 < 2^53`` and is
  exact too (see :func:`_matmul_mod`). Every other operation multiplies two elements
  below 2p (< 2^51) and reduces at once.
* **Limits.** ``1 <= threshold <= MAX_THRESHOLD``; evaluation points (the holders' x) are
  distinct integers in ``[1, p - 1]``, so at most ``p - 1`` holders. ``threshold = 1``
  is valid arithmetic but gives every holder the secret itself.
* **Reconstruction.** Lagrange coefficients at 0 for a holder set cost O(t^2) field
  operations (in O(log t) numpy calls, memory-bounded blocks) and one vectorized Fermat
  inversion; :func:`reconstruct_many` computes them once per distinct holder set, so the
  common SecAgg case (every dropped client's secret recovered from the same survivors)
  pays for one set.
* **Wire form.** One share of one secret is ``SHARE_BYTES = 44`` bytes: ``CHUNKS``
  little-endian uint32. Parsing refuses any element ``>= p`` (:class:`IntegrityError`).

Reconstruction uses the first ``threshold`` shares given and does not check any extra
shares for consistency; a corrupted share yields a wrong secret (detected only when the
result is not a valid 32-byte encoding). Authenticate shares (AEAD) before using them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from secfl.errors import IntegrityError, InvalidArgument
from secfl.hazmat.rng import Csprng

__all__ = [
    "CHUNKS",
    "CHUNK_BITS",
    "MAX_THRESHOLD",
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "barycentric",
    "consistent",
    "decode",
    "lagrange_at_zero",
    "reconstruct",
    "reconstruct_many",
    "share",
    "shares_from_bytes",
    "shares_to_bytes",
]

PRIME = (1 << 24) + 43
"""The field modulus p = 16777259 (prime)."""

SECRET_BYTES = 32
CHUNK_BITS = 24
CHUNKS = 11
"""Field elements per secret: ceil(256 / 24)."""

SHARE_BYTES = CHUNKS * 4
"""Wire size of one share of one secret (CHUNKS little-endian uint32)."""

MAX_THRESHOLD = ((1 << 63) - 1) // (PRIME - 1) ** 2
"""Largest threshold for which the int64 dot products cannot overflow (32767)."""

_P = np.int64(PRIME)
# Elements per temporary block (8 MiB of int64) in the O(n t) and O(t^2) steps.
_BLOCK = 1 << 20
_SPLIT = 12
_LO_MASK = np.int64((1 << _SPLIT) - 1)

Field = npt.NDArray[np.int64]


# --------------------------------------------------------------------------- validation


def _check_threshold(threshold: object) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int | np.integer):
        raise InvalidArgument(f"threshold must be an int, got {type(threshold).__name__}")
    t = int(threshold)
    if not 1 <= t <= MAX_THRESHOLD:
        raise InvalidArgument(f"threshold must be in 1..{MAX_THRESHOLD}, got {t}")
    return t


def _check_xs(xs: npt.ArrayLike, *, ndim: int) -> Field:
    """Evaluation points as int64, ``ndim``-dimensional, in [1, p-1], distinct per row."""
    arr = np.asarray(xs)
    if arr.dtype.kind not in "iu":
        raise InvalidArgument(f"evaluation points must be integers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise InvalidArgument(f"evaluation points must be {ndim}-D, got shape {arr.shape}")
    if arr.size and (int(arr.min()) < 1 or int(arr.max()) > PRIME - 1):
        raise InvalidArgument(f"evaluation points must be in 1..{PRIME - 1}")
    out = arr.astype(np.int64)
    if out.shape[-1] > 1:
        srt = np.sort(out, axis=-1)
        if np.any(srt[..., 1:] == srt[..., :-1]):
            raise InvalidArgument("evaluation points must be distinct")
    return out


def _check_field(arr: object, name: str) -> Field:
    """An integer array of field elements; out-of-range elements are an IntegrityError."""
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
        raise InvalidArgument(f"{name} must be an integer numpy array")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= PRIME):
        raise IntegrityError(f"{name} contain elements outside the field [0, {PRIME})")
    return arr.astype(np.int64, copy=False)


# ------------------------------------------------------------------------ field helpers


def _prod_last(a: Field) -> Field:
    """Product mod p along the last axis, by pairwise halving (O(log n) numpy calls)."""
    while a.shape[-1] > 1:
        h = a.shape[-1] // 2
        head = a[..., :h] * a[..., h : 2 * h]
        head %= _P
        if a.shape[-1] % 2:
            head = np.concatenate([head, a[..., 2 * h :]], axis=-1)
        a = head
    return a[..., 0]


def _inv(a: Field) -> Field:
    """Elementwise inverse mod p of nonzero elements (Fermat: a^(p-2))."""
    result = np.ones_like(a)
    base = a % _P
    e = PRIME - 2
    while e:
        if e & 1:
            result *= base
            result %= _P
        e >>= 1
        if e:
            base *= base
            base %= _P
    return result


def _matmul_mod(a: Field, b: Field) -> Field:
    """``a @ b mod p`` for reduced operands with inner dimension <= MAX_THRESHOLD, exactly.

    Runs on float64 BLAS: ``b`` is split as ``b_hi * 2^12 + b_lo`` with ``b_lo < 2^12`` and
    ``b_hi <= 2^12``, so every product is below ``p * 2^12 < 2^36.01`` and every partial sum
    of at most ``MAX_THRESHOLD < 2^15`` products is an integer below ``2^51.01 < 2^53``,
    exactly representable whatever order BLAS adds in.
    """
    af = a.astype(np.float64)
    lo = af @ (b & _LO_MASK).astype(np.float64)
    hi = af @ (b >> _SPLIT).astype(np.float64)
    out = hi.astype(np.int64)
    out %= _P
    out <<= _SPLIT
    out += lo.astype(np.int64)
    out %= _P
    return out


def _powers(xs: Field, t: int) -> Field:
    """Transposed Vandermonde matrix: row ``j`` is ``xs^j mod p``, shape ``(t, len(xs))``.

    Built by doubling (O(log t) numpy calls on contiguous rows).
    """
    v = np.empty((t, xs.size), dtype=np.int64)
    v[0] = 1
    filled = 1
    step = xs.copy()  # xs^filled
    while filled < t:
        k = min(filled, t - filled)
        block = v[filled : filled + k]
        np.multiply(v[:k], step[None, :], out=block)
        block %= _P
        filled += k
        if filled < t:
            step = step * step % _P
    return v


def _row_hash(x: Field) -> npt.NDArray[np.uint64]:
    """A 64-bit hash per row: sum of x_j times odd per-column constants, mod 2^64."""
    mult = np.arange(1, x.shape[1] + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    mult |= np.uint64(1)
    h: npt.NDArray[np.uint64] = (x.view(np.uint64) * mult).sum(axis=1, dtype=np.uint64)
    return h  # the products and the sum wrap mod 2^64


def _unique_rows(x: Field) -> tuple[Field, npt.NDArray[np.intp]]:
    """Distinct rows of ``x`` and, per row, the index of its distinct row.

    Groups rows by a 64-bit multiplicative hash (much faster than ``np.unique(axis=0)``),
    then checks every row against its group's representative; on a hash collision it
    falls back to the exact (slow) ``np.unique``.
    """
    _, first, inverse = np.unique(_row_hash(x), return_index=True, return_inverse=True)
    uniq = x[first]
    inverse = inverse.reshape(-1)
    if not np.array_equal(uniq[inverse], x):
        uniq, inverse = np.unique(x, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    return uniq, inverse


# ------------------------------------------------------------------- secret encoding


def _secrets_to_field(secrets: Sequence[bytes] | npt.NDArray[np.uint8]) -> Field:
    if isinstance(secrets, bytes | bytearray | memoryview | str):
        raise InvalidArgument("secrets must be a sequence of 32-byte secrets, not one bytes")
    if isinstance(secrets, np.ndarray):
        if secrets.dtype != np.uint8 or secrets.ndim != 2 or secrets.shape[1] != SECRET_BYTES:
            raise InvalidArgument(
                f"a secrets array must be uint8 of shape (m, {SECRET_BYTES}), "
                f"got {secrets.dtype} {secrets.shape}"
            )
        raw = secrets
    else:
        items = list(secrets)
        for i, s in enumerate(items):
            if not isinstance(s, bytes | bytearray) or len(s) != SECRET_BYTES:
                raise InvalidArgument(f"secret {i} must be {SECRET_BYTES} bytes")
        raw = np.frombuffer(b"".join(items), dtype=np.uint8).reshape(len(items), SECRET_BYTES)
    m = raw.shape[0]
    padded = np.zeros((m, CHUNKS * 3), dtype=np.int64)
    padded[:, :SECRET_BYTES] = raw
    tri = padded.reshape(m, CHUNKS, 3)
    return tri[..., 0] | (tri[..., 1] << 8) | (tri[..., 2] << 16)


def _field_to_secrets(field: Field) -> npt.NDArray[np.uint8]:
    """(m, CHUNKS) field elements -> (m, 32) uint8; IntegrityError if not an encoding."""
    m = field.shape[0]
    if np.any(field >= 1 << CHUNK_BITS) or np.any(field[:, -1] >= 1 << 16):
        raise IntegrityError(
            "reconstructed value is not a valid secret encoding: the shares are inconsistent "
            "(corrupted, from different sharings, or fewer than the real threshold)"
        )
    out = np.empty((m, CHUNKS, 3), dtype=np.uint8)
    out[..., 0] = field & 0xFF
    out[..., 1] = (field >> 8) & 0xFF
    out[..., 2] = field >> 16
    return np.ascontiguousarray(out.reshape(m, CHUNKS * 3)[:, :SECRET_BYTES])


# ------------------------------------------------------------------------------- API


def share(
    secrets: Sequence[bytes] | npt.NDArray[np.uint8],
    *,
    threshold: int,
    xs: npt.ArrayLike,
    rng: Csprng,
) -> Field:
    """Split each 32-byte secret into ``len(xs)`` shares, any ``threshold`` of which recover it.

    ``secrets`` is a sequence of 32-byte strings or a uint8 array of shape (m, 32); ``xs``
    are the holders' distinct evaluation points in ``[1, p - 1]`` (e.g. ``1..n``). Returns
    int64 field elements of shape ``(len(xs), m, CHUNKS)``: row ``i`` is holder ``i``'s
    share of every secret (serialize it with :func:`shares_to_bytes`).
    """
    t = _check_threshold(threshold)
    x = _check_xs(xs, ndim=1)
    n = x.size
    if n < t:
        raise InvalidArgument(f"need at least threshold={t} evaluation points, got {n}")
    field = _secrets_to_field(secrets)
    m = field.shape[0]
    width = m * CHUNKS
    coeffs = np.empty((t, width), dtype=np.int64)
    coeffs[0] = field.reshape(-1)
    if t > 1:
        draw = rng.integers_below(PRIME, (t - 1) * width)
        coeffs[1:] = draw.view(np.int64).reshape(t - 1, width)
    out = np.empty((n, width), dtype=np.int64)
    rows = max(1, _BLOCK // t)
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        out[lo:hi] = _matmul_mod(_powers(x[lo:hi], t).T, coeffs)
    return out.reshape(n, m, CHUNKS)


def lagrange_at_zero(xs: npt.ArrayLike) -> Field:
    """Lagrange coefficients that interpolate at 0 from exactly the points ``xs``.

    ``xs`` has shape ``(..., t)`` (one holder set per row, distinct points in
    ``[1, p - 1]``, ``t <= MAX_THRESHOLD``); the result has the same shape, with
    ``lambda_j = prod_{k != j} x_k / (x_k - x_j) mod p``, so that
    ``secret = sum_j lambda_j * share_j mod p``.
    """
    arr = np.asarray(xs)
    if arr.ndim < 1:
        raise InvalidArgument("evaluation points must be at least 1-D")
    x = _check_xs(arr, ndim=arr.ndim)
    shape = x.shape
    t = shape[-1]
    if not 1 <= t <= MAX_THRESHOLD:
        raise InvalidArgument(f"need 1..{MAX_THRESHOLD} evaluation points, got {t}")
    x2 = x.reshape(-1, t)
    b = x2.shape[0]
    numer = _prod_last(x2)  # prod_k x_k, shape (b,)
    denom = np.empty_like(x2)  # prod_{k != j} (x_k - x_j), shape (b, t)
    cols = max(1, _BLOCK // max(1, b * t))
    for j0 in range(0, t, cols):
        j1 = min(t, j0 + cols)
        # x_k - x_j + p, in [1, 2p): products of two such stay below 2^51 (exact), and
        # _prod_last reduces after every multiplication.
        diff = x2[:, None, :] - x2[:, j0:j1, None]
        diff += _P
        idx = np.arange(j1 - j0)
        diff[:, idx, j0 + idx] = 1
        denom[:, j0:j1] = _prod_last(diff)
    denom *= x2
    denom %= _P
    lam = _inv(denom)
    lam *= numer[:, None]
    lam %= _P
    return lam.reshape(shape)


def reconstruct(shares: Field, xs: npt.ArrayLike, *, threshold: int) -> list[bytes]:
    """Recover every secret from the shares of one holder set.

    ``shares`` has shape ``(t', m, CHUNKS)`` (row ``i`` held by the holder at ``xs[i]``),
    ``t' >= threshold``; the first ``threshold`` rows are used. Raises
    :class:`InvalidArgument` for too few shares, duplicate points or a bad shape, and
    :class:`IntegrityError` for elements outside the field or an inconsistent result.
    """
    t = _check_threshold(threshold)
    x = _check_xs(xs, ndim=1)
    s = _check_field(shares, "shares")
    if s.ndim != 3 or s.shape[2] != CHUNKS or s.shape[0] != x.size:
        raise InvalidArgument(
            f"shares must have shape (len(xs), m, {CHUNKS}) = ({x.size}, m, {CHUNKS}), "
            f"got {s.shape}"
        )
    if x.size < t:
        raise InvalidArgument(f"need at least threshold={t} shares, got {x.size}")
    m = s.shape[1]
    lam = lagrange_at_zero(x[:t])
    field = _matmul_mod(lam[None, :], s[:t].reshape(t, m * CHUNKS))
    secrets = _field_to_secrets(field.reshape(m, CHUNKS))
    return [row.tobytes() for row in secrets]


def reconstruct_many(shares: Field, xs: npt.ArrayLike, *, threshold: int) -> npt.NDArray[np.uint8]:
    """Recover ``m`` secrets, each from its own holder set, in one vectorized pass.

    ``shares`` has shape ``(m, t', CHUNKS)`` and ``xs`` shape ``(m, t')``: secret ``i``'s
    shares and the points of the holders they came from; the first ``threshold`` of each
    row are used. Lagrange coefficients are computed once per distinct holder set.
    Returns a uint8 array of shape ``(m, 32)``. Errors as for :func:`reconstruct`.
    """
    t = _check_threshold(threshold)
    x = _check_xs(xs, ndim=2)
    s = _check_field(shares, "shares")
    if s.ndim != 3 or s.shape[2] != CHUNKS or s.shape[:2] != x.shape:
        raise InvalidArgument(
            f"shares must have shape (*xs.shape, {CHUNKS}) = (*{x.shape}, {CHUNKS}), got {s.shape}"
        )
    m = x.shape[0]
    if x.shape[1] < t:
        raise InvalidArgument(f"need at least threshold={t} shares per secret, got {x.shape[1]}")
    if m == 0:
        return np.empty((0, SECRET_BYTES), dtype=np.uint8)
    x = x[:, :t]
    uniq, inverse = _unique_rows(x)
    lam = lagrange_at_zero(uniq)[inverse]  # (m, t)
    # Exact: t terms, each below (p-1)^2, and t <= MAX_THRESHOLD.
    field = np.matmul(lam[:, None, :], s[:, :t, :])[:, 0, :]
    field %= _P
    return _field_to_secrets(field)


def _one_secret(shares: Field, xs: npt.ArrayLike, threshold: int) -> tuple[int, Field, Field]:
    """Checked (t, points, shares) of one secret: shares of shape (m >= t, CHUNKS)."""
    t = _check_threshold(threshold)
    x = _check_xs(xs, ndim=1)
    y = _check_field(shares, "shares")
    if y.shape != (x.size, CHUNKS) or x.size < t:
        raise InvalidArgument(f"need shares of shape (m >= {t}, {CHUNKS}), got {y.shape}")
    return t, x, y


def barycentric(xs: npt.ArrayLike) -> Field:
    """``v_i = 1 / prod_{j != i} (x_i - x_j) mod p`` for distinct points ``xs`` (O(m^2)).
    For the same points less one, x_u: ``v_i * (x_i - x_u)`` (what :func:`consistent`
    takes as ``weights``, so many holder sets that differ by one point cost O(m) each)."""
    x = _check_xs(xs, ndim=1)
    m = x.size
    diff = x[:, None] - x[None, :] + _P
    diff[np.arange(m), np.arange(m)] = 1
    return _inv(_prod_last(diff % _P))


def consistent(
    shares: Field, xs: npt.ArrayLike, *, threshold: int, weights: Field | None = None
) -> bool:
    """Whether all ``m`` shares (shape ``(m, CHUNKS)``, at the distinct points ``xs``) lie
    on one polynomial of degree < ``threshold`` in every chunk: the Reed-Solomon parity
    check ``sum_i v_i x_i^k y_i = 0`` for ``k < m - t`` with ``v = barycentric(xs)`` (the
    dual of the code is generalized Reed-Solomon), or ``weights`` if the caller has them.
    With ``m = t``: ``True``."""
    t, x, y = _one_secret(shares, xs, threshold)
    m = x.size
    if m == t:
        return True
    v = barycentric(x) if weights is None else weights
    parity = _powers(x, m - t) * v[None, :] % _P  # (m - t, m)
    return not _matmul_mod(parity, y).any()


def decode(shares: Field, xs: npt.ArrayLike, *, threshold: int) -> tuple[bytes, list[int]]:
    """The secret of ``m >= t`` shares (shape ``(m, CHUNKS)``, at the distinct points
    ``xs``) of which up to ``(m - t) // 2`` may be wrong, and the indices of the wrong ones
    (Reed-Solomon decoding, Berlekamp-Welch, chunk by chunk). Raises
    :class:`IntegrityError` when no polynomial of degree < t agrees with all but
    ``(m - t) // 2`` shares in every chunk (too many wrong shares to decode)."""
    t, x, y = _one_secret(shares, xs, threshold)
    m = x.size
    wrong: set[int] = set()
    secret = np.empty(CHUNKS, dtype=np.int64)
    for c in range(CHUNKS):
        poly = _berlekamp_welch([int(v) for v in x], [int(v) for v in y[:, c]], t)
        values = [_horner(poly, int(xi)) for xi in x]
        wrong |= {i for i in range(m) if values[i] != int(y[i, c])}
        secret[c] = poly[0]
    return bytes(_field_to_secrets(secret[None, :])[0]), sorted(wrong)


def _horner(poly: list[int], x: int) -> int:
    acc = 0
    for coef in reversed(poly):
        acc = (acc * x + coef) % PRIME
    return acc


def _berlekamp_welch(xs: list[int], ys: list[int], t: int) -> list[int]:
    """The polynomial of degree < t (coefficients, low first) through all but at most
    e = (m - t) // 2 of the points: solve Q(x_i) = y_i E(x_i), E monic of degree e and
    Q of degree < e + t, then P = Q / E, which must divide exactly and miss <= e points."""
    m = len(xs)
    e = (m - t) // 2
    x = np.array(xs, dtype=np.int64)
    y = np.array(ys, dtype=np.int64)
    powers = _powers(x, e + t + 1).T  # (m, e + t + 1): x_i^j
    system = np.concatenate(
        [powers[:, : e + t], (-y[:, None] * powers[:, :e]) % _P, (y * powers[:, e] % _P)[:, None]],
        axis=1,
    )
    solution = _solve_mod(system)
    if solution is None:
        raise IntegrityError(f"shares disagree in more than {e} places: cannot decode")
    q, err = solution[: e + t], [*solution[e + t :], 1]
    poly = _divide(q, err)  # degree < t by construction
    # The one check that matters: a polynomial of degree < t within e of the shares is
    # the only one (two would agree on >= m - 2e >= t points), whatever Q / E left over.
    if sum(_horner(poly, xi) != yi for xi, yi in zip(xs, ys, strict=True)) > e:
        raise IntegrityError(f"shares disagree in more than {e} places: cannot decode")
    return poly


def _solve_mod(a: Field) -> list[int] | None:
    """A solution of the augmented system ``a`` (last column: right-hand side) mod p,
    free unknowns 0; None if it has none. Gauss-Jordan on int64 rows (products < 2^50)."""
    a = a.copy()
    rows, unknowns = a.shape[0], a.shape[1] - 1
    pivots: list[int] = []
    r = 0
    for col in range(unknowns):
        nonzero = np.flatnonzero(a[r:, col])
        if nonzero.size == 0:
            continue
        pick = r + int(nonzero[0])
        a[[r, pick]] = a[[pick, r]]
        a[r] = a[r] * pow(int(a[r, col]), PRIME - 2, PRIME) % _P
        factors = a[:, col].copy()
        factors[r] = 0
        a -= factors[:, None] * a[r][None, :] % _P
        a %= _P
        pivots.append(col)
        r += 1
        if r == rows:
            break
    if a[r:, -1].any():
        return None  # inconsistent
    out = [0] * unknowns
    for i, col in enumerate(pivots):
        out[col] = int(a[i, -1])
    return out


def _divide(num: list[int], den: list[int]) -> list[int]:
    """The quotient of polynomial division mod p (coefficients low first; ``den`` monic,
    ``len(num) >= len(den)``)."""
    num = num[:]
    quot = [0] * (len(num) - len(den) + 1)
    for k in range(len(num) - len(den), -1, -1):
        coef = num[k + len(den) - 1]
        quot[k] = coef
        for j, d in enumerate(den):
            num[k + j] = (num[k + j] - coef * d) % PRIME
    return quot


def shares_to_bytes(shares: Field) -> bytes:
    """Serialize field elements of shape ``(..., CHUNKS)`` as little-endian uint32.

    One holder's row from :func:`share` (shape ``(m, CHUNKS)``) becomes
    ``m * SHARE_BYTES`` bytes.
    """
    if not isinstance(shares, np.ndarray) or shares.dtype.kind not in "iu":
        raise InvalidArgument("shares must be an integer numpy array")
    if shares.ndim < 1 or shares.shape[-1] != CHUNKS:
        raise InvalidArgument(f"shares must have last dimension {CHUNKS}, got {shares.shape}")
    if shares.size and (int(shares.min()) < 0 or int(shares.max()) >= PRIME):
        raise InvalidArgument(f"shares contain elements outside the field [0, {PRIME})")
    return np.ascontiguousarray(shares, dtype="<u4").tobytes()


def shares_from_bytes(data: bytes, count: int) -> Field:
    """Parse ``count`` shares (one per secret) from ``count * SHARE_BYTES`` bytes.

    Returns int64 of shape ``(count, CHUNKS)``. Raises :class:`IntegrityError` for a wrong
    length or any element ``>= p``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument(f"data must be bytes, got {type(data).__name__}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgument(f"count must be an int >= 0, got {count!r}")
    if len(data) != count * SHARE_BYTES:
        raise IntegrityError(
            f"expected {count} shares of {SHARE_BYTES} bytes = {count * SHARE_BYTES} bytes, "
            f"got {len(data)}"
        )
    elems = np.frombuffer(data, dtype="<u4").reshape(count, CHUNKS)
    if elems.size and int(elems.max()) >= PRIME:
        raise IntegrityError(f"share element outside the field [0, {PRIME})")
    return elems.astype(np.int64)
