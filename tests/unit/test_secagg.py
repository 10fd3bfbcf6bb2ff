import pickle
import struct

import numpy as np
import pytest

from secfl import wire
from secfl.errors import (
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    LocalProtocolError,
    ProtocolAbort,
    SecflError,
)
from secfl.hazmat import aead, shamir
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.protocols import secagg
from secfl.protocols.plaintext import PlaintextProtocol
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol, ThreatModel
from secfl.runtime.simulator import simulate_round

BITS = 32


def seeded(i: int = 0) -> Csprng:
    return Csprng(seed=bytes([i]) * 32)


def inputs(n, d, seed=9):
    rng = seeded(seed)
    return {c: (rng.uint64(d) & np.uint64(2**BITS - 1)).astype(np.uint32) for c in range(1, n + 1)}


def protocol(n, t, *, degree=None, active=False, seed=1):
    model = ThreatModel.ACTIVE if active else ThreatModel.HONEST_BUT_CURIOUS
    cfg = SecAggConfig(bits=BITS, threshold=t, n_clients=n, degree=degree, threat_model=model)
    ids = None
    if active:
        keys = seeded(seed + 50)
        ids = {c: SigningKey.generate(rng=keys) for c in range(1, n + 1)}
    return SecAggProtocol(cfg, rng=seeded(seed), identities=ids)


@pytest.mark.parametrize(
    ("active", "phase"),
    [(False, p) for p in ("advertise", "share", "mask", "unmask")]
    + [(True, p) for p in ("advertise", "share", "check", "mask", "consistency", "unmask")],
)
def test_dropouts_in_every_phase(phase, active):
    p = protocol(10, 7, active=active)
    rep = simulate_round(p, inputs(10, 50), dropouts={2: phase, 7: phase})
    assert rep.aborted is None
    assert rep.correct
    assert rep.refusals == {}
    assert rep.result is not None
    if phase in ("consistency", "unmask"):
        assert rep.result.survivors == set(range(1, 11))  # their masked inputs are in the sum
    else:
        assert rep.result.dropped == {2, 7}


@pytest.mark.parametrize("bits", [8, 13, 16, 24, 32, 48, 64])
def test_any_modulus(bits):
    cfg = SecAggConfig(bits=bits, threshold=4, n_clients=6)
    rng = seeded(3)
    from secfl.hazmat.prg import uint_dtype

    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
    ins = {c: (rng.uint64(20) & mask).astype(uint_dtype(bits)) for c in range(1, 7)}
    rep = simulate_round(SecAggProtocol(cfg, rng=seeded(4)), ins, dropouts={3: "mask"})
    assert rep.correct


def test_secagg_plus_sparse_graph():
    p = protocol(30, 5, degree=8)
    assert p.name == "secagg+"
    rep = simulate_round(p, inputs(30, 40), dropouts={4: "mask", 9: "share", 17: "unmask"})
    assert rep.correct
    # each client exchanged keys with its 8 neighbours only: downlink is O(k), not O(n)
    full = simulate_round(protocol(30, 16), inputs(30, 40))
    assert rep.bytes_down_per_client < full.bytes_down_per_client / 2


def test_below_threshold_aborts_cleanly():
    p = protocol(6, 4)
    rep = simulate_round(p, inputs(6, 5), dropouts={1: "mask", 2: "mask"})
    assert not rep.correct
    assert rep.aborted is not None
    assert "InsufficientSurvivors" in rep.aborted


def test_unmask_dropout_below_threshold_aborts():
    p = protocol(6, 4)
    rep = simulate_round(p, inputs(6, 5), dropouts={1: "unmask", 2: "unmask"})
    assert rep.aborted is not None


