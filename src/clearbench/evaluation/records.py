"""Per-row records and per-task summaries of an evaluation: pure functions, no model inside.

A row record holds what the model produced for one evaluation row (its greedy answer and the
per-token mean NLL of every candidate answer) and the spec §5 metrics derived from it; a task
summary aggregates the records of one task. Both are written verbatim to ``eval.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean
from typing import Any

import numpy as np

from clearbench.evaluation.metrics import (
    fact_hit,
    knowledge_terms,
    likelihood_from_mean_nll,
    option_probability_from_mean_nlls,
    rouge_l_recall,
    truth_ratio_from_mean_nlls,
    truth_ratio_score,
)


def candidate_answers(
    target: str, paraphrased: str, perturbed: Sequence[str], *, with_options: bool
) -> tuple[str, str, list[str]]:
    """Target, paraphrased and wrong answers to score for one row.

    For option sets the wrong answers are the options other than the target (an option equal
    to the target would count the true answer twice in the option probability).
    """
    wrong = [p for p in perturbed if p != target] if with_options else list(perturbed)
    return target, paraphrased, wrong


def row_record(
    *,
    row_id: str,
    unit: str,
    generated: str,
    target: str,
    fact: str,
    question: str,
    loss_target: float,
    len_target: int,
    loss_paraphrased: float,
    loss_perturbed: Sequence[float],
    with_options: bool,
) -> dict[str, Any]:
    """The ``eval.json`` record of one row; losses are per-token mean NLLs (spec §5).

    ``prob`` is P̃(target) for free-text sets and the target's share among the options for
    option sets; ``truth_ratio_raw`` is this row's R (its own perturbed answers only);
    ``unit`` is the row's sampling unit (its person) for confidence intervals.
    """
    if not loss_perturbed:
        raise ValueError(f"row {row_id!r}: no perturbed answers or options to score against")
    if with_options:
        prob = option_probability_from_mean_nlls(loss_target, loss_perturbed)
    else:
        prob = likelihood_from_mean_nll(loss_target)
    return {
        "id": row_id,
        "unit": unit,
        "generated": generated,
        "rougeL_recall": rouge_l_recall(generated, target),
        "fact_hit": fact_hit(generated, fact, question),
        "loss_target": loss_target,
        "loss_paraphrased": loss_paraphrased,
        "loss_perturbed": list(loss_perturbed),
        "len_target": len_target,
        "prob": prob,
        "truth_ratio_raw": truth_ratio_from_mean_nlls(loss_paraphrased, loss_perturbed),
    }


def task_summary(records: Sequence[dict[str, Any]], *, forget: bool) -> dict[str, Any]:
    """Task-level numbers: means over rows, the reported truth ratio of spec §5 and
    ``truth_knowledge``, the mean max(0, 1 − R) that Forget knowledge uses."""
    if not records:
        raise ValueError("a task summary needs at least one row")
    ratios = [r["truth_ratio_raw"] for r in records]
    return {
        "n": len(records),
        "rougeL_recall": fmean(r["rougeL_recall"] for r in records),
        "fact_accuracy": fmean(float(r["fact_hit"]) for r in records),
        "probability": fmean(r["prob"] for r in records),
        "truth_ratio": truth_ratio_score(ratios, forget=forget),
        "truth_knowledge": float(np.mean(knowledge_terms(ratios))),
    }
