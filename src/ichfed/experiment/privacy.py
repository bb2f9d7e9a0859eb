"""The price of differential privacy in a study: the private models' Dice against the epsilon
each spent, for a study's report and for studies combined over seeds."""

import json
from pathlib import Path

from ichfed.report import html as report

NOTE = ("<div class='note'><p>Site-level differential privacy: epsilon bounds what the model "
        "reveals about any one hospital's whole contribution (Renyi-DP accounting, no credit "
        "for sampling). An epsilon above about 10 guarantees nothing a privacy officer would "
        "accept. See docs/privacy.md.</p></div>")


def privacy_section(folders: dict[str, Path], summary: list[dict], sites: list[str]
                    ) -> list[tuple[str, str]]:
    """A report section for the private models in `folders` (name: model folder) that were
    trained, with `summary`'s mean Dice per site; none without them."""
    spent = {}
    for name, folder in folders.items():
        if (folder / "config.json").exists():
            privacy = json.loads((folder / "config.json").read_text())["summary"]["privacy"]
            spent[name] = {"model": name, "noise_multiplier": privacy["noise_multiplier"],
                           "clipping_norm": privacy["clipping_norm"],
                           "epsilon": privacy["spent_epsilon"], "delta": privacy["delta"]}
    if not spent:
        return []
    plot = report.privacy_plot({m: s["epsilon"] for m, s in spent.items()}, summary, sites)
    for row in spent.values():
        row.update(epsilon=f"{row['epsilon']:.3g}", noise_multiplier=f"{row['noise_multiplier']:g}")
    return [("Privacy: Dice against epsilon", plot + report.table_html(list(spent.values()))
             + NOTE)]
