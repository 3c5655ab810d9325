"""Read a run's ``results.json`` and select its rows: the data layer every report module uses.

A row is one model of the run (``vanilla`` and ``gold`` included as methods); its scores are
trusted only when its status is ``ok`` (a diverged row has none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"
SCHEMA = 1
BASELINES = ("vanilla", "gold")
MODALITIES = ("both", "visual", "text")
SCORE_KEYS = ("forget_quality", "forget_quality_js", "model_utility", "real", "retain", "forget")
"""The scalar scores of a row (spec §5)."""
TASK_ORDER = (
    "forget_captions", "retain_captions", "forget_face_name", "retain_face_name", "real_faces",
    "real_world", "forget_qa", "retain_qa", "real_authors", "world_facts",
)

Row = dict[str, Any]


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
    if payload.get("schema", SCHEMA) != SCHEMA:
        raise ValueError(f"{where}: schema {payload['schema']!r} is not {SCHEMA}")
    if not isinstance(payload.get("run", {}), dict):
        raise ValueError(f"{where}: 'run' must be an object")
    cv = payload.get("cv", {"rows": []})
    if not isinstance(cv, dict) or not isinstance(cv.get("rows"), list):
        raise ValueError(f"{where}: 'cv' must be an object with 'rows' (the vision-only track)")
    if not isinstance(payload.get("rows"), list):
        raise ValueError(f"{where}: missing 'rows' (a list of result rows)")
    for i, row in enumerate(payload["rows"]):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: row {i} is not an object")
        for key in ("method", "status"):
            if not isinstance(row.get(key), str):
                raise ValueError(f"{where}: row {i} lacks {key!r}")


def unique(values: Iterable[Any]) -> list[Any]:
    """``values`` without repeats or ``None``, in order of first appearance."""
    return list(dict.fromkeys(v for v in values if v is not None))


def forget_splits(results: dict[str, Any]) -> list[str]:
    """The run's forget splits, then any other split its rows name."""
    listed = results.get("run", {}).get("forget_splits") or []
    return unique([*listed, *(row.get("forget_split") for row in results["rows"])])


def main_variant(results: dict[str, Any]) -> str | None:
    """The run's main variant (else the first variant of its rows)."""
    named = results.get("run", {}).get("main_variant")
    return named or next(iter(variants(results["rows"])), None)


def variants(rows: list[Row]) -> dict[str, tuple[bool, float]]:
    """Each variant of the unlearning rows: (LoRA?, λ of the ℓ1 penalty), as the rows record."""
    out: dict[str, tuple[bool, float]] = {}
    for row in rows:
        if row.get("variant") is not None and row["variant"] not in out:
            out[row["variant"]] = (bool(row.get("lora")), float(row.get("l1") or 0.0))
    return out


def split_rows(rows: list[Row], split: str) -> list[Row]:
    return [row for row in rows if row.get("forget_split") == split]


def methods(rows: list[Row]) -> list[str]:
    """The unlearning methods of ``rows`` (baselines excluded), in order of appearance."""
    return unique(row["method"] for row in rows if row["method"] not in BASELINES)


def find_row(
    rows: list[Row], method: str, variant: str | None = None, modality: str | None = None
) -> Row | None:
    """The row of ``method`` (a baseline: whatever its variant and modality)."""
    for row in rows:
        if row["method"] == method and (
            method in BASELINES
            or (row.get("variant") == variant and row.get("modality") == modality)
        ):
            return row
    return None


def score(row: Row | None, key: str) -> float | None:
    """A scalar score of a row with status ``ok``; ``None`` when there is none."""
    if row is None or row["status"] != "ok" or not isinstance(row.get("scores"), dict):
        return None
    value = row["scores"].get(key)
    return float(value) if is_number(value) else None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def gate_warnings(rows: list[Row]) -> list[str]:
    """One warning per fine-tuned model whose memorisation gate failed (issue: unlearning
    results mean little unless vanilla knows every person and gold knows no forget person)."""
    warnings = []
    for row in rows:
        gate = row.get("gate")
        if isinstance(gate, dict) and not gate.get("passed", True):
            reasons = "; ".join(gate.get("failures") or ["no reason recorded"])
            warnings.append(
                f"WARNING: the {row['method']} model ({row.get('forget_split')}) failed its "
                f"memorisation gate ({reasons}), so the scores that rest on it are not "
                "trustworthy."
            )
    return warnings
