"""End-to-end `predict` latency (read, brain mask, infer, write) for a full-size scan, the
network time alone (uncropped), the brain mask alone, and peak memory (issue: segmentation
core, speed).

The weights are freshly initialised (latency does not depend on their values); the scan is a
full-size built-in vumc scan of 512x512x36 (its scanner at 4.3 mm slices: the template-based
heads give 31 slices at 5 mm). The model works at about the pixel size
training on the built-in nih site's full-size scans gives it (the middle of its 0.45-0.5 mm
range, 0.475; 40 such scans resolved to 0.482), as a trained model would, so the scan (vumc,
0.43-0.55 mm) is resampled there and back; `--inplane-mm native` skips that (every run before
2026-12-02 left it unresolved, i.e. native). Prints one JSON line.
End to end is the median of `--repeats` runs after a warm-up run; `stages_s` splits one more,
profiled, run into predict's own stages (cumulative: `prepare_scan` holds `to_work` and
`brain_mask`), so a GPU run shows what is left beside the network without another script.
`--slice-mm S` times a long scan instead: the thin site's scanner (0.4-0.45 mm pixels)
reconstructing S mm slices (0.625: about 250 slices of 512x512), which the model averages in
slabs to its 5 mm; predict's memory must stay bounded for such scans.
Usage: python benchmarks/predict_speed.py [--preset paper] [--device auto] [--threads N]
                                          [--inplane-mm nih|native|MM] [--repeats 3]
                                          [--slice-mm S] [--set KEY=VALUE]
"""

import argparse
import cProfile
import json
import multiprocessing
import platform
import pstats
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ichfed.cli.train import parse_overrides
from ichfed.device import resolve_device
from ichfed.infer import predict_inputs
from ichfed.io import read_ct
from ichfed.io.writer import write_nifti
from ichfed.model.bundle import load_model, save_config, save_weights
from ichfed.model.config import preset
from ichfed.model.network import build_network
from ichfed.model.slices import probabilities
from ichfed.phantom import BUILTIN, synth_case
from ichfed.preprocess import brain_mask, to_canonical

STAGES = ("read_ct", "prepare_scan", "to_work", "brain_mask", "scan_probabilities", "to_native",
          "mask_to_native", "binarise", "write_mask", "lesion_stats")


def stage_seconds(run: Callable[[], object]) -> dict[str, float]:
    """Seconds spent inside each of predict's STAGES during one profiled `run` (the brain
    mask's worker threads are waited for in its call, so their time is counted there)."""
    profiler = cProfile.Profile()
    profiler.runcall(run)
    found: dict[str, float] = {}
    for (filename, _, name), (*_, cumulative, _) in pstats.Stats(profiler).stats.items():
        if name in STAGES and "ichfed" in filename:
            found[name] = found.get(name, 0.0) + cumulative
    return {name: round(found.get(name, 0.0), 3) for name in STAGES}


def _write_scan(path: Path, slice_mm: float | None) -> list[int]:
    """Synthesize the test scan (in a child process, so its memory is not counted)."""
    vumc = BUILTIN["vumc"]
    profile = replace(vumc, scanners=tuple(replace(s, slice_mm=(4.3, 4.3)) for s in vumc.scanners))
    if slice_mm:
        thin = BUILTIN["thin"]
        profile = replace(thin, scanners=(replace(thin.scanners[0], slice_mm=(slice_mm,) * 2),))
    case = synth_case(profile, 0, 3, "full")
    write_nifti(case.image, case.affine, path)
    return list(case.image.shape)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--inplane-mm", default="nih")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument("--slice-mm", type=float, help="a long scan of these slices instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="preset override, as in `ichfed train --set`")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    spec, tspec = preset(args.preset, **parse_overrides(args.set))
    working = args.inplane_mm
    if working == "nih":
        working = float(np.median(BUILTIN["nih"].scanners[0].inplane_mm))
    spec = replace(spec, inplane_mm=working, slice_mm=5.0).resolved([])  # nih: 5 mm
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        save_weights(build_network(spec), tmp / "model")
        save_config(tmp / "model", spec, tspec.to_dict(), {"note": "benchmark, untrained"})
        scan = tmp / "scan.nii.gz"
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            shape = pool.submit(_write_scan, scan, args.slice_mm).result()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        predict_inputs([scan], tmp / "model", tmp / "warmup", device)  # first call: lazy init
        runs = []  # one run on this shared VM varies by +-1.5 s: the median of several
        for repeat in range(args.repeats):
            t0 = time.perf_counter()
            predict_inputs([scan], tmp / "model", tmp / f"out{repeat}", device)
            runs.append(time.perf_counter() - t0)
        peak_predict = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stages = stage_seconds(lambda: predict_inputs([scan], tmp / "model", tmp / "profiled",
                                                      device))

        model = load_model(tmp / "model", device)
        ct = read_ct(scan)
        can = to_canonical(ct.data, ct.affine)
        t0 = time.perf_counter()
        brain = brain_mask(can.data, can.spacing)
        brain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        probabilities(model.net, can.data * brain, spec.slice_batch, device, spec.context_slices,
                      spec.mirror)
        if device.type == "cuda":
            torch.cuda.synchronize()
        network_full = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "benchmark": "predict_speed", "preset": args.preset, "device": str(device),
        "threads": torch.get_num_threads(), "scan_shape": shape,
        "working_mm": spec.working_mm,
        "end_to_end_s": round(float(np.median(runs)), 2),
        "end_to_end_runs_s": [round(r, 2) for r in runs],
        "network_uncropped_s": round(network_full, 2),
        "brain_mask_s": round(brain_s, 2), "stages_s": stages,
        "peak_rss_predict_mb": round(peak_predict), "rss_before_predict_mb": round(rss_before),
        "peak_rss_with_uncropped_pass_mb": round(peak),
        "machine": platform.node(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
