"""Score an evaluation against the gold model's: forget quality, forget knowledge, utility and
the authors' aggregates.

Pure functions of two ``eval.json`` payloads (spec §5). Two evaluations are only compared when
they were made on the same data, the same forget split and the same rows. Forgetting progress
also needs the vanilla model's evaluation: ``clearbench run`` adds it, with confidence
intervals (:mod:`clearbench.evaluation.statistics`).
"""

from __future__ import annotations

from typing import Any

from clearbench.evaluation.aggregates import (
    authors_aggregate,
    authors_forget_quality,
    forget_knowledge,
    utility,
)
from clearbench.evaluation.metrics import forget_quality_ks
from clearbench.evaluation.tasks import TASKS, TASKS_BY_NAME

FORGET_QUALITY_TASK = "forget_captions"
"""CLEAR's forget quality is measured on the forget persons' captions."""
TASK_METRICS = ("probability", "rougeL_recall", "truth_ratio")
"""The three per-task numbers that the aggregates combine (spec §5)."""
ROW_KEYS = ("id", "unit", "generated", "rougeL_recall", "fact_hit", "loss_target",
            "loss_paraphrased", "loss_perturbed", "len_target", "prob", "truth_ratio_raw")


class EvalMismatch(ValueError):
    """Two evaluations that cannot be compared, and why."""


def check_eval(payload: Any, where: str) -> None:
    """Raise ValueError naming ``where`` and the first part of an eval payload that is malformed."""
    if not isinstance(payload, dict):
        raise ValueError(f"{where}: an evaluation must be a JSON object")
    for key in ("model", "data", "forget_split", "settings", "tasks"):
        if key not in payload:
            raise ValueError(f"{where}: missing top-level key {key!r}")
    if not isinstance(payload["tasks"], dict) or not payload["tasks"]:
        raise ValueError(f"{where}: 'tasks' must be a non-empty object")
    for name, task in payload["tasks"].items():
        if name not in TASKS_BY_NAME:
            raise ValueError(f"{where}: unknown task {name!r}")
        missing = [k for k in ("n", *TASK_METRICS, "fact_accuracy", "truth_knowledge", "rows")
                   if k not in task]
        if missing:
            raise ValueError(f"{where}: task {name!r} lacks {', '.join(missing)}")
        rows = task["rows"]
        if not isinstance(rows, list) or len(rows) != task["n"]:
            raise ValueError(f"{where}: task {name!r} has n={task['n']} but its rows do not match")
        for i, row in enumerate(rows):
            missing = [k for k in ROW_KEYS if k not in row]
            if missing:
                raise ValueError(f"{where}: task {name!r} row {i} lacks {', '.join(missing)}")
            if not isinstance(row["truth_ratio_raw"], int | float):
                raise ValueError(f"{where}: task {name!r} row {i} has a non-numeric truth ratio")


def check_comparable(evaluation: dict[str, Any], gold: dict[str, Any]) -> None:
    """Raise :class:`EvalMismatch` unless both evaluations share data, split and forget rows."""
    if evaluation["data"].get("fingerprint") != gold["data"].get("fingerprint"):
        raise EvalMismatch(
            f"the evaluations used different data: {evaluation['data']} vs gold {gold['data']}"
        )
    if evaluation["forget_split"] != gold["forget_split"]:
        raise EvalMismatch(
            f"the evaluations forget different persons: forget split "
            f"{evaluation['forget_split']!r} vs gold {gold['forget_split']!r}"
        )
    for name in forget_tasks(evaluation):
        if name not in gold["tasks"]:
            raise EvalMismatch(f"the gold evaluation has no task {name!r}")
        ids = [row["id"] for row in evaluation["tasks"][name]["rows"]]
        gold_ids = [row["id"] for row in gold["tasks"][name]["rows"]]
        if ids != gold_ids:
            raise EvalMismatch(
                f"task {name!r} scored different rows ({len(ids)} vs gold {len(gold_ids)}; "
                "was one run with --limit?)"
            )


def forget_tasks(evaluation: dict[str, Any]) -> list[str]:
    return [t.name for t in TASKS if t.kind == "forget" and t.name in evaluation["tasks"]]


def _ratios(evaluation: dict[str, Any], task: str) -> list[float]:
    return [row["truth_ratio_raw"] for row in evaluation["tasks"][task]["rows"]]


def score(evaluation: dict[str, Any], gold: dict[str, Any]) -> dict[str, Any]:
    """The ``scores.json`` payload of ``evaluation`` against the gold model's ``gold``.

    ``forget_quality`` is CLEAR's: the KS p-value between the per-row truth ratios on the
    forget captions (``forget_quality_by_task``: on every forget task, e.g. TOFU's on
    ``forget_qa``); ``forget_knowledge`` is K (spec §5); ``retain``, ``real`` and
    ``model_utility`` are harmonic means of probability, ROUGE-L recall and truth ratio over
    the retain, real and non-forget tasks; ``authors_*`` reproduce the authors' table
    (``authors_forget_quality``: 1 − JS). Without the captions (the text-only track's
    evaluation) the caption scores are None.
    """
    check_comparable(evaluation, gold)
    names = forget_tasks(evaluation)
    if not names:
        raise EvalMismatch("scoring needs at least one forget task")
    ks = {t: forget_quality_ks(_ratios(evaluation, t), _ratios(gold, t)) for t in names}
    summaries = evaluation["tasks"]
    captions = FORGET_QUALITY_TASK in summaries
    return {
        "forget_quality": ks.get(FORGET_QUALITY_TASK),
        "forget_quality_by_task": ks,
        "forget_knowledge": forget_knowledge(summaries),
        "model_utility": utility(summaries, "retain", "real"),
        "real": utility(summaries, "real"),
        "retain": utility(summaries, "retain"),
        "authors_real": authors_aggregate(summaries, "real"),
        "authors_retain": authors_aggregate(summaries, "retain"),
        "authors_forget": authors_aggregate(summaries, "forget"),
        "authors_forget_quality": authors_forget_quality(
            _ratios(evaluation, FORGET_QUALITY_TASK), _ratios(gold, FORGET_QUALITY_TASK))
        if captions else None,
    }
