"""Issue 18, item 6: no secret in a repr, no pickling of secret buffers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from secfl.hazmat.prg import KeystreamBuffer


def test_the_keystream_buffer_neither_prints_nor_pickles_its_words():
    buf = KeystreamBuffer(4, np.dtype(np.uint32))
    words = buf.fill(bytes(range(32)), label=b"mask")
    text = repr(buf)
    assert all(str(int(w)) not in text for w in words)
    assert "secret" in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(buf)


def test_the_flower_node_state_repr_shows_no_seed_update_or_transcript():
    pytest.importorskip("flwr")
    from secfl.integrations._flower_client import _ClientState

    seed, value = bytes(range(1, 33)), b"\x07encoded-update\x07"
    state = _ClientState(seed=seed, value=value, transcript=[b"request-bytes"])
    text = repr(state)
    for secret in (seed, value, b"request-bytes"):
        assert repr(secret) not in text
        assert secret.hex() not in text
