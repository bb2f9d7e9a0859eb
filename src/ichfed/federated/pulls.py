"""Flower's retry of an object that is announced but not uploaded yet, made short.

Flower 1.42 announces a message before the objects it is made of (the weights, in 5 MiB
chunks) have arrived at the SuperLink or SuperNode, and whoever pulls the message early finds
those objects "unavailable" and retries each after 1, 2, 4, 8, then every 10 s
(`PULL_INITIAL_BACKOFF`, `PULL_BACKOFF_CAP`). A 16 MB upload on loopback takes well under a
second, so a reader slept for seconds after the data was there: in a deployed cwt round the
weights took 8-13 s to arrive or leave (docs/experiments.md, "Federation"). Here the first
retry comes after 50 ms and none waits more than 0.5 s; Flower's limit on the whole pull
(`PULL_MAX_TIME`, 2 h) still ends a pull that never completes, so the count of tries is
lifted instead of being spent 60 times faster.

Every process of a deployment that pulls objects calls `shorten()`: the site's SuperNode
(`federated/supernode.py`), its warm SuperExec (`federated/warm.py`) and the coordinator's
ServerApp (`federated/server_app.py`). Written for flwr 1.42.0; tests/federated/test_pulls.py
fails when the functions or their parameters move.
"""

INITIAL_BACKOFF_S = 0.05  # Flower: 1 s
BACKOFF_CAP_S = 0.5  # Flower: 10 s
SHORT = {"initial_backoff": INITIAL_BACKOFF_S, "backoff_cap": BACKOFF_CAP_S,
         "max_tries_per_object": None}  # Flower: 500 tries; PULL_MAX_TIME still bounds it


def shorten(max_time: float | None = None) -> None:
    """Shorten the retry of Flower's object pulls in this process (idempotent); with
    `max_time`, also give up on a pull after that many seconds instead of Flower's 2 h."""
    from flwr.supercore.inflatable import inflatable_utils

    limits = SHORT if max_time is None else {**SHORT, "max_time": max_time}
    # Both are called without these arguments by Flower's own code, so their defaults rule.
    for function in (inflatable_utils.pull_objects,
                     inflatable_utils.pull_and_inflate_object_from_tree):
        function.__kwdefaults__.update(limits)
