"""The study report's bleed-type table, from types.csv's per-scan rows."""

import math

from ichfed.experiment.bleed_types import types_table
from ichfed.io.labels import TYPES


def _row(model: str, epidural: float, subdural: float, swapped: float = 0.0) -> dict:
    row = {"model": model, "site": "nih", "case": "c"}
    for name in TYPES.values():
        row.update({f"{name}_dice": math.nan, f"{name}_pred_ml": 0.0, f"{name}_true_ml": 0.0})
    row.update(epidural_dice=epidural, epidural_true_ml=2.0, epidural_pred_ml=2.0,
               subdural_dice=subdural, subdural_true_ml=8.0 if subdural >= 0 else 0.0,
               epidural_subdural_swapped_ml=swapped)
    return row


def test_each_type_is_its_mean_dice_over_the_scans_that_hold_it():
    rows = [_row("cwt", 0.5, 0.7, swapped=1.0), _row("cwt", 0.3, -1)]
    (line,) = types_table(rows)
    assert line["model"] == "cwt" and line["site"] == "nih"
    assert line["epidural"] == "0.400 (2)" and line["subdural"] == "0.700 (1)"
    assert line["subarachnoid"] == "-"
    assert line["epidural/subdural swapped"] == "8.3%"  # 1 mL of 2 + 8 + 2 mL
