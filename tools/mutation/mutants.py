"""Mutants of secfl's security checks: enumerated from the AST, applied as text patches.

A mutant is one small change that removes or weakens one protection (see ``OPERATORS``). Each
has a stable id, ``<file>::<function>::<operator>#<k>`` (``k`` counts that operator's sites in
that function, in source order), so an id survives edits elsewhere in the file. A mutant is
applied to the *source text*: the node's span is replaced by the mutated code, padded so that
every line keeps its number (tracebacks and line coverage still point at the original lines).
Nothing here writes to the working tree; :mod:`tools.mutation.harness` patches a copy.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHECK_ERRORS",
    "OPERATORS",
    "SCOPE",
    "Mutant",
    "apply",
    "enumerate_mutants",
    "mutants_of_source",
]

# What the harness mutates (paths relative to the repository root). dp/'s accountant
# (accounting.py, _rdp.py, _pld.py, _detmath.py) is out of scope: its only guards are argument
# validation and its arithmetic is pinned by high-precision expected values in the tests and by
# `secfl audit --privacy`; no operator below applies to it. hazmat/ is in scope where the audit
# depends on it: signatures, key exchange, AEAD, Shamir, the PRG and CSPRNG, Paillier and
# threshold Paillier.
SCOPE: tuple[str, ...] = (
    "secfl/protocols/_messages.py",
    "secfl/protocols/base.py",
    "secfl/protocols/graphs.py",
    "secfl/protocols/paillier.py",
    "secfl/protocols/paillier_messages.py",
    "secfl/protocols/paillier_threshold.py",
    "secfl/protocols/paillier_threshold_messages.py",
    "secfl/protocols/plaintext.py",
    "secfl/protocols/plaintext_messages.py",
    "secfl/protocols/secagg.py",
    "secfl/protocols/secagg_messages.py",
    "secfl/pipeline.py",
    "secfl/dp/clipping.py",
    "secfl/dp/mechanisms.py",
    "secfl/dp/rotation.py",
    "secfl/dp/_exact.py",
    "secfl/dp/_poisson.py",
    "secfl/hazmat/aead.py",
    "secfl/hazmat/kex.py",
    "secfl/hazmat/paillier.py",
    "secfl/hazmat/prg.py",
    "secfl/hazmat/rng.py",
    "secfl/hazmat/shamir.py",
    "secfl/hazmat/sign.py",
    "secfl/hazmat/threshold_paillier.py",
)

# A guard is a security check when it raises one of these: a peer misbehaved, a message or
# key is invalid, too few survivors, a sum would wrap. InvalidArgument (the caller passed a bad
# argument), LocalProtocolError (called out of order) and TypeError are argument hygiene, not
# checks against an adversary -- except in the validation of a configuration (``__post_init__``
# of ``*Config`` and ``DistributedDP``), where InvalidArgument refuses parameters that would
# lose privacy (a threshold below the security bound, DP without secure aggregation, delta out
# of range). Pure type checks (``isinstance``) stay out even there.
CHECK_ERRORS = frozenset(
    {"ProtocolAbort", "IntegrityError", "InsufficientSurvivors", "EncodingOverflow"}
)
_CONFIG_ERRORS = frozenset({"InvalidArgument"})
_CONFIG_CLASS = re.compile(r"(Config|DP)$")

OPERATORS: dict[str, str] = {
    "guard": "a raise-guarded check never fires: `if bad: raise E` -> `if False: raise E`",
    "guard-or": "one alternative of a check dropped: `if a or b: raise` -> `if b: raise`",
    "guard-bound": "off by one / one-sided: `<` <-> `<=`, `>` <-> `>=`, `!=` -> `<` and `>`",
    "swallow": "a raise in an `except` handler becomes `pass` (the failure is ignored)",
    "drop-call": "a call statement that verifies, checks, parses, masks or noises is removed",
    "rng-fixed": "an injected CSPRNG (`rng=...`, `.spawn()`) becomes one with a fixed seed, "
    "so every client and round draws the same stream",
    "rng-zero": "a random draw (`rng.bytes(n)`, `os.urandom(n)`) becomes `bytes(n)`",
    "unbind": "a round or party id in a domain-separation / binding input becomes 0",
    "noise-drop": "a noise draw added to the data becomes 0",
    "noise-shrink": "a noise scale argument (stddev, variance, sigma_squared) is quartered",
}

# drop-call: statement calls whose name says they check, verify, parse, mask or add noise.
_CALL_WORDS = re.compile(
    r"verify|check|valid|require|ensure|need|from_bytes|unseal|noise|clip|mask|add|reduce"
)
# ... except helpers that only validate the caller's own arguments or phase (argument hygiene,
# like InvalidArgument guards) and calls whose value is all they do.
_HYGIENE_CALLS = frozenset(
    {
        "_check_int",
        "_check_rng",
        "_check_size",
        "_check_bound",
        "require_local_phase",
        "validate_round",
        "validate_client_ids",
        "padded_dimension",
    }
)
# unbind: calls that build domain-separation or binding inputs (KDF info, signed messages,
# graph seeds, associated data) and the ids they bind.
_BIND_CALL = re.compile(r"(_info|_seed|_message|_ad|_aad|_label)$")
_BIND_IDS = frozenset({"round_id", "id", "client_id", "cid", "u", "v", "owner", "holder"})
_NOISE_CALLS = frozenset(
    {"sample", "add_noise", "gaussian", "discrete_gaussian", "skellam", "poisson", "take"}
)
_NOISE_SCALES = frozenset({"stddev", "variance", "sigma_squared", "lam"})
_FIXED_RNG = "__import__('secfl.hazmat.rng', fromlist=['Csprng']).Csprng(seed=bytes(32))"


@dataclass(frozen=True)
class Mutant:
    """One mutant: ``path`` bytes ``start:end`` (of the original file) become ``replacement``."""

    id: str
    path: str
    operator: str
    line: int
    function: str
    original: str
    replacement: str
    start: int
    end: int

    @property
    def module(self) -> str:
        return self.path

    def describe(self) -> str:
        old = " ".join(self.original.split())
        new = " ".join(self.replacement.split())
        if len(old) > 70:
            old = old[:67] + "..."
        if len(new) > 70:
            new = new[:67] + "..."
        return f"{self.path}:{self.line} [{self.operator}] `{old}` -> `{new}`"


def _padded(code: str, original: str) -> str:
    """``code`` as an expression spanning as many lines as ``original``."""
    breaks = original.count("\n")
    if not breaks:
        return code
    return "(" + code + "\n" * breaks + ")"


def _stmt_removed(original: str) -> str:
    breaks = original.count("\n")
    return "pass" if not breaks else "(None" + "\n" * breaks + ")"


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _raised_names(body: list[ast.stmt]) -> set[str]:
    """Exception class names raised directly in ``body`` (not in nested functions)."""
    names: set[str] = set()
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                names.add(_call_name(exc) if not isinstance(exc, ast.Name) else exc.id)
    return names


def _top_level_raise(body: list[ast.stmt]) -> bool:
    return any(isinstance(s, ast.Raise) for s in body)


class _Collector(ast.NodeVisitor):
    def __init__(self, path: str, source: bytes) -> None:
        self.path = path
        self.source = source
        starts = [0]
        for line in source.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        self._line_starts = starts
        self._scope: list[str] = []
        self._counts: dict[tuple[str, str], int] = {}
        self.mutants: list[Mutant] = []

    # ---- spans and emission
    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self._line_starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end_line = node.end_lineno  # type: ignore[attr-defined]
        end = self._line_starts[end_line - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def _emit(self, node: ast.AST, operator: str, replacement: str) -> None:
        start, end = self._span(node)
        original = self.source[start:end].decode()
        function = ".".join(self._scope) or "<module>"
        key = (function, operator)
        k = self._counts.get(key, 0)
        self._counts[key] = k + 1
        self.mutants.append(
            Mutant(
                id=f"{self.path}::{function}::{operator}#{k}",
                path=self.path,
                operator=operator,
                line=node.lineno,  # type: ignore[attr-defined]
                function=function,
                original=original,
                replacement=replacement,
                start=start,
                end=end,
            )
        )

    def _expr(self, node: ast.expr, operator: str, new: ast.expr | str) -> None:
        start, end = self._span(node)
        original = self.source[start:end].decode()
        code = new if isinstance(new, str) else ast.unparse(new)
        self._emit(node, operator, _padded(code, original))

    def _drop_stmt(self, node: ast.stmt, operator: str) -> None:
        start, end = self._span(node)
        self._emit(node, operator, _stmt_removed(self.source[start:end].decode()))

    # ---- scopes
    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self._scope.append(node.name)
        self.generic_visit(node)
        self._scope.pop()

    visit_FunctionDef = _scoped  # noqa: N815
    visit_AsyncFunctionDef = _scoped  # noqa: N815
    visit_ClassDef = _scoped  # noqa: N815

    # ---- checks
    def visit_If(self, node: ast.If) -> None:
        if self._is_check(node):
            self._expr(node.test, "guard", "False")
            test = node.test
            if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
                for i in range(len(test.values)):
                    rest = test.values[:i] + test.values[i + 1 :]
                    new: ast.expr = rest[0] if len(rest) == 1 else ast.BoolOp(ast.Or(), rest)
                    self._expr(test, "guard-or", new)
            for comp in ast.walk(test):
                if isinstance(comp, ast.Compare) and len(comp.ops) == 1:
                    for op in _bound_flips(comp.ops[0]):
                        self._expr(
                            comp, "guard-bound", ast.Compare(comp.left, [op], comp.comparators)
                        )
        self.generic_visit(node)

    def _is_check(self, node: ast.If) -> bool:
        if not _top_level_raise(node.body):
            return False
        raised = _raised_names(node.body)
        if raised & CHECK_ERRORS:
            return True
        # A configuration refusal counts unless it is a pure type check.
        in_config = (
            len(self._scope) >= 2
            and self._scope[-1] == "__post_init__"
            and bool(_CONFIG_CLASS.search(self._scope[-2]))
        )
        return (
            in_config
            and bool(raised & _CONFIG_ERRORS)
            and not any(
                isinstance(n, ast.Call) and _call_name(n) == "isinstance"
                for n in ast.walk(node.test)
            )
        )

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        for stmt in node.body:
            if isinstance(stmt, ast.Raise) and _raised_names([stmt]) & CHECK_ERRORS:
                self._emit(stmt, "swallow", _stmt_removed(self._text(stmt)))
        self.generic_visit(node)

    def _text(self, node: ast.AST) -> str:
        start, end = self._span(node)
        return self.source[start:end].decode()

    def visit_Expr(self, node: ast.Expr) -> None:
        name = _call_name(node.value)
        if (
            isinstance(node.value, ast.Call)
            and _CALL_WORDS.search(name)
            and name not in _HYGIENE_CALLS
        ):
            self._drop_stmt(node, "drop-call")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Add | ast.Sub) and _is_noise(node.value):
            self._expr(node.value, "noise-drop", "0")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Add):
            if _is_noise(node.right):
                self._expr(node.right, "noise-drop", "0")
            elif _is_noise(node.left):
                self._expr(node.left, "noise-drop", "0")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        func = node.func
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if name == "spawn" and receiver is not None and _mentions_rng(receiver):
            self._expr(node, "rng-fixed", _FIXED_RNG)
        if name == "bytes" and receiver is not None and _mentions_rng(receiver) and node.args:
            self._expr(node, "rng-zero", f"bytes({ast.unparse(node.args[0])})")
        if name == "urandom" and node.args:
            self._expr(node, "rng-zero", f"bytes({ast.unparse(node.args[0])})")
        for kw in node.keywords:
            if kw.arg in ("rng", "randomness") and not _is_fixed(kw.value):
                self._expr(kw.value, "rng-fixed", _FIXED_RNG)
            if kw.arg in _NOISE_SCALES:
                quarter = "/ 2" if kw.arg == "stddev" else "/ 4"
                self._expr(kw.value, "noise-shrink", f"({ast.unparse(kw.value)}) {quarter}")
        if _BIND_CALL.search(name):
            for arg in node.args:
                if _id_name(arg) in _BIND_IDS:
                    self._expr(arg, "unbind", "0")
        self.generic_visit(node)


def _bound_flips(op: ast.cmpop) -> Iterator[ast.cmpop]:
    if isinstance(op, ast.Lt):
        yield ast.LtE()
    elif isinstance(op, ast.LtE):
        yield ast.Lt()
    elif isinstance(op, ast.Gt):
        yield ast.GtE()
    elif isinstance(op, ast.GtE):
        yield ast.Gt()
    elif isinstance(op, ast.NotEq):
        yield ast.Lt()
        yield ast.Gt()


def _id_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _mentions_rng(node: ast.expr) -> bool:
    return "rng" in ast.unparse(node).lower()


def _is_fixed(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant)


def _is_noise(node: ast.expr) -> bool:
    """A call that draws noise (or a method call on one, e.g. ``gaussian(...).reshape()``)."""
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        name = _call_name(call)
        if name in _NOISE_CALLS and (name != "take" or "noise" in ast.unparse(call.func)):
            return True
        if "noise" in ast.unparse(call.func).lower():
            return True
    return False


def mutants_of_source(path: str, source: bytes) -> list[Mutant]:
    """Every mutant of one file, in source order (ties: operator order of the visit)."""
    collector = _Collector(path, source)
    collector.visit(ast.parse(source, filename=path))
    unique: dict[tuple[int, int, str], Mutant] = {}
    for mutant in collector.mutants:  # one site reached by two rules: keep the first id
        unique.setdefault((mutant.start, mutant.end, mutant.replacement), mutant)
    # Nested sites (a Compare inside a guard) are emitted in visit order; ids do not depend
    # on this sort, only the listing order does.
    return sorted(unique.values(), key=lambda m: (m.start, m.end, m.id))


def enumerate_mutants(root: Path, scope: tuple[str, ...] = SCOPE) -> list[Mutant]:
    """Every mutant of every file in ``scope`` (relative to ``root``), in a stable order."""
    out: list[Mutant] = []
    for rel in scope:
        out += mutants_of_source(rel, (root / rel).read_bytes())
    ids = [m.id for m in out]
    if len(ids) != len(set(ids)):  # pragma: no cover - a bug in the id scheme
        raise RuntimeError("duplicate mutant ids")
    return out


def apply(mutant: Mutant, source: bytes) -> bytes:
    """``source`` with ``mutant`` applied (it must be the source the mutant was made from)."""
    if source[mutant.start : mutant.end].decode() != mutant.original:
        raise ValueError(f"{mutant.id}: the file changed since the mutants were enumerated")
    return source[: mutant.start] + mutant.replacement.encode() + source[mutant.end :]
