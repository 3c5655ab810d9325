"""The report's figures, drawn with matplotlib's Agg backend and written as PNG files.

Per forget split: forget knowledge K vs Retain (means with their intervals as error bars) with
the methods' Pareto front, the per-task metrics (mean over a model's seeds), the unlearning
loss curves (first seed) and, in a run with audits that yield a P (robustness, relearning,
precision, cross-modal), the method × audit heatmap of forgetting progress P. The figures
are deterministic (no timestamps or version in the file).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from clearbench.io import write_bytes_atomic
from clearbench.report.results import (
    BASELINES,
    TASK_ORDER,
    Entry,
    Interval,
    Row,
    audited,
    display_name,
    estimate,
    find_entry,
    forget_splits,
    is_number,
    main_variant,
    methods,
    model_rows,
    of_split,
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
BASELINE_STYLE = {"vanilla": ("*", "black"), "gold": ("D", "goldenrod"),
                  "gold_reseeded": ("d", "darkorange")}


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


def write_plots(results: dict[str, Any], folder: Path) -> dict[str, list[Plot]]:
    """Draw every figure of each forget split into ``folder``; the plots drawn, per split."""
    variant = main_variant(results)
    out = {}
    for split in forget_splits(results):
        entries, rows = of_split(results["summary"], split), of_split(results["rows"], split)
        slug = re.sub(r"[^\w.-]", "_", split)
        drawn = [
            forget_retain_plot(entries, split, variant, folder / f"forget_retain_{slug}.png"),
            task_metrics_plot(rows, split, variant, folder / f"task_metrics_{slug}.png"),
            loss_plot(rows, split, variant, folder / f"losses_{slug}.png"),
            audit_heatmap(audited(results, split, "robust_forgetting"), split,
                          folder / f"audits_{slug}.png"),
        ]
        out[split] = [plot for plot in drawn if plot is not None]
    return out


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())


def _errors(values: list[Interval]) -> list[list[float]]:
    """Matplotlib's asymmetric error bars (below, above the mean); 0 without an interval."""
    return [[v.mean - v.low if v.mean is not None and v.low is not None else 0.0
             for v in values],
            [v.high - v.mean if v.mean is not None and v.high is not None else 0.0
             for v in values]]


def _scatter(ax: Axes, points: list[tuple[str, Interval, Interval]], **style: Any) -> None:
    """(label, K, Retain) points with their intervals as error bars."""
    ks, retains = [p[1] for p in points], [p[2] for p in points]
    ax.errorbar([k.mean for k in ks], [r.mean for r in retains], xerr=_errors(ks),
                yerr=_errors(retains), linestyle="none", elinewidth=0.8, capsize=2, **style)


def _point(entry: Entry, name: str) -> tuple[str, Interval, Interval] | None:
    k, retain = estimate(entry, "forget_knowledge"), estimate(entry, "retain")
    return None if k.mean is None or retain.mean is None else (name, k, retain)


def forget_retain_plot(
    entries: list[Entry], split: str, main_variant: str | None, path: Path
) -> Plot | None:
    """Forget knowledge K (x, lower = forgot more) vs Retain (y) of every model with both
    modalities unlearned, with their intervals; the Pareto front is that of the unlearning
    methods' means (the baselines, the reseeded gold model included, are references)."""
    several = len(variants(entries)) > 1
    points = []
    for entry in entries:
        if entry["method"] in BASELINES or entry.get("modality") != "both":
            continue
        name = entry["method"]
        if several and entry.get("variant") != main_variant:
            name += f" ({entry['variant']})"
        if (point := _point(entry, name)) is not None:
            points.append(point)
    baselines = [(b, _point(e, display_name(b))) for b in BASELINES
                 if (e := find_entry(entries, b))]
    baselines = [(b, p) for b, p in baselines if p is not None]
    if not points and not baselines:
        return None
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    if points:
        _scatter(ax, points, color="tab:blue", marker="o", label="unlearning methods")
        front = pareto_front([(p[1].mean, p[2].mean) for p in points])
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="tab:red",
                linestyle="--", label="Pareto front (means)")
    for name, point in baselines:
        marker, color = BASELINE_STYLE[name]
        _scatter(ax, [point], marker=marker, markersize=11, color=color, label=point[0],
                 zorder=3)
    for text, k, retain in points:
        ax.annotate(text, (k.mean, retain.mean), xytext=(4, 4), textcoords="offset points",
                    fontsize=8)
    for text, k, retain in (point for _, point in baselines):
        ax.annotate(text, (k.mean, retain.mean), xytext=(6, -12), textcoords="offset points",
                    fontsize=8, fontweight="bold")
    ax.set_xlabel("Forget knowledge K ↓ (lower = forgot more)")
    ax.set_ylabel("Retain ↑ (higher is better)")
    ax.set_title(f"Forget knowledge vs retain, {split} (both modalities)")
    ax.legend(fontsize=8, loc="best")
    ax.margins(0.12)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return Plot(path, f"Forget knowledge K vs Retain (means and intervals) with the Pareto "
                      f"front, {split}")


