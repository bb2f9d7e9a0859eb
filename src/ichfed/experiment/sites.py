"""The study's hospitals: built-in ones (synthesized) and a user's own site folders, each
validated like `ichfed check`, training sites split by case into train and test scans.

A user's files are never copied or changed: the train and test halves of a user's training site
are folders of symbolic links under the study folder. The split is seeded and written to
`splits/<site>.json`; a split given by the user (or written by an earlier run) is honoured, so a
run can be repeated exactly.
"""

import json
import os
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ichfed.check import check_site
from ichfed.errors import IchfedError
from ichfed.io import open_site
from ichfed.io.text import read_settings_text
from ichfed.phantom import BUILTIN
from ichfed.phantom.generate import finish_site, write_case

TEST_FIRST_INDEX = 1000  # built-in test scans are numbered apart from training scans
ROLES = ("train", "holdout")
STUDY_KEYS = {"preset", "seed", "scale", "train_cases", "test_cases", "holdout_cases", "size",
              "test_fraction", "models", "set", "dp_noise", "dp_clip", "dp_delta"}


@dataclass(frozen=True)
class SiteEntry:
    name: str
    role: str  # "train": split into train and test scans; "holdout": test scans only
    builtin: str | None = None  # a built-in profile, synthesized
    path: str | None = None  # or a user's site folder
    split: str | None = None  # a user's split file {"train": [...], "test": [...]}

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise IchfedError(f"site {self.name}: role must be train or holdout, not {self.role}")
        if (self.builtin is None) == (self.path is None):
            raise IchfedError(f"site {self.name}: give either a built-in profile or a path")
        if self.builtin is not None and self.builtin not in BUILTIN:
            raise IchfedError(f"site {self.name}: unknown built-in site '{self.builtin}'; "
                              f"choose from {', '.join(BUILTIN)}")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_SITES = (SiteEntry("nih", "train", builtin="nih"),
                 SiteEntry("vumc", "train", builtin="vumc"),
                 SiteEntry("thin", "holdout", builtin="thin"),
                 SiteEntry("lowdose", "holdout", builtin="lowdose"))


def parse_site(text: str, role: str) -> SiteEntry:
    """NAME=DIR for a user's site, NAME=builtin or NAME=builtin:PROFILE for a built-in one."""
    if "=" not in text:
        raise IchfedError(f"--{role} {text}: expected NAME=DIR or NAME=builtin[:PROFILE]")
    name, source = (part.strip() for part in text.split("=", 1))
    if source == "builtin" or source.startswith("builtin:"):
        return SiteEntry(name, role, builtin=source.partition(":")[2] or name)
    return SiteEntry(name, role, path=str(Path(source).resolve()))


def read_study_file(path: Path) -> tuple[dict, tuple[SiteEntry, ...]]:
    """A study file: [study] settings and one [[site]] table per site, e.g.

        [study]
        preset = "demo"
        seed = 0
        [[site]]
        name = "hospital-a"
        role = "train"
        path = "/data/hospital-a"
        [[site]]
        name = "nih"
        role = "holdout"
        builtin = "nih"
    """
    try:
        data = tomllib.loads(read_settings_text(path))
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise IchfedError(f"{path}: not a readable study file ({exc})") from exc
    study = dict(data.get("study", {}))
    unknown = set(study) - STUDY_KEYS
    if unknown:
        raise IchfedError(f"{path}: unknown [study] setting(s): {', '.join(sorted(unknown))}; "
                          f"expected {', '.join(sorted(STUDY_KEYS))}")
    sites = []
    for table in data.get("site", []):
        table = dict(table)
        for key in ("path", "split"):  # relative to the study file
            if key in table:
                table[key] = str((path.parent / table[key]).resolve())
        try:
            sites.append(SiteEntry(**table))
        except TypeError as exc:
            raise IchfedError(f"{path}: site entry {table}: {exc}") from exc
    return study, tuple(sites)


def check_sites(entries: tuple[SiteEntry, ...]) -> None:
    """Every user site passes `ichfed check` before anything is trained."""
    names = [e.name for e in entries]
    if len(set(names)) < len(names):
        raise IchfedError(f"site names must differ: {names}")
    if not any(e.role == "train" for e in entries):
        raise IchfedError("the study needs at least one training site")
    for entry in entries:
        if entry.path is None:
            continue
        findings = check_site(entry.path)
        if not findings.usable:
            raise IchfedError(f"site {entry.name} ({entry.path}) is not usable: "
                              f"{findings.problems[0]} (run 'ichfed check {entry.path}')")
        if not open_site(entry.path).labelled:
            raise IchfedError(f"site {entry.name} ({entry.path}): no case has a mask")


