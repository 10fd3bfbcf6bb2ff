#!/usr/bin/env python3
"""Generate the SecAgg / SecAgg+ known-answer vectors in ``protocols/vectors/secagg-v3/``.

Usage::

    .venv/bin/python protocols/tools/make_secagg_vectors.py           # (re)write the files
    .venv/bin/python protocols/tools/make_secagg_vectors.py --check   # regenerate, diff

Each vector drives the real ``secfl`` sessions (``SecAggProtocol`` from
``secfl/protocols/secagg.py``) through one round with **seeded** randomness: the protocol
factory gets ``Csprng(seed=protocol)``, inputs come from ``Csprng(seed=inputs)`` and, in
active mode, the Ed25519 identities from ``Csprng(seed=identities)``. The driver (the
"round schedule" of ``protocols/secagg-v1.md`` section 11, unchanged by
``protocols/secagg-v2.md``) is fixed, so every frame of the
round is reproducible byte for byte; the vector records each frame's hex and SHA-256 in
order, the masked inputs, the expected aggregate and survivors, or the expected abort.

Before anything is written, every finished round is re-checked by an **independent
reference** written here from the specification and sharing no code with ``secfl``: it
parses the recorded frames with ``int.from_bytes``, recomputes the neighbour graph from the
SHA-256 graph seed and raw AES-CTR and rebuilds every KEYS and SURVIVORS frame from it
(secagg-v2: each carries the recipient's neighbourhood only), recovers every revealed
secret from the shares in the UNMASK frames with its own Lagrange interpolation over
GF(2^24 + 43), recomputes the self masks PRG(b_u, "self") with ``cryptography``'s
AES-CTR, the pairwise masks of dropped clients with ``cryptography``'s X25519 and HKDF,
verifies Ed25519 signatures (active mode),
and checks that ``sum(masked) - sum(self masks) + (dropped clients' pairwise masks)`` is the
aggregate and equals the plaintext sum of the survivors' inputs. If the library and the
reference disagree, the script stops with exit status 2 and writes nothing.

``--check`` exits 1 if a committed file differs from what the generator produces now, or
if the directory holds a vector the generator no longer produces (a vector never changes
meaning: new behaviour gets a new spec version and new files). The secagg-v1 vectors stay
in ``protocols/vectors/secagg-v1/`` as a record of that version; the library speaks v2.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import vectorio  # sibling module in protocols/tools/
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secfl.errors import SecflError
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols.graphs import neighbourhoods
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "protocols" / "vectors" / "secagg-v3"
GENERATOR = "protocols/tools/make_secagg_vectors.py"
SPEC = "protocols/secagg-v3.md"

Json = dict[str, Any]

DRIVER = (
    "Clients are built in increasing id order (each takes one spawn of the protocol "
    "Csprng), then the server. Each phase: the server's requests are visited in increasing "
    "client id; each is recorded (server->client); unless the client is scheduled to drop "
    "in this or an earlier phase, or refused earlier, the client handles it and its reply "
    "is recorded (client->server) and given to the server at once; a client that raises a "
    "SecflError is recorded as a refusal and treated as a dropout. Then server.advance(); "
    "a SecflError from the server ends the round (expected.abort). A cheating client "
    "(cheats) replaces its SIGNED_SHARE_KEYS reply: in the envelope to each listed victim "
    "bit 0 of byte 20 is flipped, and the envelope is signed again with its identity. A "
    "lying holder (wrong_shares) replaces its UNMASK reply: the first share element it "
    "reveals for the listed owner is increased by 1 (mod the field prime)."
)


class MismatchError(Exception):
    """The library and the independent reference disagree: nothing is written."""


def _agree(what: str, lib: object, ref: object) -> None:
    if lib != ref:
        raise MismatchError(f"{what}: library gives {lib!r}, reference gives {ref!r}")


def _seed(case: str, purpose: str) -> bytes:
    return hashlib.sha256(f"secfl-kat:secagg-v2:{case}:{purpose}".encode()).digest()


# --------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    n: int
    threshold: int
    bits: int
    dim: int
    round_id: int
    degree: int | None = None
    active: bool = False
    dropouts: dict[int, str] = field(default_factory=dict)
    expect_abort: str | None = None  # error class name, or None for a finished round
    cheats: dict[int, tuple[int, ...]] = field(default_factory=dict)  # cheater -> victims
    wrong_shares: dict[int, int] = field(default_factory=dict)  # lying holder -> owner


CASES: tuple[Case, ...] = (
    Case(
        "full-honest",
        "SecAgg (complete graph), honest-but-curious, n=5, t=3, no dropout: every pairwise "
        "mask cancels and the server removes only the self masks.",
        n=5,
        threshold=3,
        bits=16,
        dim=8,
        round_id=0x5EC0A66000000001,
    ),
    Case(
        "full-mask-dropout",
        "SecAgg, n=5, t=3; client 2 sends its shares but never its masked input: the "
        "server reconstructs s_2^SK and removes 2's pairwise masks from the others.",
        n=5,
        threshold=3,
        bits=16,
        dim=8,
        round_id=0x5EC0A66000000002,
        dropouts={2: "mask"},
    ),
    Case(
        "full-share-and-mask-dropout",
        "SecAgg, n=6, t=3; client 4 drops in ShareKeys (nobody masks with it) and client 2 "
        "in MaskedInputCollection (its s^SK is reconstructed). n=6 because with n=5, t=3 "
        "these two dropouts leave 3 < t+1 masked inputs (see abort-mask-below-threshold).",
        n=6,
        threshold=3,
        bits=16,
        dim=8,
        round_id=0x5EC0A66000000003,
        dropouts={4: "share", 2: "mask"},
    ),
    Case(
        "full-unmask-dropout",
        "SecAgg, n=5, t=3; client 5 sends its masked input and then drops: it is a "
        "survivor, its b_5 is reconstructed from the other four.",
        n=5,
        threshold=3,
        bits=16,
        dim=8,
        round_id=0x5EC0A66000000004,
        dropouts={5: "unmask"},
    ),
    Case(
        "plus-sparse-dropouts",
        "SecAgg+, n=12, Harary degree k=4, t=3, bits=32; client 3 drops in ShareKeys and "
        "client 8 in MaskedInputCollection.",
        n=12,
        threshold=3,
        bits=32,
        dim=6,
        round_id=0x5EC0A66000000005,
        degree=4,
        dropouts={3: "share", 8: "mask"},
    ),
    Case(
        "plus-neighbourhood-survivors",
        "SecAgg+, n=16, degree k=6, t=4, bits=32; clients 1, 2 and 14 drop in "
        "MaskedInputCollection and client 7 in Unmasking: every SURVIVORS frame carries "
        "|U3| = 13 and only the recipient's surviving neighbours (secagg-v2).",
        n=16,
        threshold=4,
        bits=32,
        dim=5,
        round_id=0x5EC0A6600000000A,
        degree=6,
        dropouts={1: "mask", 2: "mask", 14: "mask", 7: "unmask"},
    ),
    Case(
        "plus-degenerate-complete",
        "SecAgg+ configured with degree 4 for n=6; client 6 never advertises, so m = 5 and "
        "degree >= m - 1: the graph over U1 is complete and every client checks the KEYS "
        "frame as the complete graph's (secagg-v2 section 5).",
        n=6,
        threshold=3,
        bits=16,
        dim=4,
        round_id=0x5EC0A6600000000B,
        degree=4,
        dropouts={6: "advertise"},
    ),
    Case(
        "active-honest",
        "SecAgg, active threat model, n=4, t=3 (> 2/3 of 3 holders): signed advertised keys "
        "and the ConsistencyCheck round; no dropout (t+1 = 4 must survive).",
        n=4,
        threshold=3,
        bits=32,
        dim=4,
        round_id=0x5EC0A66000000006,
        active=True,
    ),
    Case(
        "active-mask-dropout",
        "SecAgg, active threat model, n=7, t=5, bits=24 (3-byte wire entries); client 6 "
        "drops in MaskedInputCollection.",
        n=7,
        threshold=5,
        bits=24,
        dim=3,
        round_id=0x5EC0A66000000007,
        active=True,
        dropouts={6: "mask"},
    ),
    Case(
        "active-corrupted-envelope",
        "SecAgg, active threat model, n=7, t=5; client 3 sends clients 2 and 6 envelopes "
        "that do not open (signed by 3). Both complain at CHECK with their proven channel "
        "secret; the server opens the envelopes itself, excludes 3, and the other six "
        "mask with each other only (secagg-v3 section 5).",
        n=7,
        threshold=5,
        bits=32,
        dim=3,
        round_id=0x5EC0A6600000000C,
        active=True,
        cheats={3: (2, 6)},
    ),
    Case(
        "full-wrong-share",
        "SecAgg, honest-but-curious, n=8, t=4; client 5 reveals a wrong share of client 2's "
        "self-mask seed b_2 at Unmasking. The server's 7 shares of b_2 are not on one "
        "polynomial; it decodes around the wrong one (up to (7 - 4) // 2 = 1 correctable) "
        "and the aggregate is exact (secagg-v3 section 6, item 6).",
        n=8,
        threshold=4,
        bits=16,
        dim=4,
        round_id=0x5EC0A6600000000D,
        wrong_shares={5: 2},
    ),
    Case(
        "abort-mask-below-threshold",
        "SecAgg, n=5, t=3; client 4 drops in ShareKeys and client 2 in "
        "MaskedInputCollection: 3 masked inputs < t+1 = 4, the server aborts after the "
        "mask phase and nothing is unmasked.",
        n=5,
        threshold=3,
        bits=16,
        dim=8,
        round_id=0x5EC0A66000000008,
        dropouts={4: "share", 2: "mask"},
        expect_abort="InsufficientSurvivors",
    ),
    Case(
        "abort-unmask-below-threshold",
        "SecAgg, n=5, t=3; client 2 drops in MaskedInputCollection and client 5 in "
        "Unmasking: only 3 < t+1 = 4 clients reveal shares, the server aborts.",
        n=5,
        threshold=3,
        bits=16,
        dim=8,
        round_id=0x5EC0A66000000009,
        dropouts={2: "mask", 5: "unmask"},
        expect_abort="InsufficientSurvivors",
    ),
)


# --------------------------------------------------------------------------------------
# Driving the library
# --------------------------------------------------------------------------------------


def make_inputs(seed: bytes, ids: Sequence[int], dim: int, bits: int) -> dict[int, np.ndarray]:
    """Inputs of the clients in increasing id order: ``Csprng.uint64(dim) mod 2^bits``."""
    rng = Csprng(seed=seed)
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
    return {c: (rng.uint64(dim) & mask).astype(uint_dtype(bits)) for c in sorted(ids)}


def _frame_record(phase: str, direction: str, client: int, data: bytes) -> Json:
    return {
        "phase": phase,
        "direction": direction,
        "client": client,
        "type": data[3],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "hex": data.hex(),
    }


def corrupt(
    reply: bytes, cheater: int, victims: dict[int, bytes], key: SigningKey, rid: int
) -> bytes:
    """The cheat of DRIVER, on the wire layout of SIGNED_SHARE_KEYS (secagg-v3 section 4);
    ``victims``: each victim's channel key (what the signature names)."""
    if reply[3] != 0x1C:
        return reply
    body = bytearray(reply[8:])
    size = 4 + ENVELOPE_BYTES + 64
    for i in range(int.from_bytes(body[8:12], "big")):
        at = 12 + i * size
        to = int.from_bytes(body[at : at + 4], "big")
        if to in victims:
            body[at + 4 + 20] ^= 1
            env = bytes(body[at + 4 : at + 4 + ENVELOPE_BYTES])
            message = CTX3 + b"/envelope" + u64(rid) + u32(cheater) + u32(to) + victims[to] + env
            body[at + 4 + ENVELOPE_BYTES : at + size] = key.sign(message)
    return reply[:8] + bytes(body)


