"""Compare the ``results.json`` of two runs: the rows and scores that differ, as a text table."""

from __future__ import annotations

from pathlib import Path

from clearbench.report.results import SCORE_KEYS, Row, load_results, score

TOLERANCE = 1e-12
DASH = "–"

Key = tuple[str, str | None, str | None, str | None]


def _key(row: Row) -> Key:
    return row["method"], row.get("variant"), row.get("modality"), row.get("forget_split")


def _label(key: Key) -> str:
    method, variant, modality, split = key
    return f"{split} {method}" + "".join(f"/{part}" for part in (variant, modality) if part)


def _number(value: float | None) -> str:
    return DASH if value is None else f"{value:.6g}"


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > TOLERANCE


def compare_runs(run_a: Path, run_b: Path) -> str:
    """The differences between two runs: matched rows (by method, variant, modality and forget
    split) with a changed status or scalar score, and the rows only one run has."""
    rows_a = {_key(row): row for row in load_results(run_a)["rows"]}
    rows_b = {_key(row): row for row in load_results(run_b)["rows"]}
    table: list[tuple[str, ...]] = []
    for key in (k for k in rows_a if k in rows_b):
        a, b = rows_a[key], rows_b[key]
        if a["status"] != b["status"]:
            table.append((_label(key), "status", a["status"], b["status"], ""))
        for name in SCORE_KEYS:
            va, vb = score(a, name), score(b, name)
            if _differs(va, vb):
                delta = DASH if va is None or vb is None else f"{vb - va:+.3g}"
                table.append((_label(key), name, _number(va), _number(vb), delta))
    lines = [f"A: {run_a}", f"B: {run_b}"]
    if table:
        header = ("row", "value", "A", "B", "Δ (B − A)")
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                  for r in [header, *table]]
    lines += [f"only in A: {_label(k)}" for k in rows_a if k not in rows_b]
    lines += [f"only in B: {_label(k)}" for k in rows_b if k not in rows_a]
    if len(lines) == 2:
        lines.append("no differences")
    return "\n".join(lines)
