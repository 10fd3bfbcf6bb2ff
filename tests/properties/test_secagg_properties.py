"""SecAgg(+) sums exactly for any inputs and any dropout schedule the threshold allows."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from secfl.hazmat.rng import Csprng
from secfl.protocols.secagg import SecAggConfig, SecAggProtocol
from secfl.runtime.simulator import simulate_round


@st.composite
def rounds(draw):
    n = draw(st.integers(3, 12))
    holders = n - 1
    sparse = draw(st.booleans()) and n >= 6
    degree = draw(st.sampled_from([d for d in (2, 4) if d < n - 1])) if sparse else None
    holders = degree if degree is not None else holders
    t = draw(st.integers(holders // 2 + 1, holders))
    bits = draw(st.sampled_from([8, 16, 20, 32, 64]))
    phases = ("advertise", "share", "mask", "unmask")
    drops = draw(st.dictionaries(st.integers(1, n), st.sampled_from(phases), max_size=n))
    seed = draw(st.binary(min_size=32, max_size=32))
    d = draw(st.integers(1, 6))
    return n, t, degree, bits, drops, seed, d


@settings(max_examples=60)
@given(rounds())
def test_sum_is_exact_or_round_aborts_cleanly(case):
    n, t, degree, bits, drops, seed, d = case
    cfg = SecAggConfig(bits=bits, threshold=t, n_clients=n, degree=degree)
    rng = Csprng(seed=seed)
    mask = np.uint64(2**64 - 1) if bits == 64 else np.uint64((1 << bits) - 1)
    from secfl.hazmat.prg import uint_dtype

    inputs = {c: (rng.uint64(d) & mask).astype(uint_dtype(bits)) for c in range(1, n + 1)}
    rep = simulate_round(SecAggProtocol(cfg, rng=rng.spawn()), inputs, dropouts=drops)
    # With an honest server a client only ever refuses because too few of its neighbours
    # are left to hold its shares; it then counts as a dropout.
    assert all("InsufficientSurvivors" in why for why in rep.refusals.values()), rep.refusals
    if rep.aborted is None:
        assert rep.correct
        # everyone who reached the masked-input phase is in the sum
        late = {c for c, p in drops.items() if p == "unmask"}
        assert rep.result is not None
        assert late <= rep.result.survivors
    else:
        assert "InsufficientSurvivors" in rep.aborted
        # an abort is only allowed when dropouts really left too few parties
        assert len(drops) >= 1
