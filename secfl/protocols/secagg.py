"""SecAgg (Bonawitz et al., CCS 2017) and SecAgg+ (Bell et al., CCS 2020), sans-I/O.

Normative description: ``protocols/secagg-v2.md`` (secagg-v1 with messages that carry a
client's neighbourhood only, so that a SecAgg+ client's cost does not grow with n) and, for
the active mode, ``protocols/secagg-v3.md`` (signed envelopes; a client whose envelope does
not open is proven a cheater and excluded in a ``check`` phase, and the round goes on). One
implementation serves both: the neighbour graph is complete for SecAgg and a Harary graph
over a seeded permutation for SecAgg+ (:mod:`secfl.protocols.graphs`). Phases (server
collects, in order):

``advertise`` -> ``share`` -> [``check``, active] -> ``mask`` -> [``consistency``, active]
-> ``unmask``

Each client u holds a channel key pair (c), a masking key pair (s) and a self-mask seed
b_u, Shamir-shares b_u and s_u^SK among its neighbours (AES-GCM envelopes relayed by the
server) and sends ``y_u = x_u + PRG(b_u) + sum_{v in N(u), v > u} PRG(s_uv)
- sum_{v in N(u), v < u} PRG(s_uv)  (mod 2^bits)``. At unmasking each survivor reveals,
for each neighbour, the share of b (if that neighbour's masked input arrived) or of s_SK
(if not), never both; the server removes the masks and learns only the sum.

Cost (secagg-v2): everything a client receives or checks concerns its neighbours (their
keys and evaluation points, which of them survived) plus two counts, so a SecAgg+ client
does O(k) work besides its O(k*d) masks; the server sums masked inputs as they arrive and
does O(n*k) bookkeeping plus O(n*d + dropped*k*d) unmasking.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, SupportsIndex

import numpy as np

from secfl._text import plural
from secfl.errors import (
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    LocalProtocolError,
    ProtocolAbort,
    SecflError,
)
from secfl.hazmat import aead, dleq, kex, shamir
from secfl.hazmat.kex import KexPrivateKey, KexPublicKey
from secfl.hazmat.prg import SEED_BYTES, KeystreamBuffer, uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.protocols import secagg_messages as m
from secfl.protocols.base import (
    AggregationProtocol,
    ClientId,
    ClientSession,
    NamedValue,
    Phase,
    ProtocolName,
    RoundResult,
    ServerSession,
    ServerWork,
    check_input,
    require_local_phase,
    validate_round,
)
from secfl.protocols.graphs import neighbourhoods

__all__ = ["EnvelopeEvidence", "SecAggConfig", "SecAggPhase", "SecAggProtocol", "ThreatModel"]

_CTX = b"secfl-secagg-v2"
_CTX3 = b"secfl-secagg-v3"  # the messages secagg-v3 adds (active mode); v2's are unchanged

# Message types (protocols/wire-v1.md registry, 0x10-0x2F).
MSG_ADVERTISE_REQUEST = m.AdvertiseRequest.TYPE
MSG_ADVERTISE = m.Advertise.TYPE
MSG_KEYS = m.Keys.TYPE
MSG_SHARE_KEYS = m.ShareKeys.TYPE
MSG_SHARES = m.Shares.TYPE
MSG_MASKED_INPUT = m.MaskedInput.TYPE
MSG_SURVIVORS = m.Survivors.TYPE
MSG_CONSISTENCY = m.SurvivorConsistency.TYPE
MSG_SIGNATURES = m.Signatures.TYPE
MSG_UNMASK = m.Unmask.TYPE
MSG_SIGNED_SHARE_KEYS = m.SignedShareKeys.TYPE
MSG_SIGNED_SHARES = m.SignedShares.TYPE
MSG_CHECK = m.Check.TYPE
MSG_MASK_REQUEST = m.MaskRequest.TYPE


class SecAggPhase(NamedValue):
    """SecAgg's phases between :attr:`Phase.START` and :attr:`Phase.DONE` (secagg-v1)."""

    ADVERTISE = "advertise"
    SHARE = "share"
    CHECK = "check"
    """Active threat model only (secagg-v3): clients name the envelopes they cannot open,
    with proof, and the server excludes whoever cheated."""
    MASK = "mask"
    CONSISTENCY = "consistency"
    """Active threat model only: clients sign the survivor list they were shown."""
    UNMASK = "unmask"


ADVERTISE, SHARE, MASK = SecAggPhase.ADVERTISE, SecAggPhase.SHARE, SecAggPhase.MASK
CHECK = SecAggPhase.CHECK
CONSISTENCY, UNMASK = SecAggPhase.CONSISTENCY, SecAggPhase.UNMASK
DONE, START, ABORTED = Phase.DONE, Phase.START, Phase.ABORTED

_KIND_SELF = 0  # share of the self-mask seed b_u
_KIND_SK = 1  # share of the masking private key s_u^SK


class ThreatModel(enum.Enum):
    """Which adversary the round is configured to resist (see the spec's threat model)."""

    HONEST_BUT_CURIOUS = 0
    """The server follows the protocol but tries to learn inputs from what it sees."""
    ACTIVE = 1
    """The server may deviate (forge keys, lie about survivors): Ed25519 identities
    sign advertised keys and the survivor list (ConsistencyCheck)."""


