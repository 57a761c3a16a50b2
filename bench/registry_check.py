"""Benchmark: `haishin check` on a registry of 2,000 channels and 5,000 applications.

    python bench/registry_check.py [--channels 2000] [--runs 5]

Times the whole command as a clerk's CI runs it (a fresh process each time, interpreter
start included) and prints the median and best wall time and the peak memory. The
target (issue 3) is under 2 s on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_registry import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        generate(root, args.channels)
        n_apps = len(list((root / "applications").iterdir()))
        cmd = [sys.executable, "-m", "haishin", "check", str(root)]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"check failed:\n{done.stdout}{done.stderr}")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        f"haishin check: {args.channels} channels, {n_apps} applications: "
        f"median {statistics.median(times):.2f} s, best {min(times):.2f} s over {args.runs} runs, "
        f"peak RSS {peak_kb / 1024:.0f} MiB "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()})"
    )


if __name__ == "__main__":
    main()
