"""Training throughput (patches/s) of a preset through ichfed's own Trainer and PatchSet, and
in the same run the plain MONAI reference of field.md (BasicUNet on random tensors already on
the device, batch-wide Dice loss, Adam), so the two are compared on one machine.

The scans are random full-size volumes (512x512, 36 slices, a brain-sized ellipse, a few
bleeds): throughput does not depend on the values. Prints one JSON line.
Usage: python benchmarks/train_speed.py [--preset paper] [--device auto] [--scans 4]
       [--compile] [--reference] [--max-patches N]
"""

import argparse
import json
import platform
import time

import numpy as np
import torch
from monai.losses import DiceLoss

from ichfed.cli.train import parse_overrides
from ichfed.data.patches import PatchSet
from ichfed.data.prepare import PreparedScan
from ichfed.device import resolve_device
from ichfed.model.config import preset
from ichfed.model.network import build_network
from ichfed.preprocess.resample import Grid
from ichfed.train.trainer import Trainer


def _scan(rng: np.random.Generator) -> PreparedScan:
    x, y, z = np.ogrid[-1:1:512j, -1:1:512j, -1:1:36j]
    brain = (x / 0.75) ** 2 + (y / 0.65) ** 2 + (z / 1.2) ** 2 < 1
    label = np.zeros(brain.shape, np.uint8)
    for cx, cy in rng.uniform(-0.4, 0.4, (3, 2)):
        label[((x - cx) ** 2 + (y - cy) ** 2 < 0.01) & (np.abs(z) < 0.5)] = 1
    label &= brain
    image = np.where(brain, rng.normal(30, 5, brain.shape) + 40 * label, 0).astype(np.float32)
    return PreparedScan(image, brain, label, None, 0.001, Grid(brain.shape, brain.shape),
                        (0.45, 0.45, 5.0))


def _timed(step, n_batches: int, sync) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(n_batches):
        step()
    sync()
    return time.perf_counter() - t0


def ours(spec, tspec, device, scans, sync) -> dict:
    patches = PatchSet(scans, tspec.patch, tspec.lesion_patches, 0, device,
                       tspec.background_ratio, spec.context_slices, tspec.edge_mm)
    trainer = Trainer(spec, tspec, device)
    t0 = time.perf_counter()
    trainer.train_epoch(patches, epoch=1)  # warm-up (and compilation)
    warm = time.perf_counter() - t0
    sync()
    t0 = time.perf_counter()
    trainer.train_epoch(patches, epoch=2)
    sync()
    seconds = time.perf_counter() - t0
    return {"patches_per_s": round(len(patches) / seconds, 1), "patches": len(patches),
            "warmup_epoch_s": round(warm, 1)}


def reference(spec, tspec, device, sync, n_batches: int) -> dict:
    """field.md's reference: the same network on a fixed random batch already on the device,
    bf16 autocast + channels_last (+ compile) on CUDA, plain fp32 on the CPU (field.md's
    CPU figure), whatever ichfed itself uses there."""
    torch.manual_seed(0)
    net = build_network(spec).to(device)
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    net = net.to(memory_format=fmt)
    fwd = torch.compile(net) if (tspec.compile and cuda) else net
    opt = torch.optim.Adam(net.parameters(), lr=tspec.lr)
    loss_fn = DiceLoss(sigmoid=True, batch=True)
    c = 1 + 2 * spec.context_slices
    x = torch.randn(tspec.batch_size, c, tspec.patch, tspec.patch, device=device).to(
        memory_format=fmt)
    y = (torch.rand(tspec.batch_size, 1, tspec.patch, tspec.patch, device=device) > 0.9).float()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = fwd(x)
        loss_fn(out.float(), y).backward()
        opt.step()

    _timed(step, 3, sync)  # warm-up (and compilation)
    seconds = _timed(step, n_batches, sync)
    return {"patches_per_s": round(n_batches * tspec.batch_size / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scans", type=int, default=4)
    parser.add_argument("--max-patches", type=int, default=0,
                        help="lesion patches per scan (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="preset override, as in `ichfed train --set`")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    overrides = {"compile": args.compile, **parse_overrides(args.set)}
    if args.max_patches:
        overrides["lesion_patches"] = args.max_patches
    spec, tspec = preset(args.preset, **overrides)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    scans = [_scan(rng) for _ in range(args.scans)]
    result = {"benchmark": "train_speed", "preset": args.preset, "device": str(device),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "cpu_threads": torch.get_num_threads(), "compile": args.compile,
              "batch": tspec.batch_size, "patch": tspec.patch,
              "ichfed": ours(spec, tspec, device, scans, sync)}
    if args.reference:
        n = max(3, result["ichfed"]["patches"] // tspec.batch_size // 2)
        result["monai_reference"] = reference(spec, tspec, device, sync, n)
        result["ratio_to_reference"] = round(result["ichfed"]["patches_per_s"]
                                             / result["monai_reference"]["patches_per_s"], 3)
    result.update(torch=torch.__version__, python=platform.python_version())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