@dataclass(frozen=True)
class SecAggConfig:
    """Parameters every party must agree on before the round (validated here).

    ``threshold`` t: how many of a client's neighbours must survive to unmask it, and the
    fewest clients the round may end with. ``degree``: ``None`` for the complete graph
    (SecAgg), an even k for SecAgg+. ``max_dropout``: the fraction of clients the caller
    needs the round to survive; construction fails if t cannot tolerate it.
    """

    bits: int
    threshold: int
    n_clients: int
    degree: int | None = None
    threat_model: ThreatModel = ThreatModel.HONEST_BUT_CURIOUS
    max_dropout: float = 0.0
    min_survivors: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 64:
            raise InvalidArgument(f"bits must be in 1..64, got {self.bits}")
        if self.n_clients < 2:
            raise InvalidArgument(f"secure aggregation needs n_clients >= 2, got {self.n_clients}")
        if not isinstance(self.threat_model, ThreatModel):
            raise InvalidArgument(f"threat_model must be a ThreatModel, got {self.threat_model!r}")
        if not 0.0 <= self.max_dropout < 1.0:
            raise InvalidArgument(f"max_dropout must be in [0, 1), got {self.max_dropout}")
        if self.min_survivors is not None and not 2 <= self.min_survivors <= self.n_clients:
            raise InvalidArgument(
                f"min_survivors must be in 2..n_clients={self.n_clients}, got {self.min_survivors}"
            )
        holders = self.holders
        if self.degree is not None and (self.degree < 2 or self.degree % 2):
            raise InvalidArgument(
                f"degree must be an even number >= 2 (or None), got {self.degree}"
            )
        if not 1 <= self.threshold <= holders:
            raise InvalidArgument(
                f"threshold must be in 1..{holders} (the neighbours holding each client's "
                f"shares), got {self.threshold}"
            )
        if holders > shamir.PRIME - 1 or self.threshold > shamir.MAX_THRESHOLD:
            raise InvalidArgument(
                f"Shamir over GF({shamir.PRIME}) supports at most {shamir.PRIME - 1} share "
                f"holders and threshold <= {shamir.MAX_THRESHOLD}"
            )
        if self.threat_model is ThreatModel.ACTIVE:
            if not self.complete_graph:
                raise InvalidArgument(
                    "the active threat model is only provided for the complete graph "
                    "(degree=None): with a sparse SecAgg+ graph a lying server can show each "
                    "neighbourhood its own survivor list, which the global consistency round "
                    "does not catch (see protocols/secagg-v1.md section 12)"
                )
            need = (2 * holders) // 3 + 1
            if self.threshold < need:
                raise InvalidArgument(
                    f"active security needs threshold > 2/3 of the {holders} share holders "
                    f"(>= {need}), got {self.threshold}: below it a lying server can collect "
                    f"t shares of both secrets of one client from two disjoint groups"
                )
        else:
            need = holders // 2 + 1
            if self.threshold < need:
                raise InvalidArgument(
                    f"threshold must exceed half of the {holders} share holders (>= {need}), "
                    f"got {self.threshold}: otherwise two disjoint groups can each reach t"
                )
        # Worst case: every dropout is a neighbour of the same client.
        may_drop = int(self.max_dropout * self.n_clients)
        if self.complete_graph and holders - may_drop < self.threshold:
            raise InvalidArgument(
                f"with {self.n_clients} clients and threshold {self.threshold}, at most "
                f"{holders - self.threshold} may drop but max_dropout={self.max_dropout} allows "
                f"{may_drop}; lower the threshold (keeping it above the security bound) or "
                f"max_dropout"
            )

    @property
    def survivors_floor(self) -> int:
        """Fewest masked inputs an honest client lets the round unmask: threshold + 1, or
        ``min_survivors`` if larger (the fewest survivors distributed DP is planned for)."""
        return max(self.threshold + 1, self.min_survivors or 0)

    @property
    def holders(self) -> int:
        """How many neighbours hold shares of each client's secrets."""
        if self.degree is None or self.degree >= self.n_clients - 1:
            return self.n_clients - 1
        return self.degree

    @property
    def complete_graph(self) -> bool:
        return self.degree is None or self.degree >= self.n_clients - 1


def _graph_seed(round_id: int, members: list[int]) -> bytes:
    return hashlib.sha256(_CTX + b"/graph" + struct.pack(">Q", round_id) + m.u32s(members)).digest()


def _pair_info(purpose: bytes, round_id: int, a: int, b: int) -> bytes:
    lo, hi = min(a, b), max(a, b)
    return _CTX + b"/" + purpose + struct.pack(">QII", round_id, lo, hi)


def _advertise_message(round_id: int, cid: int, c_pk: bytes, s_pk: bytes) -> bytes:
    return _CTX + b"/advertise" + struct.pack(">QI", round_id, cid) + c_pk + s_pk


def _survivors_message(round_id: int, survivors: Sequence[int]) -> bytes:
    return _CTX + b"/survivors" + struct.pack(">Q", round_id) + m.u32s(survivors)


def _envelope_message(
    round_id: int, sender: int, recipient: int, recipient_key: bytes, envelope: bytes
) -> bytes:
    """What a sender signs (secagg-v3 section 2): the envelope and the recipient's channel
    key it was sealed to, so evidence cannot pair it with another key of the recipient's."""
    head = struct.pack(">QII", round_id, sender, recipient)
    return _CTX3 + b"/envelope" + head + recipient_key + envelope


def _check_message(round_id: int, cid: int, complaints: bytes) -> bytes:
    return _CTX3 + b"/check" + struct.pack(">QI", round_id, cid) + complaints


def _complaint_context(round_id: int, recipient: int, sender: int) -> bytes:
    return _CTX3 + b"/complaint" + struct.pack(">QII", round_id, recipient, sender)


def _open_envelope(channel: bytes, round_id: int, sender: int, recipient: int, env: bytes) -> bytes:
    """The two shares in ``sender``'s envelope to ``recipient`` (secagg-v1 section 8.3):
    it must authenticate under the channel key, name the two parties, and hold field
    elements only. Clients and the judge of a complaint open envelopes with this alone."""
    ad = _pair_info(b"share", round_id, sender, recipient) + struct.pack(">I", sender)
    plain = aead.unseal(channel, env, associated_data=ad)
    if len(plain) != 8 + 2 * shamir.SHARE_BYTES:  # fixed on the wire; evidence is not
        raise IntegrityError(f"share envelope from {sender} has a plaintext of {len(plain)} bytes")
    if plain[:8] != struct.pack(">II", sender, recipient):
        raise IntegrityError(f"share envelope from {sender} names the wrong parties")
    shares = plain[8:]
    if int(np.frombuffer(shares, dtype="<u4").max()) >= shamir.PRIME:
        raise IntegrityError(
            f"share envelope from {sender} holds a share element outside the field "
            f"[0, {shamir.PRIME})"
        )
    return shares


class _Masker:
    """Adds PRG masks into a vector over Z_{2^bits}, reusing one scratch buffer."""

    def __init__(self, bits: int, dim: int) -> None:
        self.bits = bits
        self.dtype = uint_dtype(bits)
        self._stream = KeystreamBuffer(dim, self.dtype)

    def add(self, acc: np.ndarray, seed: bytes, label: bytes, sign: int) -> None:
        mask = self._stream.fill(seed, label=label)
        if sign > 0:
            np.add(acc, mask, out=acc)
        else:
            np.subtract(acc, mask, out=acc)

    def reduce(self, acc: np.ndarray) -> np.ndarray:
        return _reduce(acc, self.bits)


def _reduce(acc: np.ndarray, bits: int) -> np.ndarray:
    """``acc`` (a vector in the smallest dtype holding ``bits`` bits) mod 2^bits, in place."""
    if bits < acc.dtype.itemsize * 8:
        acc &= acc.dtype.type((1 << bits) - 1)
    return acc


@dataclass(repr=False)
class _Peer:
    x: int  # Shamir evaluation point of this peer (1 + its index in U1)
    c_pk: KexPublicKey
    s_pk: KexPublicKey
    channel: bytes = b""  # AES-GCM key shared with this peer, derived once

    def __repr__(self) -> str:
        return f"<_Peer x={self.x}>"


class _Held(dict[int, bytes]):
    """The shares a client holds, owner -> its two shares as received (share of b_u, then
    share of s_u^SK, ``SHARE_BYTES`` each, checked to be field elements): secret, so
    neither printed nor pickled."""

    def __repr__(self) -> str:
        return f"<shares of {len(self)} owners>"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("held Shamir shares are secret and cannot be pickled")


