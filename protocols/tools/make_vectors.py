#!/usr/bin/env python3
"""Generate the known-answer vectors in ``protocols/vectors/`` (encoding, wire, PRG).

Usage::

    .venv/bin/python protocols/tools/make_vectors.py           # (re)write the JSON files
    .venv/bin/python protocols/tools/make_vectors.py --check   # regenerate in memory, diff

Every expected value is computed twice: once by an *independent reference* written here
from the specifications (exact rational arithmetic with :class:`fractions.Fraction`, Python
integers, ``int.to_bytes`` instead of ``struct``, and AES-CTR rebuilt from raw AES-ECB
blocks of ``cryptography`` rather than its CTR mode), and once by the ``secfl`` library.
If the two disagree, or an error case does not raise the named exception, the script stops
with a message and exit status 2 and writes nothing.

``--check`` exits 1 if a committed file differs from what the generator produces now (a
vector never changes meaning: a new behaviour gets a new spec version and new files).

The reference implementation deliberately shares no code with ``secfl``: it is what the
specs ``encoding-v1.md``, ``wire-v1.md``, ``prg-v1.md`` and ``plaintext-v1.md`` say.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import vectorio  # sibling module in protocols/tools/
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secfl import errors, wire
from secfl.encoding import FixedPointCodec, Norm, Rounding, plan_codec
from secfl.hazmat import prg
from secfl.hazmat.rng import Csprng
from secfl.protocols.base import sum_vectors
from secfl.protocols.plaintext import PlaintextProtocol

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "protocols" / "vectors"
GENERATOR = "protocols/tools/make_vectors.py"

Json = dict[str, Any]


class MismatchError(Exception):
    """The library and the independent reference disagree (or the reference cannot model
    a case): the vectors would be wrong, so nothing is written."""


def _agree(what: str, lib: object, ref: object) -> None:
    if lib != ref:
        raise MismatchError(f"{what}: library gives {lib!r}, reference gives {ref!r}")


def _raises(what: str, error: str, fn: Callable[[], object]) -> None:
    """Check that ``fn`` raises exactly the secfl exception class named ``error``."""
    cls = getattr(errors, error)
    try:
        fn()
    except cls:
        return
    except Exception as e:
        raise MismatchError(f"{what}: expected {error}, got {type(e).__name__}: {e}") from e
    raise MismatchError(f"{what}: expected {error}, nothing was raised")


def _det_unit(label: str, i: int) -> Fraction:
    """A deterministic pseudo-random rational in [0, 1) (SHA-256 based, version-stable)."""
    h = hashlib.sha256(f"secfl-kat:{label}:{i}".encode()).digest()
    return Fraction(int.from_bytes(h[:8], "big") >> 11, 1 << 53)


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"secfl-kat-seed:{label}".encode()).digest()


# --------------------------------------------------------------------------------------
# Reference AES-CTR keystream and PRG (prg-v1.md), built from single AES blocks.
# --------------------------------------------------------------------------------------


def ref_keystream(key: bytes, label: bytes, nbytes: int) -> bytes:
    """AES-256 of counter blocks N, N+1, ... (128-bit big-endian), N = label || zeros."""
    assert len(key) == 32
    assert len(label) <= 12
    start = int.from_bytes(label + bytes(16 - len(label)), "big")
    nblocks = -(-nbytes // 16)
    blocks = b"".join(((start + i) % (1 << 128)).to_bytes(16, "big") for i in range(nblocks))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # CTR by hand, below
    return (ecb.update(blocks) + ecb.finalize())[:nbytes]


def ref_storage_width(bits: int) -> int:
    """Bytes of keystream per PRG entry: the smallest of 1, 2, 4, 8 holding ``bits``."""
    return next(w for w in (1, 2, 4, 8) if 8 * w >= bits)


def ref_expand_uniform(seed: bytes, label: bytes, count: int, bits: int) -> list[int]:
    w = ref_storage_width(bits)
    ks = ref_keystream(seed, label, count * w)
    mask = (1 << bits) - 1
    return [int.from_bytes(ks[i * w : (i + 1) * w], "little") & mask for i in range(count)]


CSPRNG_SMALL = 64  # prg-v1.md section 4: byte requests up to this size use the pool
CSPRNG_POOL = 4096


class RefCsprng:
    """The Csprng of prg-v1.md section 4: bulk draws from label "draw" then rekey from
    "rekey"; small byte requests from a pool refilled (with the key) from label "pool"."""

    def __init__(self, seed: bytes) -> None:
        self.key = seed
        self.pool = b""

    def draw(self, nbytes: int) -> bytes:
        out = ref_keystream(self.key, b"draw", nbytes)
        self.key = ref_keystream(self.key, b"rekey", 32)
        return out

    def bytes(self, n: int) -> bytes:
        if n > CSPRNG_SMALL:
            return self.draw(n)
        if len(self.pool) < n:  # refill; unserved pool bytes are discarded
            fresh = ref_keystream(self.key, b"pool", 32 + CSPRNG_POOL)
            self.key, self.pool = fresh[:32], fresh[32:]
        out, self.pool = self.pool[:n], self.pool[n:]
        return out

    def uint64(self, size: int) -> list[int]:
        raw = self.draw(8 * size)
        return [int.from_bytes(raw[8 * i : 8 * i + 8], "little") for i in range(size)]

    def uniform(self, size: int) -> list[Fraction]:
        return [Fraction(w >> 11, 1 << 53) for w in self.uint64(size)]

    def integers_below(self, bound: int, size: int) -> list[int]:
        limit = ((1 << 64) // bound) * bound - 1
        out: list[int] = []
        while len(out) < size:
            need = size - len(out)
            draws = self.uint64(need + need // 8 + 8)
            out += [w % bound for w in draws if w <= limit][:need]
        return out


# --------------------------------------------------------------------------------------
# Reference fixed-point codec and planner (encoding-v1.md), in exact rationals.
# --------------------------------------------------------------------------------------

# (significand bits, smallest normal exponent) of IEEE 754 binary32 / binary64
FORMATS = {"float32": (24, -126), "float64": (53, -1022)}


def ref_round_to_format(v: Fraction, fmt: str) -> Fraction:
    """Round ``v`` to the nearest ``fmt`` value, ties to even (normal range only)."""
    if v == 0:
        return v
    p, emin = FORMATS[fmt]
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < Fraction(2) ** e:
        e -= 1
    if e < emin:
        raise MismatchError(f"{v} is subnormal in {fmt}; the reference does not model it")
    ulp = Fraction(2) ** (e - p + 1)
    return (1 if v > 0 else -1) * round(a / ulp) * ulp


def ref_quantize(
    xs: Sequence[float], *, fmt: str, scale_bits: int, rounding: str, rng: RefCsprng | None
) -> list[int]:
    """round(x * 2^s) per encoding-v1.md section 4, after the caller's range check."""
    scale = Fraction(2) ** scale_bits
    ys = [Fraction(x) * scale for x in xs]
    for y in ys:  # the scaled product is exact in the input format
        if ref_round_to_format(y, fmt) != y:
            raise MismatchError(f"x * 2^{scale_bits} = {y} is not exact in {fmt}")
    if rounding == "nearest":
        return [round(y) for y in ys]  # Fraction rounding is half-to-even
    assert rounding == "stochastic"
    assert rng is not None
    us = rng.uniform(len(ys))  # one draw for the whole vector, in order
    out = []
    for y, u in zip(ys, us, strict=True):
        f = math.floor(y)
        frac = ref_round_to_format(y - f, fmt)  # fl(y - floor(y)) in the input format
        out.append(f + (1 if u < frac else 0))
    return out


