"""Flower simulation: cwt equals local training, fedavg of identical sites equals one site's
epochs (its own Adam state kept between rounds), only weights and aggregate numbers cross the
network, bad replies are never merged."""

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.errors import IchfedError
from ichfed.federated.local import local_update, open_local_site
from ichfed.federated.payload import pack, unpack
from ichfed.federated.plan import Plan
from ichfed.federated.privacy import Privacy, epsilon_spent
from ichfed.federated.server_app import initial_weights
from ichfed.federated.simulation import simulate
from ichfed.model.config import preset
from ichfed.train.calibrate import RULES, rule_key
from ichfed.train.trainer import kept_weights
from tests.helpers import make_site

pytestmark = pytest.mark.xdist_group("ray")  # one local Ray cluster at a time

TINY = dict(features=(4, 4, 8, 8, 16, 4), patch=32, lesion_patches=8, batch_size=8)
CPU = torch.device("cpu")


def _weights(folder):
    return load_file(folder / "model.safetensors")


def _assert_same(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), atol=atol, rtol=1e-4)


@pytest.fixture(scope="session")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    return [make_site(root / name, n=3) for name in ("beta", "alpha")]


def test_cwt_on_one_site_equals_train(tmp_path, sites):
    settings = ["--set", "max_epochs=3", "--set", "features=[4,4,8,8,16,4]", "--set", "patch=32",
                "--set", "lesion_patches=8", "--set", "batch_size=8", "--set", "max_minutes=0"]
    assert preset("demo")[1].average_decay > 0  # the moving average travels and is kept
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(sites[0]), "--out", str(tmp_path / "t"),
                                  "--device", "cpu", *settings])
    assert trained.exit_code == 0, trained.output
    fed = runner.invoke(app, ["federate", str(sites[0]), "--strategy", "cwt", "--out",
                              str(tmp_path / "f"), "--carry-optimizer", "--device", "cpu",
                              *settings])
    assert fed.exit_code == 0, fed.output
    # not a terminal: one plain line per epoch or round, with the time left
    assert "round 3/3  beta: train" in fed.output and "epoch 3/3  train" in trained.output
    assert "(left 0:00:00)" in fed.output
    assert "lesion rule chosen" in trained.output and "lesion rule chosen" in fed.output
    _assert_same(_weights(tmp_path / "t"), _weights(tmp_path / "f"))
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["summary"]["strategy"] == "cwt" and config["summary"]["rounds"] == 3
    trained = json.loads((tmp_path / "t" / "config.json").read_text())
    assert (config["summary"]["dice_by_rule"]  # the same scans score the same
            == trained["summary"]["dice_by_rule"])
    assert config["summary"]["lesion_rule"]["scans"] == 3  # the site's train and val scans
    for key in ("threshold", "min_lesion_ml", "min_core_mm"):
        assert config["model"][key] == trained["model"][key]
    assert "case0" not in json.dumps(config)
    predicted = runner.invoke(app, ["predict", str(sites[0] / "images" / "case00.nii.gz"),
                                    "--model", str(tmp_path / "f"), "--out",
                                    str(tmp_path / "p"), "--device", "cpu"])
    assert predicted.exit_code == 0, predicted.output


def test_fedavg_of_identical_sites_equals_local_epochs_with_the_sites_adam(tmp_path, sites):
    """Two rounds over twin sites equal two local epochs in which the second starts from the
    first's Adam state: each site keeps its own between rounds (it does not travel)."""
    twin = shutil.copytree(sites[0], tmp_path / "twin")
    spec, tspec = preset("demo", max_epochs=2, max_minutes=0, **TINY)
    simulate(Plan(strategy="fedavg", model=spec, train=tspec, out=str(tmp_path / "m"),
                  sites=(str(sites[0]), str(twin)), num_sites=2, device="cpu"))
    site = open_local_site(sites[0], spec, tspec, CPU)
    first = local_update(site, spec, tspec, CPU, initial_weights(Plan(model=spec, train=tspec)),
                         epoch=1)
    second = local_update(site, spec, tspec, CPU, first.weights, epoch=2,
                          optimizer=first.optimizer)
    _assert_same(_weights(tmp_path / "m"), kept_weights(second.weights))
    fresh = local_update(site, spec, tspec, CPU, first.weights, epoch=2)  # a new Adam
    with pytest.raises(AssertionError):
        _assert_same(_weights(tmp_path / "m"), kept_weights(fresh.weights))


