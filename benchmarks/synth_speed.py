"""Seconds to synthesize one scan on one CPU core, per site and size (issue: built-in data).

Prints one JSON line. Usage: python benchmarks/synth_speed.py [--repeats N]
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy/scipy load
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

from ichfed.phantom import BUILTIN, synth_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    result = {}
    for size in ("reduced", "full"):
        for name, profile in BUILTIN.items():
            times = []
            for index in range(args.repeats):
                t0 = time.perf_counter()
                case = synth_case(profile, 0, index, size)
                times.append(time.perf_counter() - t0)
            result[f"{name}/{size}"] = {"seconds_mean": round(sum(times) / len(times), 2),
                                        "seconds_max": round(max(times), 2),
                                        "shape": list(case.image.shape)}
    print(json.dumps({"benchmark": "synth_speed", "cores": 1, "machine": platform.node(),
                      "processor": platform.processor() or platform.machine(),
                      "results": result}))


if __name__ == "__main__":
    main()
