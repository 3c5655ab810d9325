"""The run configuration of ``clearbench run``: one YAML file, validated on load.

Every setting is checked (and coerced: ``2e-3`` is the number 0.002) through the types of the
stage it configures, before any stage runs; all mistakes are reported at once, one line each
naming the file, the key, the value and what is allowed. The embedded configs live in
``clearbench/configs/``: ``mini.yaml`` (the default) and ``smoke.yaml`` (``--preset smoke``);
``configs/paper/`` holds the paper's real-model settings.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml

from clearbench.config import ConfigError, PositiveInt, Problem, checked, one_of
from clearbench.cv.recipe import CVConfig
from clearbench.data.synth import SynthConfig
from clearbench.methods import METHODS, build_method
from clearbench.models.loading import DTYPES
from clearbench.models.tiny import TEXT_ARCHS, TinyVLMConfig
from clearbench.presets import PRESETS
from clearbench.recipes.audit import AuditConfig
from clearbench.recipes.base import TEXT_BASE_EPOCHS, BaseConfig
from clearbench.recipes.crossmodal import CrossModalConfig
from clearbench.recipes.evaluate import FORGET_SPLITS, EvalConfig
from clearbench.recipes.finetune import FinetuneConfig
from clearbench.recipes.precision import PrecisionConfig
from clearbench.recipes.relearn import RelearnConfig
from clearbench.recipes.robustness import RobustnessConfig
from clearbench.recipes.tune import TUNED_SUFFIX, TuneConfig, check_grids
from clearbench.recipes.unlearn import MODALITIES, UnlearnConfig
from clearbench.training.distributed import check_device

TOP_KEYS = {"seed", "seeds", "data", "base", "model", "model_revision", "finetune",
            "forget_splits", "unlearn", "eval", "device", "dtype", "jobs", "cv", "tune",
            "audit", "text", "multimodal"}
DATA_KEYS = {"synth", "source", "revision", "tofu", "tofu_revision"}
UNLEARN_SHARED = {"recipe", "epochs", "batch_size", "lr", "gradient_checkpointing"}
"""UnlearnConfig settings of the ``unlearn`` section, shared by every variant."""
UNLEARN_KEYS = {"methods", "variants", "modality_study", "options", *UNLEARN_SHARED}
CV_FIXED = {"out", "data", "data_revision", "seed", "forget_split"}
"""Set by the run (its data, seed and first forget split), never by the ``cv`` section."""
VARIANT_KEYS = {"lora", "lora_rank", "lora_alpha", "lora_targets", "l1", "lr", "epochs",
                "batch_size", "recipe", "gradient_checkpointing"}
# Set by the run itself, never by a config file.
FIXED_FIELDS = {"model", "data", "out", "seed", "data_revision", "tofu", "tofu_revision",
                "model_revision", "device", "dtype", "split", "forget_split", "gate_split",
                "method", "modality", "options", "checkpoint_every", "tasks", "lr_scale"}


def embedded_config(name: str) -> Path:
    """One of the configs shipped inside the package (see :data:`PRESETS`)."""
    path = Path(str(resources.files("clearbench") / "configs" / f"{name}.yaml"))
    if name not in PRESETS or not path.is_file():
        raise ValueError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")
    return path


@dataclass(frozen=True)
class TextTrack:
    """The text-only track (``text`` section): a causal LM fine-tuned on TOFU's QA alone,
    unlearned by every method at the main variant's settings, evaluated on TOFU's tasks."""

    base: dict[str, Any] | None = None
    """BaseConfig settings (arch ``llama``) when the run builds and pretrains the tiny LM."""
    model: str | None = None
    """Hub id or folder of the base causal LM (its chat template formats the prompts)."""
    model_revision: str | None = None
    vanilla: str | None = None
    """A published fine-tuned model taken as the vanilla model (e.g.
    ``locuslab/tofu_ft_llama2-7b``) instead of fine-tuning ``model`` on ``tofu:full``."""
    vanilla_revision: str | None = None
    finetune: dict[str, Any] = field(default_factory=dict)
    """FinetuneConfig settings of the track's vanilla and gold fine-tunes."""
    methods: tuple[str, ...] = ()


AUDITS = ("membership", "relearn", "robustness", "precision", "crossmodal")
AUDIT_SCOPES = ("main", "all")
AUDIT_CONFIGS: dict[str, type] = {"membership": AuditConfig, "relearn": RelearnConfig,
                                  "robustness": RobustnessConfig, "precision": PrecisionConfig,
                                  "crossmodal": CrossModalConfig}
