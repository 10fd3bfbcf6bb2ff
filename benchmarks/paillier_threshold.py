"""Threshold Paillier (paillier-sum-v2): a 10 x 100k round with 3-of-5 key holders against
naive per-value phe, measured in one run, and the cost of each party.

``python -m benchmarks.paillier_threshold`` (``--quick`` for a small smoke run) deals one
2048-bit 3-of-5 key (safe primes), runs one round of 10 clients x 100 000 floats through the
real sessions (clients sign, all five key holders answer, the aggregator verifies five
proofs and combines three), then times naive ``phe`` (``encrypt(float)``, ``+``,
``decrypt`` per value) **on a sample of values and extrapolates linearly** to the round.
Writes ``docs/benchmarks/paillier-threshold.json`` and ``.md``.

Times are process CPU seconds of this one process (one core). Parties of a deployment run
on different machines, so the round's wall time is estimated as the slowest client + the
aggregator + the slowest key holder (holders work in parallel).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import phe

from benchmarks.paillier_targets import naive_phe
from benchmarks.runner import OUT_DIR, environment
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.pipeline import Pipeline, PipelineConfig
from secfl.protocols import paillier_threshold as pt

CLIENTS, DIM, HOLDERS, THRESHOLD, KEY_BITS = 10, 100_000, 5, 3, 2048
RING_BITS = 19  # the codec then gives 16-bit per-client values: the precision
TARGET_SPEEDUP = 100.0


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def run(*, quick: bool, sample: int, progress: bool, dim: int | None = None) -> dict[str, Any]:
    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    n, d = CLIENTS, dim if dim is not None else (2_000 if quick else DIM)
    rng = Csprng(seed=b"secfl-bench-paillier-threshold-0")
    say("dealing a 2048-bit 3-of-5 key (safe primes) ...")
    t_key, (pk, shares) = _cpu(
        lambda: tp.generate_key(bits=KEY_BITS, holders=HOLDERS, threshold=THRESHOLD, rng=rng)
    )
    pipeline = Pipeline(
        PipelineConfig(protocol="paillier", clip_bound=1.0, bits=RING_BITS),
        n_clients=n,
        dim=d,
        dropout=0.0,
        rng=rng.spawn(),
    )
    ids = {c: SigningKey.generate(rng=rng) for c in range(1, n + 1)}
    cfg = pt.ThresholdPaillierConfig(
        public_key=pk,
        registry={c: k.verify_key() for c, k in ids.items()},
        bits=pipeline.codec.bits,
        n_clients=n,
        value_bits=pipeline.value_bits,
        min_clients=2,
    )
    data = np.random.default_rng(0)
    inputs = {c: pipeline.codec.encode(data.uniform(-1.0, 1.0, d)) for c in range(1, n + 1)}
    rounds = {}
    for label, ask_first in (("all", None), ("t_first", THRESHOLD)):
        say(f"round ({label}): {n} clients x {d} values, {cfg.layout.ciphertexts_for(d)} ct ...")
        rounds[label] = _round(
            dataclasses.replace(cfg, ask_first=ask_first), shares, ids, inputs, rng.spawn(), say
        )
    say(f"naive phe on {sample} values (extrapolated) ...")
    phe_pub, phe_priv = phe.generate_paillier_keypair(n_length=KEY_BITS)
    naive = naive_phe(phe_pub, phe_priv, sample)
    naive_round = n * d * naive["encrypt_s_per_value"] + d * (
        (n - 1) * naive["add_s_per_value"] + naive["decrypt_s_per_value"]
    )
    out: dict[str, Any] = {
        "environment": environment(),
        "quick": quick,
        "ring_bits": RING_BITS,
        "scale_bits": pipeline.codec.scale_bits,
        "key": {"bits": KEY_BITS, "holders": HOLDERS, "threshold": THRESHOLD, "deal_cpu_s": t_key},
        "naive_phe": naive,
        "naive_phe_round_cpu_s_extrapolated": naive_round,
        "target_speedup": TARGET_SPEEDUP,
    }
    for label, rnd in rounds.items():
        rnd |= speedups(
            naive,
            rnd_cpu=rnd["round_cpu_s"],
            wall=rnd["round_wall_s_parties_in_parallel"],
            n=n,
            d=d,
        )
        out[f"round_{label}"] = rnd
    return out


def _round(
    cfg: pt.ThresholdPaillierConfig,
    shares: tuple[tp.KeyShare, ...],
    ids: dict[int, SigningKey],
    inputs: dict[int, np.ndarray],
    rng: Csprng,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """One round through the real sessions, every party timed on its own."""
    holders = {s.index: pt.ThresholdPaillierKeyHolder(cfg, s, rng=rng.spawn()) for s in shares}
    proto = pt.ThresholdPaillierProtocol(cfg, identities=ids, rng=rng.spawn())
    d = next(iter(inputs.values())).size
    wall0 = time.perf_counter()
    server = proto.server(round_id=1, client_ids=frozenset(inputs), dim=d)
    t_agg, requests = _cpu(server.start)
    client_s: list[float] = []
    up = 0
    for c, x in inputs.items():
        t, reply = _cpu(
            lambda c=c, x=x: proto.client(round_id=1, client_id=c, value=x).handle(requests[c])
        )
        client_s.append(t)
        up = len(reply)
        t, _ = _cpu(lambda c=c, reply=reply: server.receive(c, reply))
        t_agg += t
    t_forward, outgoing = _cpu(server.advance)
    holder_s: dict[int, float] = {}
    request_bytes = answer_bytes = 0
    t_combine = 0.0
    while outgoing:
        for party, request in outgoing.items():
            i = pt.KEY_HOLDER_PARTY_BASE - party
            say(f"  key holder {i} ...")
            request_bytes = len(request)
            t, answer = _cpu(lambda h=holders[i], r=request: h.handle(r))
            holder_s[i] = t
            answer_bytes = len(answer)
            server.receive(party, answer)
        t, outgoing = _cpu(server.advance)
        t_combine += t
    wall = time.perf_counter() - wall0
    expected = np.zeros(d, dtype=np.uint64)
    for x in inputs.values():
        expected += x.astype(np.uint64)
    mask = np.uint64((1 << cfg.bits) - 1)
    correct = bool(np.array_equal(server.result.aggregate.astype(np.uint64), expected & mask))
    aggregator_s = t_agg + t_forward + t_combine
    n_ct = cfg.layout.ciphertexts_for(d)
    return {
        "ask_first": cfg.ask_first,
        "clients": len(inputs),
        "dim": d,
        "value_bits": cfg.effective_value_bits,
        "slot_bits": cfg.layout.slot_bits,
        "slots_per_ciphertext": cfg.layout.slots_per_ciphertext,
        "ciphertexts": n_ct,
        "correct": correct,
        "client_cpu_s_mean": float(np.mean(client_s)),
        "client_cpu_s_max": max(client_s),
        "aggregator_cpu_s": aggregator_s,
        "aggregator_inputs_cpu_s": t_agg,
        "aggregator_product_cpu_s": t_forward,
        "aggregator_verify_combine_decode_cpu_s": t_combine,
        "holder_cpu_s": holder_s,
        "holder_ms_per_ciphertext": 1e3 * float(np.mean(list(holder_s.values()))) / n_ct,
        "round_cpu_s": sum(client_s) + aggregator_s + sum(holder_s.values()),
        "round_wall_s_one_process": wall,
        "round_wall_s_parties_in_parallel": max(client_s) + aggregator_s + max(holder_s.values()),
        "bytes_up_per_client": up,
        "bytes_to_each_holder": request_bytes,
        "bytes_from_each_holder": answer_bytes,
        "float32_bytes": 4 * d,
    }


def speedups(
    naive: dict[str, Any], *, rnd_cpu: float, wall: float, n: int, d: int
) -> dict[str, float]:
    """Like against like: total CPU against total CPU, and wall with every party on its own
    machine against naive phe's wall the same way (clients encrypt in parallel, then the
    aggregator adds, then one key holder decrypts)."""
    naive_cpu = n * d * naive["encrypt_s_per_value"] + d * (
        (n - 1) * naive["add_s_per_value"] + naive["decrypt_s_per_value"]
    )
    naive_wall = d * (
        naive["encrypt_s_per_value"]
        + (n - 1) * naive["add_s_per_value"]
        + naive["decrypt_s_per_value"]
    )
    return {
        "naive_phe_round_wall_s_parallel_extrapolated": naive_wall,
        "speedup_cpu": naive_cpu / rnd_cpu,
        "speedup_wall_parallel": naive_wall / wall,
    }


def _party_rows(rnd: dict[str, Any]) -> list[str]:
    rows = [
        "| party | CPU s | what it does |",
        "|---|---|---|",
        f"| client (mean / max) | {rnd['client_cpu_s_mean']:.2f} / {rnd['client_cpu_s_max']:.2f} "
        "| pack, encrypt (fixed-base obfuscators), sign |",
        f"| aggregator: inputs | {rnd['aggregator_inputs_cpu_s']:.2f} | parse, range/unit checks "
        "and signature of each input |",
        f"| aggregator: product | {rnd['aggregator_product_cpu_s']:.2f} | multiply the inputs, "
        "set digest, decryption requests |",
        f"| aggregator: verify + combine | {rnd['aggregator_verify_combine_decode_cpu_s']:.2f} | "
        f"{len(rnd['holder_cpu_s'])} batched proofs, combination of three, slot decoding |",
    ]
    for i, sec in sorted(rnd["holder_cpu_s"].items(), key=lambda kv: int(kv[0])):
        rows.append(
            f"| key holder {i} | {sec:.2f} | verify {rnd['clients']} signatures, form the "
            f"product, {rnd['ciphertexts']} full-size exponentiations, one batched proof |"
        )
    return rows


def markdown(r: dict[str, Any]) -> str:
    env, k, naive = r["environment"], r["key"], r["naive_phe"]
    full, first = r["round_all"], r["round_t_first"]
    versions = env.get("versions", {})
    lines = [
        "# Threshold Paillier (paillier-sum-v2): 3-of-5 key holders",
        "",
        f"Measured {env.get('date', '?')} on {env.get('cores', '?')} cores "
        f"({env.get('cpu_model', '?')}), Python {env.get('python', '?')}, phe "
        f"{versions.get('phe')}, gmpy2 {versions.get('gmpy2')}, by "
        "`python -m benchmarks.paillier_threshold`"
        + (" --quick" if r["quick"] else "")
        + ". CPU seconds of one process (one core) unless marked wall; the machine was shared "
        "with other work, which slows every number.",
        "",
        f"Key: {k['bits']}-bit n from two safe primes, dealt {k['threshold']}-of-"
        f"{k['holders']}: {k['deal_cpu_s']:.1f} s CPU (prime search and dealing, once).",
        "",
        f"Both rounds: {full['clients']} clients x {full['dim']} floats, {r['ring_bits']}-bit "
        f"ring (clip 1.0, quantum 2^-{r['scale_bits']}), {full['value_bits']}-bit per-client "
        f"values, {full['slot_bits']}-bit slots, {full['slots_per_ciphertext']} per ciphertext: "
        f"{full['ciphertexts']} ciphertexts per input. Aggregates exact: **{full['correct']}**, "
        f"**{first['correct']}**.",
        "",
        "## All five key holders asked at once (`ask_first=None`, the default)",
        "",
        *_party_rows(full),
        "",
        "## Only t = 3 asked first (`ask_first=3`; the other two only if needed)",
        "",
        *_party_rows(first),
        "",
        f"A key holder spends {full['holder_ms_per_ciphertext']:.1f} ms per ciphertext (one "
        "c^(2 Delta s_i) mod n^2 with a ~4100-bit exponent, plus its share of the one proof). "
        f"Bytes: {full['bytes_up_per_client']} per client input "
        f"({full['bytes_up_per_client'] / full['float32_bytes']:.2f}x the float32 update), "
        f"{full['bytes_to_each_holder']} to each key holder asked (every signed input), "
        f"{full['bytes_from_each_holder']} back from each.",
        "",
        "## Against naive per-value phe (same run)",
        "",
        f"Naive phe, **measured on {naive['sample']} values and extrapolated linearly** to "
        f"{full['clients']} x {full['dim']} encryptions, {full['clients'] - 1} x {full['dim']} "
        f"additions and {full['dim']} decryptions: encrypt "
        f"{1e3 * naive['encrypt_s_per_value']:.2f} ms/value, add "
        f"{1e6 * naive['add_s_per_value']:.1f} us/value, decrypt "
        f"{1e3 * naive['decrypt_s_per_value']:.2f} ms/value -> "
        f"{r['naive_phe_round_cpu_s_extrapolated']:.0f} s "
        f"({r['naive_phe_round_cpu_s_extrapolated'] / 3600:.2f} h) of CPU, with a single key "
        "holder and no proofs; "
        f"{full['naive_phe_round_wall_s_parallel_extrapolated']:.0f} s wall with its clients "
        "encrypting in parallel.",
        "",
        "| round | CPU s, all parties | speedup (CPU) | wall s, parties in parallel | speedup "
        "(wall) | target |",
        "|---|---|---|---|---|---|",
    ]
    for name, rnd in (("all five asked", full), ("t = 3 asked first", first)):
        lines.append(
            f"| {name} | {rnd['round_cpu_s']:.1f} | **{rnd['speedup_cpu']:.0f}x** | "
            f"{rnd['round_wall_s_parties_in_parallel']:.1f} | {rnd['speedup_wall_parallel']:.0f}x "
            f"| >= {r['target_speedup']:.0f}x |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paillier_threshold")
    p.add_argument("--quick", action="store_true", help="d = 2000 (a smoke run)")
    p.add_argument("--dim", type=int, default=None, help="floats per update (default 100000)")
    p.add_argument("--sample", type=int, default=200, help="naive phe values timed")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    args = p.parse_args(argv)
    result = run(quick=args.quick, sample=args.sample, progress=True, dim=args.dim)
    stem = "paillier-threshold-quick" if args.quick else "paillier-threshold"
    os.makedirs(args.out, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    ok = result["round_all"]["correct"] and result["round_t_first"]["correct"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
