"""The federated round, once, for every transport.

A secure FedAvg round is the same computation whoever moves the bytes (the in-memory
simulator of :class:`~secfl.fl.FederatedAveraging`, or Flower's
:class:`~secfl.integrations.flower.SecureAggregation`):

* **client** (:func:`encode_update`): clip the update ``new - global`` to the round's
  bound ``C``; scale it by the client's weight ``w = min(examples, cap) / cap`` and append
  ``w`` when weighting by examples; append the indicator ``unclipped - 1/2`` when the clip
  bound adapts; run the numeric pipeline (distributed DP, encoding). The auxiliary slots
  travel *inside* the secure sum, so the server learns only their totals; the pipeline's
  bound is ``sqrt(C^2 + 1 + 1/4)`` (as far as the slots are used), so its own clipping
  never shrinks a weight or an indicator.
* **server** (:class:`RoundCore`): decode; release the round to the accountant; move the
  adaptive clip bound from the summed indicator; divide by the total weight (or the number
  of survivors); apply server momentum and learning rate. A round with zero total weight
  aborts and leaves the model and the optimizer state as they were.

:class:`RoundShape` is what both sides must agree on for one round; the Flower set-up frame
carries it to the nodes.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import numpy as np

from secfl.dp.accounting import Neighboring, PoissonSampledEvent, RdpAccountant
from secfl.dp.clipping import AdaptiveClipConfig, AdaptiveClipper, clip_l2
from secfl.errors import InvalidArgument
from secfl.hazmat.rng import Csprng
from secfl.paillier_keys import KEY_BITS, PaillierPrivateKey, generate_paillier_keypair
from secfl.pipeline import DistributedDP, DPMechanism, Pipeline, PipelineConfig
from secfl.protocols.base import ProtocolName

__all__ = [
    "ClientContribution",
    "RoundCore",
    "RoundOutcome",
    "RoundShape",
    "Weighting",
    "encode_update",
]

_SKELLAM_ZERO_OUT = (
    "secfl has no add/remove-one bound for Skellam noise (the sum's share count changes with "
    "the client), only a zero-out one (a client's update replaced by zeros, its noise share "
    "kept). Use DPMechanism.DISCRETE_GAUSSIAN for an add/remove-one guarantee, or accept the "
    "weaker relation explicitly: DistributedDP(mechanism=DPMechanism.SKELLAM, "
    "neighboring=Neighboring.ZERO_OUT)"
)
_SAMPLED_SKELLAM = (
    "DPMechanism.SKELLAM with sampling_rate: Skellam has only a zero-out bound, and zero-out "
    "has no sound bound under Poisson sampling for distributed noise (a client that is not "
    "sampled sends no share, and the sum's variance shows whether it took part). Use "
    "DPMechanism.DISCRETE_GAUSSIAN (add/remove-one, the default), or Skellam with a fixed "
    "cohort (clients_per_round) and neighboring=Neighboring.ZERO_OUT, unamplified"
)
_SAMPLED_ZERO_OUT = (
    "DistributedDP(neighboring=Neighboring.ZERO_OUT) with sampling_rate: zero-out has no sound "
    "bound under Poisson sampling for distributed noise (a client that is not sampled sends no "
    "share, and the sum's variance shows whether it took part). Use the discrete Gaussian "
    "under add/remove-one (the default), or a fixed cohort (clients_per_round), unamplified"
)
_FIXED_COHORT_ADD_REMOVE = (
    "under add/remove-one a fixed-size sample ({what}) is a swap, not an add/remove pair: the "
    "neighbour without the client samples another client in its place, so the sums differ by "
    "two updates (twice the sensitivity), which secfl does not account for distributed "
    "noise. Use Poisson sampling ({poisson}), every client in every round, or "
    "neighboring=Neighboring.ZERO_OUT (the sample then does not depend on the data)"
)
_WEIGHT_SLOT_NORM2 = 1.0  # the weight is at most 1
_INDICATOR_NORM2 = 0.25  # the indicator is +-1/2


def poisson_sampled(sampling_rate: float | None) -> bool:
    """Whether a run's rounds are Poisson-sampled (a rate of 1 samples everyone: no)."""
    return sampling_rate is not None and sampling_rate < 1.0


