"""Training: split by scan, best checkpoint kept, an interrupted run resumes."""

import json

import numpy as np
import pytest
import torch

from ichfed.data import load_site_scans
from ichfed.errors import IchfedError
from ichfed.model.checkpoint import CHECKPOINT
from ichfed.model.config import preset
from ichfed.train import train_sites
from ichfed.train.fit import split_scans
from ichfed.train.trainer import native_bf16
from tests.helpers import make_site

TINY = dict(features=(4, 4, 8, 8, 16, 4), patch=32, lesion_patches=8, batch_size=8)


def test_split_is_by_scan_and_seeded():
    scans = list(range(10))
    train, val = split_scans(scans, 0.2, seed=3)
    assert len(val) == 2 and not set(train) & set(val)
    assert split_scans(scans, 0.2, seed=3) == (train, val)


def test_split_stratified_by_lesion_volume_spans_the_sizes():
    scans = list(range(20))
    sizes = [0.0] * 5 + [float(v) for v in range(1, 16)]  # five bleed-free scans
    for seed in range(20):
        train, val = split_scans(scans, 0.2, seed, sizes)
        assert len(val) == 4 and sorted(train + val) == scans
        ranks = sorted(sizes[i] for i in val)
        assert ranks[0] == 0.0 and ranks[-1] >= 11  # a bleed-free scan and one of the largest
    assert split_scans(scans, 0.2, 7, sizes) == split_scans(scans, 0.2, 7, sizes)


def test_a_resumed_run_keeps_the_same_weights_and_their_average(tmp_path):
    from ichfed.model.bundle import load_weights

    site = make_site(tmp_path / "site", n=3)
    spec, tspec = preset("demo", max_epochs=2, **TINY)
    assert tspec.average_decay > 0  # the demo preset keeps the moving average
    cpu = torch.device("cpu")
    straight = train_sites([site], tmp_path / "a", spec, tspec, cpu)

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sites([site], tmp_path / "b", spec, tspec, cpu, on_epoch=stop_after_first)
    resumed = train_sites([site], tmp_path / "b", spec, tspec, cpu, resume=True)
    assert resumed["kept_epoch"] == straight["kept_epoch"]
    a, b = load_weights(tmp_path / "a", cpu), load_weights(tmp_path / "b", cpu)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_then_resume(tmp_path):
    site = make_site(tmp_path / "site", n=3)
    spec, tspec = preset("demo", max_epochs=3, **TINY)

    class Interrupt(Exception):
        pass

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"),
                    on_epoch=stop_after_first)
    assert (tmp_path / "m" / CHECKPOINT).exists()
    with pytest.raises(IchfedError, match="already holds a model"):
        train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"))
    summary = train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"), resume=True)
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3]
    assert not (tmp_path / "m" / CHECKPOINT).exists()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["summary"]["sites"] == ["site"]
    # the precision it trained in is recorded: bf16 and fp32 hosts train different models
    expected = "bf16" if native_bf16(torch.device("cpu")) else "fp32"
    assert config["summary"]["precision"] == expected
    assert "case00" not in json.dumps(config)  # no case names leave with the model
    with pytest.raises(IchfedError, match="nothing to resume"):
        train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"), resume=True)


def test_patches_are_centred_one_to_one(tmp_path):
    from ichfed.data.patches import sample_centres

    site = make_site(tmp_path / "site", n=1)
    spec, _ = preset("demo")
    scan = load_site_scans(site, spec)[0]
    centres = sample_centres(scan.label, scan.brain, 50, np.random.default_rng(0))
    on_lesion = scan.label[tuple(centres.T)] > 0
    assert on_lesion.sum() == 50 and (~on_lesion).sum() == 50
    assert scan.brain[tuple(centres.T)].all()


def test_edge_sampling_takes_half_the_background_from_the_rim(tmp_path):
    from ichfed.data.patches import brain_edge, sample_centres

    site = make_site(tmp_path / "site", n=1)
    spec, _ = preset("demo")
    scan = load_site_scans(site, spec)[0]
    edge = brain_edge(scan.brain, scan.canonical.spacing, 3.0)
    assert edge.any() and (edge <= scan.brain).all()
    centres = sample_centres(scan.label, scan.brain, 20, np.random.default_rng(1), 2.0, edge)
    background = centres[scan.label[tuple(centres.T)] == 0]
    assert len(background) == 40
    assert edge[tuple(background.T)].sum() >= 20


