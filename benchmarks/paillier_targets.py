"""Packed Paillier against the targets of the Paillier issue, measured in one run.

``python -m benchmarks.paillier_targets`` (optional ``--quick``) generates one 2048-bit key
and measures, in this process: encryption throughput (fresh ``Csprng`` and a pre-filled
``RandomnessPool``), the aggregator's homomorphic sum, the key holder's decryption, bytes
per client against the float32 update, a whole 10-client x 100k-float round through the
real protocol sessions against naive ``phe`` (per-value ``encrypt(float)``, ``+``,
``decrypt``, timed on a sample and extrapolated), and ``secfl simulate --protocol paillier
--clients 100 --dim 100000`` through :func:`secfl.runtime.scenario.run_scenario` (falling
back to d = 10^4 when the estimate exceeds ``--budget`` seconds). It writes
``docs/benchmarks/paillier.json`` and ``paillier.md`` (``paillier-quick.*`` with
``--quick``, which shrinks every size for a smoke test).

Times are process CPU seconds of one process (one core) unless labelled wall. The packing
layout of the micro-benchmarks is the issue's: n = 100 clients, 16-bit per-client values;
the protocol rounds use what ``run_scenario`` plans (32-bit ring, clip bound 1.0, the
codec's per-client range as value_bits).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import gmpy2
import numpy as np
import phe

from benchmarks.runner import OUT_DIR, environment
from secfl.hazmat import paillier as hp
from secfl.hazmat.rng import Csprng
from secfl.protocols.paillier import MSG_INPUT
from secfl.runtime.scenario import Scenario, report_json, run_scenario

KEY_BITS = 2048
LAYOUT_CLIENTS = 100  # the bytes target: n = 100 clients, 16-bit precision
LAYOUT_VALUE_BITS = 16
FRAME_OVERHEAD = 8 + 8  # wire header + round_id of an INPUT (0x31) frame

TARGETS = {
    "encrypt_fresh": ("encryption, fresh Csprng (values/s per core)", ">=", 100_000.0),
    "encrypt_pool": ("encryption, pre-filled RandomnessPool (values/s per core)", ">=", 100_000.0),
    "client_update": ("client time for a 100k-float update (s, n=100 round)", "<=", 3.0),
    "bytes_ratio": ("ciphertext bytes per client / float32 bytes (n=100, 16-bit)", "<=", 3.0),
    "sum": ("aggregator homomorphic sum (values/s)", ">=", 10_000_000.0),
    "decrypt": ("decryption (values/s per core)", ">=", 25_000.0),
    "round_speedup": ("whole round 10 x 100k vs naive phe (x faster, phe extrapolated)", ">=", 700),
    "simulate": ("simulate n=100 d=100k: correct, wall seconds", "<=", 300.0),
}


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def _median_cpu(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        t, out = _cpu(fn)
        times.append(t)
    return statistics.median(times), times, out


def _values(layout: hp.PackingLayout, count: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    return g.integers(layout.min_value, layout.max_value + 1, count, dtype=np.int64)


def micro(
    public: phe.PaillierPublicKey, private: phe.PaillierPrivateKey, d: int, repeats: int
) -> dict[str, Any]:
    """Encryption, pool, homomorphic sum, decryption and bytes at the issue's layout."""
    layout = hp.PackingLayout.plan(
        modulus_bits=int(public.n).bit_length(),
        value_bits=LAYOUT_VALUE_BITS,
        n_clients=LAYOUT_CLIENTS,
    )
    x = _values(layout, d, 1)
    n_ct = layout.ciphertexts_for(d)
    out: dict[str, Any] = {
        "layout": {
            "modulus_bits": layout.modulus_bits,
            "value_bits": layout.value_bits,
            "n_clients": layout.n_clients,
            "slot_bits": layout.slot_bits,
            "slots_per_ciphertext": layout.slots_per_ciphertext,
        },
        "dim": d,
        "ciphertexts": n_ct,
    }
    # 1. Encryption with a fresh Csprng: obfuscators (incl. the fixed-base table) made now.
    t, times, ct = _median_cpu(
        lambda: hp.encrypt_vector(public, x, layout, randomness=Csprng()), repeats
    )
    out["encrypt_fresh"] = {"cpu_s": t, "cpu_s_runs": times, "values_per_s": d / t}
    # 2. Pool: precompute offline, then the online part of encryption.
    fills, onlines = [], []
    for _ in range(repeats):
        pool = hp.RandomnessPool(public, rng=Csprng())
        fills.append(_cpu(partial(pool.fill, n_ct))[0])
        onlines.append(_cpu(partial(hp.encrypt_vector, public, x, layout, randomness=pool))[0])
    cores = os.cpu_count() or 1
    wide = hp.RandomnessPool(public, rng=Csprng(), workers=cores)
    w0 = time.perf_counter()
    wide.fill(n_ct)
    fill_wall = time.perf_counter() - w0
    out["encrypt_pool"] = {
        "cpu_s": statistics.median(onlines),
        "cpu_s_runs": onlines,
        "values_per_s": d / statistics.median(onlines),
        "fill_cpu_s": statistics.median(fills),
        "fill_obfuscators_per_s": n_ct / statistics.median(fills),
        "fill_workers": cores,
        "fill_wall_s_all_cores": fill_wall,
    }
    # 3. Aggregator: multiply LAYOUT_CLIENTS vectors (10 distinct encryptions, repeated),
    #    and separately the per-client parse + validation of received bytes.
    plain = [x] + [_values(layout, d, 10 + i) for i in range(9)]
    distinct = [ct] + [hp.encrypt_vector(public, v, layout, randomness=Csprng()) for v in plain[1:]]
    summands = [distinct[i % len(distinct)] for i in range(LAYOUT_CLIENTS)]
    t_sum, sum_runs, total = _median_cpu(lambda: hp.sum_vectors(summands), repeats)
    added = (len(summands) - 1) * d
    blob = hp.ciphertexts_to_bytes(ct)
    t_parse, _, _ = _median_cpu(
        lambda: hp.ciphertexts_from_bytes(blob, public, layout, count=d, n_summed=1), repeats
    )
    out["sum"] = {
        "vectors": len(summands),
        "cpu_s": t_sum,
        "cpu_s_runs": sum_runs,
        "values_per_s": added / t_sum,
        "parse_validate_cpu_s_per_client": t_parse,
        "with_parse_values_per_s": added / (t_sum + (len(summands) - 1) * t_parse),
    }
    # 4. Decryption of the 100-client sum, with the gmpy2 floor measured alongside.
    t_dec, _, got = _median_cpu(lambda: hp.decrypt_vector(private, total), 1)
    expected = np.sum([plain[i % len(plain)] for i in range(LAYOUT_CLIENTS)], axis=0)
    crt = hp._Crt(private)
    sample = list(total.ciphertexts[: 20 if d < 100_000 else 200])
    t_pow, _, _ = _median_cpu(
        lambda: [
            (gmpy2.powmod(c, crt.pm1, crt.psq), gmpy2.powmod(c, crt.qm1, crt.qsq)) for c in sample
        ],
        repeats,
    )
    t_phe, _, _ = _median_cpu(lambda: [private.raw_decrypt(int(c)) for c in sample], repeats)
    per_ct_floor = t_pow / len(sample)
    out["decrypt"] = {
        "cpu_s": t_dec,
        "values_per_s": d / t_dec,
        "ms_per_ciphertext": 1e3 * t_dec / n_ct,
        "floor_ms_per_ciphertext_two_powmods": 1e3 * per_ct_floor,
        "floor_values_per_s": layout.slots_per_ciphertext / per_ct_floor,
        "phe_raw_decrypt_ms_per_ciphertext": 1e3 * t_phe / len(sample),
        "floor_sample_ciphertexts": len(sample),
        "correct": bool(np.array_equal(got, expected)),
    }
    # 5. Bytes: one INPUT frame against the float32 update.
    frame = FRAME_OVERHEAD + len(blob)
    out["bytes"] = {
        "input_frame_bytes": frame,
        "float32_bytes": 4 * d,
        "ratio": frame / (4 * d),
        "ciphertext_bytes": hp.ciphertext_bytes(public),
        "msg_type": MSG_INPUT,
    }
    return out


