"""secfl's Paillier key objects: misuse-resistant, and convertible to and from phe's."""

from __future__ import annotations

import pickle

import numpy as np
import phe
import pytest

import secfl
from secfl.errors import InvalidArgument
from secfl.identities import load_paillier_private_key, load_paillier_public_key, save_paillier_key
from secfl.paillier_keys import PaillierPrivateKey, PaillierPublicKey, as_phe_public_key
from secfl.protocols.paillier import PaillierConfig, PaillierKeyHolder, PaillierProtocol
from secfl.rng import Rng
from secfl.runtime import simulate_round


@pytest.fixture(scope="module")
def phe_pair():
    return phe.generate_paillier_keypair(n_length=1024)


def test_round_trip_with_phe_keeps_the_key(phe_pair):
    public, private = phe_pair
    ours = PaillierPrivateKey.from_phe(private)
    assert ours.public_key == PaillierPublicKey.from_phe(public)
    assert ours.to_phe().p == private.p
    assert ours.public_key.to_phe() == public
    assert ours.private_numbers() == (private.p, private.q)


def test_private_key_hides_its_primes_and_refuses_pickle(phe_pair):
    key = PaillierPrivateKey.from_phe(phe_pair[1])
    p, _q = key.private_numbers()
    assert str(p) not in repr(key)
    assert hex(p)[2:] not in repr(key)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(key)
    assert "fingerprint" in repr(key.public_key)


def test_bad_keys_are_refused(phe_pair):
    public, private = phe_pair
    with pytest.raises(InvalidArgument, match="odd modulus"):
        PaillierPublicKey(1 << 2047)
    with pytest.raises(InvalidArgument, match="p \\* q"):
        PaillierPrivateKey(PaillierPublicKey.from_phe(public), private.p, private.p)
    with pytest.raises(InvalidArgument, match="one of"):
        secfl.generate_paillier_keypair(bits=1024)
    with pytest.raises(InvalidArgument, match="public key"):
        as_phe_public_key(public.n)  # type: ignore[arg-type]


def test_secfl_and_phe_keys_both_run_a_round(phe_pair):
    public, private = phe_pair
    ours = PaillierPrivateKey.from_phe(private)
    inputs = {c: np.full(6, c, dtype=np.uint16) for c in (1, 2, 3)}
    for pub, priv in ((ours.public_key, ours), (public, private)):
        cfg = PaillierConfig(public_key=pub, bits=16, n_clients=3)
        proto = PaillierProtocol(cfg, key_holder=PaillierKeyHolder(cfg, priv), rng=Rng())
        report = simulate_round(proto, inputs)
        assert report.correct


def test_key_files_hold_secfl_keys(tmp_path, phe_pair):
    key = PaillierPrivateKey.from_phe(phe_pair[1])
    save_paillier_key(key, tmp_path / "k", tmp_path / "k.pub")
    loaded = load_paillier_private_key(tmp_path / "k")
    assert isinstance(loaded, PaillierPrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    assert load_paillier_public_key(tmp_path / "k.pub") == key.public_key
