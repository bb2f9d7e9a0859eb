"""The site's SuperNode: Flower's own, with its fixed waits shortened, and a loud failure
when Flower's code that this relies on moves."""

import importlib
import inspect
from importlib.metadata import version

import flwr.supernode.start_client_internal as loop

from ichfed.federated import pulls, supernode


def test_flower_still_waits_where_the_site_shortens_it():
    assert version("flwr") == "1.42.0", "federated/supernode.py is written for flwr 1.42.0"
    source = inspect.getsource(loop)
    assert "import time" in source and "time.sleep(0.5)" in source
    assert "import subprocess" in source


def test_only_flowers_reply_wait_is_shortened(monkeypatch):
    slept = []
    monkeypatch.setattr(supernode.time, "sleep", slept.append)
    waits = supernode.ShortWaits()
    for seconds in (3, 0.5, 2.0):
        waits.sleep(seconds)
    assert slept == [3, supernode.REPLY_WAIT_S, 2.0]
    assert waits.time is supernode.time.time  # everything else is the time module's


def test_the_site_runs_flowers_supernode_warm_with_a_short_reply_wait(monkeypatch):
    seen = []
    monkeypatch.setattr(loop, "time", loop.time)  # restored after
    monkeypatch.setattr(loop, "subprocess", loop.subprocess)  # restored after
    cli = importlib.import_module("flwr.supernode.cli")
    monkeypatch.setattr(cli, "flower_supernode", lambda: seen.append((loop.time,
                                                                        loop.subprocess)))
    monkeypatch.setattr(pulls, "shorten", lambda: seen.append("pulls shortened"))
    supernode.main()
    assert seen.pop(0) == "pulls shortened"
    assert isinstance(seen[0][0], supernode.ShortWaits)
    assert isinstance(seen[0][1], supernode.WarmSuperExec)