def lie(reply: bytes, owner: int) -> bytes:
    """The lying holder of DRIVER, on the wire layout of UNMASK (secagg-v1 section 7)."""
    body = bytearray(reply[8:])
    size = 4 + 1 + SHARE_BYTES
    for i in range(int.from_bytes(body[8:12], "big")):
        at = 12 + i * size
        if int.from_bytes(body[at : at + 4], "big") == owner:
            first = int.from_bytes(body[at + 5 : at + 9], "little")
            body[at + 5 : at + 9] = ((first + 1) % PRIME).to_bytes(4, "little")
    return reply[:8] + bytes(body)


def run_case(case: Case) -> Json:
    """Drive one round with the library and record everything (no checks here)."""
    ids = list(range(1, case.n + 1))
    seeds = {
        "protocol": _seed(case.name, "protocol"),
        "inputs": _seed(case.name, "inputs"),
        "identities": _seed(case.name, "identities") if case.active else None,
    }
    model = ThreatModel.ACTIVE if case.active else ThreatModel.HONEST_BUT_CURIOUS
    cfg = SecAggConfig(
        bits=case.bits,
        threshold=case.threshold,
        n_clients=case.n,
        degree=case.degree,
        threat_model=model,
    )
    identities = None
    if case.active:
        assert seeds["identities"] is not None
        id_rng = Csprng(seed=seeds["identities"])
        identities = {c: SigningKey.generate(rng=id_rng) for c in ids}
    proto = SecAggProtocol(cfg, rng=Csprng(seed=seeds["protocol"]), identities=identities)
    inputs = make_inputs(seeds["inputs"], ids, case.dim, case.bits)
    clients = {c: proto.client(round_id=case.round_id, client_id=c, value=inputs[c]) for c in ids}
    server = proto.server(round_id=case.round_id, client_ids=frozenset(ids), dim=case.dim)
    drop_at = {c: proto.phases.index(p) for c, p in case.dropouts.items()}

    frames: list[Json] = []
    refusals: list[Json] = []
    refused: set[int] = set()
    abort: Json | None = None
    phase = "start"
    try:
        requests = server.start()
        while requests:
            phase = server.phase
            index = proto.phases.index(phase)
            for c in sorted(requests):
                frames.append(_frame_record(phase, "server->client", c, requests[c]))
                if c in refused or drop_at.get(c, len(proto.phases)) <= index:
                    continue
                try:
                    reply = clients[c].handle(requests[c])
                except SecflError as e:
                    refused.add(c)
                    refusals.append({"client": c, "phase": phase, "error": type(e).__name__})
                    continue
                if reply is not None:
                    if c in case.cheats and reply[3] == T_SIGNED_SHARE_KEYS:
                        assert identities is not None
                        peers = clients[c]._peers  # type: ignore[attr-defined]
                        victims = {v: peers[v].c_pk.to_bytes() for v in case.cheats[c]}
                        reply = corrupt(reply, c, victims, identities[c], case.round_id)
                    if c in case.wrong_shares and reply[3] == T_UNMASK:
                        reply = lie(reply, case.wrong_shares[c])
                    frames.append(_frame_record(phase, "client->server", c, reply))
                    server.receive(c, reply)
            requests = server.advance()
        result = server.result
    except SecflError as e:
        abort = {"phase": phase, "error": type(e).__name__}
        result = None

    out: Json = {
        "name": case.name,
        "description": case.description,
        "spec": SPEC,
        "generator": GENERATOR,
        "driver": DRIVER,
        "config": {
            "bits": case.bits,
            "threshold": case.threshold,
            "n_clients": case.n,
            "degree": case.degree,
            "threat_model": model.name,
            "max_dropout": 0.0,
        },
        "protocol_name": proto.name,
        "phases": list(proto.phases),
        "round_id": case.round_id,
        "dim": case.dim,
        "client_ids": ids,
        "seeds": {k: (v.hex() if v is not None else None) for k, v in seeds.items()},
        "registry": (
            [
                {"client": c, "verify_key": k.verify_key().to_bytes().hex()}
                for c, k in sorted(identities.items())
            ]
            if identities
            else []
        ),
        "dropouts": [{"client": c, "phase": p} for c, p in sorted(case.dropouts.items())],
        "cheats": [{"client": c, "victims": list(v)} for c, v in sorted(case.cheats.items())],
        "wrong_shares": [{"holder": h, "owner": o} for h, o in sorted(case.wrong_shares.items())],
        "inputs": [{"client": c, "values": [int(v) for v in inputs[c]]} for c in ids],
        "frames": frames,
        "refusals": refusals,
        "expected": {
            "outcome": "abort" if abort else "aggregate",
            "abort": abort,
            "aggregate": [int(v) for v in result.aggregate] if result else None,
            "survivors": sorted(result.survivors) if result else None,
            "dropped": sorted(result.dropped) if result else None,
            "excluded": sorted(result.excluded) if result else None,
        },
    }
    return out


