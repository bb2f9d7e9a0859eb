"""The paper's study: training sites (each split into train and test scans) and holdout sites
(test only), built-in or a user's own; single-site models, multi-site by cyclic weight
transfer on Flower, and the comparisons the paper lacks (federated averaging, the pooled upper
bound, the HU-threshold floor); every model on every test set.

Each stage writes its outputs atomically and is skipped when they exist, so a rerun into the
same folder continues where the last one stopped.
"""

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ichfed.baseline import ThresholdBaseline
from ichfed.data.prepare import prepare_scan, preprocessing
from ichfed.errors import IchfedError
from ichfed.experiment.sites import DEFAULT_SITES, SiteEntry, check_sites, gather
from ichfed.federated import run_plan
from ichfed.federated.plan import Plan
from ichfed.federated.privacy import DEFAULT_CLIP, Privacy
from ichfed.infer.predict import segmentation
from ichfed.io import open_site, read_ct, write_mask
from ichfed.io.align import read_case_mask
from ichfed.io.labels import label_set
from ichfed.metrics.evaluate import case_metrics
from ichfed.metrics.types import type_metrics
from ichfed.model.bundle import load_model
from ichfed.model.checkpoint import CHECKPOINT
from ichfed.model.config import ModelSpec, TrainSpec, preset
from ichfed.phantom.generate import SIZES
from ichfed.report.tables import write_csv
from ichfed.train import train_sites

# On a 2-core CPU the study trains five models in about 10 minutes, so the demo preset is made
# lighter here (a narrower U-Net, fewer patches per scan) and trains every model for the same
# compute, CPU_SITE_EPOCHS passes over one site's patches (StudySpec.specs), not for a time.
CPU_STUDY = {"features": (8, 16, 32, 64, 128, 8), "lesion_patches": 32, "max_minutes": 0.0}
CPU_SITE_EPOCHS = 14
KINDS = ("single", "cwt", "fedavg", "pooled", "threshold")
PRIVATE = "fedavg-dp"  # the kind, and the name's start, of FedAvg models with DP (dp_name)
# How many built-in scans, and of which size: "demo" for a 2-core CPU (reduced-size scans),
# "paper" as in the paper's journal version (two training sites of about 65 full-size scans,
# about half to train, two holdout sites of about 20), for a GPU
SCALES = {"demo": {"size": "reduced", "train_cases": 20, "test_cases": 8, "holdout_cases": 8},
          "paper": {"size": "full", "train_cases": 32, "test_cases": 33, "holdout_cases": 20}}


@dataclass(frozen=True)
class StudySpec:
    preset: str = "demo"
    seed: int = 0
    sites: tuple[SiteEntry, ...] = DEFAULT_SITES
    train_cases: int = 20  # per built-in training site
    test_cases: int = 8  # per built-in training site
    holdout_cases: int = 8  # per built-in holdout site
    size: str = "reduced"  # of the built-in scans: reduced (256 matrix) or full (512)
    test_fraction: float = 0.3  # of a user's training site, held out for testing
    overrides: dict = field(default_factory=dict)
    kinds: tuple[str, ...] = KINDS  # which of the study's models to train
    # FedAvg with site-level differential privacy, one model per noise multiplier (opt-in)
    dp_noise: tuple[float, ...] = ()
    dp_clip: float = DEFAULT_CLIP
    dp_delta: float = 1e-5

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise IchfedError(f"unknown model kind(s) {sorted(unknown)}; choose from "
                              f"{', '.join(KINDS)}")
        if self.size not in SIZES:
            raise IchfedError(f"size '{self.size}': choose {' or '.join(SIZES)}")
        if min(self.train_cases, self.test_cases, self.holdout_cases) < 1:
            raise IchfedError("train_cases, test_cases and holdout_cases: at least 1")
        for noise in self.dp_noise:
            if not noise > 0:
                raise IchfedError(f"dp_noise {noise}: more than 0 (FedAvg without noise is "
                                  "the study's fedavg)")
            self.privacy(noise)  # the clipping norm and delta are checked here

    @property
    def train_sites(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sites if s.role == "train")

    @property
    def holdout_sites(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sites if s.role == "holdout")

    def specs(self, kind: str = "single") -> tuple[ModelSpec, TrainSpec]:
        """The preset with the study's and the user's settings for a model of this kind.

        On the demo preset, unless the user sets max_epochs or max_minutes, every model gets
        the same training compute, CPU_SITE_EPOCHS passes over one site's patches: a
        single-site model and cwt (one site a round) spend them as epochs or rounds, the pooled
        model and FedAvg (every site in each epoch or round) as that number divided by the
        sites. A time budget (1.5 minutes a model) made the comparison a race against Flower's
        start-up (20 of FedAvg's 90 s) and the machine's load, and the models are still on
        their steep part there: one FedAvg round more or less moved its Dice by 0.3.

        The models take the study's seed unless the user sets one (`--set seed=N`): the same
        scans and split, the models drawn again, which is how a study is repeated to see
        which differences outlast the seed."""
        extra: dict = {"seed": self.seed}
        if self.preset == "demo":
            extra.update(CPU_STUDY)
            if not {"max_epochs", "max_minutes"} & set(self.overrides):
                extra["max_epochs"] = math.ceil(CPU_SITE_EPOCHS / self.sites_per_epoch(kind))
        return preset(self.preset, **{**extra, **self.overrides})

    def sites_per_epoch(self, kind: str) -> int:
        """How many sites' patches one epoch (or round) of a model of this kind passes over."""
        return 1 if kind in ("single", "cwt") else max(1, len(self.train_sites))

    def privacy(self, noise: float) -> Privacy:
        """A DP model's settings; its noise is seeded by the models' seed, so that a study
        reruns the same (on one machine nobody is there to remove it)."""
        return Privacy(noise, 0.0, self.dp_clip, self.dp_delta, self.specs("fedavg")[1].seed)

    def to_dict(self) -> dict:
        return {**asdict(self), "sites": [s.to_dict() for s in self.sites]}