AUDIT_SETTINGS = {
    "membership": {"k", "batch_size", "replicates"},
    "relearn": {"relearn_steps", "relearn_lr", "relearn_batch_size", "batch_size", "replicates"},
    "robustness": {"samples", "temperature", "batch_size"},
    "precision": {"batch_size", "replicates"},
    "crossmodal": {"batch_size", "replicates"},
}
"""The settings of each audit's config an ``audit`` section may set (the run sets models, data,
seed and generation length)."""
AUDIT_KEYS = {"enabled", "audits", "scope", "first_seed_only",
              *(key for keys in AUDIT_SETTINGS.values() for key in keys)}


@dataclass(frozen=True)
class RunAudits:
    """The ``audit`` section: which audits run on which models, and their settings."""

    audits: tuple[str, ...] = ("membership",)
    scope: str = "main"
    """``main``: the main table's models (the baselines, every method at the main variant with
    both modalities unlearned, the tuned runs); ``all``: also the other variants' and the
    modality study's."""
    first_seed_only: tuple[str, ...] = ()
    """Audits run on the first unlearning seed's models only (the baselines have one seed)."""
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Audit name → the settings of its config (:data:`AUDIT_CONFIGS`) the section gave."""

    def of_model(self, *, main: bool, first_seed: bool) -> tuple[str, ...]:
        """The audits of a model of the main table (``main``) or not, at the first seed or
        not."""
        if not main and self.scope == "main":
            return ()
        return tuple(a for a in self.audits if first_seed or a not in self.first_seed_only)


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
    tune: TuneConfig | None = None
    """The tuning protocol (``clearbench tune``); None when the config has no ``tune`` section."""
    audit: RunAudits | None = None
    """The audits of the run's models (``clearbench audit``); None when the config does not
    enable them."""
    text: TextTrack | None = None
    """The text-only track; None when the config does not enable it."""
    multimodal: bool = True
    """False: only the text-only (and vision-only) tracks run, no VLM stage."""

    @property
    def main_variant(self) -> str:
        return next(iter(self.variants))

    @property
    def unlearning_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]


Found = list[Problem]


class _UniqueKeys(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with a repeated key (PyYAML keeps the last)."""


class _RepeatedKey(ValueError):
    pass


def _mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise _RepeatedKey(f"key {key!r} appears twice (again on line "
                               f"{key_node.start_mark.line + 1}); the last would win")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a one-line error when it is missing, unreadable, not
    YAML or not a mapping."""
    if path.is_dir():
        raise ValueError(f"run config {path} is a folder; give the path of a YAML file")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeys)  # a SafeLoader
    except FileNotFoundError:
        raise FileNotFoundError(f"run config not found: {path}") from None
    except OSError as err:
        raise ValueError(f"run config {path} cannot be read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"run config {path} is not a text file") from None
    except _RepeatedKey as err:
        raise ValueError(f"run config {path}: {err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"run config {path} is not valid YAML: {err}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ValueError(f"run config {path} must be a mapping of settings, got a "
                         f"{type(raw).__name__}")
    return raw or {}


def _section(raw: dict[str, Any], name: str, key: str, found: Found) -> dict[str, Any]:
    """``raw[name]`` when it is a mapping (or absent: {}); else a problem at ``key``."""
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        found.append(Problem(key, "a mapping of settings", value))
        return {}
    return value


def _unknown(given: dict[str, Any], known: set[str], key: str, found: Found) -> dict[str, Any]:
    """The known settings of ``given``; a problem for each other one."""
    for name in sorted(set(given) - known, key=str):
        allowed = ("set by the run, not by its config" if name in FIXED_FIELDS
                   else f"unknown key; known: {', '.join(sorted(known))}")
        found.append(Problem(f"{key}.{name}" if key else str(name), allowed, given[name]))
    return {name: value for name, value in given.items() if name in known}


def _settable(cls: type) -> set[str]:
    return {f.name for f in fields(cls)} - FIXED_FIELDS


def _typed(cls: type, given: dict[str, Any], key: str, found: Found, *,
           known: set[str] | None = None, context: dict[str, Any] | None = None) -> Any:
    """``given`` checked as settings of ``cls`` (with ``context`` and placeholders for the
    fields the run fixes): the ``cls`` built, or None and problems under ``key``."""
    given = _unknown(given, _settable(cls) if known is None else known, key, found)
    placeholders = {f.name: Path(".") if f.name == "out" else "" for f in fields(cls)
                    if f.default is MISSING and f.default_factory is MISSING}
    built, problems = checked(cls, {**placeholders, **(context or {}), **given}, key)
    found.extend(problems)
    return built


def _given(built: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The coerced values of the settings a config gave."""
    return {name: getattr(built, name) for name in given if hasattr(built, name)}


