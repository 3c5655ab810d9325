"""The run configuration of ``clearbench run``: one YAML file, validated on load.

Every mistake is reported with the file and the key at fault. The embedded configs live in
``clearbench/configs/``: ``mini.yaml`` (the default) and ``smoke.yaml`` (``--preset smoke``);
``configs/paper/`` holds the paper's real-model settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clearbench.cv.recipe import CVConfig
from clearbench.data.synth import SynthConfig
from clearbench.methods import METHODS
from clearbench.models.tiny import TinyVLMConfig
from clearbench.presets import PRESETS
from clearbench.recipes.base import BaseConfig
from clearbench.recipes.evaluate import FORGET_SPLITS, EvalConfig
from clearbench.recipes.finetune import FinetuneConfig
from clearbench.recipes.unlearn import MODALITIES

TOP_KEYS = {"seed", "seeds", "data", "base", "model", "model_revision", "finetune",
            "forget_splits", "unlearn", "eval", "device", "dtype", "jobs", "cv"}
DATA_KEYS = {"synth", "source", "revision", "tofu", "tofu_revision"}
UNLEARN_KEYS = {"methods", "variants", "modality_study", "options", "recipe", "epochs",
                "batch_size", "lr", "gradient_checkpointing"}
CV_FIXED = {"out", "data", "data_revision", "seed", "forget_split"}
"""Set by the run (its data, seed and first forget split), never by the ``cv`` section."""
VARIANT_KEYS = {"lora", "lora_rank", "lora_alpha", "lora_targets", "l1", "lr", "epochs",
                "batch_size", "recipe", "gradient_checkpointing"}
# Set by the run itself, never by a config file.
FIXED_FIELDS = {"model", "data", "out", "seed", "data_revision", "tofu", "tofu_revision",
                "model_revision", "device", "dtype", "split", "forget_split", "gate_split",
                "method", "modality", "options", "checkpoint_every", "tasks"}


def embedded_config(name: str) -> Path:
    """One of the configs shipped inside the package (see :data:`PRESETS`)."""
    path = Path(str(resources.files("clearbench") / "configs" / f"{name}.yaml"))
    if name not in PRESETS or not path.is_file():
        raise ValueError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")
    return path


@dataclass(frozen=True)
class RunConfig:
    """A parsed, validated run config (see ``configs/mini.yaml`` for every key, commented)."""

    path: Path
    seed: int = 0
    seeds: int = 1
    """Unlearning (and its evaluation) runs once per seed: ``seed``, ``seed + 1``, …"""
    data: str | None = None
    """Hub id or local folder; None when the run synthesises CLEAR-mini."""
    data_revision: str | None = None
    tofu: str | None = None
    """TOFU hub id or folder; None: locuslab/TOFU for a hub id, DATA/tofu for a folder."""
    tofu_revision: str | None = None
    synth: SynthConfig | None = None
    base: dict[str, Any] | None = None
    """BaseConfig settings when the run builds the tiny base model."""
    model: str | None = None
    model_revision: str | None = None
    finetune: dict[str, Any] = field(default_factory=dict)
    forget_splits: tuple[str, ...] = ("forget10",)
    methods: tuple[str, ...] = ()
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Name → UnlearnConfig overrides; the first is the variant of the main table."""
    modality_study: tuple[str, ...] = ()
    """Modalities besides ``both`` that every method unlearns at the main variant."""
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    unlearn: dict[str, Any] = field(default_factory=dict)
    """UnlearnConfig settings shared by every variant (recipe, epochs, ...)."""
    eval: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "auto"
    jobs: int = 1
    cv: dict[str, Any] | None = None
    """CVConfig settings of the vision-only track; None when the config does not enable it."""

    @property
    def main_variant(self) -> str:
        return next(iter(self.variants))

    @property
    def unlearning_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping of settings, got {value!r}")
    return value


def _known(settings: dict[str, Any], known: set[str], where: str) -> None:
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")


def _settable(cls: type) -> set[str]:
    return {f.name for f in fields(cls)} - FIXED_FIELDS