class Recorder:
    """A Grid that passes everything through and keeps every message both ways."""

    def __init__(self, grid, corrupt_site_weights: bool = False):
        self.grid, self.corrupt, self.seen = grid, corrupt_site_weights, []
        self.exchanges: list[list[str]] = []  # the message types of each push

    def __getattr__(self, name):
        return getattr(self.grid, name)

    def push_messages(self, messages):
        messages = list(messages)
        self.seen += [m.content for m in messages]
        self.exchanges.append(sorted(m.metadata.message_type for m in messages))
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids):
        replies = list(self.grid.pull_messages(message_ids))
        if self.corrupt:
            for reply in replies:
                if reply.has_error() or "arrays" not in reply.content:
                    continue
                self.victim = getattr(self, "victim", reply.metadata.src_node_id)
                if reply.metadata.src_node_id == self.victim:  # the first site to train
                    state = unpack(reply.content["arrays"])
                    state[next(iter(state))].fill_(float("nan"))
                    reply.content["arrays"] = pack(state)
        self.seen += [r.content for r in replies if not r.has_error()]
        return replies


@pytest.fixture(scope="session")
def cwt_runs(tmp_path_factory, sites):
    """Two 3-round cwt runs with the sites given in opposite orders; the first one recorded."""
    root = tmp_path_factory.mktemp("cwt")
    spec, tspec = preset("demo", max_epochs=3, max_minutes=0, **TINY)
    recorder, runs = [], []
    for n, order in enumerate((sites, sites[::-1])):
        wrap = (lambda g: recorder.append(Recorder(g)) or recorder[0]) if n == 0 else None
        runs.append(simulate(Plan(strategy="cwt", model=spec, train=tspec,
                                  out=str(root / f"m{n}"), sites=tuple(map(str, order)),
                                  num_sites=2, device="cpu", carry_optimizer=True),
                             wrap_grid=wrap)["summary"])
    return recorder[0], runs, initial_weights(Plan(model=spec, train=tspec))


def test_only_weights_and_aggregates_cross_the_network(cwt_runs):
    seen, _, initial = cwt_runs
    seen = seen.seen
    weight_keys, network_keys = set(initial), set(kept_weights(initial))
    assert network_keys < weight_keys  # training messages carry the moving average too
    config_keys = {"server-round", "proximal-mu", "name", "inplane-mm", "slice-mm", "labels",
                   "calibrate", "validate"}
    rules = {rule_key(rule) for rule in RULES}  # mean Dice per lesion rule
    metric_keys = {"train-loss", "num-examples", "site-weight", "train-seconds", "val-loss",
                   "val-examples",
                   "val-seconds", *rules}
    assert any(rules <= set(record.keys()) for content in seen
               for record in content.metric_records.values())
    assert len(seen) > 6
    for content in seen:
        assert set(content.keys()) <= {"arrays", "optimizer", "config", "metrics", "site"}
        for key, record in content.array_records.items():
            names = set(unpack(record))  # tensors by name, and nothing beside them:
            for packed, array in record.items():
                layout = json.loads(packed.split(" ", 1)[1])
                assert math.prod(array.shape) == sum(math.prod(s) for _, s in layout)
            assert names in (weight_keys, network_keys) if key == "arrays" else all(
                n.split(".", 1)[1] in {"step", "exp_avg", "exp_avg_sq"} for n in names)
        for record in content.config_records.values():
            assert set(record.keys()) <= config_keys
            assert all(v in ("alpha", "beta") for k, v in record.items() if k == "name")
            assert all(isinstance(v, float) for k, v in record.items()
                       if k in ("inplane-mm", "slice-mm"))
            assert all(v in ("", "binary", "types") for k, v in record.items() if k == "labels")
        for record in content.metric_records.values():
            assert set(record.keys()) <= metric_keys
            assert all(isinstance(v, int | float) for v in record.values())


