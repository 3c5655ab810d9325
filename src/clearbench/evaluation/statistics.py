"""Uncertainty of the scores (spec §7) as pure functions of ``eval.json`` payloads.

Persons are the sampling unit: a bootstrap replicate resamples, with replacement, the units of
each group of tasks that share them (the forget persons across the forget tasks, the retain
persons across the retain tasks; real-knowledge tasks each on their own) and recomputes every
score from the rows of the drawn units. Every model of a run is scored on the same draws, so
differences between models are paired. When a model ran with several seeds, each replicate
also resamples the seeds (a two-stage bootstrap), so the interval holds both sources of
spread. Intervals are 95 % percentile intervals.

No model is called here: the inputs are the per-row records that :mod:`.records` wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clearbench.evaluation.aggregates import (
    authors_aggregate,
    authors_forget_quality,
    forget_knowledge,
    forgetting_progress,
    utility,
)
from clearbench.evaluation.metrics import forget_quality_ks, knowledge_terms, truth_ratio_terms
from clearbench.evaluation.tasks import TASKS_BY_NAME
from clearbench.intervals import percentile_interval

REPLICATES = 1000
LEVEL = 0.95
FORGET_QUALITY_TASKS = {"forget_quality": "forget_captions", "forget_quality_qa": "forget_qa"}
"""The KS forget quality (CLEAR's, on the captions) and the same test on the QA rows."""
HEADLINE = ("forget_knowledge", "forgetting_progress", "retain", "real", "model_utility",
            "forget_quality")
"""The headline scores of a model (issue: results that mean something), in table order."""
AUTHORS = ("authors_real", "authors_retain", "authors_forget", "authors_forget_quality")
"""The authors' convention (spec §5), for comparison with the published table."""
SCORES = (*HEADLINE, "forget_quality_qa", *AUTHORS)

Evaluation = Mapping[str, Any]
"""An ``eval.json`` payload."""


@dataclass(frozen=True)
class Estimate:
    """A score's point estimate (mean over seeds of the score on every row) and its interval."""

    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def interval(point: float, replicates: np.ndarray, level: float = LEVEL) -> Estimate:
    """The percentile interval of ``replicates`` around ``point`` (replicates that are NaN,
    e.g. progress where vanilla and gold tie, are left out; all NaN gives a NaN interval)."""
    return Estimate(point, *percentile_interval(replicates, level))


def row_values(task: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The per-row numbers every score is a weighted mean of (or, for ``R``, a test on)."""
    ratios = np.array([row["truth_ratio_raw"] for row in rows], dtype=float)
    return {
        "probability": np.array([row["prob"] for row in rows], dtype=float),
        "rougeL_recall": np.array([row["rougeL_recall"] for row in rows], dtype=float),
        "fact_accuracy": np.array([float(row["fact_hit"]) for row in rows], dtype=float),
        "truth_ratio": truth_ratio_terms(ratios, forget=TASKS_BY_NAME[task].kind == "forget"),
        "truth_knowledge": knowledge_terms(ratios),
        "R": ratios,
    }


class Resampler:
    """The unit draws of a run: per task, a ``(replicates + 1, rows)`` weight matrix whose
    first row is all ones (the point estimate) and whose others count how often each row's
    unit was drawn. Built once from the rows of one evaluation; every evaluation of the same
    data has the same rows and units (checked by :func:`weights`)."""

    def __init__(self, evaluation: Evaluation, replicates: int = REPLICATES, seed: int = 0,
                 seeds: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.replicates = replicates
        self.units: dict[str, list[str]] = {
            name: [row["unit"] for row in task["rows"]]
            for name, task in evaluation["tasks"].items()
        }
        groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for name, units in self.units.items():
            kind = TASKS_BY_NAME[name].kind
            key = (kind if kind != "real" else name, tuple(sorted(set(units))))
            groups.setdefault(key, []).append(name)
        self._weights: dict[str, np.ndarray] = {}
        for (_, units), names in sorted(groups.items()):
            counts = rng.multinomial(len(units), [1 / len(units)] * len(units), size=replicates)
            index = {unit: i for i, unit in enumerate(units)}
            for name in names:
                columns = [index[unit] for unit in self.units[name]]
                drawn = counts[:, columns].astype(float)
                self._weights[name] = np.vstack([np.ones(len(columns)), drawn])
        self.seed_draws = rng.integers(0, seeds, size=(replicates, seeds)) if seeds > 1 else None
        """For each replicate, the seeds drawn (indices into a model's seeds)."""

    def weights(self, evaluation: Evaluation, task: str) -> np.ndarray:
        units = [row["unit"] for row in evaluation["tasks"][task]["rows"]]
        if units != self.units.get(task):
            raise ValueError(f"task {task!r}: rows or units differ between the evaluations; "
                             "confidence intervals need the same rows for every model")
        return self._weights[task]


def task_summaries(evaluation: Evaluation, resampler: Resampler) -> dict[str, dict[str, Any]]:
    """Task → metric → ``(replicates + 1,)`` weighted means (index 0: every row once)."""
    out: dict[str, dict[str, Any]] = {}
    for name, task in evaluation["tasks"].items():
        weights = resampler.weights(evaluation, name)
        values = row_values(name, task["rows"])
        total = weights.sum(axis=1)
        out[name] = {metric: weights @ column / total
                     for metric, column in values.items() if metric != "R"}
    return out


def paired_ks_pvalues(ratios: np.ndarray, gold_ratios: np.ndarray,
                      counts: np.ndarray) -> np.ndarray:
    """KS p-values between ``ratios`` and ``gold_ratios`` (row-aligned) with each row taken
    ``counts[b, i]`` times, for every replicate b at once.

    Both samples have the same size N_b, so the statistic is a multiple k/N_b and its p-value
    (scipy's exact two-sample test) depends only on (k, N_b): each distinct pair is computed
    once, on two samples of size N_b that differ by exactly k. Equal to ``ks_2samp`` on the
    repeated rows (tested).
    """
    ratios, gold_ratios = np.asarray(ratios, dtype=float), np.asarray(gold_ratios, dtype=float)
    counts = np.asarray(counts, dtype=float)
    points = np.concatenate([ratios, gold_ratios])
    sizes = counts.sum(axis=1)
    below = (ratios[:, None] <= points[None, :]).astype(float)
    gold_below = (gold_ratios[:, None] <= points[None, :]).astype(float)
    statistic = np.max(np.abs(counts @ below - counts @ gold_below), axis=1)
    steps = np.rint(statistic).astype(int)  # N_b · D_b, an integer
    cache: dict[tuple[int, int], float] = {}
    pvalues = np.empty(len(steps))
    for b, key in enumerate(zip(steps, sizes.astype(int), strict=True)):
        if key not in cache:
            k, n = key
            cache[key] = forget_quality_ks(np.arange(n), np.arange(n) + k) if n else float("nan")
        pvalues[b] = cache[key]
    return pvalues


def _truth_ratios(evaluation: Evaluation, task: str) -> np.ndarray:
    return np.array([row["truth_ratio_raw"] for row in evaluation["tasks"][task]["rows"]],
                    dtype=float)


def _ks_replicates(evaluation: Evaluation, gold: Evaluation, task: str,
                   resampler: Resampler) -> np.ndarray:
    """The KS p-value of R against gold's on the same drawn rows, per replicate."""
    return paired_ks_pvalues(_truth_ratios(evaluation, task), _truth_ratios(gold, task),
                             resampler.weights(evaluation, task))


def _js_replicates(evaluation: Evaluation, gold: Evaluation, task: str,
                   resampler: Resampler) -> np.ndarray:
    """The authors' 1 − JS of R against gold's on the same drawn rows, per replicate."""
    ratios, gold_ratios = _truth_ratios(evaluation, task), _truth_ratios(gold, task)
    counts = resampler.weights(evaluation, task).astype(int)
    return np.array([
        authors_forget_quality(np.repeat(ratios, c), np.repeat(gold_ratios, c)) for c in counts
    ])


def score_replicates(evaluation: Evaluation, vanilla: Evaluation, gold: Evaluation,
                     resampler: Resampler) -> dict[str, np.ndarray]:
    """Every score of :data:`SCORES` that the evaluation allows, as ``(replicates + 1,)``
    arrays (index 0: the score on every row) on the resampler's draws."""
    summaries = task_summaries(evaluation, resampler)
    k = forget_knowledge(summaries)
    k_vanilla = forget_knowledge(task_summaries(vanilla, resampler))
    k_gold = forget_knowledge(task_summaries(gold, resampler))
    scores: dict[str, Any] = {
        "forget_knowledge": k,
        "forgetting_progress": forgetting_progress(k, k_vanilla, k_gold),
        "retain": utility(summaries, "retain"),
        "real": utility(summaries, "real"),
        "model_utility": utility(summaries, "retain", "real"),
        "authors_real": authors_aggregate(summaries, "real"),
        "authors_retain": authors_aggregate(summaries, "retain"),
        "authors_forget": authors_aggregate(summaries, "forget"),
    }
    for name, task in FORGET_QUALITY_TASKS.items():
        if task in evaluation["tasks"]:
            scores[name] = _ks_replicates(evaluation, gold, task, resampler)
    if "forget_captions" in evaluation["tasks"]:
        scores["authors_forget_quality"] = _js_replicates(evaluation, gold, "forget_captions",
                                                          resampler)
    return {name: np.asarray(value, dtype=float) for name, value in scores.items()
            if value is not None}


def combine_seeds(per_seed: Sequence[Mapping[str, np.ndarray]],
                  resampler: Resampler) -> dict[str, tuple[Estimate, np.ndarray]]:
    """Each score's estimate over a model's seeds: the point is the mean of the seeds' points;
    each replicate averages the seeds the resampler drew for it (on that replicate's person
    draws). Returns the estimate and the ``(replicates,)`` replicate values."""
    out = {}
    for name in per_seed[0]:
        values = np.vstack([seed[name] for seed in per_seed])  # (seeds, replicates + 1)
        point = float(np.mean(values[:, 0]))
        draws = values[:, 1:]
        if len(per_seed) > 1:
            if resampler.seed_draws is None:
                raise ValueError("the resampler was built for one seed")
            # A model with fewer seeds than the run (some diverged) maps the draws onto its own.
            picked = resampler.seed_draws.T % len(per_seed)
            draws = np.mean(draws[picked, np.arange(draws.shape[1])], axis=0)
        else:
            draws = draws[0]
        out[name] = (interval(point, draws), draws)
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, point: float) -> Estimate:
    """The interval of a − b from replicates on the same draws (same persons, same seeds)."""
    return interval(point, np.asarray(a) - np.asarray(b))

