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


def _site(root, labels: str | None, codes: tuple[int, ...]):
    """Tiny cases whose bleed is coded `codes[c]`; site.json declares `labels` if given."""
    import json

    from tests.helpers import save_nifti, tiny_head, tiny_lesion

    for c, code in enumerate(codes):
        vol = tiny_head(seed=c)
        save_nifti(vol, np.diag([0.9, 0.9, 5.0, 1.0]), root / "images" / f"c{c}.nii.gz")
        save_nifti(code * tiny_lesion(vol), np.diag([0.9, 0.9, 5.0, 1.0]),
                   root / "masks" / f"c{c}.nii.gz")
    if labels:
        (root / "site.json").write_text(json.dumps({"labels": labels}))
    return root


@pytest.mark.parametrize(("labels", "codes", "typed"), [
    ("types", (1, 1), True),  # declared: 1 is epidural
    ("types", (2, 0), True),  # a bleed-free scan of a typed site, resampled
    (None, (1, 3), True),  # a code above 1 makes the site typed
    (None, (1, 1), False),  # only 1: blood, no type
    ("binary", (1, 1), False)])
def test_a_typed_model_keeps_types_only_from_sites_that_label_them(tmp_path, labels, codes,
                                                                    typed):
    from dataclasses import replace

    from ichfed.data.prepare import load_site_scans, site_labels

    spec = replace(ModelSpec(hu_window=(0.0, 150.0), hu_scale=1 / 150, inplane_mm=0.6),
                   labels="types")
    scans = load_site_scans(_site(tmp_path, labels, codes), spec)
    assert site_labels(tmp_path) == ("types" if typed else "binary")  # what a site tells
    for scan, code in zip(scans, codes, strict=True):
        assert scan.label.any() == (code > 0)
        if typed and code == 0:
            assert scan.types.shape == scan.label.shape and not scan.types.any()
        elif typed:  # on the working grid: every bleed voxel has its code, nothing else has one
            assert set(np.unique(scan.types[scan.label > 0])) == {code}
            assert not scan.types[scan.label == 0].any()
        else:
            assert scan.types is None
    # a binary model never keeps types
    assert all(s.types is None for s in load_site_scans(tmp_path, replace(spec, labels="binary")))
