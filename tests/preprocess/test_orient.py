"""Canonical orientation and back is exact for any axis order and flip."""

import numpy as np
import pytest

from ichfed.preprocess import to_canonical

AFFINES = {
    "RAS": np.diag([1.0, 1.0, 5.0, 1.0]),
    "LPS": np.diag([-1.0, -1.0, 5.0, 1.0]),
    "permuted": np.array([[0, 0, -5.0, 0], [1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]]),
}


@pytest.mark.parametrize("name", AFFINES)
def test_round_trip(name):
    data = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)
    can = to_canonical(data, AFFINES[name])
    assert "".join(__import__("nibabel").aff2axcodes(can.affine)) == "RAS"
    np.testing.assert_array_equal(can.to_stored(can.data), data)
    np.testing.assert_allclose(can.stored_affine, AFFINES[name])
