"""The top-level help lists the commands in the order a user meets them."""

from typer.testing import CliRunner

from ichfed.cli import app


def test_help_lists_commands_in_workflow_order():
    result = CliRunner().invoke(app, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    panels = ["Data", "One hospital", "Across hospitals", "The study"]
    order = ["Data", "synth", "check", "One hospital", "train", "predict", "evaluate",
             "Across hospitals", "federate", "site", "coordinator", "The study", "experiment"]
    # a panel's title line, or a command's first table cell (not a word in a description)
    found = [result.output.find(f"─ {word} ─" if word in panels else f"│ {word} ")
             for word in order]
    assert -1 not in found, dict(zip(order, found, strict=True))
    assert found == sorted(found)
