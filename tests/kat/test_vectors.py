"""Known-answer tests: the library reproduces every committed vector in protocols/vectors/.

The vectors are generated (and independently cross-checked) by
``protocols/tools/make_vectors.py``; these tests only read them. A failure here means the
library no longer implements ``encoding-v1``, ``wire-v1`` or ``prg-v1`` as specified.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secfl import errors, wire
from secfl.encoding import FixedPointCodec, Norm, Rounding, plan_codec
from secfl.hazmat import prg
from secfl.hazmat.rng import Csprng
from secfl.protocols.base import sum_vectors
from secfl.protocols.plaintext import PlaintextProtocol

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors"


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def cases(name: str, key: str) -> list[Any]:
    """The list ``key`` of vector file ``name``, as pytest params with readable ids."""
    items = load(name)[key]
    return [pytest.param(c, id=c.get("name", str(i))) for i, c in enumerate(items)]


def error_class(name: str) -> type[errors.SecflError]:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.SecflError)
    return cls  # type: ignore[no-any-return]


def ints(a: np.ndarray) -> list[int]:
    return [int(v) for v in a]


def test_vector_files_present_and_non_empty() -> None:
    assert len(load("encoding.json")["codec"]) >= 10
    assert load("wire.json")["frames"]
    assert load("prg.json")["expand_uniform"]


# ------------------------------------------------------------------ encoding.json


@pytest.mark.parametrize("case", cases("encoding.json", "codec"))
def test_codec(case: dict[str, Any]) -> None:
    codec = FixedPointCodec(
        bits=case["bits"],
        scale_bits=case["scale_bits"],
        max_abs=case["max_abs"],
        n_clients=case["n_clients"],
    )
    rounding = Rounding(case["rounding"])
    encoded = {}
    for i, client in enumerate(case["clients"]):
        x = np.array(client["inputs"], dtype=case["dtype"])
        seed = client.get("csprng_seed_hex")

        def rng(seed: str | None = seed) -> Csprng | None:
            # a fresh generator per call, so quantize and encode see the same draws
            return Csprng(seed=bytes.fromhex(seed)) if seed else None

        assert ints(codec.quantize(x, rounding=rounding, rng=rng())) == client["quantized"]
        enc = codec.encode(x, rounding=rounding, rng=rng())
        assert enc.dtype == prg.uint_dtype(case["bits"])
        assert ints(enc) == client["encoded"]
        assert codec.decode(enc).tolist() == client["decoded"]
        encoded[i] = enc
    total = sum_vectors(encoded, bits=case["bits"], dim=len(case["sum"]))
    assert ints(total) == case["sum"]
    assert ints(codec.centred(total)) == case["sum_centred"]
    assert codec.decode(total).tolist() == case["sum_decoded"]


def build_and_encode(case: dict[str, Any]) -> object:
    codec = FixedPointCodec(**case["codec"])
    enc = case.get("encode")
    if enc is None:
        return codec
    x = np.array([float(v) for v in enc["inputs"]], dtype=enc["dtype"])  # "nan" -> nan
    rng = Csprng(seed=bytes(32)) if enc["rounding"] == "stochastic" else None
    return codec.encode(x, rounding=Rounding(enc["rounding"]), rng=rng)


@pytest.mark.parametrize("case", cases("encoding.json", "codec_errors"))
def test_codec_errors(case: dict[str, Any]) -> None:
    with pytest.raises(error_class(case["error"])):
        build_and_encode(case)


@pytest.mark.parametrize("case", cases("encoding.json", "planner"))
def test_planner(case: dict[str, Any]) -> None:
    codec = plan_codec(
        n_clients=case["n_clients"],
        clip_bound=case["clip_bound"],
        norm=Norm(case["norm"]),
        precision=case["precision"],
        bits=case["bits"],
    )
    assert (codec.bits, codec.scale_bits) == (case["expected_bits"], case["expected_scale_bits"])
    assert codec.max_abs == case["clip_bound"]
    assert codec.n_clients == case["n_clients"]
    if case["precision"] is not None:
        assert codec.quantum <= case["precision"]


@pytest.mark.parametrize("case", cases("encoding.json", "planner_errors"))
def test_planner_errors(case: dict[str, Any]) -> None:
    with pytest.raises(error_class(case["error"])):
        plan_codec(
            n_clients=case["n_clients"],
            clip_bound=case["clip_bound"],
            precision=case["precision"],
            bits=case["bits"],
        )


# ------------------------------------------------------------------ wire.json


def write_fields(fields: list[dict[str, Any]]) -> bytes:
    w = wire.Writer()
    for f in fields:
        t = f["type"]
        if t in ("u8", "u16", "u32", "u64"):
            getattr(w, t)(f["value"])
        elif t == "raw":
            w.raw(bytes.fromhex(f["hex"]))
        elif t == "blob":
            w.blob(bytes.fromhex(f["hex"]))
        else:
            assert t == "vector"
            w.vector(np.array(f["values"], dtype=prg.uint_dtype(f["bits"])), f["bits"])
    return w.getvalue()


def read_fields(body: memoryview, fields: list[dict[str, Any]]) -> list[Any]:
    r = wire.Reader(body)
    out: list[Any] = []
    for f in fields:
        t = f["type"]
        if t in ("u8", "u16", "u32", "u64"):
            out.append(getattr(r, t)())
        elif t == "raw":
            out.append(r.raw(f["len"] if "len" in f else len(bytes.fromhex(f["hex"]))).hex())
        elif t == "blob":
            out.append(r.blob(max_len=f.get("max_len")).hex())
        else:
            assert t == "vector"
            out.append(ints(r.vector(f["bits"], expected=f.get("expected"))))
    r.finish()
    return out


def unframe_and_read(frame: bytes, fields: list[dict[str, Any]]) -> list[Any]:
    _, body = wire.unframe(frame)
    return read_fields(body, fields)


def field_value(f: dict[str, Any]) -> Any:
    return {"raw": f.get("hex"), "blob": f.get("hex"), "vector": f.get("values")}.get(
        f["type"], f.get("value")
    )


@pytest.mark.parametrize("case", cases("wire.json", "frames"))
def test_wire_frame(case: dict[str, Any]) -> None:
    frame = wire.frame(case["msg_type"], write_fields(case["fields"]))
    assert frame.hex() == case["frame_hex"]
    msg_type, body = wire.unframe(bytes.fromhex(case["frame_hex"]))
    assert msg_type == case["msg_type"]
    assert read_fields(body, case["fields"]) == [field_value(f) for f in case["fields"]]


@pytest.mark.parametrize("case", cases("wire.json", "decode_errors"))
def test_wire_decode_errors(case: dict[str, Any]) -> None:
    with pytest.raises(error_class(case["error"])):
        unframe_and_read(bytes.fromhex(case["frame_hex"]), case["read"])


@pytest.mark.parametrize("case", cases("wire.json", "encode_errors"))
def test_wire_encode_errors(case: dict[str, Any]) -> None:
    with pytest.raises(error_class(case["error"])):
        wire.frame(case["msg_type"], write_fields(case["fields"]))


@pytest.mark.parametrize("case", cases("wire.json", "plaintext"))
def test_plaintext_frames(case: dict[str, Any]) -> None:
    bits, round_id, dim, cid = case["bits"], case["round_id"], case["dim"], case["client_id"]
    proto = PlaintextProtocol(bits=bits)
    server = proto.server(round_id=round_id, client_ids=frozenset({cid}), dim=dim)
    request = server.start()[cid]
    assert request.hex() == case["request_hex"]
    value = np.array(case["values"], dtype=prg.uint_dtype(bits))
    client = proto.client(round_id=round_id, client_id=cid, value=value)
    reply = client.handle(bytes.fromhex(case["request_hex"]))
    assert reply is not None
    assert reply.hex() == case["input_hex"]
    server.receive(cid, bytes.fromhex(case["input_hex"]))
    assert server.advance() == {}
    assert ints(server.result.aggregate) == case["values"]


# ------------------------------------------------------------------ prg.json


@pytest.mark.parametrize("case", cases("prg.json", "expand_uniform"))
def test_prg_expand_uniform(case: dict[str, Any]) -> None:
    seed, label = bytes.fromhex(case["seed_hex"]), bytes.fromhex(case["label_hex"])
    out = prg.expand_uniform(seed, case["count"], case["bits"], label=label)
    assert out.dtype == prg.uint_dtype(case["bits"])
    assert ints(out) == case["values"]
    assert prg.keystream(seed, 32, label=label).hex() == case["keystream32_hex"]


@pytest.mark.parametrize("case", cases("prg.json", "expand_uniform_long"))
def test_prg_expand_uniform_long(case: dict[str, Any]) -> None:
    seed, label = bytes.fromhex(case["seed_hex"]), bytes.fromhex(case["label_hex"])
    out = prg.expand_uniform(seed, case["count"], case["bits"], label=label)
    assert ints(out[:4]) == case["first_values"]
    assert ints(out[-4:]) == case["last_values"]
    le = out.astype(out.dtype.newbyteorder("<")).tobytes()
    assert hashlib.sha256(le).hexdigest() == case["sha256_le_hex"]


@pytest.mark.parametrize("case", cases("prg.json", "errors"))
def test_prg_errors(case: dict[str, Any]) -> None:
    with pytest.raises(error_class(case["error"])):
        prg.expand_uniform(
            bytes.fromhex(case["seed_hex"]),
            case["count"],
            case["bits"],
            label=bytes.fromhex(case["label_hex"]),
        )


@pytest.mark.parametrize("case", cases("prg.json", "csprng"))
def test_csprng(case: dict[str, Any]) -> None:
    rng = Csprng(seed=bytes.fromhex(case["seed_hex"]))
    for op in case["ops"]:
        kind = op["op"]
        if kind == "uint64":
            assert ints(rng.uint64(op["size"])) == op["expected"]
        elif kind == "uniform":
            u = rng.uniform(op["size"])
            assert u.tolist() == op["expected"]
            assert [int(v * 2.0**53) for v in u] == op["expected_times_2^53"]
        elif kind == "bytes" and "repeat" in op:
            out = b"".join(rng.bytes(op["n"]) for _ in range(op["repeat"]))
            assert hashlib.sha256(out).hexdigest() == op["expected"]
        elif kind == "bytes":
            assert rng.bytes(op["n"]).hex() == op["expected"]
        elif kind == "integers_below":
            assert ints(rng.integers_below(op["bound"], op["size"])) == op["expected"]
        else:
            assert kind == "spawn_uint64"
            assert ints(rng.spawn().uint64(op["size"])) == op["expected"]
