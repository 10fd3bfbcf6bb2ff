"""Fixed-seed checks of the randomness behind the protections: fresh, independent, enough.

* :func:`check_fresh_randomness`: two consecutive rounds of one protocol object (the same
  root generator, as in a deployment) and, for SecAgg, every secret a client draws must be
  new: advertised public keys, AEAD nonces of the share envelopes, self-mask seeds b_u
  (rebuilt from the revealed shares), the random coefficients of the Shamir polynomials
  (equal share differences at two holders mean equal polynomials), masked all-zero inputs;
  for Paillier, every ciphertext of an all-zero input. Key generation and an unseeded
  generator are checked to depend on their randomness at all.
* :func:`check_dp_noise`: distributed DP through the real :class:`~secfl.pipeline.Pipeline`
  (both mechanisms): each client's noise share on an all-zero update has at least the
  variance the accountant's event assumes (one-sided z-test of the sample variance), and
  the shares of different clients are uncorrelated; the central Gaussian mechanism and the
  adaptive clipper's count noise have the variance they promise; stochastic rounding draws
  fresh coins per client.

Every test fails at ``P_VALUE`` = 10^-6 (one-sided or two-sided as stated), with fixed
seeds, so a run is deterministic; missing noise, a quarter of the variance, or one stream
shared by two clients fail by a wide margin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from secfl import wire
from secfl.audit import _rounds as rounds
from secfl.audit.stats import P_VALUE, _seeds
from secfl.audit.transcript import ShareKind, Transcript, TranscriptRecorder
from secfl.dp.accounting import Neighboring
from secfl.dp.clipping import AdaptiveClipConfig, AdaptiveClipper, clip_per_layer
from secfl.dp.mechanisms import GaussianMechanism, Placement, required_bits_with_noise
from secfl.errors import EncodingOverflow, InvalidArgument
from secfl.hazmat import aead, shamir
from secfl.hazmat.kex import KexPrivateKey
from secfl.hazmat.prg import uint_dtype
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.paillier_keys import PaillierPrivateKey, PaillierPublicKey
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, PipelineConfig, build_protocol
from secfl.protocols import paillier as pl
from secfl.protocols import secagg as sa
from secfl.protocols import secagg_messages as sm
from secfl.protocols.base import AggregationProtocol, ProtocolName
from secfl.runtime.simulator import simulate_round

__all__ = ["check_dp_noise", "check_fresh_randomness"]

_Z = 4.753424308822899  # upper 1e-6 quantile of the standard normal
_Z2 = 4.891638475698777  # two-sided: upper 5e-7 quantile


def _repeats(what: str, values: Iterable[tuple[str, bytes]]) -> list[str]:
    seen: dict[bytes, str] = {}
    out = []
    for name, value in values:
        if value in seen:
            out.append(f"{what}: {name} repeats {seen[value]}")
        else:
            seen[value] = name
    return out


def _points(tr: Transcript, round_id: int) -> dict[int, int]:
    """Each member's Shamir evaluation point, as the KEYS requests gave them (secagg-v2)."""
    out: dict[int, int] = {}
    for e in tr.answered(sa.MSG_KEYS):
        keys = sm.Keys.from_bytes(
            e.request, round_id=round_id, max_clients=1 << 16, signed=tr.active
        )
        out.update({entry.client: entry.x for entry in keys.entries})
    return out


