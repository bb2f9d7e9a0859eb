"""Differential privacy for a federation, with its cost in epsilon counted.

The unit protected is a whole site (site-level DP, add-or-remove-one): what any one hospital's
scans did to the model is bounded by clipping each round's update to `clipping_norm` and adding
Gaussian noise of `noise_multiplier` times it. FedAvg and FedProx use Flower's central DP
wrapper (server-side fixed clipping, noise on the average, Flower's RDP accountant over the
rounds): the coordinator sees the sites' raw updates, anyone who gets the model sees only noised
averages. cwt uses local DP: each site clips and noises its own update before it leaves, so the
coordinator and the next site see only noised weights, and each site's epsilon counts only the
rounds it trained in.

Only the floating-point part of a travelling state is released through the mechanism (weights,
their moving average, batch-norm statistics). Its integer step counters (batch norm's batches,
the average's steps) count optimiser steps, not patients, are averaged outside it, and would
otherwise dominate the update's norm and break Flower's in-place clipping of float updates.
"""

import functools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords
from flwr.supercore.differential_privacy import (
    add_gaussian_noise_inplace,
    compute_clip_model_update,
)
from flwr.supercore.privacy_accounting import (
    GaussianPrivacyEvent,
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from ichfed.errors import IchfedError
from ichfed.federated.payload import pack, unpack

# A clipping norm about the size of one round's update of the study's demo networks (weights,
# their average and batch-norm statistics together: 29 and 30 on nih and vumc in the first round
# of the demo study, smaller after); a smaller one slows learning, a larger one means more noise.
DEFAULT_CLIP = 10.0
SITE_WEIGHT = "site-weight"  # every reply's weight in a private average: 1 (equal sites)
MIN_VARIANCE = 1e-5  # noised batch-norm variances are kept above this (post-processing)


@dataclass(frozen=True)
class Privacy:
    """Site-level DP settings: a noise multiplier, or a target epsilon from which it is derived
    for the run's most rounds (`resolved`; both are kept once it is)."""

    noise_multiplier: float = 0.0
    epsilon: float = 0.0  # target epsilon (0: none; the noise multiplier is given)
    clipping_norm: float = DEFAULT_CLIP  # inf: no clipping (only with no noise)
    delta: float = 1e-5
    seed: int | None = None  # None: fresh noise; a seed only to reproduce a run

    def __post_init__(self) -> None:
        if not (self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)):
            raise IchfedError(f"dp noise multiplier {self.noise_multiplier}: 0 or more")
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise IchfedError(f"dp epsilon {self.epsilon}: more than 0")
        if not self.clipping_norm > 0:
            raise IchfedError(f"dp clipping norm {self.clipping_norm}: more than 0")
        if not 0 < self.delta < 1:
            raise IchfedError(f"dp delta {self.delta}: between 0 and 1 (about 1e-5)")
        if math.isinf(self.clipping_norm) and (self.noise_multiplier or self.epsilon):
            raise IchfedError("dp noise needs a finite clipping norm (the noise is scaled by it)")

    def resolved(self, releases: int) -> "Privacy":
        """With the noise multiplier that spends the target epsilon in `releases` rounds."""
        if not self.epsilon or self.noise_multiplier:
            return self
        return replace(self, noise_multiplier=noise_for(self.epsilon, releases, self.delta))

    @classmethod
    def given(cls, noise_multiplier: float | None, epsilon: float | None,
              clipping_norm: float | None, delta: float | None, seed: int | None
              ) -> "Privacy | None":
        """From a user's options (None: not given); None when none asks for privacy."""
        if noise_multiplier is None and epsilon is None:
            if clipping_norm is not None or delta is not None or seed is not None:
                raise IchfedError("the dp clipping norm, delta and seed need --dp-noise or "
                                  "--dp-epsilon")
            return None
        if noise_multiplier is not None and epsilon is not None:
            raise IchfedError("give --dp-noise or --dp-epsilon, not both")
        if epsilon is not None and not epsilon > 0:
            raise IchfedError(f"dp epsilon {epsilon}: more than 0")
        return cls(noise_multiplier or 0.0, epsilon or 0.0,
                   DEFAULT_CLIP if clipping_norm is None else clipping_norm,
                   1e-5 if delta is None else delta, seed)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Privacy":
        return cls(**data)


def accountant(sites: int, delta: float) -> RdpAccountant:
    """Flower's RDP accountant for releases in which all `sites` take part (no sampling)."""
    return RdpAccountant(PrivacyConfig(delta, sites, NeighboringRelation.ADD_OR_REMOVE_ONE,
                                       SamplingMethod.NO_AMPLIFICATION))


def epsilon_spent(noise_multiplier: float, releases: int, delta: float) -> float:
    """Epsilon at `delta` after `releases` Gaussian releases of this noise multiplier."""
    if releases == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    counter = accountant(1, delta)
    counter.compose(GaussianPrivacyEvent(noise_multiplier, 1, 1), releases)
    return counter.get_privacy_spent().epsilon


