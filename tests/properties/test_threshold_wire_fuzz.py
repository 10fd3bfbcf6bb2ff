"""paillier-sum-v2's frames (0x34-0x37), mutated, raise only SecflError at the party that
parses them; a mutated partial decryption is refused, its holder named, and the aggregate
comes out exact from the honest holders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secfl.errors import SecflError
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import paillier_threshold as pt

DIM, N = 20, 3


def seeded(tag: int) -> Csprng:
    return Csprng(seed=tag.to_bytes(32, "little"))


@pytest.fixture(scope="module")
def world():
    rng = seeded(301)
    p, q = tp.generate_safe_prime(512, rng=rng), tp.generate_safe_prime(512, rng=rng)
    pk, shares = tp.deal_key(p, q, holders=3, threshold=2, rng=rng)
    ids = {c: SigningKey.generate(rng=rng) for c in range(1, N + 1)}
    cfg = pt.ThresholdPaillierConfig(
        public_key=pk,
        registry={c: k.verify_key() for c, k in ids.items()},
        bits=16,
        n_clients=N,
        value_bits=10,
    )
    proto = pt.ThresholdPaillierProtocol(cfg, identities=ids, rng=rng)
    inputs = {c: (np.arange(DIM, dtype=np.uint16) * c) for c in ids}
    server = proto.server(round_id=1, client_ids=frozenset(inputs), dim=DIM)
    requests = server.start()
    replies = {}
    for c in inputs:
        replies[c] = proto.client(round_id=1, client_id=c, value=inputs[c]).handle(requests[c])
        server.receive(c, replies[c])
    decrypt = server.advance()[pt.key_holder_party(1)]
    answers = {
        s.index: pt.ThresholdPaillierKeyHolder(cfg, s, rng=rng.spawn()).handle(decrypt)
        for s in shares
    }
    expected = sum(x.astype(np.uint32) for x in inputs.values()).astype(np.uint16)
    return {
        "cfg": cfg,
        "proto": proto,
        "shares": shares,
        "inputs": inputs,
        "request": requests[1],
        "replies": replies,
        "decrypt": decrypt,
        "answers": answers,
        "expected": expected,
    }


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("extend"), st.integers(1, 64), st.integers(0, 255)),
)


def mutate(data: bytes, m: tuple[str, int, int]) -> bytes:
    kind, a, b = m
    if kind == "flip":
        i = a % len(data)
        return data[:i] + bytes([data[i] ^ b]) + data[i + 1 :]
    if kind == "cut":
        return data[: a % len(data)]
    return data + bytes([b]) * a


def only_secfl_errors(fn) -> object:
    try:
        return fn()
    except SecflError:
        return None


@settings(max_examples=40, deadline=None)
@given(m=mutation)
def test_mutated_requests_and_inputs(world, m) -> None:
    proto = world["proto"]
    client = proto.client(round_id=1, client_id=1, value=world["inputs"][1])
    only_secfl_errors(lambda: client.handle(mutate(world["request"], m)))
    server = proto.server(round_id=1, client_ids=frozenset(world["inputs"]), dim=DIM)
    server.start()
    only_secfl_errors(lambda: server.receive(2, mutate(world["replies"][2], m)))


@settings(max_examples=40, deadline=None)
@given(m=mutation)
def test_mutated_decryption_requests(world, m) -> None:
    holder = pt.ThresholdPaillierKeyHolder(world["cfg"], world["shares"][0], rng=seeded(1))
    only_secfl_errors(lambda: holder.handle(mutate(world["decrypt"], m)))


@settings(max_examples=40, deadline=None)
@given(m=mutation)
def test_mutated_partials_never_change_the_aggregate(world, m) -> None:
    proto = world["proto"]
    server = proto.server(round_id=1, client_ids=frozenset(world["inputs"]), dim=DIM)
    server.start()
    for c, reply in world["replies"].items():
        server.receive(c, reply)
    server.advance()
    server.receive(pt.key_holder_party(1), mutate(world["answers"][1], m))
    server.receive(pt.key_holder_party(2), world["answers"][2])
    server.receive(pt.key_holder_party(3), world["answers"][3])
    server.advance()  # two honest holders suffice: the round always completes
    assert np.array_equal(server.result.aggregate, world["expected"])
    assert list(server.rejected_holders) == [1]