class SecAggProtocol(AggregationProtocol):
    """Factory of SecAgg / SecAgg+ sessions for one configuration.

    ``identities`` (active mode): the Ed25519 signing keys of the clients this process runs
    (the simulator holds all of them; a deployed client only its own). ``registry``: every
    client's verify key, against which sessions check signatures; it defaults to the keys of
    ``identities`` and must agree with them. A server needs only the registry.
    """

    phases: tuple[SecAggPhase, ...]

    def __init__(
        self,
        config: SecAggConfig,
        *,
        rng: Csprng,
        identities: Mapping[ClientId, SigningKey] | None = None,
        registry: Mapping[ClientId, VerifyKey] | None = None,
    ) -> None:
        self.config = config
        self._rng = rng
        self.name = ProtocolName.SECAGG if config.complete_graph else ProtocolName.SECAGG_PLUS
        active = config.threat_model is ThreatModel.ACTIVE
        self.phases = (
            (ADVERTISE, SHARE, CHECK, MASK, CONSISTENCY, UNMASK)
            if active
            else (
                ADVERTISE,
                SHARE,
                MASK,
                UNMASK,
            )
        )
        self._identities = dict(identities or {})
        own = {c: k.verify_key() for c, k in self._identities.items()}
        if registry is not None:
            wrong = sorted(c for c, vk in own.items() if registry.get(c) != vk)
            if wrong:
                raise InvalidArgument(
                    f"the signing keys of clients {wrong} do not match their registry entries"
                )
        self.registry = dict(registry) if registry is not None else own
        if active and not self.registry:
            raise InvalidArgument(
                "the active threat model needs the clients' identities (signing keys or a "
                "registry of verify keys)"
            )

    @property
    def bits(self) -> int:
        return self.config.bits

    def server(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int) -> ServerSession:
        return SecAggServer(
            self.config, round_id=round_id, client_ids=client_ids, dim=dim, registry=self.registry
        )

    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        return SecAggClient(
            self.config,
            round_id=round_id,
            client_id=client_id,
            value=value,
            rng=self._rng.spawn(),
            signing_key=self._identities.get(client_id),
            registry=self.registry,
        )


