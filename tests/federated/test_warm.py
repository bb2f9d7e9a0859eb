"""The warm site: Flower's SuperExec with tasks served in one long-lived process, and a loud
failure when the Flower code it stands on moves."""

import importlib
import inspect
import threading
from importlib.metadata import version

import flwr.supernode.start_client_internal as loop

from ichfed.federated import pulls, supernode, warm


def test_flower_still_has_what_the_warm_site_calls():
    assert version("flwr") == "1.42.0", "federated/warm.py is written for flwr 1.42.0"
    superexec = importlib.import_module("flwr.supercore.superexec.run_superexec")
    assert "executor = get_executor(" in inspect.getsource(superexec.run_superexec)
    clientapp = importlib.import_module("flwr.supernode.runtime.run_clientapp")
    source = inspect.getsource(clientapp.run_clientapp)
    for step in ("pull_task_input(client)", "push_message(client", "push_task_output(",
                 "HeartbeatSender(make_task_heartbeat_fn_http(client))",
                 "RuntimeTokenHttpInterceptor(token)", "install_from_fab("):
        assert step in source, step  # what serve_task repeats
    assert 'command = ["flower-superexec"]' in inspect.getsource(loop.start_client_internal)
    assert "subprocess.Popen(command)" in inspect.getsource(loop.start_client_internal)


def test_the_supernode_starts_the_warm_superexec(monkeypatch):
    started = []
    monkeypatch.setattr(supernode.subprocess, "Popen", lambda cmd, *a, **k: started.append(cmd))
    supernode.WarmSuperExec().Popen(["flower-superexec", "--insecure", "--runtime-api-address",
                                     "127.0.0.1:9094"])
    supernode.WarmSuperExec().Popen(["other"])
    assert started[0][1:] == ["-m", "ichfed.federated.warm", "--insecure",
                              "--runtime-api-address", "127.0.0.1:9094"]
    assert started[1] == ["other"]


def test_the_executor_serves_one_task_at_a_time_in_this_process(monkeypatch):
    release, served = threading.Event(), []

    def serve(address, token, insecure, certificates):
        served.append((address, token, threading.current_thread().name))
        release.wait(10)

    monkeypatch.setattr(warm, "serve_task", serve)
    spec = type("Spec", (), {"runtime_api_address": "127.0.0.1:9094", "token": "t1",
                             "insecure": True, "root_certificates_path": None, "task_id": 7})
    executor = warm.InProcessExecutor()
    assert executor.launch(spec).status == "accepted"
    assert executor.get_eligible_capacity({"clientapp"}) == (set(), set())  # busy
    assert executor.launch(spec).status != "accepted"
    release.set()
    for _ in range(100):
        if not executor.busy.locked():
            break
        threading.Event().wait(0.05)
    assert executor.get_eligible_capacity({"clientapp"}) == ({"clientapp"}, set())
    assert served == [("127.0.0.1:9094", "t1", "task-7")]


def test_the_warm_superexec_is_flowers_with_the_in_process_executor(monkeypatch):
    superexec = importlib.import_module("flwr.supercore.superexec.run_superexec")
    cli = importlib.import_module("flwr.supercore.cli.flower_superexec")
    monkeypatch.setattr(superexec, "get_executor", superexec.get_executor)  # restored after
    made, shortened = [], []
    monkeypatch.setattr(cli, "flower_superexec", lambda: made.append(superexec.get_executor(
        "subprocess")))
    monkeypatch.setattr(pulls, "shorten", lambda **limits: shortened.append(limits))
    warm.main()
    assert isinstance(made[0], warm.InProcessExecutor)
    # its pulls from the SuperNode retry after milliseconds, and give up on a lost message
    assert shortened == [{"max_time": warm.TASK_PULL_MAX_S}]