def naive_phe(
    public: phe.PaillierPublicKey, private: phe.PaillierPrivateKey, sample: int
) -> dict[str, Any]:
    """Per-value phe on ``sample`` floats: encrypt, add two, decrypt; bytes as binary/JSON."""
    g = np.random.default_rng(5)
    xs = [float(v) for v in g.uniform(-1.0, 1.0, sample)]
    ys = [float(v) for v in g.uniform(-1.0, 1.0, sample)]
    t_enc, enc_x = _cpu(lambda: [public.encrypt(v) for v in xs])
    enc_y = [public.encrypt(v) for v in ys]
    t_add, sums = _cpu(lambda: [a + b for a, b in zip(enc_x, enc_y, strict=True)])
    t_dec, dec = _cpu(lambda: [private.decrypt(s) for s in sums])
    err = max(abs(v - (a + b)) for v, a, b in zip(dec, xs, ys, strict=True))
    # phe's documented serialisation: the public key's n, then [str(ciphertext), exponent].
    as_json = json.dumps(
        {
            "public_key": {"g": public.g, "n": public.n},
            "values": [[str(c.ciphertext()), c.exponent] for c in enc_x],
        }
    )
    binary = hp.ciphertext_bytes(public)
    return {
        "sample": sample,
        "encrypt_s_per_value": t_enc / sample,
        "add_s_per_value": t_add / sample,
        "decrypt_s_per_value": t_dec / sample,
        "max_abs_error": err,
        "bytes_per_value_binary": binary,
        "bytes_per_value_json": len(as_json) / sample,
        "expansion_binary": binary / 4,
        "expansion_json": len(as_json) / sample / 4,
    }


