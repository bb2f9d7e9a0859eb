"""A run's checkpoint comes back as it was saved, and loading one never unpickles."""

import pickle

import pytest
import torch

from ichfed.errors import InputError
from ichfed.model.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint


def test_a_training_state_comes_back_as_saved(tmp_path):
    net = torch.nn.Linear(3, 2)
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(4, 3)).sum().backward()
    adam.step()
    state = {"epoch": 2, "best": float("inf"), "history": [{"epoch": 1, "val_loss": 0.5}],
             "net": net.state_dict(), "optimizer": adam.state_dict(), "note": None}
    save_checkpoint(tmp_path, state)
    back = load_checkpoint(tmp_path)
    assert back["epoch"] == 2 and back["best"] == float("inf") and back["note"] is None
    assert back["history"] == [{"epoch": 1, "val_loss": 0.5}]
    assert set(back["optimizer"]["state"]) == {0, 1}  # parameter indices stay integers
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    for key, value in net.state_dict().items():
        assert torch.equal(back["net"][key], value)
    other = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    other.load_state_dict(back["optimizer"])  # what resuming does
    assert torch.equal(other.state_dict()["state"][0]["exp_avg"], adam.state[net.weight]["exp_avg"])


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled')",))


def test_a_pickle_in_place_of_a_checkpoint_is_refused_without_running_it(tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(pickle.dumps({"net": _Boom()}))
    with pytest.raises(InputError, match="not a checkpoint this ichfed can resume"):
        load_checkpoint(tmp_path)
