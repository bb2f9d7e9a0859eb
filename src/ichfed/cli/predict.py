"""`ichfed predict`: masks in each scan's own geometry plus hematoma volumes in mL."""

from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import ONE_SITE, command


@command(panel=ONE_SITE)
def predict(
    inputs: Annotated[list[Path], typer.Argument(help="NIfTI files, DICOM folders, .dcm files.",
                                                 readable=False)],
    model: Annotated[Path, typer.Option(help="Model folder from train or federate.",
                                        readable=False)],
    out: Annotated[Path, typer.Option(help="Output folder for masks and volumes.csv.")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    series: Annotated[str | None, typer.Option(help="Series number or UID when a DICOM "
                                               "folder holds several (NUMBER:STACK for one "
                                               "stack of an enhanced file).")] = None,
    preview: Annotated[bool, typer.Option(
        "--preview", help="Also write OUT/<case>_preview.png: the slice with the most "
                          "hematoma, outlined.")] = False,
    dicom_seg: Annotated[bool, typer.Option(
        "--dicom-seg", help="Also write OUT/<case>_seg.dcm for each DICOM series: a DICOM "
                            "Segmentation referencing its slices, for the PACS and viewers."
    )] = False,
) -> None:
    """Segment hematomas; writes OUT/<case>_mask.nii.gz and OUT/volumes.csv."""
    from ichfed.device import resolve_device
    from ichfed.infer import predict_inputs
    from ichfed.report.console import print_rows
    from ichfed.report.progress import progress_bar

    on_case = None
    if preview:
        from ichfed.report.preview import write_preview

        def on_case(row, ct, mask):
            return write_preview(row, ct, mask, out)

    with progress_bar() as bar:
        task = bar.add_task("predict", total=len(inputs), info="")
        rows = predict_inputs(inputs, model, out, resolve_device(device), series=series,
                              on_case=on_case, on_done=lambda case: bar.update(
                                  task, advance=1, description=f"predict: {case} done"),
                              dicom_seg=dicom_seg)
    print_rows(rows, title=f"hematoma volumes ({out / 'volumes.csv'})")


@command(panel=ONE_SITE)
def evaluate(
    pred: Annotated[Path, typer.Option(help="Folder written by predict.", readable=False)],
    truth: Annotated[Path, typer.Option(help="Site folder with the true masks.",
                                        readable=False)],
    out: Annotated[Path | None, typer.Option(help="Per-scan CSV (default PRED/evaluation.csv)."
                                             )] = None,
) -> None:
    """Per-scan Dice, volumes, HD95 and surface Dice; a summary per site."""
    import json
    import math
    import sys

    from ichfed.metrics.evaluate import evaluate_folder
    from ichfed.report.console import print_pairs, print_rows
    from ichfed.report.tables import write_csv

    rows, summary = evaluate_folder(pred, truth)
    target = out or pred / "evaluation.csv"
    summary_path = target.with_name(f"{target.stem}_summary.json")
    write_csv(rows, target)
    strict = {k: None if isinstance(v, float) and math.isnan(v) else v  # r of < 3 scans
              for k, v in summary.items()}
    summary_path.write_text(json.dumps(strict, indent=2) + "\n")
    print_rows(rows, title=f"per scan ({target})")
    left_out = summary.pop("without_prediction")
    print_pairs(summary, title=f"summary ({summary_path})")
    if left_out:
        print(f"note: {len(left_out)} labelled case(s) of {truth} have no prediction in {pred} "
              f"and were left out: {', '.join(left_out)}", file=sys.stderr)