def test_one_exchange_a_round(cwt_runs):
    """The sites validate the model the last round left before they train (the sites cwt
    does not pick only validate): after the sites' names, one exchange a round, one that
    validates the last round, and the final calibration."""
    recorder, runs, _ = cwt_runs
    assert runs[0]["rounds"] == 3 and "dice_by_rule" in runs[0]
    assert recorder.exchanges == [["query", "query"], ["train"], ["evaluate", "train"],
                                  ["evaluate", "train"], ["evaluate", "evaluate"],
                                  ["evaluate", "evaluate"]]
    history = runs[0]["history"]
    assert [row["round"] for row in history] == [1, 2, 3]
    assert all(row["val_loss"] > 0 and row["other_seconds"] >= 0 for row in history)
    assert history[0]["val_seconds"] == 0  # the first round has no model before it to check


def test_early_stopping_reads_a_round_late_and_drops_the_round_after(tmp_path, sites):
    """No round after the first improves by the (huge) margin: round 2 uses up the patience
    of 1, and round 3, trained in the exchange that validated round 2, is dropped."""
    spec, tspec = preset("demo", max_epochs=3, max_minutes=0, patience=1, min_delta=1e9,
                         calibrate=False, select_by="patch-loss", **TINY)
    recorder = []
    summary = simulate(Plan(strategy="cwt", model=spec, train=tspec, out=str(tmp_path / "m"),
                            sites=tuple(map(str, sites)), num_sites=2, device="cpu"),
                       wrap_grid=lambda g: recorder.append(Recorder(g)) or recorder[0]
                       )["summary"]
    assert (summary["rounds"], summary["best_round"], summary["stopped"]) == (
        2, 1, "early stopping")
    assert [row["round"] for row in summary["history"]] == [1, 2]
    assert recorder[0].exchanges[1:] == [["train"], ["evaluate", "train"],
                                         ["evaluate", "train"]]


def test_cwt_order_is_by_site_name(cwt_runs):
    _, runs, _ = cwt_runs
    for run in runs:
        assert [r["sites"] for r in run["history"]] == ["alpha", "beta", "alpha"]
    assert math.isclose(runs[0]["best_val_loss"], runs[1]["best_val_loss"], rel_tol=1e-6)


def test_bad_update_is_rejected_and_logged(tmp_path, sites, caplog):
    spec, tspec = preset("demo", max_epochs=1, max_minutes=0, **TINY)
    simulate(Plan(strategy="fedavg", model=spec, train=tspec, out=str(tmp_path / "m"),
                  sites=tuple(map(str, sites)), num_sites=2, device="cpu"),
             wrap_grid=lambda g: Recorder(g, corrupt_site_weights=True))
    assert all(torch.isfinite(v.float()).all() for v in _weights(tmp_path / "m").values())
    history = json.loads((tmp_path / "m" / "config.json").read_text())["summary"]["history"]
    assert len(history[0]["sites"].split()) == 1  # only the healthy site was merged
    assert "NaN or Inf" in caplog.text


def test_a_round_no_site_could_train_says_why(tmp_path):
    lonely = make_site(tmp_path / "lonely", n=1)  # training needs a second scan to validate
    spec, tspec = preset("demo", max_epochs=1, max_minutes=0, calibrate=False, **TINY)
    with pytest.raises(IchfedError) as failed:
        simulate(Plan(strategy="cwt", model=spec, train=tspec, out=str(tmp_path / "m"),
                      sites=(str(lonely),), num_sites=1, device="cpu"))
    message = str(failed.value)
    assert "round 1: no usable update from" in message and "\n" not in message
    assert ": training needs at least two labelled scans (one for validation))" in message