def scenario(n: int, d: int) -> dict[str, Any]:
    w0 = time.perf_counter()
    # One process, as paillier.md's wall figures describe (not the parallel default).
    report, codec = run_scenario(
        Scenario(protocol="paillier", clients=n, dim=d, seed=0), engine="serial"
    )
    wall = time.perf_counter() - w0
    row = report_json(report)
    row["round_cpu_s"] = report.server_seconds + sum(report.client_seconds)
    row["run_scenario_wall_s"] = wall
    row["expansion"] = row["bytes_up_per_client"] / row["plaintext_bytes_per_client"]
    row["codec"] = {"bits": codec.bits, "scale_bits": codec.scale_bits}
    return row


def _met(key: str, value: float | None) -> bool:
    _, op, limit = TARGETS[key]
    if value is None:
        return False
    return value >= limit if op == ">=" else value <= limit


def run(*, quick: bool, budget: float, progress: bool) -> dict[str, Any]:
    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    load_start = os.getloadavg()[0]
    d = 10_000 if quick else 100_000
    say(f"generating a {KEY_BITS}-bit key ...")
    t_key, (public, private) = _cpu(lambda: hp.generate_keypair(bits=KEY_BITS))
    say(f"micro-benchmarks at d={d} ...")
    m = micro(public, private, d, 1 if quick else 5)
    say("naive phe sample ...")
    naive = naive_phe(public, private, 20 if quick else 200)

    round_n, round_d = 10, d
    say(f"whole round n={round_n} d={round_d} ...")
    rnd = scenario(round_n, round_d)
    naive_round = round_n * round_d * naive["encrypt_s_per_value"] + round_d * (
        (round_n - 1) * naive["add_s_per_value"] + naive["decrypt_s_per_value"]
    )
    rnd["naive_phe_round_cpu_s_extrapolated"] = naive_round
    rnd["speedup_vs_naive_phe"] = naive_round / rnd["round_cpu_s"]

    sim_n, sim_d = (20, 10_000) if quick else (100, 100_000)
    per_value = rnd["round_cpu_s"] / (round_n * round_d)
    estimate = 1.25 * per_value * sim_n * sim_d  # wider slots at n = 100 than at n = 10
    note = None
    if estimate > budget:
        note = f"estimated {estimate:.0f} s > budget {budget:.0f} s for d={sim_d}: ran d=10000"
        sim_d = 10_000
    say(f"simulate n={sim_n} d={sim_d} (estimate {estimate:.0f} s) ...")
    sim = scenario(sim_n, sim_d)
    sim["estimate_s"] = estimate
    sim["note"] = note

    values = {
        "encrypt_fresh": m["encrypt_fresh"]["values_per_s"],
        "encrypt_pool": m["encrypt_pool"]["values_per_s"],
        "client_update": sim["client_seconds"] * (100_000 / sim["dim"]),
        "bytes_ratio": m["bytes"]["ratio"],
        "sum": m["sum"]["values_per_s"],
        "decrypt": m["decrypt"]["values_per_s"],
        "round_speedup": rnd["speedup_vs_naive_phe"],
        "simulate": sim["run_scenario_wall_s"] if sim["correct"] else None,
    }
    targets = {
        key: {
            "name": TARGETS[key][0],
            "op": TARGETS[key][1],
            "limit": TARGETS[key][2],
            "value": values[key],
            "met": _met(key, values[key]),
        }
        for key in TARGETS
    }
    if sim["dim"] != 100_000 or sim["clients"] != 100:
        for key in ("client_update", "simulate"):
            targets[key]["note"] = f"measured at n={sim['clients']}, d={sim['dim']}"
    if round_d != 100_000:
        targets["round_speedup"]["note"] = f"measured at n={round_n}, d={round_d}"
    return {
        "environment": environment(),
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "quick": quick,
        "key_bits": KEY_BITS,
        "keygen_cpu_s": t_key,
        "micro": m,
        "naive_phe": naive,
        "round_10": rnd,
        "simulate": sim,
        "targets": targets,
    }


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a (incorrect)"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def _spread(runs: list[float]) -> str:
    return f"{min(runs):.3f}-{max(runs):.3f}"


