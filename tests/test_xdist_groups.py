"""`make test` runs the suite on two workers with `--dist loadgroup`: tests that share a Ray
cluster or a deployed federation are grouped on one worker, and build their session fixtures
once. That rests on pytest-xdist tagging each grouped test's id, which it cannot do under
pytest 9 (pyproject pins pytest<9)."""

import pytest


@pytest.mark.xdist_group("probe")
def test_grouped_tests_are_tagged_for_one_worker(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under `pytest -n 2 --dist loadgroup` (make test)")
    assert request.node.nodeid.endswith("@probe"), (
        "pytest-xdist did not tag the grouped test: grouped tests will split across workers "
        "and session fixtures run twice; keep pytest and pytest-xdist at versions that agree")
