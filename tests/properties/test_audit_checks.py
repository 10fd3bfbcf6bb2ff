"""The audit's forgery, randomness, noise and bounds checks pass on the real code.

The same functions back the `client-forgery`, `request-forgery`, `fresh-randomness`,
`dp-noise` and `parameter-bounds` properties of `secfl audit`; here they run on a fixed,
small set of cases so that the suite alone notices a protection they cover going missing.
"""

import hashlib

import pytest

from secfl.audit import bounds, forgery, randomness

_CASES = [
    (protocol, kind, which, n, active)
    for protocol, kinds in forgery.FORGERIES.items()
    for kind in kinds
    for which, n, active in ((0, 4, False), (1, 5, True), (2, 4, False), (3, 6, False))
]


@pytest.mark.parametrize(("protocol", "kind", "which", "n", "active"), _CASES)
def test_servers_refuse_forged_client_messages(protocol, kind, which, n, active):
    seed = hashlib.sha256(f"{protocol}/{kind}/{which}".encode()).digest()
    forgery.check_client_forgery(protocol, kind, seed=seed, which=which, n=n, active=active)


@pytest.mark.parametrize(
    ("protocol", "flaw"),
    [(p, f) for p, flaws in forgery.REQUEST_FLAWS.items() for f in flaws],
)
@pytest.mark.parametrize("delta", [-1, 1])
def test_clients_refuse_forged_requests(protocol, flaw, delta):
    forgery.check_request_forgery(protocol, flaw, seed=bytes(32), delta=delta)


@pytest.mark.parametrize("kind", bounds.KINDS)
def test_configurations_are_accepted_exactly_within_the_bounds(kind):
    for params in bounds.grid(kind):
        bounds.check_bounds(kind, params)


@pytest.mark.parametrize("protocol", ["secagg", "secagg+", "paillier"])
def test_randomness_is_fresh_across_clients_and_rounds(protocol):
    randomness.check_fresh_randomness(protocol, trials=2, seed=0)


def test_dp_noise_is_present_independent_and_as_accounted():
    randomness.check_dp_noise(trials=2, seed=0)