def test_augmented_epochs_draw_fresh_flipped_patches_and_validation_stays_fixed(tmp_path):
    from ichfed.data.patches import PatchSet
    from ichfed.data.prepare import bone_and_top

    site = make_site(tmp_path / "site", n=2)
    spec, _ = preset("demo")
    scans = load_site_scans(site, spec)
    patches = PatchSet(scans, 32, 8, 0, torch.device("cpu"), context=1, augment=True,
                       bone=bone_and_top(spec))

    def epoch(rng):
        xs, ys = zip(*patches.batches(64, rng), strict=True)
        return torch.cat(xs), torch.cat(ys)

    first, second = epoch(np.random.default_rng([0, 1])), epoch(np.random.default_rng([0, 2]))
    assert len(first[0]) == len(second[0]) == len(patches)  # the same 1:1 counts each epoch
    assert not torch.equal(first[0], second[0])
    assert torch.equal(epoch(np.random.default_rng([0, 1]))[0], first[0])  # seeded
    assert torch.equal(epoch(None)[0], epoch(None)[0])  # validation: the seed's centres
    # half the centres lie on a lesion (a flip moves the centre pixel from row 16 to row 15)
    on_lesion = float(first[1][:, 0, 15:17, 16].amax(1).mean())
    assert 0.45 <= on_lesion <= 0.6


class _Bright(torch.nn.Module):
    """A stand-in network: 'bleed' wherever the input is above 0.5."""

    def forward(self, x):
        return 50.0 * (x[:, :1] - 0.5)


def _bright_scans() -> tuple:
    """A scan with a bleed, a false speck and a thin bright rim, and its bleed-free twin."""
    from ichfed.data.prepare import PreparedScan

    image = np.zeros((40, 40, 6), np.float32)
    image[10:20, 10:20, 1:5] = 1.0  # a 400-voxel bleed: 0.4 mL at 1 mm^3
    image[30, 30, 2] = image[31, 30, 2] = image[30, 31, 2] = 1.0  # a 3-voxel false speck
    image[2:38, 1:3, 1:5] = 1.0  # a thin bright rim along one side, two pixels thick
    label = np.zeros(image.shape, np.uint8)
    label[10:20, 10:20, 1:5] = 1
    brain = np.ones(image.shape, bool)
    one_mm = (1.0, 1.0, 1.0)
    scan = PreparedScan(image, brain, label, None, 0.001, None, one_mm)
    empty = PreparedScan(np.where(label, 0, image), brain, np.zeros_like(label), None, 0.001,
                         None, one_mm)
    return scan, empty


def test_calibration_picks_the_rule_that_drops_false_positives_but_keeps_bleeds():
    from ichfed.model.postprocess import LesionRule, binarise
    from ichfed.train.calibrate import _scan_dice, dice_by_rule, pick_rule

    spec, _ = preset("demo", context_slices=0, min_component_voxels=1)
    scan, empty = _bright_scans()
    means = dice_by_rule(_Bright(), spec, [scan, empty], torch.device("cpu"))
    assert means[LesionRule()] < 0.5  # the rim and the speck cost Dice on both scans
    assert means[LesionRule(0.25, 0.0)] < 1.0  # the rim is larger than 0.25 mL
    best = pick_rule(means)
    assert best == LesionRule(0.0, 1.5) and means[best] == 1.0  # thinness, not size, drops both
    assert means[LesionRule(0.5, 0.0)] < 1.0  # a rule above 0.4 mL loses the bleed
    prob = 1.0 / (1.0 + np.exp(-50.0 * (scan.image - 0.5)))
    for rule, value in _scan_dice(prob, scan, spec).items():  # the shortcut equals binarise
        mask = binarise(prob, scan.brain, spec, 0.001, scan.spacing, rule)
        truth = scan.label > 0
        assert value == pytest.approx(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))


def test_selection_follows_whole_scan_dice_or_the_patch_loss(tmp_path):
    from ichfed.data.patches import PatchSet
    from ichfed.train.trainer import Trainer

    scans = list(_bright_scans())
    cpu = torch.device("cpu")
    spec, tspec = preset("demo", context_slices=0, min_component_voxels=1,
                         select_by="scan-dice", **TINY)
    trainer = Trainer(spec, tspec, cpu)
    trainer.net = trainer.forward = _Bright()
    assert trainer.validation_loss(None, scans) == (0.0, 2)  # the best rule scores Dice 1
    patches = PatchSet(scans[:1], 32, 8, 0, cpu)
    for select_by in ("patch-loss", "last"):  # the paper's; last reports the patch loss
        _, tspec = preset("paper", select_by=select_by, **TINY)
        trainer = Trainer(spec, tspec, cpu)
        assert trainer.validation_loss(patches, scans) == (trainer.validate(patches),
                                                           len(patches))
    with pytest.raises(IchfedError, match="select_by 'dice'"):
        preset("demo", select_by="dice")


