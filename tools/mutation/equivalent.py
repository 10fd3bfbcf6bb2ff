"""Mutants argued to be equivalent: no observable effect on what any party learns or computes.

Each entry is a mutant id (see :mod:`tools.mutation.mutants`) and the one-line argument. A
mutant goes here only when no test or audit property could tell it from the original, under
the threat model of its spec; a mutant the audit merely misses is reported as missed.
"""

_FINISH = (
    "the key holder's answer is checked for the round on arrival (PaillierServer.receive), so "
    "_finish only ever parses an answer of this round: the second check is defence in depth"
)

EQUIVALENT: dict[str, str] = {
    "secfl/dp/mechanisms.py::plan_distributed::guard#0": (
        "both branches after the loop raise EncodingOverflow; only the message differs"
    ),
    "secfl/hazmat/aead.py::unseal::guard-bound#0": (
        "refuses only an envelope of exactly OVERHEAD bytes (an empty plaintext), which "
        "secfl never seals: a SecAgg envelope carries the 8-byte header and two shares"
    ),
    "secfl/hazmat/paillier.py::PackingLayout.__post_init__::guard#0": (
        "with need > 64 every slot width fails either slot_bits < need or slot_bits > 64, "
        "both EncodingOverflow"
    ),
    "secfl/hazmat/paillier.py::PackingLayout.plan::guard#1": (
        "the layout then has slots_per_ciphertext = 0, which __post_init__ refuses "
        "(InvalidArgument instead of EncodingOverflow: only the error class differs)"
    ),
    "secfl/hazmat/paillier.py::_check_structure::guard#0": (
        "PaillierKeyHolder.handle refuses n_summed > n_clients before it parses, and the "
        "aggregator parses single inputs (n_summed = 1)"
    ),
    "secfl/hazmat/paillier.py::_shift::guard-or#1": (
        "PaillierClient checks the same value_bits range (_centred) before it encrypts"
    ),
    "secfl/hazmat/paillier.py::encrypt_vector::drop-call#0": (
        "the layout a client encrypts with is PaillierConfig.layout, planned for this very key"
    ),
    "secfl/protocols/paillier.py::PaillierServer._encrypted_sum::guard-or#0": (
        "self._sum is None only while no input arrived, and then len(received) = 0 < "
        "min_clients (>= 1) raises the same InsufficientSurvivors"
    ),
    "secfl/protocols/paillier.py::PaillierServer._finish::guard#0": (
        "without an answer, DecryptedSum.from_bytes(None) raises InvalidArgument, a SecflError: "
        "advance() aborts the round the same way, only the error class differs"
    ),
    "secfl/protocols/paillier.py::PaillierServer._finish::guard#1": _FINISH,
    "secfl/protocols/paillier.py::PaillierServer._finish::guard-bound#0": _FINISH,
    "secfl/protocols/paillier.py::PaillierServer._finish::guard-bound#1": _FINISH,
    "secfl/protocols/plaintext.py::_Client._respond::drop-call#0": (
        "ClientSession.handle refuses every request once the client is done or aborted, and "
        "INPUT is the plaintext client's only other phase"
    ),
    "secfl/protocols/secagg.py::SecAggClient._on_shares::guard#2": (
        "with fewer than t holders of b_u the server can never rebuild it: the round aborts at "
        "unmasking (InsufficientSurvivors) instead of at masking, and nothing more is revealed"
    ),
    "secfl/protocols/secagg.py::SecAggServer._recv_share_keys::guard-bound#0": (
        "only the too-many case is lost, and ShareKeys.from_bytes(max_entries=len(expected)) "
        "already refuses more envelopes than the client has neighbours"
    ),
    "secfl/pipeline.py::Pipeline.__init__::rng-zero#0": (
        "the rotation seed is public (every party builds the same rotation) and the rotation is "
        "orthogonal for any seed: the L2 sensitivity, hence the DP guarantee, is unchanged; a "
        "fixed seed only lets an adversary align an input with the rotation (accuracy)"
    ),
    "secfl/protocols/plaintext.py::_Server.receive::drop-call#0": (
        "INPUT is the plaintext server's only collecting phase; after advance() the result is "
        "fixed and _inputs discarded, so a late input is stored where nothing reads it again"
    ),
}