@functools.cache
def noise_for(epsilon: float, releases: int, delta: float) -> float:
    """The smallest noise multiplier whose `releases` rounds spend at most `epsilon`."""
    low, high = 1e-3, 1.0
    while epsilon_spent(high, releases, delta) > epsilon:
        high *= 2
        if high > 1e4:
            raise IchfedError(f"dp epsilon {epsilon}: too small to reach in {releases} rounds")
    for _ in range(50):  # epsilon falls as the noise grows
        middle = (low + high) / 2
        low, high = (middle, high) if epsilon_spent(middle, releases, delta) > epsilon else (
            low, middle)
    return high


@contextmanager
def seeded(seed: int | None, *keys: int) -> Iterator[None]:
    """NumPy's global generator (which Flower's noise draws from) seeded by (seed, *keys), or
    from fresh entropy without a seed; the generator's state is put back afterwards."""
    state = np.random.get_state()
    np.random.seed(None if seed is None else [seed, *keys])
    try:
        yield
    finally:
        np.random.set_state(state)


def released(record: ArrayRecord) -> ArrayRecord:
    """The floating-point arrays of a packed state (`payload.pack` keys start with the dtype)."""
    return ArrayRecord({k: v for k, v in record.items() if k.startswith("float")})


def counters(record: ArrayRecord) -> ArrayRecord:
    """The rest: integer step counters."""
    return ArrayRecord({k: v for k, v in record.items() if not k.startswith("float")})


def merged(*records: ArrayRecord) -> ArrayRecord:
    return ArrayRecord({k: v for record in records for k, v in record.items()})


def with_variances_floored(record: ArrayRecord) -> ArrayRecord:
    """Noise can push a batch-norm running variance below zero; clamping it is post-processing,
    which costs no privacy."""
    state = unpack(record)
    for name, value in state.items():
        if name.endswith("running_var"):
            value.clamp_(min=MIN_VARIANCE)
    return pack(state)


class SiteLevelDp(DifferentialPrivacyServerSideFixedClipping):
    """Flower's central DP wrapper over FedAvg or FedProx, applied to the released (float) part
    of packed states; with a noise multiplier above 0 its accountant counts every round."""

    def __init__(self, strategy: FedAvg, privacy: Privacy, sites: int) -> None:
        noisy = privacy.noise_multiplier > 0
        super().__init__(strategy, privacy.noise_multiplier, privacy.clipping_norm, sites,
                         accountant=accountant(sites, privacy.delta) if noisy else None)
        self.privacy = privacy

    def configure_train(self, server_round, arrays, config, grid):
        messages = super().configure_train(server_round, arrays, config, grid)
        self.current_arrays = released(arrays)  # what the sites' updates are measured from
        return messages

    def aggregate_train(self, server_round: int, replies: Sequence[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        steps = aggregate_arrayrecords([_only(r, counters) for r in replies],
                                       self.strategy.weighted_by_key) if replies else None
        for reply in replies:
            reply.content["arrays"] = released(reply.content["arrays"])
        with seeded(self.privacy.seed, server_round):
            arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is None:
            return None, metrics
        return merged(with_variances_floored(arrays), steps), metrics

    def _add_noise_to_aggregated_arrays(self, aggregated_arrays: ArrayRecord) -> ArrayRecord:
        if self.noise_multiplier == 0:  # no noise: the plain average (no 0 * inf clipping)
            return aggregated_arrays
        return super()._add_noise_to_aggregated_arrays(aggregated_arrays)

    def privacy_event(self) -> GaussianPrivacyEvent:
        """One round's release, as the accountant counts it (for a resumed run's rounds)."""
        return GaussianPrivacyEvent(self.noise_multiplier, self.num_sampled_clients,
                                    self.num_sampled_clients)

    def epsilon(self) -> float:
        spent = self.privacy_spent()
        return math.inf if spent is None else spent.epsilon


def _only(reply: Message, part) -> RecordDict:
    """A reply's content with only `part` of its weights, for Flower's own averaging."""
    return RecordDict({"arrays": part(reply.content["arrays"]),
                       "metrics": reply.content["metrics"]})


def local_release(update: ArrayRecord, received: ArrayRecord, privacy: Privacy,
                  *keys: int) -> ArrayRecord:
    """cwt's local DP at a site: its update to the weights it received, clipped to the
    clipping norm and noised (standard deviation noise multiplier x clipping norm) with Flower's
    own helpers, before it leaves the site; the step counters go as they are."""
    new = released(update)
    arrays = new.to_numpy_ndarrays()
    compute_clip_model_update(arrays, released(received).to_numpy_ndarrays(),
                              privacy.clipping_norm)
    if privacy.noise_multiplier > 0:
        with seeded(privacy.seed, *keys):
            add_gaussian_noise_inplace(arrays, privacy.noise_multiplier * privacy.clipping_norm)
    noised = ArrayRecord({k: Array(np.asarray(a)) for k, a in zip(new.keys(), arrays, strict=True)})
    return merged(with_variances_floored(noised), counters(update))
