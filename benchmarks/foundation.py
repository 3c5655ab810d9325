"""Foundation targets: synth ≤ 30 s; base + vanilla + gold ≤ 4 min on 2 cores; peak RSS ≤ 4 GB.

Runs each stage of the default mini pipeline as its own ``clearbench`` process in a scratch
folder, as ``clearbench run`` does without the vision-only track (the base alone on every
core, then vanilla and gold side by side on one thread each), and prints wall time per stage,
the peak resident memory of any stage, and the memorisation gate of the vanilla and gold
models.

    python benchmarks/foundation.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"synth": 30.0, "base+vanilla+gold": 240.0, "peak_rss_gb": 4.0}


def clearbench(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clearbench", *args], check=True)
    return time.perf_counter() - started


def side_by_side(commands: dict[str, list[str]]) -> dict[str, float]:
    """Run ``clearbench`` commands at once, one thread each; wall seconds of each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    running = {name: subprocess.Popen([sys.executable, "-m", "clearbench", *args], env=env)
               for name, args in commands.items()}
    seconds: dict[str, float] = {}
    while len(seconds) < len(running):
        for name, process in running.items():
            if name in seconds or process.poll() is None:
                continue
            if process.returncode != 0:
                raise SystemExit(f"{name} failed (exit code {process.returncode})")
            seconds[name] = time.perf_counter() - started
        time.sleep(0.5)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="clearbench-bench-"))
    data, base = work / "data", work / "base"
    seconds = {
        "synth": clearbench("data", "synth", "--out", str(data)),
        "base": clearbench("base", "--data", str(data), "--out", str(base)),
    }
    finetune = ["finetune", "--model", str(base), "--data", str(data)]
    seconds |= side_by_side({
        "vanilla": [*finetune, "--split", "full+tofu", "--out", str(work / "vanilla")],
        "gold": [*finetune, "--split", "retain90+tofu", "--out", str(work / "gold")],
    })
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    training = seconds["base"] + max(seconds["vanilla"], seconds["gold"])
    print("\n== foundation benchmark (wall seconds, 2-core CPU) ==")
    for stage, value in seconds.items():
        print(f"{stage:10s} {value:7.1f} s")
    print("(vanilla and gold side by side, one thread each: wall time of both is the larger)")
    print(f"synth               {seconds['synth']:7.1f} s   target ≤ {TARGETS['synth']:.0f} s")
    print(f"base+vanilla+gold   {training:7.1f} s   target ≤ {TARGETS['base+vanilla+gold']:.0f} s")
    print(f"peak RSS (any stage) {peak_gb:6.2f} GB  target ≤ {TARGETS['peak_rss_gb']:.0f} GB")
    for role in ("vanilla", "gold"):
        gate = json.loads((work / role / "memorisation.json").read_text())
        scores = ", ".join(
            f"{task} {s['rougeL_recall']:.2f}/{s['fact_accuracy']:.2f}"
            for task, s in gate["tasks"].items()
        )
        print(f"gate {role:7s} {'PASSED' if gate['passed'] else 'FAILED'}: {scores}")
    print(f"(ROUGE-L recall / fact accuracy; work folder {work})")


if __name__ == "__main__":
    main()
