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
    holders = {s.index: pt.ThresholdPaillierKeyHolder(cfg, s, rng=rng.spawn()) for s in shares}
    proto = pt.ThresholdPaillierProtocol(cfg, identities=ids, rng=rng.spawn())
    data = np.random.default_rng(0)
    inputs = {c: pipeline.codec.encode(data.uniform(-1.0, 1.0, d)) for c in range(1, n + 1)}
    say(f"round: {n} clients x {d} values, {cfg.layout.ciphertexts_for(d)} ciphertexts each ...")
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
    request_bytes = 0
    answer_bytes = 0
    for i, holder in holders.items():
        say(f"  key holder {i} ...")
        request = outgoing[pt.key_holder_party(i)]
        request_bytes = len(request)
        t, answer = _cpu(lambda h=holder, r=request: h.handle(r))
        holder_s[i] = t
        answer_bytes = len(answer)
        server.receive(pt.key_holder_party(i), answer)
    t_combine, _ = _cpu(server.advance)
    wall = time.perf_counter() - wall0
    expected = np.zeros(d, dtype=np.uint64)
    for x in inputs.values():
        expected += x.astype(np.uint64)
    correct = bool(
        np.array_equal(
            server.result.aggregate.astype(np.uint64), expected & np.uint64((1 << RING_BITS) - 1)
        )
    )
    aggregator_s = t_agg + t_forward + t_combine
    round_cpu = sum(client_s) + aggregator_s + sum(holder_s.values())
    round_cpu_t = sum(client_s) + aggregator_s + sum(sorted(holder_s.values())[:THRESHOLD])
    parallel_wall = max(client_s) + aggregator_s + max(holder_s.values())

    say(f"naive phe on {sample} values (extrapolated) ...")
    phe_pub, phe_priv = phe.generate_paillier_keypair(n_length=KEY_BITS)
    naive = naive_phe(phe_pub, phe_priv, sample)
    naive_round = n * d * naive["encrypt_s_per_value"] + d * (
        (n - 1) * naive["add_s_per_value"] + naive["decrypt_s_per_value"]
    )
    n_ct = cfg.layout.ciphertexts_for(d)
    return {
        "environment": environment(),
        "quick": quick,
        "ring_bits": RING_BITS,
        "scale_bits": pipeline.codec.scale_bits,
        "key": {"bits": KEY_BITS, "holders": HOLDERS, "threshold": THRESHOLD, "deal_cpu_s": t_key},
        "round": {
            "clients": n,
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
            "round_cpu_s_all_holders": round_cpu,
            "round_cpu_s_t_holders": round_cpu_t,
            "round_wall_s_one_process": wall,
            "round_wall_s_parties_in_parallel": parallel_wall,
            "bytes_up_per_client": up,
            "bytes_to_each_holder": request_bytes,
            "bytes_from_each_holder": answer_bytes,
            "float32_bytes": 4 * d,
        },
        "naive_phe": naive,
        "naive_phe_round_cpu_s_extrapolated": naive_round,
        "target_speedup": TARGET_SPEEDUP,
    } | speedups(naive, rnd_cpu=round_cpu, rnd_cpu_t=round_cpu_t, wall=parallel_wall, n=n, d=d)


def speedups(
    naive: dict[str, Any], *, rnd_cpu: float, rnd_cpu_t: float, wall: float, n: int, d: int
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
        "speedup_cpu_all_holders": naive_cpu / rnd_cpu,
        "speedup_cpu_t_holders": naive_cpu / rnd_cpu_t,
        "speedup_wall_parallel": naive_wall / wall,
    }