def ref_centred(s: int, bits: int) -> int:
    return s - (1 << bits) if s >= 1 << (bits - 1) else s


def ref_decode(s: int, bits: int, scale_bits: int) -> float:
    return float(Fraction(ref_centred(s, bits)) * Fraction(2) ** -scale_bits)


def ref_required_bits(n: int, clip: float, scale_bits: int) -> int:
    per_client = math.floor(Fraction(clip) * Fraction(2) ** scale_bits) + 1
    return max(8, (n * per_client).bit_length() + 1)


def ref_plan(n: int, clip: float, precision: float | None, bits: int | None) -> tuple[int, int]:
    """(bits, scale_bits) per encoding-v1.md section 7; ValueError when nothing fits."""
    if precision is not None:
        s = -52
        while Fraction(2) ** -s > Fraction(precision):
            s += 1
        if s > 52:
            raise ValueError("precision too fine")
        need = ref_required_bits(n, clip, s)
        if bits is None:
            if need > 64:
                raise ValueError("needs more than 64 bits")
            return need, s
        if need > bits:
            raise ValueError("does not fit the given bits")
        return bits, s
    assert bits is not None
    for s in range(52, -53, -1):
        if ref_required_bits(n, clip, s) <= bits:
            return bits, s
    raise ValueError("no scale fits")


# --------------------------------------------------------------------------------------
# encoding.json
# --------------------------------------------------------------------------------------


def _enc_float(v: float) -> float | str:
    """JSON has no NaN/inf: those travel as the strings "nan", "inf", "-inf"."""
    return v if math.isfinite(v) else repr(v)