def _secagg_secrets(
    tr: Transcript, t: int, round_id: int, label: str
) -> dict[str, list[tuple[str, bytes]]]:
    """Everything fresh a SecAgg round shows, by kind, as ``(where, bytes)``."""
    out: dict[str, list[tuple[str, bytes]]] = {
        "public key": [],
        "AEAD nonce": [],
        "b_u": [],
        "Shamir coefficients": [],
        "masked zero input": [],
    }
    for c, frame in tr.emitted(sa.MSG_ADVERTISE):
        adv = sm.Advertise.from_bytes(frame, round_id=round_id, signed=False)
        out["public key"] += [
            (f"{label} c_pk of {c}", adv.c_pk),
            (f"{label} s_pk of {c}", adv.s_pk),
        ]
    for c, frame in tr.emitted(sa.MSG_SHARE_KEYS):
        sent = sm.ShareKeys.from_bytes(frame, round_id=round_id, max_entries=1 << 16)
        for to, env in sent.envelopes:
            out["AEAD nonce"].append((f"{label} envelope {c}->{to}", env[: aead.NONCE_BYTES]))
    for c, ys in tr.masked_inputs().items():
        out["masked zero input"] += [(f"{label} client {c}", y.tobytes()) for y in ys]
    point = _points(tr, round_id)
    by_owner: dict[int, dict[int, np.ndarray]] = {}
    for s in tr.revealed_shares():
        if s.kind is ShareKind.SELF_MASK_SEED:
            by_owner.setdefault(s.owner, {})[point[s.holder]] = shamir.shares_from_bytes(s.share, 1)
    for u, shares in sorted(by_owner.items()):
        xs = sorted(shares)
        if len(xs) >= t:
            rows = np.stack([shares[x] for x in xs[:t]])
            b_u = shamir.reconstruct(rows, np.array(xs[:t], dtype=np.int64), threshold=t)[0]
            out["b_u"].append((f"{label} b_{u}", np.asarray(b_u).tobytes()))
        if len(xs) >= 2 and t >= 2:
            # share(x1) - share(x2) cancels the secret: equal for two owners iff their
            # polynomials share their random coefficients (at these points)
            diff = (shares[xs[0]].astype(np.int64) - shares[xs[1]].astype(np.int64)) % shamir.PRIME
            out["Shamir coefficients"].append(
                (
                    f"{label} owner {u} at x = {xs[0]}, {xs[1]}",
                    bytes([xs[0], xs[1]]) + diff.tobytes(),
                )
            )
    return out


def _generators_used() -> list[str]:
    out = []
    a, b = Csprng(seed=bytes(32)), Csprng(seed=b"\x01" * 32)
    if (
        KexPrivateKey.generate(rng=a).private_bytes()
        == KexPrivateKey.generate(rng=b).private_bytes()
    ):
        out.append("X25519 keys from different generators are equal")
    if SigningKey.generate(rng=a).private_bytes() == SigningKey.generate(rng=b).private_bytes():
        out.append("Ed25519 keys from different generators are equal")
    if Csprng().bytes(32) == Csprng().bytes(32):
        out.append("two unseeded generators produced the same bytes (is the OS seed used?)")
    return out


def _builds_use_their_generator() -> list[str]:
    """``build_protocol`` (how deployments build a protocol from a Pipeline) hands each
    protocol the generator it is given: two builds with different generators send different
    first messages (one deployment's keys or ciphertexts are never another's), and a
    Paillier key pair of another size than the config's is refused."""
    out = []
    _, phe_key = rounds.audit_paillier_keys()
    private = PaillierPrivateKey(PaillierPublicKey(phe_key.public_key.n), phe_key.p, phe_key.q)
    zeros = np.zeros(4, dtype=np.uint16)
    for name in (ProtocolName.PAILLIER, ProtocolName.SECAGG, ProtocolName.SECAGG_PLUS):
        first = []
        for k in (1, 2):
            config = PipelineConfig(
                protocol=name, clip_bound=1.0, bits=16, paillier_bits=private.public_key.bits
            )
            pipe = Pipeline(config, n_clients=8, dim=4, rng=Csprng(seed=bytes([k]) * 32))
            keys = private if name == ProtocolName.PAILLIER else None
            proto = build_protocol(pipe, rng=Csprng(seed=bytes([16 + k]) * 32), paillier=keys)
            server = proto.server(round_id=1, client_ids=frozenset(range(1, 9)), dim=4)
            request = server.start()[1]
            first.append(proto.client(round_id=1, client_id=1, value=zeros).handle(request))
        if first[0] == first[1]:
            out.append(f"{name}: two builds with different generators sent the same message")
    config = PipelineConfig(protocol=ProtocolName.PAILLIER, clip_bound=1.0, bits=16)
    if config.paillier_bits != private.public_key.bits:
        pipe = Pipeline(config, n_clients=8, dim=4, rng=Csprng(seed=bytes(32)))
        try:
            build_protocol(pipe, rng=Csprng(seed=bytes(32)), paillier=private)
            out.append("build_protocol took a Paillier key pair of another size than the config's")
        except InvalidArgument:
            pass
    return out


