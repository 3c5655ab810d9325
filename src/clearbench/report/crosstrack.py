"""Do the methods' rankings transfer between tracks? Numbers from a results payload, no I/O.

Each track scores each method by its forgetting progress P, the headline. P is comparable
across tracks because each track normalises by its own vanilla → gold gap: 0 = as vanilla,
1 = as gold, whatever the model, data or metric.

- multimodal: ``results["summary"]``, methods at ``run.main_variant`` with both modalities
  unlearned, on the run's first forget split; P = ``scores.forgetting_progress.mean``, its
  bootstrap replicates ``replicates.forgetting_progress``.
- text: ``results["text"]["summary"]``, methods at the block's ``main_variant`` (modality
  ``text``), on its ``forget_split``; P as above.
- vision: ``results["cv"]["rows"]``; forget accuracy a (mean over the replicas), P =
  (a_vanilla − a) / (a_vanilla − a_gold) (none where vanilla and gold tie). Replicate b draws
  the replica indices with replacement (a seeded numpy Generator, the same indices for the
  vanilla, gold and method rows: paired) and recomputes P from the drawn replicas' mean
  accuracies; as many replicates as the other tracks have. CV ``neggrad`` is ``ga``; other
  methods keep their names.

A track takes part when the results have it and it ran at least one method.

Ranks: 1 = the highest P (most forgetting), ties share the average rank. Spearman's ρ of a pair
of tracks is taken over the methods both score (at least :data:`MIN_METHODS`; the others are
listed as left out), its interval is the percentile interval of ρ_b, ρ on replicate b of each
track: the tracks' replicates are paired by index (independent draws, so replicate b of the pair
is a draw of both; the shorter sets the count), and a replicate in which a compared method has
no value, or in which either track ranks every method alike, is dropped (counted as such).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from clearbench.intervals import percentile_interval
from clearbench.report.results import (
    Interval,
    Series,
    estimate,
    find_entry,
    finite,
    forget_splits,
    main_variant,
    methods,
    of_split,
    series,
)

PROGRESS = "forgetting_progress"
MIN_METHODS = 3
CV_NAMES = {"neggrad": "ga"}
"""Vision-only methods that have another name in the LLM tracks."""
PAIRS = (("text", "multimodal"), ("vision", "multimodal"), ("text", "vision"))
PUBLISHED_RHO = {("text", "multimodal"): 0.7, ("vision", "multimodal"): 0.2}
"""Spearman's ρ between the tracks' rankings in the CLEAR paper."""
SEED = 0
"""The seed of the vision track's replica draws."""


@dataclass(frozen=True)
class Track:
    """One track's P per method; ``unscored``: the methods it ran that have no P."""

    name: str
    source: str
    progress: dict[str, Series]
    unscored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """Spearman's ρ of two tracks' P over the ``compared`` methods; ``kept`` of ``draws``
    paired replicates gave ρ_b."""

    pair: tuple[str, str]
    compared: tuple[str, ...]
    left_out: tuple[str, ...]
    rho: Interval
    kept: int
    draws: int


def _progress_track(name: str, source: str, entries: list[dict[str, Any]],
                    variant: str | None, modality: str) -> Track:
    progress, unscored = {}, []
    for method in methods(entries):
        entry = find_entry(entries, method, variant, modality)
        point = estimate(entry, PROGRESS).mean
        if point is not None:
            found = series(entry, PROGRESS)
            progress[method] = Series(point, found.replicates if found else ())
        elif entry is not None:
            unscored.append(method)
    return Track(name, source, progress, tuple(unscored))


def multimodal_track(results: dict[str, Any]) -> Track:
    split, variant = next(iter(forget_splits(results)), None), main_variant(results)
    return _progress_track("multimodal", f"{split}, variant {variant}, both modalities",
                           of_split(results["summary"], split), variant, "both")


def text_track(results: dict[str, Any]) -> Track | None:
    text = results.get("text")
    if text is None:
        return None
    split, variant = text.get("forget_split"), text.get("main_variant")
    return _progress_track("text", f"{split}, variant {variant}",
                           of_split(text["summary"], split), variant, "text")