# --------------------------------------------------------------------------------------
# Independent reference (from protocols/secagg-v2.md; no secfl code below this line)
# --------------------------------------------------------------------------------------

CTX = b"secfl-secagg-v2"
CTX3 = b"secfl-secagg-v3"
PRIME = (1 << 24) + 43
CHUNKS = 11
SHARE_BYTES = 44
ENVELOPE_BYTES = 12 + 8 + 2 * SHARE_BYTES + 16
HKDF_SALT = b"secfl/kex/x25519-hkdf-sha256/v1"
T_ADV_REQ, T_ADV, T_KEYS, T_SHARE_KEYS, T_SHARES = 0x10, 0x11, 0x1A, 0x13, 0x14
T_MASKED, T_SURVIVORS, T_CONSISTENCY, T_SIGNATURES, T_UNMASK = 0x15, 0x1B, 0x17, 0x18, 0x19
T_SIGNED_SHARE_KEYS, T_SIGNED_SHARES, T_CHECK, T_MASK_REQUEST = 0x1C, 0x1D, 0x1E, 0x1F


def u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def u64(v: int) -> bytes:
    return v.to_bytes(8, "big")


def ref_frame(msg_type: int, body: bytes) -> bytes:
    return b"SF" + bytes([1, msg_type]) + u32(len(body)) + body