def load_run_config(path: Path) -> RunConfig:
    """Read and validate a run config; every error names ``path`` and the key at fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"run config not found: {path}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"run config {path} is not valid YAML: {err}") from None
    raw = _mapping(raw, f"run config {path}")
    _known(raw, TOP_KEYS, f"run config {path}")
    where = f"run config {path}"

    data = _mapping(raw.get("data"), f"{where}: data")
    _known(data, DATA_KEYS, f"{where}: data")
    if ("synth" in data) == ("source" in data):
        raise ValueError(f"{where}: data needs exactly one of 'synth' (generate CLEAR-mini) or "
                         "'source' (hub id or local folder)")
    synth = None
    if "synth" in data:
        sizes = _mapping(data["synth"], f"{where}: data.synth")
        _known(sizes, {f.name for f in fields(SynthConfig)} - {"seed"}, f"{where}: data.synth")
        try:
            synth = SynthConfig(seed=raw.get("seed", 0), **sizes)
        except ValueError as err:
            raise ValueError(f"{where}: data.synth: {err}") from None

    if ("base" in raw) == ("model" in raw):
        raise ValueError(f"{where}: needs exactly one of 'base' (build the tiny model) or "
                         "'model' (hub id or local folder of the base VLM)")
    base = None
    if "base" in raw:
        base = dict(_mapping(raw["base"], f"{where}: base"))
        _known(base, _settable(BaseConfig) | {"model"}, f"{where}: base")
        if "model" in base:
            sizes = _mapping(base["model"], f"{where}: base.model")
            _known(sizes, {f.name for f in fields(TinyVLMConfig)} - {"arch"},
                   f"{where}: base.model")
            base["model"] = TinyVLMConfig(**sizes)

    finetune = _mapping(raw.get("finetune"), f"{where}: finetune")
    _known(finetune, _settable(FinetuneConfig), f"{where}: finetune")

    splits = tuple(raw.get("forget_splits", ["forget10"]))
    for split in splits:
        if split not in FORGET_SPLITS:
            raise ValueError(f"{where}: forget_splits: unknown split {split!r}; "
                             f"choose from {', '.join(FORGET_SPLITS)}")

    unlearn = dict(_mapping(raw.get("unlearn"), f"{where}: unlearn"))
    _known(unlearn, UNLEARN_KEYS, f"{where}: unlearn")
    methods = unlearn.pop("methods", "all")
    methods = tuple(METHODS) if methods == "all" else tuple(methods)
    for name in methods:
        if name not in METHODS:
            raise ValueError(f"{where}: unlearn.methods: unknown method {name!r}; "
                             f"registered: {', '.join(METHODS)}")
    variants = _mapping(unlearn.pop("variants", None), f"{where}: unlearn.variants")
    variants = variants or {"full": {}}
    for name, settings in variants.items():
        _known(_mapping(settings, f"{where}: unlearn.variants.{name}"), VARIANT_KEYS,
               f"{where}: unlearn.variants.{name}")
    study = tuple(unlearn.pop("modality_study", ()))
    for modality in study:
        if modality not in MODALITIES or modality == "both":
            raise ValueError(f"{where}: unlearn.modality_study: {modality!r} is not one of "
                             "visual, text")
    options = _mapping(unlearn.pop("options", None), f"{where}: unlearn.options")
    for name in options:
        if name not in METHODS:
            raise ValueError(f"{where}: unlearn.options: unknown method {name!r}")

    evaluation = _mapping(raw.get("eval"), f"{where}: eval")
    _known(evaluation, _settable(EvalConfig), f"{where}: eval")
    jobs = raw.get("jobs", 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"{where}: jobs must be a positive integer, got {jobs!r}")
    seeds = raw.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"{where}: seeds must be a positive integer (how many seeds each "
                         f"unlearning runs with), got {seeds!r}")

    cv = _cv_settings(raw["cv"], where) if "cv" in raw else None

    return RunConfig(
        path=path, seed=raw.get("seed", 0), seeds=seeds, data=data.get("source"),
        data_revision=data.get("revision"), tofu=data.get("tofu"),
        tofu_revision=data.get("tofu_revision"), synth=synth, base=base, model=raw.get("model"),
        model_revision=raw.get("model_revision"), finetune=finetune, forget_splits=splits,
        methods=methods, variants={k: dict(v or {}) for k, v in variants.items()},
        modality_study=study, method_options={k: dict(v) for k, v in options.items()},
        unlearn=unlearn, eval=evaluation, device=raw.get("device", "cpu"),
        dtype=raw.get("dtype", "auto"), jobs=jobs, cv=cv,
    )


def _cv_settings(value: Any, where: str) -> dict[str, Any] | None:
    """The settings of a ``cv`` section (None when ``enabled: false``): any CVConfig setting
    but those the run fixes; checked by building the CVConfig."""
    settings = dict(_mapping(value, f"{where}: cv"))
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}: cv.enabled must be true or false, got {enabled!r}")
    _known(settings, {f.name for f in fields(CVConfig)} - CV_FIXED, f"{where}: cv")
    if "methods" in settings:
        settings["methods"] = tuple(settings["methods"])
    try:
        CVConfig(out=Path("."), **settings).network_config(1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: cv: {err}") from None
    return settings if enabled else None


def unlearn_settings(config: RunConfig, variant: str) -> dict[str, Any]:
    """The UnlearnConfig settings of a variant: shared settings, then the variant's own."""
    settings = {**config.unlearn, **config.variants[variant]}
    if "lora_targets" in settings and settings["lora_targets"] is not None:
        settings["lora_targets"] = tuple(settings["lora_targets"])
    return settings

