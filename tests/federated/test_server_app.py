"""The coordinator's exchange: a refused push (a site restarting mid-round) is asked again."""

from flwr.supercore.inflatable.inflatable_utils import ObjectPushError

from ichfed.federated import server_app
from ichfed.federated.plan import Plan


class _Message:
    def __init__(self, node: int) -> None:
        self.metadata = type("Meta", (), {"dst_node_id": node, "src_node_id": node})()


class _FlakyGrid:
    """Refuses the first push, then answers every message."""

    def __init__(self) -> None:
        self.calls = 0

    def send_and_receive(self, messages, timeout):
        self.calls += 1
        if self.calls == 1:
            raise ObjectPushError("abc", 1, "session")
        return list(messages)


def test_a_refused_push_is_asked_again(monkeypatch):
    monkeypatch.setattr(server_app, "RETRY_WAIT_S", 0.0)
    grid = _FlakyGrid()
    sent, replies = server_app._exchange(grid, lambda: [_Message(1), _Message(2)],
                                         lambda got: got, Plan(), {1: "a", 2: "b"},
                                         all_needed=True)
    assert grid.calls == 2 and len(sent) == 2 and len(replies) == 2