# ----------------------------------------------------------------------------- client
class SecAggClient(ClientSession):
    """One client's side of a SecAgg(+) round."""

    def __init__(
        self,
        config: SecAggConfig,
        *,
        round_id: int,
        client_id: ClientId,
        value: np.ndarray,
        rng: Csprng,
        signing_key: SigningKey | None = None,
        registry: Mapping[ClientId, VerifyKey] | None = None,
    ) -> None:
        self.config = config
        self.round_id = round_id
        self.id = client_id
        self._x = check_input(value, bits=config.bits)
        self._rng = rng
        self._active = config.threat_model is ThreatModel.ACTIVE
        if self._active and (signing_key is None or not registry):
            raise InvalidArgument("active mode needs this client's signing key and the registry")
        self._signing_key = signing_key
        self._registry = dict(registry or {})
        self._phase = ADVERTISE
        self._c_sk = KexPrivateKey.generate(rng=rng)
        self._s_sk = KexPrivateKey.generate(rng=rng)
        self._b = rng.bytes(SEED_BYTES)
        self._members = 0  # m = |U1| as the server stated it
        self._complete = False  # the graph over U1 is complete (N(u) = U1 minus u)
        self._neighbours: frozenset[int] = frozenset()
        self._peers: dict[int, _Peer] = {}
        self._held = _Held()
        self._survivors: tuple[int, ...] = ()  # active (complete graph): the list L it signed

    def _respond(self, data: bytes) -> bytes | None:
        handlers = {
            ADVERTISE: self._on_advertise_request,
            SHARE: self._on_keys,
            CHECK: self._on_signed_shares,
            MASK: self._on_mask_request if self._active else self._on_shares,
            CONSISTENCY: self._on_survivors,
            UNMASK: self._on_unmask_request,
        }
        return handlers[SecAggPhase(self._phase)](data)

    # advertise: announce fresh key pairs (signed in active mode)
    def _on_advertise_request(self, data: bytes) -> bytes:
        req = m.AdvertiseRequest.from_bytes(data, round_id=self.round_id)
        mode, dim, bits, threshold, degree = req.mode, req.dim, req.bits, req.threshold, req.degree
        cfg = self.config
        expected = (cfg.threat_model.value, self._x.size, cfg.bits, cfg.threshold, cfg.degree or 0)
        if (mode, dim, bits, threshold, degree) != expected:
            raise ProtocolAbort(
                f"server proposed (mode, dim, bits, threshold, degree) = "
                f"{(mode, dim, bits, threshold, degree)}, this client is configured {expected}"
            )
        c_pk = self._c_sk.public_key().to_bytes()
        s_pk = self._s_sk.public_key().to_bytes()
        sig = b""
        if self._active:
            assert self._signing_key is not None
            sig = self._signing_key.sign(_advertise_message(self.round_id, self.id, c_pk, s_pk))
        self._phase = SHARE
        return m.Advertise(self.round_id, c_pk, s_pk, sig).to_bytes()

    # share: check the neighbours' keys, share b_u and s_u^SK with them
    def _on_keys(self, data: bytes) -> bytes:
        cfg = self.config
        msg = m.Keys.from_bytes(
            data, round_id=self.round_id, max_clients=cfg.n_clients, signed=self._active
        )
        members = msg.members
        if members < cfg.threshold + 1:
            raise InsufficientSurvivors(
                f"only {plural(members, 'client')} advertised keys; the threshold needs "
                f"{cfg.threshold + 1}"
            )
        # secagg-v2 section 5: the complete graph is decided on m, as the server does.
        complete = cfg.degree is None or cfg.degree >= members - 1
        expected = members - 1 if complete or cfg.degree is None else cfg.degree
        if len(msg.entries) != expected:
            raise IntegrityError(
                f"expected keys of {plural(expected, 'neighbour')} among {members} members, "
                f"got {len(msg.entries)}"
            )
        ids = [e.client for e in msg.entries]
        if self.id in ids:
            raise IntegrityError(f"client {self.id} is listed as its own neighbour")
        if complete:
            # Every member is a neighbour: U1 is known exactly, and so are the points.
            ranked = sorted([*ids, self.id])
            points = {c: i + 1 for i, c in enumerate(ranked)}
            wrong = [e.client for e in msg.entries if e.x != points[e.client]]
        else:  # the server's points are trusted to be its U1 ranks; they must be usable
            wrong = [e.client for e in msg.entries if not 1 <= e.x <= members]
            if len({e.x for e in msg.entries}) != len(msg.entries):
                raise IntegrityError("key list gives two neighbours the same evaluation point")
        if wrong:
            raise IntegrityError(
                f"key list gives wrong evaluation points to clients {wrong[:5]} (secagg-v2 "
                f"section 5, check 4)"
            )
        peers: dict[int, _Peer] = {}
        # Keys compared by agreement class: a key plus a torsion point is other bytes but
        # the same key to X25519 (secagg-v3 section 2).
        seen = {
            self._c_sk.public_key().agreement_class(),
            self._s_sk.public_key().agreement_class(),
        }
        for entry in msg.entries:
            v, c_pk, s_pk, sig = entry.client, entry.c_pk, entry.s_pk, entry.signature
            if self._active:
                if v not in self._registry:
                    raise ProtocolAbort(f"client {v} has no identity in the registry")
                self._registry[v].verify(sig, _advertise_message(self.round_id, v, c_pk, s_pk))
            c_key, s_key = KexPublicKey.from_bytes(c_pk), KexPublicKey.from_bytes(s_pk)
            classes = {c_key.agreement_class(), s_key.agreement_class()}
            if classes & seen or len(classes) < 2:
                raise ProtocolAbort(f"client {v} advertised a public key already in use")
            seen |= classes
            peers[v] = _Peer(entry.x, c_key, s_key)
        if len(peers) < cfg.threshold:
            raise InsufficientSurvivors(
                f"client {self.id} has {len(peers)} neighbours, fewer than the threshold "
                f"{cfg.threshold}"
            )
        self._members, self._complete = members, complete
        self._neighbours, self._peers = frozenset(peers), peers

        holders = sorted(peers)
        xs = np.array([peers[v].x for v in holders], dtype=np.int64)
        shares = shamir.share(
            [self._b, self._s_sk.private_bytes()],
            threshold=cfg.threshold,
            xs=xs,
            rng=self._rng,
        )
        envelopes: list[tuple[int, bytes]] = []
        signatures: list[bytes] = []
        share_bytes = shamir.shares_to_bytes(shares)
        step = 2 * shamir.SHARE_BYTES
        for i, v in enumerate(holders):
            peer = peers[v]
            peer.channel = self._c_sk.exchange(
                peer.c_pk, info=_pair_info(b"channel", self.round_id, self.id, v)
            )
            plain = struct.pack(">II", self.id, v) + share_bytes[i * step : (i + 1) * step]
            ad = _pair_info(b"share", self.round_id, self.id, v) + struct.pack(">I", self.id)
            env = aead.seal(peer.channel, plain, associated_data=ad, rng=self._rng)
            envelopes.append((v, env))
            if self._active:  # secagg-v3: the evidence if this envelope does not open
                assert self._signing_key is not None
                signatures.append(
                    self._signing_key.sign(
                        _envelope_message(self.round_id, self.id, v, peer.c_pk.to_bytes(), env)
                    )
                )
        if self._active:
            self._phase = CHECK
            return m.SignedShareKeys(self.round_id, tuple(envelopes), tuple(signatures)).to_bytes()
        self._phase = MASK
        return m.ShareKeys(self.round_id, tuple(envelopes)).to_bytes()

    # mask: keep the shares addressed to us, send the masked input
    def _on_shares(self, data: bytes) -> bytes:
        msg = m.Shares.from_bytes(data, round_id=self.round_id, max_entries=len(self._peers))
        held = _Held()
        for u, env in msg.envelopes:
            self._check_sender(u, held)
            held[u] = _open_envelope(self._peers[u].channel, self.round_id, u, self.id, env)
        self._held = held
        return self._masked_input()

    def _check_sender(self, u: int, held: _Held) -> None:
        if u not in self._peers or u in held:
            raise IntegrityError(f"share envelope from unexpected or repeated client {u}")

    # check (active, secagg-v3): keep the envelopes that open, prove the others do not
    def _on_signed_shares(self, data: bytes) -> bytes:
        msg = m.SignedShares.from_bytes(data, round_id=self.round_id, max_entries=len(self._peers))
        held = _Held()
        complaints: list[m.Complaint] = []
        own = self._c_sk.public_key().to_bytes()
        for (u, env), sig in zip(msg.envelopes, msg.signatures, strict=True):
            self._check_sender(u, held)
            # The server checked every envelope's signature when it arrived: a bad one
            # here was changed on the way, which is the server's doing (abort).
            self._registry[u].verify(sig, _envelope_message(self.round_id, u, self.id, own, env))
            peer = self._peers[u]
            try:
                held[u] = _open_envelope(peer.channel, self.round_id, u, self.id, env)
            except IntegrityError:
                context = _complaint_context(self.round_id, self.id, u)
                revealed, proof = dleq.prove_exchange(self._c_sk, peer.c_pk, context=context)
                complaints.append(m.Complaint(u, revealed, proof))
        self._held = held
        unsigned = m.Check(self.round_id, tuple(complaints), b"")
        assert self._signing_key is not None
        sig = self._signing_key.sign(_check_message(self.round_id, self.id, unsigned.body()))
        self._phase = MASK
        return m.Check(self.round_id, unsigned.complaints, sig).to_bytes()

    def _on_mask_request(self, data: bytes) -> bytes:
        msg = m.MaskRequest.from_bytes(
            data, round_id=self.round_id, max_clients=self.config.n_clients
        )
        unheld = set(msg.neighbours) - self._held.keys()
        if unheld:
            raise ProtocolAbort(
                f"mask request names neighbours whose shares this client does not hold: "
                f"{sorted(unheld)[:5]}"
            )
        self._held = _Held({v: self._held[v] for v in msg.neighbours})
        return self._masked_input()

    def _masked_input(self) -> bytes:
        """y_u over the neighbours whose shares this client holds (secagg-v1 section 8.3)."""
        held = self._held
        if len(held) < self.config.threshold:
            # Fewer than t live holders of our shares: our self-mask could never be removed.
            raise InsufficientSurvivors(
                f"only {plural(len(held), 'neighbour')} of client {self.id} shared keys; need "
                f"{self.config.threshold}"
            )
        masker = _Masker(self.config.bits, self._x.size)
        y = self._x.copy()
        masker.add(y, self._b, b"self", +1)
        for v in held:  # pairwise masks only with neighbours that reached ShareKeys
            seed = self._s_sk.exchange(
                self._peers[v].s_pk, info=_pair_info(b"mask", self.round_id, self.id, v)
            )
            masker.add(y, seed, b"pair", +1 if self.id < v else -1)
        masker.reduce(y)
        self._phase = CONSISTENCY if self._active else UNMASK
        return m.MaskedInput(self.round_id, y, self.config.bits).to_bytes()

    def _check_survivors(self, msg: m.Survivors) -> frozenset[int]:
        """The survivor-list rules (secagg-v2 section 6): the neighbours named as
        survivors, after checking the count and the names against what this client knows.
        Sets throughout: O(k) for SecAgg+, O(n) for the complete graph."""
        total, listed = msg.total, frozenset(msg.neighbours)
        floor = self.config.survivors_floor
        if total < floor:
            raise InsufficientSurvivors(
                f"{plural(total, 'survivor')}; the round needs at least {floor}"
            )
        if total > self._members or len(listed) + 1 > total:
            raise ProtocolAbort(
                f"survivor count {total} is impossible with {plural(self._members, 'member')} "
                f"and {plural(len(listed), 'listed neighbour')} plus this client"
            )
        outside = listed - self._neighbours
        if outside:
            raise ProtocolAbort(
                f"survivor list names clients that are not neighbours: {sorted(outside)[:5]}"
            )
        lying = listed - self._held.keys()
        if lying:
            raise ProtocolAbort(
                f"survivor list names neighbours whose shares never arrived: {sorted(lying)[:5]}"
            )
        if self._complete and total != len(listed) + 1:
            # Complete graph: the list is U3 minus this client, so the count must agree.
            raise ProtocolAbort(
                f"survivor count {total} disagrees with the {plural(len(listed), 'survivor')} "
                f"listed on the complete graph"
            )
        return listed

    # consistency (active, complete graph): sign the survivor list
    def _on_survivors(self, data: bytes) -> bytes:
        msg = m.Survivors.from_bytes(
            data, round_id=self.round_id, max_clients=self.config.n_clients
        )
        listed = self._check_survivors(msg)
        self._survivors = tuple(sorted(listed | {self.id}))
        assert self._signing_key is not None
        sig = self._signing_key.sign(_survivors_message(self.round_id, self._survivors))
        self._phase = UNMASK
        return m.SurvivorConsistency(self.round_id, sig).to_bytes()

    # unmask: reveal exactly one share per neighbour
    def _on_unmask_request(self, data: bytes) -> bytes:
        if self._active:
            sigs = m.Signatures.from_bytes(
                data, round_id=self.round_id, max_entries=len(self._survivors)
            )
            survivors = frozenset(self._survivors)
            signers: set[int] = set()
            message = _survivors_message(self.round_id, self._survivors)
            for v, sig in sigs.entries:
                if v not in survivors or v in signers or v not in self._registry:
                    raise ProtocolAbort(
                        f"signature from a non-survivor, repeated or unregistered client {v}"
                    )
                self._registry[v].verify(sig, message)
                signers.add(v)
            if len(signers) < self.config.survivors_floor:
                raise InsufficientSurvivors(
                    f"only {plural(len(signers), 'survivor')} confirmed the survivor list; need "
                    f"{self.config.survivors_floor}"
                )
        else:
            shown = m.Survivors.from_bytes(
                data, round_id=self.round_id, max_clients=self.config.n_clients
            )
            survivors = self._check_survivors(shown)
        entries = []
        for u in sorted(self._held):
            kind = _KIND_SELF if u in survivors else _KIND_SK
            share = self._held[u][kind * shamir.SHARE_BYTES : (kind + 1) * shamir.SHARE_BYTES]
            entries.append(m.UnmaskEntry(u, kind, share))
        self._phase = DONE
        self._held = _Held()
        return m.Unmask(self.round_id, tuple(entries)).to_bytes()


