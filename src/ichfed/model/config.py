"""Presets: what the network is and sees (ModelSpec, saved with the weights) and how it learns
(TrainSpec). Pure data, so listings and --help need no torch."""

import json
import types
import typing
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ichfed.errors import IchfedError
from ichfed.io.labels import LABEL_SETS, TYPES

NORMS = (None, "batch", "instance")


MAX_WIDTH = 1024  # the widest level a network may have (the paper's is 512)


def _require(condition: bool, message: str) -> None:
    """A setting out of its range is a one-line error when the preset is made, not a
    traceback deep in training."""
    if not condition:
        raise IchfedError(message)


@dataclass(frozen=True)
class ModelSpec:
    """Everything `predict` needs besides the weights."""

    features: tuple[int, ...] = (32, 64, 128, 256, 512, 32)  # MONAI BasicUNet widths
    deep_dropout: float = 0.5  # dropout in the two deepest encoder levels
    norm: str | None = None  # the paper used no normalisation layers
    hu_window: tuple[float, float] | None = None  # None: raw HU (the paper)
    hu_scale: float = 1.0
    # True (with a window): the window's values outside the brain too, so the network sees the
    # bone a bright rim lies against; False: 0 outside the brain (the paper)
    skull_context: bool = False
    context_slices: int = 0  # neighbours on each side given as extra channels (0: the paper's 2D)
    mirror: bool = False  # average with the left-right mirrored prediction (twice the passes)
    # >0: the output layer starts out predicting this probability of bleed everywhere (its
    # bias at the log-odds); 0: PyTorch's default initialisation (the paper)
    output_prior: float = 0.0
    threshold: float = 0.5
    min_component_voxels: int = 27
    min_lesion_ml: float = 0.0  # components under this volume are dropped too (0: off)
    min_core_mm: float = 0.0  # components no disk of this radius fits in are dropped (0: off)
    slice_batch: int = 8  # whole axial slices per forward pass at inference
    # In-plane pixel size (mm) the network works at: scans are resampled to it and masks mapped
    # back. "auto": the median of the training sites (resolved when training starts);
    # "native" or None: no resampling (the paper).
    inplane_mm: float | str | None = "auto"
    # Slice thickness (mm) the network works at: a scan with slices at least 1.5x thinner is
    # averaged in slabs of whole slices to it (preprocess/resample.py). "auto": the median of
    # the training sites; "native" or None: every scan's own slices.
    slice_mm: float | str | None = "auto"
    # "binary": one output, blood (the paper); "types": also one output per bleed type
    # (io/labels.py), trained where a site's masks give types (train/loss.py, model/slices.py)
    labels: str = "binary"

    def __post_init__(self) -> None:
        for name in ("inplane_mm", "slice_mm"):
            value = getattr(self, name)
            _require(not isinstance(value, str) or value in ("auto", "native"),
                     f"{name} '{value}': give a size in mm, auto or native")
        _require(self.labels in LABEL_SETS,
                 f"labels '{self.labels}': choose {' or '.join(LABEL_SETS)}")
        _require(self.norm in NORMS, f"norm '{self.norm}': choose batch, instance or null")
        _require(len(self.features) == 6, "features: six widths (five levels and the output's)")
        # bounded, so that a model folder's config cannot make ichfed build a giant network
        _require(all(isinstance(f, int) and 1 <= f <= MAX_WIDTH for f in self.features),
                 f"features: whole numbers from 1 to {MAX_WIDTH}")
        _require(isinstance(self.context_slices, int) and 0 <= self.context_slices <= 8,
                 "context_slices: 0 to 8")
        _require(0 <= self.deep_dropout < 1, "deep_dropout: from 0 to below 1")
        _require(0 < self.threshold < 1, "threshold: between 0 and 1")
        _require(self.hu_window is None or self.hu_window[0] < self.hu_window[1],
                 "hu_window: [low, high] with low below high")
        _require(self.context_slices >= 0, "context_slices: 0 or more")
        _require(self.slice_batch >= 1, "slice_batch: at least 1")
        _require(self.min_component_voxels >= 0, "min_component_voxels: 0 or more")
        _require(not self.skull_context or self.hu_window is not None,
                 "skull_context needs an hu_window: raw HU outside the brain holds the "
                 "scanner's padding (-1024 to -3024) and bone up to 3000")

    @property
    def typed(self) -> bool:
        return self.labels == "types"

    @property
    def outputs(self) -> int:
        """The network's output channels: blood, then one per type for a typed model."""
        return 1 + len(TYPES) if self.typed else 1

    @property
    def working_mm(self) -> float | None:
        """The resolved in-plane spacing, or None for the scan's own grid."""
        return float(self.inplane_mm) if isinstance(self.inplane_mm, int | float) else None

    @property
    def working_slice_mm(self) -> float | None:
        """The resolved slice thickness, or None for every scan's own."""
        return float(self.slice_mm) if isinstance(self.slice_mm, int | float) else None

    def resolved(self, spacings: list[tuple[float, float]]) -> "ModelSpec":
        """`auto` becomes the median of the training scans' (in-plane, slice) spacings,
        `native` None."""
        def one(value, values):
            if value == "auto":
                if not values:
                    raise IchfedError("'auto' spacing needs the spacings of at least one "
                                      "training scan; none were given")
                return round(float(np.median(values)), 4)
            return None if value in ("native", None) else float(value)
        return replace(self, inplane_mm=one(self.inplane_mm, [p for p, _ in spacings]),
                       slice_mm=one(self.slice_mm, [s for _, s in spacings]))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        data = dict(data)
        data.setdefault("inplane_mm", None)  # folders from before resampling: the scan's grid
        data.setdefault("mirror", False)  # folders from before mirroring
        data.setdefault("output_prior", 0.0)  # folders from before the prior
        data.setdefault("skull_context", False)  # folders from before it
        data.setdefault("slice_mm", None)  # folders from before slabs: every scan's own slices
        data.setdefault("labels", "binary")  # folders from before typed models
        data["features"] = tuple(data["features"])
        if data.get("hu_window") is not None:
            data["hu_window"] = tuple(data["hu_window"])
        return cls(**data)