def test_masked_input_looks_uniform():
    # One client's masked vector of an all-zero input: chi-square over 16 bins of the top bits.
    p = protocol(4, 3)
    ins = {c: np.zeros(64_000, dtype=np.uint32) for c in range(1, 5)}
    server = p.server(round_id=1, client_ids=frozenset(ins), dim=64_000)
    clients = {c: p.client(round_id=1, client_id=c, value=v) for c, v in ins.items()}
    reqs = server.start()
    masked = {}
    while reqs:
        for c, req in reqs.items():
            reply = clients[c].handle(req)
            if reply is not None:
                server.receive(c, reply)
                if server.phase == "mask":
                    r = wire.Reader(wire.unframe(reply)[1])
                    r.u64()
                    masked[c] = r.vector(32)
        reqs = server.advance()
    assert server.result.aggregate.tolist() == [0] * 64_000
    counts = np.bincount(masked[1] >> np.uint32(28), minlength=16)
    chi2 = float(((counts - 4000) ** 2 / 4000).sum())
    assert chi2 < 37.7  # p = 0.001, 15 degrees of freedom


class Round:
    """Drives one round by hand so tests can play a deviating server."""

    def __init__(self, n=6, t=4, *, active=False, d=8, degree=None):
        self.p = protocol(n, t, active=active, degree=degree)
        self.ins = inputs(n, d)
        self.server = self.p.server(round_id=1, client_ids=frozenset(self.ins), dim=d)
        self.clients = {
            c: self.p.client(round_id=1, client_id=c, value=v) for c, v in self.ins.items()
        }
        self.reqs = self.server.start()

    def step(self, skip=()):
        for c, req in self.reqs.items():
            if c in skip:
                continue
            reply = self.clients[c].handle(req)
            if reply is not None:
                self.server.receive(c, reply)
        self.reqs = self.server.advance()


def _survivors_frame(round_id, ids, to):
    """SURVIVORS (secagg-v2) for client ``to`` claiming the survivor list ``ids``: the
    count and the listed neighbours (on the complete graph: everyone but ``to``)."""
    listed = sorted(set(ids) - {to})
    body = wire.Writer().u64(round_id).u32(len(ids)).u32(len(listed))
    body.raw(struct.pack(f">{len(listed)}I", *listed))
    return wire.frame(secagg.MSG_SURVIVORS, body.getvalue())


def test_server_listing_a_client_without_shares_as_survivor_is_refused():
    r = Round()
    r.step()  # advertise
    r.step(skip={6})  # share: client 6 never shares its keys
    r.step()  # mask
    # Claiming 6 survived would make clients reveal shares they never received.
    with pytest.raises(ProtocolAbort, match="never arrived"):
        r.clients[1].handle(_survivors_frame(1, [1, 2, 3, 4, 5, 6], 1))
    # client 1 is now closed: it refuses even an honest request afterwards
    with pytest.raises(ProtocolAbort):
        r.clients[1].handle(_survivors_frame(1, [1, 2, 3, 4, 5], 1))


def test_client_never_answers_the_unmask_request_twice():
    r = Round()
    r.step()
    r.step()
    r.step(skip={6})
    first = r.clients[2].handle(_survivors_frame(1, [1, 2, 3, 4, 5], 2))
    assert first is not None
    # a second request with 6 now listed as a survivor would yield b_6 after s_6
    with pytest.raises(ProtocolAbort):
        r.clients[2].handle(_survivors_frame(1, [1, 2, 3, 4, 5, 6], 2))


def test_active_mode_catches_split_survivor_views():
    r = Round(n=8, t=5, active=True)
    r.step()
    r.step()
    r.step()  # check (secagg-v3)
    r.step(skip={6})  # mask: 6 drops
    assert r.server.phase == "consistency"
    # The server shows client 1 a list claiming 6 survived (to get b_6 from client 1 while
    # the others reveal s_6), and the honest list to everyone else.
    sig1 = r.clients[1].handle(_survivors_frame(1, [1, 2, 3, 4, 5, 6, 7, 8], 1))
    assert sig1 is not None
    for c in (2, 3, 4, 5, 7, 8):
        r.server.receive(c, r.clients[c].handle(r.reqs[c]))
    with pytest.raises(IntegrityError):
        r.server.receive(1, sig1)  # does not verify over the server's list
    reqs = r.server.advance()
    with pytest.raises(IntegrityError):
        r.clients[1].handle(reqs[2])  # the others' signatures do not cover client 1's view


