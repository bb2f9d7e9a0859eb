"""Training to convergence on one site or several pooled sites: early stopping on the
validation loss, the best checkpoint kept, and a resumable checkpoint after every epoch."""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ichfed.data import PatchSet, PreparedScan, load_site_scans
from ichfed.data.prepare import bone_and_top, intensity_range, site_spacings
from ichfed.errors import IchfedError
from ichfed.io import open_site
from ichfed.model.bundle import CONFIG, load_weights, save_config, save_weights
from ichfed.model.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from ichfed.model.config import ModelSpec, TrainSpec
from ichfed.train.calibrate import choose, dice_by_rule
from ichfed.train.stopping import record, stop_reason
from ichfed.train.trainer import Trainer, training_trainer


def split_scans(scans: list, fraction: float, seed: int,
                sizes: list[float] | None = None) -> tuple[list, list]:
    """Validation scans by scan (never by patch); at least one when there are two or more.

    With `sizes` (lesion volumes) the split is stratified: the scans are ranked by size and one
    validation scan is drawn from each of `n_val` consecutive groups, so a small site's few
    validation scans span small, large and bleed-free cases instead of, by chance, only
    bleed-free and tiny ones (which left a site's validation loss flat and its best checkpoint
    and lesion rule chosen on noise)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(scans))
    n_val = max(1, int(round(fraction * len(scans)))) if len(scans) > 1 else 0
    if sizes is None or n_val == 0:
        val = list(order[:n_val])
    else:
        ranked = order[np.argsort([sizes[i] for i in order], kind="stable")]
        val = [int(rng.choice(group)) for group in np.array_split(ranked, n_val)]
    chosen = set(val)
    return [scans[i] for i in order if i not in chosen], [scans[i] for i in val]


def split_site(root: Path, spec: ModelSpec, tspec: TrainSpec,
               cache: Path | None = None) -> tuple[list, list]:
    """A site's labelled scans, prepared and split into train and validation scans,
    stratified by lesion volume."""
    scans = load_site_scans(root, spec, cache)
    sizes = [float(s.label.sum()) * float(np.prod(s.spacing)) for s in scans]
    return split_scans(scans, tspec.val_fraction, tspec.seed, sizes)


def _scanner_shift(spec: ModelSpec, tspec: TrainSpec) -> tuple[float, ...] | None:
    """`TrainSpec.hu_shift` and `noise_hu` in network units, with the input's range."""
    if not (tspec.augment and (tspec.hu_shift > 0 or tspec.noise_hu > 0)):
        return None
    return (tspec.hu_shift * spec.hu_scale, tspec.noise_hu * spec.hu_scale,
            *intensity_range(spec))


def make_patches(train_scans: list[PreparedScan], val_scans: list[PreparedScan], spec: ModelSpec,
                 tspec: TrainSpec, device: torch.device) -> tuple[PatchSet, PatchSet]:
    """Training and validation patches, drawn with seeds fixed by the TrainSpec."""
    if not val_scans:
        raise IchfedError("training needs at least two labelled scans (one for validation)")
    options = {"background_ratio": tspec.background_ratio, "context": spec.context_slices,
               "edge_mm": tspec.edge_mm, "types": spec.typed}
    return (PatchSet(train_scans, tspec.patch, tspec.lesion_patches, tspec.seed, device,
                     augment=tspec.augment, bone=bone_and_top(spec),
                     missed_rim_mm=tspec.missed_rim_mm, sharp_rim_mm=tspec.sharp_rim_mm,
                     intensity=_scanner_shift(spec, tspec), **options),
            PatchSet(val_scans, tspec.patch, tspec.lesion_patches, tspec.seed + 1, device,
                     **options))


def check_out(out: Path, resume: bool) -> None:
    """Refuse to overwrite a finished model or a file; refuse to resume what has no checkpoint
    (before any scan is prepared)."""
    if out.exists() and not out.is_dir():
        raise IchfedError(f"{out}: exists and is not a folder")
    if resume and not (out / CHECKPOINT).exists():
        raise IchfedError(f"{out}: nothing to resume (no {CHECKPOINT}; finished or new)")
    if not resume and ((out / CHECKPOINT).exists() or (out / CONFIG).exists()):
        raise IchfedError(f"{out}: already holds a model; use --resume or another folder")


