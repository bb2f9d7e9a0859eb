"""Render a few slices of each built-in site (brain window, label contour) into docs/.

Usage: .venv/bin/python docs/render_sites.py [--size reduced|full]
"""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from ichfed.phantom import BUILTIN, synth_case
from ichfed.report.overlay import draw_axial, save_figure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="full")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fig, axes = plt.subplots(len(BUILTIN), 4, figsize=(13, 3.4 * len(BUILTIN)))
    for row, (name, profile) in enumerate(BUILTIN.items()):
        shown, index = 0, 0
        while shown < 4 and index < 20:
            case = synth_case(profile, args.seed, index, args.size)
            index += 1
            ras = nib.orientations.apply_orientation(
                case.mask, nib.orientations.io_orientation(case.affine))
            per_slice = ras.sum(axis=(0, 1))
            if not per_slice.any():
                continue
            k = int(np.argmax(per_slice))
            kinds = ", ".join(f"{les['kind']}" + (f" ({les['phase']})" if les["kind"] ==
                                                  "subdural" else "")
                              for les in case.params["lesions"])
            draw_axial(axes[row, shown], case.image, case.affine, k, {"label": case.mask},
                       title=f"{case.name}: {kinds}")
            shown += 1
    out = save_figure(fig, Path(__file__).parent / f"phantom_sites_{args.size}.png")
    print(out)


if __name__ == "__main__":
    main()
