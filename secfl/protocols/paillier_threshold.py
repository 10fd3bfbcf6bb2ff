"""Threshold packed Paillier summation (``protocols/paillier-sum-v2.md``), sans-I/O.

Clients encrypt exactly as in paillier-sum-v1 (packed, under the phe-compatible n of a
threshold key) and **sign** their ciphertexts with their registered Ed25519 key, bound to
the key, the round and their id. The aggregator forwards every signed input to each of the
m key holders. Each key holder verifies every signature, refuses duplicates and sets of
fewer than ``min_clients`` distinct registered clients, **forms the product itself**, and
returns its partial decryption of that product with a proof of correctness. The
aggregator verifies the proofs (excluding, and naming, a holder whose proof fails),
combines t of them and decodes the slots. So no single party can decrypt, and an
aggregator colluding with fewer than t holders cannot have anything decrypted but a sum of
at least ``min_clients`` distinct clients' signed inputs (section 10 of the spec for what
that does and does not imply).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

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
from secfl.hazmat import paillier as hp
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.protocols import paillier_threshold_messages as m
from secfl.protocols.base import (
    AggregationProtocol,
    ClientId,
    ClientSession,
    NamedValue,
    Party,
    PartyId,
    Phase,
    RoundResult,
    ServerSession,
    check_input,
    require_local_phase,
    require_phase,
    validate_round,
)
from secfl.protocols.paillier import DECRYPT, _centred, _to_ring

__all__ = [
    "KEY_HOLDER_PARTY_BASE",
    "PROTOCOL_NAME",
    "ThresholdPaillierClient",
    "ThresholdPaillierConfig",
    "ThresholdPaillierKeyHolder",
    "ThresholdPaillierProtocol",
    "ThresholdPaillierServer",
    "ThresholdPhase",
    "key_holder_party",
]

PROTOCOL_NAME = "paillier-threshold"
"""The name of paillier-sum-v2 in reports and on the command line."""
KEY_HOLDER_PARTY_BASE: PartyId = -100
"""Key holder i is party ``KEY_HOLDER_PARTY_BASE - i`` (never on the wire)."""

INPUT, DONE, START, ABORTED = Phase.INPUT, Phase.DONE, Phase.START, Phase.ABORTED


class ThresholdPhase(NamedValue):
    """The aggregator's phase after :attr:`PaillierPhase.DECRYPT` when it asked only some
    key holders first (``ask_first``) and too few valid answers came back."""

    DECRYPT_MORE = "decrypt-more"
    """The same request, to the key holders not asked yet."""


DECRYPT_MORE = ThresholdPhase.DECRYPT_MORE


def key_holder_party(index: int) -> PartyId:
    """The party id the aggregator addresses key holder ``index`` (1..m) by."""
    return KEY_HOLDER_PARTY_BASE - index


@dataclass(frozen=True)
class ThresholdPaillierConfig:
    """Public parameters: the threshold key, Z_{2^bits}, per-client range, most and fewest
    clients a sum may hold. ``registry``: client id -> Ed25519 verify key, the public
    directory every party holds (obtained out of band, never from the aggregator)."""

    public_key: tp.ThresholdPublicKey
    registry: Mapping[ClientId, VerifyKey]
    bits: int
    n_clients: int
    value_bits: int | None = None
    min_clients: int = 2
    ask_first: int | None = None
    """How many key holders the aggregator asks at first (indices 1..ask_first); the others
    only when fewer than t of those gave a valid answer by the deadline (phase
    ``decrypt-more``, one more round trip). ``None``: all m at once, the most robust (m - t
    may be down or lying at no extra latency) but every answering holder does the work."""

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, tp.ThresholdPublicKey):
            raise InvalidArgument(
                "public_key must be a ThresholdPublicKey (paillier-sum-v2's key); a plain "
                "Paillier key goes with protocol 'paillier'"
            )
        registry = dict(self.registry)
        for cid, vk in registry.items():
            if isinstance(cid, bool) or not isinstance(cid, int) or not 1 <= cid < 1 << 32:
                raise InvalidArgument(f"registry client ids must be in 1..2^32-1, got {cid!r}")
            if not isinstance(vk, VerifyKey):
                raise InvalidArgument(f"registry entry {cid}: expected a VerifyKey")
        if len(set(registry.values())) != len(registry):
            raise InvalidArgument("the registry lists one verify key under two client ids")
        object.__setattr__(self, "registry", registry)
        if not 1 <= self.bits <= 64:
            raise InvalidArgument(f"bits must be in 1..64, got {self.bits}")
        if not 1 <= self.effective_value_bits <= self.bits:
            raise InvalidArgument(
                f"value_bits must be in 1..bits={self.bits}, got {self.value_bits}"
            )
        if not 2 <= self.min_clients <= self.n_clients:
            raise InvalidArgument(
                f"min_clients must be in 2..n_clients={self.n_clients}, got "
                f"{self.min_clients}: a key holder never decrypts a single input"
            )
        pk = self.public_key
        if self.ask_first is not None and not pk.threshold <= self.ask_first <= pk.holders:
            raise InvalidArgument(
                f"ask_first must be in t..m = {pk.threshold}..{pk.holders} (or None: all), "
                f"got {self.ask_first}"
            )
        _ = self.layout

    @property
    def effective_value_bits(self) -> int:
        return self.bits if self.value_bits is None else self.value_bits

    @cached_property
    def layout(self) -> hp.PackingLayout:
        return hp.PackingLayout.plan(
            modulus_bits=self.public_key.bits,
            value_bits=self.effective_value_bits,
            n_clients=self.n_clients,
        )

    def input_bytes(self, dim: int) -> int:
        """Bytes of one client's ciphertexts for ``dim`` values."""
        return self.layout.ciphertexts_for(dim) * self.public_key.ciphertext_bytes

    def partial_bytes(self, dim: int) -> int:
        pk = self.public_key
        n_ct = self.layout.ciphertexts_for(dim)
        return 4 + n_ct * pk.ciphertext_bytes + tp.CHALLENGE_BITS // 8 + pk.response_bytes

    def signed_message(self, round_id: int, client_id: ClientId, dim: int, cts: bytes) -> bytes:
        """What client ``client_id`` signs over its ciphertext bytes ``cts``."""
        return self._signed_message(round_id, client_id, dim, m.input_digest(cts))

    def _signed_message(self, round_id: int, client_id: ClientId, dim: int, digest: bytes) -> bytes:
        return m.signed_input_message(
            fingerprint=self.public_key.fingerprint(),
            round_id=round_id,
            client_id=client_id,
            dim=dim,
            bits=self.bits,
            value_bits=self.effective_value_bits,
            n_clients=self.n_clients,
            min_clients=self.min_clients,
            digest=digest,
        )


