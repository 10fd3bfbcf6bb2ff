"""Threshold Paillier key files and ``secfl paillier-key --holders m --threshold t``."""

from __future__ import annotations

import json
import stat

import pytest

from secfl.errors import InvalidArgument
from secfl.hazmat import threshold_paillier as tp
from secfl.hazmat.rng import Csprng
from secfl.threshold_keys import (
    PUBLIC_FILE,
    load_key_share,
    load_threshold_public_key,
    save_threshold_key,
    share_file,
)


def seeded(tag: int) -> Csprng:
    return Csprng(seed=tag.to_bytes(32, "little"))


@pytest.fixture(scope="module")
def key():
    rng = seeded(201)
    p, q = tp.generate_safe_prime(512, rng=rng), tp.generate_safe_prime(512, rng=rng)
    return tp.deal_key(p, q, holders=4, threshold=2, rng=rng)


@pytest.fixture(scope="module")
def other_key():
    rng = seeded(202)
    p, q = tp.generate_safe_prime(512, rng=rng), tp.generate_safe_prime(512, rng=rng)
    return tp.deal_key(p, q, holders=4, threshold=2, rng=rng)


def test_files_round_trip_owner_only_never_overwritten(tmp_path, key) -> None:
    pk, shares = key
    paths = save_threshold_key(pk, shares, tmp_path)
    assert [p.name for p in paths] == [PUBLIC_FILE] + [share_file(i) for i in range(1, 5)]
    assert load_threshold_public_key(tmp_path / PUBLIC_FILE) == pk
    for s in shares:
        path = tmp_path / share_file(s.index)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        loaded = load_key_share(path, public_key=pk)
        assert loaded.index == s.index
        assert loaded.private_number() == s.private_number()
    with pytest.raises(InvalidArgument, match="already holds"):
        save_threshold_key(pk, shares, tmp_path)
    with pytest.raises(InvalidArgument, match=r"1\.\.m"):
        save_threshold_key(pk, shares[:3], tmp_path / "fewer")


def _doc(tmp_path, key) -> dict:
    pk, shares = key
    save_threshold_key(pk, shares, tmp_path / "k")
    return json.loads((tmp_path / "k" / share_file(2)).read_text())


def _hostile(doc: dict) -> list[object]:
    pub = doc["public_key"]
    return [
        {**doc, "share": hex(int(doc["share"], 16) + 1)},  # does not match v_2
        {**doc, "index": 3},  # another holder's slot
        {**doc, "index": True},
        {**doc, "index": 0},
        {**doc, "share": "12"},
        {**doc, "share": "0xzz"},
        {**doc, "share": "0x" + "f" * 100_000},
        {**doc, "format": "secfl-paillier-private-key"},
        {**doc, "version": 2},
        {**doc, "public_key": {**pub, "n": "0xff"}},
        {**doc, "public_key": {**pub, "threshold": 5}},
        {**doc, "public_key": {**pub, "holders": 3}},
        {**doc, "public_key": {**pub, "verification_keys": pub["verification_keys"][:3]}},
        {**doc, "public_key": {**pub, "v": hex(int(pub["n"], 16))}},
        {**doc, "public_key": []},
        [],
        "text",
    ]


def test_hostile_share_files_raise_only_invalid_argument(tmp_path, key) -> None:
    doc = _doc(tmp_path, key)
    for number, bad in enumerate(_hostile(doc)):
        path = tmp_path / f"bad-{number}"
        path.write_text(json.dumps(bad))
        with pytest.raises(InvalidArgument):
            load_key_share(path)
    for number, text in enumerate(["[" * 100_000 + "]" * 100_000, "{", '{"a": 1, "a": 2}', "\xff"]):
        path = tmp_path / f"raw-{number}"
        path.write_text(text, errors="surrogateescape")
        with pytest.raises(InvalidArgument):
            load_key_share(path)
        with pytest.raises(InvalidArgument):
            load_threshold_public_key(path)
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_key_share(tmp_path / "missing")


def test_a_share_of_another_key_is_refused(tmp_path, key, other_key) -> None:
    save_threshold_key(*other_key, tmp_path)
    with pytest.raises(InvalidArgument, match="another threshold key"):
        load_key_share(tmp_path / share_file(1), public_key=key[0])


def test_cli_writes_a_threshold_key_that_decrypts(tmp_path, capsys) -> None:
    from secfl.cli import main

    assert main(["paillier-key", "--holders", "3", "--out", str(tmp_path / "x")]) == 2
    assert "--holders and --threshold go together" in capsys.readouterr().err
    assert main(["paillier-key", "--holders", "3", "--threshold", "4", "--out", str(tmp_path)]) == 2
    assert "threshold must be 1..3" in capsys.readouterr().err
    out = tmp_path / "tk"
    assert main(["paillier-key", "--holders", "3", "--threshold", "2", "--out", str(out)]) == 0
    assert "a 2-of-3 key" in capsys.readouterr().out
    pk = load_threshold_public_key(out / PUBLIC_FILE)
    assert pk.bits == 2048
    shares = [load_key_share(out / share_file(i), public_key=pk) for i in (1, 3)]
    c = pk.to_phe().raw_encrypt(31337)
    rng = seeded(1)
    parts = [tp.partial_decrypt(s, [c], context=b"cli", rng=rng) for s in shares]
    assert tp.combine(pk, [c], parts, context=b"cli").plaintexts == (31337,)


def test_cli_simulates_a_threshold_round(capsys) -> None:
    from secfl.cli import main

    args = ["simulate", "--protocol", "paillier-threshold", "--clients", "4", "--dim", "50"]
    assert main([*args, "--dropout", "0.25", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "paillier-threshold"
    assert out["correct"] is True
    assert out["dropped"] == 1


def test_a_refused_share_is_never_echoed(tmp_path, key) -> None:
    doc = _doc(tmp_path, key)
    secret = int(doc["share"], 16)
    for bad in (secret + 1, key[0].n ** 2 + secret):
        path = tmp_path / f"echo-{bad % 97}"
        path.write_text(json.dumps({**doc, "share": hex(bad)}))
        with pytest.raises(InvalidArgument) as info:
            load_key_share(path)
        assert info.value.__context__ is None
        assert info.value.__cause__ is None
        for text in (str(bad), hex(bad)[2:], str(secret)):
            assert text not in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        tp.KeyShare(key[0], 1, key[0].n ** 2 + 5)
    assert str(key[0].n ** 2 + 5) not in str(info.value)