def dp_name(noise: float) -> str:
    """The study's name for the FedAvg model with this noise multiplier."""
    return f"{PRIVATE}{noise:g}"


def scaled(settings: dict) -> dict:
    """StudySpec's arguments from settings that may name a scale (SCALES): the scale gives the
    built-in scans' counts and size wherever the settings do not; test_cases given without
    holdout_cases counts for every site, as before there were two."""
    settings = dict(settings)
    name = settings.pop("scale", "demo")
    if name not in SCALES:
        raise IchfedError(f"scale '{name}': choose {' or '.join(SCALES)}")
    if "test_cases" in settings:
        settings.setdefault("holdout_cases", settings["test_cases"])
    return {**SCALES[name], **settings}


def models(spec: StudySpec) -> list[tuple[str, str]]:
    """(name, kind) of every model the study trains, in the paper's order first; the private
    FedAvg models (kind fedavg-dp) whenever the study names their noise."""
    singles = [(f"single-{name}", "single") for name in spec.train_sites]
    every = [*singles, ("cwt", "cwt"), ("fedavg", "fedavg"), ("pooled", "pooled"),
             ("threshold", "threshold"), *[(dp_name(n), PRIVATE) for n in spec.dp_noise]]
    return [(name, kind) for name, kind in every if kind in spec.kinds or kind == PRIVATE]


def gather_sites(out: Path, spec: StudySpec) -> dict[str, dict[str, Path]]:
    check_sites(spec.sites)
    return gather(out, spec.sites, spec.seed, spec.test_fraction,
                  (spec.train_cases, spec.test_cases, spec.holdout_cases), spec.size,
                  spec.specs()[0].labels)


def train_model(out: Path, name: str, kind: str, spec: StudySpec, train: dict[str, Path],
                device: torch.device, on_epoch: Callable[[dict], None] | None = None,
                engine: str = "simulation") -> Path:
    """Train one of the study's models into models/<name> (resuming an interrupted one);
    `on_epoch` hears of each epoch or round; multi-site models run on Flower's `engine`."""
    folder = out / "models" / name
    if (folder / "config.json").exists() or (folder / "baseline.json").exists():
        return folder
    model_spec, tspec = spec.specs(kind)
    roots = [train[s] for s in spec.train_sites]
    resume = (folder / CHECKPOINT).exists()
    if kind == "single":
        train_sites([train[name.removeprefix("single-")]], folder, model_spec, tspec, device,
                    resume=resume, on_epoch=on_epoch)
    elif kind == "pooled":
        train_sites(roots, folder, model_spec, tspec, device, resume=resume, on_epoch=on_epoch)
    elif kind in ("cwt", "fedavg", PRIVATE):
        privacy = next((spec.privacy(n) for n in spec.dp_noise if dp_name(n) == name), None)
        run_plan(Plan(strategy=kind.removesuffix("-dp"), model=model_spec, train=tspec,
                      out=str(folder), sites=tuple(map(str, roots)), num_sites=len(roots),
                      device=str(device), resume=resume, privacy=privacy),
                 on_round=on_epoch, engine=engine)
    else:
        fit_baseline(roots, folder, spec.seed)
    return folder


def fit_baseline(roots: list[Path], folder: Path, seed: int, per_site: int = 10) -> None:
    """The HU-window floor, tuned on (up to) `per_site` training scans of each training site."""
    scans = []
    for root in roots:
        for case in open_site(root).labelled[:per_site]:
            ct = read_ct(case.image)
            scans.append((ct, read_case_mask(case.mask, ct)[0]))
    baseline, score = ThresholdBaseline.fit(scans)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".baseline.json.tmp"
    tmp.write_text(json.dumps({"baseline": baseline.to_dict(), "train_dice": round(score, 4),
                               "train_scans": len(scans), "seed": seed}, indent=2) + "\n")
    os.replace(tmp, folder / "baseline.json")


