"""Read a run's ``results.json`` (schema 2) and select from it: the data layer of the report.

``rows`` hold one model at one seed (cost, losses, per-task metrics, memorisation gate);
``summary`` holds one model over its seeds: each score's mean and 95 % interval and its
bootstrap replicates. Replicate i of every model of a forget split was computed on the same
draw of persons and seeds, so a function of several models' scores applied replicate by
replicate (:func:`combine`) is a paired bootstrap distribution; :func:`interval_of` gives its
percentile interval. The report never assumes how many replicates there are.

A run with the text-only track adds ``text``: its model, main variant and forget split, and its
own ``rows`` and ``summary`` of the same schema (on its own draws); only the text-only and the
cross-track tables read it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearbench.intervals import percentile_interval

RESULTS_FILE = "results.json"
SCHEMA = 2
LEVEL = 0.95
"""The interval level when ``run.intervals`` does not name one."""
BASELINES = ("vanilla", "gold", "gold_reseeded")
NOISE_FLOOR = "gold_reseeded"
"""A second gold model trained with another seed: what "indistinguishable from gold" is."""
MODALITIES = ("both", "visual", "text")
SCORE_NAMES = (
    "forget_knowledge", "forgetting_progress", "retain", "real", "model_utility",
    "forget_quality", "forget_quality_qa", "authors_real", "authors_retain", "authors_forget",
    "authors_forget_quality",
)
"""The summary's scores in report order (spec §5); names a run adds follow them."""
P_VALUES = ("forget_quality", "forget_quality_qa")
"""Scores that are KS-test p-values (printed in scientific form below 0.001)."""
TASK_ORDER = (
    "forget_captions", "retain_captions", "forget_face_name", "retain_face_name", "real_faces",
    "real_world", "forget_qa", "retain_qa", "real_authors", "world_facts",
)
DASH = "–"

Row = dict[str, Any]
"""A per-seed row of ``results.json``."""
Entry = dict[str, Any]
"""A summary entry of ``results.json`` (one model over its seeds)."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval; any part may be missing (None)."""

    mean: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Series:
    """A score of one model (or a function of several): point estimate and bootstrap
    replicates (None where a replicate has no value)."""

    point: float | None
    replicates: tuple[float | None, ...]


# --- loading and validation --------------------------------------------------------------


def load_results(run_dir: Path) -> dict[str, Any]:
    """``RUN_DIR/results.json``, validated; ValueError naming the file and what is wrong."""
    path = run_dir / RESULTS_FILE
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} not found: is {run_dir} the folder of a finished run?") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    check_results(payload, str(path))
    return payload


def check_results(payload: Any, where: str) -> None:
    """Raise ValueError naming ``where`` and the first malformed part of a results payload."""
    if not isinstance(payload, dict):
        raise ValueError(f"{where}: results must be a JSON object")
    schema = payload.get("schema")
    if schema != SCHEMA:
        raise ValueError(
            f"{where}: schema {schema!r}, but this report reads schema {SCHEMA} (per-seed rows, "
            "a summary with intervals and bootstrap replicates); re-run the run with this "
            "version of clearbench, then `clearbench report RUN_DIR`"
        )
    run = payload.get("run")
    if not isinstance(run, dict):
        raise ValueError(f"{where}: 'run' must be an object")
    intervals = run.get("intervals", {})
    if not isinstance(intervals, dict) or not _is_level(intervals.get("level", LEVEL)):
        raise ValueError(f"{where}: run.intervals must be an object whose 'level' is in (0, 1)")
    cv = payload.get("cv", {"rows": []})
    if not isinstance(cv, dict) or not isinstance(cv.get("rows"), list):
        raise ValueError(f"{where}: 'cv' must be an object with 'rows' (the vision-only track)")
    for part in ("rows", "summary"):
        if not isinstance(payload.get(part), list):
            raise ValueError(f"{where}: missing {part!r} (a list)")
    _check_items(payload, where)
    if "text" in payload:
        text = payload["text"]
        if not isinstance(text, dict) or not all(
                isinstance(text.get(part), list) for part in ("summary", "rows")):
            raise ValueError(f"{where}: 'text' must be an object with 'summary' and 'rows' lists "
                             "(the text-only track)")
        _check_items(text, f"{where}: text")


def _check_items(block: dict[str, Any], where: str) -> None:
    """The rows and summary entries of the multimodal results or of a track's block."""
    for i, row in enumerate(block["rows"]):
        _check_identity(row, f"{where}: row {i}")
    lengths: dict[Any, int] = {}
    for i, entry in enumerate(block["summary"]):
        _check_identity(entry, f"{where}: summary entry {i}")
        _check_entry(entry, f"{where}: summary entry {i} ({label(entry)})", lengths)


