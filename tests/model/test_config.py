"""How a model's working spacing is resolved from its training scans; overrides of a preset
are checked against each setting's type and range."""

import pytest

from ichfed.errors import IchfedError
from ichfed.model.config import ModelSpec, preset


def test_auto_takes_the_median_native_keeps_each_scan():
    spacings = [(0.5, 5.0), (0.9, 2.0), (0.7, 5.0)]
    spec = ModelSpec(inplane_mm="auto", slice_mm="native").resolved(spacings)
    assert spec.working_mm == 0.7 and spec.working_slice_mm is None
    spec = ModelSpec(inplane_mm=0.6, slice_mm="auto").resolved(spacings)
    assert spec.working_mm == 0.6 and spec.working_slice_mm == 5.0


def test_auto_without_training_scans_is_an_error_not_nan():
    with pytest.raises(IchfedError, match="at least one training scan"):
        ModelSpec(inplane_mm="auto").resolved([])
    assert ModelSpec(inplane_mm=0.7, slice_mm=5.0).resolved([]).working_mm == 0.7


def test_overrides_take_their_settings_types():
    spec, train = preset("demo", lr=1, features=[8, 8, 16, 16, 32, 8], hu_window=None,
                         inplane_mm=0.7, augment=False)
    assert train.lr == 1.0 and isinstance(train.lr, float)
    assert spec.features == (8, 8, 16, 16, 32, 8) and spec.hu_window is None
    assert spec.inplane_mm == 0.7 and train.augment is False
    assert preset("demo", inplane_mm="native")[0].working_mm is None


@pytest.mark.parametrize(("key", "value", "message"), [
    ("lr", "abc", 'lr="abc": expected a number'),
    ("seed", True, "seed=true: expected a whole number"),
    ("augment", 1, "augment=1: expected true or false"),
    ("max_epochs", 2.5, "max_epochs=2.5: expected a whole number"),
    ("hu_window", [0, 100, 200], "expected a list such as"),
    ("inplane_mm", "fine", "inplane_mm 'fine': give a size in mm, auto or native"),
    ("norm", "group", "norm 'group'"),
    ("features", [8, 8], "features: six widths"),
    ("max_epochs", 0, "max_epochs and patience: at least 1"),
    ("patch", 40, "patch: a multiple of 16"),
    ("lr", -1e-3, "lr: above 0"),
    ("threshold", 1.5, "threshold: between 0 and 1"),
])
def test_a_mistyped_or_out_of_range_override_is_a_one_line_error(key, value, message):
    with pytest.raises(IchfedError, match=message.replace("[", r"\[")):
        preset("demo", **{key: value})
