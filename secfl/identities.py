"""Long-term keys on disk: client identities and their registry, the Paillier key holder's key.

SecAgg's active mode (Bonawitz et al. 2017, ``protocols/secagg-v1.md``) needs a PKI: each
client signs its round keys and the survivor list with its own Ed25519 key, and every
client checks its peers' signatures against keys it got **out of band**, never from the
server. This module is that PKI's file side:

* a client's signing key is an unencrypted PKCS#8 PEM file (what ``openssl genpkey
  -algorithm ed25519`` writes), readable by its owner only;
* the :class:`Registry` maps each client id to its verify key; every party holds the same
  copy (a JSON file distributed with the deployment), and its :meth:`Registry.digest` lets
  two parties check cheaply that they hold the same one.

A client's id is where its verify key sits in the registry, so a key file needs no id.

The Paillier key holder's key pair (phe-compatible) is kept the same way: the private key
(``n``, ``p``, ``q``) in an owner-only JSON file on the key holder's machine only, the public
key (``n``) in a JSON file anyone may hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import phe
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secfl import wire
from secfl.errors import InvalidArgument, SecflError
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey, VerifyKey
from secfl.paillier_keys import PaillierPrivateKey, PaillierPublicKey

__all__ = [
    "REGISTRY_FORMAT",
    "REGISTRY_VERSION",
    "Registry",
    "generate_identities",
    "load_paillier_private_key",
    "load_paillier_public_key",
    "load_signing_key",
    "save_paillier_key",
    "save_signing_key",
]

REGISTRY_FORMAT = "secfl-registry"
REGISTRY_VERSION = 1
_DIGEST_LABEL = b"secfl registry v1"
_MAX_ID = (1 << 32) - 1
_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,9}")
"""A registry id's only spelling: "7", never "07" or a non-ASCII digit (which int() also reads)."""


@dataclass(frozen=True)
class Registry:
    """Client id -> Ed25519 verify key, the trusted directory of an active deployment.

    Ids are integers in 1..2^32-1 (secfl client ids); a key may appear only once (one
    party, one id).
    """

    verify_keys: Mapping[int, VerifyKey]

    def __post_init__(self) -> None:
        keys = dict(self.verify_keys)
        if len(keys) < 2:
            raise InvalidArgument(f"a registry needs at least 2 clients, got {len(keys)}")
        for cid, key in keys.items():
            if not isinstance(cid, int) or isinstance(cid, bool) or not 1 <= cid <= _MAX_ID:
                raise InvalidArgument(f"registry client ids must be in 1..2^32-1, got {cid!r}")
            if not isinstance(key, VerifyKey):
                raise InvalidArgument(f"client {cid}: expected a VerifyKey, got {type(key)}")
        if len(set(keys.values())) != len(keys):
            raise InvalidArgument("the registry lists the same verify key under two client ids")
        object.__setattr__(self, "verify_keys", MappingProxyType(dict(sorted(keys.items()))))

    def digest(self) -> bytes:
        """SHA-256 over the sorted (id, key) pairs: equal iff two registries are equal."""
        w = wire.Writer().u32(len(self.verify_keys))
        for cid, key in self.verify_keys.items():
            w.u32(cid).raw(key.to_bytes())
        return hashlib.sha256(_DIGEST_LABEL + w.getvalue()).digest()

    def client_id_of(self, key: SigningKey) -> int:
        """The id under which ``key``'s verify key is registered."""
        vk = key.verify_key()
        for cid, registered in self.verify_keys.items():
            if registered == vk:
                return cid
        raise InvalidArgument(
            f"this signing key ({vk!r}) is not in the registry: register its verify key, or "
            f"use the key the registry was made for"
        )

    # ------------------------------------------------------------------ files
    def to_json(self) -> str:
        """The registry file: ``{"format", "version", "clients": {"<id>": "<hex key>"}}``."""
        clients = {str(cid): key.to_bytes().hex() for cid, key in self.verify_keys.items()}
        doc = {"format": REGISTRY_FORMAT, "version": REGISTRY_VERSION, "clients": clients}
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Registry:
        """Parse a registry file; anything malformed raises :class:`InvalidArgument`."""
        doc = _strict_json(text, "the registry")
        if not isinstance(doc, dict) or doc.get("format") != REGISTRY_FORMAT:
            raise InvalidArgument(f"not a secfl registry (expected format {REGISTRY_FORMAT!r})")
        if doc.get("version") != REGISTRY_VERSION:
            raise InvalidArgument(
                f"registry version {doc.get('version')!r}; this secfl reads {REGISTRY_VERSION}"
            )
        clients = doc.get("clients")
        if not isinstance(clients, dict):
            raise InvalidArgument("the registry's 'clients' must be an object of id -> hex key")
        keys: dict[int, VerifyKey] = {}
        for name, value in clients.items():
            if not (_CANONICAL_ID.fullmatch(name) and isinstance(value, str)):
                raise InvalidArgument(
                    f"registry entry {name!r}: expected an id written in ASCII digits without "
                    f"leading zeros (one spelling per id) -> hex key"
                )
            try:
                keys[int(name)] = VerifyKey.from_bytes(bytes.fromhex(value))
            except (ValueError, SecflError) as e:
                raise InvalidArgument(f"registry entry {name}: bad verify key: {e}") from None
        return cls(keys)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Registry:
        return cls.from_json(_read(path, "registry").decode("utf-8", errors="replace"))

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json())


