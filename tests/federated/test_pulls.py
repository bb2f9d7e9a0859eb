"""Flower's retry of an announced but not yet uploaded object, shortened in ichfed's
processes; and a loud failure when the Flower code this relies on moves."""

import inspect
import threading
import types
from importlib.metadata import version

import pytest
from flwr.supercore.inflatable import inflatable_utils
from flwr.supercore.inflatable.inflatable_utils import ObjectUnavailableError

from ichfed.federated import pulls

FUNCTIONS = (inflatable_utils.pull_objects, inflatable_utils.pull_and_inflate_object_from_tree)


@pytest.fixture
def flowers_defaults():
    """Flower's own defaults before the test and after it, whatever the test does."""
    saved = [dict(f.__kwdefaults__) for f in FUNCTIONS]
    yield
    for function, defaults in zip(FUNCTIONS, saved, strict=True):
        function.__kwdefaults__.clear()
        function.__kwdefaults__.update(defaults)


def _waits_before_an_object_arrives(monkeypatch, unavailable: int) -> list[float]:
    """The pauses `pull_objects` takes while an object is `unavailable` times not there yet
    (jitter off, nothing actually slept)."""
    waited: list[float] = []

    class Event(threading.Event):
        def wait(self, timeout=None):
            waited.append(round(timeout, 3))
            return self.is_set()

    monkeypatch.setattr(inflatable_utils, "threading",
                        types.SimpleNamespace(Event=Event, Lock=threading.Lock))
    monkeypatch.setattr(inflatable_utils.random, "uniform", lambda a, b: 0.0)
    tries = iter(range(unavailable + 1))

    def pull(object_id: str) -> bytes:
        if next(tries) < unavailable:
            raise ObjectUnavailableError(object_id)
        return b"weights"

    assert inflatable_utils.pull_objects(["a"], pull) == {"a": b"weights"}
    return waited


def test_flower_retries_an_unavailable_object_after_seconds(monkeypatch, flowers_defaults):
    assert version("flwr") == "1.42.0", "federated/pulls.py is written for flwr 1.42.0"
    assert _waits_before_an_object_arrives(monkeypatch, 5) == [1, 2, 4, 8, 10]


def test_ichfed_retries_after_milliseconds(monkeypatch, flowers_defaults):
    pulls.shorten()
    pulls.shorten()  # idempotent
    assert _waits_before_an_object_arrives(monkeypatch, 5) == [0.05, 0.1, 0.2, 0.4, 0.5]
    for function in FUNCTIONS:
        assert function.__kwdefaults__["max_tries_per_object"] is None
        assert function.__kwdefaults__["max_time"] == 7200  # Flower's bound on a pull stays


def test_flowers_callers_leave_the_retry_to_the_defaults():
    """Where Flower pulls a message's objects it passes no backoff of its own, so the
    shortened defaults are what it uses."""
    from flwr.superlink.grid import http_grid
    from flwr.supernode import start_client_internal
    from flwr.supernode.runtime import run_clientapp

    for module, name in ((http_grid, "pull_objects"), (start_client_internal, "pull_objects"),
                         (run_clientapp, "pull_and_inflate_object_from_tree")):
        source = inspect.getsource(module)
        assert f"{name}(" in source, f"{module.__name__} no longer calls {name}"
        assert "initial_backoff" not in source and "backoff_cap" not in source, module.__name__
        assert getattr(module, name) is getattr(inflatable_utils, name), module.__name__


def test_a_process_can_give_up_on_a_pull_sooner(flowers_defaults):
    pulls.shorten(max_time=600.0)
    for function in FUNCTIONS:
        assert function.__kwdefaults__["max_time"] == 600.0
        assert function.__kwdefaults__["initial_backoff"] == pulls.INITIAL_BACKOFF_S
