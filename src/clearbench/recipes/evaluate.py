"""Evaluation and scoring recipes: ``clearbench eval`` and ``clearbench score``.

``eval``, top to bottom: load every task's rows (bad data fails before the model loads), load
the model, evaluate task by task, write ``eval.json``. Each finished task is stored atomically
in ``OUT/tasks/`` with the identity of the run, so an interrupted evaluation resumes at the
first unfinished task, and a finished ``eval.json`` with the same identity is not redone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import torch

from clearbench.config import PositiveInt, one_of, settings
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS, retain_split_of
from clearbench.data.views import view_split
from clearbench.evaluation.evaluate import EvalSettings, evaluate_task
from clearbench.evaluation.scoring import check_eval, score
from clearbench.evaluation.tasks import TASKS, TASKS_BY_NAME, TEXT_TASKS
from clearbench.io import read_json, stable_hash, write_json_atomic
from clearbench.models.errors import ModelError
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.recipes.stage import data_source, model_key, trained_as
from clearbench.training.distributed import process_device, process_state, shard_of

EVAL_FILE = "eval.json"
SCORES_FILE = "scores.json"
TASKS_DIR = "tasks"
FORGET_SPLITS = ("forget01", "forget05", "forget10")
"""The test forget splits (a run config's ``forget_splits``)."""

EVALUATED_TASKS = tuple(task.name for task in TASKS)
"""The tasks an evaluation may run (not the audits' probes)."""


@settings(frozen=True)
class EvalConfig:
    model: str
    data: str
    out: Path
    forget_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    tasks: tuple[Annotated[str, one_of(EVALUATED_TASKS)], ...] = EVALUATED_TASKS
    batch_size: PositiveInt = 32
    max_new_tokens: PositiveInt = 32
    seed: int = 0
    limit: PositiveInt | None = None
    data_revision: str | None = None
    tofu: str | None = None
    """TOFU hub id or folder (default: locuslab/TOFU for a hub id, DATA/tofu for a folder)."""
    tofu_revision: str | None = None
    model_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def settings(self) -> EvalSettings:
        return EvalSettings(self.batch_size, self.max_new_tokens, self.seed, self.limit)

    def validate(self) -> None:
        """The evaluation settings' own checks (the fields are checked on construction)."""
        self.settings().validate()

    def data_needs(self) -> list[Need]:
        """The config of every selected task."""
        return [TASKS_BY_NAME[name].need(self.forget_split) for name in self.tasks]


def run_eval(config: EvalConfig) -> dict[str, Any]:
    """Evaluate ``config.model`` on every selected task and write ``OUT/eval.json``."""
    config.validate()
    out = Path(config.out)
    source = data_source(config.data, config.data_revision, config.tofu, config.tofu_revision)
    settings = config.settings()
    try:
        model = model_key(config.model, config.model_revision)  # refuses an unfinished stage
    except FileNotFoundError:  # no model: say what is wrong with the data too, all at once
        preflight(source, config.data_needs())
        raise
    header = {
        "model": {"path": config.model, "revision": config.model_revision, "key": model,
                  "trained_as": trained_as(config.model)},
        "data": {
            "source": {"clear": source.clear, "tofu": source.tofu},
            "fingerprint": source.fingerprint(),
        },
        "forget_split": config.forget_split,
        "settings": settings.as_dict(),
    }
    # What a task's result depends on: the model's and the data's content (not where they
    # are), the split and the settings; not which other tasks are evaluated with it.
    task_identity = stable_hash([model, header["data"]["fingerprint"], config.forget_split,
                                 header["settings"], config.dtype])
    identity = stable_hash([task_identity, list(config.tasks)])
    eval_file = out / EVAL_FILE
    done = earlier_result(eval_file, "evaluation")
    if done is not None and done.get("identity") == identity:
        print(f"eval: {eval_file} is already done (identity {identity}); nothing to do")
        return done

    preflight(source, config.data_needs())  # bad data fails here, before the model loads
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    state = process_state(config.device)  # rows are shared out under a multi-process launch
    vlm = load_vlm(config.model, revision=config.model_revision, dtype=config.dtype,
                   device=process_device(config.device, state))
    with_images = [name for name in config.tasks if TASKS_BY_NAME[name].dataset == "clear"]
    if with_images and not vlm.takes_images:
        raise ModelError(f"--model {config.model} is a text-only language model; it cannot do "
                         f"the image tasks {', '.join(with_images)} (evaluate it on "
                         f"--tasks {' '.join(TEXT_TASKS)})")
    results = {}
    for name in config.tasks:
        task_file = out / TASKS_DIR / f"{name}.json"
        stored = earlier_result(task_file, "task result") or {}
        if stored.get("identity") == task_identity:
            results[name] = stored["result"]
            continue
        rows = TASKS_BY_NAME[name].rows(source, config.forget_split)[: config.limit]
        try:
            results[name] = evaluate_task(vlm, TASKS_BY_NAME[name], rows, settings,
                                          shard_of(state))
        except ValueError as err:  # e.g. a non-finite likelihood: name the model and task
            raise ValueError(f"eval of {config.model} on task {name}: {err}") from None
        if state.is_main_process:
            write_json_atomic(task_file, {"identity": task_identity, "result": results[name]})
    payload = header | {"identity": identity, "seconds": time.perf_counter() - started,
                        "tasks": results}
    if state.is_main_process:
        write_json_atomic(eval_file, payload)
        print_summary(payload)
    state.wait_for_everyone()
    return payload


def earlier_result(path: Path, what: str) -> dict[str, Any] | None:
    """The result file an earlier run left at ``path``; None if there is none or it is
    unreadable (written atomically, so damaged after the fact: it is redone)."""
    if not path.is_file():
        return None
    try:
        return read_json(path, what=what)
    except ValueError as err:
        print(f"{err}; doing it again")
        return None


def print_summary(evaluation: dict[str, Any]) -> None:
    print(f"{'task':18} {'n':>5} {'ROUGE-L':>8} {'fact':>6} {'prob':>6} {'TR':>6}")
    for name, task in evaluation["tasks"].items():
        print(
            f"{name:18} {task['n']:5d} {task['rougeL_recall']:8.3f} {task['fact_accuracy']:6.3f}"
            f" {task['probability']:6.3f} {task['truth_ratio']:6.3f}"
        )


def read_eval(path: Path) -> dict[str, Any]:
    """An ``eval.json`` (or the folder holding one), checked for the fields scoring needs."""
    path = Path(path)
    if path.is_dir():
        path = path / EVAL_FILE
    payload = read_json(path, what="evaluation (eval.json)")
    check_eval(payload, str(path))
    return payload


def run_score(eval_path: Path, gold_path: Path, out: Path, *,
              unverified_gold: bool = False) -> dict[str, Any]:
    """Score an evaluation against the gold model's and write ``OUT/scores.json`` (skipped
    when it already scores these two evaluations). The gold evaluation must be of a model
    fine-tuned on the retain split of its forget split (from the model's training record),
    unless ``unverified_gold``."""
    evaluation, gold = read_eval(eval_path), read_eval(gold_path)
    if not unverified_gold:
        check_gold(gold, gold_path)
    inputs = [evaluation.get("identity"), gold.get("identity")]
    scores_file = Path(out) / SCORES_FILE
    done = earlier_result(scores_file, "scores")
    if done is not None and done.get("inputs") == inputs:
        print(f"score: {scores_file} is already done; nothing to do")
        return done
    scores = {"eval": str(eval_path), "gold": str(gold_path), "inputs": inputs,
              **score(evaluation, gold)}
    write_json_atomic(scores_file, scores)
    for key in ("forget_quality", "forget_knowledge", "retain", "real", "model_utility",
                "authors_real", "authors_retain", "authors_forget", "authors_forget_quality"):
        print(f"{key:22} {scores[key]}")
    return scores



def check_gold(gold: dict[str, Any], where: Path) -> None:
    """ValueError unless ``gold`` evaluates a model fine-tuned on the retain split that
    matches its forget split (``forget10`` → ``retain90``, ``forget_val`` → ``retain_val``)."""
    split = gold["forget_split"]
    retain = retain_split_of(split)
    trained = gold["model"].get("trained_as") or {}
    if trained.get("stage") != "finetune" or \
            not view_split(str(trained.get("split"))).startswith(retain):
        made = (f"a {trained['stage']} stage on {trained.get('split') or trained.get('method')}"
                if trained else "a model without a clearbench training record")
        raise ValueError(f"--gold {where} is not a gold model of {split}: it evaluates {made}, "
                         f"not a fine-tune on {retain}; pass --unverified-gold to score against "
                         "it anyway")
