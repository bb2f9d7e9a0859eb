"""A hospital's Flower SuperNode: warm, and without Flower's fixed wait for a reply.

- The SuperNode starts its SuperExec as ichfed's warm one (`federated/warm.py`: one process
  serves every message of a run) instead of `flower-superexec`, same arguments.
- It looks for its ClientApp's reply every `REPLY_WAIT_S` instead of every 0.5 s (a look at its
  own state, no request).
- It retries an object that is announced but not uploaded yet after 50 ms, not 1-10 s
  (`federated/pulls.py`).
- Its 3 s pull interval towards the coordinator and the SuperExec's 1 s task poll stay as
  Flower sets them: with four pulls a second from each site and twenty polls a second, a
  2-core coordinator spent half a core answering them, and a two-round deployed run took
  189 s instead of 160 s (2026-12-06, AMD EPYC, 2 cores).

Written for flwr 1.42.0 (tests/federated/test_supernode.py fails when that code moves).
"""

import subprocess
import sys
import time

REPLY_WAIT_S = 0.05  # Flower: 0.5 s
FLOWER_WAITS = {0.5: REPLY_WAIT_S}  # Flower's sleep -> ours


class ShortWaits:
    """The `time` module as `start_client_internal` sees it, its reply wait shortened."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(FLOWER_WAITS.get(seconds, seconds))


class WarmSuperExec:
    """The `subprocess` module as `start_client_internal` sees it: `flower-superexec` is
    started as ichfed's warm SuperExec."""

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(command: list[str], *args, **kwargs) -> subprocess.Popen:  # noqa: N802
        if command and command[0] == "flower-superexec":
            command = [sys.executable, "-m", "ichfed.federated.warm", *command[1:]]
        return subprocess.Popen(command, *args, **kwargs)


def main() -> None:
    """`flower-supernode` (same arguments) with a warm SuperExec and the shorter reply wait."""
    import flwr.supernode.start_client_internal as loop
    from flwr.supernode.cli import flower_supernode

    from ichfed.federated.pulls import shorten

    shorten()
    loop.time = ShortWaits()
    loop.subprocess = WarmSuperExec()
    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