def markdown(r: dict[str, Any]) -> str:
    env, m, naive, rnd, sim = (
        r["environment"],
        r["micro"],
        r["naive_phe"],
        r["round_10"],
        r["simulate"],
    )
    lay = m["layout"]
    lines = [
        "# Paillier targets"
        + (" (quick run: sizes shrunk, not the targets)" if r["quick"] else ""),
        "",
        f"Measured {env['date']} on {env['cores']} cores ({env['processor']}), Python "
        f"{env['python']}, phe {env['versions'].get('phe')}, gmpy2 {env['versions'].get('gmpy2')},"
        f" by `python -m benchmarks.paillier_targets`{' --quick' if r['quick'] else ''}. "
        f"{r['key_bits']}-bit key; CPU seconds of one process (one core) unless marked wall. "
        f"1-minute load average {r['load_average_1min']['start']:.2f} at the start, "
        f"{r['load_average_1min']['end']:.2f} at the end (other work on the machine slows "
        f"every number).",
        "",
        "| target | limit | measured | status |",
        "|---|---|---|---|",
    ]
    for t in r["targets"].values():
        note = f" ({t['note']})" if t.get("note") else ""
        lines.append(
            f"| {t['name']}{note} | {t['op']} {_fmt(t['limit'])} | {_fmt(t['value'])} "
            f"| {'met' if t['met'] else 'MISSED'} |"
        )
    ef, ep, s, dec, b = (
        m["encrypt_fresh"],
        m["encrypt_pool"],
        m["sum"],
        m["decrypt"],
        m["bytes"],
    )
    lines += [
        "",
        f"## Building blocks (d = {m['dim']}, layout n = {lay['n_clients']}, value_bits = "
        f"{lay['value_bits']}: {lay['slot_bits']}-bit slots, {lay['slots_per_ciphertext']} "
        f"per ciphertext, {m['ciphertexts']} ciphertexts)",
        "",
        "| step | CPU s | values/s | notes |",
        "|---|---|---|---|",
        f"| encrypt, fresh Csprng | {ef['cpu_s']:.3f} | {_fmt(ef['values_per_s'])} "
        f"| median of {len(ef['cpu_s_runs'])} ({_spread(ef['cpu_s_runs'])} s); includes the "
        f"fixed-base table |",
        f"| pool fill (offline) | {ep['fill_cpu_s']:.3f} | - "
        f"| {_fmt(ep['fill_obfuscators_per_s'])} obfuscators/s; "
        f"{ep['fill_wall_s_all_cores']:.3f} s wall with {ep['fill_workers']} workers |",
        f"| encrypt from pool (online) | {ep['cpu_s']:.3f} | {_fmt(ep['values_per_s'])} "
        f"| pack + one multiplication per ciphertext |",
        f"| homomorphic sum of {s['vectors']} vectors | {s['cpu_s']:.3f} "
        f"| {_fmt(s['values_per_s'])} | median of {len(s['cpu_s_runs'])} "
        f"({_spread(s['cpu_s_runs'])} s); values added per second; with per-client parse + "
        f"validation ({s['parse_validate_cpu_s_per_client']:.3f} s/client): "
        f"{_fmt(s['with_parse_values_per_s'])} |",
        f"| decrypt the sum (CRT) | {dec['cpu_s']:.3f} | {_fmt(dec['values_per_s'])} "
        f"| {dec['ms_per_ciphertext']:.2f} ms/ciphertext; gmpy2 floor (two half-size powmods) "
        f"{dec['floor_ms_per_ciphertext_two_powmods']:.2f} ms = "
        f"{_fmt(dec['floor_values_per_s'])} values/s; phe raw_decrypt "
        f"{dec['phe_raw_decrypt_ms_per_ciphertext']:.2f} ms |",
        "",
        f"Bytes per client: INPUT frame {b['input_frame_bytes']} B for {m['dim']} values = "
        f"{b['ratio']:.2f}x the float32 update ({b['float32_bytes']} B). Naive phe: "
        f"{naive['expansion_binary']:.0f}x as binary ciphertexts, "
        f"{naive['expansion_json']:.0f}x as phe JSON.",
        "",
        f"## Whole round: {rnd['clients']} clients x {rnd['dim']} floats vs naive phe",
        "",
        f"secfl (real sessions via `run_scenario`, {rnd['codec']['bits']}-bit ring): "
        f"correct = {rnd['correct']}, client {rnd['client_seconds']:.2f} s each, server + key "
        f"holder {rnd['server_seconds']:.2f} s, round CPU {rnd['round_cpu_s']:.1f} s "
        f"(wall {rnd['wall_seconds']:.1f} s), {rnd['expansion']:.2f}x upload.",
        "",
        f"Naive phe, **extrapolated** from {naive['sample']} values: encrypt "
        f"{1e3 * naive['encrypt_s_per_value']:.2f} ms/value, add "
        f"{1e6 * naive['add_s_per_value']:.1f} us/value, decrypt "
        f"{1e3 * naive['decrypt_s_per_value']:.2f} ms/value -> "
        f"{rnd['naive_phe_round_cpu_s_extrapolated']:.0f} s "
        f"({rnd['naive_phe_round_cpu_s_extrapolated'] / 3600:.2f} h) for the round: secfl is "
        f"**{rnd['speedup_vs_naive_phe']:.0f}x** faster.",
        "",
        f"## secfl simulate --protocol paillier --clients {sim['clients']} --dim {sim['dim']}",
        "",
        f"correct = {sim['correct']}, run_scenario wall {sim['run_scenario_wall_s']:.1f} s "
        f"(round wall {sim['wall_seconds']:.1f} s), client {sim['client_seconds']:.2f} s mean "
        f"/ {sim['client_seconds_p95']:.2f} s p95, server + key holder "
        f"{sim['server_seconds']:.2f} s, upload {sim['bytes_up_per_client']:.0f} B/client "
        f"({sim['expansion']:.2f}x float32)." + (f" Note: {sim['note']}." if sim["note"] else ""),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.paillier_targets", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="shrunk sizes (smoke test, ~1 min)")
    ap.add_argument("--budget", type=float, default=300.0, help="max est. seconds, simulate")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    results = run(quick=args.quick, budget=args.budget, progress=not args.no_progress)
    name = "paillier-quick" if args.quick else "paillier"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(
        json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n"
    )
    table = markdown(results)
    (args.out / f"{name}.md").write_text(table)
    print(table)
    ok = (
        results["round_10"]["correct"]
        and results["simulate"]["correct"]
        and results["micro"]["decrypt"]["correct"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