def test_the_kept_weights_are_the_validation_best_or_the_last_whichever_scores_higher(tmp_path):
    from ichfed.model.bundle import load_weights, save_weights
    from ichfed.train.fit import _keep_better
    from ichfed.train.trainer import Trainer

    def conv(weight: float, bias: float) -> torch.nn.Conv2d:
        net = torch.nn.Conv2d(1, 1, 1)  # logits = weight * x + bias
        with torch.no_grad():
            net.weight.fill_(weight), net.bias.fill_(bias)
        return net

    scans = list(_bright_scans())
    cpu = torch.device("cpu")
    spec, tspec = preset("demo", context_slices=0, min_component_voxels=1, **TINY)
    good, blind = conv(50.0, -25.0), conv(0.0, -10.0)  # finds the bleed / finds nothing
    for best, last, kept_epoch in ((good, blind, 2), (blind, good, 5)):
        out = tmp_path / f"kept{kept_epoch}"
        save_weights(best, out)  # the validation-best weights, as fit keeps them
        trainer = Trainer(spec, tspec, cpu)
        trainer.net = conv(0.0, 0.0)
        trainer.net.load_state_dict(last.state_dict())  # the last epoch's
        kept, means = _keep_better(trainer, spec, scans, out, cpu, {"epoch": 5, "best_step": 2})
        assert kept == kept_epoch and max(means.values()) == 1.0
        assert torch.equal(load_weights(out, cpu)["weight"], good.weight.detach())


def test_mining_centres_patches_on_the_networks_false_positives_and_misses():
    from ichfed.data.patches import PatchSet
    from ichfed.data.prepare import PreparedScan

    image = np.zeros((40, 40, 6), np.float32)
    image[5:15, 5:15, 1:5] = 1.0  # a true bleed
    image[30:33, 30:33, 2:4] = 1.0  # a bright look-alike the stand-in network calls bleed
    image[20:24, 5:9, 2:3] = 0.3  # a faint bleed it misses
    image[20:24, 0:2, 3:4] = 0.3  # one it misses on the brain's rim: not mined (missed_rim_mm)
    label = np.zeros(image.shape, np.uint8)
    label[5:15, 5:15, 1:5] = 1
    label[20:24, 5:9, 2:3] = 1
    label[20:24, 0:2, 3:4] = 1
    scan = PreparedScan(image, np.ones(image.shape, bool), label, None, 0.001, None,
                        (1.0, 1.0, 1.0))
    patches = PatchSet([scan], 16, 20, 0, torch.device("cpu"), background_ratio=1.0,
                       missed_rim_mm=4.0)
    patches.mine(_Bright(), np.random.default_rng(0), share=0.5, missed_share=0.5,
                 fraction=1.0)
    hard = np.column_stack(np.unravel_index(patches.hard[0], image.shape))
    assert len(hard) == 18 and (hard[:, 0] >= 30).all() and set(hard[:, 2]) == {2, 3}
    missed = np.column_stack(np.unravel_index(patches.missed[0], image.shape))
    assert len(missed) == 16 and (image[tuple(missed.T)] == 0.3).all()
    assert (missed[:, 1] >= 5).all()
    centres = patches._draw(np.random.default_rng(1))[:, 1:]
    background = centres[label[tuple(centres.T)] == 0]
    lesion = centres[label[tuple(centres.T)] == 1]
    assert len(background) == 20 and len(lesion) == 20
    assert (image[tuple(background.T)] == 1.0).sum() == 10  # half on the look-alike
    assert (image[tuple(lesion.T)] == 0.3).sum() >= 10  # half (at least) on the faint bleed


def test_coarser_blurs_half_the_patches_inside_the_brain_only():
    from ichfed.data.patches import coarser

    x = torch.zeros(8, 1, 32, 32)
    x[:, :, 8:24, 8:24] = torch.rand(8, 1, 16, 16) * 0.2 + 0.2  # noisy "brain" near 0.3
    brain = x > 0
    out = coarser(x, brain, np.random.default_rng(3), (6.0, 1.0), share=0.5, most=2.0)
    changed = (out != x).flatten(1).any(1)
    assert 0 < int(changed.sum()) < 8
    assert (out[~brain] == 0).all()  # nothing leaks outside the brain
    inner = out[changed][:, :, 10:22, 10:22]
    assert inner.std() < x[changed][:, :, 10:22, 10:22].std()  # blurred: less pixel noise
    rim = out[changed][:, :, 8, 8:24]
    assert rim.mean() > inner.mean() + 0.05  # bone mixed into the outermost brain pixels
    assert out.max() <= 1.0  # the window's top applies after the blur
    assert torch.equal(coarser(x, brain, np.random.default_rng(3), (6.0, 1.0)), out)  # seeded


