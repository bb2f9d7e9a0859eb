"""Early stopping and the time budget."""

from ichfed.model.config import preset
from ichfed.train.stopping import record, stop_reason


def test_the_time_budget_is_not_overrun_by_another_epoch():
    _, tspec = preset("demo", max_minutes=1.0)
    state = {"wait": 0, "seconds": 40.0, "history": [{"seconds": 15.0}]}
    assert stop_reason(state, tspec) is None  # 40 + 15 s fits in 60 s
    state = {"wait": 0, "seconds": 50.0, "history": [{"seconds": 15.0}]}
    assert stop_reason(state, tspec) == "time budget"


def test_patience_keeps_the_best_step_and_stops_after_it():
    _, tspec = preset("paper", patience=2)
    state = {"best": float("inf"), "best_step": 0, "wait": 0, "history": [], "seconds": 0.0}
    kept = [record(state, loss, step, tspec) for step, loss in enumerate((0.5, 0.4, 0.6), 1)]
    assert kept == [True, True, False] and state["best_step"] == 2
    assert stop_reason(state, tspec) is None
    record(state, 0.45, 4, tspec)
    assert stop_reason(state, tspec) == "early stopping" and state["best_step"] == 2


def test_last_keeps_every_step_and_never_stops_early():
    _, tspec = preset("demo", select_by="last", patience=1)
    state = {"best": float("inf"), "best_step": 0, "wait": 0, "history": [], "seconds": 0.0}
    assert all(record(state, loss, step, tspec) for step, loss in enumerate((0.4, 0.6, 0.9), 1))
    assert state["best_step"] == 3 and stop_reason(state, tspec) is None
