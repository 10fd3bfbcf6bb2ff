import pickle

import numpy as np
import pytest

from secfl import wire
from secfl.errors import (
    InsufficientSurvivors,
    IntegrityError,
    InvalidArgument,
    LocalProtocolError,
    ProtocolAbort,
)
from secfl.protocols.plaintext import MSG_INPUT, PlaintextProtocol

P = PlaintextProtocol(bits=16)


def vec(*xs):
    return np.array(xs, dtype=np.uint16)


def run(inputs, *, silent=()):
    server = P.server(round_id=3, client_ids=frozenset(inputs), dim=2)
    clients = {c: P.client(round_id=3, client_id=c, value=v) for c, v in inputs.items()}
    for cid, req in server.start().items():
        if cid not in silent:
            server.receive(cid, clients[cid].handle(req))
    assert server.advance() == {}
    return server.result


def test_sum_wraps_mod_2k():
    res = run({1: vec(65535, 1), 2: vec(2, 3)})
    assert res.aggregate.tolist() == [1, 4]
    assert res.survivors == {1, 2}
    assert res.dropped == frozenset()


def test_dropout_excluded():
    res = run({1: vec(1, 1), 2: vec(2, 2), 3: vec(4, 4)}, silent={2})
    assert res.aggregate.tolist() == [5, 5]
    assert res.dropped == {2}


def test_all_dropped_aborts():
    server = P.server(round_id=1, client_ids=frozenset({1}), dim=2)
    server.start()
    with pytest.raises(InsufficientSurvivors):
        server.advance()


def test_server_rejects_bad_messages_and_keeps_state():
    server = P.server(round_id=1, client_ids=frozenset({1, 2}), dim=2)
    req = server.start()
    good = P.client(round_id=1, client_id=1, value=vec(1, 2)).handle(req[1])
    with pytest.raises(ProtocolAbort, match="not part"):
        server.receive(9, good)
    with pytest.raises(IntegrityError):
        server.receive(1, good[:-1])
    wrong_type = wire.frame(0x7F, bytes(good[8:]))
    with pytest.raises(IntegrityError, match="expected an input"):
        server.receive(1, wrong_type)
    other_round = wire.frame(MSG_INPUT, wire.Writer().u64(2).vector(vec(1, 2), 16).getvalue())
    with pytest.raises(ProtocolAbort, match="another round"):
        server.receive(1, other_round)
    wrong_dim = wire.frame(MSG_INPUT, wire.Writer().u64(1).vector(vec(1), 16).getvalue())
    with pytest.raises(IntegrityError, match="expected 2"):
        server.receive(1, wrong_dim)
    server.receive(1, good)
    with pytest.raises(ProtocolAbort, match="already"):
        server.receive(1, good)
    server.advance()
    assert server.result.aggregate.tolist() == [1, 2]
    with pytest.raises(ProtocolAbort):
        server.receive(2, good)


def test_client_refuses_mismatched_request_and_stays_closed():
    c = P.client(round_id=1, client_id=1, value=vec(1, 2))
    bad = wire.frame(0x01, wire.Writer().u64(1).u32(3).u8(16).getvalue())
    with pytest.raises(ProtocolAbort, match="dim 3"):
        c.handle(bad)
    good = wire.frame(0x01, wire.Writer().u64(1).u32(2).u8(16).getvalue())
    with pytest.raises(ProtocolAbort):
        c.handle(good)


def test_client_answers_once():
    c = P.client(round_id=1, client_id=1, value=vec(1, 2))
    good = wire.frame(0x01, wire.Writer().u64(1).u32(2).u8(16).getvalue())
    assert c.handle(good) is not None
    with pytest.raises(ProtocolAbort):
        c.handle(good)


def test_local_misuse_is_not_a_remote_abort():
    """Calling a session out of order is the caller's bug (LocalProtocolError), distinct
    from a peer's misbehaviour (ProtocolAbort)."""
    server = P.server(round_id=1, client_ids=frozenset({1}), dim=2)
    with pytest.raises(LocalProtocolError, match="before the round is done"):
        _ = server.result
    with pytest.raises(LocalProtocolError, match="advance"):
        server.advance()
    server.start()
    with pytest.raises(LocalProtocolError, match="start"):
        server.start()
    assert not issubclass(LocalProtocolError, ProtocolAbort)


def test_input_validation():
    with pytest.raises(InvalidArgument, match="uint16"):
        P.client(round_id=1, client_id=1, value=np.array([1, 2], dtype=np.uint32))
    with pytest.raises(InvalidArgument):
        P.server(round_id=1, client_ids=frozenset({0}), dim=2)
    with pytest.raises(InvalidArgument):
        P.server(round_id=1, client_ids=frozenset(), dim=2)
    with pytest.raises(InvalidArgument):
        P.server(round_id=1, client_ids=frozenset({1}), dim=0)
    with pytest.raises(InvalidArgument):
        PlaintextProtocol(bits=65)


def test_sessions_refuse_pickle():
    c = P.client(round_id=1, client_id=1, value=vec(1, 2))
    with pytest.raises(TypeError):
        pickle.dumps(c)
    assert "1, 2" not in repr(c)
