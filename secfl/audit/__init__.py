"""Protocol audit: transcripts of what the server saw, checked against the specifications.

* :class:`TranscriptRecorder` / :func:`check_view`: record a round and check the server's
  (and a coalition's) view against the leakage the spec allows. No extra dependency.
* :func:`run_audit`: the property-based audit suite behind ``secfl audit`` (adversarial
  state machines, wire fuzzing, statistical checks). It needs Hypothesis, a development
  dependency (``pip install 'secfl[dev]'``); without it, it raises :class:`AuditUnavailable`.
* :func:`run_privacy_audit`: the empirical privacy audit behind ``secfl audit --privacy``
  (canary clients through the real pipeline and protocol, a one-run lower bound on epsilon
  set against the accountant's). No extra dependency.

See ``docs/audit.md``.
"""

from secfl.audit._errors import AuditFailure, AuditUnavailable, Violation
from secfl.audit.privacy import (
    PrivacyAuditConfig,
    PrivacyAuditReport,
    PrivacyMechanism,
    run_privacy_audit,
)
from secfl.audit.runner import (
    PROTOCOLS,
    AuditReport,
    PropertyResult,
    ProtocolReport,
    run_audit,
)
from secfl.audit.transcript import (
    Decryption,
    Delivery,
    Exchange,
    RevealedShare,
    ShareKind,
    Transcript,
    TranscriptRecorder,
    check_view,
)

__all__ = [
    "PROTOCOLS",
    "AuditFailure",
    "AuditReport",
    "AuditUnavailable",
    "Decryption",
    "Delivery",
    "Exchange",
    "PrivacyAuditConfig",
    "PrivacyAuditReport",
    "PrivacyMechanism",
    "PropertyResult",
    "ProtocolReport",
    "RevealedShare",
    "ShareKind",
    "Transcript",
    "TranscriptRecorder",
    "Violation",
    "check_view",
    "run_audit",
    "run_privacy_audit",
]
