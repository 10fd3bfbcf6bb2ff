#!/usr/bin/env python3
"""Generate the Paillier known-answer vectors in ``protocols/vectors/paillier/``.

Usage::

    .venv/bin/python protocols/tools/make_paillier_vectors.py           # (re)write the files
    .venv/bin/python protocols/tools/make_paillier_vectors.py --check   # regenerate, diff

**The key in these vectors is public and insecure by design.** It is one 1024-bit ``phe``
key pair generated once (``phe.generate_paillier_keypair(n_length=1024)``) whose primes p
and q are written below and in ``key.json``; anyone can decrypt everything here. 1024 bits
keeps the vectors small and the test fast; deployments use 2048 or 3072 bits
(``secfl.hazmat.paillier.generate_keypair``).

All randomness is fixed: every encryption draws from ``Csprng(seed=...)`` with a seed that
is a SHA-256 of a label, and the files record the seeds, the obfuscator material derived
from them, and the exact ciphertext bytes. Vectors cover the packing layout planner, single
values (each ciphertext is reproduced by ``phe``'s ``raw_encrypt(m, r)`` with the recorded
r, an independent implementation), packed vectors on both obfuscator paths (direct r^n and
fixed-base h^a), two protocol rounds (every frame, its SHA-256, and the aggregate), the
headroom boundary (n_clients maximal values exactly fit a slot) and overflow cases that
must raise ``EncodingOverflow``.

Every expected value is computed twice: by the ``secfl`` library, and by an **independent
reference** written here from ``protocols/paillier-sum-v1.md`` that shares no code with
``secfl``: Python-integer packing, ``pow`` for r^n and h^a, textbook decryption with
lambda and mu (not CRT), the ``Csprng`` of ``prg-v1.md`` rebuilt from raw AES-ECB blocks,
and frames built and parsed with ``int.to_bytes`` / ``int.from_bytes``. If the two disagree
or an error case does not raise the named exception, the script stops with exit status 2
and writes nothing.

``--check`` exits 1 if a committed file differs from what the generator produces now, or
if the directory holds a file the generator no longer produces (a vector never changes
meaning: new behaviour gets a new spec version and new files).
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import phe
import vectorio  # sibling module in protocols/tools/
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secfl import errors
from secfl.hazmat import paillier as hp
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.protocols import paillier as pp
from secfl.protocols.base import KEY_HOLDER
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "protocols" / "vectors" / "paillier"
GENERATOR = "protocols/tools/make_paillier_vectors.py"
SPEC = "protocols/paillier-sum-v1.md"

Json = dict[str, Any]

# The fixed test key: PUBLIC AND INSECURE BY DESIGN (see the module docstring).
KEY_P = int(
    "b04c231b2f241b4c81b44c2bb06fb6f24cf99a26f145c9c4126fb9399da46403"
    "51017041b5823f6243d0e426c046e22cc7fb6603ced981bd6e57c89e4bafda69",
    16,
)
KEY_Q = int(
    "d8536867e29708c38a26337aed4785c187d62a962ce42079504f555f55977f20"
    "31db2a6608c3c57961f435cd5ad4bdbdd0f1b3cbe35c97b69705cbf55ce1405d",
    16,
)
KEY_N = KEY_P * KEY_Q
KEY_WARNING = (
    "TEST KEY: public and insecure by design (its factors p and q are published here). "
    "Never use it for real data."
)

DRIVER = (
    "The protocol factory is PaillierProtocol(config, key_holder=PaillierKeyHolder(config, "
    "private_key), rng=Csprng(seed="
    "protocol_seed)). server = factory.server(round_id, invited, dim); requests = "
    "server.start(). Client sessions are built for every invited id in increasing order "
    "(each factory.client() takes one spawn of the protocol Csprng, dropped clients "
    "included). In increasing id order, each request is recorded (server->client); a "
    "client not in `dropped` handles it and its reply is recorded (client->server) and "
    "given to server.receive at once. Then server.advance() returns the ENCRYPTED_SUM frame "
    "addressed to the key-holder party (recorded aggregator->key_holder); the key holder's "
    "handle() answers with the DECRYPTED_SUM frame (recorded key_holder->aggregator), given "
    "to server.receive(KEY_HOLDER, ...); a last server.advance() ends the round."
)


class MismatchError(Exception):
    """The library and the independent reference disagree: nothing is written."""


def _agree(what: str, lib: object, ref: object) -> None:
    if lib != ref:
        raise MismatchError(f"{what}: library gives {lib!r}, reference gives {ref!r}")


def _raises(what: str, error: str, fn: Callable[[], object]) -> str:
    """Check that ``fn`` raises exactly the secfl exception class named ``error``."""
    cls = getattr(errors, error)
    try:
        fn()
    except cls as e:
        return str(e)
    except Exception as e:
        raise MismatchError(f"{what}: expected {error}, got {type(e).__name__}: {e}") from e
    raise MismatchError(f"{what}: expected {error}, nothing was raised")


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"secfl-kat:paillier-sum-v1:{label}".encode()).digest()


def _det_ints(label: str, count: int, lo: int, hi: int) -> list[int]:
    """Deterministic integers in [lo, hi] (SHA-256 based), with both ends included."""
    span = hi - lo + 1
    out = []
    for i in range(count):
        h = hashlib.sha256(f"secfl-kat:paillier-values:{label}:{i}".encode()).digest()
        out.append(lo + int.from_bytes(h[:8], "big") % span)
    if count >= 2:
        out[0], out[1] = lo, hi
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------
# Independent reference (from the spec; shares no code with secfl)
# --------------------------------------------------------------------------------------


def ref_keystream(key: bytes, label: bytes, nbytes: int) -> bytes:
    """prg-v1: AES-256 of counter blocks N, N+1, ... with N = label || zeros (big-endian)."""
    start = int.from_bytes(label + bytes(16 - len(label)), "big")
    nblocks = -(-nbytes // 16)
    blocks = b"".join(((start + i) % (1 << 128)).to_bytes(16, "big") for i in range(nblocks))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # CTR by hand
    return (ecb.update(blocks) + ecb.finalize())[:nbytes]


class RefCsprng:
    """The Csprng of prg-v1 section 4 (bulk draws > 64 bytes, small ones from a pool)."""

    def __init__(self, seed: bytes) -> None:
        self.key = seed
        self.pool = b""

    def bytes(self, n: int) -> bytes:
        if n > 64:
            out = ref_keystream(self.key, b"draw", n)
            self.key = ref_keystream(self.key, b"rekey", 32)
            return out
        if len(self.pool) < n:
            fresh = ref_keystream(self.key, b"pool", 32 + 4096)
            self.key, self.pool = fresh[:32], fresh[32:]
        out, self.pool = self.pool[:n], self.pool[n:]
        return out

    def spawn(self) -> RefCsprng:
        return RefCsprng(self.bytes(32))


def ref_unit(rng: RefCsprng, n: int) -> int:
    """Spec section 6.1: a uniform unit of Z_n by rejection from little-endian draws."""
    nbytes = (n.bit_length() + 7) // 8
    mask = (1 << n.bit_length()) - 1
    while True:
        r = int.from_bytes(rng.bytes(nbytes), "little") & mask
        if 0 < r < n and math.gcd(r, n) == 1:
            return r


def ref_obfuscators(pool_rng: RefCsprng, n: int, count: int) -> tuple[list[int], Json]:
    """Spec section 6.2: the ``count`` obfuscators of one encryption, and their material."""
    nsq = n * n
    if count <= 4:
        rs = [ref_unit(pool_rng, n) for _ in range(count)]
        return [pow(r, n, nsq) for r in rs], {"path": "direct", "r_hex": [f"{r:x}" for r in rs]}
    x = ref_unit(pool_rng, n)
    h = pow(x, n, nsq)
    raw = pool_rng.bytes(32 * count)
    exps = [int.from_bytes(raw[32 * i : 32 * (i + 1)], "little") for i in range(count)]
    material = {"path": "fixed-base", "x_hex": f"{x:x}", "exponents_hex": [f"{a:x}" for a in exps]}
    return [pow(h, a, nsq) for a in exps], material


def ref_layout(modulus_bits: int, value_bits: int, n_clients: int) -> Json | None:
    """Spec section 7.1; ``None`` when no layout exists (EncodingOverflow)."""
    slot_bits = (n_clients * ((1 << value_bits) - 1)).bit_length()
    slots = (modulus_bits - 1) // slot_bits
    if slot_bits > 64 or slots < 1:
        return None
    return {
        "slot_bits": slot_bits,
        "slots_per_ciphertext": slots,
        "offset": 1 << (value_bits - 1),
        "min_value": -(1 << (value_bits - 1)),
        "max_value": (1 << (value_bits - 1)) - 1,
        "headroom_bits": slot_bits - value_bits,
    }


def ref_pack(values: Sequence[int], value_bits: int, slot_bits: int, slots: int) -> list[int]:
    """Spec section 7.2: shifted values, little-endian slots, padding slots hold the offset."""
    offset = 1 << (value_bits - 1)
    n_ct = -(-len(values) // slots)
    shifted = [v + offset for v in values] + [offset] * (n_ct * slots - len(values))
    return [
        sum(u << (i * slot_bits) for i, u in enumerate(shifted[j * slots : (j + 1) * slots]))
        for j in range(n_ct)
    ]


def ref_encrypt(plaintexts: Sequence[int], obfuscators: Sequence[int], n: int) -> list[int]:
    nsq = n * n
    return [(1 + m * n) * r % nsq for m, r in zip(plaintexts, obfuscators, strict=True)]


def ref_decrypt(c: int) -> int:
    """Textbook Paillier decryption with lambda = lcm(p-1, q-1), mu = L(g^lambda)^-1."""
    n, nsq = KEY_N, KEY_N * KEY_N
    lam = math.lcm(KEY_P - 1, KEY_Q - 1)
    mu = pow((pow(n + 1, lam, nsq) - 1) // n, -1, n)
    return (pow(c, lam, nsq) - 1) // n * mu % n


def ref_unpack_signed(
    plaintexts: Sequence[int], count: int, value_bits: int, slot_bits: int, slots: int, k: int
) -> list[int]:
    """Slots of summed plaintexts minus ``k`` offsets (padding must equal k * offset)."""
    offset = 1 << (value_bits - 1)
    mask = (1 << slot_bits) - 1
    flat = [(m >> (i * slot_bits)) & mask for m in plaintexts for i in range(slots)]
    if any(s != k * offset for s in flat[count:]):
        raise MismatchError("reference: padding slots are not k * offset")
    return [s - k * offset for s in flat[:count]]


def ref_ct_bytes(cs: Sequence[int], n: int) -> bytes:
    width = (2 * n.bit_length() + 7) // 8
    return b"".join(c.to_bytes(width, "big") for c in cs)


def ref_frame(msg_type: int, body: bytes) -> bytes:
    return b"SF" + bytes([1, msg_type]) + len(body).to_bytes(4, "big") + body


def ref_fingerprint(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).digest()[:16]


def ref_vector(values: Sequence[int], bits: int) -> bytes:
    w = (bits + 7) // 8
    return len(values).to_bytes(4, "big") + b"".join(v.to_bytes(w, "little") for v in values)


def ref_centred(u: int, bits: int) -> int:
    return u - (1 << bits) if u >= 1 << (bits - 1) else u


# --------------------------------------------------------------------------------------
# Library side
# --------------------------------------------------------------------------------------


def lib_keys() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    public = phe.PaillierPublicKey(KEY_N)
    return public, phe.PaillierPrivateKey(public, KEY_P, KEY_Q)


def key_vectors() -> Json:
    public, private = lib_keys()
    _agree("phe p <= q ordering", (int(private.p), int(private.q)), (KEY_P, KEY_Q))
    _agree("key fingerprint", pp.key_fingerprint(public).hex(), ref_fingerprint(KEY_N).hex())
    _agree("modulus bits", KEY_N.bit_length(), 1024)
    return {
        "description": "The fixed 1024-bit test key every other Paillier vector uses.",
        "warning": KEY_WARNING,
        "n_bits": KEY_N.bit_length(),
        "n_hex": f"{KEY_N:x}",
        "p_hex": f"{KEY_P:x}",
        "q_hex": f"{KEY_Q:x}",
        "g": "n + 1",
        "ciphertext_bytes": (2 * KEY_N.bit_length() + 7) // 8,
        "fingerprint_hex": ref_fingerprint(KEY_N).hex(),
    }


LAYOUTS = [  # (name, modulus_bits, value_bits, n_clients)
    ("2048-b24-n10", 2048, 24, 10),
    ("2048-b16-n100", 2048, 16, 100),
    ("2048-b29-n10", 2048, 29, 10),
    ("2048-b29-n100", 2048, 29, 100),
    ("3072-b16-n100", 3072, 16, 100),
    ("3072-b29-n100", 3072, 29, 100),
    ("1024-b8-n4-exact", 1024, 8, 4),
    ("1024-b8-n5", 1024, 8, 5),
    ("1024-b1-n3", 1024, 1, 3),
    ("1024-b16-n1", 1024, 16, 1),
    ("2048-b64-n1", 2048, 64, 1),
    ("2048-b40-n2^24", 2048, 40, 1 << 24),
]
LAYOUT_ERRORS = [  # (name, modulus_bits, value_bits, n_clients): EncodingOverflow
    ("slot-over-64-bits", 2048, 60, 100),
    ("b64-two-clients", 2048, 64, 2),
    ("slot-wider-than-modulus", 16, 24, 10),
]
EXPLICIT_ERRORS = [  # explicit PackingLayout(...) that must raise EncodingOverflow
    ("too-many-slots", 1024, 16, 4, 18, 57),
    ("slot-too-narrow", 1024, 16, 4, 17, 1),
]
COUNTS = (1, 100, 100_000)


def layout_vectors() -> Json:
    cases = []
    for name, mb, vb, n in LAYOUTS:
        ref = ref_layout(mb, vb, n)
        if ref is None:
            raise MismatchError(f"layout {name}: reference finds no layout")
        lay = hp.PackingLayout.plan(modulus_bits=mb, value_bits=vb, n_clients=n)
        lib = {
            "slot_bits": lay.slot_bits,
            "slots_per_ciphertext": lay.slots_per_ciphertext,
            "offset": lay.offset,
            "min_value": lay.min_value,
            "max_value": lay.max_value,
            "headroom_bits": lay.headroom_bits,
        }
        _agree(f"layout {name}", lib, ref)
        cts = {str(c): -(-c // ref["slots_per_ciphertext"]) for c in COUNTS}
        _agree(
            f"layout {name} ciphertexts_for",
            {str(c): lay.ciphertexts_for(c) for c in COUNTS},
            cts,
        )
        cases.append(
            {
                "name": name,
                "modulus_bits": mb,
                "value_bits": vb,
                "n_clients": n,
                "expected": ref,
                "ciphertexts_for": cts,
            }
        )
    errs = []
    for name, mb, vb, n in LAYOUT_ERRORS:
        if ref_layout(mb, vb, n) is not None:
            raise MismatchError(f"layout error {name}: the reference finds a layout")
        _raises(
            f"layout error {name}",
            "EncodingOverflow",
            partial(hp.PackingLayout.plan, modulus_bits=mb, value_bits=vb, n_clients=n),
        )
        errs.append(
            {
                "name": name,
                "modulus_bits": mb,
                "value_bits": vb,
                "n_clients": n,
                "error": "EncodingOverflow",
            }
        )
    explicit = []
    for name, mb, vb, n, sb, k in EXPLICIT_ERRORS:
        ok = sb >= (n * ((1 << vb) - 1)).bit_length() and k * sb <= mb - 1
        if ok:
            raise MismatchError(f"explicit layout {name}: the reference accepts it")
        _raises(
            f"explicit layout {name}",
            "EncodingOverflow",
            partial(
                hp.PackingLayout,
                modulus_bits=mb,
                value_bits=vb,
                n_clients=n,
                slot_bits=sb,
                slots_per_ciphertext=k,
            ),
        )
        explicit.append(
            {
                "name": name,
                "modulus_bits": mb,
                "value_bits": vb,
                "n_clients": n,
                "slot_bits": sb,
                "slots_per_ciphertext": k,
                "error": "EncodingOverflow",
            }
        )
    return {
        "description": (
            "PackingLayout.plan(modulus_bits, value_bits, n_clients): slot_bits = "
            "bit_length(n_clients * (2^value_bits - 1)), slots = floor((modulus_bits - 1) / "
            "slot_bits), offset = 2^(value_bits-1); ciphertexts_for(count) = ceil(count / "
            "slots). errors: plan() raises EncodingOverflow; explicit_errors: the "
            "PackingLayout constructor raises EncodingOverflow."
        ),
        "cases": cases,
        "errors": errs,
        "explicit_errors": explicit,
    }


SINGLES = [("zero", 0), ("one", 1), ("small", 42), ("large", (1 << 500) + 3), ("n-minus-1", -1)]


def single_vectors() -> Json:
    public, private = lib_keys()
    n, nsq = KEY_N, KEY_N * KEY_N
    cases = []
    for name, m in SINGLES:
        m = m % n
        seed = _seed(f"single:{name}")
        r = ref_unit(RefCsprng(seed), n)
        ref_c = (1 + m * n) * pow(r, n, nsq) % nsq
        lib_c = hp.encrypt_int(public, m, rng=Csprng(seed=seed))
        _agree(f"single {name}: encrypt_int", lib_c, ref_c)
        _agree(f"single {name}: phe raw_encrypt(m, r)", public.raw_encrypt(m, r_value=r), ref_c)
        _agree(f"single {name}: phe raw_decrypt", private.raw_decrypt(ref_c), m)
        _agree(f"single {name}: decrypt_int", hp.decrypt_int(private, ref_c), m)
        _agree(f"single {name}: textbook decrypt", ref_decrypt(ref_c), m)
        cases.append(
            {
                "name": name,
                "seed_hex": seed.hex(),
                "plaintext_hex": f"{m:x}",
                "r_hex": f"{r:x}",
                "ciphertext_hex": f"{ref_c:x}",
            }
        )
    return {
        "description": (
            "encrypt_int(public_key, m, rng=Csprng(seed)): r is the first unit drawn from "
            "the seeded Csprng (spec section 6.1), c = (1 + m n) r^n mod n^2. phe's "
            "public_key.raw_encrypt(m, r_value=r) gives the same c, and "
            "private_key.raw_decrypt(c) gives m."
        ),
        "warning": KEY_WARNING,
        "cases": cases,
    }


PACKED = [  # (name, value_bits, n_clients, count)
    ("direct-b16-n3", 16, 3, 100),
    ("fixed-base-b8-n4", 8, 4, 520),
]


def packed_vectors() -> Json:
    public, private = lib_keys()
    n = KEY_N
    cases = []
    for name, vb, nc, count in PACKED:
        lay = ref_layout(n.bit_length(), vb, nc)
        assert lay is not None
        sb, k = lay["slot_bits"], lay["slots_per_ciphertext"]
        values = _det_ints(f"packed:{name}", count, lay["min_value"], lay["max_value"])
        seed = _seed(f"packed:{name}")
        plaintexts = ref_pack(values, vb, sb, k)
        obf, material = ref_obfuscators(RefCsprng(seed).spawn(), n, len(plaintexts))
        ref_cs = ref_encrypt(plaintexts, obf, n)
        ref_bytes = ref_ct_bytes(ref_cs, n)
        layout = hp.PackingLayout.plan(modulus_bits=n.bit_length(), value_bits=vb, n_clients=nc)
        arr = np.array(values, dtype=np.int64)
        ct = hp.encrypt_vector(public, arr, layout, randomness=Csprng(seed=seed))
        _agree(
            f"packed {name}: ciphertext bytes", hp.ciphertexts_to_bytes(ct).hex(), ref_bytes.hex()
        )
        pool = hp.RandomnessPool(public, rng=Csprng(seed=seed))
        pool.fill(len(plaintexts))
        via_pool = hp.encrypt_vector(public, arr, layout, randomness=pool)
        _agree(f"packed {name}: pool path", hp.ciphertexts_to_bytes(via_pool), ref_bytes)
        _agree(
            f"packed {name}: decrypt_vector",
            [int(v) for v in hp.decrypt_vector(private, ct)],
            values,
        )
        _agree(f"packed {name}: textbook decrypt", [ref_decrypt(c) for c in ref_cs], plaintexts)
        _agree(
            f"packed {name}: phe raw_decrypt",
            [private.raw_decrypt(c) for c in ref_cs],
            plaintexts,
        )
        cases.append(
            {
                "name": name,
                "value_bits": vb,
                "n_clients": nc,
                "layout": lay,
                "values": values,
                "seed_hex": seed.hex(),
                "plaintexts_hex": [f"{m:x}" for m in plaintexts],
                "obfuscators": material,
                "ciphertexts_hex": ref_bytes.hex(),
                "ciphertexts_sha256": _sha(ref_bytes),
            }
        )
    return {
        "description": (
            "encrypt_vector(public_key, values, layout, randomness=Csprng(seed)) with the "
            "layout PackingLayout.plan(modulus_bits=1024, value_bits, n_clients). The "
            "obfuscators come from Csprng(seed).spawn() (spec section 6.2): 'direct' (at "
            "most 4 ciphertexts) records each r (R = r^n mod n^2), 'fixed-base' records x "
            "(h = x^n mod n^2) and each 256-bit exponent a (R = h^a mod n^2). "
            "ciphertexts_hex: the wire form (256-byte big-endian integers). A "
            "RandomnessPool(public_key, rng=Csprng(seed)) filled with the same number of "
            "obfuscators gives the same bytes."
        ),
        "warning": KEY_WARNING,
        "cases": cases,
    }


# -- protocol rounds ---------------------------------------------------------------------


ROUNDS = [  # (name, description, bits, value_bits, n_clients, min_clients, dim, dropped)
    (
        "round-3-clients",
        "Three clients, all send; one ciphertext each (direct obfuscators).",
        16,
        10,
        3,
        2,
        20,
        (),
    ),
    (
        "round-dropout",
        "Four invited, client 3 drops: the aggregate is the sum of clients 1, 2 and 4; six "
        "ciphertexts each (fixed-base obfuscators).",
        32,
        20,
        4,
        2,
        250,
        (3,),
    ),
]
ROUND_ID = 0x0102030405060708


def _round_inputs(name: str, n: int, dim: int, bits: int, value_bits: int) -> dict[int, list[int]]:
    lo, hi = -(1 << (value_bits - 1)), (1 << (value_bits - 1)) - 1
    return {
        c: [v % (1 << bits) for v in _det_ints(f"{name}:client{c}", dim, lo, hi)]
        for c in range(1, n + 1)
    }


def run_round(
    name: str,
    bits: int,
    value_bits: int,
    n: int,
    min_clients: int,
    dim: int,
    dropped: tuple[int, ...],
) -> Json:
    public, private = lib_keys()
    cfg = PaillierConfig(
        public_key=public, bits=bits, n_clients=n, value_bits=value_bits, min_clients=min_clients
    )
    holder = PaillierKeyHolder(cfg, private)
    frames: list[Json] = []

    def record(direction: str, client: int, data: bytes) -> None:
        frames.append(
            {
                "direction": direction,
                "client": client,
                "type": data[3],
                "length": len(data),
                "sha256": _sha(data),
                "hex": data.hex(),
            }
        )

    seed = _seed(f"{name}:protocol")
    proto = PaillierProtocol(cfg, key_holder=holder, rng=Csprng(seed=seed))
    inputs = _round_inputs(name, n, dim, bits, value_bits)
    invited = sorted(inputs)
    server = proto.server(round_id=ROUND_ID, client_ids=frozenset(invited), dim=dim)
    requests = server.start()
    dt = uint_dtype(bits)
    clients = {
        c: proto.client(round_id=ROUND_ID, client_id=c, value=np.array(inputs[c], dtype=dt))
        for c in invited
    }
    for c in invited:
        record("server->client", c, requests[c])
        if c in dropped:
            continue
        reply = clients[c].handle(requests[c])
        assert reply is not None
        record("client->server", c, reply)
        server.receive(c, reply)
    (request,) = server.advance().values()
    record("aggregator->key_holder", 0, request)
    answer = holder.handle(request)
    record("key_holder->aggregator", 0, answer)
    server.receive(KEY_HOLDER, answer)
    if server.advance():
        raise MismatchError(f"{name}: the round did not end after the key holder's answer")
    result = server.result
    return {
        "name": name,
        "config": {
            "bits": bits,
            "value_bits": value_bits,
            "n_clients": n,
            "min_clients": min_clients,
            "layout": ref_layout(KEY_N.bit_length(), value_bits, n),
        },
        "round_id": ROUND_ID,
        "dim": dim,
        "invited": invited,
        "dropped": list(dropped),
        "protocol_seed_hex": seed.hex(),
        "inputs": {str(c): v for c, v in inputs.items()},
        "frames": frames,
        "expected": {
            "aggregate": [int(v) for v in result.aggregate],
            "survivors": sorted(result.survivors),
            "dropped": sorted(result.dropped),
        },
    }


class RefReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, k: int) -> bytes:
        if self.pos + k > len(self.data):
            raise MismatchError("reference: frame truncated")
        out = self.data[self.pos : self.pos + k]
        self.pos += k
        return out

    def int(self, k: int) -> int:
        return int.from_bytes(self.take(k), "big")

    def done(self) -> None:
        if self.pos != len(self.data):
            raise MismatchError("reference: trailing bytes")


def ref_check_round(vec: Json) -> None:
    """Rebuild every frame of a recorded round from the spec and compare."""
    name, cfg = vec["name"], vec["config"]
    bits, vb, nc = cfg["bits"], cfg["value_bits"], cfg["n_clients"]
    lay = ref_layout(KEY_N.bit_length(), vb, nc)
    assert lay is not None
    sb, k = lay["slot_bits"], lay["slots_per_ciphertext"]
    n, nsq = KEY_N, KEY_N * KEY_N
    width = (2 * n.bit_length() + 7) // 8
    dim, rid = vec["dim"], vec["round_id"]
    n_ct = -(-dim // k)
    inputs = {int(c): v for c, v in vec["inputs"].items()}
    for f in vec["frames"]:
        _agree(f"{name}: frame sha256", _sha(bytes.fromhex(f["hex"])), f["sha256"])
    # 0x30 request, the same for every client
    request_body = (
        rid.to_bytes(8, "big")
        + dim.to_bytes(4, "big")
        + bytes([bits, vb])
        + nc.to_bytes(4, "big")
        + ref_fingerprint(n)
    )
    request = ref_frame(0x30, request_body)
    proto_rng = RefCsprng(bytes.fromhex(vec["protocol_seed_hex"]))
    client_rngs = {c: proto_rng.spawn() for c in vec["invited"]}
    by_dir: dict[tuple[str, int], bytes] = {
        (f["direction"], f["client"]): bytes.fromhex(f["hex"]) for f in vec["frames"]
    }
    received: list[list[int]] = []
    survivors = []
    for c in vec["invited"]:
        _agree(f"{name}: request to {c}", by_dir[("server->client", c)].hex(), request.hex())
        if c in vec["dropped"]:
            if ("client->server", c) in by_dir:
                raise MismatchError(f"{name}: dropped client {c} sent a frame")
            continue
        signed = [ref_centred(u, bits) for u in inputs[c]]
        plaintexts = ref_pack(signed, vb, sb, k)
        obf, _ = ref_obfuscators(client_rngs[c].spawn(), n, len(plaintexts))
        cts = ref_encrypt(plaintexts, obf, n)
        expected = ref_frame(0x31, rid.to_bytes(8, "big") + ref_ct_bytes(cts, n))
        _agree(f"{name}: input of {c}", by_dir[("client->server", c)].hex(), expected.hex())
        received.append(cts)
        survivors.append(c)
    total = [math.prod(col) % nsq for col in zip(*received, strict=True)]
    r = RefReader(by_dir[("aggregator->key_holder", 0)])
    _agree(f"{name}: encrypted sum header", r.take(4), b"SF\x01\x32")
    _agree(f"{name}: encrypted sum length", r.int(4), len(r.data) - 8)
    _agree(f"{name}: encrypted sum round", r.int(8), rid)
    _agree(f"{name}: n_summed", r.int(4), len(survivors))
    _agree(f"{name}: count", r.int(4), dim)
    sums = [r.int(width) for _ in range(n_ct)]
    r.done()
    _agree(f"{name}: encrypted sum ciphertexts", sums, total)
    signed_sum = ref_unpack_signed([ref_decrypt(c) for c in sums], dim, vb, sb, k, len(survivors))
    aggregate = [s % (1 << bits) for s in signed_sum]
    plain = [sum(inputs[c][i] for c in survivors) % (1 << bits) for i in range(dim)]
    _agree(f"{name}: aggregate vs plaintext sum", aggregate, plain)
    reply = ref_frame(0x33, rid.to_bytes(8, "big") + ref_vector(aggregate, bits))
    _agree(f"{name}: decrypted sum frame", by_dir[("key_holder->aggregator", 0)].hex(), reply.hex())
    _agree(f"{name}: expected aggregate", vec["expected"]["aggregate"], aggregate)
    _agree(f"{name}: survivors", vec["expected"]["survivors"], survivors)


def round_vectors() -> dict[str, Json]:
    out = {}
    for name, description, bits, vb, n, mc, dim, dropped in ROUNDS:
        vec = run_round(name, bits, vb, n, mc, dim, dropped)
        ref_check_round(vec)
        out[name] = {
            "description": description,
            "driver": DRIVER,
            "warning": KEY_WARNING,
            **vec,
        }
    return out


# -- boundary and overflow -----------------------------------------------------------------


def boundary_vectors() -> Json:
    public, private = lib_keys()
    n = KEY_N
    vb, nc = 8, 4
    lay = ref_layout(n.bit_length(), vb, nc)
    assert lay is not None
    sb, k = lay["slot_bits"], lay["slots_per_ciphertext"]
    if not nc * ((1 << vb) - 1) < 1 << sb <= (nc + 1) * ((1 << vb) - 1):
        raise MismatchError("boundary: the slot does not fit n_clients maxima exactly")
    count = k + 3  # two ciphertexts, the second mostly padding
    layout = hp.PackingLayout.plan(modulus_bits=n.bit_length(), value_bits=vb, n_clients=nc)
    fits = []
    for label, value in (("max", lay["max_value"]), ("min", lay["min_value"])):
        seeds = [_seed(f"boundary:{label}:client{c}") for c in range(1, nc + 1)]
        ref_cts = []
        for s in seeds:
            pts = ref_pack([value] * count, vb, sb, k)
            obf, _ = ref_obfuscators(RefCsprng(s).spawn(), n, len(pts))
            ref_cts.append(ref_encrypt(pts, obf, n))
        ref_sum = [math.prod(col) % (n * n) for col in zip(*ref_cts, strict=True)]
        ref_plain = [ref_decrypt(c) for c in ref_sum]
        expected_slot = nc * (value + lay["offset"])
        if value == lay["max_value"] and expected_slot != (1 << sb) - 4:
            raise MismatchError("boundary: 4 x 255 should be 2^10 - 4")
        ref_signed = ref_unpack_signed(ref_plain, count, vb, sb, k, nc)
        lib_vectors = [
            hp.encrypt_vector(
                public, np.full(count, value, np.int64), layout, randomness=Csprng(seed=s)
            )
            for s in seeds
        ]
        lib_sum = hp.sum_vectors(lib_vectors)
        sum_bytes = hp.ciphertexts_to_bytes(lib_sum)
        _agree(f"boundary {label}: sum bytes", sum_bytes, ref_ct_bytes(ref_sum, n))
        _agree(
            f"boundary {label}: decrypt",
            [int(v) for v in hp.decrypt_vector(private, lib_sum)],
            ref_signed,
        )
        fits.append(
            {
                "name": f"{nc}-clients-all-{label}",
                "value": value,
                "count": count,
                "client_seeds_hex": [s.hex() for s in seeds],
                "sum_ciphertexts_hex": sum_bytes.hex(),
                "sum_plaintexts_hex": [f"{m:x}" for m in ref_plain],
                "slot_sum": expected_slot,
                "expected_sum": nc * value,
            }
        )

    overflow = []

    def over(name: str, description: str, fn: Callable[[], object], **fields: Any) -> None:
        _raises(f"overflow {name}", "EncodingOverflow", fn)
        overflow.append(
            {"name": name, "description": description, "error": "EncodingOverflow", **fields}
        )

    extra_seed = _seed("boundary:max:client5")

    def one_more() -> object:
        vecs = [
            hp.encrypt_vector(
                public,
                np.full(count, lay["max_value"], np.int64),
                layout,
                randomness=Csprng(seed=s),
            )
            for s in [*(bytes.fromhex(h) for h in fits[0]["client_seeds_hex"]), extra_seed]
        ]
        return hp.sum_vectors(vecs)

    over(
        "one-more-client",
        "sum_vectors over n_clients + 1 = 5 encryptions of the maximal vector (seeds: the "
        "four of 4-clients-all-max, then extra_seed_hex) under the n_clients = 4 layout: "
        "5 x 255 = 1275 needs 11 bits > slot_bits = 10.",
        one_more,
        extra_seed_hex=extra_seed.hex(),
        needed_slot_bits=((nc + 1) * ((1 << vb) - 1)).bit_length(),
    )
    over(
        "value-above-range",
        "encrypt_vector of [0, 1, 128, 2] with value_bits = 8 (max 127).",
        lambda: hp.encrypt_vector(
            public, np.array([0, 1, 128, 2], np.int64), layout, randomness=Csprng(seed=bytes(32))
        ),
        values=[0, 1, 128, 2],
    )
    over(
        "value-below-range",
        "encrypt_vector of [-129] with value_bits = 8 (min -128).",
        lambda: hp.encrypt_vector(
            public, np.array([-129], np.int64), layout, randomness=Csprng(seed=bytes(32))
        ),
        values=[-129],
    )
    over(
        "n-summed-above-layout",
        "ciphertexts_from_bytes(sum bytes of 4-clients-all-max, count, n_summed = 5).",
        lambda: hp.ciphertexts_from_bytes(
            bytes.fromhex(fits[0]["sum_ciphertexts_hex"]), public, layout, count=count, n_summed=5
        ),
        n_summed=5,
    )
    pcfg = PaillierConfig(public_key=public, bits=16, n_clients=nc, value_bits=vb)
    proto = PaillierProtocol(
        pcfg,
        key_holder=PaillierKeyHolder(pcfg, private),
        rng=Csprng(seed=bytes(32)),
    )
    over(
        "protocol-input-outside-value-bits",
        "PaillierConfig(bits=16, n_clients=4, value_bits=8): a client input entry 128 "
        "(centred residue 128 > 127) is refused when the client session is made.",
        lambda: proto.client(round_id=1, client_id=1, value=np.array([5, 128], np.uint16)),
        bits=16,
        input=[5, 128],
    )
    over(
        "config-slot-over-64-bits",
        "PaillierConfig(bits=64, n_clients=5): value_bits defaults to 64, the sum of five "
        "64-bit values needs 67-bit slots > 64.",
        lambda: PaillierConfig(public_key=public, bits=64, n_clients=5),
        bits=64,
        n_clients=5,
    )
    return {
        "description": (
            "Headroom boundary under the 1024-bit test key, value_bits = 8, n_clients = 4: "
            "slot_bits = 10 holds 4 x 255 = 1020 < 1024 exactly (5 x 255 would not). Each "
            "client encrypts `count` copies of `value` with Csprng(seed=client_seed); the "
            "homomorphic sum's bytes, plaintexts and decoded sum are recorded. Every "
            "overflow case must raise EncodingOverflow."
        ),
        "warning": KEY_WARNING,
        "value_bits": vb,
        "n_clients": nc,
        "layout": lay,
        "fits": fits,
        "overflow": overflow,
    }


# --------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    files = {
        "key.json": key_vectors(),
        "layout.json": layout_vectors(),
        "single.json": single_vectors(),
        "packed.json": packed_vectors(),
        "boundary.json": boundary_vectors(),
    }
    files.update({f"{name}.json": vec for name, vec in round_vectors().items()})
    for vec in files.values():
        vec["generator"] = GENERATOR
        vec["spec"] = SPEC
    return {name: vectorio.render(vec) for name, vec in files.items()}


def main(argv: Sequence[str] | None = None) -> int:
    return vectorio.main(
        "make_paillier_vectors",
        VECTOR_DIR,
        generate,
        argv,
        description=(__doc__ or "").splitlines()[0],
        mismatch=MismatchError,
    )


if __name__ == "__main__":
    sys.exit(main())
