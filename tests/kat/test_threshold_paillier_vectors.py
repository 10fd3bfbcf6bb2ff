"""Known-answer tests for threshold Paillier (paillier-sum-v2): replay every vector in
protocols/vectors/paillier-threshold/.

The vectors are generated, and cross-checked against an independent reference written from
the spec, by ``protocols/tools/make_threshold_paillier_vectors.py``; these tests only read
them. The key (safe primes and every share) is **public and insecure by design**. A failure
means the library no longer implements ``paillier-sum-v2`` as specified (or its randomness
consumption changed, which changes what a seed means: that needs a new spec version).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secfl import errors
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import paillier_threshold as pt

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors" / "paillier-threshold"

Json = dict[str, Any]


@cache
def load(name: str) -> Json:
    data: Json = json.loads((VECTORS / f"{name}.json").read_text())
    return data


def h(x: str) -> int:
    return int(x, 16)


@cache
def key() -> tuple[tp.ThresholdPublicKey, tuple[tp.KeyShare, ...]]:
    vec = load("key")
    return tp.deal_key(
        h(vec["p_hex"]),
        h(vec["q_hex"]),
        holders=vec["holders"],
        threshold=vec["threshold"],
        rng=Csprng(seed=bytes.fromhex(vec["deal_seed_hex"])),
    )


def test_key() -> None:
    vec = load("key")
    pk, shares = key()
    assert pk.n == h(vec["n_hex"])
    assert pk.delta == vec["delta"]
    assert pk.verification_base == h(vec["v_hex"])
    assert list(pk.verification_keys) == [h(x) for x in vec["verification_keys_hex"]]
    assert [s.private_number() for s in shares] == [h(x) for x in vec["shares_hex"]]
    assert hashlib.sha256(pk.to_bytes()).hexdigest() == vec["public_key_bytes_sha256"]
    assert pk.fingerprint().hex() == vec["fingerprint_hex"]
    assert pk.nonce_bits == vec["nonce_bits"]
    assert pk.to_phe().g == pk.n + 1


def test_partials_and_combination() -> None:
    vec = load("partial")
    pk, shares = key()
    cts = [h(x) for x in vec["ciphertexts_hex"]]
    ctx = bytes.fromhex(vec["context_hex"])
    parts = {}
    for s, want in zip(shares, vec["holders"], strict=True):
        part = tp.partial_decrypt(
            s, cts, context=ctx, rng=Csprng(seed=bytes.fromhex(want["seed_hex"]))
        )
        assert part.to_bytes(pk).hex() == want["wire_hex"]
        assert part.challenge == h(want["e_hex"])
        assert part.response == h(want["z_hex"])
        tp.verify_partial(pk, cts, part, context=ctx)
        parts[s.index] = part
    for combo in vec["combinations"]:
        got = tp.combine(pk, cts, [parts[i] for i in combo["holders"]], context=ctx)
        assert list(got.plaintexts) == [h(x) for x in combo["plaintexts_hex"]]
        assert tp._lagrange_delta(combo["holders"], pk.delta) == combo["mu"]
    assert [h(x) for x in vec["combinations"][0]["plaintexts_hex"]] == [
        h(x) for x in vec["plaintexts_hex"]
    ]


def config(pk: tp.ThresholdPublicKey, vec: Json) -> pt.ThresholdPaillierConfig:
    ids = {
        int(c): SigningKey.from_bytes(bytes.fromhex(s)) for c, s in vec["client_seeds_hex"].items()
    }
    cfg = vec["config"]
    return pt.ThresholdPaillierConfig(
        public_key=pk,
        registry={c: k.verify_key() for c, k in ids.items()},
        bits=cfg["bits"],
        n_clients=cfg["n_clients"],
        value_bits=cfg["value_bits"],
        min_clients=cfg["min_clients"],
        ask_first=vec.get("ask_first"),
    )


@pytest.mark.parametrize("name", ["round", "round-ask-first"])
def test_round(name: str) -> None:
    vec = load(name)
    pk, shares = key()
    cfg = config(pk, vec)
    ids = {
        int(c): SigningKey.from_bytes(bytes.fromhex(s)) for c, s in vec["client_seeds_hex"].items()
    }
    holders = {
        s.index: pt.ThresholdPaillierKeyHolder(
            cfg, s, rng=Csprng(seed=bytes.fromhex(vec["holder_seeds_hex"][str(s.index)]))
        )
        for s in shares
    }
    proto = pt.ThresholdPaillierProtocol(
        cfg, identities=ids, rng=Csprng(seed=bytes.fromhex(vec["protocol_seed_hex"]))
    )
    frames = iter(vec["frames"])
    rid, dim = vec["round_id"], vec["config"]["dim"]
    inputs = {int(c): v for c, v in vec["inputs"].items()}

    def expect(direction: str, party: int, data: bytes) -> None:
        f = next(frames)
        assert (f["direction"], f["party"]) == (direction, party)
        assert data.hex() == f["hex"]

    server = proto.server(round_id=rid, client_ids=frozenset(inputs), dim=dim)
    requests = server.start()
    for c in sorted(inputs):
        value = np.array(inputs[c], dtype=np.uint16)
        client = proto.client(round_id=rid, client_id=c, value=value)
        expect("server->client", c, requests[c])
        reply = client.handle(requests[c])
        assert reply is not None
        expect("client->server", c, reply)
        server.receive(c, reply)
    outgoing = server.advance()
    phases = [str(server.phase)]
    while outgoing:
        for i in sorted(pt.KEY_HOLDER_PARTY_BASE - party for party in outgoing):
            request = outgoing[pt.key_holder_party(i)]
            expect("server->key_holder", i, request)
            if i == vec["down"]:
                continue
            answer = holders[i].handle(request)
            expect("key_holder->server", i, answer)
            server.receive(pt.key_holder_party(i), answer)
        outgoing = server.advance()
        phases.append(str(server.phase))
    assert phases == vec["phases"]
    assert next(frames, None) is None
    assert [int(v) for v in server.result.aggregate] == vec["expected"]["aggregate"]
    assert sorted(server.result.survivors) == vec["expected"]["survivors"]
    assert sorted(server.rejected_holders) == vec["expected"]["rejected_holders"]


@pytest.mark.parametrize("case", load("refusals")["cases"], ids=lambda c: c["what"])
def test_refusals(case: Json) -> None:
    pk, shares = key()
    cfg = config(pk, load("round"))
    holder = pt.ThresholdPaillierKeyHolder(cfg, shares[0], rng=Csprng())
    with pytest.raises(getattr(errors, case["error"])) as info:
        holder.handle(bytes.fromhex(case["request_hex"]))
    assert type(info.value) is getattr(errors, case["error"])


def test_second_decryption_in_a_round_is_refused() -> None:
    vec = load("refusals")["replay"]
    pk, shares = key()
    holder = pt.ThresholdPaillierKeyHolder(config(pk, load("round")), shares[0], rng=Csprng())
    holder.handle(bytes.fromhex(vec["first_hex"]))
    with pytest.raises(errors.ProtocolAbort, match="already decrypted"):
        holder.handle(bytes.fromhex(vec["second_hex"]))
