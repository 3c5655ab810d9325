"""The aggregate scores of spec §5 as pure functions of task summaries.

A task summary maps metric names (``probability``, ``rougeL_recall``, ``fact_accuracy``,
``truth_ratio``, ``truth_knowledge``) to numbers; every function here works element-wise on
floats or on equally shaped numpy arrays alike, so :mod:`clearbench.evaluation.statistics`
runs the very same definitions on bootstrap replicates.

Headline (ours): Forget knowledge K and Forgetting progress P; Retain, Real and Model utility
are harmonic means of probability, ROUGE-L recall and truth ratio over the retain / real /
non-forget tasks. The authors' convention (``mm/build_vllm_table.py``) is kept apart, labelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from clearbench.evaluation.metrics import forget_quality_js, harmonic_mean
from clearbench.evaluation.tasks import TASKS_BY_NAME

Value = TypeVar("Value", float, np.ndarray)
Summaries = Mapping[str, Mapping[str, Value]]
"""Task name → metric name → value (a float, or an array of bootstrap replicates)."""

KNOWLEDGE_METRICS = ("probability", "rougeL_recall", "fact_accuracy", "truth_knowledge")
"""The four terms of K on each forget task: each falls as knowledge goes."""
UTILITY_METRICS = ("probability", "rougeL_recall", "truth_ratio")
"""The three numbers per task that Retain, Real and MU combine (spec §5)."""
AUTHORS_METRICS = ("probability", "truth_ratio")
"""The authors' table uses probability and truth ratio only (spec §5, authors' convention)."""
AUTHORS_TASKS = {
    "real": ("real_faces", "real_world"),
    "retain": ("retain_captions", "retain_face_name"),
    "forget": ("forget_captions", "forget_face_name"),
}
"""The image tasks behind the authors' Real, Retain and Forget."""


def tasks_of(summaries: Summaries, *kinds: str) -> list[str]:
    """The tasks of ``summaries`` whose kind (forget, retain, real) is one of ``kinds``."""
    return [name for name in summaries if TASKS_BY_NAME[name].kind in kinds]


def _terms(summaries: Summaries, tasks: Sequence[str], metrics: Sequence[str]) -> list[Value]:
    return [summaries[task][metric] for task in tasks for metric in metrics]


def forget_knowledge(summaries: Summaries) -> Value:
    """K: arithmetic mean over the forget tasks of probability, ROUGE-L recall, fact accuracy
    and mean max(0, 1 − R). Every term falls as knowledge goes (lower = forgot more)."""
    terms = _terms(summaries, tasks_of(summaries, "forget"), KNOWLEDGE_METRICS)
    if not terms:
        raise ValueError("forget knowledge needs at least one forget task")
    result = np.mean(np.asarray(terms, dtype=float), axis=0)
    return result if result.ndim else float(result)


def forgetting_progress(k: Value, k_vanilla: Value, k_gold: Value) -> Value:
    """P = (K_vanilla − K) / (K_vanilla − K_gold): 0 = nothing forgotten, 1 = gold's level,
    > 1 = forgot more than never having seen the persons. NaN where vanilla and gold know the
    same (no gap to measure progress on)."""
    gap = np.asarray(k_vanilla, dtype=float) - np.asarray(k_gold, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(np.abs(gap) > 1e-12, (np.asarray(k_vanilla) - np.asarray(k)) / gap,
                          np.nan)
    return result if result.ndim else float(result)


def utility(summaries: Summaries, *kinds: str) -> Value | None:
    """Harmonic mean of probability, ROUGE-L recall and truth ratio over the tasks of these
    kinds (Retain: retain; Real: real; MU: retain and real); None when there is no such task."""
    terms = _terms(summaries, tasks_of(summaries, *kinds), UTILITY_METRICS)
    return harmonic_mean(terms) if terms else None


def authors_aggregate(summaries: Summaries, which: str) -> Value | None:
    """The authors' Real, Retain or Forget (``which``): the harmonic mean of probability and
    truth ratio on their two image tasks (forget truth ratio = mean min(R, 1/R)); None unless
    both tasks were evaluated."""
    tasks = AUTHORS_TASKS[which]
    if any(task not in summaries for task in tasks):
        return None
    return harmonic_mean(_terms(summaries, tasks, AUTHORS_METRICS))


def authors_forget_quality(ratios: Sequence[float], gold_ratios: Sequence[float]) -> float:
    """The authors' FQ (CLEAR v4): 1 − ``scipy.spatial.distance.jensenshannon`` (natural log)
    between the row-aligned vectors of 1/R of the model and of gold, each normalised to sum 1
    (``mm/calculate_metrics.py``, with per-row rather than per-split ratios)."""
    inverse = [1.0 / r if r > 0 else math.inf for r in ratios]
    gold_inverse = [1.0 / r if r > 0 else math.inf for r in gold_ratios]
    return forget_quality_js(inverse, gold_inverse, base=math.e)
