"""The trusted directory of an active deployment: a registry file loads exactly when every
entry is a valid identity.

Active-mode SecAgg and threshold Paillier take each client's Ed25519 verify key from the
registry (secagg-v1 section 3.2, paillier-sum-v2 section 3.4). ``cryptography`` loads any
32 bytes as a verify key, including the points of small order (for which a signature on any
message is easy to forge: whoever holds the file could then speak for that id), the
non-canonical encodings y >= p (a second spelling of a key, which no byte comparison
matches: the duplicate-key rule would not see it) and values off the curve. secfl's own
check (``secfl.hazmat.sign``) must refuse each of them, and :meth:`Registry.from_json`
must also refuse aliased ids ("07", non-ASCII digits), an id given twice and one key under
two ids, each with :class:`~secfl.errors.InvalidArgument` and nothing else.
"""

from __future__ import annotations

import json

import gmpy2

from secfl.audit._errors import AuditFailure, Violation
from secfl.errors import InvalidArgument
from secfl.hazmat import sign
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.identities import Registry

__all__ = ["BAD_KEYS", "check_registry"]

_P = 2**255 - 19


def _encode(y: int, sign_bit: int) -> bytes:
    return (y | sign_bit << 255).to_bytes(32, "little")


def _off_curve(count: int) -> list[int]:
    """The first ``count`` y in 2.. for which no x exists (x^2 = (y^2 - 1) / (d y^2 + 1))."""
    out: list[int] = []
    y = 2
    while len(out) < count:
        y2 = y * y % _P
        if int(gmpy2.legendre((y2 - 1) * (sign._D * y2 + 1) % _P, _P)) != 1:
            out.append(y)
        y += 1
    return out


BAD_KEYS: dict[str, bytes] = {
    **{
        f"small order y={y % 1000} sign {s}": _encode(y, s)
        for y in sorted(sign._SMALL_ORDER_Y)
        for s in (0, 1)
    },
    **{f"non-canonical y=p+{k} sign {s}": _encode(_P + k, s) for k in range(19) for s in (0, 1)},
    **{f"off the curve y={y}": _encode(y, 0) for y in _off_curve(3)},
}
"""Verify keys no registry may hold (every small-order point, every y >= p, off-curve y)."""


def _valid() -> tuple[Registry, dict[str, object]]:
    rng = Csprng(seed=b"audit registry".ljust(32, b"\0"))
    registry = Registry({c: SigningKey.generate(rng=rng).verify_key() for c in (1, 2, 3)})
    doc = json.loads(registry.to_json())
    return registry, doc


def _refused(text: str) -> str | None:
    """None when the file is refused with InvalidArgument; else what happened."""
    try:
        Registry.from_json(text)
    except InvalidArgument:
        return None
    except Exception as e:  # any other exception is a loader bug
        return f"{type(e).__name__}: {e}"
    return "it loaded"


def check_registry() -> None:
    """The valid file loads to the same registry; each :data:`BAD_KEYS` entry in place of
    client 2's key, and each alias of an identity (an id spelt "01" or with a non-ASCII
    digit, an id twice, a key under two ids), is refused with InvalidArgument.
    Raises :class:`AuditFailure`."""
    registry, doc = _valid()
    violations = []
    if Registry.from_json(json.dumps(doc)).digest() != registry.digest():
        violations.append(Violation("registry-loads", "a valid registry file loads differently"))
    clients = doc["clients"]
    assert isinstance(clients, dict)
    cases: dict[str, str] = {}
    for what, raw in BAD_KEYS.items():
        cases[what] = json.dumps({**doc, "clients": {**clients, "2": raw.hex()}})
    key1 = clients["1"]
    body = json.dumps(doc)
    cases["leading zero"] = body.replace('"1":', '"01":')
    cases["non-ascii digit"] = body.replace('"1":', '"\\u0661":')  # ARABIC-INDIC DIGIT ONE
    cases["id twice"] = body.replace('"3":', '"1":')
    cases["key twice"] = json.dumps({**doc, "clients": {**clients, "3": key1}})
    for what, text in cases.items():
        why = _refused(text)
        if why is not None:
            violations.append(Violation("registry-refuses", f"a registry with {what}: {why}"))
    if violations:
        raise AuditFailure(violations)
