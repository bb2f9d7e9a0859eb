"""`make bench`: run every benchmark script here; each prints one JSON line."""

import subprocess
import sys
from pathlib import Path

SCRIPTS = [("synth_speed.py", []), ("predict_speed.py", ["--preset", "paper"]),
           ("predict_speed.py", ["--preset", "demo"]),
           ("train_speed.py", ["--preset", "demo", "--scans", "2", "--reference"]),
           ("train_speed.py", ["--preset", "paper", "--scans", "1", "--max-patches", "24",
                               "--reference"]),
           ("federation_overhead.py", []), ("phantom_sites.py", ["--cases", "20"]),
           ("quality.py", []), ("resolution.py", []), ("slice_thickness.py", [])]
GPU_SCRIPTS = [("train_speed.py", ["--preset", "paper", "--device", "cuda", "--compile",
                                   "--reference"]),
               ("train_speed.py", ["--preset", "paper", "--device", "cuda"]),
               ("predict_speed.py", ["--preset", "paper", "--device", "cuda"])]


def main() -> int:
    """Every script on this machine; on a machine with a GPU, gpu.sh holds the CUDA runs."""
    here = Path(__file__).parent
    failed = 0
    scripts = list(SCRIPTS)
    if _has_gpu():
        scripts += GPU_SCRIPTS
    else:
        print('{"benchmark": "gpu", "skipped": "no CUDA GPU on this machine; the GPU '
              'figures in BENCHMARKS.md come from benchmarks/gpu.sh on a lent H100"}')
    for script, extra in scripts:
        proc = subprocess.run([sys.executable, str(here / script), *extra], capture_output=True,
                              text=True)
        lines = proc.stdout.strip().splitlines()
        print(lines[-1] if lines else f'{{"benchmark": "{script}", "error": "no output"}}')
        if proc.returncode:
            failed += 1
            print(proc.stderr[-2000:], file=sys.stderr)
    return 1 if failed else 0


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
