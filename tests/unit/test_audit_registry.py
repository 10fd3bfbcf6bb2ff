"""The audit's registry property (secfl/audit/registry.py): it passes on the real loader and
fails, naming the case, when the verify-key or the id check is removed."""

from __future__ import annotations

import re

import pytest

from secfl import identities
from secfl.audit import AuditFailure
from secfl.audit import registry as audit_registry
from secfl.hazmat import sign


def test_the_real_loader_refuses_every_invalid_key_and_alias() -> None:
    audit_registry.check_registry()
    assert len(audit_registry.BAD_KEYS) == 51  # 10 small-order, 38 non-canonical, 3 off-curve


@pytest.mark.parametrize(
    ("check", "case"),
    [
        ("small order", "small order y=0 sign 0"),
        ("canonical", "non-canonical y=p+3 sign 0"),
        ("curve", "off the curve y=2"),
    ],
)
def test_a_loader_without_one_key_check_is_caught(monkeypatch, check, case) -> None:
    real = sign._check_point

    def weaker(raw: bytes) -> None:  # the named check no longer refuses
        try:
            real(raw)
        except sign.IntegrityError as e:
            if check not in str(e):
                raise

    monkeypatch.setattr(sign, "_check_point", weaker)
    with pytest.raises(AuditFailure, match=re.escape(case)):
        audit_registry.check_registry()


def test_a_loader_that_reads_aliased_ids_is_caught(monkeypatch) -> None:
    monkeypatch.setattr(identities, "_CANONICAL_ID", re.compile(r"[0-9]+"))
    with pytest.raises(AuditFailure, match="leading zero"):
        audit_registry.check_registry()
