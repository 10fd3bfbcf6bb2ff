"""End to end on Flower's deployment engine: a real SuperLink and SuperNodes on 127.0.0.1.

The test starts ``flower-superlink`` and four ``flower-supernode`` processes (insecure mode,
loopback only, free ports), submits ``examples/flower_app`` with ``flwr run``, and lets it run
three rounds of SecAgg+ through :class:`secfl.integrations.flower.SecureAggregation`. In
rounds 2 and 3 the ServerApp pauses after the share phase and the test kills one SuperNode
(its whole process group, a crash) before letting the round go on:

* round 1: all four nodes; the aggregate is exactly their sum (weighted, as FedAvg asks);
* round 2: one node killed, three survive (at least the threshold + 1 = 3 that SecAgg+
  needs for n = 4 or n = 3); the aggregate is exactly the survivors' sum (the dead node's
  pairwise masks are removed through the survivors' Shamir shares);
* round 3: a second node killed, two survive, below the floor of 3: the round aborts with
  ``InsufficientSurvivors``, the global model stays as it was, and the run still ends.
  FedAvg samples the nodes the SuperLink lists as online, and a killed SuperNode stays
  listed until its heartbeat expires (up to 60 s), so round 3 may invite the node killed in
  round 2 (it then drops out in the first phase) or not; the test accepts both.

A second test starts the same federation over TLS (a CA made by the test; SuperNodes and
the CLI verify the SuperLink) with an Ed25519 identity per SuperNode (its key file and the
registry named in its node config) and runs one SecAgg round in the active threat model:
identify, signed keys, consistency round, exact sum. A third adds a fifth SuperNode that
holds the Paillier private key and runs one Paillier round decrypted there. A fourth runs
threshold Paillier (paillier-sum-v2): five more SuperNodes hold the shares of a 3-of-5 key
made by ``secfl paillier-key --holders 5 --threshold 3``; one of them is killed after the
inputs are in, and the other four decrypt the exact sum.

Every wait is bounded, and every process the test started is killed in the fixture's
teardown, whatever happens. Slow (about 5 minutes for the first three on 2 cores, and
~105 s for the threshold one, 30 s of it the stage timeout the killed holder costs: Flower starts a
ClientApp process per message, its SuperNodes poll every 3 s and each killed node costs a
stage timeout), but part of the plain ``pytest`` run (``make test``) whenever flwr and its
executables are installed; they are marked ``flower``, so ``pytest -m flower``
(``make test-integration``) runs them alone and ``-m "not flower"`` leaves them out.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytest.importorskip("flwr", reason="the flower extra (flwr) is not installed")

pytestmark = pytest.mark.flower

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "flower_app"
BIN = Path(sys.executable).parent
NODES = 4
VICTIMS = {2: 3, 3: 2}  # round -> partition id of the SuperNode killed in its mask phase
# A healthy stage takes 6-12 s here (SuperNodes poll every 3 s and start a process per
# message; ~12 s with both cores kept busy). Each dead node costs the stage timeout once, so
# the test that kills nodes keeps it moderate; the others can afford a generous one.
KILL_STAGE_TIMEOUT = 30.0
STAGE_TIMEOUT = 60.0
MARK = "SECFL_E2E_RUN"  # environment marker of every process this test starts

sys.path.insert(0, str(APP_DIR))
from marked_processes import marked_pids  # noqa: E402
from secfl_flower_app import task  # noqa: E402

from secfl.identities import generate_identities, save_paillier_key  # noqa: E402
from secfl.integrations.flower import (  # noqa: E402
    NODE_IDENTITY,
    NODE_PAILLIER_KEY,
    NODE_PAILLIER_PUBLIC_KEY,
    NODE_PAILLIER_SHARE,
    NODE_PAILLIER_THRESHOLD_PUBLIC_KEY,
    NODE_REGISTRY,
)
from secfl.paillier_keys import PaillierPrivateKey  # noqa: E402
from secfl.threshold_keys import PUBLIC_FILE, share_file  # noqa: E402

_PICKED: set[int] = set()


def _free_port() -> int:
    """A port free now, never handed out twice in this process, and below Linux's ephemeral
    range (32768-60999): a port from bind(0) comes from that range, where a SuperNode's own
    outgoing gRPC connection could take it before the server meant for it binds it (seen once
    as "address already in use" in a fresh-clone run)."""
    pick = secrets.SystemRandom()
    for _ in range(1000):
        port = pick.randrange(20000, 32768)
        if port in _PICKED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PICKED.add(port)
        return port
    raise RuntimeError("no free port in 20000..32767")


def _wait(what: str, predicate, timeout: float, logs: Federation | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    detail = logs.tails() if logs is not None else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")


@dataclass
class Federation:
    """The processes of one local federation and how to reach them."""

    home: Path
    env: dict[str, str]
    address: str
    logs: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nodes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    node_ids: dict[int, int] = field(default_factory=dict)  # partition id -> node id

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None):
        log = self.home / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.env, **(extra_env or {})},
                start_new_session=True,  # its own process group: killpg reaches its children
            )
        self.procs.append(proc)
        return proc

    def kill_node(self, partition: int) -> None:
        """SIGKILL a SuperNode and everything it started (a crash, not a shutdown)."""
        proc = self.nodes[partition]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def tails(self, lines: int = 25) -> str:
        out = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            out.append(f"--- {log.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Terminate every process group, then anything else that carries our marker."""
        for proc in self.procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for pid in marked_pids(MARK, self.env[MARK]):  # e.g. the SuperLink's detached SuperExec
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


