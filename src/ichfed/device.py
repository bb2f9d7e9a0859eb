"""The one device resolver every command uses (auto, cpu, cuda, cuda:N)."""

import sys

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
