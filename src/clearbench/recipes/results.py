"""Collect a run's stage outputs into ``results.json``, the one file the report is built from.

``results.json`` = ``{"schema": 2, "run": {...}, "rows": [...], "summary": [...]}``:

- ``rows``: one per model and seed (vanilla, gold and the reseeded gold included as methods
  ``vanilla``, ``gold``, ``gold_reseeded``): method, variant, modality, forget split, LoRA, λ,
  seed, status, its scores on every row (spec §5; ``forget_quality*`` from ``scores.json``),
  per-task metrics, cost, the training-loss curve and, for fine-tuned models, their
  memorisation gate;
- ``summary``: one per model over its seeds: each score's mean over the seeds and its 95 %
  bootstrap interval over persons and seeds (spec §7), plus the bootstrap replicates, on draws
  shared by every model of the forget split, so that differences are paired.

A run with membership audits adds ``"audit"`` to every audited row (its ``audit.json``'s
attacks) and summary entry (over the seeds); a run with the vision-only track adds ``"cv"``
(its ``cv_results.json``); a run with a ``tune`` section adds ``"tuning"``: the tuned variant's
name and each method's ``selection.json`` (grid, validation scores, choice and cost); a run
with the text-only track adds ``"text"``: its base model, vanilla model, main variant and first
forget split, and ``rows`` and ``summary`` as above for its own models (modality ``text``),
on its own draws (docs/text.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clearbench.evaluation.membership import audit_of
from clearbench.evaluation.statistics import (
    LEVEL,
    REPLICATES,
    Resampler,
    combine_seeds,
    score_replicates,
)
from clearbench.io import read_json, write_json_atomic
from clearbench.recipes.audit import AUDIT_FILE, attack_draws
from clearbench.recipes.evaluate import EVAL_FILE, SCORES_FILE
from clearbench.recipes.finetune import GATE_FILE
from clearbench.recipes.layout import CV_DIR, TEXT_DIR
from clearbench.recipes.runconfig import unlearn_settings

if TYPE_CHECKING:
    from clearbench.recipes.pipeline import Plan, ResultRow
    from clearbench.recipes.runconfig import RunConfig

RESULTS_FILE = "results.json"
SCHEMA = 2
TASK_KEYS = ("rougeL_recall", "probability", "truth_ratio", "fact_accuracy", "truth_knowledge")
SCORE_KEYS = ("forget_quality_by_task",)
"""What a row keeps of ``scores.json`` besides the scores computed here."""


def _cost(record: dict[str, Any]) -> dict[str, Any]:
    """Unlearning runs record a ``cost``; fine-tuning records seconds, steps and parameters."""
    if "cost" in record:
        return record["cost"]
    return {"seconds": record.get("seconds"), "optimiser_steps": record.get("steps"),
            "trainable_parameters": record.get("trainable_parameters")}


def _gate(model_dir: Path) -> dict[str, Any] | None:
    """The memorisation gate of a fine-tuned model (vanilla, gold): passed, and why not."""
    path = model_dir / GATE_FILE
    if not path.is_file():
        return None
    gate = read_json(path, what="memorisation gate")
    return {"passed": bool(gate["passed"]), "failures": list(gate.get("failures", []))}


def result_row(row: ResultRow, run_dir: Path, audit: dict[str, Any] | None) -> dict[str, Any]:
    """One ``results.json`` row from the stage outputs of one model at one seed (its scores
    other than ``forget_quality_by_task`` are added by :func:`summarise`); its model folder
    relative to the run folder, so that a moved run has the same results (a published model
    the run did not train: its evaluation's folder)."""
    record = {} if row.record is None else read_json(row.record, what="stage record")
    folder = row.eval_dir.parent if row.record is None else row.record.parent
    status = record.get("status", "ok")
    scores = tasks = None
    if status == "ok":
        scored = read_json(row.eval_dir / SCORES_FILE, what="scores")
        scores = {key: scored.get(key) for key in SCORE_KEYS}
        evaluation = read_json(row.eval_dir / EVAL_FILE, what="evaluation")
        tasks = {name: {key: task.get(key) for key in TASK_KEYS}
                 for name, task in evaluation["tasks"].items()}
    return {"method": row.method, "variant": row.variant, "modality": row.modality,
            "forget_split": row.forget_split, "lora": row.lora, "l1": row.l1,
            "seed": row.seed, "status": status, "scores": scores, "tasks": tasks,
            "cost": _cost(record), "losses": record.get("losses", []),
            "model": folder.relative_to(run_dir).as_posix(),
            "gate": _gate(folder),
            **({"audit": audit["attacks"]} if audit is not None else {})}


def _audit(row: ResultRow) -> dict[str, Any] | None:
    """The membership audit of a row's model (``audit.json``), if the run audited it."""
    if row.record is None:
        return None
    path = row.record.parent / f"audit-{row.forget_split}" / AUDIT_FILE
    return read_json(path, what="membership audit") if path.is_file() else None


def summarise_audits(config: RunConfig, plan_rows: list[ResultRow],
                     audits: list[dict[str, Any] | None], summary: list[dict[str, Any]]) -> None:
    """Per model, every attack's AUCs and PrivLeak over its seeds (``audits``: each plan row's
    ``audit.json``, or None): each person-bootstrap replicate (the same persons drawn for every
    model and seed) averaged over the seeds."""
    by_model: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row, audit in zip(plan_rows, audits, strict=True):
        if audit is not None:
            key = (row.method, row.variant, row.modality, row.forget_split)
            by_model[key].append(attack_draws(audit["rows"], REPLICATES, config.seed))
    for entry in summary:
        draws = by_model.get((entry["method"], entry["variant"], entry["modality"],
                              entry["forget_split"]))
        if draws:
            entry["audit"] = {attack: audit_of([d[attack] for d in draws]).as_dict()
                              for attack in draws[0]}


def _number(value: float) -> float | None:
    """A finite float rounded to 6 significant digits; None for NaN (JSON has no NaN)."""
    return None if math.isnan(value) else float(f"{value:.6g}")


def summarise(config: RunConfig, plan_rows: list[ResultRow],
              rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model (method, variant, modality, split) of one track, every score over its seeds
    with its interval; fills each per-seed row's ``scores`` with that seed's values on every
    row.

    Nothing is summarised for a split whose vanilla or gold model has no evaluation.
    """
    groups: dict[tuple, list[tuple[ResultRow, dict[str, Any]]]] = defaultdict(list)
    for plan_row, row in zip(plan_rows, rows, strict=True):
        key = (row["method"], row["variant"], row["modality"], row["forget_split"])
        groups[key].append((plan_row, row))
    summary = []
    for split in config.forget_splits:
        baselines = {
            method: read_json(plan_row.eval_dir / EVAL_FILE, what="evaluation")
            for method in ("vanilla", "gold")
            for plan_row, row in groups.get((method, None, None, split), [])[:1]
            if row["status"] == "ok"
        }
        if len(baselines) < 2:
            continue
        resampler = Resampler(baselines["gold"], REPLICATES, seed=config.seed,
                              seeds=config.seeds)
        for (method, variant, modality, row_split), members in groups.items():
            if row_split != split:
                continue
            per_seed = []
            for plan_row, row in members:
                if row["status"] != "ok":
                    continue
                evaluation = read_json(plan_row.eval_dir / EVAL_FILE, what="evaluation")
                values = score_replicates(evaluation, baselines["vanilla"], baselines["gold"],
                                          resampler)
                row["scores"] |= {name: _number(float(v[0])) for name, v in values.items()}
                per_seed.append(values)
            first = members[0][1]
            diverged = [row["seed"] for _, row in members if row["status"] != "ok"]
            entry = {"method": method, "variant": variant, "modality": modality,
                     "forget_split": split, "lora": first["lora"], "l1": first["l1"],
                     "seeds": [row["seed"] for _, row in members],
                     "status": "ok" if not diverged else
                     f"diverged at seed {', '.join(map(str, diverged))}",
                     "scores": {}, "replicates": {}}
            if per_seed:
                for name, (estimate, draws) in combine_seeds(per_seed, resampler).items():
                    entry["scores"][name] = {k: _number(v)
                                             for k, v in estimate.as_dict().items()}
                    entry["replicates"][name] = [_number(float(v)) for v in np.asarray(draws)]
            summary.append(entry)
    return summary


def collect(the_plan: Plan) -> dict[str, Any]:
    config = the_plan.config
    variants = {}
    for name in config.variants:
        settings = unlearn_settings(config, name)
        variants[name] = {"lora": bool(settings.get("lora", False)),
                          "l1": float(settings.get("l1", 0.0))}
    cv = None
    if config.cv is not None:
        from clearbench.cv.recipe import RESULTS_FILE as CV_RESULTS
        cv = read_json(the_plan.run_dir / CV_DIR / CV_RESULTS, what="vision-only results")
    tracks: dict[str, list[ResultRow]] = defaultdict(list)
    for row in the_plan.rows:
        tracks[row.track].append(row)
    plan_rows = tracks["multimodal"]
    audits = [_audit(row) for row in plan_rows]
    rows = [result_row(row, the_plan.run_dir, audit)
            for row, audit in zip(plan_rows, audits, strict=True)]
    summary = summarise(config, plan_rows, rows)
    summarise_audits(config, plan_rows, audits, summary)
    text = None
    if tracks["text"]:
        text_rows = [result_row(row, the_plan.run_dir, None) for row in tracks["text"]]
        text = {"model": config.text.model or f"{TEXT_DIR}/base",
                "vanilla": config.text.vanilla or f"{TEXT_DIR}/vanilla",
                "main_variant": config.main_variant,
                "forget_split": config.forget_splits[0],
                "rows": text_rows, "summary": summarise(config, tracks["text"], text_rows)}
    tuning = {}
    if config.tune is not None:
        from clearbench.recipes.tune import read_selections, tuned_variant

        variant = config.main_variant
        tuning = {"tuned_variant": tuned_variant(variant),
                  "selections": read_selections(the_plan.run_dir, config.tune.split,
                                                config.methods, variant)}
    return {
        "schema": SCHEMA,
        "run": {"config": str(config.path), "data": _relative(the_plan.data, the_plan.run_dir),
                "main_variant": config.main_variant, "variants": variants,
                "forget_splits": list(config.forget_splits),
                "modalities": ["both", *config.modality_study],
                "seeds": config.unlearning_seeds,
                "intervals": {"level": LEVEL, "replicates": REPLICATES,
                              "method": "percentile bootstrap over persons (forget and retain "
                                        "resampled separately) and seeds; every model on the "
                                        "same draws"}},
        "rows": rows,
        "summary": summary,
        **({"tuning": tuning} if tuning else {}),
        **({"text": text} if text is not None else {}),
        **({"cv": cv} if cv is not None else {}),
    }


def _relative(data: str, run_dir: Path) -> str:
    """The data's path relative to the run folder when it is inside it (CLEAR-mini)."""
    return Path(data).relative_to(run_dir).as_posix() if Path(data).is_relative_to(run_dir) \
        else data


def write_results(the_plan: Plan) -> Path:
    """Write ``results.json`` (when it changed) and the report (when it does not show
    ``results.json``: see :mod:`clearbench.report.manifest`)."""
    from clearbench.report import write_report
    from clearbench.report.manifest import stale_reason

    path = the_plan.run_dir / RESULTS_FILE
    results = collect(the_plan)
    recorded = read_json(path, what="results") if path.is_file() else None
    if recorded == results:
        reason = stale_reason(the_plan.run_dir, recorded)
        if reason is None:
            print(f"report: {path} and the report are up to date; nothing to do")
            return path
        print(f"report: rebuilding the report: {reason}")
    else:
        write_json_atomic(path, results)
    for written in write_report(the_plan.run_dir):
        print(f"report: wrote {written}")
    return path
