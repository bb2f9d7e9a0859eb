"""Built-in sites can label bleed types: the same voxels as their binary masks, each coded
with its bleed's type as the site's protocol labels it; `ichfed check` reports the label set."""

import json

import numpy as np

from ichfed.check import check_site
from ichfed.data.prepare import _prepare_all
from ichfed.io import open_site
from ichfed.io.labels import TYPES
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_case, synth_site

CODE = {name: code for code, name in TYPES.items()}


def test_a_type_map_has_the_binary_masks_voxels_and_the_bleeds_types():
    binary = synth_case(BUILTIN["vumc"], 0, 0)  # an epidural, subarachnoid blood, a contusion
    typed = synth_case(BUILTIN["vumc"], 0, 0, labels="types")
    np.testing.assert_array_equal(typed.image, binary.image)
    np.testing.assert_array_equal(typed.mask > 0, binary.mask > 0)
    codes = set(np.unique(typed.mask)) - {0}
    assert codes == {CODE["epidural"], CODE["subarachnoid"], CODE["intraparenchymal"]}
    # each type's volume is its bleed's (vumc's annotators draw generously, oedema included)
    voxel_ml = abs(np.linalg.det(typed.affine[:3, :3])) / 1000
    drawn = {c: (typed.mask == c).sum() * voxel_ml for c in codes}
    true = {CODE.get(les["kind"], CODE["intraparenchymal"]): les["true_ml"]
            for les in typed.params["lesions"]}
    for kind in ("epidural", "subarachnoid"):
        assert 0.5 < drawn[CODE[kind]] / true[CODE[kind]] < 2, kind
    assert drawn[CODE["intraparenchymal"]] > true[CODE["intraparenchymal"]]
    assert typed.params["labels"] == "types"


def test_a_protocol_that_leaves_subarachnoid_blood_unlabelled_leaves_it_0():
    lesions = [les["kind"] for les in synth_case(BUILTIN["thin"], 0, 9).params["lesions"]]
    assert "subarachnoid" in lesions
    typed = synth_case(BUILTIN["thin"], 0, 9, labels="types")
    codes = set(np.unique(typed.mask)) - {0}
    assert CODE["subarachnoid"] not in codes and CODE["subdural"] in codes


def test_check_reports_a_typed_site(tmp_path):
    root = synth_site(tmp_path / "vumc", BUILTIN["vumc"], 2, labels="types")
    assert json.loads((root / "site.json").read_text())["labels"] == "types"
    findings = check_site(root)
    assert findings.usable, findings.problems
    assert findings.labels == "types" and findings.types["epidural"] == 1
    # today's models read any blood: a typed site's prepared labels are its binary masks
    spec, _ = preset("demo", inplane_mm=None, slice_mm=None)
    prepared = _prepare_all(open_site(root), spec)
    assert all(set(np.unique(scan.label)) <= {0, 1} for scan in prepared)
    assert any(scan.label.any() for scan in prepared)
    assert check_site(synth_site(tmp_path / "binary", BUILTIN["vumc"], 1)).labels == "binary"
    # a typed label in a site that says it is binary is a problem naming the mask
    info = json.loads((root / "site.json").read_text())
    (root / "site.json").write_text(json.dumps({**info, "labels": "binary"}))
    findings = check_site(root)
    assert any(p.startswith(str(root / "masks")) and "binary site" in p
               for p in findings.problems)
