"""Early stopping on a validation loss, shared by a site's loop and a federation's rounds."""

from ichfed.model.config import TrainSpec


def record(state: dict, loss: float, step: int, tspec: TrainSpec) -> bool:
    """Note one validation loss in `state` (best, best_step, wait); True when it improved by
    more than min_delta, i.e. the weights of this step are the ones to keep. With
    `select_by="last"` every step is kept and none waits."""
    if tspec.select_by == "last":
        state.update(best=loss, best_step=step, wait=0)
        return True
    if loss < state["best"] - tspec.min_delta:
        state.update(best=loss, best_step=step, wait=0)
        return True
    state["wait"] += 1
    return False


def stop_reason(state: dict, tspec: TrainSpec) -> str | None:
    """Why to stop now (patience used up; the time budget would be overrun by another step as
    long as the last one), or None."""
    if state["wait"] >= tspec.patience:
        return "early stopping"
    last = state["history"][-1]["seconds"] if state["history"] else 0.0
    if tspec.max_minutes and state["seconds"] + last > 60 * tspec.max_minutes:
        return "time budget"
    return None
