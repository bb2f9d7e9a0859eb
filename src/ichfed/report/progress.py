"""Progress for long commands: a live rich bar on a terminal, plain lines in a log.

`make demo > demo.log` has no terminal, and a live bar draws nothing there; so when standard
output is not a terminal, the same calls print one line per stage, epoch, round or scan, with
the elapsed time and the time left.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

#: the columns every live bar of ichfed shows
COLUMNS = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
           TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())


def clock(seconds: float | None) -> str:
    """h:mm:ss, or ? when not known yet."""
    if seconds is None:
        return "?"
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class LogProgress:
    """The calls of `rich.progress.Progress` that ichfed makes, written as one plain line
    whenever a task's description or fields change, or it finishes.

    Time left is the rate so far times the work left, less the time since the last advance
    (at most the size of the step under way, when a `step` field gives it); before any work is
    done, a task's `unit_seconds` field (an estimate) sets the rate.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.tasks: dict[int, dict] = {}

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        task = len(self.tasks)
        now = time.monotonic()
        self.tasks[task] = {"description": description, "total": total, "completed": 0.0,
                            "fields": fields, "start": now, "moved": now}
        return task

    def update(self, task: int, *, total: float | None = None, completed: float | None = None,
               advance: float = 0.0, description: str | None = None, **fields) -> None:
        t = self.tasks[task]
        changed = (description is not None and description != t["description"]) or any(
            t["fields"].get(k) != v for k, v in fields.items())
        if total is not None:
            t["total"] = total
        self._move(t, completed if completed is not None else t["completed"] + advance)
        t["description"] = description if description is not None else t["description"]
        t["fields"].update(fields)
        if changed or self._done(t):
            self._print(task)

    def advance(self, task: int, advance: float = 1.0) -> None:
        t = self.tasks[task]
        self._move(t, t["completed"] + advance)
        if self._done(t):
            self._print(task)

    @staticmethod
    def _move(t: dict, completed: float) -> None:
        if completed != t["completed"]:
            t["completed"], t["moved"] = completed, time.monotonic()

    @staticmethod
    def _done(t: dict) -> bool:
        return t["total"] is not None and t["completed"] >= t["total"] and not t.get("ended")

    def left(self, task: int) -> float | None:
        """Seconds left on `task` at this rate, or None when nothing tells yet."""
        t = self.tasks[task]
        if t["total"] is None:
            return None
        now = time.monotonic()
        if t["completed"] > 0:
            rate = (t["moved"] - t["start"]) / t["completed"]
        elif t["fields"].get("unit_seconds"):
            rate = t["fields"]["unit_seconds"]
        else:
            return None
        step = min(float(t["fields"].get("step", 0.0)), t["total"] - t["completed"])
        if step:  # the step under way counts down; the ones after it keep their estimate
            return rate * (t["total"] - t["completed"] - step) + max(
                0.0, rate * step - (now - t["moved"]))
        return max(0.0, rate * (t["total"] - t["completed"]) - (now - t["moved"]))

    def _print(self, task: int) -> None:
        t = self.tasks[task]
        if self._done(t):
            t["ended"] = True
        info = t["fields"].get("info") or ""
        elapsed = time.monotonic() - t["start"]
        self.console.print(f"[{clock(elapsed)}] {t['description']}"
                           f"{'  ' + info if info else ''}  (left {clock(self.left(task))})",
                           markup=False, highlight=False, soft_wrap=True)


def progress_bar(console: Console | None = None) -> Progress | LogProgress:
    """A live bar when `console` writes to a terminal, else plain lines (`LogProgress`)."""
    console = console or Console()
    return Progress(*COLUMNS, console=console) if console.is_terminal else LogProgress(console)


def expected_epochs(done: int, seconds: float, last: float, max_epochs: int,
                    max_minutes: float) -> int:
    """How many epochs the run will have: `max_epochs`, or fewer when the time budget ends it
    first (an epoch starts only if one as long as the `last` fits in what is left, as
    `ichfed.train.stopping` decides), so "time left" counts to the budget, not to max_epochs."""
    if not max_minutes or last <= 0:
        return max_epochs
    more = max(0, int((60 * max_minutes - seconds) // last))
    return max(done, min(max_epochs, done + more))


def epoch_info(row: dict) -> str:
    """An epoch's or a round's losses (and a round's sites) in a few words."""
    sites = f"{row['sites']}: " if "sites" in row else ""
    spent = f" epsilon {row['epsilon']:.3g}" if "epsilon" in row else ""
    return f"{sites}train {row['train_loss']:.4f} val {row['val_loss']:.4f}{spent}"


@contextmanager
def training_progress(max_epochs: int, max_minutes: float = 0.0, unit: str = "epoch"
                      ) -> Iterator[dict[str, Callable]]:
    """Yields the on_epoch / on_batch callbacks that `fit` accepts (on_epoch also serves a
    federation's rounds, `unit="round"`). The bar counts batches when it is told of them, else
    epochs or rounds."""
    with progress_bar() as bar:
        task = bar.add_task(f"{unit} 1", total=None, info="")
        state = {"batches": 0, "epoch_batches": 0, "first": 0}

        def on_batch(n: int) -> None:
            state["batches"] += n
            bar.advance(task, n)

        def on_epoch(row: dict) -> None:
            done = row.get("epoch", row.get("round"))
            if not state["first"]:  # a resumed run's bar starts where it resumed
                state["first"], state["epoch_batches"] = done, state["batches"]
            total = expected_epochs(done, row["elapsed"], row["seconds"], max_epochs,
                                    max_minutes)
            per = state["epoch_batches"] or 1
            bar.update(task, total=per * (total - state["first"] + 1),
                       completed=per * (done - state["first"] + 1),
                       description=f"{unit} {done}/{total}", info=epoch_info(row))

        yield {"on_epoch": on_epoch, "on_batch": on_batch}
