"""Compare the ``results.json`` of two runs: the models and scores that differ, as a text table.

Summary entries are matched by (method, variant, modality, forget split). A score is listed when
its means differ or it is missing (null) in either run: A's and B's means, Δ = B − A, the
interval of Δ from the replicate-wise differences B_i − A_i (at A's level; valid whether the
runs share their bootstrap draws or drew them independently; with unequal counts, the first n of
each, n the shorter), and "exceeds CI?": yes when that interval excludes 0.
"""

from __future__ import annotations

from pathlib import Path

from clearbench.report.results import (
    DASH,
    Entry,
    combine,
    estimate,
    interval_of,
    label,
    level,
    load_results,
    score_names,
    series,
)

TOLERANCE = 1e-12
MISSING = "missing"

Key = tuple[str, str | None, str | None, str | None]


def _key(entry: Entry) -> Key:
    return entry["method"], entry.get("variant"), entry.get("modality"), entry.get("forget_split")


def _name(entry: Entry) -> str:
    return f"{entry.get('forget_split')} {label(entry)}"


def _number(value: float | None, sign: str = "") -> str:
    return MISSING if value is None else f"{value:{sign}.4g}"


def score_line(name: str, a: Entry, b: Entry, at: float) -> tuple[str, ...] | None:
    """``(score, A, B, Δ, CI of Δ, exceeds CI?)`` when the score differs or is missing in
    either run; None when both runs have the same mean."""
    mean_a, mean_b = estimate(a, name).mean, estimate(b, name).mean
    if mean_a is None or mean_b is None:
        return name, _number(mean_a), _number(mean_b), DASH, DASH, DASH
    if abs(mean_b - mean_a) <= TOLERANCE:
        return None
    draws_a, draws_b = series(a, name), series(b, name)
    ci = (None if draws_a is None or draws_b is None
          else interval_of(combine(lambda x, y: y - x, draws_a, draws_b), at))
    if ci is None or ci.low is None or ci.high is None:
        return name, _number(mean_a), _number(mean_b), _number(mean_b - mean_a, "+"), DASH, DASH
    exceeds = "yes" if ci.low > 0 or ci.high < 0 else "no"
    return (name, _number(mean_a), _number(mean_b), _number(mean_b - mean_a, "+"),
            f"[{_number(ci.low, '+')}, {_number(ci.high, '+')}]", exceeds)


def compare_runs(run_a: Path, run_b: Path) -> str:
    """The differences between two runs as text: per matched model, a changed status and
    every score that differs or is missing (see the module docstring); the models only one run
    has; "no differences" when there is nothing to list."""
    results_a, results_b = load_results(run_a), load_results(run_b)
    at = level(results_a)
    entries_a = {_key(e): e for e in results_a["summary"]}
    entries_b = {_key(e): e for e in results_b["summary"]}
    table: list[tuple[str, ...]] = []
    for key in (k for k in entries_a if k in entries_b):
        a, b = entries_a[key], entries_b[key]
        if a["status"] != b["status"]:
            table.append((_name(a), "status", a["status"], b["status"], "", "", ""))
        for name in score_names([a, b]):
            line = score_line(name, a, b, at)
            if line is not None:
                table.append((_name(a), *line))
    lines = [f"A: {run_a}", f"B: {run_b}"]
    if table:
        header = ("model", "score", "A", "B", "Δ (B − A)", f"{at * 100:g} % CI of Δ",
                  "exceeds CI?")
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                  for r in [header, *table]]
        lines.append(f"CI of Δ: percentile interval of the replicate-wise differences "
                     f"B_i − A_i; exceeds CI? = yes when it excludes 0; {MISSING} = null in "
                     "that run.")
    lines += [f"only in A: {_name(e)}" for k, e in entries_a.items() if k not in entries_b]
    lines += [f"only in B: {_name(e)}" for k, e in entries_b.items() if k not in entries_a]
    if len(lines) == 2:
        lines.append("no differences")
    return "\n".join(lines)
