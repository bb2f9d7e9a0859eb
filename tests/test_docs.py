"""The README stays short, every link in the documentation leads somewhere, and every command
the README shows answers --help."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ichfed.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        base = slug(line.lstrip("#"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text()) < 15_000


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_leads_to_a_file_and_heading(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no such heading in {file.name}")
    assert not broken, broken


def test_no_page_numbers_the_order_of_the_work():
    words = re.compile(r"\b(first|second|third|[a-z]+th|[0-9]+(st|nd|rd|th)|this|next|last|"
                       r"previous) session", re.I)
    found = [f"{p.name}: {m.group(0)}" for p in PAGES for m in words.finditer(p.read_text())]
    assert not found, found


def readme_commands() -> list[list[str]]:
    """The subcommands of the README's command block (`a|b|c` alternatives expanded)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Commands\n.*?```\n(.*?)```", text, re.S).group(1)
    commands = []
    for line in block.splitlines():
        words = line.split()[1:]
        path = []
        for word in words:
            if not re.fullmatch(r"[a-z]+(\|[a-z]+)*", word):
                break
            path.append(word.split("|"))
        if len(path) == 2 and len(path[1]) > 1:  # coordinator init|start|register
            commands += [[path[0][0], sub] for sub in path[1]]
        elif path:
            commands.append([alt[0] for alt in path])
    return commands


def test_the_readme_shows_every_command_and_each_answers_help():
    commands = readme_commands()
    assert {c[0] for c in commands} >= {"synth", "check", "train", "predict", "evaluate",
                                        "federate", "coordinator", "site", "experiment",
                                        "combine"}
    for command in commands:
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output
