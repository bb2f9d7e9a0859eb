"""Site-level differential privacy: the noise is really added at the size the accountant
assumes, updates are clipped, a zero-noise unclipped wrapper is plain FedAvg, the accountant's
epsilon matches an independent computation, and bad settings are one-line errors."""

import math

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from scipy.optimize import brentq
from scipy.stats import norm
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.errors import IchfedError
from ichfed.federated.payload import pack, unpack
from ichfed.federated.plan import Plan
from ichfed.federated.privacy import (
    SITE_WEIGHT,
    Privacy,
    SiteLevelDp,
    accountant,
    epsilon_spent,
    local_release,
    noise_for,
)
from ichfed.federated.strategies import build_strategy

SIZE = 4000


class Grid:
    """The two connected sites a strategy's configure_train samples from."""

    def get_node_ids(self) -> list[int]:
        return [11, 12]


@pytest.fixture(autouse=True)
def flower_task(monkeypatch):
    """Flower builds messages only inside a run; these tests build them outside one."""
    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)


def _state(value: float, steps: int) -> dict:
    return {"conv.weight": torch.full((SIZE,), value), "bn.running_var": torch.ones(8),
            "bn.num_batches_tracked": torch.tensor(steps)}


def _round(strategy, start: dict, replies: list[dict], examples=(10, 30), rnd: int = 1) -> dict:
    sent = list(strategy.configure_train(rnd, pack(start), ConfigRecord(), Grid()))
    messages = [Message(RecordDict({"arrays": pack(state), "metrics": MetricRecord(
        {"num-examples": n, SITE_WEIGHT: 1})}), reply_to=m)
        for m, state, n in zip(sent, replies, examples, strict=True)]
    arrays, _ = strategy.aggregate_train(rnd, messages)
    return unpack(arrays)


def _private(privacy: Privacy) -> SiteLevelDp:
    plan = Plan(strategy="fedavg", num_sites=2, privacy=privacy)
    strategy = build_strategy(plan, [11, 12])
    assert isinstance(strategy, SiteLevelDp)
    return strategy


def test_noise_is_added_at_the_accounted_size_and_depends_on_the_seed():
    # almost no change (Flower's clipping divides by the update's norm): the noise alone
    start, updates = _state(0.0, 3), [_state(1e-6, 5), _state(1e-6, 9)]
    privacy = Privacy(noise_multiplier=0.5, clipping_norm=2.0, seed=1)
    first = _round(_private(privacy), start, updates)
    again = _round(_private(privacy), start, updates)
    other = _round(_private(Privacy(noise_multiplier=0.5, clipping_norm=2.0, seed=2)), start,
                   updates)
    assert torch.equal(first["conv.weight"], again["conv.weight"])
    assert not torch.allclose(first["conv.weight"], other["conv.weight"])
    # Gaussian, standard deviation noise multiplier x clipping norm / sites (Flower's)
    spread = float(first["conv.weight"].std())
    assert abs(spread - 0.5 * 2.0 / 2) < 0.05
    assert abs(float(first["conv.weight"].mean())) < 0.05
    # noised variances stay positive (post-processing); step counters are not noised
    assert float(first["bn.running_var"].min()) > 0
    assert float(first["bn.num_batches_tracked"]) == 7.0  # equal weights when noised


def test_updates_are_clipped_to_the_norm():
    strategy = _private(Privacy(noise_multiplier=1e-9, clipping_norm=1.0))
    merged = _round(strategy, _state(0.0, 0), [_state(1.0, 0), _state(5.0, 0)])
    # each site's update (norm 63 and 316) is scaled to norm 1 before averaging
    assert float(merged["conv.weight"].norm()) == pytest.approx(1.0, rel=1e-3)


def test_no_noise_and_no_clipping_is_plain_fedavg():
    start, updates = _state(0.0, 3), [_state(0.3, 5), _state(-0.1, 9)]
    private = _round(_private(Privacy(0.0, clipping_norm=math.inf)), start, updates)
    plain = _round(build_strategy(Plan(strategy="fedavg", num_sites=2), [11, 12]), start,
                   updates)
    assert private.keys() == plain.keys()
    for key in plain:  # weighted by examples, as FedAvg (no accountant without noise)
        torch.testing.assert_close(private[key].double(), plain[key].double())