def _value(kind: Any, raw: dict[str, Any], key: str, default: Any, found: Found) -> Any:
    value, problems = checked(kind, raw.get(key, default), key)
    found.extend(problems)
    return default if problems else value


def _names(value: Any, key: str, choices: tuple[str, ...], found: Found, *,
           empty: bool = True) -> tuple[str, ...]:
    """A list of distinct names out of ``choices`` (none allowed only with ``empty``)."""
    allowed = f"a list of distinct names out of {', '.join(choices)}"
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        found.append(Problem(key, allowed, value))
        return ()
    bad = [name for name in value if name not in choices]
    repeated = sorted({name for name in value if value.count(name) > 1})
    if bad or repeated or not (value or empty):
        why = (f"unknown {', '.join(map(repr, bad))}" if bad else
               f"repeated {', '.join(map(repr, repeated))}" if repeated else "empty")
        found.append(Problem(key, f"{allowed} ({why})", value))
        return ()
    return tuple(value)


def load_run_config(path: Path) -> RunConfig:
    """Read and check a run config; all its problems are one :class:`ConfigError`, a line
    each naming ``path``, the key, the value and what is allowed."""
    path = Path(path)
    raw = _read(path)
    found: Found = []
    _unknown(raw, TOP_KEYS, "", found)
    seed = _value(int, raw, "seed", 0, found)
    seeds = _value(PositiveInt, raw, "seeds", 1, found)
    jobs = _value(PositiveInt, raw, "jobs", 1, found)
    dtype = _value(Annotated[str, one_of(DTYPES)], raw, "dtype", "auto", found)
    device = _value(str, raw, "device", "cpu", found)
    try:
        check_device(device, "device", here=False)  # `run` checks it is here, a dry run not
    except ValueError as err:
        found.append(Problem("", str(err)))
    strings = {key: _value(str | None, raw, key, None, found)
               for key in ("model", "model_revision")}

    data = _unknown(_section(raw, "data", "data", found), DATA_KEYS, "data", found)
    sources = {key: _value(str | None, data, key, None, found)
               for key in ("source", "revision", "tofu", "tofu_revision")}
    if ("synth" in data) == ("source" in data):
        found.append(Problem("data", "needs exactly one of 'synth' (generate CLEAR-mini) or "
                                     "'source' (hub id or local folder)"))
    synth = None
    if "synth" in data:
        synth = _typed(SynthConfig, _section(data, "synth", "data.synth", found), "data.synth",
                       found, known=_settable(SynthConfig) - {"seed"}, context={"seed": seed})

    multimodal = _value(bool, raw, "multimodal", True, found)
    if multimodal and ("base" in raw) == ("model" in raw):
        found.append(Problem("", "needs exactly one of 'base' (build the tiny model) or 'model' "
                                 "(hub id or local folder of the base VLM)"))
    if not multimodal:
        for key in ("base", "model", "tune", "audit"):
            if key in raw:
                found.append(Problem(key, "nothing: with multimodal: false no VLM is trained",
                                     raw[key]))
        if "text" not in raw:
            found.append(Problem("multimodal", "true, unless the config has a text section",
                                 False))
    base = None
    if "base" in raw:
        given = dict(_section(raw, "base", "base", found))
        model = None
        if "model" in given:
            model = _typed(TinyVLMConfig, _section(given, "model", "base.model", found),
                           "base.model", found,
                           known={f.name for f in fields(TinyVLMConfig)} - {"arch"})
            del given["model"]
        built = _typed(BaseConfig, given, "base", found,
                       context={"model": model or TinyVLMConfig()})
        base = {**_given(built, given), **({"model": model} if model else {})}

    finetune = dict(_section(raw, "finetune", "finetune", found))
    finetune = _given(_typed(FinetuneConfig, finetune, "finetune", found), finetune)
    evaluation = dict(_section(raw, "eval", "eval", found))
    evaluation = _given(_typed(EvalConfig, evaluation, "eval", found), evaluation)
    splits = _names(raw.get("forget_splits", ["forget10"]), "forget_splits", FORGET_SPLITS,
                    found, empty=False)

    unlearn = _unknown(_section(raw, "unlearn", "unlearn", found), UNLEARN_KEYS, "unlearn", found)
    methods = unlearn.get("methods", "all")
    methods = tuple(METHODS) if methods == "all" else _names(
        methods, "unlearn.methods", tuple(METHODS), found, empty=False)
    study = _names(unlearn.get("modality_study", []), "unlearn.modality_study",
                   tuple(m for m in MODALITIES if m != "both"), found)
    shared = {k: v for k, v in unlearn.items() if k in UNLEARN_SHARED}
    shared = _given(_typed(UnlearnConfig, shared, "unlearn", found, known=UNLEARN_SHARED), shared)
    variants = {}
    given_variants = _section(unlearn, "variants", "unlearn.variants", found)
    if "variants" in unlearn and not given_variants:
        found.append(Problem("unlearn.variants", "at least one variant (or no key: one "
                             "full-parameter variant named full)", unlearn["variants"]))
    for name, settings in (given_variants or {"full": {}}).items():
        key = f"unlearn.variants.{name}"
        settings = dict(_section({name: settings}, name, key, found))
        built = _typed(UnlearnConfig, settings, key, found, known=VARIANT_KEYS, context=shared)
        variants[name] = _given(built, settings)
    options = {}
    for name, given in _section(unlearn, "options", "unlearn.options", found).items():
        key = f"unlearn.options.{name}"
        if name not in METHODS:
            found.append(Problem(key, f"unknown method; registered: {', '.join(METHODS)}", given))
            continue
        given = dict(_section({name: given}, name, key, found))
        try:
            options[name] = _given(build_method(name, given), given)
        except ConfigError as err:
            found.extend(problem.under(key) for problem in err.problems)
        except ValueError as err:
            found.append(Problem(key, str(err)))

    cv = _cv_settings(raw["cv"], found) if "cv" in raw else None
    tune = _tune_settings(raw["tune"], variants, found) if "tune" in raw else None
    audit = _audit_settings(raw["audit"], study, found) if "audit" in raw else None
    text = _text_settings(raw["text"], methods, found) if "text" in raw else None
    if found:
        raise ConfigError(f"run config {path}", found)
    return RunConfig(
        path=path, seed=seed, seeds=seeds, data=sources["source"],
        data_revision=sources["revision"], tofu=sources["tofu"],
        tofu_revision=sources["tofu_revision"], synth=synth, base=base, model=strings["model"],
        model_revision=strings["model_revision"], finetune=finetune, forget_splits=splits,
        methods=methods, variants=variants, modality_study=study, method_options=options,
        unlearn=shared, eval=evaluation, device=device, dtype=dtype, jobs=jobs, cv=cv,
        tune=tune, audit=audit, text=text, multimodal=multimodal,
    )


