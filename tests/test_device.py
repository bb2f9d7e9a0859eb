"""The one device resolver, tested without a GPU, and the CPU record a study's report keeps."""

import pytest
import torch

from ichfed.device import BF16_UNITS, cpu_bf16_units, cpu_description, resolve_device
from ichfed.errors import IchfedError

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


def test_cpu_is_the_cpu_and_names_are_case_free():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")


@needs_no_gpu
@pytest.mark.parametrize("name", ["auto", "cuda", "cuda:1"])
def test_without_a_gpu_everything_falls_back_to_the_cpu(name, capsys):
    assert resolve_device(name) == torch.device("cpu")
    note = capsys.readouterr().err
    assert ("no CUDA GPU" in note) == (name != "auto")  # auto is not a request for a GPU


def test_an_unknown_device_is_a_one_line_error():
    with pytest.raises(IchfedError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cpu_description_names_the_kernels_threads_and_bf16_units():
    text = cpu_description()
    assert f"torch kernels {torch.backends.cpu.get_cpu_capability()}" in text
    assert text.endswith(f"{torch.get_num_threads()} threads")
    units = cpu_bf16_units()
    assert set(units) <= {name for name, _ in BF16_UNITS}
    assert all(unit in text for unit in units)