def _paillier_extremes() -> list[str]:
    """Every client at the least (then the greatest) value of the range, over whole
    ciphertexts (no padding slot): the sum decodes exactly. All at the least value makes
    the packed plaintext 0, which is a valid sum, not a malformed one."""
    out = []
    spec = rounds.PaillierSpec(n=4, bits=16, value_bits=12, min_clients=2, dim=1, seed=b"")
    config = spec.config
    dim = config.layout.slots_per_ciphertext
    proto = pl.PaillierProtocol(
        config, key_holder=rounds.paillier_holder(config), rng=Csprng(seed=bytes(32))
    )
    for rid, value in enumerate((config.layout.min_value, config.layout.max_value), 1):
        ring = np.full(dim, value % (1 << spec.bits), dtype=np.uint16)
        report = simulate_round(proto, dict.fromkeys(range(1, 5), ring), round_id=rid)
        if not report.correct:
            out.append(f"Paillier: four clients at {value} did not decode exactly: {report}")
    return out


def check_fresh_randomness(protocol: str, *, trials: int = 1, seed: int = 0) -> str:
    """Two rounds of one protocol object: nothing random repeats (module doc)."""
    failures = _generators_used() + _builds_use_their_generator()
    if protocol == ProtocolName.PAILLIER:
        failures += _paillier_extremes()
    checked = 0
    for i, s in enumerate(_seeds(f"fresh/{protocol}", seed, trials)):
        recorded: list[Transcript] = []
        proto: AggregationProtocol
        if protocol == ProtocolName.PAILLIER:
            spec = rounds.PaillierSpec(n=4, bits=16, value_bits=12, min_clients=2, dim=6, seed=s)
            pconfig = spec.config
            n, t = pconfig.n_clients, 0
            proto = pl.PaillierProtocol(
                pconfig,
                key_holder=rounds.paillier_holder(pconfig),
                rng=rounds.derive(s, "p"),
            )
        else:
            if protocol == ProtocolName.SECAGG_PLUS:
                # through the recipe layer, as deployed: Pipeline -> build_protocol
                pipe = Pipeline(
                    PipelineConfig(protocol=ProtocolName.SECAGG_PLUS, clip_bound=1.0, bits=16),
                    n_clients=8,
                    dim=16,
                    rng=rounds.derive(s, "pipeline"),
                )
                built = build_protocol(pipe, rng=rounds.derive(s, "p"))
                assert isinstance(built, sa.SecAggProtocol)
                config = built.config
                proto = built
            else:
                config = sa.SecAggConfig(bits=16, threshold=3, n_clients=5)
                proto = rounds.secagg_protocol(config, rounds.derive(s, "p"))
            n, t = config.n_clients, config.threshold
        zeros = {c: np.zeros(16, dtype=uint_dtype(proto.bits)) for c in range(1, n + 1)}
        for r in (rounds.ROUND_ID, rounds.ROUND_ID + 1):
            recorder = TranscriptRecorder()
            report = simulate_round(recorder.wrap(proto), zeros, round_id=r)
            if not report.correct:
                raise AssertionError(f"trial {i}: an honest all-zero round failed: {report}")
            recorded.append(recorder.transcript)
        if protocol == ProtocolName.PAILLIER:
            cts = [
                (f"round {k} client {c}", frame[wire.HEADER_BYTES + 8 :])
                for k, tr in enumerate(recorded)
                for c, frame in tr.emitted(pl.MSG_INPUT)
            ]
            checked += len(cts)
            failures += _repeats(f"trial {i}, Paillier ciphertexts of zero", cts)
            continue
        kinds: dict[str, list[tuple[str, bytes]]] = {}
        for k, tr in enumerate(recorded):
            secrets = _secagg_secrets(tr, t, rounds.ROUND_ID + k, f"round {k}")
            for kind, values in secrets.items():
                kinds.setdefault(kind, []).extend(values)
        for kind, values in kinds.items():
            checked += len(values)
            failures += _repeats(f"trial {i}, {kind}", values)
            if kind == "b_u":
                failures += [f"trial {i}: {name} is all zero" for name, v in values if not any(v)]
    if failures:
        raise AssertionError(
            f"{len(failures)} repeated or missing random values:\n  " + "\n  ".join(failures[:12])
        )
    return f"{checked} random values over {trials} pairs of rounds, all distinct"


