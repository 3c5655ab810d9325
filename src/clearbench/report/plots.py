"""The report's figures, drawn with matplotlib's Agg backend and written as PNG files.

Per forget split: Forget vs Retain with the methods' Pareto front, the per-task metrics, and the
unlearning loss curves. The figures are deterministic (no timestamps or version in the file).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from clearbench.io import write_bytes_atomic
from clearbench.report.results import (
    BASELINES,
    TASK_ORDER,
    Row,
    find_row,
    is_number,
    methods,
    score,
    split_rows,
    unique,
    variants,
)

DPI = 100
TASK_METRICS = (
    ("rougeL_recall", "ROUGE-L recall"),
    ("probability", "Probability"),
    ("truth_ratio", "Truth ratio"),
    ("fact_accuracy", "Fact accuracy"),
)
BASELINE_STYLE = {"vanilla": ("*", "black"), "gold": ("D", "goldenrod")}


@dataclass(frozen=True)
class Plot:
    path: Path
    caption: str


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (forget, retain) points that no other point beats on both (lower forget, higher
    retain), sorted by forget."""
    front: list[tuple[float, float]] = []
    for forget, retain in sorted(set(points), key=lambda p: (p[0], -p[1])):
        if not front or retain > front[-1][1]:
            front.append((forget, retain))
    return front


def write_plots(rows: list[Row], splits: list[str], main_variant: str | None,
                folder: Path) -> dict[str, list[Plot]]:
    """Draw every figure of each split into ``folder``; the plots drawn, per split."""
    out = {}
    for split in splits:
        these, slug = split_rows(rows, split), re.sub(r"[^\w.-]", "_", split)
        drawn = [
            forget_retain_plot(these, split, main_variant, folder / f"forget_retain_{slug}.png"),
            task_metrics_plot(these, split, main_variant, folder / f"task_metrics_{slug}.png"),
            loss_plot(these, split, main_variant, folder / f"losses_{slug}.png"),
        ]
        out[split] = [plot for plot in drawn if plot is not None]
    return out


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())


def forget_retain_plot(
    rows: list[Row], split: str, main_variant: str | None, path: Path
) -> Plot | None:
    """Forget (x, lower is better) vs Retain (y) of every model with both modalities unlearned;
    the Pareto front is that of the unlearning methods (the baselines are references)."""
    several = len(variants(rows)) > 1
    points = []
    for row in rows:
        forget, retain = score(row, "forget"), score(row, "retain")
        if row["method"] in BASELINES or row.get("modality") != "both" or None in (forget, retain):
            continue
        label = row["method"]
        if several and row.get("variant") != main_variant:
            label += f" ({row.get('variant')})"
        points.append((label, forget, retain))
    baselines = [(b, score(row, "forget"), score(row, "retain"))
                 for b in BASELINES if (row := find_row(rows, b)) is not None]
    baselines = [b for b in baselines if None not in b]
    if not points and not baselines:
        return None
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    if points:
        ax.scatter([p[1] for p in points], [p[2] for p in points], color="tab:blue",
                   label="unlearning methods")
        front = pareto_front([(p[1], p[2]) for p in points])
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="tab:red",
                linestyle="--", label="Pareto front")
    for name, forget, retain in baselines:
        marker, color = BASELINE_STYLE[name]
        ax.scatter([forget], [retain], marker=marker, s=120, color=color, label=name, zorder=3)
    for label, forget, retain in points:
        ax.annotate(label, (forget, retain), xytext=(4, 4), textcoords="offset points",
                    fontsize=8)
    for label, forget, retain in baselines:
        ax.annotate(label, (forget, retain), xytext=(6, -12), textcoords="offset points",
                    fontsize=8, fontweight="bold")
    ax.set_xlabel("Forget ↓ (lower is better)")
    ax.set_ylabel("Retain ↑ (higher is better)")
    ax.set_title(f"Forget vs retain, {split} (both modalities)")
    ax.legend(fontsize=8, loc="best")
    ax.margins(0.12)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return Plot(path, f"Forget vs retain with the Pareto front, {split}")


def _task_value(row: Row, task: str, key: str) -> float:
    value = (row["tasks"].get(task) or {}).get(key)
    return float(value) if is_number(value) else math.nan


def task_metrics_plot(
    rows: list[Row], split: str, main_variant: str | None, path: Path
) -> Plot | None:
    """Per task, the metrics of vanilla, gold and each method (main variant, both modalities)."""
    candidates = [find_row(rows, b) for b in BASELINES]
    candidates += [find_row(rows, m, main_variant, "both") for m in methods(rows)]
    picked = [r for r in candidates
              if r is not None and r["status"] == "ok" and isinstance(r.get("tasks"), dict)]
    present = unique(task for row in picked for task in row["tasks"])
    tasks = [t for t in TASK_ORDER if t in present] + [t for t in present if t not in TASK_ORDER]
    metrics = [(key, label) for key, label in TASK_METRICS
               if any(not math.isnan(_task_value(r, t, key)) for r in picked for t in tasks)]
    if not tasks or not metrics:
        return None
    ncols = min(2, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig = Figure(figsize=(6 * ncols, 2.8 * nrows + 0.6), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    width = 0.8 / len(metrics)
    for ax, task in zip(axes, tasks, strict=False):
        for j, (key, label) in enumerate(metrics):
            offset = (j - (len(metrics) - 1) / 2) * width
            ax.bar([i + offset for i in range(len(picked))],
                   [_task_value(r, task, key) for r in picked], width, label=label)
        ax.set_title(task, fontsize=10)
        ax.set_xticks(range(len(picked)), [r["method"] for r in picked], rotation=45,
                      fontsize=8)
        ax.set_ylim(0, 1.05)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(metrics), fontsize=8)
    fig.suptitle(f"Per-task metrics, {split} (variant {main_variant}, both modalities)",
                 fontsize=11)
    _save(fig, path)
    return Plot(path, f"Per-task metrics, {split}")


def _finite(value: Any) -> float:
    return float(value) if is_number(value) and math.isfinite(value) else math.nan


def loss_plot(rows: list[Row], split: str, main_variant: str | None, path: Path) -> Plot | None:
    """The logged unlearning loss of each method (main variant, both modalities)."""
    curves = [(m, row["losses"]) for m in methods(rows)
              if (row := find_row(rows, m, main_variant, "both")) and row.get("losses")]
    if not curves:
        return None
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    for method, losses in curves:
        ax.plot(range(1, len(losses) + 1), [_finite(v) for v in losses], label=method)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Logged step")
    ax.set_ylabel("Training loss")
    ax.set_title(f"Unlearning loss, {split} (variant {main_variant}, both modalities)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return Plot(path, f"Unlearning loss curves, {split}")