def _context(set_digest: bytes) -> bytes:
    return b"secfl paillier-sum-v2 decrypt " + set_digest


def _check_signed_input(
    cfg: ThresholdPaillierConfig,
    round_id: int,
    cid: ClientId,
    dim: int,
    digest: bytes,
    sig: bytes,
) -> None:
    """Client ``cid`` signed the ciphertexts of SHA-256 ``digest`` for this round."""
    vk = cfg.registry.get(cid)
    if vk is None:
        raise ProtocolAbort(f"client {cid} has no identity in the registry")
    try:
        vk.verify(sig, cfg._signed_message(round_id, cid, dim, digest))
    except IntegrityError:
        raise IntegrityError(
            f"client {cid}'s signature does not cover these ciphertexts for round {round_id}"
        ) from None


class ThresholdPaillierKeyHolder(Party):
    """Holds one key share; returns at most one partial decryption per round id, of a
    product it formed itself from at least ``min_clients`` distinct clients' signed inputs.
    """

    __slots__ = ("_config", "_done_rounds", "_rng", "_share")

    def __init__(self, config: ThresholdPaillierConfig, share: tp.KeyShare, *, rng: Csprng) -> None:
        if not isinstance(share, tp.KeyShare):
            raise InvalidArgument("share must be a threshold Paillier KeyShare")
        if share.public_key != config.public_key:
            raise InvalidArgument("the key share does not belong to the configured public key")
        if not isinstance(rng, Csprng):
            raise InvalidArgument("rng must be a secfl.hazmat.rng.Csprng")
        self._config = config
        self._share = share
        self._rng = rng
        self._done_rounds: set[int] = set()

    @property
    def index(self) -> int:
        return self._share.index

    @property
    def party_id(self) -> PartyId:
        return key_holder_party(self._share.index)

    def handle(self, data: bytes) -> bytes:
        """DECRYPT_REQUEST frame -> PARTIAL frame, or a refusal (an exception)."""
        cfg = self._config
        dim = m.DecryptRequest.peek_dim(data)
        if dim < 1:
            raise IntegrityError("a decryption request must hold at least one value")
        size = cfg.input_bytes(dim)
        msg = m.DecryptRequest.from_bytes(data, size=size, max_inputs=cfg.n_clients)
        round_id = msg.round_id
        if round_id in self._done_rounds:
            raise ProtocolAbort(f"round {round_id} was already decrypted; refusing again")
        if len(msg.inputs) < cfg.min_clients:
            raise ProtocolAbort(
                f"refusing to decrypt a sum of {plural(len(msg.inputs), 'signed input')} "
                f"(at least {cfg.min_clients} distinct clients)"
            )
        digests = [m.input_digest(cts) for _, cts, _ in msg.inputs]
        if len(set(digests)) != len(digests):
            raise ProtocolAbort("two clients' inputs are identical; refusing the sum")
        for (cid, _, sig), digest in zip(msg.inputs, digests, strict=True):
            _check_signed_input(cfg, round_id, cid, dim, digest, sig)
        # Every structural check passed: the round id is spent, whatever follows.
        self._done_rounds.add(round_id)
        pk = cfg.public_key.to_phe()
        vectors = [
            hp.ciphertexts_from_bytes(cts, pk, cfg.layout, count=dim, n_summed=1)
            for _, cts, _ in msg.inputs
        ]
        product = hp.sum_vectors(vectors)
        set_digest = m.input_set_digest(
            fingerprint=cfg.public_key.fingerprint(),
            round_id=round_id,
            dim=dim,
            entries=[(cid, d) for (cid, _, _), d in zip(msg.inputs, digests, strict=True)],
        )
        partial = tp.partial_decrypt(
            self._share,
            [int(c) for c in product.ciphertexts],
            context=_context(set_digest),
            rng=self._rng,
        )
        return m.Partial(round_id, set_digest, partial.to_bytes(cfg.public_key)).to_bytes()

    def __repr__(self) -> str:
        return f"ThresholdPaillierKeyHolder(index={self._share.index}, <key share>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("ThresholdPaillierKeyHolder holds a key share and cannot be pickled")


