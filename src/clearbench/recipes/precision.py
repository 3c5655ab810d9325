"""The precision audit on its own (``clearbench run``'s ``audit precision`` stages): forget
knowledge K and forgetting progress P of a model as it is and after every precision transform
and packaging (:func:`~clearbench.recipes.audit.precision_knowledge`, docs/audits.md,
"Precision"), written to ``OUT/precision.json`` beside the membership audit's ``audit.json``,
so that neither audit redoes the other. A finished ``precision.json`` of the same models, data
and settings is not redone.

Vanilla's and gold's evaluations under every transform are the same for every model of a
split: the file keeps them (``reference_evaluations``, with every row's record), and an audit
given another model's ``precision.json`` (``references``; in the run, gold's) reuses them
instead of evaluating vanilla and gold again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from clearbench.config import settings
from clearbench.data.preflight import Need, preflight
from clearbench.evaluation.statistics import LEVEL, Evaluation
from clearbench.io import read_json, stable_hash, write_json_atomic
from clearbench.recipes.audit import (
    FORGET_TASKS,
    TRANSFORMS,
    AuditConfig,
    adapter_of,
    check_adapter_base,
    describe_model,
    forget_rows,
    precision_knowledge,
    reference_evaluations,
    reference_kinds,
    skipped_transforms,
)
from clearbench.recipes.evaluate import earlier_result
from clearbench.recipes.stage import data_source, model_key

PRECISION_FILE = "precision.json"
SCHEMA = 1


@settings(frozen=True)
class PrecisionConfig(AuditConfig):
    """:class:`AuditConfig` with ``precision`` on, reading only the forget tasks (no
    membership, so no ``holdout`` persons); ``vanilla`` gives each transform its P."""

    precision: bool = True
    references: Path | None = None
    """A ``precision.json`` with the same vanilla and gold models, data, split and settings
    (gold's own, in the run) whose vanilla and gold evaluations are reused instead of
    evaluating them again; the results are the same."""

    def data_needs(self) -> list[Need]:
        return [task.need(self.forget_split) for task in FORGET_TASKS]


def run_precision(config: PrecisionConfig) -> dict[str, Any]:
    """K and P of ``config.model`` under every transform; writes OUT/precision.json."""
    source = data_source(config.data, config.data_revision)
    paths = {name: path for name, path in (
        ("model", config.model), ("gold", config.gold), ("vanilla", config.vanilla),
        ("adapter", adapter_of(config))) if path is not None}
    keys = {name: model_key(path) for name, path in paths.items()}
    if "adapter" in keys and "vanilla" in keys:
        check_adapter_base(config.model, keys["vanilla"])
    setting = {"batch_size": config.batch_size, "replicates": config.replicates,
               "seed": config.seed, "level": LEVEL, "dtype": config.dtype,
               "max_new_tokens": config.max_new_tokens, "transforms": list(TRANSFORMS),
               "skipped": skipped_transforms(config)}
    header = {"schema": SCHEMA, "audit": "precision",
              **{name: describe_model(path, keys[name]) for name, path in paths.items()},
              "data": {"source": source.clear, "fingerprint": source.fingerprint()["clear"]},
              "forget_split": config.forget_split, "settings": setting}
    identity = stable_hash([keys, header["data"]["fingerprint"], config.forget_split, setting])
    result_file = Path(config.out) / PRECISION_FILE
    done = earlier_result(result_file, "precision audit")
    if done is not None and done.get("identity") == identity:
        print(f"precision: {result_file} is already done (identity {identity}); nothing to do")
        return done

    preflight(source, config.data_needs())  # bad data fails before any model loads
    started = time.perf_counter()
    references = (reused_references(config.references, header, reference_kinds(config))
                  if config.references else
                  reference_evaluations(config, forget_rows(config, source)))
    result = precision_knowledge(config, source, references)
    payload = header | {"identity": identity, "seconds": time.perf_counter() - started,
                        **result, "reference_evaluations": references}
    write_json_atomic(result_file, payload)
    for kind, transform in result["transforms"].items():
        progress = transform.get("progress", {}).get("mean")
        print(f"precision {kind:14} " + (f"skipped: {transform['skipped']}"
                                          if "skipped" in transform else
                                          f"K {transform['forget_knowledge']:.3f} P {progress}"
                                          + ("  FLAGGED: P fell" if transform.get("flagged")
                                             else "")))
    return payload


def reused_references(path: Path, header: dict[str, Any],
                      kinds: list[str]) -> dict[str, dict[str, Evaluation]]:
    """Vanilla's and gold's evaluations under every transform of ``kinds`` from the
    ``precision.json`` at ``path``; ValueError naming the file where its vanilla or gold
    model, data, split or settings (but which packagings were skipped) are not this audit's."""
    stored = read_json(path, what="precision audit")

    def setting(payload: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payload.get("settings", {}).items() if k != "skipped"}

    differ = [part for part, mine, theirs in (
        ("vanilla model", header.get("vanilla", {}).get("key"),
         stored.get("vanilla", {}).get("key")),
        ("gold model", header["gold"]["key"], stored.get("gold", {}).get("key")),
        ("data", header["data"]["fingerprint"], stored.get("data", {}).get("fingerprint")),
        ("forget split", header["forget_split"], stored.get("forget_split")),
        ("settings", setting(header), setting(stored))) if mine != theirs]
    evaluations = stored.get("reference_evaluations", {})
    if any(kind not in evaluations.get(name, {}) for name in ("vanilla", "gold")
           for kind in kinds):
        differ.append("transforms")
    if differ:
        raise ValueError(f"precision audit: references {path} cannot be reused: its "
                         f"{', '.join(differ)} differ from this audit's")
    return {name: {kind: evaluations[name][kind] for kind in kinds}
            for name in ("vanilla", "gold")}