def cv_progress(rows: list[dict[str, Any]], draws: int, seed: int = SEED) -> dict[str, Series]:
    """P of every vision-only method (by its LLM name) with ``draws`` paired replicates; {}
    without a scored vanilla and gold row."""
    scored = {row["method"]: row for row in rows
              if row.get("status", "ok") == "ok" and finite(row.get("forget_accuracy")) is not None}
    if "vanilla" not in scored or "gold" not in scored:
        return {}
    replicas = {name: np.asarray(row.get("replicas", {}).get("forget_accuracy") or [], float)
                for name, row in scored.items()}
    count = len(replicas["vanilla"])
    if count and all(len(r) == count for r in replicas.values()):
        picks = np.random.default_rng(seed).integers(0, count, size=(draws, count))
        means = {name: r[picks].mean(axis=1) for name, r in replicas.items()}
    else:  # no per-replica accuracies to resample: the point alone
        means = {name: np.empty(0) for name in replicas}

    def progress(vanilla: float, gold: float, accuracy: float) -> float | None:
        return None if vanilla == gold else finite((vanilla - accuracy) / (vanilla - gold))

    out = {}
    for name, row in scored.items():
        if name in ("vanilla", "gold"):
            continue
        point = progress(scored["vanilla"]["forget_accuracy"], scored["gold"]["forget_accuracy"],
                         row["forget_accuracy"])
        if point is not None:
            out[CV_NAMES.get(name, name)] = Series(point, tuple(
                progress(*values) for values in zip(means["vanilla"], means["gold"], means[name],
                                                    strict=True)))
    return out


def vision_track(results: dict[str, Any], draws: int) -> Track | None:
    cv = results.get("cv")
    if cv is None:
        return None
    progress = cv_progress(cv["rows"], draws)
    ran = (CV_NAMES.get(row["method"], row["method"]) for row in cv["rows"]
           if row["method"] not in ("vanilla", "gold"))
    return Track("vision", str(cv.get("settings", {}).get("forget_split")), progress,
                 tuple(m for m in ran if m not in progress))


def tracks(results: dict[str, Any]) -> dict[str, Track]:
    """The tracks that ran a method, by name; the vision track gets as many replicates as the
    longest of the others'."""
    found = [multimodal_track(results), text_track(results)]
    draws = max((len(s.replicates) for t in found if t for s in t.progress.values()), default=0)
    found.append(vision_track(results, draws))
    return {t.name: t for t in found if t is not None and (t.progress or t.unscored)}


def ranks(progress: dict[str, float]) -> dict[str, float]:
    """Rank of each method's P: 1 = the highest; ties share the average rank."""
    return dict(zip(progress, rankdata([-p for p in progress.values()]), strict=True))


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row of ``a`` with the same row of ``b`` (the last axis holds the
    methods; ties take average ranks): NaN where either row ranks every method alike."""
    ranked = [r - r.mean(axis=-1, keepdims=True)
              for r in (rankdata(a, axis=-1), rankdata(b, axis=-1))]
    spread = np.sqrt((ranked[0] ** 2).sum(axis=-1) * (ranked[1] ** 2).sum(axis=-1))
    covariance = (ranked[0] * ranked[1]).sum(axis=-1)
    return np.divide(covariance, spread, out=np.full(np.shape(spread), np.nan),
                     where=spread > 0)


def _replicates(track: Track, names: Sequence[str], draws: int) -> np.ndarray:
    """The first ``draws`` replicates of the named methods, ``(draws, methods)``; NaN where
    one has no value."""
    return np.array([track.progress[n].replicates[:draws] for n in names], dtype=float).T


def compare(a: Track, b: Track, at: float) -> Comparison:
    """Spearman's ρ of the two tracks' P over the methods both score, with its ``at``
    interval (see the module docstring)."""
    names = [m for m in a.progress if m in b.progress]
    left_out = tuple(m for m in (*a.progress, *b.progress) if m not in names)
    if len(names) < MIN_METHODS:
        return Comparison((a.name, b.name), tuple(names), left_out, Interval(None, None, None),
                          0, 0)
    draws = min(len(t.progress[n].replicates) for t in (a, b) for n in names)
    point = float(spearman(*(np.array([t.progress[n].point for n in names]) for t in (a, b))))
    left, right = (_replicates(t, names, draws) for t in (a, b))
    complete = ~(np.isnan(left).any(axis=1) | np.isnan(right).any(axis=1))
    rho = spearman(left[complete], right[complete])
    rho = rho[~np.isnan(rho)]
    low, high = percentile_interval(rho.tolist(), at)
    return Comparison((a.name, b.name), tuple(names), left_out,
                      Interval(finite(point), finite(low), finite(high)), int(rho.size), draws)


def comparisons(found: dict[str, Track], at: float) -> list[Comparison]:
    """Every pair of :data:`PAIRS` whose two tracks the results have."""
    return [compare(found[a], found[b], at) for a, b in PAIRS if a in found and b in found]