SELECT_BY = ("patch-loss", "scan-dice", "last")


@dataclass(frozen=True)
class TrainSpec:
    patch: int = 128
    lesion_patches: int = 1000  # per scan
    background_ratio: float = 1.0  # non-lesion brain patches per lesion patch (the paper: 1:1)
    edge_mm: float = 0.0  # >0: half the brain patches from this rim inside the skull
    augment: bool = False  # fresh patch centres every epoch and left-right flips (not the paper)
    calibrate: bool = False  # choose the lesion rule on the site's labelled scans after training
    # What early stopping and the kept checkpoint follow: "patch-loss" (the paper: soft Dice
    # loss on validation patches) or "scan-dice" (1 - mean whole-scan Dice of the validation
    # scans under the best lesion rule: the test metric, false positives on whole scans included)
    # or "last": no early stopping, the last epoch (or round) is kept; the patch loss is only
    # reported (with a moving average of the weights and a time budget: see the demo preset)
    select_by: str = "patch-loss"
    hard_negatives: float = 0.0  # share of brain patches on the network's current false positives
    # share of lesion patches on the bleed the network currently misses (mined with the hard
    # negatives; helps faint bleeds at the model's own pixel size, costs at 2x coarser pixels)
    hard_positives: float = 0.0
    # >0: no hard positives within this rim inside the skull (mm). There the skull's partial-
    # volume rim looks like a thin subdural; mining labelled crescents of it teaches "bright rim
    # = bleed", which a coarser scanner's rim (brightened by resampling) then becomes: 4 mm met
    # the 2x pixel-size targets in one run, at a cost on the site's own scans (docs/experiments.md)
    missed_rim_mm: float = 0.0
    # >0: patches centred on bleed within this rim inside the skull (mm) are never shown
    # coarser (see PatchSet): a blurred thin crescent is the skull's own partial-volume ramp
    sharp_rim_mm: float = 0.0
    # >0 (with augment): each training patch shifted by up to +-hu_shift HU and given white
    # noise of SD up to noise_hu HU, as a scanner with another calibration or dose shows it
    hu_shift: float = 0.0
    noise_hu: float = 0.0
    batch_size: int = 128
    lr: float = 1e-4
    # >0: validate and keep an exponential moving average of the weights (this decay per step)
    # instead of the raw weights, which keep training (in a federation the average travels
    # with the weights: Trainer.travelling_state)
    average_decay: float = 0.0
    max_epochs: int = 200
    patience: int = 10
    min_delta: float = 1e-4
    val_fraction: float = 0.2  # of scans, never of patches (a patch split leaks)
    max_minutes: float = 0.0  # 0: no time budget
    # a typed model's loss: blood Dice + type_weight x the cross-entropy of the types, averaged
    # over the typed bleed voxels (at weight 1 the typed model lost 0.21-0.25 of blood Dice at
    # the demo budget; at 0.3 it matches the binary model). type_balance: each type in the
    # batch counts alike (finds the rare epidurals, loses subdurals and blood Dice).
    # Figures: BENCHMARKS.md and docs/experiments.md, "Bleed types".
    type_weight: float = 0.3
    type_balance: bool = False
    seed: int = 0
    compile: bool = False  # torch.compile the network (CUDA only; slow first epoch)
    mixed_precision: bool = True  # bf16 autocast where the device has bf16 in hardware

    def __post_init__(self) -> None:
        _require(self.select_by in SELECT_BY,
                 f"select_by '{self.select_by}': choose {' or '.join(SELECT_BY)}")
        # the U-Net halves a patch four times
        _require(self.patch >= 16 and self.patch % 16 == 0, "patch: a multiple of 16")
        _require(min(self.lesion_patches, self.batch_size, self.max_epochs, self.patience) >= 1,
                 "lesion_patches, batch_size, max_epochs and patience: at least 1")
        _require(self.lr > 0, "lr: above 0")
        _require(0 < self.val_fraction < 1, "val_fraction: between 0 and 1")
        _require(0 <= self.hard_negatives <= 1 and 0 <= self.hard_positives <= 1,
                 "hard_negatives and hard_positives: shares from 0 to 1")
        _require(0 <= self.average_decay < 1, "average_decay: from 0 to below 1")
        _require(self.max_minutes >= 0, "max_minutes: 0 (no budget) or more")
        _require(self.type_weight >= 0, "type_weight: 0 or more")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainSpec":
        return cls(**data)