@dataclass(frozen=True, repr=False)
class EnvelopeEvidence:
    """What proves that ``sender`` sent ``recipient`` a share envelope that does not open
    (secagg-v3 section 5), checkable by anyone with the clients' registry: both clients'
    signed advertisements ((c_pk, s_pk, signature) each), the envelope with its sender's
    signature, and the recipient's channel secret with its proof. It reveals the channel
    between the two (the cheater's envelopes to the complainant and back), nothing else."""

    round_id: int
    sender: int
    recipient: int
    sender_keys: tuple[bytes, bytes, bytes]
    recipient_keys: tuple[bytes, bytes, bytes]
    envelope: bytes
    envelope_signature: bytes
    revealed: bytes
    proof: bytes

    def __repr__(self) -> str:  # short; the channel secret is evidence, not for logs
        return (
            f"EnvelopeEvidence(round={self.round_id:#x}, sender={self.sender}, "
            f"recipient={self.recipient})"
        )

    def channel_key(self) -> bytes:
        """The AES-GCM key of the pair, from the revealed secret once its proof verifies
        (:class:`IntegrityError` otherwise)."""
        raw = dleq.verify_exchange(
            KexPublicKey.from_bytes(self.recipient_keys[0]),
            KexPublicKey.from_bytes(self.sender_keys[0]),
            self.revealed,
            self.proof,
            context=_complaint_context(self.round_id, self.recipient, self.sender),
        )
        return kex.derive(
            raw, info=_pair_info(b"channel", self.round_id, self.sender, self.recipient)
        )

    def check(self, registry: Mapping[ClientId, VerifyKey]) -> None:
        """Return if the evidence proves the cheat; raise :class:`IntegrityError` saying
        why not (a signature or the proof does not verify, or the envelope opens)."""
        rid, u, v = self.round_id, self.sender, self.recipient
        for who, (c_pk, s_pk, sig) in ((u, self.sender_keys), (v, self.recipient_keys)):
            if who not in registry:
                raise IntegrityError(f"client {who} has no identity in the registry")
            registry[who].verify(sig, _advertise_message(rid, who, c_pk, s_pk))
        signed = _envelope_message(rid, u, v, self.recipient_keys[0], self.envelope)
        registry[u].verify(self.envelope_signature, signed)
        channel = self.channel_key()  # outside the try: a bad proof convicts nobody
        try:
            _open_envelope(channel, rid, u, v, self.envelope)
        except IntegrityError:
            return
        raise IntegrityError("the envelope opens under the proven channel key")


_Dropped = tuple[int, bytes, tuple[tuple[int, bytes], ...]]
"""A dropped client u, its reconstructed s_u^SK and its surviving neighbours (v, s_pk_v)."""


def _weights_of(points: np.ndarray, weights: np.ndarray, xs: np.ndarray) -> np.ndarray | None:
    """The barycentric weights of ``xs`` from those of the sorted ``points`` that contain
    them: exact for xs = points or points less one (the complete graph); None (compute
    them) otherwise."""
    at = np.searchsorted(points, xs)
    missing = points.size - xs.size
    if missing == 0:
        return weights[at]
    if missing != 1:
        return None
    gone = int(np.setdiff1d(points, xs, assume_unique=True)[0])
    out: np.ndarray = weights[at] * ((xs - gone) % shamir.PRIME) % shamir.PRIME
    return out


@dataclass(frozen=True, repr=False)
class MaskRemoval(ServerWork):
    """A piece of the server's last step (:meth:`SecAggServer.offload`): the sum over
    Z_{2^bits} of minus the self-masks PRG(b_u) of ``seeds`` and of minus the pairwise masks
    each dropped client u added with its surviving neighbours v (which v added with the
    opposite sign). It holds what the server reconstructed: b_u of survivors and s_u^SK of
    dropped clients (see :class:`~secfl.protocols.base.ServerWork`)."""

    round_id: int
    bits: int
    dim: int
    seeds: tuple[bytes, ...]
    dropped: tuple[_Dropped, ...]

    def __repr__(self) -> str:
        pairs = sum(len(peers) for _, _, peers in self.dropped)
        return f"<MaskRemoval of {len(self.seeds)} self-masks and {pairs} pairwise masks>"

    def run(self) -> np.ndarray:
        masker = _Masker(self.bits, self.dim)
        acc = np.zeros(self.dim, dtype=masker.dtype)
        for seed in self.seeds:
            masker.add(acc, seed, b"self", -1)
        for u, secret, peers in self.dropped:
            s_sk = KexPrivateKey.from_bytes(secret)
            for v, s_pk in peers:
                info = _pair_info(b"mask", self.round_id, u, v)
                pair = s_sk.exchange(KexPublicKey.from_bytes(s_pk), info=info)
                # v added +PRG if v < u, -PRG if v > u: remove it.
                masker.add(acc, pair, b"pair", -1 if v < u else +1)
        return masker.reduce(acc)


