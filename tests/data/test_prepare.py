import numpy as np
import pytest

from ichfed.data.prepare import normalise
from ichfed.errors import IchfedError
from ichfed.model.config import ModelSpec, preset

WINDOW = dict(hu_window=(0.0, 150.0), hu_scale=1 / 150)


def test_the_input_is_the_windowed_brain_and_zero_outside():
    hu = np.array([[-1000.0, 30.0], [1200.0, 75.0]])
    brain = np.array([[False, True], [False, True]])
    out = normalise(hu, brain, ModelSpec(**WINDOW))
    assert np.allclose(out, [[0.0, 0.2], [0.0, 0.5]])


def test_skull_context_keeps_the_window_outside_the_brain():
    hu = np.array([[-1000.0, 30.0], [1200.0, 75.0]])
    brain = np.array([[False, True], [False, True]])
    out = normalise(hu, brain, ModelSpec(**WINDOW, skull_context=True))
    assert np.allclose(out, [[0.0, 0.2], [1.0, 0.5]])  # bone at the window's top, air at 0


def test_skull_context_without_a_window_is_refused():
    with pytest.raises(IchfedError, match="skull_context needs an hu_window"):
        preset("paper", skull_context=True)
