"""``clearbench audit --audits crossmodal``: does unlearning one modality forget what the other
modality still reaches? (issue 20, item 5; docs/audits.md, "Cross-modal leakage").

Top to bottom: one method's models unlearned on text only, images only and both, and the
vanilla and gold models, are each evaluated once on the four probes of
:mod:`clearbench.evaluation.crossmodal` (forget QA without image, face→name, captioning, and
``describe_person``: a text prompt naming the person, answered with the person's captions);
K and forgetting progress P per (modality, probe) with person-bootstrap intervals, and the
paper's claim (both modalities forget more) checked cell by cell; writes
``OUT/crossmodal.json``. A finished one of the same models, data and settings is not redone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from clearbench.config import PositiveInt, one_of, settings
from clearbench.data.preflight import Need, preflight
from clearbench.data.prompts import DESCRIBE_PROMPTS
from clearbench.data.schema import EVALUATED_SPLITS
from clearbench.evaluation.crossmodal import MODALITIES, PROBES, crossmodal_matrix
from clearbench.evaluation.evaluate import EvalSettings
from clearbench.evaluation.statistics import LEVEL, REPLICATES, Evaluation
from clearbench.evaluation.tasks import TASKS_BY_NAME
from clearbench.io import read_json
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.recipes.auditfile import AuditFile
from clearbench.recipes.relearn import forget_evaluation
from clearbench.recipes.stage import data_source
from clearbench.recipes.unlearn import MARKER as UNLEARNING_RECORD

CROSSMODAL_FILE = "crossmodal.json"
SCHEMA = 1
FLAGS = {"text": "--text-model", "visual": "--visual-model", "both": "--model"}
"""The option naming each modality's model in ``clearbench audit``."""


@settings(frozen=True)
class CrossModalConfig:
    model: str
    """The method's model unlearned on both modalities (``--modality both``)."""
    text_model: str
    """The same method unlearned on text only (``--modality text``: the forget QA)."""
    visual_model: str
    """The same method unlearned on images only (``--modality visual``: the captions)."""
    vanilla: str
    gold: str
    data: str
    out: Path
    forget_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    batch_size: PositiveInt = 16
    max_new_tokens: PositiveInt = 32
    replicates: PositiveInt = REPLICATES
    seed: int = 0
    """Seed of the person bootstrap."""
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def data_needs(self) -> list[Need]:
        return [TASKS_BY_NAME[task].need(self.forget_split) for task in PROBES.values()]

    def models(self) -> dict[str, str]:
        """Name → path: the three unlearned models (by modality), vanilla and gold."""
        return {"text": self.text_model, "visual": self.visual_model, "both": self.model,
                "vanilla": self.vanilla, "gold": self.gold}


def check_unlearned(models: Mapping[str, str], forget_split: str) -> None:
    """Refuse unlearned models whose records (``unlearning.json``) say another modality or
    forget split than their place in the matrix, or different methods; models without a
    record are taken as they are."""
    records = {modality: read_json(Path(models[modality]) / UNLEARNING_RECORD,
                                   what="unlearning record").get("config", {})
               for modality in MODALITIES
               if (Path(models[modality]) / UNLEARNING_RECORD).is_file()}
    problems = [f"{FLAGS[modality]} {models[modality]} was unlearned "
                + (f"on modality {config.get('modality')!r}, not {modality!r}"
                   if config.get("modality") != modality
                   else f"for {config.get('forget_split')!r}, not {forget_split!r}")
                for modality, config in records.items()
                if (config.get("modality"), config.get("forget_split")) != (modality,
                                                                           forget_split)]
    methods = {config.get("method") for config in records.values()}
    if len(methods) > 1:
        problems.append(f"the models were unlearned by different methods "
                        f"({', '.join(sorted(map(str, methods)))}): the matrix compares one "
                        "method's modalities")
    if problems:
        raise ValueError("cross-modal audit: " + "; ".join(problems))


def run_crossmodal(config: CrossModalConfig) -> dict[str, Any]:
    """The cross-modal leakage matrix of one method; writes OUT/crossmodal.json."""
    source = data_source(config.data, config.data_revision)
    paths = config.models()
    check_unlearned(paths, config.forget_split)
    setting = {"batch_size": config.batch_size, "max_new_tokens": config.max_new_tokens,
               "replicates": config.replicates, "seed": config.seed, "level": LEVEL,
               "dtype": config.dtype, "describe_prompts": list(DESCRIBE_PROMPTS)}
    file = AuditFile.open(Path(config.out) / CROSSMODAL_FILE, "crossmodal", SCHEMA, source,
                          paths, config.forget_split, setting, nest_models=True)
    if (done := file.done()) is not None:
        return done

    preflight(source, config.data_needs())  # bad data fails before any model loads
    started = time.perf_counter()
    rows = {task: TASKS_BY_NAME[task].rows(source, config.forget_split)
            for task in PROBES.values()}
    settings = EvalSettings(batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
                            seed=config.seed)
    evaluations: dict[str, Evaluation] = {}
    for name, path in paths.items():
        vlm = load_vlm(path, dtype=config.dtype, device=config.device)
        evaluations[name] = forget_evaluation(vlm, rows, settings)
        del vlm
    payload = file.write(time.perf_counter() - started, {
        "probes": PROBES,
        "persons": sorted({row.unit for row in rows[PROBES["captioning"]]}),
        **crossmodal_matrix(evaluations, config.replicates, config.seed),
        "evaluations": {name: evaluation["tasks"] for name, evaluation in evaluations.items()},
    })
    print_summary(payload)
    return payload


def print_summary(result: dict[str, Any]) -> None:
    def cell(value: dict[str, float | None]) -> str:
        if value["mean"] is None:
            return "–"
        if value["low"] is None or value["high"] is None:
            return f"{value['mean']:+.2f}"
        return f"{value['mean']:+.2f} [{value['low']:+.2f}, {value['high']:+.2f}]"

    print("cross-modal leakage: forgetting progress P per probe (95 % person-bootstrap "
          "interval)")
    print(f"{'unlearned on':13}" + "".join(f"{probe:>22}" for probe in PROBES))
    for modality, cells in result["matrix"].items():
        print(f"{modality:13}" + "".join(f"{cell(c['progress']):>22}" for c in cells.values()))
    references = {**result["references"], "vanilla - gold": result["gap"]}
    print("K: " + "; ".join(f"{name} " + " ".join(f"{probe}={k['mean']:.3f}"
                                                 for probe, k in by_probe.items())
                            for name, by_probe in references.items()))
    for probe, claim in result["claim"].items():
        print(f"{probe:11} P(both) - P(text) {cell(claim['both_minus_text'])} "
              f"{claim['both_minus_text']['verdict']}; P(both) - P(visual) "
              f"{cell(claim['both_minus_visual'])} {claim['both_minus_visual']['verdict']}")