def accounting_relation(
    dp: DistributedDP, *, sampling_rate: float | None = None, fixed_cohort: bool = False
) -> Neighboring:
    """The relation ``dp`` is accounted for in rounds sampled at ``sampling_rate`` (None:
    not Poisson-sampled) or, with ``fixed_cohort``, by a fixed-size sample; refuses one
    secfl cannot bound."""
    sampled = poisson_sampled(sampling_rate)
    if dp.neighboring is Neighboring.REPLACE_ONE:
        raise InvalidArgument(
            "DistributedDP(neighboring=REPLACE_ONE) is not offered: federated averaging samples "
            "clients by Poisson sampling, whose relation is add/remove-one (the default)"
        )
    if sampled and dp.mechanism is DPMechanism.SKELLAM:
        raise InvalidArgument(_SAMPLED_SKELLAM)
    if dp.mechanism is DPMechanism.SKELLAM and dp.neighboring is Neighboring.ADD_OR_REMOVE_ONE:
        raise InvalidArgument(_SKELLAM_ZERO_OUT)
    if sampled and dp.neighboring is Neighboring.ZERO_OUT:
        raise InvalidArgument(_SAMPLED_ZERO_OUT)
    if fixed_cohort and dp.neighboring is Neighboring.ADD_OR_REMOVE_ONE:
        raise InvalidArgument(
            _FIXED_COHORT_ADD_REMOVE.format(
                what="FedAvgConfig(clients_per_round=...)", poisson="sampling_rate"
            )
        )
    return dp.neighboring


class Weighting(enum.Enum):
    """How client updates are weighted in the average."""

    UNIFORM = "uniform"
    """Every surviving client counts once."""
    EXAMPLES = "examples"
    """By example count, capped at ``example_cap``; the weights travel inside the secure
    sum (one extra coordinate), so the server learns only their total."""


@dataclass(frozen=True)
class RoundShape:
    """What a round's clients and server agree on: model size, clip bound, auxiliary slots."""

    model_dim: int
    clip_bound: float
    weighted: bool = False
    example_cap: int = 1000
    adaptive: bool = False
    """The last slot carries each client's clipped-or-not indicator (adaptive clipping)."""

    def __post_init__(self) -> None:
        if isinstance(self.model_dim, bool) or not isinstance(self.model_dim, int):
            raise InvalidArgument(f"model_dim must be an int, got {self.model_dim!r}")
        if self.model_dim < 1:
            raise InvalidArgument(f"model_dim must be >= 1, got {self.model_dim}")
        if not (math.isfinite(self.clip_bound) and self.clip_bound > 0):
            raise InvalidArgument(f"clip_bound must be a positive number, got {self.clip_bound}")
        if not 1 <= self.example_cap < 1 << 32:
            raise InvalidArgument(f"example_cap must be in 1..2^32-1, got {self.example_cap}")

    @property
    def input_dim(self) -> int:
        """Length of the vector each client feeds the pipeline."""
        return self.model_dim + int(self.weighted) + int(self.adaptive)

    @property
    def pipeline_clip_bound(self) -> float:
        """The pipeline's L2 bound: the update's, plus room for the auxiliary slots."""
        extra = (_WEIGHT_SLOT_NORM2 if self.weighted else 0.0) + (
            _INDICATOR_NORM2 if self.adaptive else 0.0
        )
        return math.sqrt(self.clip_bound * self.clip_bound + extra)

    def pipeline_config(self, base: PipelineConfig) -> PipelineConfig:
        """``base`` with the clip bound this shape's vectors need."""
        return dataclasses.replace(base, clip_bound=self.pipeline_clip_bound)

    def weight(self, examples: float) -> float:
        """A client's weight in [0, 1]: its example count, floored and capped, over the cap."""
        if not math.isfinite(examples):
            raise InvalidArgument(f"the example count must be a finite number, got {examples}")
        return min(max(math.floor(examples), 0), self.example_cap) / self.example_cap


@dataclass(frozen=True)
class ClientContribution:
    """One client's pipeline output for a round, and what clipping did to its update."""

    encoded: np.ndarray
    norm: float
    clipped: bool


