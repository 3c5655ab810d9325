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

A run with audits (``audit`` section) records which in ``run.audits`` and adds to every audited
row and summary entry (over its audited seeds):

- ``"audit"``, ``"qa_audit"``: the membership audit's attacks on captions and on QA answers
  (``audit.json``'s ``attacks``, ``qa_attacks``; the latter where the data has holdout QA);
  over the seeds with a person-bootstrap interval (each replicate averaged over the seeds);
- ``"robustness"``: per condition (``robustness.json``) forget knowledge K and forgetting
  progress P = (K_vanilla − K) / (K_vanilla − K_gold), vanilla's and gold's K under the same
  condition (from their own ``robustness.json``);
- ``"relearn"``: per attack (``relearn.json``) the steps, K after each, P against gold after
  the same steps (:func:`~clearbench.evaluation.relearning.progress_against_gold`), the gap to
  gold with its person-bootstrap interval (rows only) and whether the model passed;
- ``"precision"``: per transform (``precision.json``) K, P (against vanilla's and gold's K
  under the same transform) and the flag, or why it was skipped;
- ``"crossmodal"`` (a method's model at the main variant with both modalities unlearned):
  the cross-modal matrix (``crossmodal.json``), per modality and probe K and P, per probe
  whether vanilla and gold are separable there and whether the claim holds;
- ``"robust_forgetting"`` (with any audit but membership): the lowest P over the headline and
  every P of these audits and the audit that gave it
  (:mod:`clearbench.evaluation.worstcase`), with every audit's P: each robustness condition
  but as is, each relearning attack's lowest step, each precision transform that ran but as
  is, and the cross-modal probes of :data:`~clearbench.evaluation.crossmodal.NEW_ROUTES` of
  the model's own (both-modality) row where vanilla and gold are separable on that probe.

Robustness, relearn, precision and crossmodal blocks over the seeds give every number as
``{mean, low, high}`` = the mean and the range (min, max) over the audited seeds, listed in the
entry's ``seeds`` (the files' own intervals are per seed); the summary's robust forgetting is
the lowest of these means.

A run with the vision-only track adds ``"cv"``
(its ``cv_results.json``); a run with a ``tune`` section adds ``"tuning"``: the tuned variant's
name and each method's ``selection.json`` (grid, validation scores, choice and cost); a run
with the text-only track adds ``"text"``: its base model, vanilla model, main variant and first
forget split, and ``rows`` and ``summary`` as above for its own models (modality ``text``),
on its own draws (docs/text.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clearbench.evaluation.aggregates import forgetting_progress
from clearbench.evaluation.crossmodal import NEW_ROUTES
from clearbench.evaluation.membership import audit_of
from clearbench.evaluation.relearning import progress_against_gold
from clearbench.evaluation.robustness import AS_IS
from clearbench.evaluation.statistics import (
    LEVEL,
    REPLICATES,
    Resampler,
    combine_seeds,
    score_replicates,
)
from clearbench.evaluation.worstcase import audit_progress, robust_forgetting
from clearbench.io import read_json, write_json_atomic
from clearbench.recipes.audit import ATTACK_KEYS, AUDIT_FILE, CAPTION, QA, attack_draws
from clearbench.recipes.crossmodal import CROSSMODAL_FILE
from clearbench.recipes.evaluate import EVAL_FILE, SCORES_FILE
from clearbench.recipes.finetune import GATE_FILE
from clearbench.recipes.layout import CV_DIR, TEXT_DIR
from clearbench.recipes.precision import AS_IS as UNTRANSFORMED
from clearbench.recipes.precision import PRECISION_FILE
from clearbench.recipes.relearn import RELEARN_FILE
from clearbench.recipes.robustness import ROBUSTNESS_FILE
from clearbench.recipes.runconfig import unlearn_settings

if TYPE_CHECKING:
    from clearbench.recipes.runconfig import RunAudits, RunConfig
    from clearbench.recipes.runplan import Plan, ResultRow

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


def result_row(row: ResultRow, run_dir: Path, audits: dict[str, Any]) -> dict[str, Any]:
    """One ``results.json`` row from the stage outputs of one model at one seed and its
    ``audits`` (:func:`row_audits`; its scores other than ``forget_quality_by_task`` are added
    by :func:`summarise`); its model folder relative to the run folder, so that a moved run
    has the same results (a published model the run did not train: its evaluation's
    folder)."""
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
            "gate": _gate(folder), **audits}


AUDIT_FILES = {"membership": AUDIT_FILE, "relearn": RELEARN_FILE, "robustness": ROBUSTNESS_FILE,
               "precision": PRECISION_FILE, "crossmodal": CROSSMODAL_FILE}


AUDIT_INTERVALS = {
    "membership": "person bootstrap, each replicate averaged over the seeds",
    "robustness": "range (min, max) over the audited seeds",
    "relearn": "range (min, max) over the audited seeds (each seed's gap to gold: its own "
               "person-bootstrap interval)",
    "precision": "range (min, max) over the audited seeds (each seed's P and flag: its own "
                 "person-bootstrap interval)",
    "crossmodal": "range (min, max) over the audited seeds (each seed's cells: their own "
                  "person-bootstrap intervals)",
}


MEMBERSHIP_BLOCKS = {CAPTION: "audit", QA: "qa_audit"}
"""The results block of each kind of text the membership audit scores."""


def audit_settings(audits: RunAudits) -> dict[str, Any]:
    """``run.audits``: the audits, on which models, and what their intervals are."""
    return {"audits": list(audits.audits), "scope": audits.scope,
            "first_seed_only": list(audits.first_seed_only),
            "intervals": {name: AUDIT_INTERVALS[name] for name in audits.audits}}


def audit_files(row: ResultRow) -> dict[str, dict[str, Any]]:
    """Audit name → the file of each audit the run gave a row's model (a diverged model has
    none)."""
    folder = row.eval_dir.parent / f"audit-{row.forget_split}"
    paths = {name: folder / AUDIT_FILES[name] for name in row.audits}
    return {name: read_json(path, what=f"{name} audit") for name, path in paths.items()
            if path.is_file()}


def row_audits(files: dict[str, dict[str, Any]],
               baselines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A row's audit blocks (see the module docstring) from its audit ``files``;
    ``baselines``: vanilla's and gold's ``robustness.json`` of the split, where the run has
    them."""
    blocks: dict[str, Any] = {}
    membership = files.get("membership", {})
    blocks |= {block: membership[ATTACK_KEYS[text]] for text, block in MEMBERSHIP_BLOCKS.items()
               if ATTACK_KEYS[text] in membership}
    if "robustness" in files:
        blocks["robustness"] = robustness_progress(files["robustness"], baselines)
    if "relearn" in files:
        blocks["relearn"] = relearn_progress(files["relearn"])
    if "precision" in files:
        blocks["precision"] = {
            kind: {"skipped": t["skipped"]} if "skipped" in t else
            {"forget_knowledge": t["forget_knowledge"], "progress": t["progress"]["mean"],
             "flagged": t["flagged"]}
            for kind, t in files["precision"]["transforms"].items()}
    if "crossmodal" in files:
        found = files["crossmodal"]
        blocks["crossmodal"] = {
            "matrix": {modality: {probe: {key: value[key]["mean"]
                                          for key in ("forget_knowledge", "progress")}
                                  for probe, value in cells.items()}
                       for modality, cells in found["matrix"].items()},
            "separable": {probe: gap["low"] is not None and gap["low"] > 0
                          for probe, gap in found["gap"].items()},
            "claim": {probe: claim["holds"] for probe, claim in found["claim"].items()}}
    return blocks


def robustness_progress(audit: dict[str, Any],
                        baselines: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per condition of a ``robustness.json``, K and P against vanilla's and gold's K under the
    same condition (None without both, or where they know the same)."""
    def knowledge(payload: dict[str, Any], condition: str) -> float:
        return payload["results"][condition]["forget_knowledge"]

    out = {}
    for condition in audit["results"]:
        k = knowledge(audit, condition)
        progress = None
        if {"vanilla", "gold"} <= baselines.keys():
            progress = _number(float(forgetting_progress(
                k, knowledge(baselines["vanilla"], condition),
                knowledge(baselines["gold"], condition))))
        out[condition] = {"forget_knowledge": k, "progress": progress}
    return out


def relearn_progress(audit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per attack of a ``relearn.json`` (the run gives it the vanilla model): the steps, K of
    the model after each, P against gold after the same steps, the gap and the verdict."""
    return {attack: {"steps": curve["steps"], "forget_knowledge": curve["knowledge"]["model"],
                     "progress": progress_against_gold(curve["knowledge"]["model"],
                                                       curve["knowledge"]["gold"],
                                                       audit["vanilla_knowledge"]),
                     "gap": curve["gap"], "passed": curve["passed"]}
            for attack, curve in audit["attacks"].items()}


def _spread(values: list[float | None]) -> dict[str, float | None]:
    """Mean, min and max of the values that are not None (all None when none is)."""
    known = [v for v in values if v is not None]
    if not known:
        return {"mean": None, "low": None, "high": None}
    return {"mean": _number(sum(known) / len(known)), "low": _number(min(known)),
            "high": _number(max(known))}


def over_seeds(blocks: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A ``robustness``, ``relearn``, ``precision`` or ``crossmodal`` block over the seeds:
    every number as its mean and range (verdicts, flags and separability per seed)."""
    first = blocks[0]
    if name == "precision":
        return {"transforms": {kind: dict(first[kind]) if "skipped" in first[kind] else {
            **{key: _spread([b[kind][key] for b in blocks])
               for key in ("forget_knowledge", "progress")},
            "flagged": [b[kind]["flagged"] for b in blocks]} for kind in first}}
    if name == "crossmodal":
        return {"matrix": {modality: {probe: {key: _spread([b["matrix"][modality][probe][key]
                                                            for b in blocks])
                                              for key in ("forget_knowledge", "progress")}
                                      for probe in cells}
                           for modality, cells in first["matrix"].items()},
                **{key: {probe: [b[key][probe] for b in blocks] for probe in first[key]}
                   for key in ("separable", "claim")}}
    if name == "robustness":
        return {"conditions": {condition: {key: _spread([b[condition][key] for b in blocks])
                                           for key in ("forget_knowledge", "progress")}
                               for condition in first}}
    return {"attacks": {attack: {
        "steps": curve["steps"],
        **{key: [_spread(list(values)) for values in zip(*(b[attack][key] for b in blocks),
                                                         strict=True)]
           for key in ("forget_knowledge", "progress")},
        "passed": [b[attack]["passed"] for b in blocks]} for attack, curve in first.items()}}


def worst_case(headline: float | None, robustness: dict[str, float | None] | None,
               relearn: dict[str, list[float | None]] | None,
               precision: dict[str, float | None] | None = None,
               crossmodal: dict[str, float | None] | None = None) -> dict[str, Any] | None:
    """Robust forgetting of a row or entry from its headline P, each robustness condition's P,
    each relearning attack's P per step (step 0 first, left out), each precision transform's P
    that ran and the P of the cross-modal probes that count (:func:`crossmodal_progress`):
    the lowest, the audit that gave it and every audit's P; None without any of these
    audits. As is (robustness, precision) is the headline's measurement, left out."""
    if all(block is None for block in (robustness, relearn, precision, crossmodal)):
        return None
    progress = audit_progress(
        headline, {c: p for c, p in (robustness or {}).items() if c != AS_IS},
        {attack: steps[1:] for attack, steps in (relearn or {}).items()},
        {kind: p for kind, p in (precision or {}).items() if kind != UNTRANSFORMED},
        crossmodal)
    lowest = robust_forgetting(progress)
    return {"progress": None if lowest is None else _number(lowest.progress),
            "audit": None if lowest is None else lowest.audit, "audits": progress}


def precision_progress(transforms: dict[str, dict[str, Any]],
                       value: Callable[[Any], float | None]) -> dict[str, float | None]:
    """P of every transform of a ``precision`` block that ran (``value`` reads a row's P or
    an entry's mean)."""
    return {kind: value(t["progress"]) for kind, t in transforms.items() if "skipped" not in t}


def crossmodal_progress(block: dict[str, Any],
                        value: Callable[[Any], float | None]) -> dict[str, float | None]:
    """P of the model's own (both-modality) row of a ``crossmodal`` block on each probe of
    :data:`~clearbench.evaluation.crossmodal.NEW_ROUTES` (the other probes are the
    evaluation's own forget tasks: the headline split by task), None where vanilla and gold
    are not separable on it (in every audited seed, for an entry): P measures nothing
    there."""
    def separable(probe: str) -> bool:
        flags = block["separable"][probe]
        return all(flags) if isinstance(flags, list) else flags

    return {probe: value(block["matrix"]["both"][probe]["progress"]) if separable(probe)
            else None for probe in NEW_ROUTES}


def summarise_audits(config: RunConfig, plan_rows: list[ResultRow], rows: list[dict[str, Any]],
                     files: list[dict[str, dict[str, Any]]],
                     summary: list[dict[str, Any]]) -> None:
    """Every audit of each model over its audited seeds (``files``: each plan row's audit
    files): the membership audit's attacks, each person-bootstrap replicate (the same persons
    drawn for every model and seed) averaged over the seeds; robustness and relearn as their
    mean and range over the seeds; robust forgetting of every row and of every entry (from
    its means)."""
    by_model: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    for plan_row, row, found in zip(plan_rows, rows, files, strict=True):
        key = (plan_row.method, plan_row.variant, plan_row.modality, plan_row.forget_split)
        by_model[key].append((row, found))
        worst = worst_case(
            (row["scores"] or {}).get("forgetting_progress"),
            {c: v["progress"] for c, v in row["robustness"].items()}
            if "robustness" in row else None,
            {a: v["progress"] for a, v in row["relearn"].items()} if "relearn" in row else None,
            precision_progress(row["precision"], _same) if "precision" in row else None,
            crossmodal_progress(row["crossmodal"], _same) if "crossmodal" in row else None)
        if worst is not None:
            row["robust_forgetting"] = worst
    for entry in summary:
        audited = by_model.get((entry["method"], entry["variant"], entry["modality"],
                                entry["forget_split"]), [])
        for text, block in MEMBERSHIP_BLOCKS.items():
            draws = [attack_draws(found["membership"]["rows"], REPLICATES, config.seed, text)
                     for _, found in audited
                     if ATTACK_KEYS[text] in found.get("membership", {})]
            if draws:
                entry[block] = {attack: audit_of([d[attack] for d in draws]).as_dict()
                                for attack in draws[0]}
        for name in ("robustness", "relearn", "precision", "crossmodal"):
            blocks = [row for row, _ in audited if name in row]
            if blocks:
                entry[name] = {"seeds": [row["seed"] for row in blocks],
                               **over_seeds([row[name] for row in blocks], name)}
        robustness = entry.get("robustness", {}).get("conditions")
        relearn = entry.get("relearn", {}).get("attacks")
        worst = worst_case(
            entry["scores"].get("forgetting_progress", {}).get("mean"),
            None if robustness is None else
            {c: v["progress"]["mean"] for c, v in robustness.items()},
            None if relearn is None else
            {a: [p["mean"] for p in v["progress"]] for a, v in relearn.items()},
            precision_progress(entry["precision"]["transforms"], _mean)
            if "precision" in entry else None,
            crossmodal_progress(entry["crossmodal"], _mean) if "crossmodal" in entry else None)
        if worst is not None:
            entry["robust_forgetting"] = worst


def _same(value: float | None) -> float | None:
    return value


def _mean(value: dict[str, float | None]) -> float | None:
    return value["mean"]


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
    files = [audit_files(row) for row in plan_rows]
    references: dict[str, dict[str, Any]] = defaultdict(dict)  # split: its baselines' robustness
    for row, found in zip(plan_rows, files, strict=True):
        if row.method in ("vanilla", "gold") and "robustness" in found:
            references[row.forget_split][row.method] = found["robustness"]
    rows = [result_row(row, the_plan.run_dir, row_audits(found, references[row.forget_split]))
            for row, found in zip(plan_rows, files, strict=True)]
    summary = summarise(config, plan_rows, rows)
    summarise_audits(config, plan_rows, rows, files, summary)
    text = None
    if tracks["text"]:
        text_rows = [result_row(row, the_plan.run_dir, {}) for row in tracks["text"]]
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
                **({"audits": audit_settings(config.audit)} if config.audit else {}),
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
