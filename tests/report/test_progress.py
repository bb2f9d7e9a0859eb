"""The training progress display counts to the time budget."""

from ichfed.report.progress import expected_epochs


def test_the_expected_epochs_end_with_the_budget_or_max_epochs():
    assert expected_epochs(1, 40.0, 40.0, 60, 0.0) == 60  # no budget: max_epochs
    assert expected_epochs(1, 40.0, 40.0, 60, 8.75) == 13  # 485 s left: 12 more of 40 s
    assert expected_epochs(13, 520.0, 35.0, 60, 8.75) == 13  # 5 s left: none more
    assert expected_epochs(2, 2.0, 1.0, 5, 8.75) == 5  # the budget outlasts max_epochs