def encode_update(
    shape: RoundShape,
    pipeline: Pipeline,
    delta: np.ndarray,
    *,
    examples: float = 1.0,
    rng: Csprng,
) -> ClientContribution:
    """A client's side of the round: clip ``delta``, add the auxiliary slots, encode.

    ``examples`` is used only when the shape is weighted. Raises
    :class:`~secfl.errors.InvalidArgument` for a malformed update (wrong shape, NaN/inf).
    """
    arr = np.asarray(delta)
    if arr.shape != (shape.model_dim,) or arr.dtype.kind != "f":
        raise InvalidArgument(
            f"an update must be a float vector of shape ({shape.model_dim},), got "
            f"{arr.dtype} {arr.shape}"
        )
    clip = clip_l2(arr.astype(np.float64), bound=shape.clip_bound)
    parts = [clip.clipped]
    if shape.weighted:
        w = shape.weight(examples)
        parts = [clip.clipped * w, np.array([w])]
    if shape.adaptive:
        parts.append(np.array([AdaptiveClipper.unclipped_indicator(clip)]))
    out = pipeline.client_side(np.concatenate(parts), rng=rng)
    return ClientContribution(encoded=out.encoded, norm=clip.norm, clipped=clip.was_clipped)


def zero_contribution(shape: RoundShape, pipeline: Pipeline, *, rng: Csprng) -> ClientContribution:
    """What a client whose update is malformed sends in a round with distributed DP: zeros
    in every slot, with its noise share.

    Leaving it out would make the number of shares depend on its data, and under zero-out
    its neighbour (the same client, zeroed) stays in; with zeros both relations hold: this
    *is* the zero-out neighbour, and under add/remove a present client with update 0
    (spec distributed-dp-v1 section 15, item 8)."""
    out = pipeline.client_side(np.zeros(shape.input_dim), rng=rng)
    return ClientContribution(encoded=out.encoded, norm=0.0, clipped=False)


@dataclass(frozen=True)
class RoundOutcome:
    """What the server step made of a round's aggregate."""

    params: np.ndarray | None
    """The new global parameters; ``None`` if the round aborted (model unchanged)."""
    aborted: str | None
    total: np.ndarray
    """The decoded sum (the clipped, weighted updates, then the auxiliary slots)."""
    epsilon: float | None