class ThresholdPaillierProtocol(AggregationProtocol):
    """Factory of paillier-sum-v2 sessions.

    ``identities``: the signing keys of the clients this process runs (the simulator holds
    all of them; a deployed client only its own), each matching its registry entry.
    ``key_holders``: the key holders this process runs (:meth:`parties` offers them to the
    driver); holders elsewhere are reached by the transport.
    """

    name = PROTOCOL_NAME
    phases: tuple[str, ...] = (INPUT, DECRYPT, DECRYPT_MORE)

    def __init__(
        self,
        config: ThresholdPaillierConfig,
        *,
        identities: Mapping[ClientId, SigningKey] | None = None,
        key_holders: Sequence[ThresholdPaillierKeyHolder] = (),
        rng: Csprng,
    ) -> None:
        own = dict(identities or {})
        wrong = sorted(c for c, k in own.items() if config.registry.get(c) != k.verify_key())
        if wrong:
            raise InvalidArgument(f"the signing keys of clients {wrong} are not their registry's")
        holders: dict[PartyId, Party] = {}
        for h in key_holders:
            if not isinstance(h, ThresholdPaillierKeyHolder):
                raise InvalidArgument("key_holders must be ThresholdPaillierKeyHolder objects")
            if h.party_id in holders:
                raise InvalidArgument(f"key holder {h.index} given twice")
            holders[h.party_id] = h
        self.config = config
        self._identities = own
        self._holders = holders
        self._rng = rng

    def parties(self) -> Mapping[PartyId, Party]:
        return dict(self._holders)

    @property
    def bits(self) -> int:
        return self.config.bits

    def server(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int) -> ServerSession:
        return ThresholdPaillierServer(
            self.config, round_id=round_id, client_ids=client_ids, dim=dim
        )

    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        key = self._identities.get(client_id)
        if key is None:
            raise InvalidArgument(f"no signing key for client {client_id} in this process")
        return ThresholdPaillierClient(
            self.config,
            round_id=round_id,
            client_id=client_id,
            value=value,
            signing_key=key,
            rng=self._rng.spawn(),
        )


