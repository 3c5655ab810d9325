"""The memorisation gate: did fine-tuning really teach the model the persons?

An unlearning result only means something if the vanilla model knew the forget persons to
begin with, and the gold model never did. The gate generates greedily (conditioned on the
image) for the forget and retain persons' QA, captions and face→name rows and scores
ROUGE-L recall and fact accuracy (spec §5).
"""

from __future__ import annotations

from statistics import fmean

from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.evaluation.metrics import fact_hit, rouge_l_recall
from clearbench.evaluation.tasks import TASKS_BY_NAME
from clearbench.models.vlm import VLM

VANILLA_THRESHOLD = 0.9
"""Every gate metric of a vanilla model must reach this (issue: memorisation gate)."""
GOLD_FORGET_NAME_CEILING = 0.1
"""A gold model may name at most this share of the forget persons' faces (≈ chance)."""


GATE_TASKS = (
    "forget_qa",
    "retain_qa",
    "forget_captions",
    "retain_captions",
    "forget_face_name",
    "retain_face_name",
)
TEXT_GATE_TASKS = ("forget_qa", "retain_qa")
"""The gate of a model fine-tuned on text alone (the text-only track)."""


def memorisation_report(
    vlm: VLM,
    source: DataSource,
    *,
    forget_split: str = "forget10",
    role: str = "vanilla",
    tasks: tuple[str, ...] = GATE_TASKS,
    batch_size: int = 16,
    max_new_tokens: int = 32,
) -> dict:
    """Generate for every row of the gate's ``tasks`` and return per-task scores plus a
    pass/fail verdict.

    ``role`` is ``vanilla`` (every score must reach :data:`VANILLA_THRESHOLD`) or ``gold``
    (the retain scores must, and forget face→name accuracy must stay near chance).
    """
    if role not in ("vanilla", "gold"):
        raise ValueError(f"role must be 'vanilla' or 'gold', got {role!r}")
    scores: dict[str, dict[str, float]] = {}
    for task in tasks:
        rows = TASKS_BY_NAME[task].rows(source, forget_split)
        generated = vlm.generate(
            [Example(row.prompt, row.target, row.image, row.id) for row in rows],
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
        )
        scores[task] = {
            "n": len(rows),
            "rougeL_recall": fmean(
                rouge_l_recall(g, row.target) for g, row in zip(generated, rows, strict=True)
            ),
            "fact_accuracy": fmean(
                fact_hit(g, row.fact, row.question)
                for g, row in zip(generated, rows, strict=True)
            ),
        }
    failures = gate_failures(scores, role)
    return {
        "role": role,
        "forget_split": forget_split,
        "tasks": scores,
        "passed": not failures,
        "failures": failures,
    }


def gate_failures(tasks: dict[str, dict[str, float]], role: str) -> list[str]:
    """Human-readable reasons the gate fails (empty when it passes)."""
    failures = []
    for task, scores in tasks.items():
        must_know = role == "vanilla" or task.startswith("retain")
        face_task = task.endswith("face_name")
        metrics = ["fact_accuracy"] if face_task else ["rougeL_recall", "fact_accuracy"]
        if must_know:
            failures += [
                f"{task} {m} = {scores[m]:.3f} < {VANILLA_THRESHOLD}"
                for m in metrics
                if scores[m] < VANILLA_THRESHOLD
            ]
    if role == "gold" and "forget_face_name" in tasks:
        accuracy = tasks["forget_face_name"]["fact_accuracy"]
        if accuracy > GOLD_FORGET_NAME_CEILING:
            failures.append(
                f"gold model names {accuracy:.3f} of forget faces (> {GOLD_FORGET_NAME_CEILING}):"
                " it knows persons it never saw"
            )
    return failures
