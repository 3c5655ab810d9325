"""``clearbench audit --audits precision``: does forgetting survive lower precision and
another packaging? (issue 20, item 3; docs/audits.md, "Precision").

Top to bottom: evaluate the forget tasks (spec §4) on the model as it is and under every
transform of :data:`TRANSFORMS` that can run here (int8 dynamic quantization, 4-bit NF4, bf16
and fp16 round trips, the LoRA adapter merged into or kept beside the vanilla base stored at
bf16 / fp16), and vanilla and gold under the same transforms; forget knowledge K (spec §5)
under each, its change, and with a vanilla model forgetting progress P on the person-bootstrap
draws and the flag (:mod:`clearbench.evaluation.precision`); write ``OUT/precision.json``. A
finished ``precision.json`` of the same models, data and settings is not redone.

Vanilla's and gold's evaluations under every transform are the same for every model of a
split: the file keeps them (``reference_evaluations``, with every row's record), and an audit
given another model's ``precision.json`` (``references``; in the run, gold's) reuses them
instead of evaluating vanilla and gold again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from clearbench.config import PositiveInt, one_of, settings
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS
from clearbench.evaluation.aggregates import forgetting_progress
from clearbench.evaluation.evaluate import EvalSettings, evaluate_task
from clearbench.evaluation.precision import RULE, progress_under
from clearbench.evaluation.relearning import knowledge_draws
from clearbench.evaluation.statistics import LEVEL, REPLICATES, Evaluation, Resampler
from clearbench.evaluation.tasks import TaskRow
from clearbench.io import read_json
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.models.precision import (
    PACKAGINGS,
    PRECISIONS,
    apply_precision,
    package,
    unavailable,
)
from clearbench.recipes.audit import FORGET_TASKS, forget_rows
from clearbench.recipes.auditfile import AuditFile
from clearbench.recipes.stage import data_source
from clearbench.recipes.unlearn import ADAPTER
from clearbench.recipes.unlearn import MARKER as UNLEARNING_MARKER

PRECISION_FILE = "precision.json"
SCHEMA = 2
"""2: its own file and command (``--audits precision``), no longer part of ``audit.json``."""
AS_IS = "as_is"
TRANSFORMS = (AS_IS, *PRECISIONS, *PACKAGINGS)
"""Every state of the model the precision audit measures, in the order it reports them."""
NO_ADAPTER = (f"no LoRA adapter: MODEL/{ADAPTER} is absent and --adapter is not given "
              "(unlearn with --lora --save-adapter)")


@settings(frozen=True)
class PrecisionConfig:
    model: str
    gold: str
    data: str
    out: Path
    forget_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    vanilla: str | None = None
    """The vanilla model, the base of the packagings (the model the adapter was trained on);
    with it each transform gets forgetting progress P and the flag."""
    adapter: str | None = None
    """The model's unmerged LoRA adapter (default: MODEL/adapter when present)."""
    references: Path | None = None
    """A ``precision.json`` with the same vanilla and gold models, data, split and settings
    (gold's own, in the run) whose vanilla and gold evaluations are reused instead of
    evaluating them again; the results are the same."""
    batch_size: PositiveInt = 16
    replicates: PositiveInt = REPLICATES
    seed: int = 0
    """Seed of the person bootstrap."""
    max_new_tokens: PositiveInt = 32
    """Greedy generation length of the forget tasks."""
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def data_needs(self) -> list[Need]:
        return [task.need(self.forget_split) for task in FORGET_TASKS]


def run_precision(config: PrecisionConfig) -> dict[str, Any]:
    """K and P of ``config.model`` under every transform; writes OUT/precision.json."""
    source = data_source(config.data, config.data_revision)
    paths = {name: path for name, path in (
        ("model", config.model), ("gold", config.gold), ("vanilla", config.vanilla),
        ("adapter", adapter_of(config))) if path is not None}
    setting = {"batch_size": config.batch_size, "replicates": config.replicates,
               "seed": config.seed, "level": LEVEL, "dtype": config.dtype,
               "max_new_tokens": config.max_new_tokens, "transforms": list(TRANSFORMS),
               "skipped": skipped_transforms(config)}
    file = AuditFile.open(Path(config.out) / PRECISION_FILE, "precision", SCHEMA, source, paths,
                          config.forget_split, setting)
    if "adapter" in file.keys and "vanilla" in file.keys:
        check_adapter_base(config.model, file.keys["vanilla"])
    if (done := file.done()) is not None:
        return done

    preflight(source, config.data_needs())  # bad data fails before any model loads
    started = time.perf_counter()
    rows = forget_rows(source, config.forget_split)
    references = (reused_references(config.references, file.header, reference_kinds(config))
                  if config.references else reference_evaluations(config, rows))
    result = precision_knowledge(config, rows, references)
    payload = file.write(time.perf_counter() - started,
                         {**result, "reference_evaluations": references})
    print_summary(payload)
    return payload


def adapter_of(config: PrecisionConfig) -> str | None:
    """The model's LoRA adapter: ``config.adapter``, else MODEL/adapter when present."""
    if config.adapter is not None:
        return config.adapter
    default = Path(config.model) / ADAPTER
    return str(default) if default.is_dir() else None


def skipped_transforms(config: PrecisionConfig) -> dict[str, str]:
    """The transforms of :data:`TRANSFORMS` that cannot run here, with the reason (decided
    before any model loads: a machine that can run more has another audit identity)."""
    adapter = adapter_of(config)
    packaging = (NO_ADAPTER if adapter is None else
                 "needs --vanilla, the model the adapter was trained on"
                 if config.vanilla is None else None)
    reasons = {kind: unavailable(kind, config.device) for kind in PRECISIONS}
    reasons |= {kind: packaging for kind in PACKAGINGS}
    return {kind: reason for kind, reason in reasons.items() if reason is not None}