# ----------------------------------------------------------------------------- server
class _CompleteGraph(Mapping[int, frozenset[int]]):
    """The complete graph's neighbourhoods, N(u) = U1 minus u, made when asked: O(n)
    memory for the whole graph instead of O(n) per member."""

    def __init__(self, members: frozenset[int]) -> None:
        self._members = members

    def __getitem__(self, u: int) -> frozenset[int]:
        if u not in self._members:
            raise KeyError(u)
        return self._members - {u}

    def __iter__(self) -> Iterator[int]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


@dataclass
class _ServerState:
    keys: dict[int, tuple[bytes, bytes, bytes]] = field(default_factory=dict)
    key_owner: dict[bytes, int] = field(default_factory=dict)  # key's agreement class -> client
    members: frozenset[int] = frozenset()  # U1
    points: dict[int, int] = field(default_factory=dict)  # Shamir x of each member
    complete: bool = False  # the graph over U1 is complete (decided on |U1|, v1 section 5)
    graph: Mapping[int, frozenset[int]] = field(default_factory=dict)
    survivors_message: bytes = b""  # active: survivors(U3), what every signer signs
    # sender -> its SHARE_KEYS records (recipient, envelope), held until SHARES is built
    share_keys: dict[int, np.ndarray] = field(default_factory=dict)
    # active: every relayed envelope, sorted by (recipient, sender), and each recipient's
    # slice of it: what a complaint is judged against (until CHECK closes)
    relayed: np.ndarray = field(default_factory=lambda: np.zeros(0, m.SIGNED_ENVELOPE_RECORD))
    inbox: dict[int, tuple[int, int]] = field(default_factory=dict)
    shared: set[int] = field(default_factory=set)  # U2 (active: U2' once CHECK closes)
    checked: set[int] = field(default_factory=set)  # active: sent an accepted CHECK
    excluded: dict[int, str] = field(default_factory=dict)  # active: proven cheaters
    masked: set[int] = field(default_factory=set)  # U3
    signatures: dict[int, bytes] = field(default_factory=dict)
    # holder -> (owners, shares (count, CHUNKS)) it revealed, checked against U3
    unmasked: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class SecAggServer(ServerSession):
    """The server's side: relays keys and shares, sums masked inputs, removes the masks."""

    def __init__(
        self,
        config: SecAggConfig,
        *,
        round_id: int,
        client_ids: frozenset[ClientId],
        dim: int,
        registry: Mapping[ClientId, VerifyKey] | None = None,
    ) -> None:
        validate_round(client_ids, dim, max_clients=config.n_clients)
        self.config = config
        self.round_id = round_id
        self._invited = client_ids
        self._dim = dim
        self._registry = dict(registry or {})
        self._active = config.threat_model is ThreatModel.ACTIVE
        unknown = sorted(client_ids - self._registry.keys()) if self._active else []
        if unknown:
            raise InvalidArgument(
                f"active mode: clients {unknown[:5]} have no identity in the registry; invite "
                "only registered clients (their ADVERTISE could never be verified)"
            )
        self._phase = START
        self._s = _ServerState()
        self._sum = np.zeros(dim, dtype=uint_dtype(config.bits))
        self._result: RoundResult | None = None
        self._evidence: dict[int, EnvelopeEvidence] = {}
        self._removal: list[MaskRemoval] | None = None  # the unmask work, once planned
        self._absorbed = False  # its results are in the sum (a driver ran it)

    @property
    def evidence(self) -> Mapping[ClientId, EnvelopeEvidence]:
        """Active mode: each client excluded for a bad envelope, and what proves it."""
        return dict(self._evidence)

    def start(self) -> dict[ClientId, bytes]:
        require_local_phase(self._phase, START, "start()")
        cfg = self.config
        request = m.AdvertiseRequest(
            self.round_id,
            cfg.threat_model.value,
            self._dim,
            cfg.bits,
            cfg.threshold,
            cfg.degree or 0,
        )
        self._phase = ADVERTISE
        return dict.fromkeys(self._invited, request.to_bytes())

    # ---- receive
    def receive(self, client_id: ClientId, data: bytes) -> None:
        handlers = {
            ADVERTISE: (self._invited, self._s.keys, self._recv_advertise),
            SHARE: (self._s.members, self._s.shared, self._recv_share_keys),
            CHECK: (self._s.shared, self._s.checked, self._recv_check),
            MASK: (self._s.shared, self._s.masked, self._recv_masked),
            CONSISTENCY: (self._s.masked, self._s.signatures, self._recv_consistency),
            UNMASK: (self._s.masked, self._s.unmasked, self._recv_unmask),
        }
        if self._phase not in handlers:
            raise ProtocolAbort(f"no client message is expected in phase {str(self._phase)!r}")
        if self._removal is not None:
            raise LocalProtocolError("receive() after offload(): the unmask work is planned")
        allowed, seen, handler = handlers[SecAggPhase(self._phase)]
        if client_id not in allowed:
            raise ProtocolAbort(f"client {client_id} may not send in phase {self._phase!r}")
        if client_id in seen:
            raise ProtocolAbort(f"client {client_id} already sent its {self._phase!r} message")
        handler(client_id, data)

    def _recv_advertise(self, cid: int, data: bytes) -> None:
        msg = m.Advertise.from_bytes(data, round_id=self.round_id, signed=self._active)
        c_pk, s_pk, sig = msg.c_pk, msg.s_pk, msg.signature
        c_class = KexPublicKey.from_bytes(c_pk).agreement_class()
        s_class = KexPublicKey.from_bytes(s_pk).agreement_class()
        if self._active:
            if cid not in self._registry:
                raise ProtocolAbort(f"client {cid} has no identity in the registry")
            self._registry[cid].verify(sig, _advertise_message(self.round_id, cid, c_pk, s_pk))
        # secagg-v2 section 7: a key already advertised (by another client, or as this
        # client's other key) would make every honest client abort at KEYS; refuse the
        # advertisement instead, so the copier drops out and the round goes on. In active
        # mode its signed advertisement is the evidence.
        # By agreement class: a copy with a torsion point added is other bytes, the same
        # key to X25519 (secagg-v3 section 2).
        owners = {self._s.key_owner[k] for k in (c_class, s_class) if k in self._s.key_owner}
        if owners or c_class == s_class:
            whose = f"client {min(owners)}'s" if owners else "its other"
            raise IntegrityError(f"client {cid} advertised a public key that is {whose} key")
        self._s.keys[cid] = (c_pk, s_pk, sig)
        self._s.key_owner.update({c_class: cid, s_class: cid})

    def _recv_share_keys(self, cid: int, data: bytes) -> None:
        expected = self._s.graph[cid]
        kind = m.SignedShareKeys if self._active else m.ShareKeys
        records = kind.records_from_bytes(data, round_id=self.round_id, max_entries=len(expected))
        if records.size != len(expected):
            raise IntegrityError(
                f"client {cid} sent {plural(records.size, 'envelope')} for "
                f"{plural(len(expected), 'neighbour')}"
            )
        if set(records["client"].tolist()) != expected:
            raise IntegrityError(f"client {cid} addressed envelopes to non-neighbours")
        if self._active:  # secagg-v3: a signature is evidence only if it was checked here
            key = self._registry[cid]
            for v, env, sig in zip(
                records["client"].tolist(), records["envelope"], records["signature"], strict=True
            ):
                to = self._s.keys[v][0]
                key.verify(
                    sig.tobytes(), _envelope_message(self.round_id, cid, v, to, env.tobytes())
                )
        self._s.share_keys[cid] = records
        self._s.shared.add(cid)

    def _recv_check(self, cid: int, data: bytes) -> None:
        """secagg-v3 section 5: judge every complaint before accepting any; a complaint
        that does not prove its envelope bad makes the complainant the cheater."""
        s = self._s
        a, b = s.inbox[cid]
        mine = s.relayed[a:b]
        msg = m.Check.from_bytes(data, round_id=self.round_id, max_entries=mine.size)
        self._registry[cid].verify(msg.signature, _check_message(self.round_id, cid, msg.body()))
        senders = mine["client"].tolist()
        found = {}
        for c in msg.complaints:
            if c.sender not in senders:
                raise IntegrityError(
                    f"client {cid} complains about client {c.sender}, whose envelope it was "
                    "never sent"
                )
            record = mine[senders.index(c.sender)]
            evidence = EnvelopeEvidence(
                round_id=self.round_id,
                sender=c.sender,
                recipient=cid,
                sender_keys=s.keys[c.sender],
                recipient_keys=s.keys[cid],
                envelope=record["envelope"].tobytes(),
                envelope_signature=record["signature"].tobytes(),
                revealed=c.revealed,
                proof=c.proof,
            )
            try:
                evidence.check(self._registry)
            except IntegrityError as e:
                raise IntegrityError(
                    f"client {cid}'s complaint about client {c.sender} is false: {e}"
                ) from None
            found[c.sender] = evidence
        for v, evidence in found.items():
            s.excluded.setdefault(
                v, f"sent client {evidence.recipient} an envelope that does not open"
            )
            self._evidence.setdefault(v, evidence)
        s.checked.add(cid)

    def _recv_masked(self, cid: int, data: bytes) -> None:
        masked = m.MaskedInput.from_bytes(data, bits=self.config.bits, dim=self._dim)
        if masked.round_id != self.round_id:
            raise ProtocolAbort(f"client {cid} sent a masked input for round {masked.round_id}")
        y = masked.vector
        np.add(self._sum, y, out=self._sum)
        self._s.masked.add(cid)

    def _recv_consistency(self, cid: int, data: bytes) -> None:
        sig = m.SurvivorConsistency.from_bytes(data, round_id=self.round_id).signature
        self._registry[cid].verify(sig, self._s.survivors_message)
        self._s.signatures[cid] = sig

    def _recv_unmask(self, cid: int, data: bytes) -> None:
        if self._active and cid not in self._s.signatures:
            raise ProtocolAbort(f"client {cid} did not confirm the survivor list")
        holds = self._s.graph[cid] & self._s.shared
        owners, kinds, shares = m.Unmask.arrays_from_bytes(
            data, round_id=self.round_id, max_entries=len(holds)
        )
        count = owners.size
        if count != len(holds):
            raise IntegrityError(
                f"client {cid} revealed {plural(count, 'share')}, it holds {len(holds)}"
            )
        masked = self._s.masked
        for u, kind in zip(owners.tolist(), kinds.tolist(), strict=True):
            want = _KIND_SELF if u in masked else _KIND_SK
            if u not in holds or kind != want:
                raise IntegrityError(f"client {cid} revealed the wrong share for client {u}")
        if len(set(owners.tolist())) != count:
            raise IntegrityError(f"client {cid} revealed a share twice")
        self._s.unmasked[cid] = (owners, shares)

    # ---- advance
    def advance(self) -> dict[ClientId, bytes]:
        step = {
            ADVERTISE: self._after_advertise,
            SHARE: self._after_share,
            CHECK: self._after_check,
            MASK: self._after_mask,
            CONSISTENCY: self._after_consistency,
            UNMASK: self._after_unmask,
        }
        if self._phase not in step:
            raise LocalProtocolError(f"advance() called in phase {str(self._phase)!r}")
        return step[SecAggPhase(self._phase)]()

    def _need(self, have: int, what: str, *, floor: int | None = None) -> None:
        need = self.config.threshold + 1 if floor is None else floor
        if have < need:
            self._phase = ABORTED
            raise InsufficientSurvivors(
                f"only {plural(have, 'client')} {what}; the round needs {need}"
            )

    def _after_advertise(self) -> dict[ClientId, bytes]:
        s = self._s
        self._need(len(s.keys), "advertised keys")
        members = sorted(s.keys)
        s.members = frozenset(members)
        s.points = {c: i + 1 for i, c in enumerate(members)}
        degree = self.config.degree
        s.complete = degree is None or degree >= len(members) - 1
        if s.complete:
            s.graph = _CompleteGraph(s.members)
        else:
            s.graph = neighbourhoods(
                members, degree=degree, seed=_graph_seed(self.round_id, members)
            )
        # Each member's entry is encoded once; every neighbour's KEYS reuses the bytes.
        record = {v: m.KeyEntry(v, s.points[v], *s.keys[v]).to_bytes() for v in members}
        out = {}
        for c in members:
            # secagg-v2: only the neighbours' keys (and m); O(k) bytes per client.
            ids = [v for v in members if v != c] if s.complete else sorted(s.graph[c])
            out[c] = m.Keys.frame(self.round_id, len(members), [record[v] for v in ids])
        self._phase = SHARE
        return out

    def _after_share(self) -> dict[ClientId, bytes]:
        s = self._s
        self._need(len(s.shared), "shared their keys")
        # Every envelope in one array, relabelled with its sender (as SHARES names it) and
        # sorted by (recipient, sender): each recipient's SHARES body is one slice.
        senders = sorted(s.shared)
        kind = m.SignedShares if self._active else m.Shares
        records = np.concatenate([s.share_keys[u] for u in senders], dtype=kind.RECORD)
        counts = [s.share_keys[u].size for u in senders]
        s.share_keys = {}
        to = records["client"].astype(np.int64)
        sender = np.repeat(np.array(senders, dtype=np.int64), counts)
        records["client"] = sender
        order = np.lexsort((sender, to))
        records, to = records[order], to[order]
        lo = np.searchsorted(to, senders, side="left").tolist()
        hi = np.searchsorted(to, senders, side="right").tolist()
        out = {
            v: kind.frame(self.round_id, b - a, records[a:b].tobytes())
            for v, a, b in zip(senders, lo, hi, strict=True)
        }
        if self._active:
            s.relayed = records
            s.inbox = {v: (a, b) for v, a, b in zip(senders, lo, hi, strict=True)}
        self._phase = CHECK if self._active else MASK
        return out

    def _after_check(self) -> dict[ClientId, bytes]:
        """secagg-v3 section 5: U2' = the clients whose CHECK was accepted, less the proven
        cheaters; each is asked to mask with its neighbours in U2', and U2' replaces U2."""
        s = self._s
        mask_set = s.checked - s.excluded.keys()
        self._need(len(mask_set), "remain after the envelope check")
        s.shared, s.relayed, s.inbox = set(mask_set), s.relayed[:0], {}
        self._phase = MASK
        return {
            u: m.MaskRequest(self.round_id, tuple(sorted(s.graph[u] & mask_set))).to_bytes()
            for u in sorted(mask_set)
        }

    def _after_mask(self) -> dict[ClientId, bytes]:
        s = self._s
        self._need(len(s.masked), "sent masked inputs", floor=self.config.survivors_floor)
        self._phase = CONSISTENCY if self._active else UNMASK
        survivors = tuple(sorted(s.masked))
        total = len(survivors)
        if self._active:
            s.survivors_message = _survivors_message(self.round_id, survivors)
        out = {}
        for u in survivors:
            # secagg-v2: |U3| and U3 ∩ N(u) only; O(k) bytes per client on a sparse graph.
            if s.complete:
                listed = tuple(v for v in survivors if v != u)
            else:
                listed = tuple(sorted(s.graph[u] & s.masked))
            out[u] = m.Survivors(self.round_id, total, listed).to_bytes()
        return out

    def _after_consistency(self) -> dict[ClientId, bytes]:
        s = self._s
        self._need(
            len(s.signatures), "confirmed the survivor list", floor=self.config.survivors_floor
        )
        entries = tuple((v, s.signatures[v]) for v in sorted(s.signatures))
        msg = m.Signatures(self.round_id, entries).to_bytes()
        self._phase = UNMASK
        return dict.fromkeys(sorted(s.signatures), msg)

    def _after_unmask(self) -> dict[ClientId, bytes]:
        try:
            return self._unmask()
        except SecflError:
            self._phase = ABORTED
            raise

    def offload(self, parts: int) -> list[ServerWork]:
        """At the end of UNMASK: removing the masks (the survivors' self-masks and the
        dropped clients' pairwise masks, one X25519 agreement and one PRG expansion per
        pair) as ``parts`` pieces of about equal cost; the rest of the round, reconstruction
        included, stays here."""
        if self._phase != UNMASK or self._removal is not None or parts < 2:
            return []
        try:
            self._removal = self._plan_removal(parts)
        except SecflError:
            self._phase = ABORTED
            raise
        return list(self._removal)

    def absorb(self, results: Sequence[np.ndarray]) -> None:
        if self._removal is None or self._absorbed or len(results) != len(self._removal):
            raise LocalProtocolError("absorb() takes the results of every offloaded piece, once")
        for r in results:
            if r.shape != self._sum.shape or r.dtype != self._sum.dtype:
                raise LocalProtocolError(f"an offloaded piece returned {r.dtype} {r.shape}")
        for r in results:
            np.add(self._sum, r, out=self._sum)
        self._absorbed = True

    def _plan_removal(self, parts: int) -> list[MaskRemoval]:
        """Reconstruct the secrets (each owner's first t shares from its lowest-id
        revealing holders, secagg-v1 section 9), check each dropped client's key against
        its advertisement, and deal the mask removals to ``parts`` pieces."""
        s = self._s
        self._need(len(s.unmasked), "revealed shares")
        t = self.config.threshold
        # Every revealed share in one array, holders in increasing id; a stable sort by
        # owner keeps that order, so each owner's first t shares come from its t
        # lowest-id revealing holders. O(n*k log(n*k)), no Python object per share.
        holders = sorted(s.unmasked)
        owner_of = np.concatenate([s.unmasked[h][0] for h in holders])
        x_of = np.concatenate(
            [np.full(s.unmasked[h][0].size, s.points[h], dtype=np.int64) for h in holders]
        )
        share_of = np.concatenate([s.unmasked[h][1] for h in holders])
        order = np.argsort(owner_of, kind="stable")
        by_owner = owner_of[order]
        owners = np.array(sorted(s.shared), dtype=np.int64)
        first = np.searchsorted(by_owner, owners, side="left")
        have = np.searchsorted(by_owner, owners, side="right") - first
        if (have < t).any():
            short = owners[have < t].tolist()
            raise InsufficientSurvivors(
                f"fewer than threshold={t} shares arrived for clients {short[:5]}"
            )
        # secagg-v3 section 6: all of an owner's shares must lie on one polynomial; when
        # they do not (a dealer's or a holder's wrong share), decode around up to
        # (have - t) // 2 wrong ones, else abort (IntegrityError).
        decoded: dict[int, bytes] = {}
        points = np.array(sorted(s.points[h] for h in holders), dtype=np.int64)
        weights = shamir.barycentric(points)  # once; each owner's holders lack <= 1 point
        for i in np.flatnonzero(have > t).tolist():
            mine = order[first[i] : first[i] + have[i]]
            xs, ys = x_of[mine], share_of[mine]
            w = _weights_of(points, weights, xs)
            if not shamir.consistent(ys, xs, threshold=t, weights=w):
                decoded[i], _ = shamir.decode(ys, xs, threshold=t)
        plain = np.array([i for i in range(owners.size) if i not in decoded], dtype=np.int64)
        pick = order[first[plain, None] + np.arange(t)[None, :]]  # (owners, t)
        secrets = np.empty((owners.size, shamir.SECRET_BYTES), dtype=np.uint8)
        secrets[plain] = shamir.reconstruct_many(share_of[pick], x_of[pick], threshold=t)
        for i, secret in decoded.items():
            secrets[i] = np.frombuffer(secret, dtype=np.uint8)
        seeds: list[list[bytes]] = [[] for _ in range(parts)]
        dropped: list[list[_Dropped]] = [[] for _ in range(parts)]
        load = [0] * parts
        for i, u in enumerate(owners.tolist()):
            secret = secrets[i].tobytes()
            if u in s.masked:
                seeds[i % parts].append(secret)
                continue
            if KexPrivateKey.from_bytes(secret).public_key().to_bytes() != s.keys[u][1]:
                raise IntegrityError(f"reconstructed masking key of client {u} does not match")
            peers = tuple((v, s.keys[v][1]) for v in sorted(s.graph[u] & s.masked))
            lightest = load.index(min(load))  # a pair costs ~3 self-masks (X25519 + PRG)
            dropped[lightest].append((u, secret, peers))
            load[lightest] += 3 * len(peers)
        cfg = self.config
        return [
            MaskRemoval(self.round_id, cfg.bits, self._dim, tuple(seeds[i]), tuple(dropped[i]))
            for i in range(parts)
        ]

    def _unmask(self) -> dict[ClientId, bytes]:
        s = self._s
        if self._removal is None:
            self._removal = self._plan_removal(1)
        if not self._absorbed:
            for piece in self._removal:
                np.add(self._sum, piece.run(), out=self._sum)
        survivors = frozenset(s.masked)
        self._result = RoundResult(
            aggregate=_reduce(self._sum, self.config.bits),
            survivors=survivors,
            dropped=self._invited - survivors,
            excluded=dict(s.excluded),
        )
        self._s = _ServerState()
        self._phase = DONE
        return {}
