"""``clearbench audit --audits relearn``: does a few steps of fine-tuning bring the forgotten
knowledge back? (issue 20, item 2; docs/audits.md, "Relearning attack").

Top to bottom: split the forget persons into a relearn half and an evaluation half; for each
attack (``forget_half``: the relearn half's training rows; ``retain``: as many retain rows,
benign relearning), starting from the model and from the gold model alike, train with
answer-only loss up to the largest step of the grid, measuring forget knowledge K on the
evaluation half's rows at step 0 and at every step of the grid; compare the model's curve with
gold's (learning from scratch) step by step; write ``OUT/relearn.json``. A finished
``relearn.json`` of the same models, data and settings is not redone.

Gold's curves are the same for every model of a split: the file keeps them (``gold_curves``,
every row's record), and an audit given gold's own ``relearn.json`` (``gold_curves``) reuses
them instead of training gold again; gold audited against itself trains once.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from clearbench.config import NonNegativeFloat, PositiveFloat, PositiveInt, one_of, settings
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS, retain_split_of
from clearbench.data.views import training_examples, view_needs
from clearbench.evaluation.aggregates import forgetting_progress
from clearbench.evaluation.evaluate import EvalSettings, evaluate_task
from clearbench.evaluation.relearning import (
    compare_with_gold,
    knowledge_draws,
    person_halves,
    person_of,
)
from clearbench.evaluation.statistics import LEVEL, REPLICATES, Evaluation, Resampler
from clearbench.evaluation.tasks import TASKS_BY_NAME, TaskRow
from clearbench.io import read_json
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.models.vlm import VLM
from clearbench.recipes.audit import FORGET_TASKS, forget_rows
from clearbench.recipes.auditfile import AuditFile
from clearbench.recipes.finetune import answer_loss
from clearbench.recipes.stage import data_source
from clearbench.training.loop import DivergedError, TrainSettings, check_finite, train

RELEARN_FILE = "relearn.json"
SCHEMA = 3
"""2: the file keeps gold's curves (``gold_curves``); 3: the rows' order does not depend on the
grid (:func:`relearn_order`). Files of an older schema are redone."""
ATTACKS = ("forget_half", "retain")
"""Relearning on the relearn half's forget rows, and on retain rows only (benign)."""
STEPS = (5, 20, 50)


@settings(frozen=True)
class RelearnConfig:
    model: str
    gold: str
    data: str
    out: Path
    vanilla: str | None = None
    """With a vanilla model, also forgetting progress P along the curves."""
    forget_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    relearn_steps: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = STEPS
    """Optimiser steps after which K is measured (one run up to the largest)."""
    relearn_lr: PositiveFloat = 2e-3
    relearn_batch_size: PositiveInt = 16
    margin: NonNegativeFloat = 0.05
    """How far K_model − K_gold's interval must lie above 0 to count as relearning faster."""
    batch_size: PositiveInt = 16
    """Rows per forward pass of the evaluation."""
    max_new_tokens: PositiveInt = 32
    replicates: PositiveInt = REPLICATES
    seed: int = 0
    """Seed of the person halves, the retain sample, the batches and the bootstrap."""
    gold_curves: Path | None = None
    """A ``relearn.json`` of the gold model (any audit by it with the same settings, data and
    split: gold's own, in the run) whose gold curves are reused instead of training gold
    again; the results are the same."""
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def data_needs(self) -> list[Need]:
        return [*(task.need(self.forget_split) for task in FORGET_TASKS),
                *view_needs(f"{self.forget_split}+tofu"),
                *view_needs(f"{retain_split_of(self.forget_split)}+tofu")]