def _codec_case(
    name: str,
    *,
    bits: int,
    scale_bits: int,
    max_abs: float,
    n_clients: int,
    rounding: str,
    dtype: str,
    clients: list[list[float]],
) -> Json:
    lib_codec = FixedPointCodec(
        bits=bits, scale_bits=scale_bits, max_abs=max_abs, n_clients=n_clients
    )
    assert len(clients) <= n_clients
    _agree(f"{name}: planned bits", ref_required_bits(n_clients, max_abs, scale_bits) <= bits, True)
    m = 1 << bits
    out_clients = []
    lib_encoded = []
    for i, xs in enumerate(clients):
        xs = [float(np.dtype(dtype).type(x)) for x in xs]  # exactly representable in dtype
        assert all(abs(x) <= max_abs for x in xs)
        seed = _seed(f"{name}:client{i}") if rounding == "stochastic" else None
        q = ref_quantize(
            xs,
            fmt=dtype,
            scale_bits=scale_bits,
            rounding=rounding,
            rng=RefCsprng(seed) if seed else None,
        )
        enc = [v % m for v in q]
        lib = lib_codec.encode(
            np.array(xs, dtype=dtype),
            rounding=Rounding(rounding),
            rng=Csprng(seed=seed) if seed else None,
        )
        _agree(f"{name}: client {i} encoding", [int(v) for v in lib], enc)
        _agree(f"{name}: client {i} dtype", lib.dtype, prg.uint_dtype(bits))
        dec = [ref_decode(v, bits, scale_bits) for v in enc]
        _agree(f"{name}: client {i} decoding", [float(v) for v in lib_codec.decode(lib)], dec)
        lib_encoded.append(lib)
        client: Json = {"inputs": xs, "quantized": q, "encoded": enc, "decoded": dec}
        if seed:
            client["csprng_seed_hex"] = seed.hex()
        out_clients.append(client)
    dim = len(clients[0])
    sums = [sum(c["encoded"][j] for c in out_clients) % m for j in range(dim)]
    lib_sum = sum_vectors(dict(enumerate(lib_encoded)), bits=bits, dim=dim)
    _agree(f"{name}: sum", [int(v) for v in lib_sum], sums)
    centred = [ref_centred(v, bits) for v in sums]
    _agree(f"{name}: centred sum", [int(v) for v in lib_codec.centred(lib_sum)], centred)
    # No wrap: the centred sum equals the plain integer sum of the quantized values.
    exact = [sum(c["quantized"][j] for c in out_clients) for j in range(dim)]
    _agree(f"{name}: sum did not wrap", centred, exact)
    decoded = [ref_decode(v, bits, scale_bits) for v in sums]
    _agree(f"{name}: decoded sum", [float(v) for v in lib_codec.decode(lib_sum)], decoded)
    return {
        "name": name,
        "bits": bits,
        "scale_bits": scale_bits,
        "max_abs": max_abs,
        "n_clients": n_clients,
        "rounding": rounding,
        "dtype": dtype,
        "clients": out_clients,
        "sum": sums,
        "sum_centred": centred,
        "sum_decoded": decoded,
    }


def _inputs(label: str, count: int, bound: float) -> list[float]:
    """Deterministic inputs in [-bound, bound) rounded to float64."""
    return [float((2 * _det_unit(label, i) - 1) * Fraction(bound)) for i in range(count)]


