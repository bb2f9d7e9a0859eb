"""A site's side of a round, engine-free: in a federation of a typed model, a site whose masks
say only "blood" trains the blood output (through the shared network) and leaves the type
outputs to the sites that label types."""

import json

import numpy as np
import torch

from ichfed.federated.local import local_update, open_local_site
from ichfed.federated.plan import Plan
from ichfed.federated.server_app import initial_weights
from ichfed.model.config import preset
from tests.helpers import save_nifti, tiny_head, tiny_lesion

TINY = dict(features=(4, 4, 8, 8, 16, 4), patch=32, lesion_patches=8, batch_size=8)
CPU = torch.device("cpu")


def _site(root, labels: str, code: int):
    for c in range(2):
        vol = tiny_head(seed=c)
        save_nifti(vol, np.diag([0.9, 0.9, 5.0, 1.0]), root / "images" / f"c{c}.nii.gz")
        save_nifti(code * tiny_lesion(vol), np.diag([0.9, 0.9, 5.0, 1.0]),
                   root / "masks" / f"c{c}.nii.gz")
    (root / "site.json").write_text(json.dumps({"labels": labels}))
    return root


def test_a_binary_site_trains_a_typed_models_blood_and_leaves_its_types(tmp_path):
    spec, tspec = preset("demo", labels="types", max_minutes=0, val_fraction=0.5, **TINY)
    start = initial_weights(Plan(model=spec, train=tspec))
    last = ("final_conv.weight", "final_conv.bias")  # rows: blood, then the five types
    moved = {}
    for labels, code in (("binary", 1), ("types", 2)):
        site = open_local_site(_site(tmp_path / labels, labels, code), spec, tspec, CPU)
        update = local_update(site, spec, tspec, CPU, start, epoch=1)
        for key in last:
            new, old = update.weights[key], start[key]
            moved[labels, key] = (not torch.equal(new[:1], old[:1]),
                                  not torch.equal(new[1:], old[1:]))
    for key in last:  # (blood output moved, type outputs moved)
        assert moved["binary", key] == (True, False)
        assert moved["types", key] == (True, True)
