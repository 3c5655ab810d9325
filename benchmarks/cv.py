"""Wall time of the default mini vision-only track (target: ≤ 5 min on 2 cores).

Runs ``clearbench cv run`` with its defaults (CLEAR-mini generated on the fly, the mini
ResNet, every method, the default number of shadow replicas) in a fresh temporary folder, and
prints the wall time per kind of stage (summed over the target and shadow replicas), the total,
the peak resident memory, the load average before and after (another process competing for the
cores slows the run) and the Table-2 figures.

    python benchmarks/cv.py [--threads 2] [--shadows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from clearbench.cv.recipe import CVConfig, run_cv

TARGET_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--shadows", type=int, default=None, help="default: CVConfig's")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this (new) folder and keep it, instead of a temporary one")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or Path(scratch) / "cv"
        if out.exists():
            raise SystemExit(f"{out} exists; the benchmark needs a fresh folder")
        overrides = {} if args.shadows is None else {"shadows": args.shadows}
        started = time.perf_counter()
        results = run_cv(CVConfig(out=out, **overrides))
        total = time.perf_counter() - started
    load_after = os.getloadavg()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\nvision-only track, {results['settings']['shadows']} shadow replicas, "
          f"{args.threads} threads")
    print(f"{'stage':12} {'seconds':>8}")
    for stage, seconds in results["timing"].items():
        print(f"{stage:12} {seconds:8.1f}")
    other = total - sum(results["timing"].values())
    print(f"{'data+scores':12} {other:8.1f}   (synthesise, load and render the data; U-LiRA)")
    verdict = "within" if total <= TARGET_SECONDS else "OVER"
    print(f"{'total':12} {total:8.1f}   ({verdict} the {TARGET_SECONDS:.0f} s target)")
    print(f"peak RSS {peak_mb:.0f} MB; load average (1/5/15 min) before "
          f"{'/'.join(f'{x:.2f}' for x in load_before)}, after "
          f"{'/'.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
