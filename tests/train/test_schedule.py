"""The learning-rate schedule: constant (the paper) or cosine over the planned epochs."""

import math

import pytest

from ichfed.errors import IchfedError
from ichfed.model.config import TrainSpec
from ichfed.train.schedule import learning_rate, plan


def _state(epochs: int, seconds_each: float) -> dict:
    return {"epoch": epochs, "seconds": epochs * seconds_each, "planned": None,
            "history": [{"seconds": seconds_each} for _ in range(epochs)]}


def test_cosine_anneals_over_max_epochs_without_a_budget():
    tspec = TrainSpec(lr=1e-3, lr_schedule="cosine", max_epochs=10)
    planned = plan(_state(0, 0.0), tspec)
    assert planned == 10
    rates = [learning_rate(e, planned, tspec.lr) for e in range(1, 11)]
    assert rates[0] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[-1] == pytest.approx(1e-3 * (1 + math.cos(0.9 * math.pi)) / 2)


def test_a_budget_fixes_the_plan_after_the_timed_epochs_and_keeps_it():
    tspec = TrainSpec(lr=1e-3, lr_schedule="cosine", max_epochs=60, max_minutes=1.0)
    assert plan(_state(1, 10.0), tspec) is None  # the first epoch's pace is not trusted
    assert learning_rate(2, None, tspec.lr) == tspec.lr  # full rate until the plan is known
    state = _state(2, 10.0)
    assert plan(state, tspec) == 6  # 40 s left at 10 s an epoch: 2 + 4
    state["history"][1]["seconds"] = 1.0  # a resumed run keeps the plan it made
    assert plan(state, tspec) == 6


def test_an_unknown_schedule_is_refused():
    with pytest.raises(IchfedError, match="lr_schedule"):
        TrainSpec(lr_schedule="step")