class RefReader:
    def __init__(self, frame: bytes, msg_type: int, round_id: int) -> None:
        if frame[:4] != b"SF" + bytes([1, msg_type]):
            raise MismatchError(f"frame header {frame[:4].hex()} is not type {msg_type:#04x}")
        if int.from_bytes(frame[4:8], "big") != len(frame) - 8:
            raise MismatchError("frame length field is wrong")
        self.b, self.pos = frame[8:], 0
        if self.int(8) != round_id:
            raise MismatchError("frame carries the wrong round id")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.b):
            raise MismatchError("frame is truncated")
        out = self.b[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def ids(self) -> list[int]:
        return [self.int(4) for _ in range(self.int(4))]

    def end(self) -> None:
        if self.pos != len(self.b):
            raise MismatchError("trailing bytes in frame")


def ref_ctr(key: bytes, label: bytes, nbytes: int) -> bytes:
    """AES-256-CTR keystream of (key, label): counter block = label || zero bytes."""
    enc = Cipher(algorithms.AES(key), modes.CTR(label.ljust(16, b"\x00"))).encryptor()
    return enc.update(bytes(nbytes)) + enc.finalize()


def ref_prg(seed: bytes, label: bytes, count: int, bits: int) -> list[int]:
    w = next(w for w in (1, 2, 4, 8) if 8 * w >= bits)
    ks = ref_ctr(seed, label, count * w)
    return [int.from_bytes(ks[i * w : i * w + w], "little") % (1 << bits) for i in range(count)]


def ref_graph(round_id: int, members: list[int], degree: int | None) -> dict[int, list[int]]:
    n = len(members)
    if degree is None or degree >= n - 1:
        return {c: [v for v in members if v != c] for c in members}
    seed = hashlib.sha256(CTX + b"/graph" + u64(round_id) + b"".join(map(u32, members))).digest()
    ks = ref_ctr(seed, b"graph", 8 * n)
    keys = [int.from_bytes(ks[8 * i : 8 * i + 8], "little") for i in range(n)]
    ring = [members[i] for i in sorted(range(n), key=lambda i: (keys[i], i))]
    half = degree // 2
    return {
        c: sorted(ring[(p + j) % n] for j in range(-half, half + 1) if j)
        for p, c in enumerate(ring)
    }


def ref_pair_info(purpose: bytes, round_id: int, a: int, b: int) -> bytes:
    return CTX + b"/" + purpose + u64(round_id) + u32(min(a, b)) + u32(max(a, b))


def ref_kex(sk: bytes, pk: bytes, info: bytes) -> bytes:
    shared = X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=info).derive(shared)


