"""Packed Paillier summation (``protocols/paillier-sum-v1.md``), sans-I/O.

Roles: clients encrypt their vectors under the key holder's public key (many fixed-point
values packed per plaintext, BatchCrypt-style); the aggregator (the :class:`ServerSession`)
multiplies the ciphertexts, which adds the plaintexts, without any secret key; the key
holder (:class:`PaillierKeyHolder`) decrypts only that one sum per round and returns the
aggregate. A client that drops simply is not in the sum.

Inputs are vectors over Z_{2^bits}. Each client sends the centred representative of every
entry, which must fit in ``value_bits`` signed bits (the codec's per-client range); the
decrypted signed sum reduced mod 2^bits is the sum over Z_{2^bits}.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

import numpy as np
from phe import PaillierPrivateKey, PaillierPublicKey

from secfl import paillier_keys as keys
from secfl._text import plural
from secfl.errors import (
    EncodingOverflow,
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    LocalProtocolError,
    ProtocolAbort,
    SecflError,
)
from secfl.hazmat import paillier as hp
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.protocols import paillier_messages as m
from secfl.protocols.base import (
    KEY_HOLDER,
    AggregationProtocol,
    ClientId,
    ClientSession,
    NamedValue,
    Party,
    PartyId,
    Phase,
    ProtocolName,
    RoundResult,
    ServerSession,
    check_input,
    require_local_phase,
    require_phase,
    validate_round,
)

__all__ = [
    "PaillierClient",
    "PaillierConfig",
    "PaillierKeyHolder",
    "PaillierPhase",
    "PaillierProtocol",
    "PaillierServer",
    "key_fingerprint",
]

MSG_REQUEST = m.Request.TYPE
MSG_INPUT = m.Input.TYPE
MSG_ENCRYPTED_SUM = m.EncryptedSum.TYPE
MSG_DECRYPTED_SUM = m.DecryptedSum.TYPE


class PaillierPhase(NamedValue):
    """The aggregator's phase after :attr:`Phase.INPUT` (paillier-sum-v1)."""

    DECRYPT = "decrypt"
    """The encrypted sum is with the key holder (party :data:`KEY_HOLDER`)."""


INPUT, DONE, START, ABORTED = Phase.INPUT, Phase.DONE, Phase.START, Phase.ABORTED
DECRYPT = PaillierPhase.DECRYPT


def key_fingerprint(public_key: PaillierPublicKey | keys.PaillierPublicKey) -> bytes:
    """First 16 bytes of SHA-256 over n (big-endian): names the key in every request."""
    return keys.PaillierPublicKey(int(public_key.n)).fingerprint()


@dataclass(frozen=True)
class PaillierConfig:
    """Public parameters: key, ring Z_{2^bits}, per-client signed range, most clients.

    ``public_key``: a secfl :class:`~secfl.paillier_keys.PaillierPublicKey` or a ``phe``
    one; it is held as ``phe``'s, which the hazmat layer computes with.

    ``value_bits`` defaults to ``bits``; set it to the codec's per-client range (e.g.
    ``bits - ceil(log2 n_clients)``) to pack more slots per ciphertext. ``min_clients`` is
    the fewest contributions the key holder will decrypt (never a single client's input).
    """

    public_key: PaillierPublicKey
    bits: int
    n_clients: int
    value_bits: int | None = None
    min_clients: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", keys.as_phe_public_key(self.public_key))
        if not 1 <= self.bits <= 64:
            raise InvalidArgument(f"bits must be in 1..64, got {self.bits}")
        if not 1 <= self.effective_value_bits <= self.bits:
            raise InvalidArgument(
                f"value_bits must be in 1..bits={self.bits}, got {self.value_bits}"
            )
        if not 1 <= self.min_clients <= self.n_clients:
            raise InvalidArgument(
                f"min_clients must be in 1..n_clients={self.n_clients}, got {self.min_clients}"
            )
        _ = self.layout  # raises EncodingOverflow if the slots cannot hold the sum

    @property
    def effective_value_bits(self) -> int:
        return self.bits if self.value_bits is None else self.value_bits

    @cached_property
    def layout(self) -> hp.PackingLayout:
        return hp.PackingLayout.plan(
            modulus_bits=int(self.public_key.n).bit_length(),
            value_bits=self.effective_value_bits,
            n_clients=self.n_clients,
        )


