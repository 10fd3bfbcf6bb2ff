"""Hypothesis profiles (``dev`` default, ``ci`` bounded and deterministic, ``thorough``),
and session-wide Paillier key pairs."""

import os

import phe
import pytest
from hypothesis import HealthCheck, settings

from secfl.paillier_keys import PaillierPrivateKey, generate_paillier_keypair

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def paillier_keys() -> PaillierPrivateKey:
    """One 2048-bit Paillier key pair for the whole session (generation takes seconds);
    pass it explicitly to whatever would otherwise make its own."""
    return generate_paillier_keypair(bits=2048)


@pytest.fixture(scope="session")
def small_paillier_keys() -> PaillierPrivateKey:
    """One 1024-bit key pair for the session: tests with ``paillier_bits=1024`` (fast)."""
    return PaillierPrivateKey.from_phe(phe.generate_paillier_keypair(n_length=1024)[1])