def ref_interpolate(points: list[tuple[int, list[int]]]) -> bytes:
    """Shamir reconstruction at 0 over GF(PRIME), chunk by chunk; decode 11 x 24 bits."""
    xs = [x for x, _ in points]
    chunks = []
    for j in range(CHUNKS):
        acc = 0
        for i, (xi, share) in enumerate(points):
            lam = 1
            for k, xk in enumerate(xs):
                if k != i:
                    lam = lam * xk % PRIME * pow(xk - xi, -1, PRIME) % PRIME
            acc = (acc + lam * share[j]) % PRIME
        chunks.append(acc)
    if any(c >= 1 << 24 for c in chunks) or chunks[-1] >= 1 << 16:
        raise MismatchError("reconstructed shares are not a 32-byte secret encoding")
    return b"".join(c.to_bytes(3, "little") for c in chunks)[:32]


def ref_eval(points: list[tuple[int, list[int]]], x: int) -> list[int]:
    """The polynomial through ``points`` (chunk by chunk), evaluated at x."""
    out = []
    for j in range(CHUNKS):
        acc = 0
        for i, (xi, share) in enumerate(points):
            lam = 1
            for k, (xk, _) in enumerate(points):
                if k != i:
                    lam = lam * (x - xk) % PRIME * pow(xi - xk, -1, PRIME) % PRIME
            acc = (acc + lam * share[j]) % PRIME
        out.append(acc)
    return out


def ref_on_one_polynomial(points: list[tuple[int, list[int]]], t: int) -> bool:
    return all(ref_eval(points[:t], x) == share for x, share in points[t:])


Revealed = list[tuple[int, int, list[int]]]


def ref_without_wrong_share(u: int, pts: Revealed, t: int) -> Revealed:
    """secagg-v3 section 6 by exhaustion (not the library's decoder): the shares as they
    are if they lie on one polynomial, else the shares less the one whose removal leaves
    the others on one polynomial (one wrong share, at least t + 2 shares)."""
    plain = [(x, s) for x, _, s in pts]
    if ref_on_one_polynomial(plain, t):
        return pts
    fits = [j for j in range(len(pts)) if ref_on_one_polynomial(plain[:j] + plain[j + 1 :], t)]
    if len(pts) < t + 2 or len(fits) != 1:
        raise MismatchError(f"shares of {u}: not one wrong share the others identify")
    return pts[: fits[0]] + pts[fits[0] + 1 :]


def ref_verify(vk_hex: str, sig: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(vk_hex)).verify(sig, message)
    except InvalidSignature:
        raise MismatchError("an Ed25519 signature in the transcript does not verify") from None


RP = 2**255 - 19
RL = 2**252 + 27742317777372353535851937790883648493
RD = -121665 * pow(121666, -1, RP) % RP
Pt = tuple[int, int]


def ed_add(p: Pt, q: Pt) -> Pt:
    """Affine addition on -x^2 + y^2 = 1 + d x^2 y^2 (RFC 8032 section 5.1)."""
    (x1, y1), (x2, y2) = p, q
    k = RD * x1 * x2 * y1 * y2 % RP
    x3 = (x1 * y2 + x2 * y1) * pow(1 + k, -1, RP) % RP
    return x3, (y1 * y2 + x1 * x2) * pow(1 - k, -1, RP) % RP


def ed_mul(k: int, p: Pt) -> Pt:
    acc: Pt = (0, 1)
    while k:
        if k & 1:
            acc = ed_add(acc, p)
        p, k = ed_add(p, p), k >> 1
    return acc