def test_tampered_envelope_raises_integrity_error():
    r = Round()
    r.step()
    r.step()  # share: server now holds envelopes routed to each client
    req = bytearray(r.reqs[1])
    req[-5] ^= 1
    with pytest.raises(IntegrityError):
        r.clients[1].handle(bytes(req))


@pytest.mark.parametrize(
    ("shares", "match"),
    [
        (struct.pack("<22I", *[5] * 21, shamir.PRIME), "outside the field"),  # p itself
        (struct.pack("<22I", *[shamir.PRIME - 1] * 22), None),  # the largest element: kept
    ],
)
def test_received_shares_must_be_two_shares_of_field_elements(shares, match):
    """Authentic envelopes (sealed under the real channel key) whose shares are malformed:
    the holder refuses them and names the sender (secagg-v1 section 8.3)."""
    r = Round()
    r.step()
    r.step()
    victim, sender = r.clients[1], 2
    ad = secagg._pair_info(b"share", 1, sender, 1) + struct.pack(">I", sender)
    plain = struct.pack(">II", sender, 1) + shares
    env = aead.seal(victim._peers[sender].channel, plain, associated_data=ad, rng=seeded(5))
    msg = secagg.m.Shares.from_bytes(r.reqs[1], round_id=1, max_entries=10)
    entries = tuple((u, env if u == sender else e) for u, e in msg.envelopes)
    request = secagg.m.Shares(1, entries).to_bytes()
    if match is None:
        assert victim.handle(request) is not None  # p - 1 is a field element
        assert victim._held[sender] == shares
        return
    with pytest.raises(
        IntegrityError, match=f"from {sender} holds.*{match}|from {sender}.*{match}"
    ):
        victim.handle(request)


def test_forged_advertise_signature_aborts_in_active_mode():
    r = Round(active=True)
    replies = {c: r.clients[c].handle(req) for c, req in r.reqs.items()}
    bad = bytearray(replies[3])
    bad[-1] ^= 1
    with pytest.raises(IntegrityError):
        r.server.receive(3, bytes(bad))
    # a server that forwards a forged key anyway is caught by the clients
    for c, reply in replies.items():
        r.server.receive(c, reply)
    reqs = r.server.advance()
    tampered = bytearray(reqs[1])
    tampered[-1] ^= 1  # last byte of the last neighbour's signature
    with pytest.raises(IntegrityError):
        r.clients[1].handle(bytes(tampered))


def test_substituted_key_is_detected_in_active_mode():
    r = Round(active=True)
    r.step()
    req = bytearray(r.reqs[1])
    # header 8 + round 8 + m 4 + count 4 + id 4 + x 4 = first neighbour's c_pk
    off = 8 + 8 + 4 + 4 + 4 + 4
    req[off : off + 32] = bytes(r.reqs[2][off : off + 32])  # key of 2's first neighbour
    with pytest.raises(SecflError):
        r.clients[1].handle(bytes(req))


def test_server_rejects_out_of_phase_and_duplicates():
    r = Round()
    replies = {c: r.clients[c].handle(req) for c, req in r.reqs.items()}
    r.server.receive(1, replies[1])
    with pytest.raises(ProtocolAbort, match="already"):
        r.server.receive(1, replies[1])
    with pytest.raises(ProtocolAbort, match="may not"):
        r.server.receive(99, replies[2])
    with pytest.raises(IntegrityError):
        r.server.receive(2, replies[2][:-1])
    with pytest.raises(LocalProtocolError):  # the driver's mistake, not a client's
        _ = r.server.result


def test_client_refuses_wrong_parameters():
    p = protocol(6, 4)
    c = p.client(round_id=1, client_id=1, value=np.zeros(8, np.uint32))
    other = SecAggProtocol(SecAggConfig(bits=BITS, threshold=5, n_clients=6), rng=seeded(2))
    req = other.server(round_id=1, client_ids=frozenset(range(1, 7)), dim=8).start()[1]
    with pytest.raises(ProtocolAbort, match="configured"):
        c.handle(req)


