"""Study-level numbers from per-scan results: a summary per model and test site, and paired
Wilcoxon signed-rank tests between models on the same scans."""

import math

import numpy as np
from scipy import stats

from ichfed.metrics.evaluate import summarize


def summary_table(rows: list[dict]) -> list[dict]:
    """One row per (model, site), in the order the pairs first appear."""
    pairs = list(dict.fromkeys((r["model"], r["site"]) for r in rows))
    return [{"model": m, "site": s, **summarize([r for r in rows
                                                 if r["model"] == m and r["site"] == s])}
            for m, s in pairs]


def paired_wilcoxon(rows: list[dict], model: str, others: list[str]) -> list[dict]:
    """Dice of `model` against each of `others`, per site, on the same scans (two-sided)."""
    out = []
    for site in dict.fromkeys(r["site"] for r in rows):
        dice = {(r["model"], r["case"]): r["dice"] for r in rows if r["site"] == site}
        cases = sorted({c for m, c in dice if m == model})
        for other in others:
            a = np.array([dice[(model, c)] for c in cases if (other, c) in dice])
            b = np.array([dice[(other, c)] for c in cases if (model, c) in dice])
            p = math.nan
            if len(a) and np.any(a != b):
                p = float(stats.wilcoxon(a, b).pvalue)
            out.append({"site": site, "model": model, "versus": other, "scans": len(a),
                        "mean_dice_difference": round(float((a - b).mean()), 4) if len(a)
                        else math.nan, "p_value": round(p, 4) if not math.isnan(p) else p})
    return out
