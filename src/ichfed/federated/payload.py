"""What crosses the network: weights and Adam state as Flower ArrayRecords, and the checks a
reply must pass before it is merged."""

import numpy as np
import torch
from flwr.app import ArrayRecord, RecordDict


def optimizer_record(state: dict) -> ArrayRecord:
    """Adam's per-parameter tensors (step, moments) flattened to `index.name` keys; the
    hyper-parameters are not sent (every site builds the same Adam from the plan)."""
    return ArrayRecord({f"{index}.{name}": torch.as_tensor(value).detach().cpu()
                        for index, slots in state["state"].items()
                        for name, value in slots.items()})


def optimizer_state(record: ArrayRecord, template: dict) -> dict:
    """Inverse of `optimizer_record`, with the param groups of a freshly built optimizer."""
    state: dict[int, dict] = {}
    for key, value in record.to_torch_state_dict().items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": template["param_groups"]}


def problem_with(record: ArrayRecord, reference: ArrayRecord) -> str | None:
    """Why a returned ArrayRecord must not be merged (other keys or shapes, NaN/Inf), or None."""
    if set(record.keys()) != set(reference.keys()):
        return "its weights have other names than the model's"
    for key, array in record.items():
        if tuple(array.shape) != tuple(reference[key].shape):
            return f"{key} has shape {tuple(array.shape)}, expected {tuple(reference[key].shape)}"
        if not np.isfinite(array.numpy()).all():
            return f"{key} holds NaN or Inf"
    return None


def payload_bytes(content: RecordDict) -> int:
    """Bytes of tensor data in a message (the part that grows with the model)."""
    return sum(len(array.data) for record in content.array_records.values()
               for array in record.values())
