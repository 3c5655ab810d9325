"""The report's tables as pure functions of result rows; every cell is already formatted text.

Numbers have 3 decimals (a KS p-value below 0.001 in compact scientific form); a missing value,
or any value of a row whose status is not ``ok``, is "–".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearbench.report.results import (
    BASELINES,
    MODALITIES,
    Row,
    find_row,
    is_number,
    methods,
    score,
    split_rows,
    unique,
    variants,
)

DASH = "–"
COST_COLUMNS = (
    ("seconds", "Seconds"),
    ("optimiser_steps", "Optimiser steps"),
    ("forward_passes", "Forward passes"),
    ("peak_memory_gb", "Peak memory (GB)"),
    ("trainable_parameters", "Trainable parameters"),
)
IDENTITY_KEYS = ("method", "variant", "modality", "forget_split", "lora", "l1", "status")


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str | None = None


def fmt(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def fmt_p(value: float | None) -> str:
    """A p-value: 3 decimals, or e.g. ``7.7e-4`` below 0.001."""
    if value is None or value == 0 or value >= 0.001:
        return fmt(value)
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_lambda(l1: float) -> str:
    return f"λ={l1:g}"


def _failed_note(rows: list[Row | None]) -> str | None:
    failed = [
        f"{r['method']} ({r.get('variant')}, {r.get('modality')}): {r['status']}"
        for r in rows
        if r is not None and r["status"] != "ok"
    ]
    return f"No scores for {'; '.join(failed)}." if failed else None


def main_table(rows: list[Row], split: str, main_variant: str | None) -> Table:
    """Vanilla, gold, then every method at the main variant with both modalities unlearned."""
    rows = split_rows(rows, split)
    picked = [find_row(rows, b) for b in BASELINES]
    picked += [find_row(rows, m, main_variant, "both") for m in methods(rows)]
    cells = tuple(
        (
            row["method"],
            fmt(score(row, "real")),
            fmt(score(row, "retain")),
            fmt(score(row, "forget")),
            fmt_p(score(row, "forget_quality")),
            fmt(score(row, "forget_quality_js")),
            fmt(score(row, "model_utility")),
            row["status"],
        )
        for row in picked
        if row is not None
    )
    return Table(
        title=f"Main results, {split} (variant {main_variant}, both modalities unlearned)",
        columns=("Method", "Real↑", "Retain↑", "Forget↓", "FQ↑ (KS p)", "FQ↑ (1−JS)", "MU↑",
                 "Status"),
        rows=cells,
        note="Real, Retain, Forget: harmonic means of probability, ROUGE-L recall and truth "
        "ratio on the real, retain and forget sets; FQ (KS p): KS-test p-value of the truth "
        "ratios against gold; FQ (1−JS): CLEAR v4's 1 − Jensen–Shannon distance; MU: model "
        "utility (spec §5).",
    )


def cv_table(cv: dict[str, Any]) -> Table:
    """The vision-only track's results (``cv_results.json``) like the paper's Table 2."""
    settings = cv.get("settings", {})
    cells = tuple(
        (row["method"], fmt(row.get("forget_accuracy")), fmt(row.get("retain_accuracy")),
         fmt(row.get("holdout_accuracy")), fmt(row.get("u_lira")), fmt(row.get("u_mia")),
         row.get("status", "ok"))
        for row in cv["rows"]
    )
    return Table(
        title=f"Vision-only track, {settings.get('forget_split', '?')} (network "
        f"{settings.get('network', '?')}, {settings.get('shadows', '?')} shadow replicas)",
        columns=("Method", "Forget acc↓", "Retain acc↑", "Holdout acc", "U-LiRA (0.5)",
                 "U-MIA (0.5)", "Status"),
        rows=cells,
        note="Identification accuracy: nearest mean enrolment embedding by cosine (5 enrolment "
        "images per identity, gallery of every CLEAR and holdout person); it and U-MIA are "
        "means over the target and shadow replicas. U-LiRA: per-example "
        "Gaussian likelihood-ratio attack, unlearned vs retrained (gold), leave-one-out over "
        "the target and shadow replicas; U-MIA: cross-validated threshold attack, forget "
        "images vs never-seen persons. 0.5 is ideal for both. A diverged network (non-finite "
        "embeddings in any replica) has no numbers.",
    )


def modality_table(rows: list[Row], split: str, main_variant: str | None) -> Table | None:
    """Forget, Retain and FQ per method for each unlearned modality, at the main variant."""
    rows = [r for r in split_rows(rows, split) if r.get("variant") == main_variant]
    present = [m for m in MODALITIES if any(r.get("modality") == m for r in rows)]
    if not present:
        return None
    columns = ["Method"]
    for modality in present:
        columns += [f"Forget↓ ({modality})", f"Retain↑ ({modality})", f"FQ↑ ({modality})"]
    body, picked = [], []
    for method in methods(rows):
        cells = [method]
        for modality in present:
            row = find_row(rows, method, main_variant, modality)
            picked.append(row)
            cells += [fmt(score(row, "forget")), fmt(score(row, "retain")),
                      fmt_p(score(row, "forget_quality"))]
        body.append(tuple(cells))
    return Table(
        title=f"Unlearned modality, {split} (variant {main_variant})",
        columns=tuple(columns),
        rows=tuple(body),
        note=_failed_note(picked),
    )


def l1_table(rows: list[Row], split: str) -> Table | None:
    """Retain, Forget, FQ and MU per method for each variant (both modalities); needs two."""
    rows = split_rows(rows, split)
    split_variants = variants(rows)
    if len(split_variants) < 2:
        return None
    columns = ["Method"]
    for name, (lora, l1) in split_variants.items():
        label = f"{name} ({'LoRA, ' if lora else ''}{fmt_lambda(l1)})"
        columns += [f"Retain↑ {label}", f"Forget↓ {label}", f"FQ↑ {label}", f"MU↑ {label}"]
    body, picked = [], []
    for method in methods(rows):
        cells = [method]
        for name in split_variants:
            row = find_row(rows, method, name, "both")
            picked.append(row)
            cells += [fmt(score(row, "retain")), fmt(score(row, "forget")),
                      fmt_p(score(row, "forget_quality")), fmt(score(row, "model_utility"))]
        body.append(tuple(cells))
    return Table(
        title=f"ℓ1 on the LoRA weights, {split} (both modalities unlearned)",
        columns=tuple(columns),
        rows=tuple(body),
        note=_failed_note(picked),
    )


def _cost_cell(key: str, value: Any) -> str:
    if not is_number(value):
        return DASH
    if key == "seconds":
        return f"{value:.1f}"
    if key == "peak_memory_gb":
        return f"{value:.2f}"
    return f"{int(value):,}"


def cost_table(rows: list[Row], split: str) -> Table:
    """What each model of the split cost to train."""
    body = tuple(
        (
            row["method"],
            row.get("variant") or DASH,
            row.get("modality") or DASH,
            *(_cost_cell(key, (row.get("cost") or {}).get(key)) for key, _ in COST_COLUMNS),
        )
        for row in split_rows(rows, split)
    )
    return Table(
        title=f"Cost, {split}",
        columns=("Method", "Variant", "Modality", *(label for _, label in COST_COLUMNS)),
        rows=body,
    )


def _scalars(mapping: Any) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        return {}
    return {k: v for k, v in mapping.items() if v is None or is_number(v)}


def leaderboard_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """One flat record per row, all with the same keys: identity, scalar scores, cost."""
    score_keys = unique(k for row in rows for k in _scalars(row.get("scores")))
    cost_keys = unique(k for row in rows for k in _scalars(row.get("cost")))
    records = []
    for row in rows:
        scores, cost = _scalars(row.get("scores")), _scalars(row.get("cost"))
        records.append({
            **{key: row.get(key) for key in IDENTITY_KEYS},
            **{key: scores.get(key) for key in score_keys},
            **{key: cost.get(key) for key in cost_keys},
        })
    return records
