"""Robustness of forgetting (issue 20, item 4): the conditions under which the robustness audit
measures forget knowledge K, as pure functions of task rows and task summaries.

- ``as_is``: the forget tasks as the evaluation runs them (spec §4);
- one condition per image perturbation of :mod:`clearbench.data.perturb`: the image forget
  tasks' images perturbed (seeded per row), the text QA task unchanged;
- ``held_out_wording``: every forget row prompted in a wording CLEAR-mini never trains on;
- ``sampled``: several answers per row sampled at a temperature; a row counts as known when
  *any* sample states its fact (:func:`best_of_samples`).

Only what a condition names changes: targets, candidate answers and the key terms a fact hit
checks stay those of the evaluation, so every K is comparable with ``as_is``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from statistics import fmean
from typing import Any

from clearbench.data.perturb import PERTURBATIONS, perturb, stable_rng
from clearbench.evaluation.aggregates import Summaries, forget_knowledge, forgetting_progress
from clearbench.evaluation.metrics import fact_hit, rouge_l_recall
from clearbench.evaluation.tasks import TASKS_BY_NAME, TaskRow

AS_IS = "as_is"
HELD_OUT_WORDING = "held_out_wording"
SAMPLED = "sampled"
CONDITIONS: tuple[str, ...] = (AS_IS, *PERTURBATIONS, HELD_OUT_WORDING, SAMPLED)
"""Every condition of the audit, in the order it reports them."""

HELD_OUT_PROMPTS: dict[str, tuple[str, ...]] = {
    "forget_captions": (
        "Can you describe this photograph?",
        "Tell me about this picture.",
        "Provide a one-sentence caption for the photo.",
        "What can be seen in this image?",
    ),
    "forget_face_name": (
        "Who is the person in this image?",
        "What is the name of the person shown here?",
    ),
}
"""Prompts of the image forget tasks that no training or unlearning data uses: paraphrases of
the captioning request (:data:`~clearbench.data.prompts.CAPTION_PROMPTS` are all trained) and
questions for the name (the face→name prompt is a trained completion). The QA task's held-out
wording is the data's own: each row's ``paraphrased_question``."""

Rows = Mapping[str, Sequence[TaskRow]]
"""Task name → the task's rows."""


def is_image_task(task: str) -> bool:
    return TASKS_BY_NAME[task].dataset == "clear"


def perturbed_rows(rows: Rows, name: str, seed: int) -> dict[str, list[TaskRow]]:
    """The image tasks' rows with every image under perturbation ``name``, drawn per
    (``seed``, row id); the text tasks are left out (unchanged)."""
    return {task: [replace(row, image=perturb(row.image, name, seed, row.id))
                   for row in task_rows]
            for task, task_rows in rows.items() if is_image_task(task)}


def held_out_rows(
    rows: Rows, questions: Sequence[str] | None, seed: int
) -> dict[str, list[TaskRow]]:
    """The rows prompted in held-out wordings: image rows with one of the task's
    :data:`HELD_OUT_PROMPTS`, drawn per (``seed``, row id); QA rows with ``questions`` (the
    rows' held-out questions, in order), left out when None. Only the prompt changes."""
    def prompt(task: str, row: TaskRow) -> str:
        options = HELD_OUT_PROMPTS[task]
        return options[int(stable_rng("wording", seed, row.id).integers(len(options)))]

    changed = {task: [replace(row, prompt=prompt(task, row)) for row in task_rows]
               for task, task_rows in rows.items() if task in HELD_OUT_PROMPTS}
    if questions is not None:
        changed |= {task: [replace(row, prompt=question)
                           for row, question in zip(task_rows, questions, strict=True)]
                    for task, task_rows in rows.items() if not is_image_task(task)}
    return changed


def best_of_samples(
    summary: Mapping[str, Any], rows: Sequence[TaskRow], samples: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """A task summary under sampled decoding: ``fact_accuracy`` is the share of rows where any
    sample states the row's fact (:func:`~clearbench.evaluation.metrics.fact_hit`),
    ``rougeL_recall`` the mean over rows of the best sample's; the likelihood terms do not
    depend on decoding and are ``summary``'s. Adds ``sample_fact_rate``, the share of all
    samples that state the fact, and ``greedy_fact_accuracy``, ``summary``'s."""
    hits = [[fact_hit(text, row.fact, row.question) for text in texts]
            for row, texts in zip(rows, samples, strict=True)]
    return {
        **summary,
        "fact_accuracy": fmean(any(row_hits) for row_hits in hits),
        "rougeL_recall": fmean(max(rouge_l_recall(text, row.target) for text in texts)
                               for row, texts in zip(rows, samples, strict=True)),
        "sample_fact_rate": fmean(hit for row_hits in hits for hit in row_hits),
        "greedy_fact_accuracy": summary["fact_accuracy"],
    }


def condition_results(
    summaries: Mapping[str, Summaries],
    references: Mapping[str, Mapping[str, Summaries]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per condition: forget knowledge K, its change from ``as_is`` (> 0: knowledge came back)
    and each forget task's fact accuracy (under ``sampled`` also the greedy one and the
    per-sample rate); with ``references`` (``vanilla`` and ``gold``'s summaries under the same
    conditions) also their K and forgetting progress P = forgetting_progress(K, K_vanilla,
    K_gold) (None where vanilla and gold know the same)."""
    knowledge = {condition: forget_knowledge(s) for condition, s in summaries.items()}
    results = {}
    for condition, tasks in summaries.items():
        result: dict[str, Any] = {
            "forget_knowledge": knowledge[condition],
            "change": knowledge[condition] - knowledge[AS_IS],
            **{key: {task: s[key] for task, s in tasks.items()}
               for key in ("fact_accuracy", "greedy_fact_accuracy", "sample_fact_rate")
               if all(key in s for s in tasks.values())},
        }
        if references is not None:
            k = {name: forget_knowledge(reference[condition])
                 for name, reference in references.items()}
            progress = forgetting_progress(knowledge[condition], k["vanilla"], k["gold"])
            result |= {"forget_knowledge_vanilla": k["vanilla"],
                       "forget_knowledge_gold": k["gold"],
                       "progress": None if math.isnan(progress) else progress}
        results[condition] = result
    return results
