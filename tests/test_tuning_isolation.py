"""The tuning protocol cannot cheat: no test forget person enters any tuning stage.

Runs the tuning stages of a tiny run (``clearbench tune``'s plan) and records every batch
every training loop collates and every row every evaluation scores; the stages of the
protocol (the validation gold, the grids, the selections) must see no forget10 person, by
the rows' person and by name in any text, while the vanilla fine-tune, which must see them,
shows that the check finds them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from clearbench.data.examples import Example
from clearbench.recipes import evaluate as evaluate_recipe
from clearbench.recipes import finetune as finetune_recipe
from clearbench.recipes import unlearn as unlearn_recipe
from clearbench.recipes.pipeline import plan, run_stage, tuning_only
from clearbench.recipes.runconfig import embedded_config, load_run_config

METHODS = ["gd", "idk", "llmu", "sku"]
"""Between them every kind of batch: forget, retain, refusal, random and other answers."""


def _texts(item: Any) -> list[tuple[str, str]]:
    """(person, text) pairs of a batch item: an Example, or a dict of them (unlearning)."""
    if isinstance(item, dict):
        return [pair for example in item.values() for pair in _texts(example)]
    assert isinstance(item, Example)
    return [(item.person, f"{item.prompt} {item.answer}")]


def _persons_in(pairs: list[tuple[str, str]], names: list[str]) -> set[str]:
    return {name for person, text in pairs for name in names
            if person == name or name in text}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict, dict]:
    root = tmp_path_factory.mktemp("isolation")
    config = yaml.safe_load(embedded_config("smoke").read_text())
    config["seeds"] = 1
    config["unlearn"].update(methods=METHODS, modality_study=[],
                             variants={"lora": {"lora": True, "lr": 2e-3}})
    config["tune"] = {"lr_scales": [1.0], "coefficients": True}
    config["audit"] = {"enabled": False}  # the cross-modal audit needs the modality study
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    the_plan = tuning_only(plan(load_run_config(path), root / "run"))

    batches: dict[str, list[tuple[str, str]]] = {}
    evaluated: dict[str, dict[str, set[str]]] = {}
    current = {"stage": ""}
    monkeypatch = pytest.MonkeyPatch()

    def spying(real):
        def train(model, items, collate, *args, **kwargs):
            def spy(batch):
                batches.setdefault(current["stage"], []).extend(
                    pair for item in batch for pair in _texts(item))
                return collate(batch)
            return real(model, items, spy, *args, **kwargs)
        return train

    real_evaluate = evaluate_recipe.evaluate_task

    def evaluate_task(vlm, task, rows, *args, **kwargs):
        units = evaluated.setdefault(current["stage"], {})
        units.setdefault(task.name, set()).update(row.unit for row in rows)
        return real_evaluate(vlm, task, rows, *args, **kwargs)

    monkeypatch.setattr(unlearn_recipe, "train", spying(unlearn_recipe.train))
    monkeypatch.setattr(finetune_recipe, "train", spying(finetune_recipe.train))
    monkeypatch.setattr(evaluate_recipe, "evaluate_task", evaluate_task)
    try:
        for stage in the_plan.stages:
            current["stage"] = stage.name
            run_stage(stage)
    finally:
        monkeypatch.undo()
    card = json.loads((root / "run" / "data" / "datacard.json").read_text())
    return card["persons"], batches, evaluated


def test_the_check_finds_forget_persons_where_they_belong(recorded) -> None:
    persons, batches, _ = recorded
    assert _persons_in(batches["fine-tune vanilla"], persons["forget10"]) == \
        set(persons["forget10"])


def test_no_tuning_batch_holds_a_test_forget_person(recorded) -> None:
    persons, batches, _ = recorded
    tuning = {name: pairs for name, pairs in batches.items() if name != "fine-tune vanilla"
              and not name.startswith("pretrain")}
    assert "fine-tune gold (forget_val)" in tuning
    trained = [name for name in tuning if name.startswith("tune ")]
    # every method's grid ran (lr×1 and its two coefficient values; SKU: 1 or 2)
    assert {name.split()[1] for name in trained} == set(METHODS)
    for name, pairs in tuning.items():
        assert pairs, name
        assert not _persons_in(pairs, persons["forget10"]), name
    # the grids' forget batches are the validation persons'
    assert _persons_in([p for n in trained for p in batches[n]], persons["forget_val"]) == \
        set(persons["forget_val"])


def test_tuning_evaluations_ask_about_validation_persons_only(recorded) -> None:
    persons, _, evaluated = recorded
    assert evaluated
    for stage, tasks in evaluated.items():
        assert "(forget_val" in stage or "forget_val)" in stage, stage
        for task, units in tasks.items():
            assert not units & set(persons["forget10"]), (stage, task)
            if task.startswith("forget_"):
                assert units <= set(persons["forget_val"]), (stage, task)
