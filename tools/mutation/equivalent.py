"""Mutants argued to be equivalent: no observable effect on what any party learns or computes.

Each entry is a mutant id (see :mod:`tools.mutation.mutants`) and the one-line argument. A
mutant goes here only when no test or audit property could tell it from the original, under
the threat model of its spec; a mutant the audit merely misses is reported as missed.
"""

_FINISH = (
    "the key holder's answer is checked for the round on arrival (PaillierServer.receive), so "
    "_finish only ever parses an answer of this round: the second check is defence in depth"
)

_PT = "secfl/protocols/paillier_threshold.py"
_PTM = "secfl/protocols/paillier_threshold_messages.py"
_TP = "secfl/hazmat/threshold_paillier.py"
_SET_SIZE = "len(set(x)) <= len(x) always, so `<` fires exactly when `!=` does"
_IDENTICAL = (
    "two identical inputs under two ids need both ids' signatures over one digest; honest "
    "clients sign only fresh encryptions, so the second signer colludes, and a colluder may "
    "sign a re-randomised copy instead (section 10.2, limit 2), which no check can tell from "
    "a fresh input: the aggregator learns the same either way"
)
_HEDGED = (
    "the proof nonce is SHAKE-256 of (the share, the statement, the generator's bytes): with "
    "a fixed or zero generator it is still secret and never repeats for two statements (a "
    "deterministic nonce, as in RFC 6979), and a repeated statement gets the same proof"
)
_READER = (
    "the wire reader refuses a body shorter than count entries and finish() refuses trailing "
    "bytes (both IntegrityError): the length check only says it first"
)
_PARTIAL_LENGTH = (
    "the aggregator parses the answer frame with the exact partial_bytes(dim) size first, "
    "so a body of another length never reaches this check"
)
_INDEX = (
    "PartialDecryption.from_bytes, the only way a party gets one, yields an int index in "
    "1..m; the aggregator also refuses an index other than its sender's"
)
_COUNT = (
    "the aggregator parses every partial with count = the number of ciphertexts of its own "
    "product, so the counts always match"
)
_COMBINED = (
    "partials whose proofs verified always combine to 1 mod n (the check is marked "
    "'pragma: no cover' for that reason): no answer reaches it otherwise"
)


_SA = "secfl/protocols/secagg.py"
_SHAMIR_BOUND = (
    "holders > p - 1 (16.7 million) needs t > holders / 2 > MAX_THRESHOLD (32767) to pass the "
    "security bounds that follow, so such a configuration is refused anyway (only the message "
    "differs)"
)
_FEW_MEMBERS = (
    "on the complete graph the neighbours are exactly members - 1 (checked in between), so "
    "members < t + 1 iff fewer than t neighbours, and the other check refuses it with the "
    "same InsufficientSurvivors; on a sparse graph members > degree + 1 >= t + 1"
)
_HEADER = (
    "an envelope opens only under K_uv with the associated data of (round, pair, sender u), "
    "so it was sealed by u for v; the plaintext header repeats that, and a sender that writes "
    "another header into its own envelope changes nothing else"
)

_REPEATED_COMPLAINT = (
    "a CHECK naming one sender twice: each complaint is judged alone with the same outcome, "
    "and the server keeps one exclusion (or refuses the CHECK) either way"
)

_COUNT_RULES = (
    "on the complete graph rule 5 (total = listed + 1) refuses every count this rule would; on "
    "a sparse graph the client trusts the server's count of U3 (secagg-v2 section 8: SecAgg+ "
    "is claimed against an honest-but-curious server only)"
)
_TOTAL = (
    "the count only feeds the survivors floor: in ACTIVE mode the floor is enforced again on "
    "the consistency signatures (at least survivors_floor signers of the same list), and in "
    "HBC mode the server is trusted to follow the protocol (secagg-v1 section 12)"
)

_ENVELOPE_COUNT = (
    "the parser refuses more envelopes than neighbours (max_entries), and fewer cannot address "
    "every neighbour, so the addressee check that follows refuses them"
)