def markdown(r: dict[str, Any]) -> str:
    env, k, rnd, naive = r["environment"], r["key"], r["round"], r["naive_phe"]
    holders = rnd["holder_cpu_s"]
    lines = [
        "# Threshold Paillier (paillier-sum-v2): 3-of-5 key holders",
        "",
        f"Measured {env.get('date', '?')} on {env.get('cores', '?')} cores "
        f"({env.get('cpu_model', '?')}), Python {env.get('python', '?')}, phe "
        f"{env.get('versions', {}).get('phe')}, gmpy2 {env.get('versions', {}).get('gmpy2')}, by "
        "`python -m benchmarks.paillier_threshold`"
        + (" --quick" if r["quick"] else "")
        + ". CPU seconds of one process (one core) unless marked wall; the machine was shared "
        "with other work, which slows every number.",
        "",
        f"Key: {k['bits']}-bit n from two safe primes, dealt {k['threshold']}-of-"
        f"{k['holders']}: {k['deal_cpu_s']:.1f} s CPU (prime search and dealing, once).",
        "",
        f"## Round: {rnd['clients']} clients x {rnd['dim']} floats",
        "",
        f"{r['ring_bits']}-bit ring (clip 1.0, quantum 2^-{r['scale_bits']}), "
        f"{rnd['value_bits']}-bit per-client values, {rnd['slot_bits']}-bit slots, "
        f"{rnd['slots_per_ciphertext']} per ciphertext: {rnd['ciphertexts']} ciphertexts per "
        f"input. All five key holders answered; the aggregator verified five proofs and "
        f"combined three. Aggregate exact: **{rnd['correct']}**.",
        "",
        "| party | CPU s | what it does |",
        "|---|---|---|",
        f"| client (mean / max) | {rnd['client_cpu_s_mean']:.2f} / {rnd['client_cpu_s_max']:.2f} "
        "| pack, encrypt (fixed-base obfuscators), sign |",
        f"| aggregator: inputs | {rnd['aggregator_inputs_cpu_s']:.2f} | parse, range/unit checks "
        "and signature of each input |",
        f"| aggregator: product | {rnd['aggregator_product_cpu_s']:.2f} | multiply the inputs, "
        "set digest, decryption requests |",
        f"| aggregator: verify + combine | {rnd['aggregator_verify_combine_decode_cpu_s']:.2f} | "
        "five batched proofs, combination of three, slot decoding |",
    ]
    for i, s in sorted(holders.items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| key holder {i} | {s:.2f} | verify {rnd['clients']} signatures, form the product, "
            f"{rnd['ciphertexts']} full-size exponentiations, one batched proof |"
        )
    lines += [
        "",
        f"A key holder spends {rnd['holder_ms_per_ciphertext']:.1f} ms per ciphertext (one "
        "c^(2 Delta s_i) mod n^2 with a ~4100-bit exponent, plus its share of the one proof). "
        f"Round CPU, all parties, five holders: {rnd['round_cpu_s_all_holders']:.1f} s "
        f"(with only t = 3 holders answering: {rnd['round_cpu_s_t_holders']:.1f} s); "
        f"wall in one process {rnd['round_wall_s_one_process']:.1f} s; wall with the parties on "
        f"their own machines (slowest client + aggregator + slowest holder) "
        f"{rnd['round_wall_s_parties_in_parallel']:.1f} s.",
        "",
        f"Bytes: {rnd['bytes_up_per_client']} per client input "
        f"({rnd['bytes_up_per_client'] / rnd['float32_bytes']:.2f}x the float32 update), "
        f"{rnd['bytes_to_each_holder']} to each key holder (every signed input), "
        f"{rnd['bytes_from_each_holder']} back from each.",
        "",
        "## Against naive per-value phe (same run)",
        "",
        f"Naive phe, **measured on {naive['sample']} values and extrapolated linearly** to "
        f"{rnd['clients']} x {rnd['dim']} encryptions, {rnd['clients'] - 1} x {rnd['dim']} "
        f"additions and {rnd['dim']} decryptions: encrypt "
        f"{1e3 * naive['encrypt_s_per_value']:.2f} ms/value, add "
        f"{1e6 * naive['add_s_per_value']:.1f} us/value, decrypt "
        f"{1e3 * naive['decrypt_s_per_value']:.2f} ms/value -> "
        f"{r['naive_phe_round_cpu_s_extrapolated']:.0f} s "
        f"({r['naive_phe_round_cpu_s_extrapolated'] / 3600:.2f} h), with a single key holder "
        "and no proofs.",
        "",
        "| comparison | speedup | target |",
        "|---|---|---|",
        f"| total CPU, all five holders answering | **{r['speedup_cpu_all_holders']:.0f}x** | "
        f">= {r['target_speedup']:.0f}x |",
        f"| total CPU, only t = 3 holders answering | {r['speedup_cpu_t_holders']:.0f}x | |",
        f"| wall, every party on its own machine (naive phe: "
        f"{r['naive_phe_round_wall_s_parallel_extrapolated']:.0f} s, clients in parallel) | "
        f"{r['speedup_wall_parallel']:.0f}x | |",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paillier_threshold")
    p.add_argument("--quick", action="store_true", help="d = 2000 (a smoke run)")
    p.add_argument("--sample", type=int, default=200, help="naive phe values timed")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    args = p.parse_args(argv)
    result = run(quick=args.quick, sample=args.sample, progress=True)
    stem = "paillier-threshold-quick" if args.quick else "paillier-threshold"
    os.makedirs(args.out, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["round"]["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