def reference_transform(kind: str) -> str:
    """What vanilla and gold, which have no adapter, undergo for transform ``kind``: a
    packaging's round trip of its dtype, else ``kind`` itself."""
    return PACKAGINGS[kind][1] if kind in PACKAGINGS else kind


def check_adapter_base(model: str, vanilla_key: dict[str, Any]) -> None:
    """Refuse a vanilla model other than the one the model's unlearning started from (its
    record's ``model`` key), which the adapter must be merged into."""
    record = Path(model) / UNLEARNING_MARKER
    if not record.is_file():
        return
    base = read_json(record, what="unlearning record").get("model")
    if base is not None and base != vanilla_key:
        raise ValueError(f"--vanilla is not the model {model} was unlearned from (its "
                         f"{UNLEARNING_MARKER} records {base}, --vanilla is {vanilla_key}): "
                         "the adapter belongs on the model the unlearning started from")


def precision_evaluation(config: PrecisionConfig, rows: dict[str, list[TaskRow]], path: str,
                         kind: str) -> Evaluation:
    """The forget tasks' evaluation (``rows``: task name → rows) of the model at ``path``
    under transform ``kind`` (a packaging: ``path`` is the base the model's adapter goes on)."""
    settings = EvalSettings(batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
                            seed=config.seed)
    vlm = load_vlm(path, dtype=config.dtype, device=config.device)
    if kind in PACKAGINGS:
        package(vlm, adapter_of(config), kind)
    elif kind != AS_IS:
        apply_precision(vlm.model, kind)
    return {"tasks": {task.name: evaluate_task(vlm, task, rows[task.name], settings)
                      for task in FORGET_TASKS}}


def reference_kinds(config: PrecisionConfig) -> list[str]:
    """The transforms vanilla and gold undergo: every one of :data:`TRANSFORMS` that runs
    here but the packagings (theirs is their dtype's round trip)."""
    skipped = skipped_transforms(config)
    return [kind for kind in TRANSFORMS if kind not in skipped and kind not in PACKAGINGS]


def reference_evaluations(config: PrecisionConfig, rows: dict[str, list[TaskRow]],
                          ) -> dict[str, dict[str, Evaluation]]:
    """Vanilla's and gold's evaluations of the forget ``rows`` under every transform of
    :func:`reference_kinds` (none without a vanilla model)."""
    if config.vanilla is None:
        return {}
    return {name: {kind: precision_evaluation(config, rows, path, kind)
                   for kind in reference_kinds(config)}
            for name, path in (("vanilla", config.vanilla), ("gold", config.gold))}


def precision_knowledge(config: PrecisionConfig, rows: dict[str, list[TaskRow]],
                        references: dict[str, dict[str, Evaluation]]) -> dict[str, Any]:
    """Forget knowledge K (spec §5) of the model as it is (``as_is``) and under every other
    transform of :data:`TRANSFORMS` that can run here, each with its change of K (> 0:
    knowledge came back); skipped ones with the reason. With a vanilla model also vanilla's and
    gold's K under the same transform (their packagings: the round trip of that dtype, they
    have no adapter), P on the person-bootstrap draws, its paired change from as is and the
    flag (:func:`~clearbench.evaluation.precision.progress_under`). ``rows``: the forget
    tasks' rows; ``references``: vanilla's and gold's :func:`reference_evaluations` (the same
    for every model; empty without a vanilla model)."""
    skipped = skipped_transforms(config)
    kinds = [kind for kind in TRANSFORMS if kind not in skipped]
    model = {kind: precision_evaluation(
                 config, rows, config.vanilla if kind in PACKAGINGS else config.model, kind)
             for kind in kinds}
    resampler = Resampler(model[AS_IS], config.replicates, config.seed)
    k = {kind: knowledge_draws(evaluation, resampler) for kind, evaluation in model.items()}
    known = {name: {kind: knowledge_draws(by_kind[kind], resampler)
                    for kind in reference_kinds(config)}
             for name, by_kind in references.items()}

    def progress(kind: str) -> np.ndarray:
        reference = reference_transform(kind)
        return forgetting_progress(k[kind], known["vanilla"][reference],
                                   known["gold"][reference])

    transforms: dict[str, dict[str, Any]] = {kind: {"skipped": reason}
                                             for kind, reason in skipped.items()}
    for kind in kinds:
        transforms[kind] = {"forget_knowledge": float(k[kind][0]),
                            "change": float(k[kind][0] - k[AS_IS][0])}
        if known:
            transforms[kind] |= {f"forget_knowledge_{name}":
                                 float(draws[reference_transform(kind)][0])
                                 for name, draws in known.items()}
            transforms[kind] |= progress_under(progress(AS_IS), progress(kind))
    transforms = {kind: transforms[kind] for kind in TRANSFORMS}
    flags = {"flagged": [kind for kind, result in transforms.items() if result.get("flagged")],
             "rule": RULE} if known else {}
    return {"transforms": transforms, **flags}


def print_summary(audit: dict[str, Any]) -> None:
    print(f"{'transform':14} {'K':>6} {'change':>7} {'P':>6}")
    for kind, result in audit["transforms"].items():
        if "skipped" in result:
            print(f"{kind:14} skipped: {result['skipped']}")
            continue
        progress = result.get("progress", {}).get("mean")
        flag = "  FLAGGED: P fell" if result.get("flagged") else ""
        print(f"{kind:14} {result['forget_knowledge']:6.3f} {result['change']:+7.3f} "
              f"{'–' if progress is None else format(progress, '6.2f'):>6}{flag}")



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