_ALL_ZERO = (
    "an all-zero X25519 output comes only from a point of small order, and KexPublicKey"
    ".from_bytes (the only way a party gets a peer key) refuses every small-order encoding"
)

_KEY_LAYOUT = (
    "every protocol plans its layout from the key it uses (PaillierConfig.layout: "
    "modulus_bits = n.bit_length()), so the layout always fits that key; the check guards "
    "direct hazmat callers"
)

_CLIENT_RANGE = (
    "the Paillier clients check the same value_bits range (_centred, EncodingOverflow) "
    "before they encrypt"
)
_SAME_LAYOUT = (
    "every vector a party builds or parses uses its config's key, layout and count, so "
    "vectors are always compatible"
)

_CT_LENGTH = (
    "every caller passes ciphertext bytes whose length its message parser or its own check "
    "already fixed to n_ct x width (input frames of a fixed size, the key holder's check)"
)
_SHARE_FIELD = (
    "the server reconstructs only from UNMASK records, parsed as uint32 and refused when an "
    "element is >= p (secagg_messages), so the field check repeats the parser's"
)

_WRONG_SHARE = (
    "a reconstructed chunk out of range means a holder revealed a wrong share: for s^SK the "
    "server's check against s^PK refuses the result anyway, and a wrong share of b_u is a "
    "malicious client changing the sum, which no spec claims to prevent (input correctness "
    "is out of scope; the check catches only most such shares)"
)

_AUDIT_ONLY = (
    "since secagg-v2 no party parses shares with shares_from_bytes (clients check their held "
    "shares with numpy, the server parses UNMASK records with their own field check); only "
    "the audit's readers call it"
)
_SIG_LENGTH = (
    "every signature a party verifies comes from a fixed 64-byte field of its message, and "
    "Ed25519 verification refuses any other length with the same IntegrityError"
)

_COUNT_LIMIT = (
    "the reader checks the length before it reads, so a count beyond the bytes present is "
    "refused without an allocation; a count the bytes do cover is refused by the caller's "
    "own count rule (SHARES senders, UNMASK holds, SHARE_KEYS addressees, signers, survivor "
    "rule 2)"
)
_KEYS_ORDER = (
    "the client keys its neighbours by id and checks each point against the ranks of the "
    "ids: an unsorted list changes nothing, and a repeated id shifts the ranks, which the "
    "point check refuses (on a sparse graph the honest-but-curious server sends none)"
)