@pytest.fixture
def federation(
    request: pytest.FixtureRequest, tmp_path: Path, paillier_keys: PaillierPrivateKey
) -> Iterator[Federation]:
    """A SuperLink and NODES SuperNodes. Indirect parameters: ``identities=True`` gives each
    node a signing key and the registry through its node config (active threat model);
    ``tls=True`` runs every connection over TLS with a CA made for the test;
    ``key_holder=True`` adds a SuperNode (partition NODES) holding a Paillier private key
    (``tmp_path / "keys"``), whose public key the other nodes pin; ``threshold_holders=m``
    (with ``identities``) deals a 3-of-m threshold key with ``secfl paillier-key`` into
    ``tmp_path / "threshold"`` and adds m SuperNodes (partitions NODES .. NODES + m - 1,
    holder i at NODES + i - 1) holding one share each and the registry; the data nodes pin
    the threshold public key."""
    params = getattr(request, "param", {})
    with_identities, with_tls = bool(params.get("identities")), bool(params.get("tls"))
    with_key_holder = bool(params.get("key_holder"))
    holders = int(params.get("threshold_holders", 0))
    for tool in ("flower-superlink", "flower-supernode", "flwr"):
        if not (BIN / tool).exists():
            pytest.skip(f"{tool} is not installed next to {sys.executable}")
    home = tmp_path / "flwr-home"
    home.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # flwr-clientapp etc.
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2",
        MARK: uuid.uuid4().hex,
    }
    link_tls, node_tls, cli_tls = ["--insecure"], ["--insecure"], "insecure = true\n"
    if with_tls:
        ca, cert, key = _tls_files(tmp_path / "tls")
        link_tls = ["--ssl-ca-certfile", ca, "--ssl-certfile", cert, "--ssl-keyfile", key]
        node_tls = ["--root-certificates", ca]
        cli_tls = f'root-certificates = "{ca}"\n'
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "e2e"\n\n[superlink.e2e]\naddress = "127.0.0.1:{port}"\n' + cli_tls
    )
    fed = Federation(home=home, env=env, address=f"127.0.0.1:{port}")
    node_config = {p: f"partition-id={p}" for p in range(NODES + with_key_holder + holders)}
    if with_key_holder:
        keys = tmp_path / "keys"
        keys.mkdir()
        private = paillier_keys
        save_paillier_key(private, keys / "paillier.key", keys / "paillier.pub")
        for p in range(NODES):
            node_config[p] += f" {NODE_PAILLIER_PUBLIC_KEY}='{keys / 'paillier.pub'}'"
        node_config[NODES] += f" {NODE_PAILLIER_KEY}='{keys / 'paillier.key'}'"
    if with_identities:
        pki = tmp_path / "pki"
        generate_identities(NODES, pki)
        for p in range(NODES):  # partition p holds client id p + 1
            node_config[p] += (
                f" {NODE_IDENTITY}='{pki / f'client-{p + 1}.pem'}'"
                f" {NODE_REGISTRY}='{pki / 'registry.json'}'"
            )
    if holders:
        keys = tmp_path / "threshold"
        dealt = subprocess.run(
            [
                str(BIN / "secfl"),
                *("paillier-key", "--holders", str(holders), "--threshold", "3"),
                *("--out", str(keys)),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert dealt.returncode == 0, dealt.stdout + dealt.stderr
        for p in range(NODES):
            node_config[p] += f" {NODE_PAILLIER_THRESHOLD_PUBLIC_KEY}='{keys / PUBLIC_FILE}'"
        for i in range(1, holders + 1):
            node_config[NODES + i - 1] += (
                f" {NODE_PAILLIER_SHARE}='{keys / share_file(i)}'"
                f" {NODE_REGISTRY}='{tmp_path / 'pki' / 'registry.json'}'"
            )
    try:
        fed.start(
            "superlink",
            [
                "flower-superlink",
                *link_tls,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-runtime-dependency-installation",
            ],
        )
        _wait("the SuperLink to listen", lambda: _listening(port), 60, fed)
        for p in node_config:
            fed.nodes[p] = fed.start(
                f"supernode-{p}",
                [
                    "flower-supernode",
                    *node_tls,
                    "--superlink",
                    fed.address,
                    "--port",
                    str(_free_port()),
                    "--node-config",
                    node_config[p],
                ],
            )
        for p in node_config:
            log = home / f"supernode-{p}.log"
            _wait(f"SuperNode {p} to register", lambda log=log: _node_id(log) is not None, 60, fed)
            node_id = _node_id(log)
            assert node_id is not None
            fed.node_ids[p] = node_id
        yield fed
    finally:
        fed.stop()


def _tls_files(directory: Path) -> tuple[str, str, str]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) PEM paths."""
    directory.mkdir()
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))

    def certificate(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca.pem": certificate("secfl e2e CA", ca_key, "secfl e2e CA", ca_key, True),
        "server.pem": certificate("127.0.0.1", key, "secfl e2e CA", ca_key, False),
    }
    for name, cert in files.items():
        (directory / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tuple(str(directory / n) for n in ("ca.pem", "server.pem", "server.key"))  # type: ignore[return-value]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _node_id(log: Path) -> int | None:
    m = re.search(r"SuperNode ID: (\d+)", log.read_text(errors="replace")) if log.exists() else None
    return int(m.group(1)) if m else None


def _flat(arrays: dict[str, list[float]] | dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate(
        [np.asarray(arrays[k], np.float64).reshape(-1) for k in ("weight", "bias")]
    )


def _update(global_arrays: dict[str, list[float]], partition: int) -> np.ndarray:
    """What a node contributes: its trained arrays minus the global ones (as in the app)."""
    g = {k: np.asarray(v, np.float32) for k, v in global_arrays.items()}
    new, _, _ = task.train(g, partition, lr=0.05, steps=2)
    return _flat(new) - _flat(g)


WEIGHT = task.EXAMPLES / 1000
"""Each node's weight in FedAvg's average: its example count over secfl's default cap."""


def _weighted_sum(global_arrays: dict[str, list[float]], partitions: Iterable[int]) -> np.ndarray:
    """What the secure sum holds under FedAvg's weighting: each node's update times its
    weight, then the total weight (the last slot)."""
    parts = list(partitions)
    total = sum(_update(global_arrays, p) for p in parts)
    return np.concatenate([WEIGHT * total, [WEIGHT * len(parts)]])


def _submit(
    federation: Federation, tmp_path: Path, stage_timeout: float = STAGE_TIMEOUT, **overrides: str
) -> tuple[Path, Path]:
    """``flwr run`` the example app with the test's run config; its result and control paths."""
    control = tmp_path / "control"
    control.mkdir()
    result = tmp_path / "result.json"
    config = {
        "fraction-evaluate": "0.0",
        "lr": "0.05",
        "local-steps": "2",
        "train-timeout": "90.0",
        "stage-timeout": str(stage_timeout),
        "result-file": json.dumps(str(result)),
        "control-dir": json.dumps(str(control)),
        **overrides,
    }
    args = [str(BIN / "flwr"), "run", str(APP_DIR), "e2e"]
    for key, value in config.items():
        args += ["--run-config", f"{key}={value}"]
    submitted = subprocess.run(
        args, env=federation.env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    return result, control


def _rounds(result: Path) -> tuple[dict[int, dict], dict[int, dict[str, list[float]]], str]:
    """The run's round records, global models by round and a printable detail."""
    data = json.loads(result.read_text())
    for r in data["rounds"]:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in r["phase_seconds"].items())
        status = f"aborted: {r['aborted']}" if r["aborted"] else f"{len(r['survivors'])} summed"
        head = f"round {r['round']}: {r['seconds']:.1f} s, {len(r['nodes'])} nodes"
        print(f"{head}, {status} ({phases})")
    rounds = {r["round"]: r for r in data["rounds"]}
    globals_ = {int(k): v for k, v in data["globals"].items()}
    return rounds, globals_, json.dumps(data["rounds"], indent=1)[:4000]


def test_secagg_plus_rounds_with_nodes_killed_mid_round(federation: Federation, tmp_path):
    t0 = time.monotonic()
    result, control = _submit(
        federation,
        tmp_path,
        KILL_STAGE_TIMEOUT,
        **{
            "num-server-rounds": "3",
            "protocol": '"secagg+"',
            "pause-at": json.dumps(",".join(f"{r}:mask" for r in VICTIMS)),
        },
    )

    # Rounds 2 and 3, after the share phase: kill one SuperNode, then let the server go on.
    mask_nodes: dict[int, list[int]] = {}
    for r, partition in VICTIMS.items():
        paused = control / f"paused-{r}-mask"
        _wait(f"the ServerApp to reach round {r}'s mask phase", paused.exists, 240, federation)
        mask_nodes[r] = json.loads(paused.read_text())
        federation.kill_node(partition)
        (control / f"resume-{r}-mask").touch()
    t_last_kill = time.monotonic()
    # Round 3 ends one stage timeout after the kill (plus the replies and the abort).
    _wait("the run's result", result.exists, KILL_STAGE_TIMEOUT + 90, federation)
    finished = time.monotonic()
    print(
        f"\nFlower end-to-end run: {finished - t0:.1f} s on {os.cpu_count()} CPUs "
        f"(run ended {finished - t_last_kill:.1f} s after the round 3 kill)"
    )

    rounds, globals_, detail = _rounds(result)
    by_node = {node: p for p, node in federation.node_ids.items()}
    victim = {r: federation.node_ids[p] for r, p in VICTIMS.items()}

    assert sorted(rounds) == [1, 2, 3], detail
    assert sorted(globals_) == [0, 1, 2, 3], detail

    # Round 1: everyone. Round 2: one node killed after sharing; the other three summed.
    assert rounds[1]["aborted"] is None, detail
    assert sorted(rounds[1]["survivors"]) == sorted(federation.node_ids.values()), detail
    assert rounds[2]["aborted"] is None, detail
    assert victim[2] in mask_nodes[2], detail
    assert victim[2] in rounds[2]["nodes"], detail
    assert victim[2] not in rounds[2]["survivors"], detail
    assert len(rounds[2]["survivors"]) == NODES - 1, detail
    assert "mask" in rounds[2]["dropped"][str(victim[2])], detail
    for r in (1, 2):
        survivors = [by_node[n] for n in rounds[r]["survivors"]]
        expected = _weighted_sum(globals_[r - 1], survivors)
        got = np.asarray(rounds[r]["aggregate"])
        # Stochastic rounding: each node's encoding is within one quantum (2^-27 here).
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=f"round {r}")
        np.testing.assert_allclose(
            _flat(globals_[r]), _flat(globals_[r - 1]) + got[:-1] / got[-1], atol=1e-6
        )

    # Round 3: a second node killed after sharing. Two nodes are left, fewer than the
    # threshold + 1 = 3 the round needs (t = 2 for n = 4 and for n = 3): a clean abort.
    r3 = rounds[3]
    alive = {federation.node_ids[p] for p in range(NODES) if p not in VICTIMS.values()}
    if victim[2] in r3["nodes"]:  # still listed online by the SuperLink: it never answers
        assert len(r3["nodes"]) == NODES, detail
        assert "advertise" in r3["dropped"][str(victim[2])], detail
    else:
        assert len(r3["nodes"]) == NODES - 1, detail
    among = "among them" if victim[2] in r3["nodes"] else "not among them"
    print(f"round 3 invited {len(r3['nodes'])} nodes (the node killed in round 2 {among})")
    print(f"round 3 dropped: {r3['dropped']}")
    assert sorted(mask_nodes[3]) == sorted(alive | {victim[3]}), detail
    assert "mask" in r3["dropped"][str(victim[3])], detail
    assert r3["aborted"] is not None, detail
    assert "InsufficientSurvivors" in r3["aborted"], detail
    assert r3["survivors"] == [], detail
    assert r3["aggregate"] is None, detail
    np.testing.assert_array_equal(_flat(globals_[3]), _flat(globals_[2]))


