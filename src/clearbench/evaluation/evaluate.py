"""Run one evaluation task on a model: greedy generation and candidate likelihoods per row.

The model calls live here; every number derived from them comes from the pure functions of
:mod:`clearbench.evaluation.records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from tqdm.auto import tqdm

from clearbench.data.examples import Example
from clearbench.evaluation.records import candidate_answers, row_record, task_summary
from clearbench.evaluation.tasks import Task, TaskRow
from clearbench.training.distributed import ONE_PROCESS, Shard


class Evaluable(Protocol):
    """What a task needs from a model: :class:`~clearbench.models.vlm.VLM` (fast) or
    :class:`~clearbench.evaluation.reference.NaiveVLM` (the naive reference)."""

    def generate_and_score(
        self,
        examples: Sequence[Example],
        answers: Sequence[Sequence[str]],
        *,
        max_new_tokens: int,
        batch_size: int,
    ) -> tuple[list[str], list[list[tuple[float, int]]]]: ...


@dataclass(frozen=True)
class EvalSettings:
    """What an evaluation depends on besides model and data (recorded in ``eval.json``)."""

    batch_size: int = 32
    max_new_tokens: int = 32
    seed: int = 0
    limit: int | None = None
    """Score only the first ``limit`` rows of each task (None: every row, spec §4)."""

    def validate(self) -> None:
        for name in ("batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1 (or unset), got {self.limit}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_task(
    vlm: Evaluable, task: Task, rows: Sequence[TaskRow], settings: EvalSettings,
    shard: Shard = ONE_PROCESS,
) -> dict[str, Any]:
    """Task summary plus one record per row (see :func:`~.records.row_record`).

    Rows go through the model ``batch_size`` at a time: batched greedy generation with the KV
    cache, whose prefill of image and prompt is then reused to score every candidate answer.
    Under a multi-process launch each process scores every ``world``-th batch and the batches
    are gathered back in order: the same batches as one process, so the same numbers.
    """
    starts = range(0, len(rows), settings.batch_size)
    mine: dict[int, list[dict[str, Any]]] = {}
    with tqdm(total=len(rows), desc=task.name, unit="row", dynamic_ncols=True,
              disable=shard.rank != 0) as progress:
        for index in shard.take(len(starts)):
            chunk = rows[starts[index] : starts[index] + settings.batch_size]
            mine[index] = _score_chunk(vlm, task, chunk, settings)
            progress.update(len(chunk) * shard.world)
    every = shard.gather(mine)
    records = [record for index in range(len(starts)) for record in every[index]]
    return task_summary(records, forget=task.kind == "forget") | {"rows": records}


def _score_chunk(
    vlm: Evaluable, task: Task, rows: Sequence[TaskRow], settings: EvalSettings
) -> list[dict[str, Any]]:
    examples = [Example(row.prompt, row.target, row.image, row.id) for row in rows]
    answers = [
        candidate_answers(r.target, r.paraphrased, r.perturbed, with_options=task.with_options)
        for r in rows
    ]
    # Score each distinct string once (on face→name rows the "paraphrase" is the name itself).
    unique = [list(dict.fromkeys([target, paraphrased, *wrong]))
              for target, paraphrased, wrong in answers]
    generated, nlls = vlm.generate_and_score(
        examples, unique, max_new_tokens=settings.max_new_tokens, batch_size=len(examples)
    )
    records = []
    for row, text, (target, paraphrased, wrong), strings, scores in zip(
        rows, generated, answers, unique, nlls, strict=True
    ):
        scored = dict(zip(strings, scores, strict=True))
        records.append(
            row_record(
                row_id=row.id,
                unit=row.unit,
                generated=text,
                target=row.target,
                fact=row.fact,
                question=row.question,
                loss_target=scored[target][0],
                len_target=scored[target][1],
                loss_paraphrased=scored[paraphrased][0],
                loss_perturbed=[scored[answer][0] for answer in wrong],
                with_options=task.with_options,
            )
        )
    return records