_SPARSE_POINTS = (
    "only on a sparse graph, whose server the client trusts for its neighbourhood and points "
    "(SecAgg+ is honest-but-curious only, secagg-v2 section 8): an honest server's points "
    "are U1 ranks, distinct by construction"
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
    "secfl/protocols/secagg.py::SecAggClient._masked_input::guard#0": (
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
    f"{_PT}::ThresholdPaillierConfig.__post_init__::guard-bound#0": _SET_SIZE,
    f"{_PT}::ThresholdPaillierKeyHolder.handle::guard-bound#2": _SET_SIZE,
    f"{_PT}::ThresholdPaillierKeyHolder.handle::guard#0": (
        "with dim = 0 every input is the empty string, so the at least min_clients >= 2 inputs "
        "have equal digests and refusal 4 (identical inputs) refuses the request the same way"
    ),
    f"{_PT}::ThresholdPaillierKeyHolder.handle::guard#3": _IDENTICAL,
    f"{_PT}::ThresholdPaillierKeyHolder.handle::guard-bound#3": _IDENTICAL,
    f"{_PT}::ThresholdPaillierKeyHolder.handle::rng-fixed#0": _HEDGED,
    f"{_TP}::_nonce::rng-zero#0": _HEDGED,
    f"{_PT}::ThresholdPaillierClient._respond::drop-call#0": (
        "ClientSession.handle refuses every request once the client is done or aborted, and INPUT "
        "is the threshold client's only phase"
    ),
    f"{_PT}::ThresholdPaillierServer.receive::guard-or#0": (
        "in phase input no holder was asked, so an answer is still refused; once the round has "
        "ended its result is fixed and nothing reads _answers again"
    ),
    f"{_PT}::ThresholdPaillierServer.receive::guard-or#1": (
        "an answer from a holder not asked is stored and screened like any other: its proof must "
        "verify against this round's product, so it decrypts the same sum or names its sender"
    ),
    f"{_PT}::ThresholdPaillierServer.receive::guard-bound#1": (
        "the signature check that follows verifies over this session's round id, so an input "
        "signed for an older round fails it (IntegrityError instead of ProtocolAbort)"
    ),
    f"{_PT}::ThresholdPaillierServer._request_partials::guard#0": (
        "every key holder refuses fewer than min_clients inputs itself (section 8.3, refusal 3), "
        "so nothing is decrypted and the round still aborts, one round trip later "
        "(InsufficientSurvivors; with no input at all sum_vectors refuses first)"
    ),
    f"{_PTM}::DecryptRequest.from_bytes::guard#0": (
        "more than n_clients inputs reach sum_vectors, which refuses them (EncodingOverflow) "
        "before anything is decrypted; the round id is then spent, as a lying aggregator can "
        "already do with any signed set (an honest one never asks more than n_clients)"
    ),
    f"{_PTM}::DecryptRequest.from_bytes::guard#1": _READER,
    f"{_PTM}::DecryptRequest.from_bytes::guard-bound#1": _READER,
    f"{_PTM}::DecryptRequest.from_bytes::guard-bound#2": _READER,
    f"{_TP}::PartialDecryption.from_bytes::guard#0": _PARTIAL_LENGTH,
    f"{_TP}::PartialDecryption.from_bytes::guard-bound#0": _PARTIAL_LENGTH,
    f"{_TP}::PartialDecryption.from_bytes::guard-bound#1": _PARTIAL_LENGTH,
    f"{_TP}::PartialDecryption.from_bytes::guard#1": (
        "the aggregator refuses an answer whose index is not its sender's (holders 1..m) right "
        "after parsing, and verify_partial checks 1..m again"
    ),
    f"{_TP}::_check_units::guard-or#0": (
        "values come from n^2-wide fields and 0 fails the gcd test; a value v >= n^2 is used only "
        "in powers and products mod n^2, so it verifies and combines exactly as v mod n^2: a "
        "holder gains nothing by sending one"
    ),
    f"{_TP}::_check_units::guard-bound#1": (
        "gcd(value, n) >= 1 for every value (and gcd(0, n) = n), so `> 1` fires exactly when `!= "
        "1` does"
    ),
    f"{_TP}::verify_partial::guard#0": _INDEX,
    f"{_TP}::verify_partial::guard-or#0": _INDEX,
    f"{_TP}::verify_partial::guard-or#1": _INDEX,
    f"{_TP}::verify_partial::guard-or#2": _INDEX,
    f"{_TP}::verify_partial::guard#1": _COUNT,
    f"{_TP}::verify_partial::guard-bound#0": _COUNT,
    f"{_TP}::verify_partial::guard-bound#1": _COUNT,
    f"{_TP}::verify_partial::guard#2": (
        "the challenge is parsed from a CHALLENGE_BITS-wide field, so it is always in range"
    ),
    f"{_TP}::verify_partial::guard#3": (
        "the response is parsed from a response_bytes-wide field (no slow exponent); an "
        "out-of-range z verifies only if z minus an in-range response is a multiple of the group's"
        " order, which only the dealer (who knows the factorization) can compute"
    ),
    f"{_TP}::combine_verified::guard#1": _COMBINED,
    f"{_TP}::combine_verified::guard-bound#1": _COMBINED,
    f"{_TP}::combine_verified::guard-bound#2": _COMBINED,
    f"{_SA}::SecAggConfig.__post_init__::guard#1": (
        "with n_clients <= 1 there is no share holder, so the threshold check "
        "(1 <= t <= holders) refuses every such configuration"
    ),
    f"{_SA}::SecAggConfig.__post_init__::guard-bound#2": _SHAMIR_BOUND,
    f"{_SA}::SecAggConfig.__post_init__::guard-or#0": _SHAMIR_BOUND,
    f"{_SA}::SecAggClient._on_keys::guard#0": _FEW_MEMBERS,
    f"{_SA}::SecAggClient._on_keys::guard#7": _FEW_MEMBERS,
    f"{_SA}::SecAggClient._on_keys::unbind#2": (
        "c_u^SK is drawn fresh each round, so channel keys never repeat across rounds; the "
        "round id in the KDF info only separates domains (envelopes bind the round in their "
        "associated data as well)"
    ),
    f"{_SA}::SecAggClient._check_sender::guard-or#1": (
        "a second envelope from u opens only if u sealed it for v this round (K_uv, the "
        "associated data), i.e. it carries u's own shares, which u may choose anyway: keeping "
        "the last one changes nothing for anyone else"
    ),
    f"{_SA}::_open_envelope::guard#1": _HEADER,
    f"{_SA}::_open_envelope::guard-bound#2": _HEADER,
    f"{_SA}::_open_envelope::guard-bound#3": _HEADER,
    "secfl/protocols/secagg_messages.py::Check.from_bytes::guard#0": _REPEATED_COMPLAINT,
    "secfl/protocols/secagg_messages.py::Check.from_bytes::guard-bound#0": _REPEATED_COMPLAINT,
    "secfl/hazmat/kex.py::KexPublicKey.from_bytes::guard-bound#0": (
        "u = p is the one encoding that u > p lets through where u >= p does not; it is 0 mod "
        "p, which the twist check refuses (Legendre symbol 0)"
    ),
    "secfl/hazmat/kex.py::KexPublicKey.from_bytes::guard-bound#1": (
        "the Legendre symbol of u^3 + A u^2 + u is 0 only at u = 0 (small order, refused "
        "just before; u^2 + A u + 1 has no root mod p), so < 1 and != 1 agree"
    ),
    f"{_SA}::SecAggClient._on_keys::guard-or#1": (
        "a neighbour whose two keys are one key to X25519: u's channel and mask secrets with "
        "it still come from u's own two different keys, so nothing is shared or revealed "
        "(v2 accepted it; the server refuses such an advertisement, `doubled-key`)"
    ),
    f"{_SA}::SecAggClient._check_survivors::guard#1": _COUNT_RULES,
    f"{_SA}::SecAggClient._check_survivors::guard-or#0": _COUNT_RULES,
    f"{_SA}::SecAggClient._check_survivors::guard-or#1": _COUNT_RULES,
    f"{_SA}::SecAggClient._check_survivors::guard#2": (
        "a neighbour whose shares arrived is a neighbour (held is a subset of N(u)), so the "
        "next rule (listed within held) refuses every list this one would"
    ),
    f"{_SA}::SecAggClient._check_survivors::guard#4": _TOTAL,
    f"{_SA}::SecAggClient._check_survivors::guard-bound#3": _TOTAL,
    f"{_SA}::SecAggClient._check_survivors::guard-bound#4": (
        "total < listed + 1 is the second half of rule 2, which refuses it first"
    ),
    f"{_SA}::SecAggClient._on_unmask_request::guard-or#0": (
        "a client signs only lists that contain itself (it adds its own id), so a signature "
        "from a client outside this list never verifies over it"
    ),
    f"{_SA}::SecAggClient._on_unmask_request::guard-or#1": (
        "signers is a set, so a repeated signature never adds to the count: the floor check "
        "refuses a request that needed the repeat (InsufficientSurvivors instead of "
        "ProtocolAbort), and a repeat on top of enough distinct signers changes nothing"
    ),
    f"{_SA}::SecAggServer._recv_advertise::guard#0": (
        "an active server is built with registered clients only (SecAggServer refuses others "
        "at construction) and receive() refuses an uninvited sender first"
    ),
    f"{_SA}::SecAggClient._on_unmask_request::guard-or#2": (
        "every survivor passed the registry check at KEYS, so an unregistered id is refused "
        "as a non-survivor first"
    ),
    f"{_SA}::SecAggServer._recv_share_keys::guard#0": _ENVELOPE_COUNT,
    f"{_SA}::SecAggServer._recv_share_keys::guard-bound#1": _ENVELOPE_COUNT,
    "secfl/protocols/paillier.py::PaillierClient._respond::drop-call#0": (
        "ClientSession.handle refuses every request once the client is done or aborted, and "
        "INPUT is the Paillier client's only phase"
    ),
    "secfl/protocols/paillier.py::_centred::guard#0": (
        "encrypt_vector shifts the values with the same value_bits range check (_shift, "
        "EncodingOverflow) before anything is encrypted"
    ),
    "secfl/hazmat/kex.py::derive::guard#0": _ALL_ZERO,
    "secfl/hazmat/kex.py::KexPrivateKey.exchange::swallow#0": _ALL_ZERO,
    "secfl/hazmat/kex.py::KexPublicKey.from_bytes::swallow#0": (
        "from_public_bytes fails only on a wrong length, which the length check refuses first "
        "(the handler is unreachable: 'pragma: no cover')"
    ),
    "secfl/hazmat/aead.py::unseal::guard#0": (
        "every envelope a party unseals is a fixed-size SHARES record (124 bytes, secagg-v1 "
        "4.3), so a shorter one never reaches unseal"
    ),
    "secfl/hazmat/paillier.py::PackingLayout.plan::guard#0": (
        "the layout is then built with slot_bits > 64, which PackingLayout.__post_init__ "
        "refuses with the same EncodingOverflow"
    ),
    "secfl/dp/rotation.py::RandomizedHadamard.signs::rng-zero#0": (
        "the rotation's signs are public (derived from the public seed) and the rotation is "
        "orthogonal for any signs: the L2 sensitivity, hence the DP guarantee, is unchanged"
    ),
    "secfl/hazmat/paillier.py::_check_layout_fits::guard#0": _KEY_LAYOUT,
    "secfl/hazmat/paillier.py::_check_structure::drop-call#0": _KEY_LAYOUT,
    "secfl/hazmat/paillier.py::_check_ciphertext::guard-bound#1": (
        "gcd(c, n) >= 1 for every c in (0, n^2) (checked just before), so `> 1` fires exactly "
        "when `!= 1` does"
    ),
    "secfl/hazmat/paillier.py::_shift::guard#0": _CLIENT_RANGE,
    "secfl/hazmat/paillier.py::_shift::guard-or#0": _CLIENT_RANGE,
    "secfl/hazmat/paillier.py::sum_vectors::drop-call#0": _SAME_LAYOUT,
    "secfl/hazmat/paillier.py::sum_vectors::guard#0": (
        "every caller sums at most n_clients vectors: an aggregator at most its invited "
        "clients (validate_round), a threshold key holder at most n_clients inputs (its "
        "request parser, refusal 1)"
    ),
    "secfl/hazmat/paillier.py::decode_plaintexts::guard-or#0": (
        "decrypted plaintexts (CRT or threshold) lie in [0, n): never negative"
    ),
    "secfl/hazmat/paillier.py::ciphertexts_from_bytes::guard#0": _CT_LENGTH,
    "secfl/hazmat/paillier.py::ciphertexts_from_bytes::guard-bound#0": _CT_LENGTH,
    "secfl/hazmat/paillier.py::ciphertexts_from_bytes::guard-bound#1": _CT_LENGTH,
    "secfl/hazmat/shamir.py::_check_field::guard#0": _SHARE_FIELD,
    "secfl/hazmat/shamir.py::_check_field::guard-bound#1": _SHARE_FIELD,
    "secfl/hazmat/paillier.py::decrypt_int::drop-call#0": (
        "no protocol party calls decrypt_int (a helper for phe interoperability)"
    ),
    "secfl/hazmat/shamir.py::_field_to_secrets::guard#0": _WRONG_SHARE,
    "secfl/hazmat/shamir.py::_field_to_secrets::guard-or#0": _WRONG_SHARE,
    "secfl/hazmat/shamir.py::_field_to_secrets::guard-or#1": _WRONG_SHARE,
    "secfl/hazmat/shamir.py::_field_to_secrets::guard-bound#0": _WRONG_SHARE,
    "secfl/hazmat/shamir.py::_field_to_secrets::guard-bound#1": _WRONG_SHARE,
    "secfl/hazmat/shamir.py::shares_from_bytes::guard#0": _AUDIT_ONLY,
    "secfl/hazmat/shamir.py::shares_from_bytes::guard-bound#0": _AUDIT_ONLY,
    "secfl/hazmat/shamir.py::shares_from_bytes::guard-bound#1": _AUDIT_ONLY,
    "secfl/hazmat/shamir.py::shares_from_bytes::guard#1": _AUDIT_ONLY,
    "secfl/hazmat/shamir.py::shares_from_bytes::guard-bound#2": _AUDIT_ONLY,
    "secfl/hazmat/sign.py::_check_point::guard-bound#1": (
        "the Legendre symbol is -1, 0 or 1, so `< 1` fires exactly when `!= 1` does"
    ),
    "secfl/hazmat/sign.py::VerifyKey.from_bytes::swallow#0": (
        "from_public_bytes fails only on a wrong length, which the length check refuses first "
        "(the handler is unreachable: 'pragma: no cover')"
    ),
    "secfl/hazmat/sign.py::VerifyKey.verify::guard#0": _SIG_LENGTH,
    "secfl/hazmat/sign.py::VerifyKey.verify::guard-bound#0": _SIG_LENGTH,
    "secfl/hazmat/sign.py::VerifyKey.verify::guard-bound#1": _SIG_LENGTH,
    f"{_SA}::SecAggClient._on_keys::guard-bound#1": (
        "Keys.from_bytes refuses more entries than members - 1 before this count check"
    ),
    f"{_SA}::SecAggServer._recv_unmask::guard#0": (
        "an honest client reveals only after it confirmed the list; a malicious one could sign "
        "the list and then reveal the same shares, so refusing its unconfirmed reveal changes "
        "nothing it can achieve"
    ),
    f"{_SA}::SecAggServer._recv_unmask::guard-bound#0": (
        "Unmask.arrays_from_bytes refuses more entries than the client holds shares "
        "(max_entries) before this count check"
    ),
    f"{_SA}::SecAggServer._recv_unmask::guard-bound#4": _SET_SIZE,
    f"{_SA}::SecAggServer._after_advertise::unbind#0": (
        "the graph seed is public either way (anyone computes it from the members and the round "
        "id in advance), so the same graph every round gives no party more than it had; the "
        "planner's bound assumes corruptions independent of the graph, which holds per round"
    ),
    "secfl/protocols/secagg_messages.py::_read_count::guard#0": _COUNT_LIMIT,
    "secfl/protocols/secagg_messages.py::read_ids::guard#0": _COUNT_LIMIT,
    "secfl/protocols/secagg_messages.py::read_ids::guard-bound#1": (
        "the client reads the survivor list as a set, so a repeated id changes nothing"
    ),
    "secfl/protocols/secagg_messages.py::Keys.from_bytes::guard#1": _KEYS_ORDER,
    "secfl/protocols/secagg_messages.py::Keys.from_bytes::guard-bound#1": _KEYS_ORDER,
    f"{_SA}::SecAggClient._on_keys::guard#2": (
        "on the complete graph the client's own id among the entries shifts the ranks, which "
        "the point check refuses; on a sparse graph the honest-but-curious server never lists "
        "a client as its own neighbour (secagg-v2 section 8)"
    ),
    f"{_SA}::SecAggClient._on_keys::guard#3": _SPARSE_POINTS,
    f"{_SA}::SecAggClient._on_keys::guard-bound#3": _SET_SIZE,
    f"{_SA}::SecAggClient._on_keys::guard-bound#4": _SPARSE_POINTS,
    "secfl/protocols/secagg_messages.py::Survivors.from_bytes::guard#0": (
        "the client refuses a count above m (survivor rule 2), and m <= n_clients is checked "
        "when KEYS is parsed"
    ),
}