def evaluate_all(out: Path, spec: StudySpec, tests: dict[str, Path], folders: dict[str, Path],
                 device: torch.device, on_case=None) -> list[dict]:
    """Every model on every test scan, as `ichfed predict` would; each scan is read once and
    prepared once for all the networks with the same preprocessing (pixel size, window).
    Writes predictions/<model>/<site>/<case>_mask.nii.gz and results.csv; typed models also
    <case>_types.nii.gz and, on sites that label types, types.csv (metrics/types.py)."""
    if (out / "results.csv").exists():
        from ichfed.report.tables import read_csv

        return read_csv(out / "results.csv")
    nets = {n: load_model(f, device) for n, f in folders.items() if (f / "config.json").exists()}
    baselines = {n: ThresholdBaseline(**json.loads((f / "baseline.json").read_text())["baseline"])
                 for n, f in folders.items() if (f / "baseline.json").exists()}
    specs = {preprocessing(m.spec): m.spec for m in nets.values()}
    rows, typed_rows = [], []
    for site, root in tests.items():
        role = "train site" if site in spec.train_sites else "holdout"
        test_site, site_rows, values = open_site(root), [], set()
        for case in test_site.labelled:
            ct = read_ct(case.image)
            truth, affine = read_case_mask(case.mask, ct)[0], ct.affine
            values.update(int(v) for v in np.unique(truth))
            prepared = {key: prepare_scan(ct, spec, device=device) for key, spec in specs.items()}
            found = {n: segmentation(prepared[preprocessing(m.spec)], m, device)
                     for n, m in nets.items()}
            masks = {n: f.mask for n, f in found.items()}
            masks.update({n: b.predict(ct) for n, b in baselines.items()})
            for name, mask in masks.items():
                folder = out / "predictions" / name / site
                write_mask(mask, ct, folder / f"{case.name}_mask.nii.gz")
                key = {"model": name, "site": site, "role": role, "case": case.name}
                rows.append({**key, **case_metrics(mask, truth, affine)})
                if name in found and found[name].types is not None:
                    write_mask(found[name].types, ct, folder / f"{case.name}_types.nii.gz")
                    site_rows.append({**key, **type_metrics(found[name].types, truth,
                                                            ct.voxel_ml)})
            if on_case:
                on_case()
        if label_set(test_site.labels, values) == "types":  # a binary site's 1 is blood
            typed_rows += site_rows
    order = [n for n, _ in models(spec)]

    def place(r: dict) -> tuple:
        return (order.index(r["model"]) if r["model"] in order else 99,
                list(tests).index(r["site"]), r["case"])

    if typed_rows:
        write_csv(sorted(typed_rows, key=place), out / "types.csv")
    rows.sort(key=place)
    write_csv(rows, out / "results.csv")
    return rows


def first_multi_site(names: list[str]) -> str:
    """The model the paired tests compare the others with: cwt, else FedAvg, else pooled."""
    return next((m for m in ("cwt", "fedavg", "pooled") if m in names), names[0])


def findings(summary: list[dict], train_sites: tuple[str, ...] | list[str],
             holdout_sites: tuple[str, ...] | list[str]) -> dict:
    """The study's two questions, answered from the mean Dice per model and site."""
    cell = {(r["model"], r["site"]): r["mean_dice"] for r in summary}
    trained = {r["model"] for r in summary}
    singles = [f"single-{s}" for s in train_sites if f"single-{s}" in trained]
    holdout = {}
    for site in [s for s in holdout_sites if ("cwt", s) in cell] if singles else ():
        single_mean = float(np.mean([cell[(m, site)] for m in singles]))
        holdout[site] = {"cwt": cell[("cwt", site)], "mean_of_single_site": round(single_mean, 4),
                         "cwt_better": cell[("cwt", site)] > single_mean}
    sites = list(dict.fromkeys(r["site"] for r in summary))
    ratio = {}
    for model in [m for m in ("cwt", "fedavg") if m in trained and "pooled" in trained]:
        per_site = {s: round(cell[(model, s)] / cell[("pooled", s)], 3)
                    if cell[("pooled", s)] > 0 else float("nan") for s in sites}
        ratio[model] = {"per_site": per_site, "all_at_least_0.98": all(
            v >= 0.98 for v in per_site.values())}
    return {"multi_site_vs_single_site_on_holdout": holdout, "ratio_to_pooled": ratio}


def saved_settings(saved: dict) -> dict:
    """A study.json as today's code writes it: folders from before the holdout count and the
    scan size had reduced-size scans and as many test scans on every site, and no private
    models."""
    return {"holdout_cases": saved.get("test_cases"), "size": "reduced", "dp_noise": [],
            "dp_clip": DEFAULT_CLIP, "dp_delta": 1e-5, **saved}


def check_study_folder(out: Path, spec: StudySpec) -> None:
    """A rerun must use the same settings as the run whose stages it skips."""
    saved = out / "study.json"
    current = json.loads(json.dumps(spec.to_dict(), default=list))
    if saved.exists():
        if saved_settings(json.loads(saved.read_text())) != current:
            raise IchfedError(f"{out}: holds a study with other settings ({saved}); use another "
                              "--out or the same settings")
        return
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(current, indent=2) + "\n")
