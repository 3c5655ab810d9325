"""The memorisation gate: did fine-tuning really teach the model the persons?

An unlearning result only means something if the vanilla model knew the forget persons to
begin with, and the gold model never did. The gate generates greedily (conditioned on the
image) for the forget and retain persons' QA, captions and face→name rows and scores
ROUGE-L recall and fact accuracy (spec §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from clearbench.data.examples import Example
from clearbench.data.loading import DataSource, load_clear, load_tofu
from clearbench.data.prompts import FACE_NAME_PROMPT, caption_prompt
from clearbench.evaluation.metrics import fact_hit, rouge_l_recall
from clearbench.models.vlm import VLM

VANILLA_THRESHOLD = 0.9
"""Every gate metric of a vanilla model must reach this (issue: memorisation gate)."""
GOLD_FORGET_NAME_CEILING = 0.1
"""A gold model may name at most this share of the forget persons' faces (≈ chance)."""


@dataclass(frozen=True)
class GateRow:
    example: Example
    fact: str
    """Text whose key terms must appear in the generation (the answer, or the name)."""
    question: str = ""
    """Text the key terms are not taken from (the question that is already in the prompt)."""


def gate_rows(source: DataSource, forget_split: str) -> dict[str, list[GateRow]]:
    """The rows the gate generates for, keyed by task name."""
    rows: dict[str, list[GateRow]] = {}
    for side, config in (("forget", f"{forget_split}_perturbed"), ("retain", "retain_perturbed")):
        qa = load_tofu(source, config)
        rows[f"{side}_qa"] = [
            GateRow(
                Example(r["question"], r["answer"], None, f"tofu/{config}/{i}"),
                fact=r["answer"],
                question=r["question"],
            )
            for i, r in enumerate(qa)
        ]
        faces = load_clear(source, config)
        rows[f"{side}_captions"] = [
            GateRow(
                Example(caption_prompt(r["caption"]), r["caption"], r["image"], f"{config}/{i}"),
                fact=r["name"],
            )
            for i, r in enumerate(faces)
        ]
        rows[f"{side}_face_name"] = [
            GateRow(
                Example(FACE_NAME_PROMPT, r["name"], r["image"], f"{config}/{i}"),
                fact=r["name"],
                question=FACE_NAME_PROMPT,
            )
            for i, r in enumerate(faces)
        ]
    return rows


def memorisation_report(
    vlm: VLM,
    source: DataSource,
    *,
    forget_split: str = "forget10",
    role: str = "vanilla",
    batch_size: int = 16,
    max_new_tokens: int = 32,
) -> dict:
    """Generate for every gate row and return per-task scores plus a pass/fail verdict.

    ``role`` is ``vanilla`` (every score must reach :data:`VANILLA_THRESHOLD`) or ``gold``
    (the retain scores must, and forget face→name accuracy must stay near chance).
    """
    if role not in ("vanilla", "gold"):
        raise ValueError(f"role must be 'vanilla' or 'gold', got {role!r}")
    tasks: dict[str, dict[str, float]] = {}
    for task, rows in gate_rows(source, forget_split).items():
        generated = vlm.generate(
            [row.example for row in rows], max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        tasks[task] = {
            "n": len(rows),
            "rougeL_recall": fmean(
                rouge_l_recall(g, row.example.answer) for g, row in zip(generated, rows, strict=True)
            ),
            "fact_accuracy": fmean(
                fact_hit(g, row.fact, row.question)
                for g, row in zip(generated, rows, strict=True)
            ),
        }
    failures = gate_failures(tasks, role)
    return {
        "role": role,
        "forget_split": forget_split,
        "tasks": tasks,
        "passed": not failures,
        "failures": failures,
    }


def gate_failures(tasks: dict[str, dict[str, float]], role: str) -> list[str]:
    """Human-readable reasons the gate fails (empty when it passes)."""
    failures = []
    for task, scores in tasks.items():
        must_know = role == "vanilla" or task.startswith("retain")
        metrics = ["fact_accuracy"] if task.endswith("face_name") else ["rougeL_recall", "fact_accuracy"]
        if must_know:
            failures += [
                f"{task} {m} = {scores[m]:.3f} < {VANILLA_THRESHOLD}"
                for m in metrics
                if scores[m] < VANILLA_THRESHOLD
            ]
    if role == "gold":
        accuracy = tasks["forget_face_name"]["fact_accuracy"]
        if accuracy > GOLD_FORGET_NAME_CEILING:
            failures.append(
                f"gold model names {accuracy:.3f} of forget faces (> {GOLD_FORGET_NAME_CEILING}):"
                " it knows persons it never saw"
            )
    return failures