class PaillierKeyHolder(Party):
    """Holds the private key; decrypts one aggregate per round, nothing else.

    A party of every round (:data:`~secfl.protocols.base.KEY_HOLDER`): the aggregator's
    session addresses the encrypted sum to it, and the driver delivers it to :meth:`handle`
    wherever the key holder runs (this process, another node).

    It refuses a second decryption for the same round id and any sum of fewer than
    ``min_clients`` contributions, so an aggregator cannot have it decrypt one client's
    ciphertext under the pretext of a sum. (It cannot tell whether the aggregator really
    multiplied ``n_summed`` distinct clients' ciphertexts: see the spec's threat model.)
    """

    __slots__ = ("_config", "_crt_key", "_done_rounds")

    def __init__(
        self, config: PaillierConfig, private_key: PaillierPrivateKey | keys.PaillierPrivateKey
    ) -> None:
        private_key = keys.as_phe_private_key(private_key)
        if private_key.public_key != config.public_key:
            raise InvalidArgument("the private key does not match the configured public key")
        self._config = config
        self._crt_key = private_key
        self._done_rounds: set[int] = set()

    def handle(self, data: bytes) -> bytes:
        """ENCRYPTED_SUM frame -> DECRYPTED_SUM frame (the aggregate over Z_{2^bits})."""
        cfg = self._config
        msg = m.EncryptedSum.from_bytes(data)
        round_id, n_summed, count = msg.round_id, msg.n_summed, msg.count
        if count < 1:
            raise IntegrityError("an encrypted sum must hold at least one value")
        if round_id in self._done_rounds:
            raise ProtocolAbort(f"round {round_id} was already decrypted; refusing again")
        if not cfg.min_clients <= n_summed <= cfg.n_clients:
            raise ProtocolAbort(
                f"refusing to decrypt a sum of {plural(n_summed, 'input')} (allowed "
                f"{cfg.min_clients}..{cfg.n_clients})"
            )
        width = hp.ciphertext_bytes(cfg.public_key)
        n_ct = cfg.layout.ciphertexts_for(count)
        if len(msg.ciphertexts) != n_ct * width:
            raise IntegrityError(
                f"encrypted sum has {len(msg.ciphertexts)} bytes, expected {n_ct * width}"
            )
        # The round id is spent by any well-formed attempt, successful or not.
        self._done_rounds.add(round_id)
        signed: np.ndarray | None = None
        with contextlib.suppress(IntegrityError):  # refused below, with no __context__
            vector = hp.ciphertexts_from_bytes(
                msg.ciphertexts, cfg.public_key, cfg.layout, count=count, n_summed=n_summed
            )
            signed = hp.decrypt_vector(self._crt_key, vector)
        if signed is None:
            # Never echo decrypted values (slot contents, lengths) back to the aggregator.
            raise IntegrityError(
                "the encrypted sum is not a well-formed sum of n_summed in-range inputs; "
                "refusing to release it"
            )
        return m.DecryptedSum(round_id, _to_ring(signed, cfg.bits), cfg.bits).to_bytes()

    def __repr__(self) -> str:
        return "PaillierKeyHolder(<private key>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("PaillierKeyHolder holds a private key and cannot be pickled")


def _to_ring(signed: np.ndarray, bits: int) -> np.ndarray:
    u = signed.astype(np.int64).view(np.uint64)
    if bits < 64:
        u = u & np.uint64((1 << bits) - 1)
    return u.astype(uint_dtype(bits))


