"""The robustness audit (issue 20, item 4): does the model's forgetting hold when the forget
persons are asked about differently?

Forget knowledge K (spec §5) on the forget tasks under every condition of
:mod:`clearbench.evaluation.robustness`: as is, under each seeded image perturbation, in
held-out prompt wordings and with sampled decoding (``samples`` answers per row at
``temperature``: does any sample name the person?). With ``vanilla`` and ``gold`` both models
are audited under the same conditions too (three times the cost) and each condition gets its
forgetting progress P. Writes ``OUT/robustness.json``; a finished one of the same models, data
and settings is not redone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import torch

from clearbench.config import PositiveFloat, PositiveInt, one_of, settings
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.perturb import PERTURBATIONS, stable_rng
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS
from clearbench.evaluation.aggregates import Summaries
from clearbench.evaluation.evaluate import EvalSettings, evaluate_task
from clearbench.evaluation.robustness import (
    AS_IS,
    CONDITIONS,
    HELD_OUT_PROMPTS,
    HELD_OUT_WORDING,
    SAMPLED,
    Rows,
    best_of_samples,
    condition_results,
    held_out_rows,
    perturbed_rows,
)
from clearbench.evaluation.tasks import TASKS_BY_NAME, TaskRow
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.models.vlm import VLM
from clearbench.recipes.audit import FORGET_TASKS, forget_rows
from clearbench.recipes.auditfile import AuditFile
from clearbench.recipes.stage import data_source

ROBUSTNESS_FILE = "robustness.json"
SCHEMA = 1
QA_TASK = "forget_qa"


@settings(frozen=True)
class RobustnessConfig:
    model: str
    data: str
    out: Path
    forget_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    vanilla: str | None = None
    """With ``gold``: audit vanilla and gold under the same conditions (3× the cost) and
    report each condition's forgetting progress P."""
    gold: str | None = None
    seed: int = 0
    """Seed of the image perturbations, the held-out prompt drawn per row and the sampling."""
    samples: PositiveInt = 5
    temperature: PositiveFloat = 1.0
    max_new_tokens: PositiveInt = 32
    batch_size: PositiveInt = 16
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if (self.vanilla is None) != (self.gold is None):
            raise ValueError("forgetting progress needs both --vanilla and --gold (or neither)")

    def data_needs(self) -> list[Need]:
        return [task.need(self.forget_split) for task in FORGET_TASKS]


def run_robustness(config: RobustnessConfig) -> dict[str, Any]:
    """K of ``config.model`` (and of vanilla and gold, if given) under every condition;
    writes OUT/robustness.json."""
    source = data_source(config.data, config.data_revision)
    paths = {"model": config.model,
             **({"vanilla": config.vanilla, "gold": config.gold} if config.gold else {})}
    setting = {"seed": config.seed, "samples": config.samples,
               "temperature": config.temperature, "max_new_tokens": config.max_new_tokens,
               "batch_size": config.batch_size, "dtype": config.dtype,
               "conditions": list(CONDITIONS), "held_out_prompts": HELD_OUT_PROMPTS}
    file = AuditFile.open(Path(config.out) / ROBUSTNESS_FILE, "robustness", SCHEMA, source,
                          paths, config.forget_split, setting)
    if (done := file.done()) is not None:
        return done

    preflight(source, config.data_needs())  # bad data fails before any model loads
    started = time.perf_counter()
    rows = forget_rows(source, config.forget_split)
    questions = held_out_questions(source, config.forget_split)
    variants = {name: perturbed_rows(rows, name, config.seed) for name in PERTURBATIONS}
    variants[HELD_OUT_WORDING] = held_out_rows(rows, questions, config.seed)
    summaries = {}
    for name, path in paths.items():
        vlm = load_vlm(path, dtype=config.dtype, device=config.device)
        summaries[name] = knowledge_under(vlm, rows, variants, config)
        del vlm
    references = {name: summaries[name] for name in ("vanilla", "gold") if name in summaries}
    payload = file.write(time.perf_counter() - started, {
        "conditions": {condition: sorted(variants.get(condition, rows))
                       for condition in CONDITIONS if condition != AS_IS},
        "held_out_questions": "paraphrased_question" if questions else "none: QA unchanged",
        "results": condition_results(summaries["model"], references or None),
        "summaries": summaries,
    })
    print_summary(payload)
    return payload


