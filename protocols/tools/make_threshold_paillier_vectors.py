#!/usr/bin/env python3
"""Generate the threshold Paillier known-answer vectors (protocols/vectors/paillier-threshold/).

Usage::

    .venv/bin/python protocols/tools/make_threshold_paillier_vectors.py           # (re)write
    .venv/bin/python protocols/tools/make_threshold_paillier_vectors.py --check   # diff

**The key in these vectors is public and insecure by design**: a 1024-bit n whose safe
primes p, q are written below (made once by ``generate_safe_prime(512)`` from the seeds
``SHA-256("secfl-kat:paillier-sum-v2:p")`` and ``...:q``) and in ``key.json``, dealt 3-of-5
with a recorded seed; every share is published.

Every expected value is computed twice: by ``secfl``, and by an **independent reference**
written here from ``protocols/paillier-sum-v2.md`` that shares no code with ``secfl``:
Python integers and ``pow`` (Miller-Rabin and the Pocklington step for the primes, the
dealer's rejection sampling, the proof's transcript hashes with ``hashlib``, plain
products for the multi-exponentiations, textbook Lagrange combination), the v1 reference
of ``make_paillier_vectors.py`` (prg-v1 Csprng rebuilt from AES-ECB, packing, encryption),
Ed25519 from ``cryptography`` and frames built with ``int.to_bytes``. If the two disagree,
or a refusal case does not raise the named exception, the script exits 2 and writes
nothing. ``--check`` exits 1 if a committed file differs from what it generates now.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import vectorio  # sibling module in protocols/tools/
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from make_paillier_vectors import (  # the v1 reference: shares no code with secfl
    RefCsprng,
    ref_centred,
    ref_ct_bytes,
    ref_encrypt,
    ref_frame,
    ref_layout,
    ref_obfuscators,
    ref_pack,
    ref_unpack_signed,
)

from secfl import errors
from secfl.hazmat import paillier as hp
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import paillier_threshold as pt
from secfl.protocols import paillier_threshold_messages as ptm

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "protocols" / "vectors" / "paillier-threshold"
GENERATOR = "protocols/tools/make_threshold_paillier_vectors.py"
SPEC = "protocols/paillier-sum-v2.md"

Json = dict[str, Any]

# The fixed test key: PUBLIC AND INSECURE BY DESIGN (see the module docstring).
KEY_P = int(
    "eb1e29a6c5f501c94d596cb6b0754b4d8e0742057577297dcd9787666b67a485"
    "0f96a83227109a4a2b51227580bf19ff4d9ecf3fc89306ea0b2320dd5cad6c33",
    16,
)
KEY_Q = int(
    "e2b311fc37905e80007736e4f6b46d95bcd5e2019c5d16fb3b06ecfc7779c5c3"
    "a196c2786ed512b39cf8eb1f68bb68f8f5b00d4cada880d4862143f73c9c76ef",
    16,
)
HOLDERS, THRESHOLD = 5, 3
KEY_WARNING = (
    "TEST KEY: public and insecure by design (its safe primes and every share are published "
    "here). Deployments use secfl paillier-key --holders m --threshold t (2048 or 3072 bits)."
)
LABEL = b"secfl threshold-paillier v1"
ROUND_ID = 7
ROUND = {"bits": 16, "value_bits": 12, "n_clients": 3, "min_clients": 2, "dim": 30}
DOWN = 2  # key holder 2 is down in the round vector


class MismatchError(Exception):
    """The library and the independent reference disagree: nothing is written."""


def _agree(what: str, lib: object, ref: object) -> None:
    if lib != ref:
        raise MismatchError(f"{what}: library gives {lib!r}, reference gives {ref!r}")


def _raises(what: str, error: str, fn: Any) -> str:
    cls = getattr(errors, error)
    try:
        fn()
    except cls as e:
        if type(e) is not cls:
            raise MismatchError(f"{what}: expected {error}, got {type(e).__name__}") from e
        return str(e)
    except Exception as e:
        raise MismatchError(f"{what}: expected {error}, got {type(e).__name__}: {e}") from e
    raise MismatchError(f"{what}: expected {error}, nothing was raised")


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"secfl-kat:paillier-sum-v2:{label}".encode()).digest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hex(values: Sequence[int]) -> list[str]:
    return [f"{v:x}" for v in values]


# --------------------------------------------------------------------------------------
# Independent reference (from the spec)
# --------------------------------------------------------------------------------------


def ref_prime(x: int) -> bool:
    """Miller-Rabin with the first 40 prime bases (deterministic, fine for fixed vectors)."""
    bases = [b for b in range(2, 200) if all(b % k for k in range(2, b))][:40]
    if x < 2:
        return False
    for b in bases:
        if x % b == 0:
            return x == b
    d, s = x - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for b in bases:
        y = pow(b, d, x)
        if y in (1, x - 1):
            continue
        for _ in range(s - 1):
            y = y * y % x
            if y == x - 1:
                break
        else:
            return False
    return True


def ref_safe(p: int) -> bool:
    """p' prime, and Pocklington for p (spec 3.1): 2^(p-1) = 1 mod p."""
    return ref_prime((p - 1) // 2) and pow(2, p - 1, p) == 1


def ref_below(rng: RefCsprng, bound: int) -> int:
    bits = bound.bit_length()
    while True:
        x = int.from_bytes(rng.bytes((bits + 7) // 8), "little") & ((1 << bits) - 1)
        if x < bound:
            return x


def ref_u32(x: int) -> bytes:
    return x.to_bytes(4, "big")


class RefKey:
    """Spec section 3.2, from p, q and the dealer's seed."""

    def __init__(self, p: int, q: int, m: int, t: int, seed: bytes) -> None:
        rng = RefCsprng(seed)
        n = p * q
        pp, qq = (p - 1) // 2, (q - 1) // 2
        mm = pp * qq
        self.n, self.nsq, self.m, self.t = n, n * n, m, t
        self.d = mm * pow(mm, -1, n)
        self.coeffs = [self.d] + [ref_below(rng, n * mm) for _ in range(t - 1)]
        self.shares = [
            sum(a * i**k for k, a in enumerate(self.coeffs)) % (n * mm) for i in range(1, m + 1)
        ]
        while True:
            r = ref_below(rng, n * n)
            if r == 0 or math.gcd(r, n) != 1:
                continue
            v = r * r % (n * n)
            if all(pow(v, n * mm // f, n * n) != 1 for f in (p, q, pp, qq)):
                break
        self.v = v
        self.delta = math.factorial(m)
        self.vks = [pow(v, self.delta * s, n * n) for s in self.shares]
        self.width = (2 * n.bit_length() + 7) // 8
        nbytes = (n.bit_length() + 7) // 8
        self.pk_bytes = (
            LABEL
            + b" public key"
            + ref_u32(nbytes)
            + n.to_bytes(nbytes, "big")
            + ref_u32(t)
            + ref_u32(m)
            + b"".join(x.to_bytes(self.width, "big") for x in [v, *self.vks])
        )
        self.fingerprint = hashlib.sha256(self.pk_bytes).digest()[:16]
        self.nonce_bits = 2 * n.bit_length() + self.delta.bit_length() + 256 + 128

    def el(self, x: int) -> bytes:
        return x.to_bytes(self.width, "big")

    def digest(self, label: bytes, values: Sequence[int]) -> bytes:
        return hashlib.sha256(
            LABEL + b" " + label + ref_u32(len(values)) + b"".join(self.el(x) for x in values)
        ).digest()

    def statement(self, i: int, ctx: bytes, cs: Sequence[int], ds: Sequence[int]) -> bytes:
        body = (
            ref_u32(len(self.pk_bytes))
            + self.pk_bytes
            + ref_u32(i)
            + ref_u32(len(ctx))
            + ctx
            + self.digest(b"ciphertexts", cs)
            + self.digest(b"partials", ds)
        )
        return hashlib.sha256(LABEL + b" statement" + body).digest()

    def rhos(self, sigma: bytes, count: int) -> list[int]:
        stream = hashlib.shake_256(LABEL + b" rho" + sigma).digest(16 * count)
        return [int.from_bytes(stream[16 * j : 16 * j + 16], "big") for j in range(count)]

    def challenge(self, sigma: bytes, *elements: int) -> int:
        data = LABEL + b" challenge" + sigma + b"".join(self.el(x) for x in elements)
        return int.from_bytes(hashlib.sha256(data).digest(), "big")

    def partial(self, i: int, ctx: bytes, cs: Sequence[int], rng: RefCsprng) -> Json:
        nsq, s = self.nsq, self.shares[i - 1]
        ds = [pow(c, 2 * self.delta * s, nsq) for c in cs]
        sigma = self.statement(i, ctx, cs, ds)
        rho = self.rhos(sigma, len(cs))
        big_c = pow(math.prod(pow(c, r, nsq) for c, r in zip(cs, rho, strict=True)) % nsq, 4, nsq)
        big_ci = pow(math.prod(pow(d, r, nsq) for d, r in zip(ds, rho, strict=True)) % nsq, 2, nsq)
        nb = self.nonce_bits
        fresh = rng.bytes(32)
        seed = hashlib.sha256(LABEL + b" nonce" + self.el(s) + sigma + fresh).digest()
        raw = hashlib.shake_256(seed).digest((nb + 7) // 8)
        nonce = int.from_bytes(raw, "little") & ((1 << nb) - 1)
        a, b = pow(big_c, nonce, nsq), pow(self.v, nonce, nsq)
        e = self.challenge(sigma, big_c, big_ci, a, b)
        z = nonce + e * self.delta * s
        zbytes = (nb + 1 + 7) // 8
        wire = ref_u32(i) + b"".join(self.el(d) for d in ds) + e.to_bytes(32, "big")
        wire += z.to_bytes(zbytes, "big")
        return {
            "index": i,
            "values_hex": _hex(ds),
            "sigma_hex": sigma.hex(),
            "rho_hex": _hex(rho),
            "C_hex": f"{big_c:x}",
            "C_i_hex": f"{big_ci:x}",
            "nonce_hex": f"{nonce:x}",
            "a_hex": f"{a:x}",
            "b_hex": f"{b:x}",
            "e_hex": f"{e:x}",
            "z_hex": f"{z:x}",
            "wire_hex": wire.hex(),
        }

    def verify(self, i: int, ctx: bytes, cs: Sequence[int], part: Json) -> bool:
        nsq = self.nsq
        ds = [int(x, 16) for x in part["values_hex"]]
        e, z = int(part["e_hex"], 16), int(part["z_hex"], 16)
        sigma = self.statement(i, ctx, cs, ds)
        rho = self.rhos(sigma, len(cs))
        big_c = pow(math.prod(pow(c, r, nsq) for c, r in zip(cs, rho, strict=True)) % nsq, 4, nsq)
        big_ci = pow(math.prod(pow(d, r, nsq) for d, r in zip(ds, rho, strict=True)) % nsq, 2, nsq)
        a = pow(big_c, z, nsq) * pow(pow(big_ci, -1, nsq), e, nsq) % nsq
        b = pow(self.v, z, nsq) * pow(pow(self.vks[i - 1], -1, nsq), e, nsq) % nsq
        return self.challenge(sigma, big_c, big_ci, a, b) == e

    def combine(self, parts: dict[int, list[int]], count: int) -> tuple[list[int], list[int]]:
        subset = sorted(parts)
        mus = []
        for i in subset:
            num, den = self.delta, 1
            for k in subset:
                if k != i:
                    num, den = num * k, den * (k - i)
            mus.append(num // den)
        n, nsq = self.n, self.nsq
        inv = pow(4 * self.delta**2, -1, n)
        out = []
        for j in range(count):
            acc = math.prod(
                pow(parts[i][j], 2 * mu, nsq) for i, mu in zip(subset, mus, strict=True)
            )
            out.append((acc % nsq - 1) // n * inv % n)
        return out, mus


# --------------------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------------------


def lib_key() -> tuple[tp.ThresholdPublicKey, tuple[tp.KeyShare, ...]]:
    return tp.deal_key(
        KEY_P, KEY_Q, holders=HOLDERS, threshold=THRESHOLD, rng=Csprng(seed=_seed("deal"))
    )


def key_vectors(ref: RefKey) -> Json:
    pk, shares = lib_key()
    if not (ref_safe(KEY_P) and ref_safe(KEY_Q)):
        raise MismatchError("reference: the test primes are not safe primes")
    _agree("n", pk.n, ref.n)
    _agree("v", pk.verification_base, ref.v)
    _agree("verification keys", list(pk.verification_keys), ref.vks)
    _agree("shares", [s.private_number() for s in shares], ref.shares)
    _agree("public key bytes", pk.to_bytes(), ref.pk_bytes)
    _agree("fingerprint", pk.fingerprint(), ref.fingerprint)
    return {
        "description": "A 3-of-5 threshold key dealt from fixed safe primes (spec section 3).",
        "warning": KEY_WARNING,
        "p_hex": f"{KEY_P:x}",
        "q_hex": f"{KEY_Q:x}",
        "n_hex": f"{ref.n:x}",
        "holders": HOLDERS,
        "threshold": THRESHOLD,
        "delta": ref.delta,
        "deal_seed_hex": _seed("deal").hex(),
        "d_hex": f"{ref.d:x}",
        "coefficients_hex": _hex(ref.coeffs),
        "shares_hex": _hex(ref.shares),
        "v_hex": f"{ref.v:x}",
        "verification_keys_hex": _hex(ref.vks),
        "public_key_bytes_sha256": _sha(ref.pk_bytes),
        "fingerprint_hex": ref.fingerprint.hex(),
        "nonce_bits": ref.nonce_bits,
    }


def partial_vectors(ref: RefKey) -> Json:
    pk, shares = lib_key()
    plaintexts = [0, 1, 123456789, ref.n - 1, ref.n // 3]
    enc = RefCsprng(_seed("ciphertexts"))
    cs = []
    for mval in plaintexts:
        r = ref_below(enc, ref.n)
        cs.append((1 + mval * ref.n) * pow(r, ref.n, ref.nsq) % ref.nsq)
    ctx = b"secfl-kat context"
    holders = []
    lib_parts = {}
    for s in shares:
        seed = _seed(f"partial:{s.index}")
        lib = tp.partial_decrypt(s, cs, context=ctx, rng=Csprng(seed=seed))
        vec = ref.partial(s.index, ctx, cs, RefCsprng(seed))
        _agree(f"holder {s.index} wire bytes", lib.to_bytes(pk).hex(), vec["wire_hex"])
        if not ref.verify(s.index, ctx, cs, vec):
            raise MismatchError(f"reference: holder {s.index}'s proof does not verify")
        tp.verify_partial(pk, cs, lib, context=ctx)
        lib_parts[s.index] = lib
        holders.append({"seed_hex": seed.hex(), **vec})
    combos = []
    for subset in ([1, 2, 3], [3, 4, 5], [1, 3, 5], [2, 4, 5]):
        got = tp.combine(pk, cs, [lib_parts[i] for i in subset], context=ctx)
        want, mus = ref.combine({i: list(lib_parts[i].values) for i in subset}, len(cs))
        _agree(f"combination {subset}", list(got.plaintexts), want)
        _agree(f"combination {subset} vs plaintexts", want, plaintexts)
        combos.append({"holders": subset, "mu": mus, "plaintexts_hex": _hex(want)})
    return {
        "description": (
            "Partial decryptions with batched proofs by every holder of five ciphertexts, "
            "and their combinations (spec sections 5 and 6)."
        ),
        "warning": KEY_WARNING,
        "context_hex": ctx.hex(),
        "plaintexts_hex": _hex(plaintexts),
        "ciphertexts_hex": _hex(cs),
        "holders": holders,
        "combinations": combos,
    }


def _identities() -> dict[int, SigningKey]:
    return {
        c: SigningKey.from_bytes(_seed(f"client:{c}")) for c in range(1, ROUND["n_clients"] + 1)
    }


def _config(pk: tp.ThresholdPublicKey, ask_first: int | None = None) -> pt.ThresholdPaillierConfig:
    ids = _identities()
    return pt.ThresholdPaillierConfig(
        public_key=pk,
        registry={c: k.verify_key() for c, k in ids.items()},
        bits=ROUND["bits"],
        n_clients=ROUND["n_clients"],
        value_bits=ROUND["value_bits"],
        min_clients=ROUND["min_clients"],
        ask_first=ask_first,
    )


def _inputs() -> dict[int, list[int]]:
    vb, bits = ROUND["value_bits"], ROUND["bits"]
    out = {}
    for c in range(1, ROUND["n_clients"] + 1):
        vals = []
        for i in range(ROUND["dim"]):
            h = hashlib.sha256(f"secfl-kat:paillier-sum-v2:value:{c}:{i}".encode()).digest()
            vals.append((int.from_bytes(h[:8], "big") % (1 << vb) - (1 << (vb - 1))) % (1 << bits))
        out[c] = vals
    return out


ROUNDS = {
    "round": (
        None,
        "A 3-of-5 round with 3 clients; key holder 2 is down, holders 1, 3, 4, 5 answer and "
        "the aggregator combines 1, 3, 4 (spec section 8).",
    ),
    "round-ask-first": (
        3,
        "The same round with ask_first = 3: holders 1, 2, 3 are asked, 2 is down, so the "
        "aggregator asks 4 and 5 in phase decrypt-more and combines 1, 3, 4 (spec 8.2).",
    ),
}


def run_round(name: str) -> tuple[Json, dict[int, bytes]]:
    ask_first, description = ROUNDS[name]
    pk, shares = lib_key()
    cfg = _config(pk, ask_first)
    holders = [
        pt.ThresholdPaillierKeyHolder(cfg, s, rng=Csprng(seed=_seed(f"holder:{s.index}")))
        for s in shares
    ]
    proto = pt.ThresholdPaillierProtocol(
        cfg, identities=_identities(), key_holders=holders, rng=Csprng(seed=_seed("protocol"))
    )
    inputs = _inputs()
    dim = ROUND["dim"]
    frames: list[Json] = []
    signed: dict[int, bytes] = {}

    def record(direction: str, party: int, data: bytes) -> None:
        frames.append(
            {
                "direction": direction,
                "party": party,
                "type": data[3],
                "length": len(data),
                "sha256": _sha(data),
                "hex": data.hex(),
            }
        )

    server = proto.server(round_id=ROUND_ID, client_ids=frozenset(inputs), dim=dim)
    requests = server.start()
    for c in sorted(inputs):
        value = np.array(inputs[c], dtype=np.uint16)
        client = proto.client(round_id=ROUND_ID, client_id=c, value=value)
        record("server->client", c, requests[c])
        reply = client.handle(requests[c])
        assert reply is not None
        record("client->server", c, reply)
        signed[c] = reply
        server.receive(c, reply)
    outgoing = server.advance()
    parties = proto.parties()
    phases = [str(server.phase)]
    while outgoing:
        for i in sorted(pt.KEY_HOLDER_PARTY_BASE - party for party in outgoing):
            req = outgoing[pt.key_holder_party(i)]
            record("server->key_holder", i, req)
            if i == DOWN:
                continue
            answer = parties[pt.key_holder_party(i)].handle(req)
            assert answer is not None
            record("key_holder->server", i, answer)
            server.receive(pt.key_holder_party(i), answer)
        outgoing = server.advance()
        phases.append(str(server.phase))
    return {
        "description": description,
        "warning": KEY_WARNING,
        "driver": (
            "Build ThresholdPaillierConfig from key.json's key, the registry of the clients' "
            "Ed25519 keys (seed of client c: client_seeds_hex), config and ask_first; key "
            "holder i draws from Csprng(holder_seeds_hex[i]), the protocol from "
            "protocol_seed_hex. server.start(); for each client in increasing id: "
            "client.handle(request), server.receive; then while server.advance() returns "
            "requests: each key holder addressed, in increasing index, except the one down, "
            "answers to server.receive. phases: the server's phase after each advance()."
        ),
        "config": ROUND,
        "ask_first": ask_first,
        "phases": phases,
        "round_id": ROUND_ID,
        "down": DOWN,
        "client_seeds_hex": {str(c): _seed(f"client:{c}").hex() for c in inputs},
        "holder_seeds_hex": {str(i): _seed(f"holder:{i}").hex() for i in range(1, 6)},
        "protocol_seed_hex": _seed("protocol").hex(),
        "inputs": {str(c): v for c, v in inputs.items()},
        "frames": frames,
        "expected": {
            "aggregate": [int(v) for v in server.result.aggregate],
            "survivors": sorted(server.result.survivors),
            "rejected_holders": sorted(server.rejected_holders),
        },
    }, signed


def ref_check_round(vec: Json, ref: RefKey) -> None:
    """Rebuild every frame of the recorded round from the spec and compare."""
    cfg = vec["config"]
    bits, vb, nc, mc, dim = (
        cfg[k] for k in ("bits", "value_bits", "n_clients", "min_clients", "dim")
    )
    lay = ref_layout(ref.n.bit_length(), vb, nc)
    assert lay is not None
    sb, k = lay["slot_bits"], lay["slots_per_ciphertext"]
    rid = vec["round_id"]
    frames = {(f["direction"], f["party"]): bytes.fromhex(f["hex"]) for f in vec["frames"]}
    for f in vec["frames"]:
        _agree("frame sha256", _sha(bytes.fromhex(f["hex"])), f["sha256"])
    request = ref_frame(
        0x34,
        rid.to_bytes(8, "big")
        + dim.to_bytes(4, "big")
        + bytes([bits, vb])
        + nc.to_bytes(4, "big")
        + mc.to_bytes(4, "big")
        + ref.fingerprint,
    )
    proto_rng = RefCsprng(bytes.fromhex(vec["protocol_seed_hex"]))
    inputs = {int(c): v for c, v in vec["inputs"].items()}
    entries = []
    cts_of = {}
    for c in sorted(inputs):
        _agree(f"request to {c}", frames[("server->client", c)].hex(), request.hex())
        client_rng = proto_rng.spawn()
        plaintexts = ref_pack([ref_centred(u, bits) for u in inputs[c]], vb, sb, k)
        obf, _ = ref_obfuscators(client_rng.spawn(), ref.n, len(plaintexts))
        cts = ref_encrypt(plaintexts, obf, ref.n)
        ct_bytes = ref_ct_bytes(cts, ref.n)
        signed_msg = (
            b"secfl paillier-sum-v2 input"
            + ref.fingerprint
            + rid.to_bytes(8, "big")
            + ref_u32(c)
            + ref_u32(dim)
            + bytes([bits, vb])
            + ref_u32(nc)
            + ref_u32(mc)
            + hashlib.sha256(ct_bytes).digest()
        )
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vec["client_seeds_hex"][str(c)]))
        sig = key.sign(signed_msg)
        frame = ref_frame(0x35, rid.to_bytes(8, "big") + ct_bytes + sig)
        _agree(f"signed input of {c}", frames[("client->server", c)].hex(), frame.hex())
        entries.append((c, ct_bytes, sig))
        cts_of[c] = cts
    body = rid.to_bytes(8, "big") + ref_u32(dim) + ref_u32(len(entries))
    body += b"".join(ref_u32(c) + ct + sig for c, ct, sig in entries)
    decrypt_request = ref_frame(0x36, body)
    product = [math.prod(col) % ref.nsq for col in zip(*cts_of.values(), strict=True)]
    set_digest = hashlib.sha256(
        b"secfl paillier-sum-v2 input set"
        + ref.fingerprint
        + rid.to_bytes(8, "big")
        + ref_u32(dim)
        + ref_u32(len(entries))
        + b"".join(ref_u32(c) + hashlib.sha256(ct).digest() for c, ct, _ in entries)
    ).digest()
    ctx = b"secfl paillier-sum-v2 decrypt " + set_digest
    first = list(range(1, (vec["ask_first"] or HOLDERS) + 1))
    asked = first
    if len([i for i in first if i != vec["down"]]) < THRESHOLD:
        asked = first + list(range(len(first) + 1, HOLDERS + 1))  # spec 8.2: decrypt-more
    order = [f["party"] for f in vec["frames"] if f["direction"] == "server->key_holder"]
    _agree("key holders asked, in order", order, asked)
    partials: dict[int, list[int]] = {}
    for i in asked:
        _agree(
            f"request to holder {i}", frames[("server->key_holder", i)].hex(), decrypt_request.hex()
        )
        if i == vec["down"]:
            continue
        part = ref.partial(
            i, ctx, product, RefCsprng(bytes.fromhex(vec["holder_seeds_hex"][str(i)]))
        )
        answer = ref_frame(
            0x37, rid.to_bytes(8, "big") + set_digest + bytes.fromhex(part["wire_hex"])
        )
        _agree(f"partial of holder {i}", frames[("key_holder->server", i)].hex(), answer.hex())
        if not ref.verify(i, ctx, product, part):
            raise MismatchError(f"reference: holder {i}'s proof does not verify")
        partials[i] = [int(x, 16) for x in part["values_hex"]]
    used = sorted(partials)[:THRESHOLD]
    plain, _ = ref.combine({i: partials[i] for i in used}, len(product))
    signed_sum = ref_unpack_signed(plain, dim, vb, sb, k, len(entries))
    aggregate = [s % (1 << bits) for s in signed_sum]
    want = [sum(inputs[c][i] for c in inputs) % (1 << bits) for i in range(dim)]
    _agree("aggregate vs plaintext sum", aggregate, want)
    _agree("expected aggregate", vec["expected"]["aggregate"], aggregate)


def refusal_vectors(signed: dict[int, bytes]) -> Json:
    """Decryption requests an honest key holder MUST refuse (spec sections 8.3 and 9)."""
    pk, shares = lib_key()
    cfg = _config(pk)
    dim = ROUND["dim"]
    size = cfg.input_bytes(dim)
    ins = {c: ptm.SignedInput.from_bytes(f, size=size) for c, f in signed.items()}
    entry = {c: (c, s.ciphertexts, s.signature) for c, s in ins.items()}
    pub = pk.to_phe()
    vec1 = hp.ciphertexts_from_bytes(ins[1].ciphertexts, pub, cfg.layout, count=dim, n_summed=1)
    doubled = hp.ciphertexts_to_bytes(hp.add(vec1, vec1))
    zero = hp.encrypt_vector(
        pub, np.zeros(dim, np.int64), cfg.layout, randomness=Csprng(seed=_seed("zero"))
    )
    rerandomized = hp.ciphertexts_to_bytes(hp.add(vec1, zero))
    zeros = hp.ciphertexts_to_bytes(zero)
    copy = (
        3,
        ins[1].ciphertexts,
        _identities()[3].sign(cfg.signed_message(ROUND_ID, 3, dim, ins[1].ciphertexts)),
    )

    def req(round_id: int, items: list[tuple[int, bytes, bytes]]) -> bytes:
        return ptm.DecryptRequest(round_id, dim, tuple(items)).to_bytes()

    cases = [
        ("one client's input as a sum", "ProtocolAbort", req(ROUND_ID, [entry[1]])),
        ("an input listed twice", "IntegrityError", req(ROUND_ID, [entry[1], entry[1]])),
        (
            "a client's input under another id (identical bytes)",
            "ProtocolAbort",
            req(ROUND_ID, [entry[1], (2, ins[1].ciphertexts, ins[2].signature)]),
        ),
        (
            "an input added to itself",
            "IntegrityError",
            req(ROUND_ID, [(1, doubled, ins[1].signature), entry[2]]),
        ),
        (
            "an input times an encryption of zero",
            "IntegrityError",
            req(ROUND_ID, [(1, rerandomized, ins[1].signature), entry[2]]),
        ),
        (
            "an encryption of zero under a registered id",
            "IntegrityError",
            req(ROUND_ID, [entry[1], (2, zeros, ins[2].signature)]),
        ),
        (
            "an encryption of zero under an unregistered id",
            "ProtocolAbort",
            req(ROUND_ID, [entry[1], (99, zeros, bytes(64))]),
        ),
        ("a colluding client's copy of an input", "ProtocolAbort", req(ROUND_ID, [entry[1], copy])),
        (
            "signed inputs of another round",
            "IntegrityError",
            req(ROUND_ID + 1, [entry[1], entry[2]]),
        ),
    ]
    out = []
    for what, error, data in cases:
        holder = pt.ThresholdPaillierKeyHolder(cfg, shares[0], rng=Csprng(seed=_seed("refusals")))
        _raises(what, error, lambda h=holder, d=data: h.handle(d))
        out.append({"what": what, "error": error, "request_hex": data.hex()})
    # a second request for a round the holder already answered
    holder = pt.ThresholdPaillierKeyHolder(cfg, shares[0], rng=Csprng(seed=_seed("refusals")))
    first = req(ROUND_ID, [entry[1], entry[2]])
    holder.handle(first)
    second = req(ROUND_ID, [entry[1], entry[3]])
    _raises("a second decryption in one round", "ProtocolAbort", lambda: holder.handle(second))
    return {
        "description": (
            "Requests key holder 1 MUST refuse with the named error (spec 8.3 and 9), each "
            "sent to a fresh holder; 'replay' is answered once, then refused."
        ),
        "warning": KEY_WARNING,
        "holder": 1,
        "cases": out,
        "replay": {"first_hex": first.hex(), "second_hex": second.hex(), "error": "ProtocolAbort"},
    }


def generate() -> dict[str, str]:
    ref = RefKey(KEY_P, KEY_Q, HOLDERS, THRESHOLD, _seed("deal"))
    files: dict[str, Json] = {"key.json": key_vectors(ref), "partial.json": partial_vectors(ref)}
    signed: dict[int, bytes] = {}
    for name in ROUNDS:
        vec, signed = run_round(name)
        ref_check_round(vec, ref)
        files[f"{name}.json"] = vec
    files["refusals.json"] = refusal_vectors(signed)
    for vec in files.values():
        vec["generator"] = GENERATOR
        vec["spec"] = SPEC
    return {name: vectorio.render(vec) for name, vec in files.items()}


def main(argv: Sequence[str] | None = None) -> int:
    return vectorio.main(
        "make_threshold_paillier_vectors",
        VECTOR_DIR,
        generate,
        argv,
        description=(__doc__ or "").splitlines()[0],
        mismatch=MismatchError,
    )


if __name__ == "__main__":
    sys.exit(main())