def _centred(value: np.ndarray, bits: int, value_bits: int) -> np.ndarray:
    """Entries of Z_{2^bits} -> signed representatives, checked to fit ``value_bits``."""
    u = value.astype(np.uint64)
    if bits < 64:
        u = u - ((u >> np.uint64(bits - 1)) << np.uint64(bits))  # subtract 2^bits if >= half
    signed = u.view(np.int64)
    lo, hi = -(1 << (value_bits - 1)), (1 << (value_bits - 1)) - 1
    if signed.size and (int(signed.min()) < lo or int(signed.max()) > hi):
        raise EncodingOverflow(
            f"input entries must lie in [{lo}, {hi}] (value_bits={value_bits}) as signed "
            f"residues mod 2^{bits}; clip the update or raise value_bits"
        )
    return signed


class PaillierProtocol(AggregationProtocol):
    """Factory of Paillier sessions. ``key_holder``: the key holder party when this process
    holds the private key (:meth:`parties` then offers it to the driver); ``None`` where it
    runs elsewhere (clients, an aggregator whose key holder is another node)."""

    name = ProtocolName.PAILLIER
    phases: tuple[Phase | PaillierPhase, ...] = (INPUT, DECRYPT)

    def __init__(
        self,
        config: PaillierConfig,
        *,
        key_holder: PaillierKeyHolder | None = None,
        rng: Csprng,
    ) -> None:
        if key_holder is not None and not isinstance(key_holder, PaillierKeyHolder):
            raise InvalidArgument(
                f"key_holder must be a PaillierKeyHolder or None, got {type(key_holder).__name__}"
            )
        self.config = config
        self._key_holder = key_holder
        self._rng = rng

    def parties(self) -> Mapping[PartyId, Party]:
        return {} if self._key_holder is None else {KEY_HOLDER: self._key_holder}

    @property
    def bits(self) -> int:
        return self.config.bits

    def server(self, *, round_id: int, client_ids: frozenset[ClientId], dim: int) -> ServerSession:
        return PaillierServer(self.config, round_id=round_id, client_ids=client_ids, dim=dim)

    def client(self, *, round_id: int, client_id: ClientId, value: np.ndarray) -> ClientSession:
        return PaillierClient(self.config, round_id=round_id, value=value, rng=self._rng.spawn())


class PaillierClient(ClientSession):
    """Encrypts this client's packed vector when asked (once)."""

    def __init__(
        self,
        config: PaillierConfig,
        *,
        round_id: int,
        value: np.ndarray,
        rng: Csprng | hp.RandomnessPool,
    ) -> None:
        self.config = config
        self.round_id = round_id
        x = check_input(value, bits=config.bits)
        self._signed = _centred(x, config.bits, config.effective_value_bits)
        self._randomness = rng
        self._phase = INPUT

    def _respond(self, data: bytes) -> bytes:
        require_phase(self._phase, INPUT, "a request")
        cfg = self.config
        req = m.Request.from_bytes(data)
        round_id, dim, bits, value_bits = req.round_id, req.dim, req.bits, req.value_bits
        n_clients, fingerprint = req.n_clients, req.fingerprint
        mine = (self.round_id, self._signed.size, cfg.bits, cfg.effective_value_bits, cfg.n_clients)
        if (round_id, dim, bits, value_bits, n_clients) != mine:
            raise ProtocolAbort(
                f"server asked for (round, dim, bits, value_bits, n_clients) = "
                f"{(round_id, dim, bits, value_bits, n_clients)}; this client holds {mine}"
            )
        if fingerprint != key_fingerprint(cfg.public_key):
            raise ProtocolAbort("server named a different public key than this client's")
        vector = hp.encrypt_vector(
            cfg.public_key, self._signed, cfg.layout, randomness=self._randomness
        )
        self._phase = DONE
        return m.Input(round_id, hp.ciphertexts_to_bytes(vector)).to_bytes()