def _synth_job(root: str, site: str, seed: int, index: int, size: str, labels: str) -> str:
    return write_case(Path(root), BUILTIN[site], seed, index, size, labels)


def _clear(root: Path) -> None:
    """Remove a half-written folder of an interrupted run (inside the study folder only)."""
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()


def split_cases(names: list[str], test_fraction: float, seed: int) -> dict[str, list[str]]:
    order = np.random.default_rng(seed).permutation(len(names))
    n_test = min(len(names) - 1, max(1, int(round(test_fraction * len(names)))))
    test = sorted(names[i] for i in order[:n_test])
    return {"train": sorted(set(names) - set(test)), "test": test}


def _read_split(path: Path, names: list[str], site: str) -> dict[str, list[str]]:
    try:
        split = json.loads(path.read_text())
        train, test = list(split["train"]), list(split["test"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IchfedError(f"{path}: not a split file ({exc})") from exc
    unknown = sorted(set(train + test) - set(names))
    if unknown:
        raise IchfedError(f"{path}: cases not in site {site}: {', '.join(unknown[:5])}")
    if set(train) & set(test):
        raise IchfedError(f"{path}: cases in both train and test")
    return {"train": sorted(train), "test": sorted(test)}


def _link_site(root: Path, name: str, source, cases: list[str]) -> Path:
    """A site folder of links to some of a user's cases."""
    if (root / "site.json").exists():
        return root
    if root.exists():
        _clear(root)
    chosen = {c.name: c for c in source.labelled if c.name in cases}
    for case in chosen.values():
        for path, kind in ((case.image, "images"), (case.mask, "masks")):
            link = root / kind / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path.resolve(), link)
    info = {"name": name, "source": str(source.root)}
    if source.labels:  # the user's declared label set travels with the split
        info["labels"] = source.labels
    (root / "site.json").write_text(json.dumps(info) + "\n")
    return root


def gather(out: Path, entries: tuple[SiteEntry, ...], seed: int, test_fraction: float,
           cases: tuple[int, int, int] = (20, 8, 8), size: str = "reduced",
           labels: str = "binary") -> dict[str, dict[str, Path]]:
    """{"train": {site: folder}, "test": {site: folder}}: built-in sites synthesized (in
    parallel; `cases`: train and test scans of a training site, test scans of a holdout
    site; `labels="types"`: with masks of bleed types, in folders of their own), user
    training sites split and linked, user holdout sites used in place."""
    train_cases, test_cases, holdout_cases = cases
    layout: dict[str, dict[str, Path]] = {"train": {}, "test": {}}
    jobs = {}
    typed = "-types" if labels == "types" else ""
    for e in entries:
        if e.builtin is None:
            continue
        if e.role == "train":
            jobs[(e.name, "train")] = (out / "data" / f"{e.name}-train{typed}", e.builtin,
                                       train_cases, 0)
        jobs[(e.name, "test")] = (out / "data" / f"{e.name}-test{typed}", e.builtin,
                                  test_cases if e.role == "train" else holdout_cases,
                                  TEST_FIRST_INDEX)
    todo = {k: v for k, v in jobs.items() if not (v[0] / "site.json").exists()}
    for root, *_ in todo.values():
        if root.exists():
            _clear(root)
    scans = [(str(root), profile, index) for root, profile, n, first in todo.values()
             for index in range(first, first + n)]
    if scans:  # one scan a job: a full-size scan takes seconds, a site of them minutes
        with ProcessPoolExecutor(max(1, min(len(scans), os.cpu_count() or 1))) as pool:
            for future in [pool.submit(_synth_job, root, profile, seed, index, size, labels)
                           for root, profile, index in scans]:
                future.result()
        for root, profile, *_ in todo.values():
            finish_site(root, BUILTIN[profile], labels)
    for (name, role), (root, *_) in jobs.items():
        layout[role][name] = root
    for e in entries:
        if e.path is None:
            continue
        if e.role == "holdout":
            layout["test"][e.name] = Path(e.path)
            continue
        source = open_site(e.path)
        names = [c.name for c in source.labelled]
        written = out / "splits" / f"{e.name}.json"
        if e.split:
            split = _read_split(Path(e.split), names, e.name)
        elif written.exists():
            split = _read_split(written, names, e.name)
        else:
            split = split_cases(names, test_fraction, seed)
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text(json.dumps(split, indent=1) + "\n")
        layout["train"][e.name] = _link_site(out / "data" / f"{e.name}-train", e.name, source,
                                             split["train"])
        layout["test"][e.name] = _link_site(out / "data" / f"{e.name}-test", e.name, source,
                                            split["test"])
    order = [e.name for e in entries]
    return {role: dict(sorted(sites.items(), key=lambda kv: order.index(kv[0])))
            for role, sites in layout.items()}
