"""Collect a run's stage outputs into ``results.json``, the one file the report is built from.

``results.json`` = ``{"schema": 1, "run": {...}, "rows": [...]}``, one row per model of the run
(vanilla and gold included as methods ``vanilla`` and ``gold``): method, variant, modality,
forget split, LoRA, λ, status, the ``scores.json`` fields, per-task metrics, cost, the
training-loss curve and, for fine-tuned models, their memorisation gate. A run with the
vision-only track adds ``"cv"``: its ``cv_results.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearbench.io import read_json, write_json_atomic
from clearbench.recipes.evaluate import EVAL_FILE, SCORES_FILE
from clearbench.recipes.finetune import GATE_FILE
from clearbench.recipes.runconfig import unlearn_settings

if TYPE_CHECKING:
    from clearbench.recipes.pipeline import Plan, ResultRow

RESULTS_FILE = "results.json"
SCHEMA = 1
TASK_KEYS = ("rougeL_recall", "probability", "truth_ratio", "fact_accuracy")
SCORE_KEYS = ("forget_quality", "forget_quality_by_task", "forget_quality_js",
              "forget_quality_js_by_task", "model_utility", "real", "retain", "forget")


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


def result_row(row: ResultRow) -> dict[str, Any]:
    """One ``results.json`` row from the stage outputs of one model."""
    record = read_json(row.record, what="stage record")
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
            "status": status, "scores": scores, "tasks": tasks, "cost": _cost(record),
            "losses": record.get("losses", []), "model": str(row.record.parent),
            "gate": _gate(row.record.parent)}


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
        from clearbench.recipes.pipeline import CV_DIR

        cv = read_json(the_plan.run_dir / CV_DIR / CV_RESULTS, what="vision-only results")
    return {
        "schema": SCHEMA,
        "run": {"config": str(config.path), "data": the_plan.data,
                "main_variant": config.main_variant, "variants": variants,
                "forget_splits": list(config.forget_splits),
                "modalities": ["both", *config.modality_study]},
        "rows": [result_row(row) for row in the_plan.rows],
        **({"cv": cv} if cv is not None else {}),
    }


def write_results(the_plan: Plan) -> Path:
    """Write ``results.json`` and the report (skipped when both are up to date)."""
    from clearbench.report import write_report

    path = the_plan.run_dir / RESULTS_FILE
    results = collect(the_plan)
    up_to_date = (path.is_file() and read_json(path, what="results") == results
                  and (the_plan.run_dir / "report.html").is_file())
    if up_to_date:
        print(f"report: {path} and the report are up to date; nothing to do")
        return path
    write_json_atomic(path, results)
    for written in write_report(the_plan.run_dir):
        print(f"report: wrote {written}")
    return path
