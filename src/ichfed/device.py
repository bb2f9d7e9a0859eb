"""The one device resolver every command uses (auto, cpu, cuda, cuda:N), and what a CPU has
that decides its kernels."""

import platform
import sys
from pathlib import Path

import torch

from ichfed.errors import IchfedError


def resolve_device(name: str = "auto") -> torch.device:
    """auto picks CUDA when present; asking for CUDA without a GPU falls back to the CPU with a
    message rather than failing deep inside torch."""
    name = name.lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            print(f"note: device '{name}' requested but no CUDA GPU is available; using the CPU",
                  file=sys.stderr)
            return torch.device("cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise IchfedError(f"device '{name}': only {torch.cuda.device_count()} GPU(s) present")
        return torch.device(f"cuda:{index}")
    raise IchfedError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")


# torch's probes for the CPU's bf16 hardware (private, so looked up with a fallback)
BF16_UNITS = (("AVX512-BF16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))


def cpu_bf16_units() -> list[str]:
    """The bf16 units of this CPU that torch sees (AVX512-BF16, AMX): where there are none,
    oneDNN emulates bf16, slower than fp32."""
    return [name for name, probe in BF16_UNITS if getattr(torch.cpu, probe, lambda: False)()]


def cpu_description() -> str:
    """The CPU's model, bf16 units, torch's kernel level and threads. oneDNN picks its kernels
    from these, and so the last bits of every CPU-trained model, which small models amplify: two
    hosts that both reported only "torch kernels AVX512" trained the study's models to different
    tables (docs/experiments.md)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    units = cpu_bf16_units()
    if units:
        model += f" ({', '.join(units)})"
    return (f"{model}, torch kernels {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads")
