"""The cross-modal leakage matrix (issue 20, item 5) as pure functions of evaluations.

Rows: one method's models unlearned on text only, on images only and on both
(:data:`MODALITIES`). Columns: the :data:`PROBES`, each one forget task that reaches the forget
persons through one route: the biography QA without image, face→name, captioning, and a text
prompt naming the person answered with the person's captions
(:data:`~clearbench.evaluation.tasks.DESCRIBE_PERSON`). A cell holds K restricted to the probe
(the four K terms of its task alone, spec §5) and P = forgetting_progress(K, K_vanilla, K_gold)
on the same probe, with person-bootstrap intervals. The paper's claim, that unlearning both
modalities forgets more, is checked cell by cell: P(both) − P(text) and P(both) − P(visual) on
the same person draws.

No model is called here: the inputs are :func:`~clearbench.evaluation.evaluate.evaluate_task`
payloads, ``{"tasks": {task name: summary with "rows"}}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from clearbench.evaluation.aggregates import forget_knowledge, forgetting_progress
from clearbench.evaluation.statistics import (
    Estimate,
    Evaluation,
    Resampler,
    interval,
    paired_difference,
    task_summaries,
)
from clearbench.evaluation.tasks import TASKS, TASKS_BY_NAME

PROBES: dict[str, str] = {
    "qa": "forget_qa",
    "face_name": "forget_face_name",
    "captioning": "forget_captions",
    "describe": "describe_person",
}
"""Column → the forget task that probes it."""
NEW_ROUTES = tuple(probe for probe, task in PROBES.items() if TASKS_BY_NAME[task] not in TASKS)
"""The probes that are no task of the evaluation (``describe``). The others are the
evaluation's own forget tasks, same rows and prompts: for the both-modality model their cells
are the headline K split by task, not another way in, so robust forgetting takes only these
(:mod:`clearbench.evaluation.worstcase`)."""
MODALITIES = ("text", "visual", "both")
"""Rows: what the method unlearned on (``clearbench unlearn --modality``)."""
REFERENCES = ("vanilla", "gold")
GREATER, SMALLER, NOT_SEPARABLE, UNDEFINED = "greater", "smaller", "not separable", "undefined"


def probe_knowledge(evaluation: Evaluation, resampler: Resampler) -> dict[str, np.ndarray]:
    """Per probe, K on its task alone: on every row (index 0) and on each replicate."""
    summaries = task_summaries(evaluation, resampler)
    return {probe: np.asarray(forget_knowledge({task: summaries[task]}), dtype=float)
            for probe, task in PROBES.items()}


def verdict(difference: Estimate, gap: Estimate) -> str:
    """``greater`` when the interval of the difference of P lies above 0, ``smaller`` when
    below, ``not separable`` when it holds 0; ``undefined`` unless the interval of the
    vanilla − gold ``gap`` (P's denominator) lies above 0: without it P measures nothing."""
    numbers = (difference.mean, difference.low, difference.high, gap.low)
    if any(math.isnan(value) for value in numbers) or gap.low <= 0:
        return UNDEFINED
    if difference.low > 0:
        return GREATER
    return SMALLER if difference.high < 0 else NOT_SEPARABLE


def estimate(draws: np.ndarray) -> dict[str, float | None]:
    """``{mean, low, high}`` of ``draws`` (index 0 the point, then the replicates); NaN as
    None (JSON)."""
    return _json(interval(float(draws[0]), draws[1:]))


def _json(value: Estimate) -> dict[str, float | None]:
    return {key: None if math.isnan(number) else number
            for key, number in value.as_dict().items()}


def crossmodal_matrix(evaluations: Mapping[str, Evaluation], replicates: int,
                      seed: int) -> dict[str, Any]:
    """The matrix from one evaluation of the probes' tasks per model of :data:`MODALITIES`
    and :data:`REFERENCES` (same rows for all): ``matrix`` (modality → probe → K and P),
    ``references`` (vanilla's and gold's K per probe), ``gap`` (K_vanilla − K_gold per probe,
    P's denominator) and ``claim`` (probe → both's P minus text's and minus visual's, each
    with its :func:`verdict`, and ``holds``: both are greater). Every
    model is scored on the same ``seed``-drawn persons, so the differences are paired."""
    resampler = Resampler(evaluations["vanilla"], replicates, seed)
    k = {name: probe_knowledge(evaluations[name], resampler)
         for name in (*MODALITIES, *REFERENCES)}
    progress = {modality: {probe: np.asarray(forgetting_progress(
                    k[modality][probe], k["vanilla"][probe], k["gold"][probe]), dtype=float)
                for probe in PROBES} for modality in MODALITIES}

    gap = {probe: k["vanilla"][probe] - k["gold"][probe] for probe in PROBES}

    def against(other: str, probe: str) -> dict[str, Any]:
        both, theirs = progress["both"][probe], progress[other][probe]
        difference = paired_difference(both[1:], theirs[1:], float(both[0] - theirs[0]))
        return {**_json(difference), "verdict": verdict(difference, interval(
            float(gap[probe][0]), gap[probe][1:]))}

    claim = {}
    for probe in PROBES:
        compared = {f"both_minus_{other}": against(other, probe) for other in ("text", "visual")}
        claim[probe] = {**compared,
                        "holds": all(c["verdict"] == GREATER for c in compared.values())}
    return {
        "matrix": {modality: {probe: {"forget_knowledge": estimate(k[modality][probe]),
                                      "progress": estimate(progress[modality][probe])}
                              for probe in PROBES} for modality in MODALITIES},
        "references": {name: {probe: estimate(k[name][probe]) for probe in PROBES}
                       for name in REFERENCES},
        "gap": {probe: estimate(gap[probe]) for probe in PROBES},
        "claim": claim,
    }