def test_replay_from_another_round_is_refused():
    p = protocol(6, 4)
    old = p.server(round_id=1, client_ids=frozenset(range(1, 7)), dim=8).start()[1]
    c = p.client(round_id=2, client_id=1, value=np.zeros(8, np.uint32))
    with pytest.raises(ProtocolAbort, match="round"):
        c.handle(old)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 2, "n_clients": 10}, "half"),
        ({"threshold": 6, "n_clients": 10, "threat_model": ThreatModel.ACTIVE}, "2/3"),
        ({"threshold": 10, "n_clients": 10}, "threshold must be in"),
        ({"threshold": 8, "n_clients": 10, "max_dropout": 0.3}, "max_dropout"),
        ({"threshold": 3, "n_clients": 10, "degree": 5}, "even"),
        ({"threshold": 1, "n_clients": 1}, "n_clients"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        SecAggConfig(bits=BITS, **kwargs)


def test_sessions_refuse_pickle():
    p = protocol(4, 3)
    c = p.client(round_id=1, client_id=1, value=np.zeros(3, np.uint32))
    with pytest.raises(TypeError):
        pickle.dumps(c)
    s = p.server(round_id=1, client_ids=frozenset({1, 2, 3, 4}), dim=3)
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_active_mode_needs_identities():
    cfg = SecAggConfig(bits=BITS, threshold=5, n_clients=6, threat_model=ThreatModel.ACTIVE)
    with pytest.raises(InvalidArgument):
        SecAggProtocol(cfg, rng=seeded(1))


def test_registry_ids_need_not_be_consecutive_and_keys_must_match_it():
    ids = (5, 900, 31, 4_000_000_000, 77)
    keys = {c: SigningKey.generate(rng=seeded(60 + i)) for i, c in enumerate(ids)}
    registry = {c: k.verify_key() for c, k in keys.items()}
    cfg = SecAggConfig(bits=BITS, threshold=3, n_clients=5, threat_model=ThreatModel.ACTIVE)
    # Deployed shape: a server with only the registry, each client with only its own key.
    server = SecAggProtocol(cfg, rng=seeded(1), registry=registry)
    clients = {c: SecAggProtocol(cfg, rng=seeded(i), identities={c: keys[c]}, registry=registry)
               for i, c in enumerate(ids)}  # fmt: skip
    values = {c: np.full(4, i + 1, dtype=np.uint32) for i, c in enumerate(ids)}
    s = server.server(round_id=3, client_ids=frozenset(ids), dim=4)
    sessions = {c: clients[c].client(round_id=3, client_id=c, value=values[c]) for c in ids}
    requests = s.start()
    while requests:
        for c, request in requests.items():
            answer = sessions[c].handle(request)
            if answer is not None:
                s.receive(c, answer)
        requests = s.advance()
    assert s.result.aggregate.tolist() == [15] * 4
    with pytest.raises(InvalidArgument, match=r"clients \[5\] do not match"):
        SecAggProtocol(cfg, rng=seeded(1), identities={5: keys[900]}, registry=registry)
    # An active server invites only registered clients (an outsider could never be verified).
    with pytest.raises(InvalidArgument, match=r"clients \[6\] have no identity"):
        server.server(round_id=4, client_ids=frozenset({*ids[:4], 6}), dim=4)


def test_too_many_invited():
    with pytest.raises(InvalidArgument):
        protocol(4, 3).server(round_id=1, client_ids=frozenset(range(1, 6)), dim=3)


def test_insufficient_survivors_is_protocol_abort():
    assert issubclass(InsufficientSurvivors, ProtocolAbort)


def test_active_mode_requires_complete_graph():
    with pytest.raises(InvalidArgument, match="complete graph"):
        SecAggConfig(
            bits=BITS, threshold=4, n_clients=20, degree=4, threat_model=ThreatModel.ACTIVE
        )


def test_max_dropout_checked_when_degree_covers_everyone():
    with pytest.raises(InvalidArgument, match="max_dropout"):
        SecAggConfig(bits=BITS, threshold=8, n_clients=10, degree=10, max_dropout=0.3)


def test_inconsistent_shares_abort_and_close_the_server():
    r = Round()
    r.step()
    r.step()
    r.step(skip={6})
    replies = {c: r.clients[c].handle(req) for c, req in r.reqs.items()}
    for c in (1, 2, 3, 4, 5):
        msg = bytearray(replies[c])
        if c == 1:
            msg[-3] ^= 1  # corrupt one share (still a valid field element, wrong value)
        r.server.receive(c, bytes(msg))
    with pytest.raises(IntegrityError):
        r.server.advance()
    assert r.server.phase == "aborted"


def _to_unmask_end(r: Round, drop=(3, 8)) -> None:
    """Advertise, share, mask (``drop`` silent from mask on), then every unmask reply in."""
    r.step()
    r.step()
    r.step(skip=set(drop))
    for c, req in r.reqs.items():
        r.server.receive(c, r.clients[c].handle(req))


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_offloaded_mask_removal_gives_the_inline_sum(parts):
    inline, split = Round(n=12, t=6, d=20, degree=8), Round(n=12, t=6, d=20, degree=8)
    _to_unmask_end(inline)
    _to_unmask_end(split)
    assert split.server.offload(1) == []  # one part: advance() does it itself
    pieces = split.server.offload(parts)
    assert len(pieces) == parts
    assert split.server.offload(parts) == []  # planned once
    pairs = sum(len(peers) for piece in pieces for _, _, peers in piece.dropped)
    assert pairs == sum(len(split.server._s.graph[u] & split.server._s.masked) for u in (3, 8))
    assert sum(len(piece.seeds) for piece in pieces) == 10
    restored = [pickle.loads(pickle.dumps(piece)) for piece in pieces]  # travels to workers
    with pytest.raises(LocalProtocolError, match="after offload"):
        split.server.receive(3, b"late")  # the work is planned: no more answers
    split.server.absorb([piece.run() for piece in restored])
    with pytest.raises(LocalProtocolError, match="once"):
        split.server.absorb([piece.run() for piece in pieces])
    inline.server.advance()
    split.server.advance()
    assert np.array_equal(split.server.result.aggregate, inline.server.result.aggregate)
    expected = sum(inline.ins[c].astype(np.uint64) for c in inline.ins if c not in (3, 8))
    assert split.server.result.aggregate.tolist() == (expected % 2**BITS).tolist()


def test_offload_pieces_hide_their_secrets_and_are_checked():
    r = Round(n=12, t=6, d=20, degree=8)
    _to_unmask_end(r)
    pieces = r.server.offload(2)
    for piece in pieces:
        text = repr(piece)
        assert text.startswith("<MaskRemoval of ")
        for _, secret, _ in piece.dropped:
            assert secret.hex()[:16] not in text
    with pytest.raises(LocalProtocolError, match="every offloaded piece"):
        r.server.absorb([pieces[0].run()])
    with pytest.raises(LocalProtocolError, match="returned"):
        r.server.absorb([np.zeros(3, np.uint32)] * 2)
    fresh = Round()
    assert fresh.server.offload(4) == []  # nothing to offload before UNMASK ends
    with pytest.raises(LocalProtocolError, match="every offloaded piece"):
        fresh.server.absorb([])
    plain = PlaintextProtocol(bits=BITS).server(round_id=1, client_ids=frozenset({1}), dim=2)
    assert plain.offload(2) == []  # the default: a protocol with nothing heavy to hand out
    with pytest.raises(LocalProtocolError, match="offloads no work"):
        plain.absorb([])


def test_offload_refuses_too_few_shares_as_advance_would():
    r = Round()
    r.step()
    r.step()
    r.step(skip={6})
    for c in (1, 2, 3):  # threshold 4: fewer revealers than t
        r.server.receive(c, r.clients[c].handle(r.reqs[c]))
    with pytest.raises(InsufficientSurvivors):
        r.server.offload(2)
    assert r.server.phase == "aborted"


# ---- secagg-v2: neighbourhood-sized messages and checks (protocols/secagg-v2.md)
def test_secagg_plus_client_traffic_does_not_grow_with_n():
    # Same degree and threshold at n = 40 and n = 160: every message a client receives
    # carries its neighbourhood only, so the downlink is the same (secagg-v2 section 4).
    down = {}
    for n in (40, 160):
        p = protocol(n, 4, degree=6)
        rep = simulate_round(p, inputs(n, 16))
        assert rep.correct
        down[n] = set(rep.bytes_down.values())
    assert down[40] == down[160]
    assert len(down[40]) == 1


def test_server_sums_masked_inputs_as_they_arrive():
    # The server keeps one running sum, not the masked vectors: the memory it holds after
    # the mask phase does not grow with the number of clients that sent one.
    import tracemalloc

    n, d = 24, 50_000
    p = protocol(n, 4, degree=6)
    ins = inputs(n, d)
    server = p.server(round_id=1, client_ids=frozenset(ins), dim=d)
    clients = {c: p.client(round_id=1, client_id=c, value=v) for c, v in ins.items()}
    reqs = server.start()
    for _ in range(2):  # advertise, share
        for c, req in reqs.items():
            server.receive(c, clients[c].handle(req))
        reqs = server.advance()
    replies = {c: clients[c].handle(req) for c, req in reqs.items()}
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for c, reply in replies.items():
        server.receive(c, reply)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert held < 2 * 4 * d  # well below n = 24 vectors of 4 * d bytes


def _keys_request(r, to):
    return secagg.m.Keys.from_bytes(r.reqs[to], round_id=1, max_clients=64, signed=False)


@pytest.mark.parametrize("flaw", ["count", "self", "point", "repeated-point", "members"])
def test_client_refuses_a_malformed_neighbourhood(flaw):
    from dataclasses import replace

    sparse = flaw in ("repeated-point", "count")
    r = Round(n=12, t=3, degree=4) if sparse else Round(n=8, t=5)
    r.step()  # advertise
    keys = _keys_request(r, 1)
    entries = list(keys.entries)
    if flaw == "count":  # a sparse neighbourhood one short of the degree
        entries = entries[:-1]
    elif flaw == "self":  # the client listed as its own neighbour
        entries[0] = replace(entries[0], client=1)
        entries.sort(key=lambda e: e.client)
    elif flaw == "point":  # complete graph: a point that is not 1 + the rank in U1
        entries[0] = replace(entries[0], x=entries[1].x)
    elif flaw == "repeated-point":
        entries[1] = replace(entries[1], x=entries[0].x)
    else:  # m smaller than the neighbourhood implies
        keys = replace(keys, members=keys.members - 1)
    data = replace(keys, entries=tuple(entries)).to_bytes()
    with pytest.raises(SecflError):
        r.clients[1].handle(data)


def _v2_survivors(total, listed):
    body = wire.Writer().u64(1).u32(total).u32(len(listed))
    body.raw(struct.pack(f">{len(listed)}I", *listed))
    return wire.frame(secagg.MSG_SURVIVORS, body.getvalue())


@pytest.mark.parametrize(
    ("total", "listed", "error"),
    [
        (5, [2, 3, 4, 5], InsufficientSurvivors),  # below t + 1 = 6
        (8, [2, 3, 4, 5, 6, 7], ProtocolAbort),  # more survivors than the m = 7 members
        (6, [2, 3, 4, 5, 6, 7], IntegrityError),  # a count that leaves the client itself out
        (7, [2, 3, 4, 5, 6], ProtocolAbort),  # complete graph: count disagrees with the list
        (7, [2, 3, 4, 5, 6, 8], ProtocolAbort),  # 8 never advertised: not a neighbour
        (3, [2, 3, 4], IntegrityError),  # a count below the list plus itself: malformed
    ],
)
def test_client_checks_the_survivor_count(total, listed, error):
    r = Round(n=8, t=5)
    r.step(skip={8})  # advertise: m = 7
    r.step()
    r.step()
    with pytest.raises(error):
        r.clients[1].handle(_v2_survivors(total, listed))
    assert r.clients[1].phase == "aborted"


def test_survivor_list_naming_a_non_neighbour_is_refused():
    r = Round(n=12, t=3, degree=4)
    r.step()
    r.step()
    r.step()
    honest = secagg.m.Survivors.from_bytes(r.reqs[1], round_id=1, max_clients=12)
    assert len(honest.neighbours) == 4  # the neighbourhood, not the 12 members
    stranger = min(set(range(2, 13)) - set(honest.neighbours))
    listed = sorted({*honest.neighbours, stranger})
    with pytest.raises(ProtocolAbort, match="not neighbours"):
        r.clients[1].handle(_v2_survivors(12, listed))


def test_survivor_checks_are_not_quadratic():
    # Issue 18 item 7: sets, not list membership. Counted, not timed: ids that count their
    # equality comparisons; a list scan per survivor would make about m^2 / 2 of them.
    class CountingId(int):
        calls = 0

        def __eq__(self, other: object) -> bool:
            CountingId.calls += 1
            return int.__eq__(self, other)

        __hash__ = int.__hash__

    m = 4_000
    client = protocol(4, 3).client(round_id=1, client_id=1, value=np.zeros(1, np.uint32))
    others = tuple(CountingId(i) for i in range(2, m + 1))
    client._members, client._complete = m, True
    client._neighbours = frozenset(others)
    client._held = dict.fromkeys(others)
    client._check_survivors(secagg.m.Survivors(1, m, others))
    assert CountingId.calls < 10 * m


@pytest.mark.parametrize("active", [False, True])
def test_a_client_reusing_anothers_keys_is_refused_by_the_server_and_the_round_goes_on(active):
    """Issue 18, item 4: one copier no longer aborts every round at KEYS."""
    from secfl.protocols.secagg_messages import Advertise

    r = Round(n=7, t=5 if active else 4, active=active)
    replies = {c: r.clients[c].handle(req) for c, req in r.reqs.items()}
    keys = seeded(51)
    ids = {c: SigningKey.generate(rng=keys) for c in range(1, 8)}

    def advertise(cid, c_pk, s_pk):  # signed by cid in active mode: valid, and evidence
        message = secagg._advertise_message(1, cid, c_pk, s_pk)
        return Advertise(1, c_pk, s_pk, ids[cid].sign(message) if active else b"").to_bytes()

    two = Advertise.from_bytes(replies[2], round_id=1, signed=active)
    four = Advertise.from_bytes(replies[4], round_id=1, signed=active)
    for c in (1, 2):
        r.server.receive(c, replies[c])
    with pytest.raises(IntegrityError, match="client 3 advertised a public key that is client 2's"):
        r.server.receive(3, advertise(3, two.c_pk, two.s_pk))
    with pytest.raises(IntegrityError, match="that is its other key"):
        r.server.receive(4, advertise(4, four.c_pk, four.c_pk))  # refused, state unchanged
    for c in (4, 5, 6, 7):
        r.server.receive(c, replies[c])
    r.reqs = r.server.advance()
    assert 3 not in r.reqs  # the copier dropped out; nobody else noticed
    while r.reqs:
        r.step(skip=(3,))
    survivors = sorted(set(range(1, 8)) - {3})
    assert sorted(r.server.result.survivors) == survivors
    expected = sum(r.ins[c].astype(np.uint64) for c in survivors) % (1 << BITS)
    assert r.server.result.aggregate.tolist() == expected.tolist()


def test_active_client_refuses_to_unmask_with_too_few_confirmations():
    """secagg-v1 section 8.5: at least survivors_floor signers of the list it signed; the
    genuine signatures of all but one survivor too few when all must confirm."""
    r = Round(n=7, t=5, active=True)
    for _ in range(5):  # advertise, share, check, mask, consistency
        r.step()
    assert r.server.phase == "unmask"
    sigs = secagg.m.Signatures.from_bytes(r.reqs[1], round_id=1, max_entries=7)
    floor = r.p.config.survivors_floor
    short = secagg.m.Signatures(1, sigs.entries[: floor - 1]).to_bytes()
    with pytest.raises(InsufficientSurvivors, match="confirmed the survivor list"):
        r.clients[1].handle(short)
