"""One rich progress display for training: epoch, losses and time left."""

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def expected_epochs(done: int, seconds: float, last: float, max_epochs: int,
                    max_minutes: float) -> int:
    """How many epochs the run will have: `max_epochs`, or fewer when the time budget ends it
    first (an epoch starts only if one as long as the `last` fits in what is left, as
    `ichfed.train.stopping` decides), so "time left" counts to the budget, not to max_epochs."""
    if not max_minutes or last <= 0:
        return max_epochs
    more = max(0, int((60 * max_minutes - seconds) // last))
    return max(done, min(max_epochs, done + more))


@contextmanager
def training_progress(max_epochs: int, max_minutes: float = 0.0) -> Iterator[dict]:
    """Yields the on_epoch / on_batch callbacks that `fit` accepts."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("epoch 1", total=None, info="")
        state = {"batches": 0, "epoch_batches": 0, "first": 1}

        def on_batch(n: int) -> None:
            state["batches"] += n
            bar.advance(task, n)

        def on_epoch(row: dict) -> None:
            if not state["epoch_batches"]:  # one epoch's size is known after the first
                state["epoch_batches"] = state["batches"]
                state["first"] = row["epoch"]  # a resumed run's bar starts where it resumed
            total = expected_epochs(row["epoch"], row["elapsed"], row["seconds"], max_epochs,
                                    max_minutes)
            bar.update(task, total=state["epoch_batches"] * (total - state["first"] + 1),
                       description=f"epoch {min(row['epoch'] + 1, total)}/{total}",
                       info=f"train {row['train_loss']:.4f} val {row['val_loss']:.4f}")

        yield {"on_epoch": on_epoch, "on_batch": on_batch}
