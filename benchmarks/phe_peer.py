"""Naive per-value Paillier with ``phe``: what secfl's packed Paillier is compared with.

Each client encrypts every float of its update with ``phe``'s ``public_key.encrypt``
(one 2048-bit Paillier ciphertext per value, fresh randomness), the aggregator adds the
ciphertexts of the surviving clients value by value (``+`` on ``EncryptedNumber``, which
aligns exponents), and the key holder decrypts each of the d sums. Encrypting millions of
values this way takes hours, so a run times a *sample*: ``clients x positions`` values
taken from the same update vectors as secfl's cells (the first ``positions`` entries of
the first ``clients`` clients at d = 10^3), the ``clients - 1`` additions per position, and
the decryption of each position's sum; every cell's cost is then **extrapolated** from the
per-value times: client = d x encrypt, server = d x ((survivors - 1) x add + decrypt).
Bytes per client: d ciphertexts of 2 x 2048 bits (binary, no framing).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.cells import Cell, update_stream
from secfl.paillier_keys import PaillierPrivateKey

__all__ = ["LABEL", "extrapolate", "measure_phe"]

LABEL = "naive phe {version} (per-value encrypt/add/decrypt, extrapolated from {sample} values)"


def measure_phe(*, clients: int, positions: int, keys: PaillierPrivateKey) -> dict[str, Any]:
    """Per-value encrypt, add and decrypt CPU seconds on a sample of real update values,
    under ``keys`` (the pair secfl's Paillier cells use)."""
    public, private, key_bits = keys.public_key.to_phe(), keys.to_phe(), keys.public_key.bits
    sample = Cell("phe", clients, 1000, 0.0)
    values = [
        [float(v) for v in u[:positions]] for _, u in update_stream(sample, seed=0)
    ]  # clients x positions
    t0 = time.process_time()
    enc = [[public.encrypt(v) for v in row] for row in values]
    t_enc = time.process_time() - t0
    t0 = time.process_time()
    sums = []
    for j in range(positions):
        acc = enc[0][j]
        for i in range(1, clients):
            acc = acc + enc[i][j]
        sums.append(acc)
    t_add = time.process_time() - t0
    t0 = time.process_time()
    dec = [private.decrypt(s) for s in sums]
    t_dec = time.process_time() - t0
    exact = [sum(values[i][j] for i in range(clients)) for j in range(positions)]
    return {
        "key_bits": key_bits,
        "sample_values": clients * positions,
        "sample_clients": clients,
        "sample_positions": positions,
        "encrypt_seconds_per_value": t_enc / (clients * positions),
        "add_seconds_per_value": t_add / max(1, (clients - 1) * positions),
        "decrypt_seconds_per_value": t_dec / positions,
        "max_abs_error": float(np.max(np.abs(np.subtract(dec, exact)))),
        "ciphertext_bytes": 2 * key_bits // 8,
    }


def extrapolate(sample: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """A cell's costs for naive phe, extrapolated from ``sample`` (no run, no memory)."""
    survivors = cell.n - cell.dropped
    client = cell.d * sample["encrypt_seconds_per_value"]
    server = cell.d * (
        (survivors - 1) * sample["add_seconds_per_value"] + sample["decrypt_seconds_per_value"]
    )
    return {
        "correct": sample["max_abs_error"] < 1e-9,
        "aborted": None,
        "survivors": survivors,
        "dropped": cell.dropped,
        "degree": 0,
        "threshold": 0,
        "input_dim": cell.d,
        "client_seconds": client,
        "client_seconds_p95": client,
        "client_protocol_seconds": client,
        "server_seconds": server,
        "wall_seconds": survivors * client + server,
        "peak_bytes": None,
        "bytes_up_per_client": float(cell.d * sample["ciphertext_bytes"]),
        "bytes_down_per_client": 0.0,
        "extrapolated": True,
    }