PRESETS: dict[str, tuple[ModelSpec, TrainSpec, str]] = {
    "paper": (ModelSpec(), TrainSpec(),
              "The paper's 2D U-Net (7.8 M parameters), raw HU, 128x128 patches, batch 128, "
              "Adam 1e-4, early stopping patience 10. Meant for a GPU."),
    # demo keeps the last epoch's moving average (select_by="last", no early stopping): on nih
    # the average's Dice on 60 test scans rose through the budget (epoch 3 0.470, 8 0.503,
    # 11 0.556, 13 0.571) while its 8 validation scans' Dice peaked at epoch 3, and all 40
    # labelled scans rated epoch 3 above epoch 11; both choices were noise (docs/experiments.md).
    # hu_shift and noise_hu: trained on nih, the other sites' mean Dice went vumc 0.376 -> 0.538
    # and lowdose 0.163 -> 0.271 (false positives 264 -> 22 mL a scan), nih 0.554 -> 0.536
    # output_prior: the study's small networks no longer sit 4-8 epochs on the soft Dice
    # plateau (cwt 0.312 -> 0.620, FedAvg 0.255 -> 0.632 on nih); this preset 0.536 -> 0.579
    "demo": (ModelSpec(features=(16, 32, 64, 128, 256, 16), deep_dropout=0.2, norm="batch",
                       hu_window=(0.0, 150.0), hu_scale=1 / 150, context_slices=1, mirror=True,
                       output_prior=0.05),
             TrainSpec(patch=64, lesion_patches=64, background_ratio=2.0, edge_mm=8.0,
                       augment=True, calibrate=True, select_by="last", hard_negatives=0.5,
                       hard_positives=0.5, hu_shift=10.0, noise_hu=10.0, batch_size=32,
                       lr=1e-3, average_decay=0.995,
                       max_epochs=60, max_minutes=8.75),
             "A lighter U-Net (1.9 M parameters) on 64x64 patches with the neighbouring slices as "
             "context, a 0-150 HU window, batch norm and other scanners' offsets and noise in "
             "training: trains on a 2-core CPU in minutes."),
}


def preset(name: str, **overrides) -> tuple[ModelSpec, TrainSpec]:
    """A preset with command-line overrides applied (names of either spec's fields)."""
    if name not in PRESETS:
        raise IchfedError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    model, train, _ = PRESETS[name]
    model_keys = {f.name for f in fields(ModelSpec)}
    train_keys = {f.name for f in fields(TrainSpec)}
    unknown = set(overrides) - model_keys - train_keys
    if unknown:
        raise IchfedError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    model = replace(model, **{k: _typed(ModelSpec, k, v) for k, v in overrides.items()
                              if k in model_keys})
    train = replace(train, **{k: _typed(TrainSpec, k, v) for k, v in overrides.items()
                              if k in train_keys})
    return model, train


def _typed(cls: type, key: str, value: object) -> object:
    """An override as its field's type (ints where floats are expected, lists where tuples
    are), or a one-line error: a mistyped value would otherwise surface deep in training."""
    hint = typing.get_type_hints(cls)[key]
    fitted = _fit(value, hint)
    if fitted is _NO:
        raise IchfedError(f"--set {key}={json.dumps(value)}: expected {_describe(hint)}")
    return fitted


_NO = object()


def _fit(value: object, hint: object) -> object:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return next((f for f in (_fit(value, h) for h in typing.get_args(hint)) if f is not _NO),
                    _NO)
    if hint is type(None):
        return None if value is None else _NO
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return _NO
        args = typing.get_args(hint)
        items = args[:1] * len(value) if args[1:] == (Ellipsis,) else args
        if len(items) != len(value):
            return _NO
        fitted = tuple(_fit(v, h) for v, h in zip(value, items, strict=True))
        return _NO if _NO in fitted else fitted
    if isinstance(value, bool) != (hint is bool):
        return _NO
    if hint is float and isinstance(value, int | float):
        return float(value)
    return value if isinstance(value, hint) else _NO


def _describe(hint: object) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
             type(None): "null"}
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a list such as [1, 2]"
    return names.get(hint, str(hint))
