"""A warm site: one process serves every message of a run, on Flower's own runtime.

Flower 1.42's SuperExec starts a fresh `flwr-clientapp` process for every message a site
receives: it imports torch, MONAI and ichfed again, unpacks the app, loads the site's prepared
scans and, on a GPU, makes a new CUDA context, then handles one message and exits (about
10-20 s per message on 2 cores, two messages a round). Here the SuperExec runs each task in
its own long-lived process instead (`InProcessExecutor`), doing what `flwr-clientapp` does
(`serve_task`: pull the task's input from the SuperNode, run the ClientApp, push the reply and
the task's status) over the same runtime API and protocol, with the app and what it keeps in
memory (`client_app`'s prepared sites) kept between messages. No transport of ichfed's own.

Built on flwr 1.42.0's internals (its runtime client and task functions, the SuperExec's
executor factory); tests/federated/test_warm.py fails loudly when they move.
"""

import sys
import threading
from logging import ERROR

from flwr.app import Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.config import get_project_dir
from flwr.common.constant import ErrorCode, SubStatus
from flwr.supercore import log
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.superexec.executor import LaunchResult
from flwr.supercore.tls import validate_and_resolve_root_certificates
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

_apps: dict[tuple[str, str, str], object] = {}  # (fab id, version, hash) -> loaded ClientApp
# How long a task waits for its message's pieces to reach the site's SuperNode (Flower: 2 h).
# The site serves one task at a time, and a message lost on its way (the coordinator went down
# mid-transfer) left the site deaf to the resumed run; 10 minutes still brings the `paper`
# preset's 62 MB at 100 KB/s.
TASK_PULL_MAX_S = 600.0


def _client_app(run, fab):
    """The run's ClientApp, installed and loaded once per app bundle."""
    key = (run.fab_id, run.fab_version, fab.hash_str)
    if key not in _apps:
        project = get_project_dir(*key)
        if not project.exists():
            install_from_fab(fab.content, skip_prompt=True)
        _apps[key] = get_load_client_app_fn(default_app_ref="", app_path=None,
                                            multi_app=True)(*key)
    return _apps[key]


def serve_task(address: str, token: str, insecure: bool, certificates: str | None) -> None:
    """One task, as `flwr-clientapp` serves it, in this process."""
    client = RuntimeHttpClient.from_server_address(
        server_address=address, insecure=insecure,
        root_certificates=validate_and_resolve_root_certificates(certificates, insecure),
        interceptors=[RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                      RuntimeTokenHttpInterceptor(token)],
        retry_invoker=make_simple_http_retry_invoker())
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    message = reply = context = None
    status, details = SubStatus.FAILED, "ClientApp task failed"
    try:
        heartbeat.start()
        message, context, run, fab = pull_task_input(client)
        reply = _client_app(run, fab)(message=message, context=context)
        status, details = SubStatus.COMPLETED, ""
    except Exception as exc:  # the site reports it, as flwr-clientapp does, and goes on
        log(ERROR, "ClientApp raised an exception", exc_info=exc)
        details = f"{type(exc)}:<'{exc}'>"
        if message is not None:
            reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details),
                            reply_to=message)
    finally:
        try:
            if reply is not None and context is not None:
                push_message(client, reply, context)
        finally:
            push_task_output(client=client, context=context, sub_status=status,
                             details=details)
            if heartbeat.is_running:
                heartbeat.stop()
            client.close()


class InProcessExecutor:
    """The SuperExec executor that runs each task in a thread of its own process, one at a
    time (a SuperNode hands its ClientApp one message at a time)."""

    def __init__(self) -> None:
        self.busy = threading.Lock()

    def get_eligible_capacity(self, supported_task_types, **_) -> tuple[set, set[str]]:
        return (set() if self.busy.locked() else set(supported_task_types)), set()

    def wait_for_capacity(self, *_, **__) -> None:
        return None

    def launch(self, spec) -> LaunchResult:
        if not self.busy.acquire(blocking=False):
            return LaunchResult.capacity_rejected("a task is running")

        def run() -> None:
            try:
                serve_task(spec.runtime_api_address, spec.token, spec.insecure,
                           spec.root_certificates_path)
            finally:
                self.busy.release()

        threading.Thread(target=run, name=f"task-{spec.task_id}", daemon=True).start()
        return LaunchResult.accepted()

    def close(self) -> None:
        return None

    def reconcile(self) -> None:
        return None


def main() -> None:
    """`flower-superexec` (same arguments) with tasks served in this process."""
    import flwr.supercore.superexec.run_superexec as superexec
    from flwr.supercore.cli.flower_superexec import flower_superexec

    from ichfed.federated.pulls import shorten

    shorten(max_time=TASK_PULL_MAX_S)
    superexec.get_executor = lambda *args, **kwargs: InProcessExecutor()
    sys.argv[0] = "flower-superexec"
    flower_superexec()


if __name__ == "__main__":
    main()
