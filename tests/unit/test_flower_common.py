"""``one_line_reason``: what a round's ``dropped`` map says about a node's error reply."""

from __future__ import annotations

import traceback

import pytest

pytest.importorskip("flwr", reason="the flower extra (flwr) is not installed")

from secfl.errors import InvalidArgument
from secfl.integrations._flower_common import one_line_reason

# The reason of an error reply from Flower's simulation engine (flwr 1.42, Ray 2.55) for a
# ClientApp that raised ``RuntimeError("boom from partition 1")``: the vce worker's
# ``str(type(ex)) + ":<'" + str(ex) + "'>"`` around Ray's chained traceback, in colour.
RAY_REASON = (
    "<class 'ray.exceptions.RayTaskError(ClientAppException)'>:<'\x1b[36mray::ClientAppActor"
    ".run()\x1b[39m (pid=32284, ip=192.0.2.2, actor_id=9745765f703fc808604450c701000000, "
    "repr=<flwr.simulation.ray_transport.ray_actor.ClientAppActor object at 0x7fb2a26b8090>)"
    "\n                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/work/wtB/.venv/lib/python3.11/site-packages/flwr/clientapp/client_app.py", '
    "line 161, in __call__\n"
    "    return self._registered_funcs[full_name](message, context)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/tmp/simexp/exp1.py", line 12, in train\n'
    '    raise RuntimeError("boom from partition 1")\n'
    "RuntimeError: boom from partition 1\n\n"
    "The above exception was the direct cause of the following exception:\n\n"
    "\x1b[36mray::ClientAppActor.run()\x1b[39m (pid=32284, ip=192.0.2.2, actor_id="
    "9745765f703fc808604450c701000000, repr=<flwr.simulation.ray_transport.ray_actor."
    "ClientAppActor object at 0x7fb2a26b8090>)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/work/wtB/.venv/lib/python3.11/site-packages/flwr/simulation/ray_transport/'
    'ray_actor.py", line 65, in run\n'
    "    raise ClientAppException(str(ex)) from ex\n"
    "flwr.clientapp.client_app.ClientAppException: \n"
    "Exception ClientAppException occurred. Message: boom from partition 1'>"
)


def test_a_ray_traceback_becomes_its_root_exception_line():
    assert one_line_reason(RAY_REASON) == "RuntimeError: boom from partition 1"


def test_flowers_one_line_wording_is_reworded():
    # What a SuperNode's ClientApp process replies on the deployment engine.
    assert one_line_reason("<class 'ValueError'>:<'bad  shape\n(3,)'>") == (
        "ValueError: bad shape (3,)"
    )
    assert one_line_reason("<class 'KeyError'>:<''>") == "KeyError"


def test_other_text_is_put_on_one_line():
    assert one_line_reason("secfl refused: protocol 'plain'") == "secfl refused: protocol 'plain'"
    assert one_line_reason("first\n\x1b[31msecond  line\x1b[0m\n\n  \n") == "first second line"
    assert one_line_reason("") == ""


def test_long_reasons_are_cut_with_an_ellipsis():
    reason = one_line_reason("x" * 500, limit=50)
    assert len(reason) == 50
    assert reason.endswith("\u2026")
    assert one_line_reason("y" * 50, limit=50) == "y" * 50


def test_a_limit_below_one_is_refused():
    with pytest.raises(InvalidArgument, match="limit"):
        one_line_reason("boom", limit=0)


def test_a_python_traceback_keeps_its_first_exception_line():
    def fail() -> None:
        try:
            {}["weights"]
        except KeyError as e:
            raise ValueError("the model has no weights") from e

    with pytest.raises(ValueError, match="no weights") as info:
        fail()
    text = "".join(traceback.format_exception(info.value))
    assert one_line_reason(text) == "KeyError: 'weights'"
    cut = 'Traceback (most recent call last):\n  File "app.py", line 3, in train\n    step()\n'
    assert one_line_reason(cut) == "step()"  # cut short: its last line stays