# ----------------------------------------------------------------------------- DP noise
def _variance_low(x: np.ndarray, variance: float, what: str) -> list[str]:
    """One-sided: the sample second moment of ``x`` (mean 0) is below ``variance``."""
    d = x.size
    m2 = float(np.mean(x.astype(np.float64) ** 2))
    z = (m2 - variance) / (variance * math.sqrt(2.0 / d))
    if z < -_Z:
        return [f"{what}: variance {m2:.4g} < the {variance:.4g} accounted (z = {z:.1f})"]
    return []


def _correlated(a: np.ndarray, b: np.ndarray, what: str) -> list[str]:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    corr = float(np.dot(a, b) / math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)) or 1.0))
    z = corr * math.sqrt(a.size)
    if abs(z) > _Z2:
        return [f"{what}: correlation {corr:.3f} (z = {z:.1f})"]
    return []


def _centred(v: np.ndarray, bits: int) -> np.ndarray:
    x = v.astype(np.int64)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)


def check_dp_noise(*, trials: int = 1, seed: int = 0, dim: int = 1024, n: int = 4) -> str:
    """Noise is there, as large as accounted, and independent (module doc)."""
    failures: list[str] = []
    tests = 0
    for i, s in enumerate(_seeds("dp-noise", seed, trials)):
        mech = (DPMechanism.SKELLAM, DPMechanism.DISCRETE_GAUSSIAN)[i % 2]
        dp = DistributedDP(
            mechanism=mech,
            noise_multiplier=1.0,
            neighboring=(
                Neighboring.ZERO_OUT
                if mech is DPMechanism.SKELLAM
                else Neighboring.ADD_OR_REMOVE_ONE
            ),
        )
        config = PipelineConfig(protocol=ProtocolName.SECAGG, clip_bound=1.0, bits=32, dp=dp)
        pipe = Pipeline(config, n_clients=n, dim=dim, rng=rounds.derive(s, "pipeline"))
        event = pipe.dp_event(survivors=n)
        local = getattr(event, "local_variance", None)
        if local is None:
            local = float(event.local_sigma) ** 2  # type: ignore[union-attr]
        # The discrete Gaussian's variance is below sigma^2 by less than 1e-10 for sigma >= 1.
        noises = []
        for c in range(1, n + 1):
            out = pipe.client_side(np.zeros(dim), rng=rounds.derive(s, f"client/{c}"))
            noises.append(_centred(out.encoded, config.bits))
        for c, x in enumerate(noises, 1):
            tests += 1
            failures += _variance_low(x, local, f"trial {i} ({mech.value}), client {c}'s share")
        total = np.sum(noises, axis=0)
        tests += 1
        failures += _variance_low(total, n * local, f"trial {i} ({mech.value}), summed noise")
        for c in range(1, n):
            tests += 1
            failures += _correlated(
                noises[0],
                noises[c],
                f"trial {i} ({mech.value}), shares of clients 1 and {c + 1}",
            )
        # a plan that cannot fit the ring is refused, never built half-way
        tests += 1
        try:
            Pipeline(
                PipelineConfig(protocol=ProtocolName.SECAGG, clip_bound=1.0, bits=8, dp=dp),
                n_clients=1000,
                dim=dim,
                rng=rounds.derive(s, "too-small"),
            )
        except EncodingOverflow:
            pass
        else:
            failures.append(f"trial {i}: distributed DP over 1000 clients fit in 8 bits")
        tests += 1
        try:  # a clip bound beyond any fixed-point range: refused, typed
            required_bits_with_noise(n_clients=2, max_abs=1e300, scale_bits=4096, noise_bound=0)
            failures.append(f"trial {i}: a clip bound of 1e300 at scale 2^4096 got a bit count")
        except EncodingOverflow:
            pass
        # shares drawn ahead of the rounds (NoiseReservoir) are the same noise, from its rng
        plan = pipe.dp_plan
        assert plan is not None
        noise = plan.noise
        ahead = [
            noise.presample(rounds=2, rng=rounds.derive(s, f"presample/{k}")).take(noise.dimension)
            for k in (1, 2)
        ]
        tests += 2
        failures += _variance_low(ahead[0], local, f"trial {i} ({mech.value}), presampled share")
        failures += _correlated(ahead[0], ahead[1], f"trial {i}, presampled from two generators")
        # central Gaussian, and the adaptive clipper's count noise
        gauss = GaussianMechanism(noise_multiplier=1.5, clip_bound=0.5, placement=Placement.CENTRAL)
        g = gauss.add_noise(np.zeros(dim), rng=rounds.derive(s, "gaussian"))
        tests += 2
        failures += _variance_low(g, gauss.stddev**2, f"trial {i}, Gaussian mechanism")
        # ... drawn from the generator it is given: another generator, independent noise
        g2 = gauss.add_noise(np.zeros(dim), rng=rounds.derive(s, "gaussian/2"))
        failures += _correlated(g, g2, f"trial {i}, Gaussian noise from two generators")
        clipper = AdaptiveClipper(AdaptiveClipConfig(initial_bound=1.0, count_noise_stddev=2.0))
        counts, counts2 = (
            np.array([clipper.noise_sum(0.0, rng=rng) for _ in range(256)])
            for rng in (rounds.derive(s, "count"), rounds.derive(s, "count/2"))
        )
        tests += 2
        failures += _variance_low(counts, 4.0, f"trial {i}, adaptive clipping's count noise")
        failures += _correlated(counts, counts2, f"trial {i}, count noise from two generators")
        # per-layer clipping reports exactly the layers it clipped, each within its bound
        layers = clip_per_layer(
            {"big": np.full(4, 10.0), "small": np.full(4, 0.01)}, bounds={"big": 1.0, "small": 1.0}
        )
        tests += 1
        norms = {k: float(np.linalg.norm(v)) for k, v in layers.tensors.items()}
        if layers.clipped != {"big"} or max(norms.values()) > 1.0 + 1e-12:
            failures.append(f"trial {i}: per-layer clipping reported {set(layers.clipped)}")
        # stochastic rounding: two clients with the same update at half a quantum
        plain = Pipeline(
            PipelineConfig(protocol=ProtocolName.SECAGG, clip_bound=1.0, bits=32),
            n_clients=n,
            dim=dim,
            rng=rounds.derive(s, "plain"),
        )
        half = (np.arange(dim) % 7 + 0.5) * 2.0**-plain.codec.scale_bits
        half *= 0.5 / max(1.0, float(np.linalg.norm(half)))
        a = plain.client_side(half, rng=rounds.derive(s, "round/1")).encoded
        b = plain.client_side(half, rng=rounds.derive(s, "round/2")).encoded
        tests += 1
        if np.array_equal(a, b):
            failures.append(f"trial {i}: two clients rounded the same update with the same coins")
    if failures:
        raise AssertionError(
            f"{len(failures)} of {tests} noise tests failed at p = {P_VALUE}:\n  "
            + "\n  ".join(failures[:12])
        )
    return f"{tests} noise tests over {trials} trials passed"
