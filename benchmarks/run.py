"""`clearbench run` targets: the default run ≤ 10 min wall on 2 cores with peak RSS ≤ 6 GB; the
smoke preset ≤ 90 s (it runs the tuning protocol too; the issue's target: 2 min);
`paper-tables` (the default plus the ℓ1 variant and the modality study), `tuned` (the
default plus the tuning protocol) and `full` (paper-tables plus every audit of every model)
have no target; the audits of the main table's models: ≤ 40 % of the default run's wall time.

Runs ``clearbench run`` as a child process (in a scratch run folder unless ``--out``; a folder
that already holds finished stages measures a resumed run), samples the resident memory of
its whole process tree (workers included) every 0.2 s, and prints the wall time, the CPU time
of the whole tree (machines differ: the same default run took 926 s on one 2-core machine and
290 s on another, so compare runs on one machine), the peak RSS and what the run spent its
time on (from the run's ``timing.json``).

    python benchmarks/run.py [--preset smoke|mini|paper-tables|tuned|full] [--jobs N]
        [--out RUN_DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TARGETS = {"mini": 600.0, "smoke": 90.0, "paper-tables": None, "tuned": None, "full": None}
PEAK_RSS_TARGET_GB = 6.0


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for any that just ended)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def cached_training(out: Path) -> dict[str, float]:
    """Training stages already finished in ``out`` and the seconds they recorded."""
    done = {}
    for marker in [out / "base" / "base.json", *sorted(out.glob("*/training.json"))]:
        if marker.is_file():
            done[marker.parent.name] = json.loads(marker.read_text())["seconds"]
    return done


def time_by_part(by_stage: dict[str, float]) -> dict[str, float]:
    """Stage seconds per part of the run: the text-only track (stage names end in "text-only"
    or carry ", text-only"), the vision-only track, each audit ("audit NAME ..."), the rest
    (multimodal)."""
    parts: dict[str, float] = {}
    for name, seconds in by_stage.items():
        part = ("text-only track" if "text-only" in name else
                "vision-only track" if name == "vision-only track" else
                f"audits: {name.split()[1]}" if name.startswith("audit ") else
                "multimodal track")
        parts[part] = parts.get(part, 0.0) + seconds
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(TARGETS), default="mini")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: scratch)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="clearbench-run-")) / args.preset
    command = [sys.executable, "-m", "clearbench", "run", "--preset", args.preset,
               "--out", str(out)]
    if args.jobs:
        command += ["--jobs", str(args.jobs)]
    already = cached_training(out)
    started = time.perf_counter()
    child = subprocess.Popen(command)
    watched = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    if child.returncode:
        sys.exit(f"clearbench run failed with exit code {child.returncode}")
    timing = json.loads((out / "timing.json").read_text())
    print(f"\n{'=' * 72}\nclearbench run --preset {args.preset} ({timing['jobs']} at a time), "
          f"run folder {out}")
    target = TARGETS[args.preset]
    verdict = ("no target" if target is None
               else f"target ≤ {target:.0f} s: {'met' if wall <= target else 'MISSED'}")
    print(f"  wall            {wall:8.1f} s   ({verdict})")
    print(f"  CPU (tree)      {cpu:8.1f} s   (user + system of every process of the run; "
          f"{cpu / wall:.2f} cores busy on average)")
    print(f"  peak RSS (tree) {peak / 1024**3:8.2f} GB  (target ≤ {PEAK_RSS_TARGET_GB} GB: "
          f"{'met' if peak / 1024**3 <= PEAK_RSS_TARGET_GB else 'MISSED'})")
    if already:
        print("  RESUMED run: these stages were already done and are NOT in the wall time "
              "(their recorded seconds): "
              + "; ".join(f"{name} {sec:.0f} s" for name, sec in already.items()))
        print(f"  a cold run would take about {wall + sum(already.values()):.0f} s "
              "(these stages one after the other)")
    print("  time by stage kind (summed over workers):")
    total = sum(entry["seconds"] for entry in timing["by_kind"].values())
    for kind, entry in sorted(timing["by_kind"].items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"    {kind:9} {entry['stages']:4d} stages {entry['seconds']:8.1f} s "
              f"({100 * entry['seconds'] / total:4.1f} %)")
    print("  time by part (summed over workers; × wall / total ≈ its share of the wall time):")
    for part, seconds in sorted(time_by_part(timing["by_stage"]).items(), key=lambda kv: -kv[1]):
        print(f"    {part:22} {seconds:8.1f} s ({100 * seconds / total:4.1f} %, "
              f"≈ {wall * seconds / total:5.0f} s of the wall)")
    slowest = sorted(timing["by_stage"].items(), key=lambda kv: -kv[1])[:5]
    print("  slowest stages: " + "; ".join(f"{name} {sec:.0f} s" for name, sec in slowest))


if __name__ == "__main__":
    main()