def ed_point(y: int, sign: int) -> Pt:
    if y >= RP:
        raise MismatchError("non-canonical point")
    x2 = (y * y - 1) * pow(RD * y * y + 1, -1, RP) % RP
    x = pow(x2, (RP + 3) // 8, RP)
    if (x * x - x2) % RP:
        x = x * pow(2, (RP - 1) // 4, RP) % RP
    if (x * x - x2) % RP or (x == 0 and sign):
        raise MismatchError("not a point")
    return (RP - x if x & 1 != sign else x), y


def ed_encode(p: Pt) -> bytes:
    return (p[1] | (p[0] & 1) << 255).to_bytes(32, "little")


def ref_lift(u_bytes: bytes) -> Pt:
    """The Edwards point, even x, with the Montgomery u of an X25519 key."""
    u = int.from_bytes(u_bytes, "little")
    return ed_point((u - 1) * pow(u + 1, -1, RP) % RP, 0)


def ref_dleq(prover: bytes, peer: bytes, revealed: bytes, proof: bytes, context: bytes) -> bytes:
    """secagg-v3 section 3: check (c, z) and return the X25519 output u(K)."""
    n = int.from_bytes(revealed, "little")
    k = ed_point(n & (2**255 - 1), n >> 255)
    a, peer8 = ref_lift(prover), ed_mul(8, ref_lift(peer))
    base8 = ed_mul(8, ref_lift((9).to_bytes(32, "little")))
    if ed_mul(RL, k) != (0, 1) or ed_mul(RL, a) != (0, 1) or k == (0, 1):
        raise MismatchError("a revealed point or key outside the prime-order subgroup")
    c, z = int.from_bytes(proof[:32], "little"), int.from_bytes(proof[32:], "little")
    r1 = ed_add(ed_mul(z, base8), ed_mul(c, (-a[0] % RP, a[1])))
    r2 = ed_add(ed_mul(z, peer8), ed_mul(c, (-k[0] % RP, k[1])))
    h = hashlib.sha512()
    label = b"secfl/dleq-x25519/v1/challenge"
    for part in (label, context, prover, peer, revealed, ed_encode(r1), ed_encode(r2)):
        h.update(u32(len(part)) + part)
    if c >= RL or z >= RL or int.from_bytes(h.digest(), "little") % RL != c:
        raise MismatchError("a complaint's proof does not verify")
    return ((1 + k[1]) * pow(1 - k[1], -1, RP) % RP).to_bytes(32, "little")


def ref_opens(key: bytes, env: bytes, rid: int, sender: int, recipient: int) -> bool:
    """secagg-v1 section 8.3: the envelope authenticates, names both parties, and holds
    22 field elements."""
    ad = ref_pair_info(b"share", rid, sender, recipient) + u32(sender)
    try:
        plain = AESGCM(key).decrypt(env[:12], env[12:], ad)
    except InvalidTag:
        return False
    words = [int.from_bytes(plain[i : i + 4], "little") for i in range(8, len(plain), 4)]
    return plain[:8] == u32(sender) + u32(recipient) and max(words) < PRIME


def ref_check_phase(
    sent: Any,
    envelopes: dict[tuple[int, int], tuple[bytes, bytes]],
    shared: list[int],
    graph: dict[int, list[int]],
    keys: dict[int, tuple[bytes, bytes]],
    registry: dict[int, str],
    rid: int,
    derived: Json,
) -> list[int]:
    """secagg-v3 sections 4-5: the relayed SIGNED_SHARES, each CHECK judged, the
    MASK_REQUEST frames; returns U2' (who the round continues with)."""
    for c, d in sent("server->client", T_SIGNED_SHARES).items():
        mine = [(u, envelopes[(u, c)]) for u in shared if (u, c) in envelopes]
        body = u64(rid) + u32(len(mine)) + b"".join(u32(u) + e + g for u, (e, g) in mine)
        _agree(f"SIGNED_SHARES to {c}", d.hex(), ref_frame(T_SIGNED_SHARES, body).hex())
    checked, excluded = [], set()
    for c, d in sorted(sent("client->server", T_CHECK).items()):
        r = RefReader(d, T_CHECK, rid)
        count = r.int(4)
        records, sig = r.take(100 * count), r.take(64)
        r.end()
        ref_verify(registry[c], sig, CTX3 + b"/check" + u64(rid) + u32(c) + records)
        for rec in (records[i : i + 100] for i in range(0, len(records), 100)):
            u = int.from_bytes(rec[:4], "big")
            context = CTX3 + b"/complaint" + u64(rid) + u32(c) + u32(u)
            raw = ref_dleq(keys[c][0], keys[u][0], rec[4:36], rec[36:], context)
            info = ref_pair_info(b"channel", rid, u, c)
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=info)
            channel = hkdf.derive(raw)
            if ref_opens(channel, envelopes[(u, c)][0], rid, u, c):
                raise MismatchError(f"client {c}'s complaint about {u}: the envelope opens")
            excluded.add(u)
        checked.append(c)
    mask_set = sorted(set(checked) - excluded)
    derived["excluded"] = sorted(excluded)
    requests = sent("server->client", T_MASK_REQUEST)
    _agree("MASK_REQUEST goes to U2'", sorted(requests), mask_set)
    for c, d in requests.items():
        listed = [v for v in graph[c] if v in mask_set]
        body = u64(rid) + u32(len(listed)) + b"".join(map(u32, listed))
        _agree(f"MASK_REQUEST to {c}", d.hex(), ref_frame(T_MASK_REQUEST, body).hex())
    return mask_set


def reference_check(vec: Json) -> Json:
    """Re-derive the round from its transcript; return the derived values to record."""
    cfg, rid, dim = vec["config"], vec["round_id"], vec["dim"]
    bits, t, degree = cfg["bits"], cfg["threshold"], cfg["degree"]
    active = cfg["threat_model"] == "ACTIVE"
    modulus = 1 << bits
    width = -(-bits // 8)
    frames = [
        (f["phase"], f["direction"], f["client"], bytes.fromhex(f["hex"])) for f in vec["frames"]
    ]
    for f in vec["frames"]:
        _agree("frame sha256", f["sha256"], hashlib.sha256(bytes.fromhex(f["hex"])).hexdigest())
        _agree("frame type", f["type"], bytes.fromhex(f["hex"])[3])
    registry = {r["client"]: r["verify_key"] for r in vec["registry"]}

    def sent(direction: str, msg_type: int) -> dict[int, bytes]:
        return {c: d for _, dr, c, d in frames if dr == direction and d[3] == msg_type}

    # AdvertiseKeys: the request, then each client's keys (and signature).
    adv_req = ref_frame(
        T_ADV_REQ,
        u64(rid) + bytes([int(active)]) + u32(dim) + bytes([bits]) + u32(t) + u32(degree or 0),
    )
    for c, d in sent("server->client", T_ADV_REQ).items():
        _agree(f"ADVERTISE_REQUEST to {c}", d.hex(), adv_req.hex())
    keys: dict[int, tuple[bytes, bytes]] = {}
    signed: dict[int, bytes] = {}
    for c, d in sent("client->server", T_ADV).items():
        r = RefReader(d, T_ADV, rid)
        c_pk, s_pk = r.take(32), r.take(32)
        if active:
            signed[c] = r.take(64)
            ref_verify(
                registry[c], signed[c], CTX + b"/advertise" + u64(rid) + u32(c) + c_pk + s_pk
            )
        r.end()
        keys[c] = (c_pk, s_pk)

    # ShareKeys: U1 = the recipients of KEYS (one each); each frame carries m = |U1| and
    # the recipient's neighbours with their evaluation points x = 1 + index in U1.
    derived: Json = {}
    keys_frames = sent("server->client", T_KEYS)
    if not keys_frames:
        return derived
    members = sorted(keys_frames)
    _agree("U1 = clients that advertised", members, sorted(keys))
    point = {c: i + 1 for i, c in enumerate(members)}
    graph_sent: dict[int, list[int]] = {}
    for c, d in keys_frames.items():
        r = RefReader(d, T_KEYS, rid)
        _agree(f"m in the KEYS frame to {c}", r.int(4), len(members))
        nbrs = []
        for _ in range(r.int(4)):
            v = r.int(4)
            _agree(f"evaluation point of {v} sent to {c}", r.int(4), point[v])
            _agree(f"keys of {v} relayed to {c}", (r.take(32), r.take(32)), keys[v])
            if active:
                _agree(f"signature of {v} relayed to {c}", r.take(64), signed[v])
            nbrs.append(v)
        r.end()
        graph_sent[c] = nbrs
    graph = ref_graph(rid, members, degree)
    _agree("neighbour graph (KEYS frames vs SHA-256 seed + AES-CTR)", graph_sent, graph)
    derived["members"] = members
    derived["graph"] = [{"client": c, "neighbours": graph[c]} for c in members]

    # ShareKeys replies: U2 and the envelopes' addressing (secagg-v3, active: each
    # envelope signed by its sender).
    share_type, sig_len = (T_SIGNED_SHARE_KEYS, 64) if active else (T_SHARE_KEYS, 0)
    envelopes: dict[tuple[int, int], tuple[bytes, bytes]] = {}  # (sender, recipient)
    shared = sorted(sent("client->server", share_type))
    for c, d in sent("client->server", share_type).items():
        r = RefReader(d, share_type, rid)
        to = []
        for _ in range(r.int(4)):
            v, env, sig = r.int(4), r.take(ENVELOPE_BYTES), r.take(sig_len)
            if active:
                head = CTX3 + b"/envelope" + u64(rid) + u32(c) + u32(v)
                ref_verify(registry[c], sig, head + keys[v][0] + env)
            envelopes[(c, v)] = (env, sig)
            to.append(v)
        r.end()
        _agree(f"envelopes of {c} go to its neighbours", to, graph[c])
    derived["shared"] = shared
    if active:
        shared = ref_check_phase(sent, envelopes, shared, graph, keys, registry, rid, derived)
        if vec["expected"]["outcome"] != "abort":
            _agree("excluded (library)", vec["expected"]["excluded"], derived["excluded"])

    # Masked inputs: U3.
    masked: dict[int, list[int]] = {}
    for c, d in sent("client->server", T_MASKED).items():
        r = RefReader(d, T_MASKED, rid)
        _agree("masked vector length", r.int(4), dim)
        raw = r.take(dim * width)
        r.end()
        masked[c] = [int.from_bytes(raw[i * width : (i + 1) * width], "little") for i in range(dim)]
    survivors = sorted(masked)
    derived["masked"] = [{"client": c, "values": masked[c]} for c in survivors]
    to_survivors = sent("server->client", T_SURVIVORS)
    if to_survivors:
        _agree("SURVIVORS go to U3", sorted(to_survivors), survivors)
    for c, d in to_survivors.items():
        listed = [v for v in graph[c] if v in masked]  # U3 ∩ N(c), increasing
        body = u64(rid) + u32(len(survivors)) + u32(len(listed)) + b"".join(map(u32, listed))
        _agree(f"SURVIVORS to {c}", d.hex(), ref_frame(T_SURVIVORS, body).hex())
    if active:
        message = CTX + b"/survivors" + u64(rid) + b"".join(map(u32, survivors))
        for c, d in sent("client->server", T_CONSISTENCY).items():
            r = RefReader(d, T_CONSISTENCY, rid)
            ref_verify(registry[c], r.take(64), message)
            r.end()

    # Unmasking: collect the revealed shares, per owner, in increasing holder id.
    index = {c: i + 1 for i, c in enumerate(members)}
    revealed: dict[int, list[tuple[int, int, list[int]]]] = {}
    for c, d in sorted(sent("client->server", T_UNMASK).items()):
        r = RefReader(d, T_UNMASK, rid)
        for _ in range(r.int(4)):
            u, kind = r.int(4), r.int(1)
            share = [int.from_bytes(r.take(4), "little") for _ in range(CHUNKS)]
            _agree(f"share kind {c} reveals for {u}", kind, 0 if u in masked else 1)
            revealed.setdefault(u, []).append((index[c], kind, share))
        r.end()
    if vec["expected"]["outcome"] == "abort":
        return derived

    secrets: list[Json] = []
    self_masks: list[Json] = []
    correction = [0] * dim
    for u in shared:
        pts = revealed[u]
        if len(pts) < t:
            raise MismatchError(f"round finished with {len(pts)} < t shares for {u}")
        pts = ref_without_wrong_share(u, pts, t)
        secret = ref_interpolate([(x, s) for x, _, s in pts[:t]])
        if len(pts) > t:  # any t shares give the same secret
            _agree(
                f"secret of {u} from the last t shares",
                ref_interpolate([(x, s) for x, _, s in pts[-t:]]),
                secret,
            )
        if u in masked:
            secrets.append({"owner": u, "kind": "b", "hex": secret.hex()})
            mask = ref_prg(secret, b"self", dim, bits)
            self_masks.append({"client": u, "values": mask})
            correction = [(a - m) % modulus for a, m in zip(correction, mask, strict=True)]
            continue
        secrets.append({"owner": u, "kind": "s_sk", "hex": secret.hex()})
        pk = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
        _agree(f"public key of reconstructed s_{u}^SK", pk.hex(), keys[u][1].hex())
        for v in graph[u]:
            if v not in masked:
                continue
            seed = ref_kex(secret, keys[v][1], ref_pair_info(b"mask", rid, u, v))
            pair = ref_prg(seed, b"pair", dim, bits)
            sign = -1 if v < u else 1  # v added +PRG(s_uv) iff v < u
            correction = [(a + sign * m) % modulus for a, m in zip(correction, pair, strict=True)]

    masked_sum = [sum(col) % modulus for col in zip(*masked.values(), strict=True)]
    aggregate = [(s + c) % modulus for s, c in zip(masked_sum, correction, strict=True)]
    inputs = {e["client"]: e["values"] for e in vec["inputs"]}
    plain = [sum(col) % modulus for col in zip(*(inputs[u] for u in survivors), strict=True)]
    _agree("aggregate (reference unmasking) = plaintext sum of survivors", aggregate, plain)
    _agree("aggregate (library) = reference", vec["expected"]["aggregate"], aggregate)
    _agree("survivors (library) = senders of MASKED_INPUT", vec["expected"]["survivors"], survivors)
    derived.update(
        survivors=survivors,
        masked_sum=masked_sum,
        secrets=secrets,
        self_masks=self_masks,
        unmask_correction=correction,
    )
    return derived


def build(case: Case) -> Json:
    vec = run_case(case)
    outcome = vec["expected"]["abort"]
    if case.expect_abort is None and outcome is not None:
        raise MismatchError(f"{case.name}: round aborted unexpectedly: {outcome}")
    if case.expect_abort is not None:
        _agree(f"{case.name}: abort class", outcome and outcome["error"], case.expect_abort)
    if vec["refusals"]:
        raise MismatchError(f"{case.name}: unexpected refusals {vec['refusals']}")
    derived = reference_check(vec)
    # Library-side views that the reference recomputed independently.
    if "graph" in derived:
        members = derived["members"]
        lib_graph = neighbourhoods(members, degree=case.degree, seed=_lib_graph_seed(case, members))
        _agree(
            f"{case.name}: library neighbourhoods()",
            {c: sorted(v) for c, v in lib_graph.items()},
            {g["client"]: g["neighbours"] for g in derived["graph"]},
        )
    vec["derived"] = derived
    return vec


def _lib_graph_seed(case: Case, members: list[int]) -> bytes:
    """The graph seed as the spec defines it (secagg-v1 section 5 with secagg-v2's CTX)."""
    ids = b"".join(m.to_bytes(4, "big") for m in members)
    return hashlib.sha256(CTX + b"/graph" + case.round_id.to_bytes(8, "big") + ids).digest()


# --------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    return {f"{case.name}.json": vectorio.render(build(case)) for case in CASES}


def main(argv: Sequence[str] | None = None) -> int:
    return vectorio.main(
        "make_secagg_vectors",
        VECTOR_DIR,
        generate,
        argv,
        description=(__doc__ or "").splitlines()[0],
        mismatch=MismatchError,
    )


if __name__ == "__main__":
    sys.exit(main())
