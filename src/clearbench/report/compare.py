"""Compare the ``results.json`` of two runs: the models and scores that differ, as text.

Summary entries are matched by (method, variant, modality, forget split), rows by those and the
seed. A score with a number in both runs is listed in a table when the means differ: A's and
B's means, Δ = B − A, the interval of Δ from the replicate-wise differences B_i − A_i (at A's
level; valid whether the runs share their bootstrap draws or drew them independently; with
unequal counts, the first n of each, n the shorter), and "exceeds CI?": yes when that interval
excludes 0. Every other difference is a line of its own: a changed status, a score with a
number in one run and NaN (null) or absent in the other ("0.18 → NaN (diverged?)"; NaN in
both is no difference), and a model or row that only one run has. A model or row whose status
changed lists no NaN or absent scores: its status says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clearbench.report.results import (
    DASH,
    Entry,
    Row,
    combine,
    estimate,
    finite,
    interval_of,
    label,
    level,
    load_results,
    score_names,
    series,
)

TOLERANCE = 1e-12
NAN = "NaN"
ABSENT = "absent"

Key = tuple[Any, ...]


def _key(item: Entry | Row) -> Key:
    return item["method"], item.get("variant"), item.get("modality"), item.get("forget_split")


def _row_key(row: Row) -> Key:
    return *_key(row), row.get("seed")


def _name(item: Entry | Row) -> str:
    seed = f" seed {item['seed']}" if "seed" in item else ""
    return f"{item.get('forget_split')} {label(item)}{seed}"


def _number(value: float | None, sign: str = "") -> str:
    return NAN if value is None else f"{value:{sign}.4g}"


def _shown(scores: dict[str, Any], name: str) -> str:
    value = finite(scores.get(name))
    return ABSENT if name not in scores else _number(value)


def presence_line(item: Entry | Row, name: str, a: dict[str, Any], b: dict[str, Any]
                  ) -> str | None:
    """``"<model> <score>: A → B"`` when the score has a number in exactly one of the score
    dicts ``a`` and ``b``; None otherwise."""
    in_a, in_b = finite(a.get(name)) is not None, finite(b.get(name)) is not None
    if in_a == in_b:
        return None
    hint = " (diverged?)" if in_a else ""
    return f"{_name(item)} {name}: {_shown(a, name)} → {_shown(b, name)}{hint}"


def score_line(name: str, a: Entry, b: Entry, at: float) -> tuple[str, ...] | None:
    """``(score, A, B, Δ, CI of Δ, exceeds CI?)`` when both runs have a mean and they
    differ; None otherwise."""
    mean_a, mean_b = estimate(a, name).mean, estimate(b, name).mean
    if mean_a is None or mean_b is None or abs(mean_b - mean_a) <= TOLERANCE:
        return None
    draws_a, draws_b = series(a, name), series(b, name)
    ci = (None if draws_a is None or draws_b is None
          else interval_of(combine(lambda x, y: y - x, draws_a, draws_b), at))
    if ci is None or ci.low is None or ci.high is None:
        return name, _number(mean_a), _number(mean_b), _number(mean_b - mean_a, "+"), DASH, DASH
    exceeds = "yes" if ci.low > 0 or ci.high < 0 else "no"
    return (name, _number(mean_a), _number(mean_b), _number(mean_b - mean_a, "+"),
            f"[{_number(ci.low, '+')}, {_number(ci.high, '+')}]", exceeds)


def _means(entry: Entry) -> dict[str, Any]:
    return {name: value.get("mean") if isinstance(value, dict) else None
            for name, value in entry["scores"].items()}


def _changes(a: Entry | Row, b: Entry | Row, scores_a: dict[str, Any],
             scores_b: dict[str, Any]) -> list[str]:
    """A changed status, else the scores with a number in one run only."""
    if a.get("status") != b.get("status"):
        return [f"{_name(a)}: status {a.get('status')} → {b.get('status')}"]
    names = dict.fromkeys([*scores_a, *scores_b])
    return [line for name in names
            if (line := presence_line(a, name, scores_a, scores_b)) is not None]


def _only(items_a: dict[Key, Any], items_b: dict[Key, Any], what: str, run: str,
          skip: set[Key]) -> list[str]:
    return [f"{what} only in {run}: {_name(item)}" for key, item in items_a.items()
            if key not in items_b and key[:4] not in skip]


def compare_runs(run_a: Path, run_b: Path) -> str:
    """The differences between two runs as text (see the module docstring); "no
    differences" when there is nothing to list."""
    results_a, results_b = load_results(run_a), load_results(run_b)
    at = level(results_a)
    entries_a = {_key(e): e for e in results_a["summary"]}
    entries_b = {_key(e): e for e in results_b["summary"]}
    rows_a = {_row_key(r): r for r in results_a["rows"]}
    rows_b = {_row_key(r): r for r in results_b["rows"]}
    table: list[tuple[str, ...]] = []
    changes: list[str] = []
    for key in (k for k in entries_a if k in entries_b):
        a, b = entries_a[key], entries_b[key]
        changes += _changes(a, b, _means(a), _means(b))
        for name in score_names([a, b]):
            line = score_line(name, a, b, at)
            if line is not None:
                table.append((_name(a), *line))
    for key in (k for k in rows_a if k in rows_b):
        a, b = rows_a[key], rows_b[key]
        changes += _changes(a, b, a.get("scores") or {}, b.get("scores") or {})
    lines = [f"A: {run_a}", f"B: {run_b}"]
    if table:
        header = ("model", "score", "A", "B", "Δ (B − A)", f"{at * 100:g} % CI of Δ",
                  "exceeds CI?")
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                  for r in [header, *table]]
        lines.append("CI of Δ: percentile interval of the replicate-wise differences "
                     "B_i − A_i; exceeds CI? = yes when it excludes 0.")
    only_a = set(entries_a) - set(entries_b)
    only_b = set(entries_b) - set(entries_a)
    lines += changes
    lines += _only(entries_a, entries_b, "model", "A", set())
    lines += _only(entries_b, entries_a, "model", "B", set())
    lines += _only(rows_a, rows_b, "row", "A", only_a)
    lines += _only(rows_b, rows_a, "row", "B", only_b)
    if len(lines) == 2:
        lines.append("no differences")
    return "\n".join(lines)