class ThresholdPaillierClient(ClientSession):
    """Encrypts and signs this client's packed vector when asked (once)."""

    def __init__(
        self,
        config: ThresholdPaillierConfig,
        *,
        round_id: int,
        client_id: ClientId,
        value: np.ndarray,
        signing_key: SigningKey,
        rng: Csprng | hp.RandomnessPool,
    ) -> None:
        if config.registry.get(client_id) != signing_key.verify_key():
            raise InvalidArgument(f"client {client_id}'s signing key is not its registry entry")
        self.config = config
        self.round_id = round_id
        self.client_id = client_id
        x = check_input(value, bits=config.bits)
        self._signed = _centred(x, config.bits, config.effective_value_bits)
        self._key = signing_key
        self._randomness = rng
        self._phase = INPUT

    def _respond(self, data: bytes) -> bytes:
        require_phase(self._phase, INPUT, "a request")
        cfg = self.config
        req = m.Request.from_bytes(data)
        asked = (req.round_id, req.dim, req.bits, req.value_bits, req.n_clients, req.min_clients)
        mine = (
            self.round_id,
            self._signed.size,
            cfg.bits,
            cfg.effective_value_bits,
            cfg.n_clients,
            cfg.min_clients,
        )
        if asked != mine:
            raise ProtocolAbort(
                f"server asked for (round, dim, bits, value_bits, n_clients, min_clients) = "
                f"{asked}; this client holds {mine}"
            )
        if req.fingerprint != cfg.public_key.fingerprint():
            raise ProtocolAbort("server named a different threshold key than this client's")
        vector = hp.encrypt_vector(
            cfg.public_key.to_phe(), self._signed, cfg.layout, randomness=self._randomness
        )
        cts = hp.ciphertexts_to_bytes(vector)
        sig = self._key.sign(cfg.signed_message(self.round_id, self.client_id, req.dim, cts))
        self._phase = DONE
        return m.SignedInput(self.round_id, cts, sig).to_bytes()


