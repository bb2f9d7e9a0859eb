"""Rich tables for the terminal; problems go to stderr as plain single lines."""

import sys

from rich.console import Console
from rich.table import Table

from ichfed.check import SiteFindings


def _range(values: list[float], fmt: str) -> str:
    return f"{min(values):{fmt}} - {max(values):{fmt}}" if values else "-"


def print_site_findings(findings: SiteFindings) -> None:
    """Summary table of a checked site, then one line per problem."""
    readable = [c for c in findings.cases if c.shape is not None]
    inplane = [min(c.spacing_mm[:2]) for c in readable]
    slices = [c.spacing_mm[2] for c in readable]
    lesions = [c.lesion_ml for c in readable if c.lesion_ml is not None]
    empty = sum(1 for v in lesions if v == 0)
    orientations = sorted({c.orientation for c in readable})

    table = Table(title=f"site {findings.site} ({findings.root})", show_header=False)
    table.add_row("cases", str(len(findings.cases)))
    table.add_row("readable scans", str(len(readable)))
    table.add_row("masks read", str(len(lesions)))
    table.add_row("empty masks", str(empty))
    table.add_row("in-plane spacing (mm)", _range(inplane, ".3f"))
    table.add_row("slice spacing (mm)", _range(slices, ".2f"))
    table.add_row("orientations", ", ".join(orientations) or "-")
    table.add_row("lesion volume (mL)", _range([v for v in lesions if v > 0], ".1f"))
    labels = findings.labels
    if findings.types:
        labels += " (cases holding each: " + ", ".join(
            f"{name} {n}" for name, n in findings.types.items()) + ")"
    table.add_row("labels", labels)
    notes = sorted({n for c in readable for n in c.notes})
    for note in notes:
        table.add_row("note", note)
    Console().print(table)
    for problem in findings.problems:
        print(problem, file=sys.stderr)
    status = "usable" if findings.usable else f"NOT usable: {len(findings.problems)} problem(s)"
    Console(stderr=not findings.usable).print(f"site {findings.site}: {status}")


def print_profiles(profiles) -> None:
    """The built-in hospital profiles as a table (`ichfed synth --list-sites`)."""
    table = Table(title="built-in sites")
    for col in ("site", "role", "scanners", "pixel (mm)", "slices (mm)", "description"):
        table.add_column(col)
    for p in profiles:
        pixels = [s.inplane_mm for s in p.scanners]
        slices = [s.slice_mm for s in p.scanners]
        table.add_row(p.name, p.role, ", ".join(s.name for s in p.scanners),
                      f"{min(r[0] for r in pixels):.2f}-{max(r[1] for r in pixels):.2f}",
                      f"{min(r[0] for r in slices):.1f}-{max(r[1] for r in slices):.1f}",
                      p.description)
    Console().print(table)


def print_rows(rows: list[dict], title: str = "") -> None:
    """Any list of flat dicts as a table (predict volumes, evaluate per scan)."""
    table = Table(title=title)
    for key in rows[0] if rows else ():
        table.add_column(key, justify="left" if key == "case" else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)


def print_grid(cell: dict[tuple[str, str], str], rows: list[str], columns: list[str],
               title: str = "") -> None:
    """A models-by-sites table of preformatted cells ("-" where a pair is missing)."""
    table = Table(title=title)
    table.add_column("model")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row, *(cell.get((row, c), "-") for c in columns))
    Console().print(table)


def print_pairs(values: dict, title: str = "") -> None:
    """One flat dict as a two-column table (evaluate's summary)."""
    table = Table(title=title, show_header=False)
    for key, value in values.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)