def held_out_questions(source: DataSource, forget_split: str) -> list[str] | None:
    """The QA rows' held-out question wordings (``paraphrased_question``: CLEAR-mini never
    trains a fact in it), None where the data has no such column."""
    dataset = TASKS_BY_NAME[QA_TASK].load(source, forget_split)
    if "paraphrased_question" not in dataset.column_names:
        return None
    questions = dataset["paraphrased_question"]
    return questions if all(questions) else None


def knowledge_under(
    vlm: VLM, rows: Rows, variants: Mapping[str, Rows], config: RobustnessConfig
) -> dict[str, Summaries]:
    """Per condition, the forget tasks' summaries (without their per-row records): ``as_is``,
    each of ``variants`` (the changed tasks evaluated, the others as is) and ``sampled``."""
    settings = EvalSettings(batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
                            seed=config.seed)

    def evaluate(changed: Rows) -> dict[str, dict[str, Any]]:
        return {task: {key: value for key, value in
                       evaluate_task(vlm, TASKS_BY_NAME[task], task_rows, settings).items()
                       if key != "rows"}
                for task, task_rows in changed.items()}

    as_is = evaluate(rows)
    summaries: dict[str, Summaries] = {AS_IS: as_is}
    summaries |= {condition: as_is | evaluate(changed) for condition, changed in variants.items()}
    summaries[SAMPLED] = {
        task: best_of_samples(as_is[task], task_rows,
                              sample_answers(vlm, task_rows, config, key=task))
        for task, task_rows in rows.items()
    }
    return summaries


@torch.inference_mode()
def sample_answers(
    vlm: VLM, rows: Sequence[TaskRow], config: RobustnessConfig, *, key: str
) -> list[list[str]]:
    """``config.samples`` answers per row, sampled at ``config.temperature`` from the whole
    next-token distribution (no top-k, no top-p), ``config.batch_size`` answers a call. Each
    call draws from torch's generator seeded by (seed, ``key``, call), in a forked RNG state:
    the same settings give the same samples, and the caller's RNG is untouched."""
    examples = [Example(row.prompt, row.target, row.image, row.id)
                for row in rows for _ in range(config.samples)]
    devices = [vlm.device] if vlm.device.type == "cuda" else []
    was_training = vlm.model.training
    vlm.model.eval()
    texts: list[str] = []
    try:
        for start in range(0, len(examples), config.batch_size):
            batch = vlm.encode(examples[start : start + config.batch_size], with_answer=False)
            batch = {name: value.to(vlm.device) for name, value in batch.items()}
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(stable_rng("sample", config.seed, key, start)
                                      .integers(2**63)))
                sequences = vlm.model.generate(
                    **batch, do_sample=True, temperature=config.temperature, top_k=0, top_p=1.0,
                    num_beams=1, max_new_tokens=config.max_new_tokens,
                    eos_token_id=vlm.stop_token_ids, pad_token_id=vlm.pad_token_id)
            texts += [vlm._decode(new) for new in sequences[:, batch["input_ids"].shape[1]:]]
    finally:
        vlm.model.train(was_training)
    return [texts[i : i + config.samples] for i in range(0, len(texts), config.samples)]


def print_summary(audit: dict[str, Any]) -> None:
    print(f"{'condition':17} {'K':>6} {'change':>7} {'P':>6}  fact accuracy per forget task")
    for condition, result in audit["results"].items():
        progress = result.get("progress")
        facts = " ".join(f"{task}={value:.2f}" for task, value in result["fact_accuracy"].items())
        print(f"{condition:17} {result['forget_knowledge']:6.3f} {result['change']:+7.3f} "
              f"{'–' if progress is None else format(progress, '6.2f'):>6}  {facts}")
