"""The study report: one self-contained HTML file (figures embedded as PNG), no scripts."""

import base64
import html
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ichfed.metrics.evaluate import bland_altman  # noqa: E402
from ichfed.report.overlay import draw_axial, fullest_slice  # noqa: E402

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;
text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}
img{max-width:100%}.note{background:#f6f6f0;padding:.6em 1em;border-left:4px solid #aa8}
code{background:#f2f2f2;padding:0 3px}"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _fmt(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def table_html(rows: list[dict], columns: list[str] | None = None, caption: str = "") -> str:
    columns = columns or list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def paper_table(summary: list[dict], models: list[str], sites: list[str]) -> str:
    """Models by test sites: mean Dice and Pearson r of volumes, as the paper's table."""
    cell = {(r["model"], r["site"]): r for r in summary}
    head = "".join(f"<th>{html.escape(s)} Dice</th><th>{html.escape(s)} r</th>" for s in sites)
    body = ""
    for m in models:
        tds = "".join(f"<td>{_fmt(cell[(m, s)]['mean_dice'])}</td>"
                      f"<td>{_fmt(cell[(m, s)]['pearson_r'])}</td>" if (m, s) in cell
                      else "<td>-</td><td>-</td>" for s in sites)
        body += f"<tr><td>{html.escape(m)}</td>{tds}</tr>"
    return f'<table id="paper-table"><tr><th>model</th>{head}</tr>{body}</table>'


def grid_html(cells: dict[tuple[str, str], str], models: list[str], sites: list[str]) -> str:
    """Models by sites, one preformatted cell each ("-" where a model was not tested)."""
    head = "".join(f"<th>{html.escape(s)}</th>" for s in sites)
    body = "".join(f"<tr><td>{html.escape(m)}</td>" + "".join(
        f"<td>{html.escape(cells.get((m, s), '-'))}</td>" for s in sites) + "</tr>"
        for m in models)
    return f"<table><tr><th>model</th>{head}</tr>{body}</table>"


def seed_means_plot(means: dict[int, list[dict]], models: list[str], sites: list[str]) -> str:
    """Each seed's mean Dice per model (a dot each) and their mean (a bar), one panel per
    site: how far apart the seeds of one cell lie, beside the differences between models."""
    fig, axes = plt.subplots(1, len(sites), figsize=(3.2 * len(sites), 3.4), sharey=True)
    for ax, site in zip(np.atleast_1d(axes), sites, strict=True):
        for x, model in enumerate(models):
            values = [r["mean_dice"] for rows in means.values() for r in rows
                      if r["model"] == model and r["site"] == site]
            if values:
                ax.bar(x, np.mean(values), color="#ccd", width=0.7)
                ax.scatter([x] * len(values), values, s=12, color="k", zorder=3)
        ax.set_xticks(range(len(models)), models, rotation=60, fontsize=7)
        ax.set_title(site)
    np.atleast_1d(axes)[0].set_ylabel("mean Dice (dot: one seed; bar: their mean)")
    return _png(fig)


def dice_boxplots(rows: list[dict], models: list[str], sites: list[str]) -> str:
    fig, axes = plt.subplots(1, len(sites), figsize=(3.2 * len(sites), 3.4), sharey=True)
    for ax, site in zip(np.atleast_1d(axes), sites, strict=True):
        data = [[r["dice"] for r in rows if r["site"] == site and r["model"] == m]
                for m in models]
        ax.boxplot(data, tick_labels=models)
        ax.set_title(site)
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    np.atleast_1d(axes)[0].set_ylabel("Dice")
    return _png(fig)


def volume_plots(rows: list[dict], models: list[str], sites: list[str]) -> str:
    """Predicted against true volume (with r) and Bland-Altman, one column per model."""
    fig, axes = plt.subplots(2, len(models), figsize=(2.7 * len(models), 5.4), squeeze=False)
    colors = dict(zip(sites, plt.cm.tab10.colors, strict=False))
    for col, model in enumerate(models):
        mine = [r for r in rows if r["model"] == model]
        true = np.array([r["true_ml"] for r in mine])
        pred = np.array([r["pred_ml"] for r in mine])
        r = np.corrcoef(true, pred)[0, 1] if true.std() > 0 and pred.std() > 0 else math.nan
        ax = axes[0, col]
        for site in sites:
            pick = [i for i, x in enumerate(mine) if x["site"] == site]
            ax.scatter(true[pick], pred[pick], s=9, color=colors[site], label=site)
        top = max(true.max(initial=1), pred.max(initial=1))
        ax.plot([0, top], [0, top], "k--", lw=0.7)
        ax.set_title(f"{model}\nr = {r:.3f}", fontsize=8)
        ax.set_xlabel("true mL", fontsize=7)
        ax.set_ylabel("predicted mL", fontsize=7)
        bias, low, high = bland_altman(pred, true)
        ax = axes[1, col]
        ax.scatter((true + pred) / 2, pred - true, s=9, color=[colors[x["site"]] for x in mine])
        for y, style in ((bias, "-"), (low, "--"), (high, "--")):
            if math.isfinite(y):  # limits need two scans
                ax.axhline(y, color="gray", ls=style, lw=0.8)
        ax.set_title(f"Bland-Altman: bias {bias:.1f} mL", fontsize=8)
        ax.set_xlabel("mean of true and predicted mL", fontsize=7)
        ax.set_ylabel("predicted - true mL", fontsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)


def training_curves(histories: dict[str, list[dict]]) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, history in histories.items():
        steps = [h.get("epoch", h.get("round")) for h in history]
        axes[0].plot(steps, [h["train_loss"] for h in history], label=name)
        axes[1].plot(steps, [h["val_loss"] for h in history], label=name)
    for ax, what in zip(axes, ("training loss", "validation loss"), strict=True):
        ax.set_title(what)
        ax.set_xlabel("epoch (single, pooled) or round (cwt, fedavg)")
        ax.set_ylabel("batch-wide Dice loss")
    axes[1].legend(fontsize=7)
    return _png(fig)


def privacy_plot(epsilons: dict[str, float], summary: list[dict], sites: list[str],
                 reference: str = "fedavg") -> str:
    """Mean Dice on each test site against the epsilon each private model spent (log axis),
    with the same model without privacy as a dashed line per site."""
    cell = {(r["model"], r["site"]): r["mean_dice"] for r in summary}
    order = sorted(epsilons, key=epsilons.get)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for i, site in enumerate(sites):
        colour = f"C{i}"
        ax.plot([epsilons[m] for m in order], [cell.get((m, site), np.nan) for m in order],
                "o-", color=colour, label=site)
        if (reference, site) in cell:
            ax.axhline(cell[(reference, site)], color=colour, linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("epsilon spent per site (delta as set; log scale)")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1)
    ax.set_title(f"private FedAvg (dots) and {reference} without privacy (dashed)", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def overlays(cases: list[dict]) -> str:
    """cases: {title, image, affine, truth, pred} for each panel (CT in a brain window)."""
    n = len(cases)
    cols = 3
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(3.4 * cols, 3.4 * math.ceil(
        n / cols)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, case in zip(axes.ravel(), cases, strict=False):
        k = fullest_slice((case["truth"] > 0) | (case["pred"] > 0), case["affine"])
        draw_axial(ax, case["image"], case["affine"], k,
                   {"truth": case["truth"], "prediction": case["pred"]}, title=case["title"])
    return _png(fig)


def write_report(path: Path, sections: list[tuple[str, str]], title: str) -> Path:
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    text = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>\n{body}</body></html>\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
