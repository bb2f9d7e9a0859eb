"""One rich progress display for training: epoch, losses and time left."""

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def training_progress(max_epochs: int) -> Iterator[dict]:
    """Yields the on_epoch / on_batch callbacks that `fit` accepts."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("epoch 1", total=None, info="")
        state = {"batches": 0}

        def on_batch(n: int) -> None:
            state["batches"] += n
            bar.advance(task, n)

        def on_epoch(row: dict) -> None:
            if bar.tasks[task].total is None:  # one epoch's size is known after the first
                bar.update(task, total=state["batches"] * max_epochs)
            bar.update(task, description=f"epoch {min(row['epoch'] + 1, max_epochs)}/{max_epochs}",
                       info=f"train {row['train_loss']:.4f} val {row['val_loss']:.4f}")

        yield {"on_epoch": on_epoch, "on_batch": on_batch}