class PaillierServer(ServerSession):
    """The aggregator: multiplies ciphertexts as they arrive (phase ``input``), then sends
    the encrypted sum to :data:`KEY_HOLDER` and takes its answer (phase ``decrypt``)."""

    def __init__(
        self,
        config: PaillierConfig,
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
        self._decrypted: bytes | None = None
        self._width = hp.ciphertext_bytes(config.public_key)
        self._n_ct = config.layout.ciphertexts_for(dim)
        self._sum: hp.CiphertextVector | None = None
        self._received: set[ClientId] = set()
        self._phase = START
        self._result: RoundResult | None = None

    def start(self) -> dict[ClientId, bytes]:
        require_local_phase(self._phase, START, "start()")
        cfg = self.config
        request = m.Request(
            self.round_id,
            self._dim,
            cfg.bits,
            cfg.effective_value_bits,
            cfg.n_clients,
            key_fingerprint(cfg.public_key),
        )
        self._phase = INPUT
        return dict.fromkeys(self._clients, request.to_bytes())

    def receive(self, client_id: PartyId, data: bytes) -> None:
        if client_id == KEY_HOLDER:
            require_phase(self._phase, DECRYPT, "the key holder's answer")
            if self._decrypted is not None:
                raise ProtocolAbort("the key holder already answered this round")
            # Checked on arrival, not only at the deadline: a stored replay of an older
            # round's answer would otherwise shut out the genuine one.
            answer = m.DecryptedSum.from_bytes(data, bits=self.config.bits, dim=self._dim)
            if answer.round_id != self.round_id:
                raise ProtocolAbort(f"key holder answered for round {answer.round_id}")
            self._decrypted = data
            return
        require_phase(self._phase, INPUT, "an input message")
        if client_id not in self._clients:
            raise ProtocolAbort(f"client {client_id} is not part of round {self.round_id}")
        if client_id in self._received:
            raise ProtocolAbort(f"client {client_id} already sent its input this round")
        msg = m.Input.from_bytes(data, size=self._n_ct * self._width)
        if msg.round_id != self.round_id:
            raise ProtocolAbort(f"client {client_id} sent an input for round {msg.round_id}")
        cfg = self.config
        vector = hp.ciphertexts_from_bytes(
            msg.ciphertexts, cfg.public_key, cfg.layout, count=self._dim, n_summed=1
        )
        self._sum = vector if self._sum is None else hp.add(self._sum, vector)
        self._received.add(client_id)

    def advance(self) -> dict[PartyId, bytes]:
        if self._phase not in (INPUT, DECRYPT):
            raise LocalProtocolError(f"advance() called in phase {self._phase!r}")
        try:
            return self._encrypted_sum() if self._phase == INPUT else self._finish()
        except SecflError:
            self._phase = ABORTED  # a deadline has passed: no late input or answer may join
            raise

    def _encrypted_sum(self) -> dict[PartyId, bytes]:
        """Close the input phase: the encrypted sum, addressed to the key holder."""
        if self._sum is None or len(self._received) < self.config.min_clients:
            raise InsufficientSurvivors(
                f"{plural(len(self._received), 'client')} sent inputs; the key holder decrypts "
                f"sums of at least {self.config.min_clients}"
            )
        request = m.EncryptedSum(
            self.round_id, self._sum.n_summed, self._dim, hp.ciphertexts_to_bytes(self._sum)
        )
        self._sum = None
        self._phase = DECRYPT
        return {KEY_HOLDER: request.to_bytes()}

    def _finish(self) -> dict[PartyId, bytes]:
        if self._decrypted is None:
            raise ProtocolAbort("the key holder did not answer before the deadline")
        answer = m.DecryptedSum.from_bytes(self._decrypted, bits=self.config.bits, dim=self._dim)
        if answer.round_id != self.round_id:
            raise ProtocolAbort(f"key holder answered for round {answer.round_id}")
        aggregate = answer.vector
        survivors = frozenset(self._received)
        self._result = RoundResult(
            aggregate=aggregate, survivors=survivors, dropped=self._clients - survivors
        )
        self._phase = DONE
        return {}
