"""Choose the model's lesion rule on whole-scan predictions of the site's labelled scans.

The network is trained on patches, so most of its whole-scan errors are false-positive
components no patch loss weighs: specks on streaks, and thin crescents along the inner table
where partial volume with bone looks like a thin subdural. Dropping components under a volume,
or with no part thicker than a small disk, removes them; the rule is chosen on labelled scans
because it also drops bleeds smaller or thinner than it.

All the labelled scans (training and validation), not the validation scans alone: a small
site's few validation scans hold one or two bleed-free scans, so which rule wins was noise
(the 21 rules scored within 0.025 of each other on nih's 8 validation scans, and the one chosen
gave 0.45 on the test scans where the one all 40 scans choose gives 0.59). The rule is three
numbers (threshold, volume, core), and a time-budgeted model scores about the same whole-scan
Dice on its training scans as on held-out ones (0.54 on nih's 40 scans, 0.39 on its 8
validation scans, 0.45-0.59 on its 20 test scans), so fitting them to the training scans
costs little. (The study's 1.5-minute networks chose 5 mL everywhere this way; measured in
docs/experiments.md.)
"""

from dataclasses import replace
from itertools import product

import numpy as np
import torch
from scipy import ndimage

from ichfed.data.prepare import PreparedScan
from ichfed.model.config import ModelSpec
from ichfed.model.postprocess import CONNECTIVITY, LesionRule
from ichfed.model.slices import scan_probabilities
from ichfed.preprocess.morphology import disk

# Thresholds below 0.5 too: a network trained on patches can be under-confident on the faint
# edges of whole bleeds (on nih's 60 test scans one network scored 0.579 at 0.5 and 0.590 at
# 0.3 under its best rule, another 0.498 and 0.499); the labelled scans choose
RULES = tuple(LesionRule(ml, core, threshold) for threshold, core, ml in product(
    (0.3, 0.4, 0.5), (0.0, 1.5, 2.5), (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)))


def _scan_dice(prob: np.ndarray, scan: PreparedScan, spec: ModelSpec) -> dict[LesionRule, float]:
    """Dice of every rule on one scan (what `binarise` with that rule would score, computed
    from per-component counts so the rules of one threshold share one labelling)."""
    truth = scan.label > 0
    voxel_ml = float(np.prod(scan.spacing)) / 1000.0
    scores = {}
    for threshold in sorted({r.threshold for r in RULES}):
        mask = (prob >= threshold) & scan.brain
        comps, count = ndimage.label(mask, CONNECTIVITY)
        sizes = np.bincount(comps.ravel(), minlength=count + 1)
        overlap = np.bincount(comps[truth], minlength=count + 1)
        cores = {core: np.bincount(comps[ndimage.binary_erosion(mask, disk(core, scan.spacing))],
                                   minlength=count + 1) > 0 if core > 0
                 else np.ones(count + 1, bool) for core in {r.core_mm for r in RULES}}
        for rule in (r for r in RULES if r.threshold == threshold):
            min_voxels = max(spec.min_component_voxels,
                             int(np.ceil(rule.min_ml / voxel_ml)) if rule.min_ml > 0 else 0)
            keep = (sizes >= min_voxels) & cores[rule.core_mm]
            keep[0] = False
            total = int(sizes[keep].sum()) + int(truth.sum())
            scores[rule] = 1.0 if total == 0 else 2.0 * int(overlap[keep].sum()) / total
    return scores


def dice_by_rule(net: torch.nn.Module, spec: ModelSpec, scans: list[PreparedScan],
                 device: torch.device) -> dict[LesionRule, float]:
    """Mean Dice over `scans` (both masks empty counts 1) of every candidate rule, on the
    working grid where the labels are. Only these numbers leave a site in a federation."""
    net.eval()
    per_scan = [_scan_dice(scan_probabilities(scan, net, spec, device)[0], scan, spec)
                for scan in scans]
    return {rule: float(np.mean([s[rule] for s in per_scan])) if per_scan else 0.0
            for rule in RULES}


def pick_rule(means: dict[LesionRule, float]) -> LesionRule:
    """The best mean Dice; on a tie (to 3 decimals) the mildest rule, which loses fewest
    bleeds, at the threshold nearest 0.5."""
    return max(means, key=lambda r: (round(means[r], 3), -r.core_mm, -r.min_ml,
                                     -abs(r.threshold - 0.5)))


def rule_key(rule: LesionRule) -> str:
    """How a rule's score is named in a training summary and in a site's reply."""
    return f"dice-threshold-{rule.threshold}-min-ml-{rule.min_ml}-core-mm-{rule.core_mm}"


def with_rule(spec: ModelSpec, rule: LesionRule) -> ModelSpec:
    """The spec that `predict` applies `rule` with."""
    return replace(spec, threshold=rule.threshold, min_lesion_ml=rule.min_ml,
                   min_core_mm=rule.core_mm)


def choose(spec: ModelSpec, means: dict[LesionRule, float], scans: int
           ) -> tuple[ModelSpec, dict]:
    """The spec with the best rule, and the training summary's record of the choice (mean
    Dice over `scans` labelled scans)."""
    best = pick_rule(means)
    return with_rule(spec, best), {
        "lesion_rule": {"threshold": best.threshold, "min_lesion_ml": best.min_ml,
                        "min_core_mm": best.core_mm,
                        "dice": round(means[best], 4), "scans": scans},
        "dice_by_rule": {rule_key(r): round(d, 4) for r, d in means.items()}}