def save_signing_key(key: SigningKey, path: str | os.PathLike[str]) -> None:
    """Write ``key`` as an unencrypted PKCS#8 PEM file, created readable by its owner only.

    Never overwrites: an existing file raises :class:`InvalidArgument`.
    """
    raw = Ed25519PrivateKey.from_private_bytes(key.private_bytes())
    pem = raw.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_secret(path, pem)


def _write_secret(path: str | os.PathLike[str], data: bytes) -> None:
    """Create ``path`` readable by its owner only; never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidArgument(
            f"{os.fspath(path)} exists: a key file is never overwritten"
        ) from None
    except OSError as e:
        raise InvalidArgument(f"cannot create the key file {os.fspath(path)}: {e}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read an Ed25519 private key from a PKCS#8 PEM file (unencrypted)."""
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, InternalError):
        raise InvalidArgument(f"{os.fspath(path)}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument(
            f"{os.fspath(path)}: a {type(key).__name__}, secfl identities are Ed25519"
        )
    return SigningKey(key)


def generate_identities(
    n_clients: int, directory: str | os.PathLike[str], *, rng: Csprng | None = None
) -> Registry:
    """Make ``client-<id>.pem`` for ids 1..n_clients and ``registry.json`` in ``directory``.

    For tests and single-operator deployments; in a real one each client generates its own
    key and only its verify key travels to whoever assembles the registry.
    """
    if not 2 <= n_clients <= 100_000:
        raise InvalidArgument(f"n_clients must be in 2..100000, got {n_clients}")
    rng = rng or Csprng()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    taken = [p.name for p in out.glob("client-*.pem")] + [p.name for p in out.glob("registry.json")]
    if taken:
        raise InvalidArgument(f"{out} already holds {sorted(taken)[:3]}...: use a new directory")
    keys = {cid: SigningKey.generate(rng=rng) for cid in range(1, n_clients + 1)}
    registry = Registry({cid: k.verify_key() for cid, k in keys.items()})
    for cid, key in keys.items():
        save_signing_key(key, out / f"client-{cid}.pem")
    registry.save(out / "registry.json")
    return registry


_PAILLIER_PRIVATE = "secfl-paillier-private-key"
_PAILLIER_PUBLIC = "secfl-paillier-public-key"


def save_paillier_key(
    private_key: PaillierPrivateKey | phe.PaillierPrivateKey,
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str],
) -> None:
    """Write the key holder's private key (owner-only, never overwritten) and its public key."""
    if isinstance(private_key, phe.PaillierPrivateKey):
        private_key = PaillierPrivateKey.from_phe(private_key)
    if not isinstance(private_key, PaillierPrivateKey):
        raise InvalidArgument("private_key must be a secfl (or phe) PaillierPrivateKey")
    n = private_key.public_key.n
    p, q = private_key.private_numbers()
    secret = {"n": hex(n), "p": hex(p), "q": hex(q)}
    doc = {"format": _PAILLIER_PRIVATE, "version": 1, **secret}
    _write_secret(private_path, (json.dumps(doc, indent=1) + "\n").encode())
    public = {"format": _PAILLIER_PUBLIC, "version": 1, "n": hex(n)}
    Path(public_path).write_text(json.dumps(public, indent=1) + "\n")


def load_paillier_private_key(path: str | os.PathLike[str]) -> PaillierPrivateKey:
    """Read a key written by :func:`save_paillier_key`; p * q must equal n."""
    fields = _paillier_doc(path, _PAILLIER_PRIVATE, ("n", "p", "q"))
    n, p, q = fields["n"], fields["p"], fields["q"]
    if p * q != n:
        raise InvalidArgument(f"{os.fspath(path)}: p * q is not n")
    try:
        return PaillierPrivateKey(PaillierPublicKey(n), p, q)
    except ValueError:  # e.g. p == q; the values stay out of the message and the chain
        raise InvalidArgument(f"{os.fspath(path)}: not a valid Paillier key pair") from None


def load_paillier_public_key(path: str | os.PathLike[str]) -> PaillierPublicKey:
    """Read the public key written by :func:`save_paillier_key`."""
    return PaillierPublicKey(_paillier_doc(path, _PAILLIER_PUBLIC, ("n",))["n"])


def _paillier_doc(path: str | os.PathLike[str], fmt: str, keys: tuple[str, ...]) -> dict[str, int]:
    doc = _strict_json(_read(path, "Paillier key"), os.fspath(path))
    if not isinstance(doc, dict) or doc.get("format") != fmt or doc.get("version") != 1:
        raise InvalidArgument(f"{os.fspath(path)}: not a {fmt} file (version 1)")
    out: dict[str, int] = {}
    for key in keys:
        value = doc.get(key)
        try:
            out[key] = int(value, 16) if isinstance(value, str) else -1
        except ValueError:
            out[key] = -1
        if out[key] < 3:
            raise InvalidArgument(f"{os.fspath(path)}: field {key!r} is not a hex integer >= 3")
    if out["n"].bit_length() < 1024:
        raise InvalidArgument(f"{os.fspath(path)}: a {out['n'].bit_length()}-bit modulus")
    return out


def _strict_json(text: str | bytes, what: str) -> object:
    """``json.loads`` that raises only :class:`InvalidArgument`: for malformed or
    non-UTF-8 text, a key repeated in one object (JSON lets the last one win silently), and
    nesting deep enough to exhaust the parser's recursion."""

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                raise InvalidArgument(f"{what}: the key {key!r} appears twice in one object")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise InvalidArgument(f"{what}: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        if isinstance(e, InvalidArgument):
            raise
        raise InvalidArgument(f"{what}: not valid JSON: {e}") from None


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InvalidArgument(f"cannot read the {what} file {os.fspath(path)}: {e}") from None
