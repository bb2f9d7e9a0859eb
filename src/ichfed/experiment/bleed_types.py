"""The bleed-type table of a study whose models and sites are typed (`--set labels=types`):
per model and test site, each type's mean Dice over the scans that hold it, with their
number, and the share of epidural and subdural blood called the other type."""

import math
from pathlib import Path

from ichfed.io.labels import TYPES
from ichfed.metrics.types import summarize_types
from ichfed.report import html as report
from ichfed.report.tables import read_csv

NOTE = ("<div class='note'><p>Each type's Dice is the mean over the test scans whose truth "
        "holds that type (their number in brackets); the any-blood figures are the results "
        "table's. A site whose protocol leaves a type unlabelled counts it as background. "
        "See docs/models.md, bleed types.</p></div>")


def types_table(rows: list[dict]) -> list[dict]:
    """One row per (model, site) of types.csv's per-scan rows."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["site"]), []).append(row)
    table = []
    for (model, site), group in groups.items():
        summary = summarize_types(group)
        line = {"model": model, "site": site}
        for name in TYPES.values():
            n, mean = summary[f"{name}_scans"], summary[f"{name}_mean_dice"]
            line[name] = f"{mean:.3f} ({n})" if n else "-"
        swapped = summary["epidural_subdural_swapped"]
        line["epidural/subdural swapped"] = "-" if math.isnan(swapped) else f"{swapped:.1%}"
        table.append(line)
    return table


def types_section(out: Path) -> list[tuple[str, str]]:
    """The report section, when the study wrote types.csv; none otherwise."""
    path = out / "types.csv"
    if not path.exists():
        return []
    return [("Bleed types: Dice per type, models by test site",
             report.table_html(types_table(read_csv(path))) + NOTE)]
