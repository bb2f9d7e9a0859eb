"""How a model's working spacing is resolved from its training scans."""

import pytest

from ichfed.errors import IchfedError
from ichfed.model.config import ModelSpec


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
