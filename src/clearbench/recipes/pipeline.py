"""``clearbench run``: the whole benchmark as a plan of stages, each skipped when already done.

The plan, in order: synthesise CLEAR-mini (if the config asks for it), build the base model,
fine-tune the vanilla model, and per forget split: fine-tune its gold model and a second gold
model with another seed (the noise floor of every score), evaluate and score the three, then
unlearn with every method in every variant (``both`` modality) and, for the modality study, in
the other modalities, once per seed; evaluate and score each unlearned model; audit the models
the config's ``audit`` section names (membership, relearning, robustness, precision, the
cross-modal matrix); run the
vision-only track when the config has a ``cv`` section; finally collect ``results.json`` (with
confidence intervals) and write the report. Before any stage starts (and in a dry run), the
preflight checks every config and column any stage will read and names every problem at once.

Every stage is a recipe whose output folder records a hash of its settings and inputs: a
finished stage with the same hash is skipped, an interrupted one resumes, and one whose
settings changed is removed and redone (with everything that reads it, whose identities change
in turn). With ``jobs > 1`` independent stages run in worker processes, each attempt of a
stage logging to its own file in ``RUN_DIR/logs/``. One run at a time holds a run folder.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import datasets

from clearbench.cv.data import face_needs
from clearbench.cv.recipe import CVConfig, run_cv
from clearbench.data.loading import DATACARD, folder_hash
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import retain_split_of
from clearbench.data.synth import SynthConfig, synthesize
from clearbench.data.synth.generate import GENERATOR_VERSION
from clearbench.evaluation.tasks import TEXT_TASKS
from clearbench.io import read_json, write_json_atomic
from clearbench.models.loading import count_parameters
from clearbench.recipes.audit import AuditConfig, run_audit
from clearbench.recipes.base import BaseConfig, build_base
from clearbench.recipes.crossmodal import CrossModalConfig, run_crossmodal
from clearbench.recipes.estimate import describe, model_shape, stage_track, track_names
from clearbench.recipes.evaluate import EVAL_FILE, EvalConfig, run_eval, run_score
from clearbench.recipes.finetune import MARKER as TRAINING_MARKER
from clearbench.recipes.finetune import FinetuneConfig, finetune
from clearbench.recipes.layout import CV_DIR, TEXT_DIR
from clearbench.recipes.lock import RunError, run_folder_lock
from clearbench.recipes.precision import PRECISION_FILE, PrecisionConfig, run_precision
from clearbench.recipes.relearn import RELEARN_FILE, RelearnConfig, run_relearn
from clearbench.recipes.results import write_results
from clearbench.recipes.robustness import RobustnessConfig, run_robustness
from clearbench.recipes.runconfig import (
    AUDIT_CONFIGS,
    RunConfig,
    embedded_config,
    load_run_config,
    unlearn_settings,
)
from clearbench.recipes.runplan import Plan, ResultRow, Stage
from clearbench.recipes.stage import StaleStage, data_source
from clearbench.recipes.tune import (
    SELECTION_FILE,
    TUNED_SUFFIX,
    SelectJob,
    TunedRun,
    method_grid,
    select_settings,
    tuned_variant,
    tuning_folder,
    unlearn_tuned,
)
from clearbench.recipes.unlearn import MARKER as UNLEARNING_MARKER
from clearbench.recipes.unlearn import UnlearnConfig, unlearn
from clearbench.training.distributed import check_device

TIMING_FILE = "timing.json"
RESEEDED = "gold_reseeded"
"""The method name of the gold model trained with another seed (the noise floor)."""
RESEED_OFFSET = 1
"""The reseeded gold model is fine-tuned with seed ``seed + RESEED_OFFSET``."""
RESUME = "finished stages are kept, rerun the same command to resume"


def synthesise_stage(out: Path, config: SynthConfig) -> None:
    """Generate CLEAR-mini unless the folder holds what the generator wrote for these exact
    arguments (its files are checked against the data card's hash: an edit is undone)."""
    card = out / DATACARD
    if card.is_file():
        recorded = read_json(card, what="data card")
        if (recorded.get("arguments") == asdict(config)
                and recorded.get("version") == GENERATOR_VERSION):
            if folder_hash(out) == recorded.get("content_hash"):
                print(f"synth: {out} is already done; nothing to do")
                return
            print(f"synth: {out} differs from what the generator wrote (edited?); regenerating")
    synthesize(out, config)


def unlearned_ok(model: Path) -> bool:
    """False for an unlearning run that diverged (it wrote no model to evaluate)."""
    marker = model / UNLEARNING_MARKER
    return not marker.is_file() or read_json(marker, what="unlearning record")["status"] == "ok"


def evaluate_stage(config: EvalConfig) -> None:
    if not unlearned_ok(Path(config.model)):
        print(f"eval: {config.model} diverged; nothing to evaluate")
        return
    run_eval(config)


AuditSettings = AuditConfig | RelearnConfig | RobustnessConfig | PrecisionConfig | \
    CrossModalConfig
AUDIT_RUNS: dict[type, Callable[..., object]] = {
    AuditConfig: run_audit, RelearnConfig: run_relearn, RobustnessConfig: run_robustness,
    PrecisionConfig: run_precision, CrossModalConfig: run_crossmodal}


def audit_stage(config: AuditSettings) -> None:
    models = config.models().values() if isinstance(config, CrossModalConfig) else [config.model]
    diverged = [model for model in models if not unlearned_ok(Path(model))]
    if diverged:
        print(f"audit: {', '.join(diverged)} diverged; nothing to audit")
        return
    AUDIT_RUNS[type(config)](config)


def model_audits(config: RunConfig, *, main: bool, first_seed: bool = True,
                 crossmodal: bool = False) -> tuple[str, ...]:
    """The audits of a multimodal model of the results: of the main table's models
    (``main``) or not, at the first unlearning seed or not (none without an audit section);
    the cross-modal matrix only for a method's model at the main variant with both modalities
    unlearned (``crossmodal``: its text-only and visual-only twins exist)."""
    if config.audit is None:
        return ()
    return tuple(audit for audit in config.audit.of_model(main=main, first_seed=first_seed)
                 if crossmodal or audit != "crossmodal")


REUSED = {"relearn": ("gold_curves", RELEARN_FILE), "precision": ("references", PRECISION_FILE)}
"""Audit → its setting naming gold's own result file of the audit (and that file), whose gold
(relearn) or vanilla and gold (precision) part every other model's audit of the split
reuses."""


def gold_audit(name: str, split: str) -> str:
    """The stage of audit ``name`` of ``split``'s gold model."""
    return f"audit {name} gold ({split})"


def score_stage(eval_dir: Path, gold_dir: Path) -> None:
    if not (eval_dir / EVAL_FILE).is_file():
        print(f"score: {eval_dir} has no evaluation (diverged run); nothing to score")
        return
    run_score(eval_dir, gold_dir, eval_dir)


def report_stage(the_plan: Plan) -> None:
    write_results(the_plan)


@dataclass(frozen=True)
class Track:
    """Where and how a track's models are made: the multimodal track in the run folder, the
    text-only track (a causal LM on TOFU's QA alone) in ``RUN/text``."""

    name: str
    """``multimodal`` or ``text`` (UnlearnConfig's ``track``)."""
    root: Path
    finetune: dict[str, Any]
    """FinetuneConfig settings of the track's vanilla and gold models, but out, split, seed."""
    needs: tuple[str, ...]
    """The stages a fine-tune waits for: the data's synthesis and the base model's build."""
    tag: str = ""
    """Appended to the track's stage labels."""
    tasks: tuple[str, ...] | None = None
    """Evaluation tasks (None: all)."""

    def view(self, split: str) -> str:
        """The training view of ``full`` or a retain split: ``X+tofu``, or ``tofu:X``."""
        return f"tofu:{split}" if self.name == "text" else f"{split}+tofu"


def plan(config: RunConfig, run_dir: Path) -> Plan:
    """Every stage of a run, in an order that respects ``needs``, and its result rows."""
    seed = config.seed
    common = {"seed": seed, "dtype": config.dtype, "device": config.device}
    stages: list[Stage] = []
    rows: list[ResultRow] = []

    def add(name: str, kind: str, action: Callable[..., object], *args: Any,
            needs: tuple[str, ...] = ()) -> str:
        stages.append(Stage(name, kind, action, args, tuple(dict.fromkeys(n for n in needs if n))))
        return name

    synth = ""
    if config.synth is not None:
        data = str(run_dir / "data")
        synth = add("synthesise CLEAR-mini", "synth", synthesise_stage, Path(data), config.synth)
    else:
        data = str(config.data)
    source = {"data": data, "data_revision": config.data_revision, "tofu": config.tofu,
              "tofu_revision": config.tofu_revision}

    def base_model(root: Path, base: dict[str, Any] | None, model: str | None,
                   revision: str | None, tag: str) -> tuple[dict[str, Any], str]:
        """The base model's FinetuneConfig settings and the stage building it (if any)."""
        if base is None:
            return {"model": str(model), "model_revision": revision}, ""
        built = add(f"pretrain base model{tag}", "base", build_base,
                    BaseConfig(data=data, out=root / "base", seed=seed, tofu=config.tofu,
                               tofu_revision=config.tofu_revision, **base),
                    needs=(synth,))
        return {"model": str(root / "base"), "model_revision": None}, built

    def audit_config(name: str, model_dir: Path, split: str,
                     **models: str) -> AuditSettings:
        """The settings of audit ``name`` of a multimodal model, written into its
        ``audit-SPLIT`` folder: gold is the split's, vanilla the run's; the robustness audit
        runs on the model alone (each condition's P comes from vanilla's and gold's own
        robustness.json when the results are collected: the same numbers at a third of the
        cost); the relearning and precision audits of any other model than gold reuse gold's
        (:data:`REUSED`); the others generate as the evaluation does. ``models``: the
        cross-modal audit's text-only and visual-only models."""
        gold_dir = run_dir / f"gold-{split}"
        both = {"gold": str(gold_dir), "vanilla": str(run_dir / "vanilla")}
        reused = {} if model_dir == gold_dir or name not in REUSED else \
            {REUSED[name][0]: gold_dir / f"audit-{split}" / REUSED[name][1]}
        references = {"membership": {"gold": str(gold_dir)}, "relearn": both,
                      "robustness": {}, "precision": both,
                      "crossmodal": {**both, **models}}[name] | reused
        generation = {} if name == "membership" or "max_new_tokens" not in config.eval else \
            {"max_new_tokens": config.eval["max_new_tokens"]}
        return AUDIT_CONFIGS[name](
            model=str(model_dir), data=data, out=model_dir / f"audit-{split}", forget_split=split,
            seed=seed, data_revision=config.data_revision, dtype=config.dtype,
            device=config.device, **references, **generation, **config.audit.settings[name])

    def evaluate_and_score(track: Track, label: str, model_dir: Path, split: str, trained: str,
                           gold_eval: str, *, audits: tuple[str, ...] = (),
                           published: tuple[str, str | None] | None = None,
                           ) -> tuple[Path, str, str]:
        """Evaluation and scoring stages of a model, and a stage per audit of ``audits``:
        (eval folder, the evaluation's and score's names). ``published``: the hub id (or
        folder) and revision of a model the run did not train, evaluated into
        ``model_dir``."""
        eval_dir = model_dir / f"eval-{split}"
        tasks = {} if track.tasks is None else {"tasks": track.tasks}
        model, revision = published or (str(model_dir), None)
        evaluation = add(f"evaluate {label}", "eval", evaluate_stage,
                         EvalConfig(model=model, model_revision=revision, out=eval_dir,
                                    forget_split=split, **source, **common, **config.eval,
                                    **tasks),
                         needs=(trained,))
        gold_eval = gold_eval or evaluation
        scored = add(f"score {label}", "score", score_stage, eval_dir,
                     track.root / f"gold-{split}" / f"eval-{split}",
                     needs=(evaluation, gold_eval))
        for name in audits:
            settings = audit_config(name, model_dir, split)
            reuses = name in REUSED and getattr(settings, REUSED[name][0]) is not None
            add(f"audit {name} {label}", "audit", audit_stage, settings,
                needs=(trained, f"fine-tune gold ({split})", "fine-tune vanilla",
                       gold_audit(name, split) if reuses else ""))
        return eval_dir, evaluation, scored

    def gold_stages(track: Track, split: str, seed_offset: int = 0, *,
                    result: bool = True) -> tuple[Path, str, str]:
        """Fine-tune, evaluate and score a gold model of ``split`` (reseeded: ``seed_offset``
        > 0), a row of the results with ``result``: (eval folder, its evaluation and score
        stage names)."""
        suffix = "-reseeded" if seed_offset else ""
        what = "gold, reseeded" if seed_offset else "gold"
        audits = model_audits(config, main=True) if result and track.name == "multimodal" \
            else ()
        gold_dir = track.root / f"gold-{split}{suffix}"
        trained = add(f"fine-tune {what} ({split}{track.tag})", "finetune", finetune,
                      FinetuneConfig(out=gold_dir, split=track.view(retain_split_of(split)),
                                     gate_split=split,
                                     **{**track.finetune, "seed": seed + seed_offset}),
                      needs=track.needs)
        gold_eval = "" if not seed_offset else f"evaluate gold ({split}{track.tag})"
        eval_dir, evaluation, scored = evaluate_and_score(
            track, f"{what} ({split}{track.tag})", gold_dir, split, trained, gold_eval,
            audits=audits)
        if result:
            rows.append(ResultRow(RESEEDED if seed_offset else "gold", None, None, split,
                                  False, 0.0, seed + seed_offset, gold_dir / TRAINING_MARKER,
                                  eval_dir, track.name, audits))
        return eval_dir, evaluation, scored

    if config.multimodal:
        model, base = base_model(run_dir, config.base, config.model, config.model_revision, "")
        track = Track("multimodal", run_dir,
                      {**model, **source, **common, **config.finetune}, (synth, base))
        plan_multimodal(config, track, add, evaluate_and_score, gold_stages, audit_config, rows)
    if config.text is not None:
        text = config.text
        model, base = base_model(run_dir / TEXT_DIR, text.base, text.model,
                                 text.model_revision, " (text-only)")
        track = Track("text", run_dir / TEXT_DIR,
                      {**model, **source, **common, **config.finetune, **text.finetune},
                      (synth, base), tag=", text-only", tasks=TEXT_TASKS)
        plan_text(config, track, add, evaluate_and_score, gold_stages, rows)
    if config.cv is not None:
        add("vision-only track", "cv", run_cv,
            CVConfig(out=run_dir / CV_DIR, data=data, data_revision=config.data_revision,
                     seed=seed, forget_split=config.forget_splits[0], **config.cv),
            needs=(synth,))
    the_plan = Plan(config, run_dir, data, stages, rows)
    stages.append(Stage("collect results and write the report", "report", report_stage,
                        (the_plan,),
                        tuple(s.name for s in stages
                              if s.kind in ("score", "cv", "select", "audit"))))
    return the_plan


def plan_multimodal(config: RunConfig, track: Track, add: Callable[..., str],
                    evaluate_and_score: Callable[..., tuple[Path, str, str]],
                    gold_stages: Callable[..., tuple[Path, str, str]],
                    audit_config: Callable[..., Any], rows: list[ResultRow]) -> None:
    """The VLM's stages: vanilla, per forget split its gold models, every method in every
    variant (and the modality study, and the tuned runs) per seed, with their evaluations and
    audits; a method's cross-modal audits come after its modality study's unlearning."""
    run_dir, seed = track.root, config.seed
    shared = {key: track.finetune[key] for key in ("data", "data_revision", "tofu",
                                                   "tofu_revision", "dtype", "device")}
    vanilla_dir = run_dir / "vanilla"
    vanilla = add("fine-tune vanilla", "finetune", finetune,
                  FinetuneConfig(out=vanilla_dir, split=track.view("full"),
                                 gate_split=config.forget_splits[0], **track.finetune),
                  needs=track.needs)
    selections = {}
    if config.tune is not None:
        selections = plan_tuning(config, run_dir, add, partial(evaluate_and_score, track),
                                 partial(gold_stages, track), vanilla_dir, vanilla,
                                 {**shared, "seed": seed})
    for split in config.forget_splits:
        _, gold_eval, _ = gold_stages(track, split)
        gold_stages(track, split, RESEED_OFFSET)
        audits = model_audits(config, main=True)
        eval_dir, _, _ = evaluate_and_score(track, f"vanilla ({split})", vanilla_dir, split,
                                            vanilla, gold_eval, audits=audits)
        rows.append(ResultRow("vanilla", None, None, split, False, 0.0, seed,
                              vanilla_dir / TRAINING_MARKER, eval_dir, audits=audits))
        runs = [(variant, "both") for variant in config.variants]
        runs += [(config.main_variant, modality) for modality in config.modality_study]
        if selections:
            runs.append((tuned_variant(config.main_variant), "both"))
        for method in config.methods:
            folder = partial(unlearned_folder, run_dir, split, method)
            label_of = partial(unlearned_label, config, split, method)
            crossmodal: list[int] = []  # the seeds whose main model gets the matrix
            for variant, modality in runs:
                tuned = variant.removesuffix(TUNED_SUFFIX) if variant not in config.variants \
                    else None
                settings = unlearn_settings(config, tuned or variant)
                for run_seed in config.unlearning_seeds:
                    out = folder(variant, modality, run_seed)
                    label = label_of(variant, modality, run_seed)
                    # the main table's models (and the tuned ones), not the studies
                    main = modality == "both" and (variant == config.main_variant or
                                                   tuned is not None)
                    audits = model_audits(config, main=main, first_seed=run_seed == config.seed,
                                          crossmodal=modality == "both" and
                                          variant == config.main_variant)
                    # the precision audit's packagings need the unmerged adapter
                    adapter = {"save_adapter": True} if "precision" in audits and \
                        settings.get("lora", False) else {}
                    settings_of_run = UnlearnConfig(
                        model=str(vanilla_dir), method=method, out=out, forget_split=split,
                        modality=modality, options=config.method_options.get(method, {}),
                        **shared, **{"seed": run_seed}, **settings, **adapter)
                    if tuned:  # the settings the tuning chose, read when the stage runs
                        unlearned = add(f"unlearn {label}", "unlearn", unlearn_tuned,
                                        settings_of_run, selections[method],
                                        needs=(vanilla, f"select {method} ({tuned})"))
                    else:
                        unlearned = add(f"unlearn {label}", "unlearn", unlearn, settings_of_run,
                                        needs=(vanilla,))
                    if "crossmodal" in audits:
                        crossmodal.append(run_seed)
                    eval_dir, _, _ = evaluate_and_score(
                        track, label, out, split, unlearned, gold_eval,
                        audits=tuple(a for a in audits if a != "crossmodal"))
                    rows.append(ResultRow(method, variant, modality, split,
                                          bool(settings.get("lora", False)),
                                          float(settings.get("l1", 0.0)), run_seed,
                                          out / UNLEARNING_MARKER, eval_dir, audits=audits))
            variant = config.main_variant
            for run_seed in crossmodal:  # after the modality study's runs it needs
                add(f"audit crossmodal {label_of(variant, 'both', run_seed)}", "audit",
                    audit_stage,
                    audit_config("crossmodal", folder(variant, "both", run_seed), split,
                                 **{f"{modality}_model": str(folder(variant, modality, run_seed))
                                    for modality in ("text", "visual")}),
                    needs=(*(f"unlearn {label_of(variant, modality, run_seed)}"
                             for modality in ("both", "text", "visual")),
                           f"fine-tune gold ({split})", "fine-tune vanilla"))


def unlearned_folder(run_dir: Path, split: str, method: str, variant: str, modality: str,
                     run_seed: int) -> Path:
    """Where a multimodal unlearning run writes its model."""
    return run_dir / "unlearn" / split / modality / f"{method}-{variant}" / f"seed{run_seed}"


def unlearned_label(config: RunConfig, split: str, method: str, variant: str, modality: str,
                    run_seed: int) -> str:
    """How the stages of a multimodal unlearning run name it (the seed when there are
    several)."""
    seeded = f", seed {run_seed}" if config.seeds > 1 else ""
    return f"{method} ({variant}, {modality}, {split}{seeded})"


def plan_text(config: RunConfig, track: Track, add: Callable[..., str],
              evaluate_and_score: Callable[..., tuple[Path, str, str]],
              gold_stages: Callable[..., tuple[Path, str, str]],
              rows: list[ResultRow]) -> None:
    """The text-only track's stages: its vanilla LM (fine-tuned on ``tofu:full``, or the
    published model the config names), per forget split its gold LMs and every method at the
    main variant's settings per seed, unlearning TOFU's forget QA, each evaluated on TOFU's
    four tasks and scored against the track's own gold."""
    text, root, seed = config.text, track.root, config.seed
    shared = {key: track.finetune[key] for key in ("data", "data_revision", "tofu",
                                                   "tofu_revision", "dtype", "device")}
    vanilla_dir = root / "vanilla"
    published = None if text.vanilla is None else (text.vanilla, text.vanilla_revision)
    vanilla, vanilla_record = "", None
    if published is None:
        vanilla = add("fine-tune vanilla (text-only)", "finetune", finetune,
                      FinetuneConfig(out=vanilla_dir, split=track.view("full"),
                                     gate_split=config.forget_splits[0], **track.finetune),
                      needs=track.needs)
        vanilla_record = vanilla_dir / TRAINING_MARKER
    model, model_revision = published or (str(vanilla_dir), None)
    variant = config.main_variant
    settings = unlearn_settings(config, variant)
    for split in config.forget_splits:
        _, gold_eval, _ = gold_stages(track, split)
        gold_stages(track, split, RESEED_OFFSET)
        eval_dir, _, _ = evaluate_and_score(track, f"vanilla ({split}, text-only)", vanilla_dir,
                                            split, vanilla, gold_eval, published=published)
        rows.append(ResultRow("vanilla", None, None, split, False, 0.0, seed, vanilla_record,
                              eval_dir, track.name))
        for method in text.methods:
            for run_seed in config.unlearning_seeds:
                out = root / "unlearn" / split / f"{method}-{variant}" / f"seed{run_seed}"
                seeded = f", seed {run_seed}" if config.seeds > 1 else ""
                label = f"{method} ({variant}, text-only, {split}{seeded})"
                unlearned = add(f"unlearn {label}", "unlearn", unlearn,
                                UnlearnConfig(model=model, model_revision=model_revision,
                                              method=method,
                                              out=out, forget_split=split, modality="text",
                                              track="text",
                                              options=config.method_options.get(method, {}),
                                              **shared, seed=run_seed, **settings),
                                needs=(vanilla,))
                eval_dir, _, _ = evaluate_and_score(track, label, out, split, unlearned,
                                                    gold_eval)
                rows.append(ResultRow(method, variant, "text", split,
                                      bool(settings.get("lora", False)),
                                      float(settings.get("l1", 0.0)), run_seed,
                                      out / UNLEARNING_MARKER, eval_dir, track.name))


def plan_tuning(config: RunConfig, run_dir: Path, add: Callable[..., str],
                evaluate_and_score: Callable[..., tuple[Path, str, str]],
                gold_stages: Callable[..., tuple[Path, str, str]], vanilla_dir: Path,
                vanilla: str, shared: dict[str, Any]) -> dict[str, Path]:
    """The tuning protocol's stages (:mod:`clearbench.recipes.tune`): the validation gold,
    the vanilla model on the validation split, every method's grid at the main variant and
    its selection; the path of each method's ``selection.json``."""
    tune = config.tune
    split, variant = tune.split, config.main_variant
    gold_eval_dir, gold_eval, gold_scored = gold_stages(split, result=False)
    vanilla_eval_dir, _, vanilla_scored = evaluate_and_score(
        f"vanilla ({split})", vanilla_dir, split, vanilla, gold_eval)
    settings = unlearn_settings(config, variant)
    seeds = [config.seed + i for i in range(tune.seeds)]
    selections = {}
    for method in config.methods:
        options = config.method_options.get(method, {})
        folder = tuning_folder(run_dir, split, method, variant)
        points, scored = [], [gold_scored, vanilla_scored]
        for point in method_grid(method, tune, options):
            runs = []
            for run_seed in seeds:
                out = folder / point.label / f"seed{run_seed}"
                seeded = f", seed {run_seed}" if tune.seeds > 1 else ""
                label = f"{method} ({variant}, {point.label}, {split}{seeded})"
                unlearned = add(
                    f"tune {label}", "unlearn", unlearn,
                    point.applied(UnlearnConfig(
                        model=str(vanilla_dir), method=method, out=out, forget_split=split,
                        modality="both", options=options,
                        **{**shared, "seed": run_seed}, **settings)),
                    needs=(vanilla,))
                eval_dir, _, score_name = evaluate_and_score(label, out, split, unlearned,
                                                             gold_eval)
                runs.append((out / UNLEARNING_MARKER, eval_dir))
                scored.append(score_name)
            points.append(TunedRun(point, tuple(runs)))
        add(f"select {method} ({variant})", "select", select_settings,
            SelectJob(method, variant, split, folder, vanilla_eval_dir, gold_eval_dir,
                      tuple(points), tune.min_utility_ratio),
            needs=tuple(scored))
        selections[method] = folder / SELECTION_FILE
    return selections


def check_data(the_plan: Plan, parameters: dict[str, int]) -> dict[Need, datasets.Dataset]:
    """Preflight of a run on existing data whose tracks' models have ``parameters`` (they
    choose the recipes): every config any stage reads (and ``full``, whose persons the dry run
    counts), validated before any stage starts."""
    config = the_plan.config
    source = data_source(the_plan.data, config.data_revision, config.tofu, config.tofu_revision)
    needs = [Need("clear", "full")]
    for stage in the_plan.stages:
        settings = stage.args[0] if stage.args else None
        if stage.kind in ("finetune", "unlearn"):
            recipe = settings.resolved_recipe(parameters[stage_track(stage)])[1]
            needs += settings.data_needs(recipe)
        elif stage.kind in ("base", "eval", "audit"):
            needs += settings.data_needs()
        elif stage.kind == "cv":
            needs += face_needs(source, settings.forget_split)
    return preflight(source, needs)


def run_stage(stage: Stage) -> float:
    """Run one stage (redoing it from scratch if its folder holds other settings); seconds."""
    started = time.perf_counter()
    try:
        stage.action(*stage.args)
    except StaleStage as stale:
        print(f"{stale.folder}: {stale.reason}; removing it and redoing the stage")
        shutil.rmtree(stale.folder)
        stage.action(*stage.args)
    return time.perf_counter() - started


def _logged_stage(stage: Stage, log: Path, threads: int) -> float:
    """A worker process's stage: output (progress bars included) to ``log``, on ``threads``
    threads."""
    import torch

    torch.set_num_threads(threads)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stream, contextlib.redirect_stdout(stream), \
            contextlib.redirect_stderr(stream):
        try:
            return run_stage(stage)
        except BaseException:
            traceback.print_exc()
            raise


def _exit_with_parent(parent: int) -> None:
    """Worker initialiser: end this worker if the ``clearbench run`` (process ``parent``) that
    started it is killed, instead of training on as an orphan (the stage resumes from its
    checkpoint on the next run). Ctrl-C is the parent's to handle: it stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class Progress:
    """Stage counter, elapsed time and an ETA from the mean duration of each kind of stage."""

    def __init__(self, stages: list[Stage], jobs: int) -> None:
        self.remaining = {stage.name: stage.kind for stage in stages}
        self.total = len(stages)
        self.jobs = jobs
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.by_kind: dict[str, list[float]] = defaultdict(list)

    def done(self, stage: Stage, seconds: float) -> None:
        self.remaining.pop(stage.name)
        self.seconds[stage.name] = seconds
        self.by_kind[stage.kind].append(seconds)
        elapsed = time.perf_counter() - self.started
        print(f"[{len(self.seconds)}/{self.total}] {stage.name}: {seconds:.1f} s · "
              f"elapsed {_clock(elapsed)} · ETA {self.eta()}", flush=True)

    def eta(self) -> str:
        if not self.remaining:
            return "done"
        unseen = sorted(set(self.remaining.values()) - self.by_kind.keys())
        if unseen:  # stage kinds differ by orders of magnitude: do not guess from others
            return f"after the first {unseen[0]} stage"
        guess = {kind: sum(v) / len(v) for kind, v in self.by_kind.items()}
        left = sum(guess[kind] for kind in self.remaining.values()) / self.jobs
        return f"~{_clock(left)}"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def execute(stages: list[Stage], jobs: int, log_dir: Path) -> dict[str, float]:
    """Run the stages in dependency order, ``jobs`` at a time; seconds per stage."""
    progress = Progress(stages, jobs)
    if jobs == 1:
        for stage in stages:
            print(f"[{len(progress.seconds) + 1}/{progress.total}] {stage.name} ...", flush=True)
            progress.done(stage, run_stage(stage))
        return progress.seconds
    cores = os.cpu_count() or 1
    pending = [stage for stage in stages if stage.kind != "report"]
    running: dict[Future, tuple[Stage, Path]] = {}
    failed: list[str] = []
    killed: list[str] = []
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        while (pending and not failed and not killed) or running:
            ready = [s for s in pending if set(s.needs) <= progress.seconds.keys()]
            for stage in ready:
                if len(running) == jobs or failed or killed:
                    break
                # The cores are shared out between the stages that can run now: a stage
                # that runs alone (the base, unless the vision-only track trains beside it)
                # gets them all. The tiny default model is too small to use two threads well
                # (one fine-tuning on 2 cores: 4.7 steps/s on 2 threads, 3.9 on 1), so
                # running stages side by side on one thread each finishes sooner.
                threads = max(1, cores // min(jobs, len(running) + len(ready)))
                log = _attempt_log(log_dir, stage)
                running[pool.submit(_logged_stage, stage, log, threads)] = (stage, log)
                pending.remove(stage)
            if not running:
                raise RuntimeError(f"no stage can start: {[s.name for s in pending]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stage, log = running.pop(future)
                try:
                    progress.done(stage, future.result())
                except BrokenProcessPool:
                    killed.append(f"stage '{stage.name}' (log: {log})")
                except Exception as err:
                    failed.append(f"stage '{stage.name}' failed: {err} (log: {log})")
    except BaseException:  # Ctrl-C (or a bug here): stop the stages still running
        for process in list((pool._processes or {}).values()):  # public only in Python 3.14
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if killed:
        raise RunError("a worker process died (killed, or out of memory?) while running "
                       f"{', '.join(killed)}; {RESUME}")
    if failed:
        raise RunError("; ".join(failed))
    for stage in stages:
        if stage.kind == "report":
            progress.done(stage, run_stage(stage))
    return progress.seconds


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")[:80]


def _attempt_log(log_dir: Path, stage: Stage) -> Path:
    """A new log file for this attempt at ``stage``: ``SLUG.log``, then ``SLUG.2.log``, ...
    (the log of an attempt that failed is kept)."""
    slug = _slug(stage.name)
    log, attempt = log_dir / f"{slug}.log", 1
    while log.exists():
        attempt += 1
        log = log_dir / f"{slug}.{attempt}.log"
    return log


def time_spent(stages: list[Stage], seconds: dict[str, float]) -> dict[str, dict[str, float]]:
    """Seconds and stage count per kind of stage."""
    spent: dict[str, dict[str, float]] = {}
    for stage in stages:
        entry = spent.setdefault(stage.kind, {"stages": 0, "seconds": 0.0})
        entry["stages"] += 1
        entry["seconds"] += seconds.get(stage.name, 0.0)
    return spent


def tuning_only(the_plan: Plan) -> Plan:
    """The plan cut to the tuning protocol: each method's selection and the stages it needs
    (``clearbench tune``); ValueError for a config without a ``tune`` section."""
    if the_plan.config.tune is None:
        raise ValueError(f"run config {the_plan.config.path} has no tune section (or it has "
                         "enabled: false); see docs/tuning.md or `--preset tuned`")
    by_name = {stage.name: stage for stage in the_plan.stages}
    wanted = {stage.name for stage in the_plan.stages if stage.kind == "select"}
    frontier = list(wanted)
    while frontier:
        for need in by_name[frontier.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                frontier.append(need)
    return replace(the_plan, stages=[s for s in the_plan.stages if s.name in wanted], rows=[])


def run(config_path: Path | None = None, run_dir: Path | None = None, *,
        preset: str | None = None, dry_run: bool = False, jobs: int | None = None,
        tune_only: bool = False) -> Plan:
    """Run (or resume, or only describe with ``dry_run``) the benchmark of a config; with
    ``tune_only`` only its tuning protocol (``clearbench tune``)."""
    if config_path is not None and preset is not None:
        raise ValueError("give either --config or --preset, not both")
    config_path = config_path or embedded_config(preset or ("tuned" if tune_only else "mini"))
    config = load_run_config(config_path)
    run_dir = run_dir or Path("runs") / config_path.stem
    the_plan = plan(config, run_dir)
    if tune_only:
        the_plan = tuning_only(the_plan)
    if dry_run:  # writes nothing, so takes no lock; plans for any machine
        print(describe(the_plan, check_run_data(the_plan, dry_run=True)))
        return the_plan
    check_device(config.device, f"run config {config_path}: device")
    with run_folder_lock(run_dir):  # a second run on this folder fails at once
        check_run_data(the_plan, dry_run=False)
        execute_plan(the_plan, jobs or config.jobs, config_path)
    return the_plan


def check_run_data(the_plan: Plan, *, dry_run: bool) -> dict[Need, datasets.Dataset] | None:
    """Every data problem of a run on existing data, before any weights load (None for a run
    that synthesises its data)."""
    config = the_plan.config
    if config.synth is not None:
        return None
    models = {"multimodal": (config.model, config.model_revision)}
    if config.text is not None:
        models["text"] = (config.text.model, config.text.model_revision)
    parameters = {}
    for track in track_names(config):
        try:
            parameters[track] = model_shape(the_plan, track).parameters
        except ValueError:  # a hub model the estimate does not know: a dry run stops here
            if dry_run:
                raise
            model, revision = models[track]
            parameters[track] = count_parameters(str(model), revision=revision)
    return check_data(the_plan, parameters)


def execute_plan(the_plan: Plan, jobs: int, config_path: Path) -> None:
    """Run every stage, record the time spent and print the summary."""
    run_dir = the_plan.run_dir
    print(f"clearbench run: {config_path} -> {run_dir} ({len(the_plan.stages)} stages, "
          f"{jobs} at a time)")
    started = time.perf_counter()
    seconds = execute(the_plan.stages, jobs, run_dir / "logs")
    wall = time.perf_counter() - started
    spent = time_spent(the_plan.stages, seconds)
    write_json_atomic(run_dir / TIMING_FILE, {"wall_seconds": wall, "jobs": jobs,
                                             "by_kind": spent, "by_stage": seconds})
    print(f"\nclearbench run finished in {_clock(wall)} ({jobs} at a time); time by stage kind:")
    for kind, entry in spent.items():
        print(f"  {kind:9} {entry['stages']:3d} stages  {entry['seconds']:8.1f} s")
    if not any(stage.kind == "report" for stage in the_plan.stages):  # clearbench tune
        from clearbench.recipes.tune import tuning_summary

        print("\n" + tuning_summary(the_plan.config, run_dir))
        return
    from clearbench.report import terminal_summary

    print("\n" + terminal_summary(run_dir))
    print(f"\nreport: {run_dir / 'report.html'} (also report.md, leaderboard.csv, "
          "results.json)")
