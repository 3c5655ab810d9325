"""The default run's models for one seed, built as ``clearbench run`` builds them: CLEAR-mini,
the tiny base, vanilla and gold (and, if asked, the reseeded gold) — shared by
``benchmarks/gate.py`` and ``benchmarks/power.py``.

Every model is a ``clearbench`` child process on a given number of threads, in
``WORK/seed{S}-threads{T}/``; a finished stage is not redone (its own stage cache), so the two
scripts can share a work folder. The seed is the run's top-level seed (data, base model and
fine-tuning); the reseeded gold model is fine-tuned with ``seed + 1``, as the run does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from clearbench.recipes.pipeline import RESEED_OFFSET, synthesise_stage
from clearbench.recipes.runconfig import embedded_config, load_run_config


def clearbench(args: list[str], threads: int) -> subprocess.Popen:
    """A ``clearbench`` command started on ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "clearbench", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def wait(processes: dict[str, subprocess.Popen]) -> None:
    for name, process in processes.items():
        if process.wait() != 0:
            raise SystemExit(f"{name} failed (exit code {process.returncode})")


def folder(work: Path, seed: int, threads: int) -> Path:
    return work / f"seed{seed}-threads{threads}"


def build(work: Path, seed: int, threads: int, *, reseeded: bool = False,
          side_by_side: bool = False) -> Path:
    """Build one seed's models; returns their folder. ``side_by_side`` trains vanilla and gold
    at once (each on ``threads`` threads, so use it with 1 thread on 2 cores)."""
    config = load_run_config(embedded_config("mini"))
    split = config.forget_splits[0]
    retain = f"retain{100 - int(split[-2:])}+tofu"
    root = folder(work, seed, threads)
    data, base = root / "data", root / "base"
    started = time.perf_counter()
    synthesise_stage(data, replace(config.synth, seed=seed))
    wait({"base": clearbench(["base", "--data", str(data), "--out", str(base),
                              f"--seed={seed}"], threads)})
    common = ["finetune", "--model", str(base), "--data", str(data), "--recipe", "mini",
              "--gate-split", split]
    jobs = {"vanilla": [*common, "--split", "full+tofu", "--out", str(root / "vanilla"),
                        f"--seed={seed}"],
            "gold": [*common, "--split", retain, "--out", str(root / "gold"), f"--seed={seed}"]}
    if reseeded:
        jobs["gold_reseeded"] = [*common, "--split", retain, "--out",
                                 str(root / "gold_reseeded"), f"--seed={seed + RESEED_OFFSET}"]
    if side_by_side:
        wait({name: clearbench(args, threads) for name, args in jobs.items()})
    else:
        for name, args in jobs.items():
            wait({name: clearbench(args, threads)})
    print(f"seed {seed}, {threads} thread(s): models ready in {root} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    return root