def test_a_typed_model_over_sites_that_give_no_types_is_refused(tmp_path, sites):
    """As `ichfed train` refuses it: the type outputs would never learn."""
    spec, tspec = preset("demo", max_epochs=1, max_minutes=0, labels="types", **TINY)
    with pytest.raises(IchfedError) as failed:
        simulate(Plan(strategy="fedavg", model=spec, train=tspec, out=str(tmp_path / "m"),
                      sites=tuple(map(str, sites)), num_sites=2, device="cpu"))
    assert str(failed.value) == ("--set labels=types: no site of alpha, beta labels bleed types "
                                 "(site.json \"labels\": \"types\"); a typed model needs at "
                                 "least one")
    assert not (tmp_path / "m" / "config.json").exists()


def test_interrupted_federation_resumes_from_last_round(tmp_path, sites):
    spec, tspec = preset("demo", max_epochs=3, max_minutes=0, **TINY)
    plan = Plan(strategy="cwt", model=spec, train=tspec, out=str(tmp_path / "m"),
                sites=tuple(map(str, sites)), num_sites=2, device="cpu")

    def crash_after_first(row):
        if row["round"] == 1:
            raise RuntimeError("coordinator lost power")

    with pytest.raises(IchfedError, match="coordinator lost power"):
        simulate(plan, on_round=crash_after_first)
    assert (tmp_path / "m" / "checkpoint.safetensors").exists()
    with pytest.raises(IchfedError, match="already holds"):
        simulate(plan)
    summary = simulate(Plan(**{**plan.__dict__, "resume": True}))["summary"]
    assert [r["round"] for r in summary["history"]] == [1, 2, 3]
    assert [r["sites"] for r in summary["history"]] == ["alpha", "beta", "alpha"]


def test_private_runs_count_the_epsilon_spent_across_a_resume(tmp_path, sites):
    """FedAvg noised at the coordinator (every site in every round), interrupted and resumed,
    and cwt noised at each site (a site's epsilon counts its own turns)."""
    spec, tspec = preset("demo", max_epochs=2, max_minutes=0, calibrate=False, **TINY)
    plan = Plan(strategy="fedavg", model=spec, train=tspec, out=str(tmp_path / "f"),
                sites=tuple(map(str, sites)), num_sites=2, device="cpu",
                privacy=Privacy(noise_multiplier=0.7, seed=3))

    def crash_after_first(row):
        if row["round"] == 1:
            raise RuntimeError("coordinator lost power")

    with pytest.raises(IchfedError, match="coordinator lost power"):
        simulate(plan, on_round=crash_after_first)
    summary = simulate(Plan(**{**plan.__dict__, "resume": True}))["summary"]
    assert [r["epsilon"] for r in summary["history"]] == [
        round(epsilon_spent(0.7, n, 1e-5), 4) for n in (1, 2)]
    assert summary["privacy"]["spent_epsilon"] == pytest.approx(epsilon_spent(0.7, 2, 1e-5))
    assert "epsilon" in (tmp_path / "f" / "federation.csv").read_text().splitlines()[0]
    cwt = simulate(Plan(strategy="cwt", model=spec, train=tspec, out=str(tmp_path / "c"),
                        sites=tuple(map(str, sites)), num_sites=2, device="cpu",
                        privacy=Privacy(noise_multiplier=0.7)))["summary"]
    assert [r["epsilon"] for r in cwt["history"]] == [round(epsilon_spent(0.7, 1, 1e-5), 4)] * 2
    assert all(torch.isfinite(v.float()).all() for v in _weights(tmp_path / "c").values())


def test_flower_in_ichfeds_process_sends_no_telemetry():
    """Without the Makefile's or the test suite's setting, as a user runs `ichfed federate`."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLWR_", "RAY_ACCEL"))}
    probe = ("import ichfed.federated.simulation, flwr.supercore.telemetry as t, os; "
             "print(t.FLWR_TELEMETRY_ENABLED, os.environ['FLWR_DISABLE_UPDATE_CHECK'])")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["0", "1"]