def _is_level(value: Any) -> bool:
    return is_number(value) and 0 < value < 1


def _check_identity(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object")
    for key in ("method", "status"):
        if not isinstance(item.get(key), str):
            raise ValueError(f"{where} lacks {key!r}")


def _is_estimate(value: Any) -> bool:
    return isinstance(value, dict) and all(
        part in value and (value[part] is None or is_number(value[part]))
        for part in ("mean", "low", "high")
    )


def _check_entry(entry: Entry, where: str, lengths: dict[Any, int]) -> None:
    """Scores of mean/low/high numbers or nulls; replicate lists of numbers or nulls, of one
    length per forget split (the shared draws)."""
    scores, replicates = entry.get("scores"), entry.get("replicates")
    if not isinstance(scores, dict) or not isinstance(replicates, dict):
        raise ValueError(f"{where}: 'scores' and 'replicates' must be objects")
    for name, value in scores.items():
        if not _is_estimate(value):
            raise ValueError(f"{where}: scores[{name!r}] must have 'mean', 'low' and 'high', "
                             "each a number or null")
    for name, draws in replicates.items():
        if not isinstance(draws, list) or any(v is not None and not is_number(v) for v in draws):
            raise ValueError(f"{where}: replicates[{name!r}] must be a list of numbers or nulls")
        expected = lengths.setdefault(entry.get("forget_split"), len(draws))
        if len(draws) != expected:
            raise ValueError(f"{where}: replicates[{name!r}] has {len(draws)} values, other "
                             f"models of the split have {expected} (they share the draws)")


# --- selection ---------------------------------------------------------------------------


def unique(values: Iterable[Any]) -> list[Any]:
    """``values`` without repeats or ``None``, in order of first appearance."""
    return list(dict.fromkeys(v for v in values if v is not None))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def forget_splits(results: dict[str, Any]) -> list[str]:
    """The run's forget splits, then any other split its rows or summary name."""
    listed = results["run"].get("forget_splits") or []
    named = (item.get("forget_split") for item in [*results["rows"], *results["summary"]])
    return unique([*listed, *named])


def main_variant(results: dict[str, Any]) -> str | None:
    """The run's main variant (else the first variant of its summary)."""
    named = results["run"].get("main_variant")
    return named or next(iter(variants(results["summary"])), None)


def level(results: dict[str, Any]) -> float:
    """The level of the run's intervals (0.95 unless ``run.intervals`` says otherwise)."""
    return float(results["run"].get("intervals", {}).get("level", LEVEL))


def variants(items: list[dict[str, Any]]) -> dict[str, tuple[bool, float]]:
    """Each variant of the unlearning rows or entries: (LoRA?, λ of the ℓ1 penalty)."""
    out: dict[str, tuple[bool, float]] = {}
    for item in items:
        if item.get("variant") is not None and item["variant"] not in out:
            out[item["variant"]] = (bool(item.get("lora")), float(item.get("l1") or 0.0))
    return out


def of_split(items: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The rows or summary entries of one forget split."""
    return [item for item in items if item.get("forget_split") == split]


def methods(items: list[dict[str, Any]]) -> list[str]:
    """The unlearning methods of rows or entries (baselines excluded), in order of appearance."""
    return unique(item["method"] for item in items if item["method"] not in BASELINES)


def matches(item: dict[str, Any], method: str, variant: str | None = None,
            modality: str | None = None) -> bool:
    """Whether a row or entry is of ``method`` (a baseline: whatever its variant, modality)."""
    return item["method"] == method and (
        method in BASELINES or (item.get("variant"), item.get("modality")) == (variant, modality)
    )


def find_entry(entries: list[Entry], method: str, variant: str | None = None,
               modality: str | None = None) -> Entry | None:
    """The summary entry of a model (pass the entries of one split)."""
    return next((e for e in entries if matches(e, method, variant, modality)), None)


def model_rows(rows: list[Row], method: str, variant: str | None = None,
               modality: str | None = None) -> list[Row]:
    """The per-seed rows of a model (pass the rows of one split), in file order."""
    return [row for row in rows if matches(row, method, variant, modality)]


def label(item: dict[str, Any]) -> str:
    """``method/variant/modality`` of a row or entry (a baseline: its method)."""
    parts = (item.get("method"), item.get("variant"), item.get("modality"))
    return "/".join(str(part) for part in parts if part is not None)


def display_name(method: str) -> str:
    """A method as the tables name it (the reseeded gold model says it is the noise floor)."""
    return "gold (reseeded) — noise floor" if method == NOISE_FLOOR else method


def audited(results: dict[str, Any], split: str, block: str) -> list[tuple[str, Entry]]:
    """(name, entry) of every summary entry of ``split`` with the audit ``block`` (``audit``,
    ``robustness``, ``relearn``, ``robust_forgetting``), in table order: the baselines, then
    per method the main variant, the tuned run, the other variants, the modality study (names
    say which: "ga (tuned)", "ga (l1-lora, both)", "ga (lora, text)")."""
    variant = main_variant(results)
    tuned = results.get("tuning", {}).get("tuned_variant")
    entries = [e for e in of_split(results["summary"], split) if block in e]
    order = [*BASELINES, *methods(entries)]

    def group(entry: Entry) -> int:
        if entry["method"] in BASELINES or (entry.get("variant"), entry.get("modality")) == (
                variant, "both"):
            return 0
        return 1 if entry.get("variant") == tuned else 2 if entry.get("modality") == "both" else 3

    def name(entry: Entry) -> str:
        return {0: display_name(entry["method"]), 1: f"{entry['method']} (tuned)"}.get(
            group(entry), f"{entry['method']} ({entry.get('variant')}, {entry.get('modality')})")

    entries.sort(key=lambda e: (order.index(e["method"]), group(e)))
    return [(name(e), e) for e in entries]


def score_names(entries: list[Entry]) -> list[str]:
    """The score names of the entries: :data:`SCORE_NAMES` order, then any others."""
    present = unique(name for entry in entries for name in entry["scores"])
    return [n for n in SCORE_NAMES if n in present] + [n for n in present if n not in SCORE_NAMES]


def estimate(entry: Entry | None, name: str) -> Interval:
    """A score's mean and interval as the summary records them (all None when absent)."""
    value = (entry or {}).get("scores", {}).get(name) or {}
    return Interval(*(finite(value.get(part)) for part in ("mean", "low", "high")))


def series(entry: Entry | None, name: str) -> Series | None:
    """A score's point estimate and replicates; None when the entry has no replicates of it."""
    draws = (entry or {}).get("replicates", {}).get(name)
    if not draws or all(finite(v) is None for v in draws):
        return None
    return Series(estimate(entry, name).mean, tuple(finite(v) for v in draws))


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number; None otherwise (NaN, null, absent)."""
    return float(value) if is_number(value) and math.isfinite(value) else None


# --- paired statistics -------------------------------------------------------------------


def combine(fn: Callable[..., float], *operands: Series) -> Series:
    """``fn`` of the operands' points, and of their replicates replicate by replicate (None
    where any operand's is; as many replicates as the shortest operand has)."""
    def apply(values: tuple[float | None, ...]) -> float | None:
        return None if None in values else finite(fn(*values))

    point = apply(tuple(s.point for s in operands))
    draws = zip(*(s.replicates for s in operands), strict=False)
    return Series(point, tuple(apply(values) for values in draws))


def interval_of(values: Series, at: float) -> Interval:
    """The point and the ``at`` percentile interval of the replicates (nulls skipped)."""
    low, high = percentile_interval(values.replicates, at)
    return Interval(values.point, finite(low), finite(high))


# --- formatting shared by tables, findings and compare -----------------------------------


def fmt(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def fmt_p(value: float | None) -> str:
    """A p-value: 3 decimals, or e.g. ``7.7e-4`` below 0.001."""
    if value is None or value == 0 or value >= 0.001:
        return fmt(value)
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_interval(value: Interval, number: Callable[[float | None], str] = fmt) -> str:
    """``mean [low, high]``; the mean alone without an interval; "–" without a mean."""
    if value.mean is None:
        return DASH
    if value.low is None or value.high is None:
        return number(value.mean)
    return f"{number(value.mean)} [{number(value.low)}, {number(value.high)}]"


def fmt_signed(value: Interval) -> str:
    """A difference and its interval with signs, e.g. ``-0.120 [-0.150, -0.090]``."""
    def signed(x: float | None) -> str:
        return DASH if x is None else f"{x:+.3f}"

    return fmt_interval(value, signed)


# --- warnings ----------------------------------------------------------------------------


def gate_warnings(rows: list[Row]) -> list[str]:
    """One warning per fine-tuned model (and seed) whose memorisation gate failed (unlearning
    results mean little unless vanilla knows every person and gold knows no forget person)."""
    warnings = []
    for row in rows:
        gate = row.get("gate")
        if isinstance(gate, dict) and not gate.get("passed", True):
            reasons = "; ".join(gate.get("failures") or ["no reason recorded"])
            warnings.append(
                f"WARNING: the {row['method']} model ({row.get('forget_split')}, seed "
                f"{row.get('seed')}) failed its memorisation gate ({reasons}), so the scores "
                "that rest on it are not trustworthy."
            )
    return warnings
