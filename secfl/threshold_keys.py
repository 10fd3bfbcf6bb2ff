"""Threshold Paillier key files (paillier-sum-v2): one public key, m key-share files.

``secfl paillier-key --holders m --threshold t --out DIR`` (a trusted dealer) writes

* ``paillier-threshold.pub``: the public key (n, t, m, v, v_1..v_m), for everyone;
* ``paillier-share-<i>.key`` for i = 1..m: holder i's share s_i with a copy of the public
  key, created owner-only and never overwritten; each goes to its holder's machine only.

Loaders parse strictly and raise only :class:`~secfl.errors.InvalidArgument`, whatever the
content (the same rules as :mod:`secfl.identities`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from secfl.errors import InvalidArgument, SecflError
from secfl.hazmat import threshold_paillier as tp
from secfl.identities import _read, _strict_json, _write_secret

__all__ = [
    "PUBLIC_FILE",
    "load_key_share",
    "load_threshold_public_key",
    "save_threshold_key",
    "share_file",
]

PUBLIC_FILE = "paillier-threshold.pub"
_PUBLIC_FORMAT = "secfl-paillier-threshold-public-key"
_SHARE_FORMAT = "secfl-paillier-key-share"
_MAX_HEX = 2 * 8192 // 4 + 2  # an element mod n^2 for |n| <= 8192, as "0x..." hex


def share_file(index: int) -> str:
    """File name of holder ``index``'s share."""
    return f"paillier-share-{index}.key"


def _public_doc(pk: tp.ThresholdPublicKey) -> dict[str, Any]:
    return {
        "format": _PUBLIC_FORMAT,
        "version": 1,
        "n": hex(pk.n),
        "threshold": pk.threshold,
        "holders": pk.holders,
        "v": hex(pk.verification_base),
        "verification_keys": [hex(v) for v in pk.verification_keys],
    }


def save_threshold_key(
    public_key: tp.ThresholdPublicKey,
    shares: tuple[tp.KeyShare, ...] | list[tp.KeyShare],
    directory: str | os.PathLike[str],
) -> list[Path]:
    """Write the public key and every share into ``directory``; the paths written."""
    if not isinstance(public_key, tp.ThresholdPublicKey):
        raise InvalidArgument("public_key must be a ThresholdPublicKey")
    if sorted(getattr(s, "index", 0) for s in shares) != list(range(1, public_key.holders + 1)):
        raise InvalidArgument("shares must be the m KeyShare objects 1..m of public_key")
    if any(not isinstance(s, tp.KeyShare) or s.public_key != public_key for s in shares):
        raise InvalidArgument("every share must be a KeyShare of public_key")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    taken = [out / PUBLIC_FILE] + [out / share_file(s.index) for s in shares]
    if any(p.exists() for p in taken):
        raise InvalidArgument(f"{out} already holds threshold key files: use a new directory")
    public = _public_doc(public_key)
    paths = []
    for s in sorted(shares, key=lambda s: s.index):
        doc = {
            "format": _SHARE_FORMAT,
            "version": 1,
            "index": s.index,
            "share": hex(s.private_number()),
            "public_key": public,
        }
        path = out / share_file(s.index)
        _write_secret(path, (json.dumps(doc, indent=1) + "\n").encode())
        paths.append(path)
    (out / PUBLIC_FILE).write_text(json.dumps(public, indent=1) + "\n")
    return [out / PUBLIC_FILE, *paths]


def _hex(doc: dict[str, Any], key: str, what: str) -> int:
    value = doc.get(key)
    if not isinstance(value, str) or len(value) > _MAX_HEX or not value.startswith("0x"):
        raise InvalidArgument(f"{what}: field {key!r} is not a hex integer (0x...)")
    try:
        return int(value, 16)
    except ValueError:
        raise InvalidArgument(f"{what}: field {key!r} is not a hex integer (0x...)") from None


def _small_int(doc: dict[str, Any], key: str, what: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= tp.MAX_HOLDERS:
        raise InvalidArgument(f"{what}: field {key!r} must be an integer in 1..{tp.MAX_HOLDERS}")
    return value


def _public_from_doc(doc: object, what: str) -> tp.ThresholdPublicKey:
    if not isinstance(doc, dict) or doc.get("format") != _PUBLIC_FORMAT or doc.get("version") != 1:
        raise InvalidArgument(f"{what}: not a {_PUBLIC_FORMAT} (version 1)")
    holders = _small_int(doc, "holders", what)
    vks = doc.get("verification_keys")
    if not isinstance(vks, list) or len(vks) != holders:
        raise InvalidArgument(f"{what}: 'verification_keys' must list {holders} hex integers")
    values = {f"v{i}": v for i, v in enumerate(vks, 1)}
    try:
        return tp.ThresholdPublicKey(
            _hex(doc, "n", what),
            threshold=_small_int(doc, "threshold", what),
            verification_base=_hex(doc, "v", what),
            verification_keys=[_hex(values, f"v{i}", what) for i in range(1, holders + 1)],
        )
    except SecflError as e:
        raise InvalidArgument(f"{what}: not a valid threshold public key: {e}") from None


def load_threshold_public_key(path: str | os.PathLike[str]) -> tp.ThresholdPublicKey:
    """Read ``paillier-threshold.pub``."""
    what = os.fspath(path)
    return _public_from_doc(_strict_json(_read(path, "threshold public key"), what), what)


def load_key_share(
    path: str | os.PathLike[str], *, public_key: tp.ThresholdPublicKey | None = None
) -> tp.KeyShare:
    """Read ``paillier-share-<i>.key``; its share must match v_i. ``public_key`` (the one
    distributed to everyone): the file's copy must equal it."""
    what = os.fspath(path)
    doc = _strict_json(_read(path, "key share"), what)
    if not isinstance(doc, dict) or doc.get("format") != _SHARE_FORMAT or doc.get("version") != 1:
        raise InvalidArgument(f"{what}: not a {_SHARE_FORMAT} file (version 1)")
    public = _public_from_doc(doc.get("public_key"), what)
    if public_key is not None and public != public_key:
        raise InvalidArgument(f"{what}: the share belongs to another threshold key")
    index = _small_int(doc, "index", what)
    share = _hex(doc, "share", what)
    loaded: tp.KeyShare | None = None
    with contextlib.suppress(InvalidArgument):  # refused below, with no __context__
        loaded = tp.KeyShare(public, index, share)
    if loaded is None:
        raise InvalidArgument(f"{what}: the share does not match its verification key")
    return loaded
