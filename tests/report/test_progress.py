"""Progress counts to the time budget, and in a log it is one plain line per step."""

import io

from rich.console import Console

from ichfed.report.progress import LogProgress, clock, expected_epochs, progress_bar


def test_the_expected_epochs_end_with_the_budget_or_max_epochs():
    assert expected_epochs(1, 40.0, 40.0, 60, 0.0) == 60  # no budget: max_epochs
    assert expected_epochs(1, 40.0, 40.0, 60, 8.75) == 13  # 485 s left: 12 more of 40 s
    assert expected_epochs(13, 520.0, 35.0, 60, 8.75) == 13  # 5 s left: none more
    assert expected_epochs(2, 2.0, 1.0, 5, 8.75) == 5  # the budget outlasts max_epochs


def _log_console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=200), text


def test_a_log_gets_plain_lines_and_a_terminal_a_live_bar():
    console, _ = _log_console()
    assert isinstance(progress_bar(console), LogProgress)
    assert not isinstance(progress_bar(Console(file=io.StringIO(), force_terminal=True)),
                          LogProgress)


def test_log_progress_prints_a_line_per_stage_with_elapsed_and_left():
    console, text = _log_console()
    with LogProgress(console) as bar:
        task = bar.add_task("study", total=100.0, info="", unit_seconds=2.0)
        bar.update(task, description="sites")  # nothing done yet: the estimate sets the rate
        bar.advance(task, 50.0)  # no line: the stage is not over, nothing was said
        bar.update(task, info="epoch 1: train 0.5000 val 0.4000")
        bar.update(task, description="report")
        bar.advance(task, 50.0)  # finished: one last line
        bar.advance(task, 0.0)  # and only one
    lines = text.getvalue().splitlines()
    assert lines[0] == "[0:00:00] sites  (left 0:03:20)"
    assert lines[1] == "[0:00:00] sites  epoch 1: train 0.5000 val 0.4000  (left 0:00:00)"
    assert lines[2].startswith("[0:00:00] report  epoch 1")
    assert lines[3].endswith("(left 0:00:00)") and len(lines) == 4


def test_a_step_that_overruns_leaves_the_estimate_of_the_steps_after_it(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("ichfed.report.progress.time.monotonic", lambda: now[0])
    bar = LogProgress(_log_console()[0])
    task = bar.add_task("study", total=100.0, info="", step=0.0)
    now[0] = 50.0
    bar.update(task, advance=50.0, description="b", step=30.0)  # 1 s a unit so far
    now[0] = 60.0
    assert bar.left(task) == 20.0 + 20.0  # 30 s of b less the 10 spent, then c's 20
    now[0] = 200.0
    assert bar.left(task) == 20.0  # b overran: c's estimate stays


def test_log_progress_does_not_guess_without_a_total_or_a_rate():
    console, text = _log_console()
    bar = LogProgress(console)
    task = bar.add_task("epoch 1", total=None, info="")
    bar.update(task, description="epoch 1/?")
    assert text.getvalue().strip() == "[0:00:00] epoch 1/?  (left ?)"
    assert clock(3725.4) == "1:02:05" and clock(None) == "?"