@pytest.mark.parametrize("federation", [{"identities": True, "tls": True}], indirect=True)
def test_active_secagg_round_over_tls_with_identities_from_node_config(
    federation: Federation, tmp_path
):
    """The deployment docs/flower.md recommends, on the real engine: every connection over
    TLS (the SuperNodes and the CLI verify the SuperLink against a CA), and the active
    threat model: each SuperNode reads its signing key and the registry from its node
    config, states its registry id in the identify phase and signs its keys and the
    survivor list; the sum is exact. (n = 4 active tolerates no dropout, t = 3 of 3
    holders; dropouts in active rounds are covered in process.)"""
    t0 = time.monotonic()
    registry = tmp_path / "pki" / "registry.json"
    result, _ = _submit(
        federation,
        tmp_path,
        **{
            "num-server-rounds": "1",
            "protocol": '"secagg"',
            "registry": json.dumps(str(registry)),
        },
    )
    _wait("the run's result", result.exists, 240, federation)
    print(f"\nFlower end-to-end active run over TLS: {time.monotonic() - t0:.1f} s")
    assert "running on https://127.0.0.1" in (federation.home / "superlink.log").read_text()
    rounds, globals_, detail = _rounds(result)
    r1 = rounds[1]
    assert r1["aborted"] is None, detail
    assert list(r1["phase_seconds"]) == [
        "identify", "advertise", "share", "check", "mask", "consistency", "unmask"
    ], detail  # fmt: skip
    # Partition p holds client id p + 1 (see the fixture): the ids came from the keys.
    expected_ids = {str(node): p + 1 for p, node in federation.node_ids.items()}
    assert r1["client_ids"] == expected_ids, detail
    assert sorted(r1["survivors"]) == sorted(federation.node_ids.values()), detail
    expected = _weighted_sum(globals_[0], range(NODES))
    np.testing.assert_allclose(np.asarray(r1["aggregate"]), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("federation", [{"key_holder": True}], indirect=True)
def test_paillier_round_with_the_private_key_on_a_key_holder_node(federation: Federation, tmp_path):
    """Paillier with the private key off the ServerApp: a fifth SuperNode holds it (node
    config ``secfl-paillier-key``), the four data nodes pin the public key; the strategy
    finds the key holder, leaves it out of training and has it decrypt the sum."""
    t0 = time.monotonic()
    result, _ = _submit(
        federation,
        tmp_path,
        **{
            "num-server-rounds": "1",
            "protocol": '"paillier"',
            "paillier-public-key": json.dumps(str(tmp_path / "keys" / "paillier.pub")),
        },
    )
    _wait("the run's result", result.exists, 240, federation)
    print(f"\nFlower end-to-end Paillier run with a key holder: {time.monotonic() - t0:.1f} s")
    rounds, globals_, detail = _rounds(result)
    r1 = rounds[1]
    assert r1["aborted"] is None, detail
    assert list(r1["phase_seconds"]) == ["find-key-holder", "input", "decrypt"], detail
    data_nodes = sorted(federation.node_ids[p] for p in range(NODES))
    assert sorted(r1["nodes"]) == data_nodes, detail  # the key holder did not train
    assert sorted(r1["survivors"]) == data_nodes, detail
    expected = _weighted_sum(globals_[0], range(NODES))
    np.testing.assert_allclose(np.asarray(r1["aggregate"]), expected, rtol=0, atol=1e-6)


THRESHOLD_VICTIM = 2
"""The key holder (index) the threshold test kills once the inputs are in."""


@pytest.mark.parametrize(
    "federation", [{"identities": True, "threshold_holders": 5}], indirect=True
)
def test_threshold_paillier_round_with_a_key_holder_killed(federation: Federation, tmp_path):
    """paillier-sum-v2 on the real engine, issue 18's "done when": a 3-of-5 key dealt by
    ``secfl paillier-key --holders 5 --threshold 3``, five key-holder SuperNodes (a share and
    the registry in each node config), four data nodes that sign their ciphertexts. The
    strategy finds the holders, leaves them out of training; after the inputs are in, the
    test kills holder 2's SuperNode (a crash), so the decryption request reaches four
    holders: three valid partials are enough and the decrypted sum is exact."""
    t0 = time.monotonic()
    registry = tmp_path / "pki" / "registry.json"
    result, control = _submit(
        federation,
        tmp_path,
        KILL_STAGE_TIMEOUT,
        **{
            "num-server-rounds": "1",
            "protocol": '"paillier-threshold"',
            "registry": json.dumps(str(registry)),
            "paillier-threshold-public-key": json.dumps(str(tmp_path / "threshold" / PUBLIC_FILE)),
            "pause-at": json.dumps("1:decrypt"),
        },
    )
    paused = control / "paused-1-decrypt"
    _wait("the ServerApp to reach round 1's decrypt phase", paused.exists, 300, federation)
    asked = json.loads(paused.read_text())
    victim = federation.node_ids[NODES + THRESHOLD_VICTIM - 1]
    federation.kill_node(NODES + THRESHOLD_VICTIM - 1)
    (control / "resume-1-decrypt").touch()
    _wait("the run's result", result.exists, KILL_STAGE_TIMEOUT + 120, federation)
    print(f"\nFlower end-to-end threshold Paillier run: {time.monotonic() - t0:.1f} s")
    rounds, globals_, detail = _rounds(result)
    r1 = rounds[1]
    print(f"key holders: {r1['key_holders']}; failures: {r1['key_holder_failures']}")
    assert r1["aborted"] is None, detail
    assert list(r1["phase_seconds"]) == ["find-key-holders", "identify", "input", "decrypt"], detail
    holder_nodes = {str(i): federation.node_ids[NODES + i - 1] for i in range(1, 6)}
    assert r1["key_holders"] == holder_nodes, detail
    assert sorted(asked) == sorted(holder_nodes.values()), detail  # all five were asked
    assert list(r1["key_holder_failures"]) == [str(THRESHOLD_VICTIM)], detail
    failure = r1["key_holder_failures"][str(THRESHOLD_VICTIM)]
    assert f"node {victim}: no reply" in failure, detail
    data_nodes = sorted(federation.node_ids[p] for p in range(NODES))
    assert sorted(r1["nodes"]) == data_nodes, detail  # no key holder trained
    assert sorted(r1["survivors"]) == data_nodes, detail
    expected_ids = {str(federation.node_ids[p]): p + 1 for p in range(NODES)}
    assert r1["client_ids"] == expected_ids, detail
    expected = _weighted_sum(globals_[0], range(NODES))
    np.testing.assert_allclose(np.asarray(r1["aggregate"]), expected, rtol=0, atol=1e-6)
