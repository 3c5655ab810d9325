"""The relearning attack's pure parts (issue 20, item 2; docs/audits.md): the person halves,
whom a row is about, and the verdict on a model's relearning curve against gold's.

No model is called here: the verdict reads the per-row records of :func:`evaluate_task`
payloads, ``{"tasks": {task name: summary with "rows"}}``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np

from clearbench.evaluation.aggregates import forget_knowledge, forgetting_progress
from clearbench.evaluation.statistics import (
    Evaluation,
    Resampler,
    paired_difference,
    task_summaries,
)

MIN_PERSONS = 2
"""Persons the forget split needs: at least one to relearn on and one to measure on."""


def person_halves(persons: Iterable[str], seed: int) -> tuple[list[str], list[str]]:
    """(relearn half, evaluation half) of the distinct ``persons``: sorted, shuffled with
    ``seed``, the first ⌊n/2⌋ relearned on, the other ⌈n/2⌉ measured on; each half sorted."""
    names = sorted(set(persons))
    if len(names) < MIN_PERSONS:
        raise ValueError(f"the relearning attack needs at least {MIN_PERSONS} forget persons, "
                         f"one half to relearn on and one to measure on; the forget split has "
                         f"{len(names)} ({', '.join(names) or 'none'}): use a larger forget "
                         "split or more persons")
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [names[i] for i in order]
    half = len(names) // 2
    return sorted(shuffled[:half]), sorted(shuffled[half:])


def person_of(persons: Collection[str], unit: str, *texts: str) -> str | None:
    """The one person of ``persons`` a row is about: its ``unit`` (an example's ``person``, a
    task row's ``unit``) if that is one of them, else the only one whose name is in ``texts``;
    None when no person or several are named."""
    if unit in persons:
        return unit
    named = {person for person in persons if any(person in text for text in texts)}
    return named.pop() if len(named) == 1 else None


def knowledge_draws(evaluation: Evaluation, resampler: Resampler) -> np.ndarray:
    """Forget knowledge K on every row (index 0) and on each person-bootstrap replicate."""
    return np.asarray(forget_knowledge(task_summaries(evaluation, resampler)), dtype=float)


def compare_with_gold(model: Evaluation, gold: Evaluation, resampler: Resampler,
                      margin: float) -> dict[str, Any]:
    """K_model − K_gold after the same attack, with its paired person-bootstrap interval, and
    the verdict: the model *relearns faster than gold* when even the interval's low end exceeds
    ``margin``."""
    k_model, k_gold = knowledge_draws(model, resampler), knowledge_draws(gold, resampler)
    gap = paired_difference(k_model[1:], k_gold[1:], float(k_model[0] - k_gold[0]))
    return {"gap": gap.as_dict(), "faster_than_gold": bool(gap.low > margin)}


def progress_against_gold(k_model: Sequence[float], k_gold: Sequence[float],
                          k_vanilla: float) -> list[float | None]:
    """Forgetting progress along a relearning curve, step by step against gold after the same
    attack: (K_vanilla − K_model(s)) / (K_vanilla − K_gold(s)), 1 = as gold after the same
    steps (vanilla, which knows the persons, is not attacked); None where vanilla and gold
    know the same. Gold audited against itself is 1 at every step."""
    progress = [forgetting_progress(k, k_vanilla, gold) for k, gold in
                zip(k_model, k_gold, strict=True)]
    return [None if math.isnan(p) else p for p in progress]
