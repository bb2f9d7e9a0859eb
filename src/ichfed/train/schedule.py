"""The learning rate over a site's training: constant (the paper) or cosine annealing to the
end of the planned epochs.

Why cosine: a time-budgeted CPU run ends while the network still improves (the demo preset's
last epoch scored higher than its validation-best on nih), so it ends at the full learning rate
of Adam's noisiest steps; annealing to the budget's end settles the weights instead.
"""

import math

from ichfed.model.config import TrainSpec

PLAN_AFTER = 2  # epochs timed before the plan is fixed (the first carries one-off costs)


def plan(state: dict, tspec: TrainSpec) -> int | None:
    """How many epochs the schedule anneals over: `max_epochs`, or with a time budget the
    epochs that fit in it at the pace of epoch PLAN_AFTER, fixed then and kept in `state` (so
    a resumed run follows the same schedule). None until it is known."""
    if state.get("planned"):
        return state["planned"]
    if not tspec.max_minutes:
        state["planned"] = tspec.max_epochs
    elif state["epoch"] >= PLAN_AFTER:
        pace = state["history"][PLAN_AFTER - 1]["seconds"]
        left = 60 * tspec.max_minutes - state["seconds"]
        state["planned"] = min(tspec.max_epochs, state["epoch"] + max(0, int(left // pace)))
    return state["planned"]


def learning_rate(epoch: int, planned: int | None, lr: float) -> float:
    """The rate for `epoch` (1-based): `lr` until a plan is known (or without one: the
    constant schedule), then lr * (1 + cos(pi * (epoch - 1) / planned)) / 2."""
    if planned is None:
        return lr
    return lr * (1 + math.cos(math.pi * min(epoch - 1, planned) / planned)) / 2
