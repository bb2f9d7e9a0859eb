"""`make bench`: run every benchmark script here; each prints one JSON line."""

import subprocess
import sys
from pathlib import Path

SCRIPTS = [("synth_speed.py", []), ("predict_speed.py", ["--preset", "paper"]),
           ("predict_speed.py", ["--preset", "demo"]), ("phantom_sites.py", ["--cases", "20"])]


def main() -> int:
    here = Path(__file__).parent
    failed = 0
    for script, extra in SCRIPTS:
        proc = subprocess.run([sys.executable, str(here / script), *extra], capture_output=True,
                              text=True)
        lines = proc.stdout.strip().splitlines()
        print(lines[-1] if lines else f'{{"benchmark": "{script}", "error": "no output"}}')
        if proc.returncode:
            failed += 1
            print(proc.stderr[-2000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