def encoding_vectors() -> Json:
    cases = []
    # Headroom at the boundary: 2 * (floor(62.5) + 1) = 126 < 2^7 = 128 fits 8 bits.
    ties = [62.5, -62.5, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.0, 61.75]
    for rounding in ("nearest", "stochastic"):
        cases.append(
            _codec_case(
                f"k8-s0-boundary-{rounding}",
                bits=8,
                scale_bits=0,
                max_abs=62.5,
                n_clients=2,
                rounding=rounding,
                dtype="float64",
                clients=[ties, [62.5, -62.5, 62.25, -62.25, 0.75, -0.75, 3.5, 4.5, -0.0, -61.75]],
            )
        )
    small = [0.1, -0.1, 0.5, -0.5, 1.0, -1.0, 0.25, -0.75, 0.001, -0.999, 1 / 3, -2 / 3]
    for dtype in ("float64", "float32"):
        for rounding in ("nearest", "stochastic"):
            cases.append(
                _codec_case(
                    f"k16-s8-{dtype}-{rounding}",
                    bits=16,
                    scale_bits=8,
                    max_abs=1.0,
                    n_clients=4,
                    rounding=rounding,
                    dtype=dtype,
                    clients=[small, [-x for x in small], _inputs("k16", len(small), 1.0)],
                )
            )
    planned = [
        ("k20-planned", 3, 1.0, 20),
        ("k24-planned", 3, 1.0, 24),
        ("k32-planned", 1000, 1.0, 32),
        ("k40-planned", 5, 4.0, 40),
        ("k64-planned", 2, 1.0, 64),
        ("k16-negative-scale", 2, 1e6, 16),
    ]
    for name, n, clip, k in planned:
        lib_plan = plan_codec(n_clients=n, clip_bound=clip, bits=k)
        _agree(f"{name}: plan", (lib_plan.bits, lib_plan.scale_bits), ref_plan(n, clip, None, k))
        for rounding in ("nearest", "stochastic"):
            cases.append(
                _codec_case(
                    f"{name}-{rounding}",
                    bits=k,
                    scale_bits=lib_plan.scale_bits,
                    max_abs=clip,
                    n_clients=n,
                    rounding=rounding,
                    dtype="float64",
                    clients=[
                        [clip, -clip, 0.0, *_inputs(f"{name}:{c}", 7, clip)]
                        for c in range(min(n, 3))
                    ],
                )
            )

    errors_ = []

    def codec_error(name: str, error: str, *, encode: Json | None = None, **codec: Any) -> None:
        def run() -> object:
            c = FixedPointCodec(**codec)
            if encode is None:
                return c
            arr = np.array([float(v) for v in encode["inputs"]], dtype=encode["dtype"])
            rng = Csprng(seed=bytes(32)) if encode["rounding"] == "stochastic" else None
            return c.encode(arr, rounding=Rounding(encode["rounding"]), rng=rng)

        _raises(name, error, run)
        case: Json = {"name": name, "codec": codec, "error": error}
        if encode is not None:
            case["encode"] = {**encode, "inputs": [_enc_float(float(v)) for v in encode["inputs"]]}
        errors_.append(case)

    boundary: Json = {"bits": 8, "scale_bits": 0, "max_abs": 62.5}
    # One more client than the boundary case: 3 * 63 = 189 >= 128.
    codec_error("construct-one-client-too-many", "EncodingOverflow", n_clients=3, **boundary)
    _agree("one client too many", ref_required_bits(3, 62.5, 0), 9)
    codec_error(
        "construct-bits-below-8", "InvalidArgument", bits=7, scale_bits=0, max_abs=1.0, n_clients=1
    )
    codec_error(
        "construct-bits-above-64",
        "InvalidArgument",
        bits=65,
        scale_bits=0,
        max_abs=1.0,
        n_clients=1,
    )
    codec_error(
        "construct-scale-bits-53",
        "InvalidArgument",
        bits=64,
        scale_bits=53,
        max_abs=1e-9,
        n_clients=1,
    )
    ok: Json = {"n_clients": 2, **boundary}
    for rounding in ("nearest", "stochastic"):
        codec_error(
            f"encode-above-max-abs-{rounding}",
            "EncodingOverflow",
            encode={"inputs": [1.0, 62.50000000000001], "dtype": "float64", "rounding": rounding},
            **ok,
        )
    codec_error(
        "encode-below-minus-max-abs",
        "EncodingOverflow",
        encode={"inputs": [-62.75], "dtype": "float32", "rounding": "nearest"},
        **ok,
    )
    for bad in (math.nan, math.inf, -math.inf):
        codec_error(
            f"encode-{bad!r}",
            "InvalidArgument",
            encode={"inputs": [0.0, bad, 1.0], "dtype": "float64", "rounding": "nearest"},
            **ok,
        )
    codec_error(
        "encode-nan-beats-overflow",
        "InvalidArgument",
        encode={"inputs": [1000.0, math.nan], "dtype": "float64", "rounding": "nearest"},
        **ok,
    )

    planner = []
    plan_inputs: list[tuple[int, float, float | None, int | None, str]] = [
        (10, 1.0, 1e-5, None, "l2"),
        (10, 1.0, 1e-5, None, "linf"),
        (1, 1.0, 2**-10, None, "l2"),
        (1000, 1.0, None, 32, "l2"),
        (1000, 1.0, 1e-6, 32, "l2"),
        (100, 0.5, 1e-4, None, "l2"),
        (2, 62.5, 1.0, None, "linf"),
        (100_000, 10.0, 1e-9, None, "l2"),
        (2, 1e6, None, 16, "l2"),
        (1, 1e30, 1e20, None, "l2"),
        (3, 1.0, None, 8, "linf"),
        (2, 1.0, None, 64, "l2"),
    ]
    for n, clip, precision, bits, norm in plan_inputs:
        lib_c = plan_codec(
            n_clients=n, clip_bound=clip, norm=Norm(norm), precision=precision, bits=bits
        )
        ref_bits, ref_s = ref_plan(n, clip, precision, bits)
        what = f"plan n={n} clip={clip} precision={precision} bits={bits}"
        _agree(what, (lib_c.bits, lib_c.scale_bits), (ref_bits, ref_s))
        planner.append(
            {
                "n_clients": n,
                "clip_bound": clip,
                "norm": norm,
                "precision": precision,
                "bits": bits,
                "expected_bits": ref_bits,
                "expected_scale_bits": ref_s,
            }
        )

    planner_errors = []
    plan_errs: list[tuple[str, int, float, float | None, int | None, str]] = [
        ("needs-more-than-64-bits", 10**6, 1e6, 1e-12, None, "EncodingOverflow"),
        ("precision-needs-more-than-given-bits", 1000, 1.0, 1e-6, 24, "EncodingOverflow"),
        ("precision-finer-than-2^-52", 1, 1.0, 1e-17, None, "EncodingOverflow"),
        ("no-scale-fits-bits", 2**62, 1e3, None, 8, "EncodingOverflow"),
        ("zero-clients", 0, 1.0, 1e-3, None, "InvalidArgument"),
        ("zero-clip-bound", 1, 0.0, 1e-3, None, "InvalidArgument"),
        ("neither-precision-nor-bits", 1, 1.0, None, None, "InvalidArgument"),
        ("zero-precision", 1, 1.0, 0.0, None, "InvalidArgument"),
        ("bits-out-of-range", 1, 1.0, None, 65, "InvalidArgument"),
    ]
    for name, n, clip, precision, bits, error in plan_errs:
        _raises(
            f"planner {name}",
            error,
            partial(plan_codec, n_clients=n, clip_bound=clip, precision=precision, bits=bits),
        )
        if error == "EncodingOverflow":  # the reference agrees that nothing fits
            try:
                ref_plan(n, clip, precision, bits)
            except ValueError:
                pass
            else:
                raise MismatchError(f"planner {name}: the reference finds a plan")
        planner_errors.append(
            {
                "name": name,
                "n_clients": n,
                "clip_bound": clip,
                "precision": precision,
                "bits": bits,
                "error": error,
            }
        )

    return {
        "spec": "protocols/encoding-v1.md",
        "generator": GENERATOR,
        "notes": (
            "Integers may exceed 2^53: parse them as arbitrary-precision integers. "
            "Non-finite floats are the strings 'nan', 'inf', '-inf'. Stochastic cases "
            "encode each client's vector with a fresh Csprng(seed=csprng_seed_hex)."
        ),
        "codec": cases,
        "codec_errors": errors_,
        "planner": planner,
        "planner_errors": planner_errors,
    }


