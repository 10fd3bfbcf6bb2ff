"""Identity files: PEM signing keys and the registry of verify keys."""

from __future__ import annotations

import json
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.hazmat.sign import SigningKey
from secfl.identities import (
    REGISTRY_FORMAT,
    REGISTRY_VERSION,
    Registry,
    generate_identities,
    load_paillier_private_key,
    load_paillier_public_key,
    load_signing_key,
    save_paillier_key,
    save_signing_key,
)


def keys(n: int, seed: int = 1) -> dict[int, SigningKey]:
    rng = Csprng(seed=bytes([seed]) * 32)
    return {cid: SigningKey.generate(rng=rng) for cid in range(1, n + 1)}


def registry_of(ks: dict[int, SigningKey]) -> Registry:
    return Registry({cid: k.verify_key() for cid, k in ks.items()})


def test_signing_key_file_round_trip_owner_only(tmp_path):
    key = keys(1)[1]
    path = tmp_path / "me.pem"
    save_signing_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_signing_key(path).verify_key() == key.verify_key()
    with pytest.raises(InvalidArgument, match="never overwritten"):
        save_signing_key(key, path)


def test_openssl_style_pem_loads_and_other_keys_are_refused(tmp_path):
    raw = ed25519.Ed25519PrivateKey.generate()
    pem = raw.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ed.pem").write_bytes(pem)
    assert load_signing_key(tmp_path / "ed.pem").verify_key().to_bytes() == (
        raw.public_key().public_bytes_raw()
    )
    ecdsa = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.pem").write_bytes(ecdsa)
    with pytest.raises(InvalidArgument, match="Ed25519"):
        load_signing_key(tmp_path / "ec.pem")
    locked = raw.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    (tmp_path / "locked.pem").write_bytes(locked)
    with pytest.raises(InvalidArgument, match="unencrypted"):
        load_signing_key(tmp_path / "locked.pem")
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_signing_key(tmp_path / "missing.pem")


def test_registry_json_round_trip_and_digest(tmp_path):
    ks = keys(4)
    reg = registry_of(ks)
    reg.save(tmp_path / "r.json")
    again = Registry.load(tmp_path / "r.json")
    assert again == reg
    assert again.digest() == reg.digest()
    assert len(reg.digest()) == 32
    assert reg.client_id_of(ks[3]) == 3
    # Different ids or keys give a different digest; the order of entries does not matter.
    moved = Registry({(5 if c == 4 else c): k for c, k in reg.verify_keys.items()})
    assert moved.digest() != reg.digest()
    assert Registry(dict(reversed(list(reg.verify_keys.items())))).digest() == reg.digest()
    with pytest.raises(InvalidArgument, match="not in the registry"):
        reg.client_id_of(keys(1, seed=9)[1])


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("not json", "not valid JSON"),
        ({"format": "x", "version": 1, "clients": {}}, "not a secfl registry"),
        ({"format": "secfl-registry", "version": 2, "clients": {}}, "version"),
        ({"format": "secfl-registry", "version": 1, "clients": []}, "'clients'"),
        ({"format": "secfl-registry", "version": 1, "clients": {"-1": "00"}}, "ASCII digits"),
        ({"format": "secfl-registry", "version": 1, "clients": {"1": "zz"}}, "bad verify key"),
        ({"format": "secfl-registry", "version": 1, "clients": {"1": "00" * 32}}, "small order"),
    ],
)
def test_malformed_registries_raise_invalid_argument(doc, match):
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(InvalidArgument, match=match):
        Registry.from_json(text)


def test_registry_validation():
    vk = keys(2)
    with pytest.raises(InvalidArgument, match="at least 2"):
        Registry({1: vk[1].verify_key()})
    with pytest.raises(InvalidArgument, match="same verify key"):
        Registry({1: vk[1].verify_key(), 2: vk[1].verify_key()})
    with pytest.raises(InvalidArgument, match=r"1\.\.2\^32-1"):
        Registry({0: vk[1].verify_key(), 2: vk[2].verify_key()})
    with pytest.raises(InvalidArgument, match="VerifyKey"):
        Registry({1: vk[1], 2: vk[2].verify_key()})  # type: ignore[dict-item]


def test_generate_identities_writes_keys_matching_the_registry(tmp_path):
    reg = generate_identities(3, tmp_path / "pki", rng=Csprng(seed=bytes(32)))
    assert Registry.load(tmp_path / "pki" / "registry.json") == reg
    for cid in (1, 2, 3):
        assert reg.client_id_of(load_signing_key(tmp_path / "pki" / f"client-{cid}.pem")) == cid
    with pytest.raises(InvalidArgument, match="n_clients"):
        generate_identities(1, tmp_path / "x")
    with pytest.raises(InvalidArgument, match="already holds"):
        generate_identities(3, tmp_path / "pki")


def test_cli_writes_identities_and_refuses_to_overwrite(tmp_path, capsys):
    from secfl.cli import main

    assert main(["identities", "--clients", "4", "--out", str(tmp_path / "pki")]) == 0
    reg = Registry.load(tmp_path / "pki" / "registry.json")
    assert sorted(reg.verify_keys) == [1, 2, 3, 4]
    assert reg.digest().hex()[:16] in capsys.readouterr().out
    assert main(["identities", "--clients", "4", "--out", str(tmp_path / "pki")]) == 2
    assert "already holds" in capsys.readouterr().err


