#!/usr/bin/env python3
"""Generate the SecAgg / SecAgg+ known-answer vectors in ``protocols/vectors/secagg-v2/``.

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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secfl.errors import SecflError
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols.graphs import neighbourhoods
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "protocols" / "vectors" / "secagg-v2"
GENERATOR = "protocols/tools/make_secagg_vectors.py"
SPEC = "protocols/secagg-v2.md"

Json = dict[str, Any]

DRIVER = (
    "Clients are built in increasing id order (each takes one spawn of the protocol "
    "Csprng), then the server. Each phase: the server's requests are visited in increasing "
    "client id; each is recorded (server->client); unless the client is scheduled to drop "
    "in this or an earlier phase, or refused earlier, the client handles it and its reply "
    "is recorded (client->server) and given to the server at once; a client that raises a "
    "SecflError is recorded as a refusal and treated as a dropout. Then server.advance(); "
    "a SecflError from the server ends the round (expected.abort)."
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
        "inputs": [{"client": c, "values": [int(v) for v in inputs[c]]} for c in ids],
        "frames": frames,
        "refusals": refusals,
        "expected": {
            "outcome": "abort" if abort else "aggregate",
            "abort": abort,
            "aggregate": [int(v) for v in result.aggregate] if result else None,
            "survivors": sorted(result.survivors) if result else None,
            "dropped": sorted(result.dropped) if result else None,
        },
    }
    return out


# --------------------------------------------------------------------------------------
# Independent reference (from protocols/secagg-v2.md; no secfl code below this line)
# --------------------------------------------------------------------------------------

CTX = b"secfl-secagg-v2"
PRIME = (1 << 24) + 43
CHUNKS = 11
SHARE_BYTES = 44
ENVELOPE_BYTES = 12 + 8 + 2 * SHARE_BYTES + 16
HKDF_SALT = b"secfl/kex/x25519-hkdf-sha256/v1"
T_ADV_REQ, T_ADV, T_KEYS, T_SHARE_KEYS, T_SHARES = 0x10, 0x11, 0x1A, 0x13, 0x14
T_MASKED, T_SURVIVORS, T_CONSISTENCY, T_SIGNATURES, T_UNMASK = 0x15, 0x1B, 0x17, 0x18, 0x19


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


def ref_verify(vk_hex: str, sig: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(vk_hex)).verify(sig, message)
    except InvalidSignature:
        raise MismatchError("an Ed25519 signature in the transcript does not verify") from None


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

    # ShareKeys replies: U2 and the envelopes' addressing.
    shared = sorted(sent("client->server", T_SHARE_KEYS))
    for c, d in sent("client->server", T_SHARE_KEYS).items():
        r = RefReader(d, T_SHARE_KEYS, rid)
        to = []
        for _ in range(r.int(4)):
            to.append(r.int(4))
            r.take(ENVELOPE_BYTES)
        r.end()
        _agree(f"envelopes of {c} go to its neighbours", to, graph[c])
    derived["shared"] = shared

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