def test_the_accountant_counts_every_round():
    strategy = _private(Privacy(noise_multiplier=0.8))
    for rnd in (1, 2, 3):
        _round(strategy, _state(0.0, 0), [_state(0.1, 1), _state(0.2, 1)], rnd=rnd)
    assert strategy.epsilon() == pytest.approx(epsilon_spent(0.8, 3, 1e-5))


@pytest.mark.parametrize(("noise", "releases", "delta"), [(1.0, 7, 1e-5), (0.3, 20, 1e-6),
                                                           (4.0, 1, 1e-5)])
def test_epsilon_matches_an_independent_computation(noise, releases, delta):
    """T Gaussian releases have Renyi DP T*a/(2 s^2) at order a; converted to (epsilon, delta)
    by Canonne, Kamath and Steinke's bound (arXiv 2004.00010, Prop. 12) over the accountant's
    orders. The exact epsilon of the composed Gaussian (Balle and Wang's analytic formula for
    mu = sqrt(T)/s) is a lower bound that RDP stays close to."""
    orders = np.array(accountant(2, delta)._orders)
    rdp = releases * orders / (2 * noise ** 2)
    bound = rdp + np.log1p(-1 / orders) - np.log(delta * orders) / (orders - 1)
    ours = epsilon_spent(noise, releases, delta)
    assert ours == pytest.approx(max(0.0, bound[orders > 1.01].min()), rel=1e-9)
    mu = math.sqrt(releases) / noise

    def excess(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    exact = brentq(excess, 1e-9, ours)  # delta(ours) <= delta: the bound holds
    assert exact <= ours <= 1.5 * exact


def test_noise_for_a_target_epsilon_spends_it():
    noise = noise_for(8.0, 7, 1e-5)
    assert epsilon_spent(noise, 7, 1e-5) <= 8.0 + 1e-6
    assert epsilon_spent(noise * 0.98, 7, 1e-5) > 8.0
    plan = Plan(strategy="cwt", num_sites=2, privacy=Privacy(epsilon=8.0)).resolved_privacy()
    assert plan.privacy.noise_multiplier == noise_for(8.0, plan.releases(), 1e-5)
    assert plan.releases() == math.ceil(plan.train.max_epochs / 2)  # cwt: a site's own turns


def test_cwt_local_release_clips_and_noises_only_the_weights():
    received, trained = pack(_state(0.0, 3)), pack(_state(1.0, 8))
    out = unpack(local_release(trained, received, Privacy(noise_multiplier=0.1,
                                                         clipping_norm=2.0, seed=0), 4))
    update = out["conv.weight"]
    assert abs(float(update.std()) - 0.1 * 2.0) < 0.02  # noise: multiplier x norm
    assert float(update.mean()) == pytest.approx(2.0 / math.sqrt(SIZE), abs=0.01)  # clipped
    assert int(out["bn.num_batches_tracked"]) == 8  # the site's steps, as they were
    again = unpack(local_release(trained, received, Privacy(noise_multiplier=0.1,
                                                           clipping_norm=2.0, seed=0), 5))
    assert not torch.equal(again["conv.weight"], update)  # each round its own noise


@pytest.mark.parametrize(("settings", "message"), [
    ({"noise_multiplier": -1.0}, "0 or more"),
    ({"noise_multiplier": 1.0, "clipping_norm": 0.0}, "clipping norm"),
    ({"noise_multiplier": 1.0, "delta": 1.5}, "delta"),
    ({"noise_multiplier": 1.0, "clipping_norm": math.inf}, "finite clipping norm"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(IchfedError, match=message):
        Privacy(**settings)


def test_options_are_checked_in_one_line(tmp_path):
    runner = CliRunner()
    for options, message in ((["--dp-noise", "1", "--dp-epsilon", "3"], "not both"),
                             (["--dp-clip", "3"], "need --dp-noise"),
                             (["--dp-epsilon", "0"], "more than 0"),
                             (["--dp-noise", "1", "--carry-optimizer"], "carry-optimizer")):
        result = runner.invoke(app, ["federate", str(tmp_path), str(tmp_path), "--out",
                                     str(tmp_path / "m"), *options])
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "m").exists()
    with pytest.raises(IchfedError, match="too small"):
        noise_for(1e-4, 10, 1e-5)