def _cv_settings(value: Any, found: Found) -> dict[str, Any] | None:
    """The coerced settings of a ``cv`` section (None when ``enabled: false``): any
    CVConfig setting but those the run fixes."""
    settings = dict(_section({"cv": value}, "cv", "cv", found))
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        found.append(Problem("cv.enabled", "true or false", enabled))
    built = _typed(CVConfig, settings, "cv", found,
                   known={f.name for f in fields(CVConfig)} - CV_FIXED)
    if built is not None:
        try:
            built.network_config(1)
        except ValueError as err:
            found.append(Problem("cv", str(err)))
    return _given(built, settings) if enabled else None


TEXT_KEYS = {"enabled", "base", "model", "model_revision", "vanilla", "vanilla_revision",
             "finetune", "methods"}


def _text_settings(value: Any, methods: tuple[str, ...], found: Found) -> TextTrack | None:
    """The ``text`` section (None when ``enabled: false``): the tiny LM's ``base`` settings or
    a ``model``, an optional published ``vanilla`` model, fine-tuning settings and the methods
    (default: the run's)."""
    settings = _unknown(_section({"text": value}, "text", "text", found), TEXT_KEYS, "text",
                        found)
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        found.append(Problem("text.enabled", "true or false", enabled))
    strings = {key: _value(str | None, settings, key, None, found)
               for key in ("model", "model_revision", "vanilla", "vanilla_revision")}
    if ("base" in settings) == ("model" in settings):
        found.append(Problem("text", "needs exactly one of 'base' (build the tiny LM) or "
                                     "'model' (hub id or local folder of the base causal LM)"))
    base = None
    if "base" in settings:
        given = {"arch": "llama", "epochs": TEXT_BASE_EPOCHS,
                 **_section(settings, "base", "text.base", found)}
        model = None
        if "model" in given:
            model = _typed(TinyVLMConfig, _section(given, "model", "text.base.model", found),
                           "text.base.model", found,
                           known={f.name for f in fields(TinyVLMConfig)} - {"arch"})
            del given["model"]
        if given["arch"] not in TEXT_ARCHS:
            found.append(Problem("text.base.arch", f"a text-only arch: {', '.join(TEXT_ARCHS)}",
                                 given["arch"]))
        built = _typed(BaseConfig, given, "text.base", found,
                       context={"model": model or TinyVLMConfig()})
        base = {**_given(built, given), **({"model": model} if model else {})}
    finetune = dict(_section(settings, "finetune", "text.finetune", found))
    finetune = _given(_typed(FinetuneConfig, finetune, "text.finetune", found), finetune)
    chosen = methods
    if "methods" in settings:
        chosen = settings["methods"]
        chosen = tuple(METHODS) if chosen == "all" else _names(
            chosen, "text.methods", tuple(METHODS), found, empty=False)
    if not enabled:
        return None
    return TextTrack(base=base, finetune=finetune, methods=chosen, **strings)