# --------------------------------------------------------------------------------------
# wire.json
# --------------------------------------------------------------------------------------

TEST_MSG_TYPE = 0xF0  # private-use range of wire-v1.md: never sent by a conforming party


def ref_field(f: Json) -> bytes:
    t = f["type"]
    if t in ("u8", "u16", "u32", "u64"):
        return int(f["value"]).to_bytes(int(t[1:]) // 8, "big")
    if t == "raw":
        return bytes.fromhex(f["hex"])
    if t == "blob":
        b = bytes.fromhex(f["hex"])
        return len(b).to_bytes(4, "big") + b
    assert t == "vector"
    bits, values = f["bits"], f["values"]
    width = (bits + 7) // 8
    assert all(0 <= v < 1 << bits for v in values)
    return len(values).to_bytes(4, "big") + b"".join(v.to_bytes(width, "little") for v in values)


def ref_frame(msg_type: int, body: bytes) -> bytes:
    return b"SF" + bytes([1, msg_type]) + len(body).to_bytes(4, "big") + body


def lib_write(fields: Sequence[Json]) -> bytes:
    w = wire.Writer()
    for f in fields:
        t = f["type"]
        if t in ("u8", "u16", "u32", "u64"):
            getattr(w, t)(f["value"])
        elif t == "raw":
            w.raw(bytes.fromhex(f["hex"]))
        elif t == "blob":
            w.blob(bytes.fromhex(f["hex"]))
        else:
            w.vector(np.array(f["values"], dtype=prg.uint_dtype(f["bits"])), f["bits"])
    return w.getvalue()


def lib_read(body: memoryview, fields: Sequence[Json]) -> list[object]:
    r = wire.Reader(body)
    out: list[object] = []
    for f in fields:
        t = f["type"]
        if t in ("u8", "u16", "u32", "u64"):
            out.append(getattr(r, t)())
        elif t == "raw":
            out.append(r.raw(f["len"]).hex())
        elif t == "blob":
            out.append(r.blob(max_len=f.get("max_len")).hex())
        else:
            out.append([int(v) for v in r.vector(f["bits"], expected=f.get("expected"))])
    r.finish()
    return out


def _field_value(f: Json) -> object:
    if f["type"] in ("raw", "blob"):
        return f["hex"]
    return f["value"] if f["type"] != "vector" else f["values"]


def _vec_values(label: str, count: int, bits: int) -> list[int]:
    edge = [0, 1, (1 << bits) - 1, 1 << (bits - 1)] if bits > 1 else [0, 1]
    rnd = [int(_det_unit(f"{label}:{bits}", i) * (1 << 53)) % (1 << bits) for i in range(count)]
    return edge + rnd


def wire_vectors() -> Json:
    frames = []

    def add(name: str, fields: list[Json], msg_type: int = TEST_MSG_TYPE) -> None:
        body = b"".join(ref_field(f) for f in fields)
        expected = ref_frame(msg_type, body)
        lib = wire.frame(msg_type, lib_write(fields))
        _agree(f"wire {name}: frame", lib.hex(), expected.hex())
        mt, lib_body = wire.unframe(lib)
        _agree(f"wire {name}: type", mt, msg_type)
        read_spec = [
            {**f, "len": len(bytes.fromhex(f["hex"]))} if f["type"] == "raw" else f for f in fields
        ]
        _agree(
            f"wire {name}: fields", lib_read(lib_body, read_spec), [_field_value(f) for f in fields]
        )
        frames.append(
            {"name": name, "msg_type": msg_type, "fields": fields, "frame_hex": expected.hex()}
        )

    add("empty-body", [])
    add(
        "scalars-max",
        [
            {"type": "u8", "value": 255},
            {"type": "u16", "value": 65535},
            {"type": "u32", "value": 2**32 - 1},
            {"type": "u64", "value": 2**64 - 1},
        ],
    )
    add(
        "scalars-byte-order",
        [
            {"type": "u8", "value": 0x01},
            {"type": "u16", "value": 0x0203},
            {"type": "u32", "value": 0x04050607},
            {"type": "u64", "value": 0x08090A0B0C0D0E0F},
        ],
    )
    add(
        "raw-and-blobs",
        [
            {"type": "raw", "hex": "00112233445566778899aabbccddeeff"},
            {"type": "blob", "hex": ""},
            {"type": "blob", "hex": "deadbeef"},
        ],
    )
    for bits in (1, 8, 12, 16, 20, 24, 32, 33, 40, 48, 56, 63, 64):
        add(
            f"vector-k{bits}",
            [{"type": "vector", "bits": bits, "values": _vec_values("w", 4, bits)}],
        )
    add("vector-k24-empty", [{"type": "vector", "bits": 24, "values": []}])
    add(
        "mixed-k40",
        [
            {"type": "u64", "value": 7},
            {"type": "vector", "bits": 40, "values": _vec_values("mixed", 3, 40)},
            {"type": "blob", "hex": "cafe"},
            {"type": "u8", "value": 40},
        ],
    )
    add("type-0x00-is-still-framed", [{"type": "u8", "value": 0}], msg_type=0x00)

    plaintext = []
    for bits, round_id, dim in ((24, 0x0102030405060708, 5), (40, 1, 3), (32, 2**64 - 1, 4)):
        proto = PlaintextProtocol(bits=bits)
        server = proto.server(round_id=round_id, client_ids=frozenset({1, 2}), dim=dim)
        requests = server.start()
        values = _vec_values(f"plain:{bits}", max(dim - 4, 0), bits)[:dim]
        client = proto.client(
            round_id=round_id, client_id=1, value=np.array(values, dtype=prg.uint_dtype(bits))
        )
        reply = client.handle(requests[1])
        assert reply is not None
        server.receive(1, reply)
        server.advance()
        _agree("plaintext: aggregate", [int(v) for v in server.result.aggregate], values)
        ref_req = ref_frame(
            0x01, round_id.to_bytes(8, "big") + dim.to_bytes(4, "big") + bytes([bits])
        )
        vec = ref_field({"type": "vector", "bits": bits, "values": values})
        ref_in = ref_frame(0x02, round_id.to_bytes(8, "big") + vec)
        _agree(f"plaintext k{bits}: request", requests[1].hex(), ref_req.hex())
        _agree(f"plaintext k{bits}: requests identical", requests[2], requests[1])
        _agree(f"plaintext k{bits}: input", reply.hex(), ref_in.hex())
        plaintext.append(
            {
                "name": f"plaintext-k{bits}",
                "bits": bits,
                "round_id": round_id,
                "dim": dim,
                "client_id": 1,
                "values": values,
                "request_hex": ref_req.hex(),
                "input_hex": ref_in.hex(),
            }
        )

    decode_errors = []

    def derr(name: str, frame_hex: str, read: list[Json], error: str = "IntegrityError") -> None:
        def run() -> object:
            _, body = wire.unframe(bytes.fromhex(frame_hex))
            return lib_read(body, read)

        _raises(f"wire decode {name}", error, run)
        decode_errors.append({"name": name, "frame_hex": frame_hex, "read": read, "error": error})

    def fr(body_hex: str, msg_type: int = TEST_MSG_TYPE) -> str:
        return ref_frame(msg_type, bytes.fromhex(body_hex)).hex()

    derr("empty-input", "", [])
    derr("short-header", "534601f0000000", [])
    derr("bad-magic", "534701f000000000", [])
    derr("version-0", "534600f000000000", [])
    derr("version-2", "534602f000000000", [])
    derr("declared-length-exceeds-bytes", "534601f00000000501020304", [])
    derr("declared-length-below-bytes", "534601f0000000030102030405", [{"type": "u8"}])
    derr("huge-declared-length", "534601f0ffffffff00", [])
    derr("trailing-body-bytes", fr("0102"), [{"type": "u8"}])
    derr("truncated-u64", fr("01020304050607"), [{"type": "u64"}])
    derr("truncated-raw", fr("010203"), [{"type": "raw", "len": 4}])
    derr("blob-length-exceeds-body", fr("00000005aabbccdd"), [{"type": "blob"}])
    derr("blob-over-limit", fr("00000003aabbcc"), [{"type": "blob", "max_len": 2}])
    derr("vector-count-exceeds-body", fr("ffffffff000000"), [{"type": "vector", "bits": 24}])
    derr(
        "vector-count-unexpected",
        fr("00000001000000"),
        [{"type": "vector", "bits": 24, "expected": 2}],
    )
    derr("vector-non-canonical-k20", fr("00000002000000fffff0"), [{"type": "vector", "bits": 20}])
    derr("vector-non-canonical-k1", fr("0000000102"), [{"type": "vector", "bits": 1}])
    derr("vector-non-canonical-k33", fr("00000001ffffffff02"), [{"type": "vector", "bits": 33}])
    derr(
        "vector-bits-0-is-caller-error",
        fr("00000000"),
        [{"type": "vector", "bits": 0}],
        "InvalidArgument",
    )

    encode_errors = []

    def eerr(name: str, fields: list[Json], msg_type: int = TEST_MSG_TYPE) -> None:
        _raises(
            f"wire encode {name}",
            "InvalidArgument",
            lambda: wire.frame(msg_type, lib_write(fields)),
        )
        encode_errors.append(
            {"name": name, "msg_type": msg_type, "fields": fields, "error": "InvalidArgument"}
        )

    eerr("u8-256", [{"type": "u8", "value": 256}])
    eerr("u16-negative", [{"type": "u16", "value": -1}])
    eerr("u32-2^32", [{"type": "u32", "value": 2**32}])
    eerr("u64-2^64", [{"type": "u64", "value": 2**64}])
    eerr("vector-entry-2^k", [{"type": "vector", "bits": 20, "values": [1, 2**20]}])
    eerr("vector-bits-65", [{"type": "vector", "bits": 65, "values": [1]}])
    eerr("msg-type-256", [], msg_type=256)

    return {
        "spec": "protocols/wire-v1.md",
        "generator": GENERATOR,
        "notes": (
            "Integers may exceed 2^53: parse them as arbitrary-precision integers. Generic "
            "frames use the private-use message type 0xF0. For decode errors, 'read' lists "
            "the fields the receiver expects (raw: 'len'; blob: optional 'max_len'; vector: "
            "optional 'expected' count); the receiver must raise 'error'."
        ),
        "frames": frames,
        "plaintext": plaintext,
        "decode_errors": decode_errors,
        "encode_errors": encode_errors,
    }


# --------------------------------------------------------------------------------------
# prg.json
# --------------------------------------------------------------------------------------


def _le_bytes(values: Sequence[int], bits: int) -> bytes:
    w = ref_storage_width(bits)
    return b"".join(v.to_bytes(w, "little") for v in values)


def prg_vectors() -> Json:
    cases = []
    seq_seed = bytes(range(32))
    seeds = {"seq": seq_seed, "zero": bytes(32), "hash": _seed("prg")}
    specs: list[tuple[str, bytes, int, int]] = [
        ("seq", b"", 8, 8),
        ("seq", b"", 8, 1),
        ("seq", b"", 8, 12),
        ("seq", b"", 8, 16),
        ("seq", b"", 8, 20),
        ("seq", b"", 8, 24),
        ("seq", b"", 8, 32),
        ("seq", b"", 8, 40),
        ("seq", b"", 8, 63),
        ("seq", b"", 8, 64),
        ("zero", b"", 4, 64),
        ("hash", b"mask", 6, 32),
        ("hash", b"draw", 4, 64),
        ("hash", b"rekey", 4, 64),
        ("hash", b"\xff" * 12, 5, 48),  # 12-byte label: the counter's top bytes all 0xff
        ("hash", b"\x00", 0, 16),
    ]
    for seed_name, label, count, bits in specs:
        seed = seeds[seed_name]
        ref = ref_expand_uniform(seed, label, count, bits)
        lib = prg.expand_uniform(seed, count, bits, label=label)
        _agree(f"prg {seed_name}/{label!r}/{bits}", [int(v) for v in lib], ref)
        ks = ref_keystream(seed, label, 32)
        _agree("keystream", prg.keystream(seed, 32, label=label), ks)
        cases.append(
            {
                "seed_hex": seed.hex(),
                "label_hex": label.hex(),
                "count": count,
                "bits": bits,
                "values": ref,
                "keystream32_hex": ks.hex(),
            }
        )

    # Long outputs crossing the library's internal 1 MiB chunking: digest only.
    long_cases = []
    for label, count, bits in ((b"long", 300_001, 32), (b"", 140_000, 64), (b"odd", 1_100_003, 8)):
        seed = _seed(f"long:{label!r}")
        ref = ref_expand_uniform(seed, label, count, bits)
        lib = prg.expand_uniform(seed, count, bits, label=label)
        digest = hashlib.sha256(_le_bytes(ref, bits)).hexdigest()
        lib_digest = hashlib.sha256(lib.astype(lib.dtype.newbyteorder("<")).tobytes()).hexdigest()
        _agree(f"prg long {label!r}", lib_digest, digest)
        long_cases.append(
            {
                "seed_hex": seed.hex(),
                "label_hex": label.hex(),
                "count": count,
                "bits": bits,
                "first_values": ref[:4],
                "last_values": ref[-4:],
                "sha256_le_hex": digest,
            }
        )

    prg_errors = []
    for name, seed, label in (
        ("seed-31-bytes", bytes(31), b""),
        ("seed-33-bytes", bytes(33), b""),
        ("label-13-bytes", bytes(32), b"x" * 13),
    ):
        _raises(
            f"prg {name}",
            "InvalidArgument",
            partial(prg.expand_uniform, seed, 1, 8, label=label),
        )
        prg_errors.append(
            {
                "name": name,
                "seed_hex": seed.hex(),
                "label_hex": label.hex(),
                "count": 1,
                "bits": 8,
                "error": "InvalidArgument",
            }
        )
    for name, bits in (("bits-0", 0), ("bits-65", 65)):
        _raises(f"prg {name}", "InvalidArgument", partial(prg.expand_uniform, bytes(32), 1, bits))
        prg_errors.append(
            {
                "name": name,
                "seed_hex": bytes(32).hex(),
                "label_hex": "",
                "count": 1,
                "bits": bits,
                "error": "InvalidArgument",
            }
        )

    csprng_cases = []
    csprng_programs: list[tuple[str, list[Json]]] = [
        (
            "mixed",
            [
                {"op": "uint64", "size": 4},
                {"op": "uniform", "size": 3},
                {"op": "bytes", "n": 7},
                {"op": "bytes", "n": 0},
                {"op": "uint64", "size": 1},
            ],
        ),
        (
            "integers-below",
            [
                {"op": "integers_below", "bound": 10, "size": 6},
                {"op": "integers_below", "bound": 3 * 2**61, "size": 40},
                {"op": "integers_below", "bound": 2**63, "size": 2},
                {"op": "integers_below", "bound": 1, "size": 2},
            ],
        ),
        ("spawn", [{"op": "spawn_uint64", "size": 2}, {"op": "uint64", "size": 2}]),
        (
            "pool",
            [
                {"op": "bytes", "n": 16},  # first small request: fills the pool, new key
                {"op": "bytes", "n": 0},
                {"op": "bytes", "n": 65},  # bulk: "draw" stream of the pool's new key
                {"op": "uint64", "size": 2},
                {"op": "bytes", "n": 64, "repeat": 63},  # 16 + 63 * 64 = 4048 bytes used
                {"op": "bytes", "n": 49},  # 48 left < 49: refill, the 48 are discarded
                {"op": "spawn_uint64", "size": 2},  # child seed: 32 pool bytes
                {"op": "bytes", "n": 1},
                {"op": "uint64", "size": 1},
            ],
        ),
    ]
    for name, ops in csprng_programs:
        seed = _seed(f"csprng:{name}")
        ref_rng, lib_rng = RefCsprng(seed), Csprng(seed=seed)
        out_ops = []
        for op in ops:
            kind = op["op"]
            if kind == "uint64":
                exp: object = ref_rng.uint64(op["size"])
                got: object = [int(v) for v in lib_rng.uint64(op["size"])]
            elif kind == "uniform":
                fr_ = ref_rng.uniform(op["size"])
                exp = [float(u) for u in fr_]
                got = [float(u) for u in lib_rng.uniform(op["size"])]
                op = {**op, "expected_times_2^53": [int(u * (1 << 53)) for u in fr_]}
            elif kind == "bytes" and "repeat" in op:  # many calls: digest of all outputs
                ref_out = b"".join(ref_rng.bytes(op["n"]) for _ in range(op["repeat"]))
                lib_out = b"".join(lib_rng.bytes(op["n"]) for _ in range(op["repeat"]))
                exp = hashlib.sha256(ref_out).hexdigest()
                got = hashlib.sha256(lib_out).hexdigest()
            elif kind == "bytes":
                exp = ref_rng.bytes(op["n"]).hex()
                got = lib_rng.bytes(op["n"]).hex()
            elif kind == "integers_below":
                exp = ref_rng.integers_below(op["bound"], op["size"])
                got = [int(v) for v in lib_rng.integers_below(op["bound"], op["size"])]
            else:  # spawn: the child's seed is the parent's bytes(32)
                child = RefCsprng(ref_rng.bytes(32))
                exp = child.uint64(op["size"])
                got = [int(v) for v in lib_rng.spawn().uint64(op["size"])]
            _agree(f"csprng {name} {kind}", got, exp)
            out_ops.append({**op, "expected": exp})
        csprng_cases.append({"name": name, "seed_hex": seed.hex(), "ops": out_ops})

    return {
        "spec": "protocols/prg-v1.md",
        "generator": GENERATOR,
        "notes": (
            "Integers may exceed 2^53: parse them as arbitrary-precision integers. "
            "sha256_le_hex hashes the values written little-endian at the storage width "
            "(1, 2, 4 or 8 bytes) of prg-v1.md. A csprng op with 'repeat' is run that "
            "many times and 'expected' is the SHA-256 of the concatenated outputs."
        ),
        "expand_uniform": cases,
        "expand_uniform_long": long_cases,
        "errors": prg_errors,
        "csprng": csprng_cases,
    }


# --------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    return {
        "encoding.json": vectorio.render(encoding_vectors()),
        "wire.json": vectorio.render(wire_vectors()),
        "prg.json": vectorio.render(prg_vectors()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return vectorio.main(
        "make_vectors",
        VECTOR_DIR,
        generate,
        argv,
        description=(__doc__ or "").splitlines()[0],
        mismatch=MismatchError,
    )


if __name__ == "__main__":
    sys.exit(main())