class RoundCore:
    """The server's state across rounds and its step: one object per federated run.

    Holds the server optimizer's velocity, the privacy accountant, the adaptive clipper and
    the run's Paillier key pair (``paillier_keys``, or one made on the first round that needs
    it: a run uses one key); every transport asks it for the round's :class:`RoundShape`,
    hands it the aggregate, and applies what it returns.
    """

    def __init__(
        self,
        pipeline: PipelineConfig,
        *,
        weighting: Weighting = Weighting.UNIFORM,
        example_cap: int = 1000,
        server_lr: float = 1.0,
        server_momentum: float = 0.0,
        adaptive_clip: AdaptiveClipConfig | None = None,
        sampling_rate: float | None = None,
        paillier_keys: PaillierPrivateKey | None = None,
    ) -> None:
        if not isinstance(pipeline, PipelineConfig):
            raise InvalidArgument(f"pipeline must be a PipelineConfig, got {pipeline!r}")
        if not isinstance(weighting, Weighting):
            raise InvalidArgument(f"weighting must be a secfl Weighting, got {weighting!r}")
        if not (math.isfinite(server_lr) and server_lr > 0):
            raise InvalidArgument(f"server_lr must be a positive number, got {server_lr}")
        if not 0.0 <= server_momentum < 1.0:
            raise InvalidArgument(f"server_momentum must be in [0, 1), got {server_momentum}")
        if adaptive_clip is not None and not isinstance(adaptive_clip, AdaptiveClipConfig):
            raise InvalidArgument(
                f"adaptive_clip must be an AdaptiveClipConfig, got {adaptive_clip!r}"
            )
        if sampling_rate is not None and not 0.0 < sampling_rate <= 1.0:
            raise InvalidArgument(f"sampling_rate must be in (0, 1], got {sampling_rate}")
        RoundShape(model_dim=1, clip_bound=pipeline.clip_bound, example_cap=example_cap)
        if paillier_keys is not None:
            if not isinstance(paillier_keys, PaillierPrivateKey):
                raise InvalidArgument(
                    f"paillier_keys must be a PaillierPrivateKey, got {type(paillier_keys)}"
                )
            pipeline.check_paillier_keys(paillier_keys)
        elif pipeline.protocol == ProtocolName.PAILLIER and pipeline.paillier_bits not in KEY_BITS:
            raise InvalidArgument(
                f"paillier_bits={pipeline.paillier_bits}: secfl generates Paillier keys of "
                f"{' or '.join(map(str, KEY_BITS))} bits only; set paillier_bits=2048, or pass "
                f"paillier_keys= a key pair you made"
            )
        self.config = pipeline
        self.weighting = weighting
        self.example_cap = example_cap
        self.server_lr = server_lr
        self.server_momentum = server_momentum
        self.sampling_rate = sampling_rate
        self.accountant: RdpAccountant | None = None
        if pipeline.dp is not None:
            relation = accounting_relation(pipeline.dp, sampling_rate=sampling_rate)
            self.accountant = RdpAccountant(neighboring=relation)
        self.clipper = AdaptiveClipper(adaptive_clip) if adaptive_clip is not None else None
        self._velocity: np.ndarray | None = None
        self._paillier_keys = paillier_keys

    @property
    def clip_bound(self) -> float:
        """The bound client updates are clipped to in the next round."""
        return self.clipper.bound if self.clipper is not None else self.config.clip_bound

    def shape(self, model_dim: int) -> RoundShape:
        """The next round's shape for a model of ``model_dim`` parameters."""
        return RoundShape(
            model_dim=model_dim,
            clip_bound=self.clip_bound,
            weighted=self.weighting is Weighting.EXAMPLES,
            example_cap=self.example_cap,
            adaptive=self.clipper is not None,
        )

    def paillier_key_pair(self) -> PaillierPrivateKey | None:
        """The run's Paillier key pair, for a transport that decrypts in this process:
        ``None`` unless the protocol is ``'paillier'``; made on first use, then kept."""
        if self.config.protocol != ProtocolName.PAILLIER:
            return None
        if self._paillier_keys is None:
            self._paillier_keys = generate_paillier_keypair(bits=self.config.paillier_bits)
        return self._paillier_keys

    def epsilon(self) -> float | None:
        """Cumulative epsilon at the configured delta; ``None`` without DP."""
        if self.accountant is None or self.config.dp is None:
            return None
        if not self.accountant.ledger:
            return 0.0
        return float(self.accountant.get_epsilon(self.config.dp.delta))

    def step(
        self,
        params: np.ndarray,
        pipeline: Pipeline,
        shape: RoundShape,
        aggregate: np.ndarray,
        *,
        survivors: int,
        rng: Csprng,
    ) -> RoundOutcome:
        """Turn a round's aggregate over Z_{2^k} into the new global parameters.

        The release is accounted and the clip bound moves even if the round then aborts
        for a zero total weight: the server has seen the aggregate. The optimizer state and
        the parameters change only on success.
        """
        total = pipeline.server_side(aggregate)
        event = pipeline.dp_event(survivors=survivors)
        if event is not None and self.accountant is not None:
            q = self.sampling_rate
            self.accountant.compose(event if q is None else PoissonSampledEvent(q, event))
        body = total
        if shape.adaptive:
            assert self.clipper is not None
            indicator = float(body[-1])
            if self.config.dp is None:  # without DP the count gets its own noise
                indicator = self.clipper.noise_sum(indicator, rng=rng)
            self.clipper.update(noised_indicator_sum=indicator, n_clients=survivors)
            body = body[:-1]
        if shape.weighted:
            weight = float(body[-1])
            if weight <= 0:
                return RoundOutcome(None, "zero total weight", total, self.epsilon())
            mean = body[:-1] / weight
        else:
            mean = body / survivors
        velocity = mean if self._velocity is None else self.server_momentum * self._velocity + mean
        self._velocity = velocity
        new = (params + self.server_lr * velocity).astype(params.dtype)
        return RoundOutcome(new, None, total, self.epsilon())