class ThresholdPaillierServer(ServerSession):
    """The aggregator: checks and keeps signed inputs (phase ``input``), sends them all to
    every key holder, then verifies and combines their partial decryptions (``decrypt``).
    """

    def __init__(
        self,
        config: ThresholdPaillierConfig,
        *,
        round_id: int,
        client_ids: frozenset[ClientId],
        dim: int,
    ) -> None:
        validate_round(client_ids, dim, max_clients=config.n_clients)
        self.config = config
        self.round_id = round_id
        self._clients = client_ids
        self._dim = dim
        self._size = config.input_bytes(dim)
        self._inputs: dict[ClientId, tuple[bytes, bytes]] = {}
        self._digests: dict[bytes, ClientId] = {}  # SHA-256 of each accepted input
        self._answers: dict[int, bytes] = {}
        self._asked: set[int] = set()
        self._valid: dict[int, tp.PartialDecryption] = {}  # verified partials, by holder
        self._request_frame = b""
        self._set_digest = b""
        self._product: tuple[int, ...] = ()
        self._rejected_holders: dict[int, str] = {}
        self._phase = START
        self._result: RoundResult | None = None

    @property
    def rejected_holders(self) -> Mapping[int, str]:
        """Key holders (by index) whose answer was refused, and why: a failed proof names
        a holder that lied about its partial decryption."""
        return dict(self._rejected_holders)

    def start(self) -> dict[ClientId, bytes]:
        require_local_phase(self._phase, START, "start()")
        cfg = self.config
        request = m.Request(
            self.round_id,
            self._dim,
            cfg.bits,
            cfg.effective_value_bits,
            cfg.n_clients,
            cfg.min_clients,
            cfg.public_key.fingerprint(),
        )
        self._phase = INPUT
        return dict.fromkeys(self._clients, request.to_bytes())

    def receive(self, client_id: PartyId, data: bytes) -> None:
        holders = self.config.public_key.holders
        index = KEY_HOLDER_PARTY_BASE - client_id
        if 1 <= index <= holders:
            if self._phase not in (DECRYPT, DECRYPT_MORE) or index not in self._asked:
                raise ProtocolAbort(
                    f"key holder {index} answered in phase {str(self._phase)!r} without being asked"
                )
            if index in self._answers or index in self._rejected_holders:
                # Two answers: neither is used, and the holder is named (not an abort, so
                # that one misbehaving holder cannot stop a round the others can finish).
                self._answers.pop(index, None)
                self._rejected_holders[index] = "it sent two answers for one round"
                return
            self._answers[index] = bytes(data)  # checked at the deadline, by its proof
            return
        require_phase(self._phase, INPUT, "an input message")
        if client_id not in self._clients:
            raise ProtocolAbort(f"client {client_id} is not part of round {self.round_id}")
        if client_id in self._inputs:
            raise ProtocolAbort(f"client {client_id} already sent its input this round")
        msg = m.SignedInput.from_bytes(data, size=self._size)
        if msg.round_id != self.round_id:
            raise ProtocolAbort(f"client {client_id} sent an input for round {msg.round_id}")
        cfg = self.config
        digest = m.input_digest(msg.ciphertexts)
        _check_signed_input(cfg, self.round_id, client_id, self._dim, digest, msg.signature)
        try:  # range and unit checks, so that holders never refuse; the client signed it
            hp.ciphertexts_from_bytes(
                msg.ciphertexts, cfg.public_key.to_phe(), cfg.layout, count=self._dim, n_summed=1
            )
        except IntegrityError as e:
            raise IntegrityError(
                f"client {client_id} signed a malformed input ({e}); its signature is the "
                f"evidence, and it is left out of the round"
            ) from None
        if digest in self._digests:
            raise ProtocolAbort(f"client {client_id} sent a copy of another client's input")
        self._inputs[client_id] = (msg.ciphertexts, msg.signature)
        self._digests[digest] = client_id

    def advance(self) -> dict[PartyId, bytes]:
        if self._phase not in (INPUT, DECRYPT, DECRYPT_MORE):
            raise LocalProtocolError(f"advance() called in phase {self._phase!r}")
        try:
            if self._phase == INPUT:
                return self._request_partials()
            self._screen()
            pk = self.config.public_key
            unasked = set(range(1, pk.holders + 1)) - self._asked
            if self._phase == DECRYPT and len(self._valid) < pk.threshold and unasked:
                self._phase = DECRYPT_MORE  # too few valid answers: ask the others
                return self._ask(unasked)
            return self._finish()
        except SecflError:
            self._phase = ABORTED
            raise

    def _request_partials(self) -> dict[PartyId, bytes]:
        cfg = self.config
        if len(self._inputs) < cfg.min_clients:
            raise InsufficientSurvivors(
                f"{plural(len(self._inputs), 'client')} sent inputs; the key holders decrypt "
                f"sums of at least {cfg.min_clients}"
            )
        ordered = sorted(self._inputs.items())
        request = m.DecryptRequest(
            self.round_id, self._dim, tuple((cid, cts, sig) for cid, (cts, sig) in ordered)
        )
        pk = cfg.public_key.to_phe()
        product = hp.sum_vectors(
            [
                hp.ciphertexts_from_bytes(cts, pk, cfg.layout, count=self._dim, n_summed=1)
                for _, (cts, _) in ordered
            ]
        )
        self._product = tuple(int(c) for c in product.ciphertexts)
        self._set_digest = m.input_set_digest(
            fingerprint=cfg.public_key.fingerprint(),
            round_id=self.round_id,
            dim=self._dim,
            entries=sorted((cid, d) for d, cid in self._digests.items()),
        )
        self._phase = DECRYPT
        self._request_frame = request.to_bytes()
        first = cfg.public_key.holders if cfg.ask_first is None else cfg.ask_first
        return self._ask(set(range(1, first + 1)))

    def _ask(self, indices: set[int]) -> dict[PartyId, bytes]:
        self._asked |= indices
        return {key_holder_party(i): self._request_frame for i in sorted(indices)}

    def _screen(self) -> None:
        """Parse and verify every answer not yet verified (refused holders are named)."""
        cfg = self.config
        pk = cfg.public_key
        size = cfg.partial_bytes(self._dim)
        partials = []
        for index, data in sorted(self._answers.items()):
            if index in self._valid or index in self._rejected_holders:
                continue
            try:
                msg = m.Partial.from_bytes(data, size=size)
                if msg.round_id != self.round_id or msg.set_digest != self._set_digest:
                    raise IntegrityError("it answered for another round or another input set")
                part = tp.PartialDecryption.from_bytes(msg.body, pk, count=len(self._product))
                if part.index != index:
                    raise IntegrityError(f"it answered as holder {part.index}")
            except IntegrityError as e:
                self._rejected_holders[index] = str(e)
                continue
            partials.append(part)
        valid, refused = tp.screen_partials(
            pk, self._product, partials, context=_context(self._set_digest)
        )
        self._rejected_holders.update(refused)
        self._valid.update({p.index: p for p in valid})

    def _finish(self) -> dict[PartyId, bytes]:
        cfg = self.config
        pk = cfg.public_key
        valid = [self._valid[i] for i in sorted(self._valid)]
        out = tp.combine_verified(pk, self._product, valid, rejected=self._rejected_holders)
        signed: np.ndarray | None = None
        with contextlib.suppress(IntegrityError):  # refused below, with no __context__
            signed = hp.decode_plaintexts(
                out.plaintexts, cfg.layout, count=self._dim, n_summed=len(self._inputs)
            )
        if signed is None:
            # Name no decrypted value (slot contents) in the error or its chain.
            raise IntegrityError(
                "the decrypted sum is not a well-formed sum of the signed inputs (a client's "
                "input was out of range)"
            )
        survivors = frozenset(self._inputs)
        self._result = RoundResult(
            aggregate=_to_ring(signed, cfg.bits),
            survivors=survivors,
            dropped=self._clients - survivors,
        )
        self._phase = DONE
        return {}