def run_relearn(config: RelearnConfig) -> dict[str, Any]:
    """Relearning attack on ``config.model``, with ``config.gold`` as the baseline; writes
    OUT/relearn.json."""
    source = data_source(config.data, config.data_revision)
    paths = {"model": config.model, "gold": config.gold,
             **({"vanilla": config.vanilla} if config.vanilla else {})}
    steps = sorted(set(config.relearn_steps))
    setting = {"steps": steps, "lr": config.relearn_lr,
               "batch_size": config.relearn_batch_size, "margin": config.margin,
               "eval_batch_size": config.batch_size, "max_new_tokens": config.max_new_tokens,
               "replicates": config.replicates, "seed": config.seed, "level": LEVEL,
               "dtype": config.dtype}
    file = AuditFile.open(Path(config.out) / RELEARN_FILE, "relearn", SCHEMA, source, paths,
                          config.forget_split, setting)
    if (done := file.done()) is not None:
        return done
    keys, header = file.keys, file.header

    preflight(source, config.data_needs())  # bad data fails before any model loads
    started = time.perf_counter()
    rows = forget_rows(source, config.forget_split)
    persons = sorted({row.unit for row in rows["forget_captions"]})
    relearn_half, evaluation_half = person_halves(persons, config.seed)
    evaluated = rows_about(rows, persons, evaluation_half)
    items = attack_examples(source, config.forget_split, persons, relearn_half, config.seed)
    eval_settings = EvalSettings(batch_size=config.batch_size,
                                 max_new_tokens=config.max_new_tokens, seed=config.seed)
    measure = partial(forget_evaluation, rows=evaluated, settings=eval_settings)
    train_settings = relearn_settings(config.relearn_lr, config.relearn_batch_size, config.seed)

    def load(name: str) -> VLM:
        return load_vlm(paths[name], dtype=config.dtype, device=config.device)

    curves: dict[str, dict[str, list[Evaluation]]] = {attack: {} for attack in ATTACKS}
    reused = reused_gold_curves(config.gold_curves, header) if config.gold_curves else None
    for name in ("model", "gold"):
        if name == "gold" and (reused is not None or keys["gold"] == keys["model"]):
            for attack in ATTACKS:  # gold against itself: the same seed, the same curves
                curves[attack]["gold"] = reused[attack] if reused else curves[attack]["model"]
            continue
        start = measure(load(name))
        for attack in ATTACKS:
            curves[attack][name] = [start, *relearn(load(name), items[attack], steps,
                                                    train_settings, measure,
                                                    f"relearn {name} on {attack}")]
    resampler = Resampler(curves[ATTACKS[0]]["model"][0], config.replicates, config.seed)
    k_vanilla = (float(knowledge_draws(measure(load("vanilla")), resampler)[0])
                 if config.vanilla else None)
    payload = file.write(time.perf_counter() - started, {
        "persons": {"relearn": relearn_half, "evaluation": evaluation_half},
        "rows": {"trained_on": {attack: [e.id for e in items[attack]] for attack in ATTACKS},
                 "evaluated": {task: [row.id for row in task_rows]
                               for task, task_rows in evaluated.items()}},
        **({"vanilla_knowledge": k_vanilla} if k_vanilla is not None else {}),
        "attacks": {attack: attack_result([0, *steps], curves[attack], resampler, config.margin,
                                          k_vanilla)
                    for attack in ATTACKS},
        "gold_curves": {attack: curves[attack]["gold"] for attack in ATTACKS},
    })
    print_summary(payload)
    return payload


def reused_gold_curves(path: Path, header: dict[str, Any]) -> dict[str, list[Evaluation]]:
    """Gold's curves (per attack, one evaluation with its rows per step, step 0 first) from
    the ``relearn.json`` at ``path``; ValueError naming the file where its gold model, data,
    split or settings are not this audit's."""
    stored = read_json(path, what="relearning audit")
    differ = [part for part, mine, theirs in (
        ("gold model", header["gold"]["key"], stored.get("gold", {}).get("key")),
        ("data", header["data"]["fingerprint"], stored.get("data", {}).get("fingerprint")),
        ("forget split", header["forget_split"], stored.get("forget_split")),
        ("settings", header["settings"], stored.get("settings"))) if mine != theirs]
    if "gold_curves" not in stored:
        differ.append("gold curves (written by an older clearbench)")
    if differ:
        raise ValueError(f"relearning audit: gold_curves {path} cannot be reused: its "
                         f"{', '.join(differ)} differ from this audit's")
    return stored["gold_curves"]


def rows_about(rows: dict[str, list[TaskRow]], persons: Sequence[str],
               half: Sequence[str]) -> dict[str, list[TaskRow]]:
    """Per task, the rows about one person of ``half``, each with that person as its unit
    (TOFU hub rows' units are ``author k``: the name in the question decides)."""
    about = {task: [(person_of(persons, row.unit, row.prompt, row.target), row)
                    for row in task_rows] for task, task_rows in rows.items()}
    return {task: [replace(row, unit=person) for person, row in pairs if person in half]
            for task, pairs in about.items()}


def attack_examples(source: DataSource, forget_split: str, persons: Sequence[str],
                    relearn_half: Sequence[str], seed: int) -> dict[str, list[Example]]:
    """The training rows of each attack: ``forget_half``, the ``{split}+tofu`` rows about one
    person of the relearn half (whom a row is about: the forget person it names, its
    captions and questions name them); ``retain``, a ``seed``-drawn sample of as many
    ``{retain split}+tofu`` rows naming no forget person."""
    forget = [e for e in training_examples(source, f"{forget_split}+tofu")
              if person_of(persons, e.person, e.prompt, e.answer) in relearn_half]
    retain = [e for e in training_examples(source, f"{retain_split_of(forget_split)}+tofu")
              if not any(person in e.prompt or person in e.answer for person in persons)]
    if not forget or len(retain) < len(forget):
        raise ValueError(f"relearning attack: {len(forget)} forget rows of the relearn half "
                         f"({', '.join(relearn_half)}) and {len(retain)} retain rows; it needs "
                         "some forget rows and as many retain rows")
    drawn = np.random.default_rng(seed).choice(len(retain), size=len(forget), replace=False)
    return {"forget_half": forget, "retain": [retain[i] for i in sorted(drawn)]}


