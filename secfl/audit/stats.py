"""Statistical and algebraic checks of the masks and ciphertexts, with fixed seeds.

Each check runs real rounds (recorded with a :class:`~secfl.audit.TranscriptRecorder`) and
tests what left the clients, independently of the server's own unmasking code:

* :func:`check_masked_uniform`: a client's masked vector of an all-zero input looks
  uniform over Z_{2^k} (chi-square over the top bits and the low byte, and every bit's
  balance), for every client;
* :func:`check_masks_cancel`: from the transcript alone, reconstruct each survivor's self
  mask seed b_u from the revealed shares (Lagrange interpolation), expand PRG(b_u, "self")
  and require sum(y_u) - sum(PRG(b_u)) = sum(x_u) exactly, while each single
  y_u - x_u - PRG(b_u) is non-zero (the pairwise masks are there, and cancel);
* :func:`check_rerandomized`: Paillier ciphertexts of equal plaintexts (every slot the
  same, two clients with the same input) are pairwise distinct, decrypt to the same value,
  and their low bits look uniform (chi-square).

Tolerances: each test fails when its statistic exceeds the one-sided 1 - 10^-6 quantile
(``P_VALUE``), so with the fixed seeds a run is deterministic and a real defect (a zero,
constant or reused mask or obfuscator) fails by a wide margin.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from secfl import wire
from secfl._text import plural
from secfl.audit import _rounds as rounds
from secfl.audit.transcript import ShareKind, TranscriptRecorder, evaluation_points
from secfl.errors import SecflError
from secfl.hazmat import shamir
from secfl.hazmat.prg import expand_uniform, uint_dtype
from secfl.protocols import paillier as pl
from secfl.protocols import secagg as sa
from secfl.protocols.base import ProtocolName
from secfl.runtime.simulator import simulate_round

__all__ = [
    "P_VALUE",
    "check_masked_uniform",
    "check_masks_cancel",
    "check_rerandomized",
    "chi2_critical",
]

P_VALUE = 1e-6
_Z = 4.753424308822899  # upper 1e-6 quantile of the standard normal


def chi2_critical(dof: int) -> float:
    """Upper ``P_VALUE`` quantile of chi-square with ``dof`` degrees of freedom.

    Wilson-Hilferty approximation: it errs high (a slightly more tolerant test), by under
    2% for dof >= 15 (56.49 exact vs 57.36 at dof = 15; 377.08 vs 377.25 at dof = 255).
    """
    h = 2.0 / (9.0 * dof)
    return dof * (1.0 - h + _Z * math.sqrt(h)) ** 3


def _chi2(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2).sum() / expected)


def _seeds(label: str, seed: int, trials: int) -> list[bytes]:
    return [
        hashlib.sha256(f"secfl-audit/{label}/{seed}/{i}".encode()).digest() for i in range(trials)
    ]


def _uniformity_failures(y: np.ndarray, bits: int, what: str) -> list[str]:
    out = []
    d = y.size
    top_bits = min(8, bits)
    top = (y.astype(np.uint64) >> np.uint64(bits - top_bits)).astype(np.int64)
    for name, values, bins in (
        (f"top {top_bits} bits", top, 1 << top_bits),
        ("low byte", (y.astype(np.uint64) & np.uint64(0xFF)).astype(np.int64), 1 << min(8, bits)),
    ):
        stat = _chi2(np.bincount(values, minlength=bins).astype(np.float64))
        if stat > chi2_critical(bins - 1):
            out.append(
                f"{what}: chi-square of the {name} = {stat:.1f} > {chi2_critical(bins - 1):.1f}"
            )
    for b in range(bits):
        ones = int(((y.astype(np.uint64) >> np.uint64(b)) & np.uint64(1)).sum())
        z = abs(ones - d / 2) / math.sqrt(d / 4)
        if z > _Z:
            out.append(f"{what}: bit {b} is set in {ones} of {d} entries (z = {z:.1f})")
    return out


def _uniform_config(protocol: str, bits: int) -> sa.SecAggConfig:
    if protocol == ProtocolName.SECAGG_PLUS:
        return sa.SecAggConfig(bits=bits, threshold=3, n_clients=8, degree=4)
    return sa.SecAggConfig(bits=bits, threshold=3, n_clients=4)


def check_masked_uniform(protocol: str, *, trials: int = 4, seed: int = 0, dim: int = 8192) -> str:
    """Every client's MASKED_INPUT of an all-zero input looks uniform (see module doc).

    ``protocol`` is ``"secagg"`` or ``"secagg+"``; moduli alternate between 2^16 and 2^13.
    Raises AssertionError listing the failed tests; returns a one-line summary.
    """
    failures: list[str] = []
    tests = 0
    for i, s in enumerate(_seeds(f"uniform/{protocol}", seed, trials)):
        bits = (16, 13)[i % 2]
        config = _uniform_config(protocol, bits)
        zeros = {c: np.zeros(dim, dtype=uint_dtype(bits)) for c in range(1, config.n_clients + 1)}
        recorder = TranscriptRecorder()
        proto = recorder.wrap(rounds.secagg_protocol(config, rounds.derive(s, "protocol")))
        report = simulate_round(proto, zeros, round_id=rounds.ROUND_ID)
        if not report.correct:
            raise AssertionError(f"an honest all-zero round did not sum to zero: {report.aborted}")
        for c, ys in sorted(recorder.transcript.masked_inputs().items()):
            tests += 2 + bits
            failures += _uniformity_failures(ys[0], bits, f"trial {i}, client {c}, 2^{bits}")
    if failures:
        raise AssertionError(
            f"{len(failures)} of {tests} uniformity tests failed at p = {P_VALUE}:\n  "
            + "\n  ".join(failures[:12])
        )
    return f"{tests} tests over {trials} rounds passed"


def _offloaded_round(spec: rounds.SecAggSpec, share_dropouts: tuple[int, ...]) -> None:
    """The same round driven as a multi-core engine drives it: the unmask work handed out
    in two pieces (``offload``), run, and ``absorb``-ed. It must give the exact sum."""
    inputs = rounds.random_inputs(
        rounds.derive(spec.seed, "inputs"), spec.clients, bits=spec.bits, dim=spec.dim
    )
    proto = rounds.secagg_protocol(spec.config, rounds.derive(spec.seed, "protocol"))
    server = proto.server(round_id=rounds.ROUND_ID, client_ids=frozenset(inputs), dim=spec.dim)
    clients = {
        c: proto.client(round_id=rounds.ROUND_ID, client_id=c, value=v) for c, v in inputs.items()
    }
    requests = server.start()
    try:
        while requests:
            for c, request in sorted(requests.items()):
                if c in share_dropouts and request[3] == sa.MSG_KEYS:
                    continue  # crashes in the share phase
                reply = clients[c].handle(request)
                if reply is not None:
                    server.receive(c, reply)
            pieces = server.offload(2)
            if pieces:
                server.absorb([piece.run() for piece in pieces])
            requests = server.advance()
    except SecflError:
        return  # the serial round aborts alike (checked by the caller's round)
    survivors = server.result.survivors
    want = rounds.expected_sum(inputs, survivors, bits=spec.bits)
    if not np.array_equal(server.result.aggregate, want):
        raise AssertionError(
            f"with the unmask work offloaded in pieces the aggregate over {sorted(survivors)} "
            "is wrong"
        )


def check_masks_cancel(spec: rounds.SecAggSpec, share_dropouts: tuple[int, ...] = ()) -> str:
    """Reconstruct the self masks from the transcript and check the algebra (module doc).

    ``share_dropouts`` crash in the share phase (they are in no sum and no mask). Raises
    AssertionError on a defect; returns what was checked (or why the round aborted).
    """
    config = spec.config
    inputs = rounds.random_inputs(
        rounds.derive(spec.seed, "inputs"), spec.clients, bits=spec.bits, dim=spec.dim
    )
    recorder = TranscriptRecorder()
    proto = recorder.wrap(rounds.secagg_protocol(config, rounds.derive(spec.seed, "protocol")))
    report = simulate_round(
        proto, inputs, dropouts=dict.fromkeys(share_dropouts, "share"), round_id=rounds.ROUND_ID
    )
    if report.result is None:
        return f"round aborted: {report.aborted}"
    tr = recorder.transcript
    point = evaluation_points(tr)
    t, bits, d = spec.threshold, spec.bits, spec.dim
    by_owner: dict[int, list[tuple[int, bytes]]] = {}
    for s in tr.revealed_shares():
        if s.kind is ShareKind.SELF_MASK_SEED:
            by_owner.setdefault(s.owner, []).append((point[s.holder], s.share))
    masked = {c: ys[0] for c, ys in tr.masked_inputs().items() if c in report.result.survivors}
    dt = uint_dtype(bits)
    total = np.zeros(d, dtype=dt)
    plain = np.zeros(d, dtype=dt)
    wrap = dt.type((1 << bits) - 1) if bits < dt.itemsize * 8 else None
    for u, y in sorted(masked.items()):
        shares = by_owner.get(u, [])
        if len(shares) < t:
            revealed = "was" if len(shares) == 1 else "were"
            raise AssertionError(
                f"only {plural(len(shares), 'share')} of b_{u} {revealed} revealed; t = {t}"
            )
        xs = np.array([x for x, _ in shares[:t]], dtype=np.int64)
        rows = np.stack([shamir.shares_from_bytes(b, 1) for _, b in shares[:t]])
        b_u = shamir.reconstruct(rows, xs, threshold=t)[0]
        self_mask = expand_uniform(b_u, d, bits, label=b"self")
        residue = y - inputs[u] - self_mask
        if wrap is not None:
            residue &= wrap
        if d * bits >= 40 and not residue.any():
            raise AssertionError(f"client {u}'s masked input carries no pairwise mask")
        total += y - self_mask
        plain += inputs[u]
    if wrap is not None:
        total &= wrap
        plain &= wrap
    if not np.array_equal(total, plain):
        raise AssertionError(
            "sum(y_u) - sum(PRG(b_u)) differs from sum(x_u): the pairwise masks do not cancel"
        )
    if not np.array_equal(report.result.aggregate, plain):
        raise AssertionError("the server's aggregate differs from the independently unmasked sum")
    _offloaded_round(spec, share_dropouts)
    return f"{len(masked)} masked inputs unmasked independently"


def check_rerandomized(*, trials: int = 2, seed: int = 0, per_client: int = 128) -> str:
    """Paillier ciphertexts of equal plaintexts differ and look random (module doc)."""
    public, private = rounds.audit_paillier_keys()
    n = int(public.n)
    width = (2 * n.bit_length() + 7) // 8
    failures: list[str] = []
    cts: list[int] = []
    for i, s in enumerate(_seeds("rerandomized", seed, trials)):
        spec = rounds.PaillierSpec(n=2, bits=16, value_bits=8, min_clients=2, dim=1, seed=s)
        dim = spec.config.layout.slots_per_ciphertext * per_client
        value = np.full(dim, 7, dtype=np.uint16)
        recorder = TranscriptRecorder()
        protocol = rounds.PaillierProtocol(
            spec.config,
            key_holder=rounds.paillier_holder(spec.config),
            rng=rounds.derive(s, "protocol"),
        )
        report = simulate_round(recorder.wrap(protocol), {1: value, 2: value})
        if not report.correct:
            raise AssertionError(f"an honest round of equal inputs failed: {report.aborted}")
        trial: list[int] = []
        for _, frame in recorder.transcript.emitted(pl.MSG_INPUT):
            raw = bytes(wire.unframe(frame)[1][8:])
            trial += [int.from_bytes(raw[j : j + width], "big") for j in range(0, len(raw), width)]
        plaintexts = {private.raw_decrypt(c) for c in trial}
        if len(plaintexts) != 1:
            raise AssertionError(
                "ciphertexts meant to encrypt equal plaintexts decrypt differently"
            )
        if len(set(trial)) != len(trial):
            repeated = len(trial) - len(set(trial))
            failures.append(f"trial {i}: {repeated} repeated ciphertexts of equal plaintexts")
        cts += trial
    for shift, name in ((0, "low nibble"), (4, "second nibble")):
        counts = np.bincount([(c >> shift) & 15 for c in cts], minlength=16).astype(np.float64)
        stat = _chi2(counts)
        if stat > chi2_critical(15):
            failures.append(f"chi-square of the {name} = {stat:.1f} > {chi2_critical(15):.1f}")
    if failures:
        raise AssertionError("Paillier re-randomization failed:\n  " + "\n  ".join(failures))
    return f"{len(cts)} ciphertexts of one plaintext, all distinct"