def test_paillier_key_files_round_trip_and_refuse_bad_content(tmp_path, paillier_keys):
    public, private = paillier_keys.public_key, paillier_keys
    save_paillier_key(private, tmp_path / "k", tmp_path / "p")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert load_paillier_public_key(tmp_path / "p") == public
    loaded = load_paillier_private_key(tmp_path / "k")
    assert loaded.private_numbers() == private.private_numbers()
    with pytest.raises(InvalidArgument, match="never overwritten"):
        save_paillier_key(private, tmp_path / "k", tmp_path / "p")
    with pytest.raises(InvalidArgument, match="secfl-paillier-private-key"):
        load_paillier_private_key(tmp_path / "p")  # the public file is not a private key
    doc = json.loads((tmp_path / "k").read_text())
    (tmp_path / "bad").write_text(json.dumps({**doc, "q": hex(private.private_numbers()[1] + 2)}))
    with pytest.raises(InvalidArgument, match="p \\* q is not n"):
        load_paillier_private_key(tmp_path / "bad")
    (tmp_path / "small").write_text(json.dumps({**doc, "n": "0xff"}))
    with pytest.raises(InvalidArgument, match="8-bit modulus"):
        load_paillier_private_key(tmp_path / "small")
    (tmp_path / "nothex").write_text(json.dumps({**doc, "p": "zz"}))
    with pytest.raises(InvalidArgument, match="'p' is not a hex integer"):
        load_paillier_private_key(tmp_path / "nothex")


def test_cli_paillier_key_writes_a_matching_pair(tmp_path, capsys):
    from secfl.cli import main

    assert main(["paillier-key", "--bits", "1024", "--out", str(tmp_path)]) == 2
    assert "--bits: bits must be one of (2048, 3072)" in capsys.readouterr().err
    assert main(["paillier-key", "--out", str(tmp_path / "pk")]) == 0
    private = load_paillier_private_key(tmp_path / "pk" / "paillier.key")
    assert load_paillier_public_key(tmp_path / "pk" / "paillier.pub") == private.public_key
    assert private.public_key.n.bit_length() == 2048


# ------------------------------------------------------------------ hostile file content
def _registry_doc(clients: str) -> str:
    return f'{{"format": "{REGISTRY_FORMAT}", "version": {REGISTRY_VERSION}, "clients": {clients}}}'


@pytest.mark.parametrize(
    "clients",
    [
        '{"01": "%s", "2": "%s"}',  # a second spelling of id 1
        '{"\\u0661": "%s", "2": "%s"}',  # ARABIC-INDIC DIGIT ONE, which int() reads as 1
        '{"+1": "%s", "2": "%s"}',
        '{"1": "%s", "1": "%s"}',  # a repeated key: JSON would keep the last one silently
    ],
)
def test_registry_refuses_aliased_and_duplicate_ids(clients):
    a, b = (SigningKey.generate(rng=Csprng()).verify_key().to_bytes().hex() for _ in range(2))
    with pytest.raises(InvalidArgument):
        Registry.from_json(_registry_doc(clients % (a, b)))


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deeply_nested_json_is_refused_by_every_loader(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    with pytest.raises(InvalidArgument):
        Registry.from_json(nested)
    with pytest.raises(InvalidArgument):
        Registry.from_json(_registry_doc(nested))
    path = tmp_path / "key.json"
    path.write_text('{"format": "x", "n": ' + nested + "}")
    for load in (load_paillier_private_key, load_paillier_public_key):
        with pytest.raises(InvalidArgument):
            load(path)


def test_every_single_bit_flip_of_a_signing_key_gives_a_key_or_invalid_argument(tmp_path):
    """cryptography raises UnsupportedAlgorithm or InternalError for some flipped DERs."""
    key = SigningKey.generate(rng=Csprng(seed=bytes(32)))
    good = tmp_path / "good.pem"
    save_signing_key(key, good)
    pem = good.read_bytes()
    path = tmp_path / "flipped.pem"
    outcomes: dict[str, int] = {"key": 0, "refused": 0}
    chained = []
    for i in range(len(pem) * 8):
        flipped = bytearray(pem)
        flipped[i // 8] ^= 1 << (i % 8)
        path.write_bytes(bytes(flipped))
        try:
            load_signing_key(path)
            outcomes["key"] += 1
        except InvalidArgument as e:
            outcomes["refused"] += 1
            if e.__cause__ is not None:
                chained.append(i)
    assert outcomes["key"] > 0  # a flip inside the 32 key bytes is another valid key
    assert outcomes["refused"] > 0
    assert chained == []  # nothing from cryptography chained


def test_a_paillier_key_with_p_equal_q_is_refused_without_its_values(tmp_path):
    p = (1 << 521) - 1  # a prime: n = p^2 has 1042 bits
    path = tmp_path / "key.json"
    doc = {"format": "secfl-paillier-private-key", "version": 1}
    doc.update(n=hex(p * p), p=hex(p), q=hex(p))
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument) as e:
        load_paillier_private_key(path)
    assert hex(p)[2:12] not in str(e.value)
    assert e.value.__cause__ is None
