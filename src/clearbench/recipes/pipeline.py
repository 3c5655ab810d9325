"""``clearbench run``: every stage of the benchmark in order, each skipped when already done.

Stages so far: synthesise CLEAR-mini (if the config asks for it), build the base model,
fine-tune the vanilla model, and per forget split: fine-tune its gold model, evaluate vanilla
and gold on every task, score vanilla against gold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clearbench.data.synth import SynthConfig, synthesize
from clearbench.recipes.base import BaseConfig, build_base
from clearbench.recipes.evaluate import EvalConfig, run_eval, run_score
from clearbench.recipes.finetune import FinetuneConfig, finetune

KNOWN_KEYS = {"seed", "data", "base", "model", "finetune", "forget_splits"}


def default_config_path() -> Path:
    return Path(str(resources.files("clearbench") / "configs" / "mini.yaml"))


def load_config(path: Path) -> dict[str, Any]:
    """Read a run config; unknown keys are errors that name the file and the key."""
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"run config not found: {path}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"run config {path} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"run config {path} must be a mapping of settings")
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(
            f"run config {path}: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    return config


def plan(config: dict[str, Any], run_dir: Path) -> list[tuple[str, Callable[[], object]]]:
    """The stages of a run, as (name, thunk) pairs in execution order."""
    seed = config.get("seed", 0)
    data_cfg = config.get("data", {})
    stages: list[tuple[str, Callable[[], object]]] = []
    if "synth" in data_cfg:
        data = str(run_dir / "data")
        synth = SynthConfig(seed=seed, **data_cfg["synth"])
        stages.append(("synthesise CLEAR-mini", lambda: synthesize(Path(data), synth)))
    else:
        data = data_cfg["source"]
    if "base" in config:
        model = str(run_dir / "base")
        base = BaseConfig(data=data, out=Path(model), seed=seed, **config["base"])
        stages.append(("pretrain base model", lambda: build_base(base)))
    else:
        model = config["model"]
    ft = config.get("finetune", {})
    vanilla = FinetuneConfig(model=model, data=data, out=run_dir / "vanilla", seed=seed,
                             split="full+tofu", **ft)
    stages.append(("fine-tune vanilla", lambda: finetune(vanilla)))
    for split in config.get("forget_splits", ["forget10"]):
        retain = "retain" + str(100 - int(split.removeprefix("forget")))
        gold = FinetuneConfig(model=model, data=data, out=run_dir / f"gold-{split}", seed=seed,
                              split=f"{retain}+tofu", gate_split=split, **ft)
        stages.append((f"fine-tune gold ({split})", lambda gold=gold: finetune(gold)))
        for role in ("vanilla", f"gold-{split}"):
            evaluation = EvalConfig(model=str(run_dir / role), data=data, forget_split=split,
                                    out=run_dir / role / f"eval-{split}", seed=seed)
            stages.append((f"evaluate {role} ({split})",
                           lambda evaluation=evaluation: run_eval(evaluation)))
        stages.append((f"score vanilla against gold ({split})", lambda split=split: run_score(
            run_dir / "vanilla" / f"eval-{split}", run_dir / f"gold-{split}" / f"eval-{split}",
            run_dir / "scores" / f"vanilla-{split}")))
    return stages


def run(config_path: Path | None = None, run_dir: Path | None = None) -> None:
    config_path = config_path or default_config_path()
    config = load_config(config_path)
    run_dir = run_dir or Path("runs") / config_path.stem
    stages = plan(config, run_dir)
    print(f"clearbench run: {config_path} -> {run_dir} ({len(stages)} stages)")
    for index, (name, stage) in enumerate(stages, start=1):
        print(f"[stage {index}/{len(stages)}] {name}")
        started = time.perf_counter()
        stage()
        print(f"[stage {index}/{len(stages)}] {name}: {time.perf_counter() - started:.1f} s")