def _task_value(rows: list[Row], task: str, key: str) -> float:
    """The mean of a task metric over a model's seeds (NaN when no seed has it)."""
    values = [value for row in rows
              if is_number(value := (row["tasks"].get(task) or {}).get(key))]
    return sum(values) / len(values) if values else math.nan


def _scored(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["status"] == "ok" and isinstance(r.get("tasks"), dict)]


def task_metrics_plot(
    rows: list[Row], split: str, main_variant: str | None, path: Path
) -> Plot | None:
    """Per task, the metrics (mean over seeds) of the baselines and each method (main
    variant, both modalities)."""
    models = [(b, _scored(model_rows(rows, b))) for b in BASELINES]
    models += [(m, _scored(model_rows(rows, m, main_variant, "both"))) for m in methods(rows)]
    models = [(name, seeds) for name, seeds in models if seeds]
    present = unique(task for _, seeds in models for row in seeds for task in row["tasks"])
    tasks = [t for t in TASK_ORDER if t in present] + [t for t in present if t not in TASK_ORDER]
    metrics = [(key, label) for key, label in TASK_METRICS
               if any(not math.isnan(_task_value(seeds, t, key))
                      for _, seeds in models for t in tasks)]
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
            ax.bar([i + offset for i in range(len(models))],
                   [_task_value(seeds, task, key) for _, seeds in models], width, label=label)
        ax.set_title(task, fontsize=10)
        ax.set_xticks(range(len(models)), [name for name, _ in models], rotation=45,
                      fontsize=8)
        ax.set_ylim(0, 1.05)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(metrics), fontsize=8)
    fig.suptitle(f"Per-task metrics (mean over seeds), {split} (variant {main_variant}, both "
                 "modalities)", fontsize=11)
    _save(fig, path)
    return Plot(path, f"Per-task metrics (mean over seeds), {split}")


def _finite(value: Any) -> float:
    return float(value) if is_number(value) and math.isfinite(value) else math.nan


def loss_plot(rows: list[Row], split: str, main_variant: str | None, path: Path) -> Plot | None:
    """The logged unlearning loss of each method's first seed (main variant, both
    modalities)."""
    curves = []
    for method in methods(rows):
        logged = [row for row in model_rows(rows, method, main_variant, "both")
                  if row.get("losses")]
        if logged:
            curves.append((f"{method} (seed {logged[0].get('seed')})", logged[0]["losses"]))
    if not curves:
        return None
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    for name, losses in curves:
        ax.plot(range(1, len(losses) + 1), [_finite(v) for v in losses], label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Logged step")
    ax.set_ylabel("Training loss")
    ax.set_title(f"Unlearning loss, {split} (variant {main_variant}, both modalities)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return Plot(path, f"Unlearning loss curves (first seed), {split}")


def audit_heatmap(entries: list[tuple[str, Entry]], split: str, path: Path) -> Plot | None:
    """Forgetting progress P of every model (rows: ``(name, entry)`` with robust forgetting)
    under every audit (columns: the headline first), each cell labelled, the model's lowest in
    bold; red = less forgetting than gold (P < 1), white = gold's level, blue = more."""
    if not entries:
        return None
    audits = unique(a for _, e in entries for a in e["robust_forgetting"]["audits"])
    values = [[_finite(e["robust_forgetting"]["audits"].get(a)) for a in audits]
              for _, e in entries]
    fig = Figure(figsize=(1.8 + 0.75 * len(audits), 1.6 + 0.35 * len(entries)),
                 layout="constrained")
    ax = fig.add_subplot()
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0)
    image = ax.imshow(values, cmap=colormaps["RdBu"].with_extremes(bad="lightgrey"), norm=norm,
                      aspect="auto")
    for i, (_, entry) in enumerate(entries):
        for j, audit in enumerate(audits):
            value = values[i][j]
            dark = not math.isnan(value) and abs(float(norm(value)) - 0.5) > 0.3
            ax.text(j, i, "–" if math.isnan(value) else f"{value:.2f}", ha="center",
                    va="center", fontsize=7, color="white" if dark else "black",
                    fontweight="bold" if audit == entry["robust_forgetting"]["audit"]
                    else "normal")
    ax.set_xticks(range(len(audits)), audits, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(entries)), [name for name, _ in entries], fontsize=8)
    fig.colorbar(image, ax=ax, label="P (1 = gold)", shrink=0.8, extend="both")
    ax.set_title(f"Forgetting progress P under every audit, {split} (bold: the lowest)",
                 fontsize=10)
    _save(fig, path)
    return Plot(path, f"Forgetting progress P of every audited model under every audit "
                      f"(method × audit), {split}; bold: its robust forgetting")
