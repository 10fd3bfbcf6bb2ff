"""``secfl._text.plural`` and the messages that use it."""

import pytest

from secfl import wire
from secfl._text import plural
from secfl.errors import IntegrityError


def test_plural():
    assert plural(1, "client") == "1 client"
    assert plural(0, "client") == "0 clients"
    assert plural(2, "client") == "2 clients"
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"


def test_wire_vector_count_is_singular_for_one():
    frame = (1).to_bytes(4, "big") + b"\x00" * 4
    with pytest.raises(IntegrityError, match=r"vector has 1 entry, expected 2"):
        wire.Reader(frame).vector(32, expected=2)