def fit(train_scans: list[PreparedScan], val_scans: list[PreparedScan], spec: ModelSpec,
        tspec: TrainSpec, out: Path, device: torch.device, resume: bool = False,
        meta: dict | None = None, on_epoch: Callable[[dict], None] | None = None,
        on_batch: Callable[[int], None] | None = None) -> dict:
    """Train, keep the best weights in `out` (with `calibrate`: the validation best or the last
    epoch's, see `_keep_better`), write its config; returns the training summary."""
    out.mkdir(parents=True, exist_ok=True)
    train_patches, val_patches = make_patches(train_scans, val_scans, spec, tspec, device)
    trainer = training_trainer(spec, tspec, device)
    state = {"epoch": 0, "best": float("inf"), "best_step": 0, "wait": 0, "history": [],
             "seconds": 0.0}
    checkpoint = out / CHECKPOINT
    check_out(out, resume)
    if resume:
        saved = load_checkpoint(out, device)
        trainer.load_state(saved)
        state = {k: saved[k] for k in state}

    stopped = "max epochs"
    start = time.time() - state["seconds"]
    while state["epoch"] < tspec.max_epochs:
        epoch = state["epoch"] + 1
        t0 = time.time()
        train_loss = trainer.train_epoch(train_patches, epoch, on_batch)
        val_loss, _ = trainer.validation_loss(val_patches, val_scans)
        row = {"epoch": epoch, "train_loss": round(train_loss, 5),
               "val_loss": round(val_loss, 5), "seconds": round(time.time() - t0, 2)}
        state["history"].append(row)
        state["epoch"] = epoch
        if record(state, val_loss, epoch, tspec):
            save_weights(trainer.model, out)
        state["seconds"] = time.time() - start
        save_checkpoint(out, {**state, **trainer.state()})
        if on_epoch:  # with the run's seconds so far, a resumed run's earlier ones included
            on_epoch({**row, "elapsed": state["seconds"]})
        if reason := stop_reason(state, tspec):
            stopped = reason
            break
    calibration, kept = {}, state["best_step"]
    if tspec.calibrate:
        scans = train_scans + val_scans  # why all of them: see ichfed.train.calibrate
        kept, means = _keep_better(trainer, spec, scans, out, device, state)
        spec, calibration = choose(spec, means, len(scans))
    summary = {
        **(meta or {}), "train_scans": len(train_scans), "val_scans": len(val_scans),
        "train_patches": len(train_patches), "val_patches": len(val_patches),
        "epochs": state["epoch"], "best_epoch": state["best_step"], "kept_epoch": kept,
        "best_val_loss": round(state["best"], 5), "stopped": stopped,
        "seconds": round(state["seconds"], 1), "device": str(device),
        # bf16 on CPUs with it in hardware, else fp32: the two train different models
        "precision": "bf16" if trainer.bf16 else "fp32",
        "history": state["history"],
        **calibration,
    }
    save_config(out, spec, tspec.to_dict(), summary)
    checkpoint.unlink()
    return summary


def _keep_better(trainer: Trainer, spec: ModelSpec, scans: list[PreparedScan], out: Path,
                 device: torch.device, state: dict) -> tuple[int, dict]:
    """Between the validation-best weights (saved in `out`) and the last epoch's (in
    `trainer.model`), keep in `out` those with the higher mean Dice on all the labelled `scans`
    under their best lesion rule; returns the kept epoch and its Dice per rule.

    Why: a site's few validation scans score whole-scan Dice that wanders by about 0.04 from
    epoch to epoch once the network has learned the easy bleeds (epoch 2-3 here), so the
    validation best can be a young network by chance: three runs on nih kept epoch 2 of 10, and
    those networks scored 0.45-0.47 on all 40 labelled scans where a later one scored 0.54.
    The pass over all the scans is the one the lesion rule needs anyway (once more when the
    two differ)."""
    last_epoch, best_epoch = state["epoch"], state["best_step"]
    net = trainer.model
    last = dice_by_rule(net, spec, scans, device)
    if best_epoch == last_epoch:
        return last_epoch, last
    last_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(load_weights(out, device))
    best = dice_by_rule(net, spec, scans, device)
    if max(last.values()) <= max(best.values()):
        return best_epoch, best
    net.load_state_dict(last_weights)
    save_weights(net, out)
    return last_epoch, last


def train_sites(sites: list[Path], out: Path, spec: ModelSpec, tspec: TrainSpec,
                device: torch.device, resume: bool = False, **callbacks) -> dict:
    """One model from one or more sites pooled (the centralized reference). Each site is split
    into train and validation scans on its own, so every site is represented in both."""
    check_out(out, resume)
    spec = spec.resolved([s for root in sites for s in site_spacings(root)])
    train, val, names = [], [], []
    for root in sites:
        names.append(open_site(root).name)
        t, v = split_site(root, spec, tspec)
        train += t
        val += v
    if spec.typed and not any(scan.types is not None for scan in train + val):
        raise IchfedError(f"--set labels=types: no site of {', '.join(map(str, sites))} labels "
                          "bleed types (site.json \"labels\": \"types\"); a typed model "
                          "needs at least one")
    meta = {"sites": names}
    return fit(train, val, spec, tspec, out, device, resume=resume, meta=meta, **callbacks)
