"""Neighbour graphs for SecAgg+ (Bell et al., CCS 2020) and the parameter planner.

Clients are placed on a ring in a pseudo-random order derived from a public seed, and each
is connected to the ``degree / 2`` nearest clients on either side: the Harary graph
H(degree, n) over a random permutation. ``degree >= n - 1`` gives the complete graph, i.e.
the original SecAgg of Bonawitz et al. (CCS 2017), so one code path serves both.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from secfl.errors import InvalidArgument
from secfl.hazmat.prg import expand_uniform

__all__ = ["SecAggPlusPlan", "neighbourhoods", "plan_secagg_plus"]


def neighbourhoods(
    client_ids: Sequence[int], *, degree: int | None, seed: bytes
) -> dict[int, frozenset[int]]:
    """Each client's neighbours (itself excluded) in H(degree, n) over a seeded permutation.

    ``degree=None`` (or ``>= n - 1``) is the complete graph. A finite degree must be even
    and >= 2, so that every node has exactly ``degree`` neighbours.
    """
    ids = sorted(client_ids)
    n = len(ids)
    if len(set(ids)) != n:
        raise InvalidArgument("client ids must be distinct")
    everyone = frozenset(ids)
    if degree is None or degree >= n - 1:
        return {c: everyone - {c} for c in ids}
    if degree < 2 or degree % 2:
        raise InvalidArgument(f"graph degree must be an even number >= 2, got {degree}")
    order = np.argsort(expand_uniform(seed, n, 64, label=b"graph"), kind="stable")
    ring = [ids[i] for i in order]
    half = degree // 2
    out: dict[int, frozenset[int]] = {}
    for pos, c in enumerate(ring):
        out[c] = frozenset(ring[(pos + j) % n] for j in range(-half, half + 1) if j)
    return out


@dataclass(frozen=True)
class SecAggPlusPlan:
    """Degree and threshold for n clients, with the failure bounds they achieve (log2)."""

    degree: int | None
    threshold: int
    log2_correctness_failure: float
    log2_privacy_failure: float


def _log2_binom_tail(k: int, p: float, at_least: int) -> float:
    """log2 P[Binomial(k, p) >= at_least], computed in log space (exact sum)."""
    if at_least <= 0:
        return 0.0
    if at_least > k or p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return 0.0
    terms = [
        math.lgamma(k + 1)
        - math.lgamma(i + 1)
        - math.lgamma(k - i + 1)
        + i * math.log(p)
        + (k - i) * math.log1p(-p)
        for i in range(at_least, k + 1)
    ]
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / math.log(2)


@functools.lru_cache(maxsize=256)
def plan_secagg_plus(
    n: int, *, dropout: float, corrupt: float, sigma: int = 40, eta: int = 30
) -> SecAggPlusPlan:
    """Smallest even degree k and a threshold t such that, for ``n`` clients where each
    drops independently with probability ``dropout`` and each is corrupt (colluding with
    the server) with probability ``corrupt``:

    * correctness: a client's secret has fewer than t surviving neighbours with
      probability <= 2^-eta / n (union bound over the n clients), and
    * privacy: some client has >= t corrupt neighbours (who could pool both of its
      secrets) with probability <= 2^-sigma / n,

    with t > k/2 so that two disjoint sets of honest neighbours cannot both reach t.
    When no k < n - 1 qualifies the complete graph (classic SecAgg) is returned. The
    Bell et al. analysis also needs the graph of honest survivors to stay connected,
    which H(k, n) over a random permutation gives with overwhelming probability for
    k = O(log n) at these rates; that part is cited, not re-derived here (see
    ``protocols/secagg-v1.md``).

    Plans are cached per argument tuple (the search takes seconds at n in the thousands,
    and :func:`~secfl.pipeline.build_protocol` asks for one every round).
    """
    if n < 2:
        raise InvalidArgument(f"secure aggregation needs n >= 2 clients, got {n}")
    if not 0.0 <= dropout < 1.0 or not 0.0 <= corrupt < 1.0:
        raise InvalidArgument("dropout and corrupt must be fractions in [0, 1)")
    if dropout + corrupt >= 0.5:
        raise InvalidArgument(
            f"dropout + corrupt = {dropout + corrupt:.2f} >= 0.5: no threshold above half "
            f"the neighbours can both survive dropouts and resist the coalition"
        )
    log_n = math.log2(n)
    for k in range(2, n - 1, 2):
        for t in range(k // 2 + 1, k + 1):
            fail = _log2_binom_tail(k, dropout, k - t + 1)  # fewer than t survive
            leak = _log2_binom_tail(k, corrupt, t)
            if fail <= -eta - log_n and leak <= -sigma - log_n:
                return SecAggPlusPlan(k, t, fail, leak)
    k = n - 1
    t = _complete_graph_threshold(k, dropout, corrupt, sigma=sigma, eta=eta, log_n=log_n)
    return SecAggPlusPlan(
        None, t, _log2_binom_tail(k, dropout, k - t + 1), _log2_binom_tail(k, corrupt, t)
    )


def _complete_graph_threshold(
    k: int, dropout: float, corrupt: float, *, sigma: int, eta: int, log_n: float
) -> int:
    """Threshold for the complete graph (n too small for a sparse one): the smallest
    t > k/2 meeting the privacy bound if it also meets the correctness bound; otherwise
    the most dropout-tolerant t > k/2 (the majority threshold). The plan reports the
    failure probabilities the chosen t actually achieves."""
    for t in range(k // 2 + 1, k + 1):
        private = _log2_binom_tail(k, corrupt, t) <= -sigma - log_n
        correct = _log2_binom_tail(k, dropout, k - t + 1) <= -eta - log_n
        if private and correct:
            return t
    return k // 2 + 1
