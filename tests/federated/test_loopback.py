"""`ichfed federate --engine deployment`: the run goes through a TLS coordinator and one site
process per site on 127.0.0.1, started and stopped by ichfed, and trains what local training
(and so the simulation, tests/federated/test_simulation.py) trains."""

import json
import time

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.federated.loopback import Processes, _group_alive
from tests.helpers import make_site

pytestmark = pytest.mark.xdist_group("deploy")  # mostly waiting: runs beside others
SETTINGS = ["--set", "max_epochs=2", "--set", "features=[4,4,8,8,16,4]", "--set", "patch=32",
            "--set", "lesion_patches=8", "--set", "batch_size=8", "--set", "max_minutes=0",
            "--device", "cpu"]


def test_one_site_cwt_on_the_deployment_runtime_equals_train(tmp_path):
    site = make_site(tmp_path / "alpha", n=3)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(site), "--out", str(tmp_path / "t"), *SETTINGS])
    assert trained.exit_code == 0, trained.output
    fed = runner.invoke(app, ["federate", str(site), "--engine", "deployment", "--strategy",
                              "cwt", "--carry-optimizer", "--out", str(tmp_path / "f"),
                              *SETTINGS])
    assert fed.exit_code == 0, fed.output
    assert "round 2/2  alpha: train" in fed.output  # rounds reported while the run goes on
    a, b = load_file(tmp_path / "t" / "model.safetensors"), load_file(
        tmp_path / "f" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), atol=1e-5, rtol=1e-4)
    summary = json.loads((tmp_path / "f" / "config.json").read_text())["summary"]
    assert summary["rounds"] == 2 and summary["strategy"] == "cwt"


def test_an_unknown_engine_is_one_line(tmp_path):
    site = make_site(tmp_path / "alpha", n=3)
    result = CliRunner().invoke(app, ["federate", str(site), "--engine", "ray", "--out",
                                      str(tmp_path / "f"), *SETTINGS])
    assert result.exit_code != 0 and "unknown engine 'ray'" in result.output


def test_a_stopped_group_leaves_nothing_behind(tmp_path, monkeypatch):
    """The leader ends on SIGTERM; a member that ignores it (as Flower's ServerApp did) is
    killed once the grace period is over."""
    monkeypatch.setattr(Processes, "GRACE_S", 1.0)
    procs = Processes(tmp_path)
    leader = procs.start("group", ["sh", "-c", "(trap '' TERM; sleep 300) & sleep 300"])
    time.sleep(0.5)  # the member is running
    procs.stop("group")
    assert leader.returncode is not None
    time.sleep(0.5)  # SIGKILL is delivered
    assert not _group_alive(leader.pid)
