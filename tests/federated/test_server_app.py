"""The coordinator's exchange: a refused push (a site restarting mid-round) is asked again,
once the site is connected again."""

from flwr.supercore.inflatable.inflatable_utils import ObjectPushError

from ichfed.federated import server_app
from ichfed.federated.plan import Plan


class _Message:
    def __init__(self, node: int) -> None:
        self.metadata = type("Meta", (), {"dst_node_id": node, "src_node_id": node})()


class _FlakyGrid:
    """Refuses the first push, then answers every message; site 2 connects again on the
    third look."""

    def __init__(self) -> None:
        self.calls, self.pending, self.looks = 0, {}, 0

    def get_node_ids(self):
        self.looks += 1
        return [1, 2] if self.looks >= 3 else [1]

    def push_messages(self, messages):
        self.calls += 1
        if self.calls == 1:
            raise ObjectPushError("abc", 1, "session")
        self.pending = {str(id(m)): m for m in messages}
        return list(self.pending)

    def pull_messages(self, ids):
        replies = [self.pending.pop(i) for i in list(ids) if i in self.pending]
        for reply in replies:
            reply.metadata.reply_to_message_id = str(id(reply))
        return replies


class _SlowGrid:
    """Answers one message per pull, the first pull none."""

    def __init__(self) -> None:
        self.pulls, self.waiting = 0, []

    def push_messages(self, messages):
        self.waiting = list(messages)
        return [str(i) for i in range(len(self.waiting))]

    def pull_messages(self, ids):
        self.pulls += 1
        if self.pulls == 1 or not ids:
            return []
        reply = _Message(0)
        reply.metadata.reply_to_message_id = sorted(ids)[0]
        return [reply]


def test_replies_are_pulled_without_flowers_three_second_sleep(monkeypatch):
    waits = []
    monkeypatch.setattr(server_app.time, "sleep", waits.append)
    replies = server_app.send_and_receive(_SlowGrid(), [_Message(1), _Message(2), _Message(3)],
                                          timeout=60)
    assert len(replies) == 3 and len(waits) == 3
    assert waits[0] == server_app.PULL_WAIT_S[0] and max(waits) <= server_app.PULL_WAIT_S[1]


def test_a_refused_push_is_asked_again(monkeypatch):
    monkeypatch.setattr(server_app, "RETRY_WAIT_S", 0.0)
    grid = _FlakyGrid()
    sent, replies = server_app._exchange(grid, lambda: [_Message(1), _Message(2)],
                                         lambda got: got, Plan(), {1: "a", 2: "b"},
                                         all_needed=True)
    assert grid.calls == 2 and len(sent) == 2 and len(replies) == 2
    assert grid.looks == 3  # asked again once both sites were connected


def test_a_sites_failure_reads_as_one_line_from_either_engine():
    deployed = "<class 'ichfed.errors.IchfedError'>:<'training needs two scans'>"
    simulated = ("Traceback (most recent call last):\n  File \"ray_actor.py\", line 65, in run\n"
                 "flwr.clientapp.client_app.ClientAppException: \nException ClientAppException "
                 "occurred. Message: training needs two scans'>")
    assert server_app._why(deployed) == server_app._why(simulated) == "training needs two scans"
    assert server_app._why("  the node is\nunavailable ") == "the node is unavailable"
