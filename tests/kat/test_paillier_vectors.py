"""Known-answer tests for Paillier: replay every vector in protocols/vectors/paillier/.

The vectors are generated (and cross-checked against an independent reference) by
``protocols/tools/make_paillier_vectors.py``; these tests only read them. They use one fixed
1024-bit key whose factors are published in ``key.json``: **public and insecure by design**.
Every ciphertext must come out byte for byte from the recorded seeds, and the single-value
ciphertexts must also come out of ``phe``'s own ``raw_encrypt(m, r)`` (an independent
implementation). A failure means the library no longer implements ``paillier-sum-v1`` as
specified (or its randomness consumption changed, which changes what a seed means: that
needs a new spec version).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import phe
import pytest

from secfl.errors import EncodingOverflow
from secfl.hazmat import paillier as hp
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.protocols import paillier as pp
from secfl.protocols.base import KEY_HOLDER
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors" / "paillier"
ROUNDS = ("round-3-clients", "round-dropout")

Json = dict[str, Any]


@cache
def load(name: str) -> Json:
    data: Json = json.loads((VECTORS / f"{name}.json").read_text())
    return data


def cases(name: str, key: str = "cases") -> list[Any]:
    return [pytest.param(c, id=c["name"]) for c in load(name)[key]]


@cache
def keys() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    k = load("key")
    public = phe.PaillierPublicKey(int(k["n_hex"], 16))
    return public, phe.PaillierPrivateKey(public, int(k["p_hex"], 16), int(k["q_hex"], 16))


def layout_for(value_bits: int, n_clients: int) -> hp.PackingLayout:
    return hp.PackingLayout.plan(
        modulus_bits=int(keys()[0].n).bit_length(), value_bits=value_bits, n_clients=n_clients
    )


def test_all_vector_files_present() -> None:
    present = {p.stem for p in VECTORS.glob("*.json")}
    assert {"key", "layout", "single", "packed", "boundary", *ROUNDS} <= present
    assert "insecure" in load("key")["warning"]


def test_key_and_fingerprint() -> None:
    public, private = keys()
    k = load("key")
    assert public.n.bit_length() == k["n_bits"] == 1024
    assert private.p * private.q == public.n
    assert hp.ciphertext_bytes(public) == k["ciphertext_bytes"]
    assert pp.key_fingerprint(public).hex() == k["fingerprint_hex"]


# ------------------------------------------------------------------------ layout.json


@pytest.mark.parametrize("case", cases("layout"))
def test_layout(case: Json) -> None:
    lay = hp.PackingLayout.plan(
        modulus_bits=case["modulus_bits"],
        value_bits=case["value_bits"],
        n_clients=case["n_clients"],
    )
    e = case["expected"]
    assert lay.slot_bits == e["slot_bits"]
    assert lay.slots_per_ciphertext == e["slots_per_ciphertext"]
    assert lay.offset == e["offset"]
    assert (lay.min_value, lay.max_value) == (e["min_value"], e["max_value"])
    assert lay.headroom_bits == e["headroom_bits"]
    for count, n_ct in case["ciphertexts_for"].items():
        assert lay.ciphertexts_for(int(count)) == n_ct


@pytest.mark.parametrize("case", cases("layout", "errors"))
def test_layout_errors(case: Json) -> None:
    assert case["error"] == "EncodingOverflow"
    with pytest.raises(EncodingOverflow):
        hp.PackingLayout.plan(
            modulus_bits=case["modulus_bits"],
            value_bits=case["value_bits"],
            n_clients=case["n_clients"],
        )


@pytest.mark.parametrize("case", cases("layout", "explicit_errors"))
def test_explicit_layout_errors(case: Json) -> None:
    with pytest.raises(EncodingOverflow):
        hp.PackingLayout(
            modulus_bits=case["modulus_bits"],
            value_bits=case["value_bits"],
            n_clients=case["n_clients"],
            slot_bits=case["slot_bits"],
            slots_per_ciphertext=case["slots_per_ciphertext"],
        )


# ------------------------------------------------------------------------ single.json


@pytest.mark.parametrize("case", cases("single"))
def test_single_value_matches_phe(case: Json) -> None:
    public, private = keys()
    m, r, c = (int(case[f], 16) for f in ("plaintext_hex", "r_hex", "ciphertext_hex"))
    seed = bytes.fromhex(case["seed_hex"])
    assert hp.encrypt_int(public, m, rng=Csprng(seed=seed)) == c
    assert public.raw_encrypt(m, r_value=r) == c  # phe, independently
    assert private.raw_decrypt(c) == m
    assert hp.decrypt_int(private, c) == m


# ------------------------------------------------------------------------ packed.json


@pytest.mark.parametrize("case", cases("packed"))
def test_packed_vector(case: Json) -> None:
    public, private = keys()
    layout = layout_for(case["value_bits"], case["n_clients"])
    assert layout.slot_bits == case["layout"]["slot_bits"]
    values = np.array(case["values"], dtype=np.int64)
    seed = bytes.fromhex(case["seed_hex"])
    expected = bytes.fromhex(case["ciphertexts_hex"])
    assert hashlib.sha256(expected).hexdigest() == case["ciphertexts_sha256"]
    ct = hp.encrypt_vector(public, values, layout, randomness=Csprng(seed=seed))
    assert hp.ciphertexts_to_bytes(ct) == expected
    pool = hp.RandomnessPool(public, rng=Csprng(seed=seed))
    pool.fill(len(ct.ciphertexts))
    assert hp.ciphertexts_to_bytes(hp.encrypt_vector(public, values, layout, randomness=pool)) == (
        expected
    )
    parsed = hp.ciphertexts_from_bytes(expected, public, layout, count=values.size, n_summed=1)
    np.testing.assert_array_equal(hp.decrypt_vector(private, parsed), values)
    # Each ciphertext, recomputed from the recorded plaintext and obfuscator material.
    n = int(public.n)
    nsq = n * n
    plaintexts = [int(h, 16) for h in case["plaintexts_hex"]]
    material = case["obfuscators"]
    if material["path"] == "direct":
        rebuilt = [
            public.raw_encrypt(m, r_value=int(r, 16))
            for m, r in zip(plaintexts, material["r_hex"], strict=True)
        ]
    else:
        h = pow(int(material["x_hex"], 16), n, nsq)
        rebuilt = [
            (1 + m * n) * pow(h, int(a, 16), nsq) % nsq
            for m, a in zip(plaintexts, material["exponents_hex"], strict=True)
        ]
    assert [int(c) for c in ct.ciphertexts] == rebuilt
    assert [private.raw_decrypt(c) for c in rebuilt] == plaintexts


# ------------------------------------------------------------------------ rounds


@pytest.mark.parametrize("name", ROUNDS)
def test_protocol_round(name: str) -> None:
    vec = load(name)
    public, private = keys()
    cfg_v = vec["config"]
    cfg = PaillierConfig(
        public_key=public,
        bits=cfg_v["bits"],
        n_clients=cfg_v["n_clients"],
        value_bits=cfg_v["value_bits"],
        min_clients=cfg_v["min_clients"],
    )
    assert cfg.layout.slot_bits == cfg_v["layout"]["slot_bits"]
    holder = PaillierKeyHolder(cfg, private)
    frames: list[tuple[str, int, bytes]] = []
    proto = PaillierProtocol(
        cfg, key_holder=holder, rng=Csprng(seed=bytes.fromhex(vec["protocol_seed_hex"]))
    )
    dt = uint_dtype(cfg.bits)
    invited = vec["invited"]
    server = proto.server(round_id=vec["round_id"], client_ids=frozenset(invited), dim=vec["dim"])
    requests = server.start()
    clients = {
        c: proto.client(
            round_id=vec["round_id"], client_id=c, value=np.array(vec["inputs"][str(c)], dtype=dt)
        )
        for c in invited
    }
    for c in invited:
        frames.append(("server->client", c, requests[c]))
        if c in vec["dropped"]:
            continue
        reply = clients[c].handle(requests[c])
        assert reply is not None
        frames.append(("client->server", c, reply))
        server.receive(c, reply)
    # The key holder is a party of the session: the server addresses it like a client.
    (request,) = server.advance().values()
    frames.append(("aggregator->key_holder", 0, request))
    answer = holder.handle(request)
    frames.append(("key_holder->aggregator", 0, answer))
    server.receive(KEY_HOLDER, answer)
    assert server.advance() == {}
    assert len(frames) == len(vec["frames"])
    for (direction, client, data), want in zip(frames, vec["frames"], strict=True):
        assert (direction, client, data[3], len(data)) == (
            want["direction"],
            want["client"],
            want["type"],
            want["length"],
        )
        assert hashlib.sha256(data).hexdigest() == want["sha256"]
        assert data.hex() == want["hex"]
    result = server.result
    assert [int(v) for v in result.aggregate] == vec["expected"]["aggregate"]
    assert sorted(result.survivors) == vec["expected"]["survivors"]
    assert sorted(result.dropped) == vec["expected"]["dropped"]
    survivors = vec["expected"]["survivors"]
    plain = np.zeros(vec["dim"], dtype=np.uint64)
    for c in survivors:
        plain += np.array(vec["inputs"][str(c)], dtype=np.uint64)
    mask = np.uint64((1 << cfg.bits) - 1) if cfg.bits < 64 else np.uint64(2**64 - 1)
    assert [int(v) for v in plain & mask] == vec["expected"]["aggregate"]


# ------------------------------------------------------------------------ boundary.json


@pytest.mark.parametrize("case", cases("boundary", "fits"))
def test_boundary_fits_exactly(case: Json) -> None:
    public, private = keys()
    b = load("boundary")
    layout = layout_for(b["value_bits"], b["n_clients"])
    assert layout.slot_bits == b["layout"]["slot_bits"]
    assert case["slot_sum"] < 1 << layout.slot_bits
    vectors = [
        hp.encrypt_vector(
            public,
            np.full(case["count"], case["value"], np.int64),
            layout,
            randomness=Csprng(seed=bytes.fromhex(s)),
        )
        for s in case["client_seeds_hex"]
    ]
    total = hp.sum_vectors(vectors)
    assert hp.ciphertexts_to_bytes(total) == bytes.fromhex(case["sum_ciphertexts_hex"])
    assert [private.raw_decrypt(int(c)) for c in total.ciphertexts] == [
        int(h, 16) for h in case["sum_plaintexts_hex"]
    ]
    np.testing.assert_array_equal(
        hp.decrypt_vector(private, total), np.full(case["count"], case["expected_sum"])
    )


def _overflow_action(case: Json) -> Any:
    public, private = keys()
    b = load("boundary")
    layout = layout_for(b["value_bits"], b["n_clients"])
    fits = b["fits"][0]
    name = case["name"]
    if name == "one-more-client":
        seeds = [*fits["client_seeds_hex"], case["extra_seed_hex"]]
        vectors = [
            hp.encrypt_vector(
                public,
                np.full(fits["count"], fits["value"], np.int64),
                layout,
                randomness=Csprng(seed=bytes.fromhex(s)),
            )
            for s in seeds
        ]
        return lambda: hp.sum_vectors(vectors)
    if name.startswith("value-"):
        values = np.array(case["values"], np.int64)
        return lambda: hp.encrypt_vector(public, values, layout, randomness=Csprng(seed=bytes(32)))
    if name == "n-summed-above-layout":
        data = bytes.fromhex(fits["sum_ciphertexts_hex"])
        return lambda: hp.ciphertexts_from_bytes(
            data, public, layout, count=fits["count"], n_summed=case["n_summed"]
        )
    if name == "protocol-input-outside-value-bits":
        cfg = PaillierConfig(
            public_key=public,
            bits=case["bits"],
            n_clients=b["n_clients"],
            value_bits=b["value_bits"],
        )
        proto = PaillierProtocol(cfg, key_holder=PaillierKeyHolder(cfg, private), rng=Csprng())
        value = np.array(case["input"], dtype=uint_dtype(case["bits"]))
        return lambda: proto.client(round_id=1, client_id=1, value=value)
    if name == "config-slot-over-64-bits":
        return lambda: PaillierConfig(
            public_key=public, bits=case["bits"], n_clients=case["n_clients"]
        )
    raise AssertionError(f"unknown overflow case {name}")


@pytest.mark.parametrize("case", cases("boundary", "overflow"))
def test_overflow_raises(case: Json) -> None:
    assert case["error"] == "EncodingOverflow"
    action = _overflow_action(case)
    with pytest.raises(EncodingOverflow):
        action()