def test_bleed_on_the_rim_is_never_shown_coarser():
    from ichfed.data.patches import PatchSet, coarser
    from ichfed.data.prepare import PreparedScan

    x = torch.rand(8, 1, 32, 32) * 0.2 + 0.2
    brain = torch.ones_like(x, dtype=torch.bool)
    keep = torch.tensor([True, False] * 4)
    out = coarser(x, brain, np.random.default_rng(3), (6.0, 1.0), share=1.0, most=2.0,
                  keep=keep)
    changed = (out != x).flatten(1).any(1)
    assert not changed[keep].any() and changed[~keep].all()

    image = np.full((40, 40, 4), 0.3, np.float32)
    label = np.zeros(image.shape, np.uint8)
    label[0:2, 10:30, :] = 1  # a thin crescent on the brain's rim
    label[15:25, 15:25, :] = 1  # a bleed deep inside
    scan = PreparedScan(image, np.ones(image.shape, bool), label, None, 0.001, None,
                        (1.0, 1.0, 1.0))
    patches = PatchSet([scan], 16, 50, 0, torch.device("cpu"), augment=True, bone=(6.0, 1.0),
                       sharp_rim_mm=4.0)
    sharp = patches.sharp[0, 8:48, 8:48, :].numpy()
    assert sharp[0:2, 10:30].all() and not sharp[15:25, 15:25].any()
    assert not sharp[label == 0].any()
    label[15:25, 15:25, :] = 0  # now the only bleed is the rim's
    patches = PatchSet([scan], 16, 50, 0, torch.device("cpu"), augment=True, bone=(6.0, 1.0),
                       sharp_rim_mm=4.0)
    x, y = map(torch.cat, zip(*patches.batches(8, np.random.default_rng(0)), strict=True))
    # the brain is a constant 0.3: a blurred patch shows bone mixed in near the border
    blurred = (x > 0.31).flatten(1).any(1)
    centred = y[:, 0, 8, 8].bool() & y[:, 0, 7, 8].bool()  # a flip moves the centre by one
    assert blurred.any() and centred.sum() > 10
    assert not (blurred & centred).any()


def test_the_moving_average_warms_up_so_a_short_training_is_not_its_initial_weights():
    from ichfed.train.trainer import Trainer

    spec, tspec = preset("demo", **TINY)
    trainer = Trainer(spec, tspec, torch.device("cpu"))
    trainer.keep_average(0.995)
    start = [p.detach().clone() for p in trainer.net.parameters()]
    with torch.no_grad():
        for _ in range(3):  # three steps that each move every weight by 1
            for p in trainer.net.parameters():
                p.add_(1.0)
            trainer.average.update_parameters(trainer.net)
    moved = [float((a.detach() - s).mean()) for a, s in zip(trainer.model.parameters(), start,
                                                  strict=True)]
    # the first step is copied (1), then decays 2/11 and 3/12: 0.25 * 1.818 + 0.75 * 3 = 2.705
    # (a fixed 0.995 from the start: 1.015)
    assert moved == pytest.approx([2.7045] * len(moved), abs=1e-3)


def test_the_travelling_state_hands_on_the_weights_and_their_average():
    """A federation's next site goes on averaging where the last one stopped (cwt), and the
    kept network of a travelling state is its average."""
    from ichfed.train.trainer import Trainer, kept_weights

    spec, tspec = preset("demo", **TINY)

    def trainer() -> Trainer:
        t = Trainer(spec, tspec, torch.device("cpu"))
        t.keep_average(0.995)
        return t

    def step(t: Trainer) -> None:
        with torch.no_grad():
            for p in t.net.parameters():
                p.add_(1.0)
        t.average.update_parameters(t.net)

    first, second = trainer(), trainer()
    for _ in range(3):
        step(first)
    state = {k: v.clone() for k, v in first.travelling_state().items()}
    kept = kept_weights(state)
    assert kept.keys() == first.net.state_dict().keys()
    for key, value in first.average.module.state_dict().items():
        assert torch.equal(kept[key], value)
    second.load_travelling_state(state)
    step(first)
    step(second)
    for key, value in first.travelling_state().items():
        torch.testing.assert_close(second.travelling_state()[key], value)