def _audit_settings(value: Any, study: tuple[str, ...], found: Found) -> RunAudits | None:
    """The ``audit`` section (None when ``enabled: false``): the audits, the scope, the audits
    of the first seed only and each audit's coerced settings (a shared key, e.g.
    ``batch_size``, goes to every audit that has it). ``crossmodal`` needs the modality
    ``study``'s text-only and visual-only models."""
    settings = _unknown(_section({"audit": value}, "audit", "audit", found), AUDIT_KEYS,
                        "audit", found)
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        found.append(Problem("audit.enabled", "true or false", enabled))
    audits = _names(settings.get("audits", ["membership"]), "audit.audits", AUDITS, found,
                    empty=False)
    if "crossmodal" in audits and not {"text", "visual"} <= set(study):
        found.append(Problem("audit.audits", "crossmodal only with the modality study's "
                             "text-only and visual-only models (unlearn.modality_study: "
                             f"[text, visual]; it is {list(study)})", list(audits)))
    scope, problems = checked(Annotated[str, one_of(AUDIT_SCOPES)],
                              settings.get("scope", "main"), "audit.scope")
    found.extend(problems)
    first = _names(settings.get("first_seed_only", []), "audit.first_seed_only", AUDITS, found)
    coerced: dict[str, dict[str, Any]] = {}
    for name, keys in AUDIT_SETTINGS.items():
        given = {key: value for key, value in settings.items() if key in keys}
        own: Found = []
        built = _typed(AUDIT_CONFIGS[name], given, "audit", own, known=keys)
        found.extend(problem for problem in own if problem not in found)
        coerced[name] = _given(built, given) if built is not None else {}
    if not enabled:
        return None
    return RunAudits(audits=audits, scope=scope, first_seed_only=first,
                     settings={name: coerced[name] for name in audits})


def _tune_settings(value: Any, variants: dict[str, Any], found: Found) -> TuneConfig | None:
    """The ``tune`` section (None when ``enabled: false``): TuneConfig settings whose grids
    name registered methods, their axes and values the methods accept."""
    settings = dict(_section({"tune": value}, "tune", "tune", found))
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        found.append(Problem("tune.enabled", "true or false", enabled))
    grids = settings.pop("grids", {})
    every = {f.name for f in fields(TuneConfig)}
    built = _typed(TuneConfig, settings, "tune", found, known=every - {"grids"})
    built_grids = _typed(TuneConfig, {"grids": grids}, "tune", found, known={"grids"})
    if built_grids is not None:
        found.extend(check_grids(built_grids.grids))
    if built is None or built_grids is None:
        return None
    built = replace(built, grids=built_grids.grids)
    clashes = [name for name in variants if name.endswith(TUNED_SUFFIX)]
    if clashes:
        found.append(Problem("unlearn.variants", f"names ending in {TUNED_SUFFIX!r} are the "
                             "tuned runs' when the config has a tune section", clashes))
    return built if enabled else None


def unlearn_settings(config: RunConfig, variant: str) -> dict[str, Any]:
    """The UnlearnConfig settings of a variant: shared settings, then the variant's own."""
    return {**config.unlearn, **config.variants[variant]}