def forget_evaluation(vlm: VLM, rows: dict[str, list[TaskRow]],
                      settings: EvalSettings) -> Evaluation:
    """The tasks of ``rows`` (task name → rows), as ``{"tasks": {name: summary}}``."""
    return {"tasks": {name: evaluate_task(vlm, TASKS_BY_NAME[name], task_rows, settings)
                      for name, task_rows in rows.items()}}


def relearn_settings(lr: float, batch_size: int, seed: int) -> TrainSettings:
    """One epoch (:func:`relearn` makes it exactly the grid's steps long) at a constant ``lr``
    without weight decay, so the model at step s is the same whatever the grid's largest
    step."""
    return TrainSettings(epochs=1.0, batch_size=batch_size, lr=lr, weight_decay=0.0,
                         schedule="constant", seed=seed)


def relearn_order(items: Sequence[Example], size: int, seed: int) -> list[Example]:
    """``items`` in passes, each shuffled by (``seed``, pass), cut to ``size`` rows: its first
    rows do not depend on ``size``."""
    passes = -(-size // len(items))
    order = [i for n in range(passes)
             for i in np.random.default_rng([seed, n]).permutation(len(items))]
    return [items[i] for i in order[:size]]


def relearn(vlm: VLM, items: Sequence[Example], steps: Sequence[int], settings: TrainSettings,
            measure: Callable[[VLM], Evaluation], description: str) -> list[Evaluation]:
    """Train ``vlm`` in place with answer-only loss for ``max(steps)`` optimiser steps of
    ``settings.batch_size`` rows; ``measure`` it after each of ``steps`` (increasing).

    One epoch of ``max(steps)`` batches of :func:`relearn_order` (not reshuffled by the loop),
    so the first s steps are the same for any grid; one epoch writes no checkpoint. The loop
    measures the model after each of the grid's steps below the last; the last is measured
    once training ended and the weights were checked finite.
    """
    epoch = relearn_order(items, steps[-1] * settings.batch_size, settings.seed)
    measured: list[Evaluation] = []

    def after_step(step: int) -> None:
        if step in steps[:-1]:
            measured.append(measure(vlm))

    with tempfile.TemporaryDirectory(prefix="relearn-") as work:
        try:
            train(vlm.model, epoch, partial(vlm.encode, pack=True), answer_loss, settings,
                  Path(work), description=description, after_step=after_step, shuffle=False)
        except DivergedError as diverged:
            raise ValueError(f"{description} diverged: {diverged}; lower the learning "
                             "rate") from None
    check_finite(vlm.model, description)
    return [*measured, measure(vlm)]


def attack_result(steps: Sequence[int], curves: dict[str, list[Evaluation]],
                  resampler: Resampler, margin: float,
                  k_vanilla: float | None) -> dict[str, Any]:
    """One attack's K curves of the model and of gold over ``steps``, the gap and verdict at
    every step, and with a vanilla model the forgetting progress of both curves (gold's K at
    step 0 is the progress's 1)."""
    k = {name: [float(knowledge_draws(e, resampler)[0]) for e in evaluations]
         for name, evaluations in curves.items()}
    compared = [compare_with_gold(model, gold, resampler, margin)
                for model, gold in zip(curves["model"], curves["gold"], strict=True)]
    result: dict[str, Any] = {
        "steps": list(steps),
        "knowledge": k,
        "gap": [c["gap"] for c in compared],
        "faster_than_gold": [c["faster_than_gold"] for c in compared],
        "passed": not any(c["faster_than_gold"] for c in compared),
    }
    if k_vanilla is not None:
        result["progress"] = {name: [float(forgetting_progress(v, k_vanilla, k["gold"][0]))
                                     for v in values] for name, values in k.items()}
    return result


def print_summary(result: dict[str, Any]) -> None:
    print(f"relearning attack (relearn half {', '.join(result['persons']['relearn'])}; "
          f"K on {', '.join(result['persons']['evaluation'])})")
    for attack, curve in result["attacks"].items():
        verdict = "passed" if curve["passed"] else "FAILED: relearns faster than gold"
        print(f"  {attack}: {verdict}")
        for i, step in enumerate(curve["steps"]):
            gap = curve["gap"][i]
            print(f"    step {step:4d}  K model {curve['knowledge']['model'][i]:.3f}  "
                  f"K gold {curve['knowledge']['gold'][i]:.3f}  gap {gap['mean']:+.3f} "
                  f"[{gap['low']:+.3f}, {gap['high']:+.3f}]")
