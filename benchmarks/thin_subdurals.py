"""How many thin subdurals a model finds (issue: anatomy): per bleed, not per scan.

For every built-in test scan, the generator's plan is rebuilt from the scan's sidecar
(`params/<case>.json`: site, seed, index, size), and each labelled voxel is attributed to the
bleed that paints it there. A bleed counts as found when the prediction covers at least 10% of
its labelled voxels. Subdurals are split by their greatest thickness (under 5 mm, or more).

Prints one JSON line. Usage:
  python benchmarks/thin_subdurals.py --site SITE_DIR --pred PRED_DIR [--site ... --pred ...]
(an `ichfed experiment` folder holds `data/<site>-test` and `predictions/<model>/<site>`;
`benchmarks/quality.py --keep DIR` holds `DIR/<site>-test-N` and `DIR/pred/<site>`).
"""

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from ichfed.io import open_site
from ichfed.phantom import BUILTIN
from ichfed.phantom.generate import plan_case
from ichfed.phantom.lesions import paint

FOUND_SHARE = 0.1
THIN_MM = 5.0


def bleeds_at(params: dict, world: np.ndarray) -> list[tuple[dict, np.ndarray]]:
    """(lesion parameters, which of the world points it paints) for each bleed of a case."""
    plan = plan_case(BUILTIN[params["site"]], params["seed"], params["index"], params["size"])
    rot, shift = plan.acquisition.head_from_scanner()
    p = ((world - shift) @ rot.T).astype(np.float32)
    anat = plan.head.render(p)  # painting changes only HU, never where another bleed lies
    out = []
    for lesion, record in zip(plan.lesions, params["lesions"], strict=True):
        blood, _ = paint(lesion, p, anat, plan.irregular)
        out.append((record, blood))
    return out


def score(site: Path, pred: Path) -> list[dict]:
    rows = []
    for case in open_site(site).labelled:
        params = json.loads((site / "params" / f"{case.name}.json").read_text())
        label_img = nib.load(case.mask)
        label = np.asarray(label_img.dataobj) > 0
        if not label.any():
            continue
        predicted = np.asarray(nib.load(pred / f"{case.name}_mask.nii.gz").dataobj) > 0
        idx = np.argwhere(label)
        world = idx @ label_img.affine[:3, :3].T + label_img.affine[:3, 3]
        hit = predicted[tuple(idx.T)]
        for record, blood in bleeds_at(params, world):
            if blood.sum() == 0:
                continue
            rows.append({"case": params["case"], "kind": record["kind"],
                         "where": record.get("where", ""), "thick_mm": record["size_mm"],
                         "voxels": int(blood.sum()),
                         "covered": round(float(hit[blood].mean()), 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", type=Path, action="append", required=True)
    parser.add_argument("--pred", type=Path, action="append", required=True)
    args = parser.parse_args()
    rows = [r for s, p in zip(args.site, args.pred, strict=True) for r in score(s, p)]
    groups = {
        "subdural_under_5mm": [r for r in rows if r["kind"] == "subdural"
                               and r["thick_mm"] < THIN_MM],
        "subdural_5mm_or_more": [r for r in rows if r["kind"] == "subdural"
                                 and r["thick_mm"] >= THIN_MM],
        **{kind: [r for r in rows if r["kind"] == kind]
           for kind in ("epidural", "contusion", "subarachnoid", "intraventricular")},
    }
    print(json.dumps({"benchmark": "thin_subdurals", "found_if_covered": FOUND_SHARE,
                      "bleeds": {k: {"n": len(v),
                                     "found": round(float(np.mean(
                                         [r["covered"] >= FOUND_SHARE for r in v])), 3)
                                     if v else None,
                                     "median_covered": round(float(np.median(
                                         [r["covered"] for r in v])), 3) if v else None}
                                 for k, v in groups.items()}}))


if __name__ == "__main__":
    main()
