"""The relearning attack (issue 20, item 2): the person halves, what the attack trains on and
measures on, and ``clearbench audit --audits relearn`` end to end on a tiny model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from clearbench.cli import main
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.synth import synthesize
from clearbench.data.views import training_examples
from clearbench.evaluation.aggregates import forget_knowledge
from clearbench.evaluation.evaluate import EvalSettings
from clearbench.evaluation.relearning import person_halves, person_of
from clearbench.models.loading import load_vlm
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes import relearn as relearn_recipe
from clearbench.recipes.audit import FORGET_TASKS
from clearbench.recipes.base import corpus
from conftest import TINY, memorise


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CLEAR-mini with 3 forget10 persons (halves of 1 and 2), 3 images and 3 facts
    each (~1 s)."""
    return synthesize(tmp_path_factory.mktemp("relearn") / "data", persons=30,
                      images_per_person=3, qa_per_person=3, other_images_per_person=2,
                      other_qa_per_person=2, celebrities=4, images_per_celebrity=2,
                      real_world=4, world_facts=4, real_authors=4, holdout_persons=1)


@pytest.fixture(scope="module")
def forget_persons(data: Path) -> list[str]:
    return json.loads((data / "datacard.json").read_text())["persons"]["forget10"]


@pytest.fixture(scope="module")
def untrained(data: Path) -> Path:
    out = data.with_name("untrained")
    build_tiny_vlm(TINY, corpus(DataSource.local(data))).save(out)
    return out


@pytest.fixture(scope="module")
def memorised(untrained: Path, data: Path) -> Path:
    """The untrained model fine-tuned on every forget person's rows (a few seconds)."""
    vlm = memorise(load_vlm(untrained), training_examples(DataSource.local(data),
                                                          "forget10+tofu"), steps=30)
    out = untrained.with_name("memorised")
    vlm.save(out)
    return out


def test_the_person_halves_are_disjoint_and_fixed_by_the_seed() -> None:
    persons = [f"Person {c}" for c in "FEDCBA"]
    relearn, evaluation = person_halves(persons, seed=3)
    assert (relearn, evaluation) == person_halves(reversed(persons), seed=3)  # order-free
    assert len(relearn) == 3 and len(evaluation) == 3
    assert not set(relearn) & set(evaluation) and set(relearn) | set(evaluation) == set(persons)
    assert relearn == sorted(relearn) and evaluation == sorted(evaluation)
    assert len({tuple(person_halves(persons, seed)[0]) for seed in range(10)}) > 1
    assert [len(half) for half in person_halves(persons[:3], seed=0)] == [1, 2]
    with pytest.raises(ValueError, match="at least 2 forget persons"):
        person_halves(["Only One", "Only One"], seed=0)


def test_a_row_is_about_its_unit_or_the_one_person_it_names() -> None:
    persons = ["Ann Lee", "Bo Chan"]
    assert person_of(persons, "Bo Chan", "Where was Ann Lee born?") == "Bo Chan"
    assert person_of(persons, "author 3", "Where was Ann Lee born?", "In Oslo.") == "Ann Lee"
    assert person_of(persons, "", "Caption this picture.", "Bo Chan, in a park.") == "Bo Chan"
    assert person_of(persons, "", "Ann Lee met Bo Chan.") is None
    assert person_of(persons, "", "Who is on the image?", "Cy Dorn.") is None


def _pairs(item: Example) -> tuple[str, str]:
    return item.person, f"{item.prompt} {item.answer}"


def _named(pairs: list[tuple[str, str]], persons: list[str]) -> set[str]:
    return {name for person, text in pairs for name in persons if person == name or name in text}


def test_relearning_never_touches_the_evaluation_half(
    memorised: Path, untrained: Path, data: Path, forget_persons: list[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: dict[str, list[list[tuple[str, str]]]] = {}
    evaluated: list[tuple[str, set[str]]] = []
    real_train, real_evaluate = relearn_recipe.train, relearn_recipe.evaluate_task

    def train(model, items, collate, *args, description: str, **kwargs):
        def spy(batch: list[Example]) -> Any:
            batches.setdefault(description, []).append([_pairs(item) for item in batch])
            return collate(batch)
        return real_train(model, items, spy, *args, description=description, **kwargs)

    def evaluate_task(vlm, task, rows, *args, **kwargs):
        evaluated.append((task.name, {row.unit for row in rows}))
        return real_evaluate(vlm, task, rows, *args, **kwargs)

    monkeypatch.setattr(relearn_recipe, "train", train)
    monkeypatch.setattr(relearn_recipe, "evaluate_task", evaluate_task)
    command = ["audit", "--audits", "relearn", "--model", str(memorised), "--gold",
               str(untrained), "--vanilla", str(memorised), "--data", str(data), "--out",
               str(tmp_path), "--relearn-steps", "5,2", "--relearn-batch-size", "4",
               "--max-new-tokens", "8", "--replicates", "200", "--seed", "1"]
    started = time.perf_counter()
    assert main(command) == 0
    seconds = time.perf_counter() - started
    assert seconds < 60
    result = json.loads((tmp_path / "relearn.json").read_text())

    relearn, evaluation = person_halves(forget_persons, seed=1)
    assert result["persons"] == {"relearn": relearn, "evaluation": evaluation}
    # every batch the loop collated: one run per model and attack, each to the largest step
    assert set(batches) == {f"relearn {model} on {attack}" for model in ("model", "gold")
                            for attack in ("forget_half", "retain")}
    for description, collated in batches.items():
        assert len(collated) == 5 and all(len(batch) == 4 for batch in collated), description
        pairs = [pair for batch in collated for pair in batch]
        assert not _named(pairs, evaluation), description
        if description.endswith("forget_half"):
            assert _named(pairs, forget_persons) == set(relearn), description
        else:
            assert not _named(pairs, forget_persons), description
    # K is measured on the evaluation half's rows only: at step 0 once per model, then at
    # each step of each attack
    assert len(evaluated) == len(FORGET_TASKS) * (2 * (1 + 2 * 2) + 1)
    assert all(units == set(evaluation) for _, units in evaluated)
    assert set(result["rows"]["evaluated"]) == {task.name for task in FORGET_TASKS}

    for attack in ("forget_half", "retain"):
        curve = result["attacks"][attack]
        assert curve["steps"] == [0, 2, 5]
        for values in (*curve["knowledge"].values(), *curve["progress"].values(),
                       curve["gap"], curve["faster_than_gold"]):
            assert len(values) == 3
        assert curve["progress"]["gold"][0] == pytest.approx(1.0)
        # the model memorised the evaluation half, which gold never saw
        assert curve["faster_than_gold"][0] and not curve["passed"]
    assert result["attacks"]["forget_half"]["knowledge"]["model"][0] == \
        result["attacks"]["retain"]["knowledge"]["model"][0]
    # a rerun of the same models, data and settings is not redone
    stamp = (tmp_path / "relearn.json").stat().st_mtime_ns
    assert main(command) == 0
    assert (tmp_path / "relearn.json").stat().st_mtime_ns == stamp


def test_the_model_at_a_step_is_the_same_whatever_the_grid_s_last_step(
    untrained: Path, data: Path
) -> None:
    """K after step s is measured after exactly s optimiser steps: the curve to step 3 passes
    through the model that a run of 1 step ends with (the weights' sum stands for K)."""
    items = training_examples(DataSource.local(data), "forget10+tofu")
    settings = relearn_recipe.relearn_settings(2e-3, 4, seed=0)

    def weights(vlm) -> float:
        return sum(float(p.detach().double().sum()) for p in vlm.model.parameters())

    long = relearn_recipe.relearn(load_vlm(untrained), items, [1, 3], settings, weights, "long")
    short = relearn_recipe.relearn(load_vlm(untrained), items, [1], settings, weights, "short")
    assert len(long) == 2 and len(short) == 1
    assert long[0] == short[0] != long[1]


def test_relearning_the_forget_half_teaches_the_half_it_trained_on(
    untrained: Path, data: Path, forget_persons: list[str]
) -> None:
    source = DataSource.local(data)
    rows = {task.name: task.rows(source, "forget10") for task in FORGET_TASKS}
    relearn, _ = person_halves(forget_persons, seed=0)
    trained_rows = relearn_recipe.rows_about(rows, forget_persons, relearn)
    items = relearn_recipe.attack_examples(source, "forget10", forget_persons, relearn, seed=0)

    def knowledge(vlm) -> float:
        evaluation = relearn_recipe.forget_evaluation(vlm, trained_rows,
                                                      EvalSettings(max_new_tokens=8))
        return forget_knowledge(evaluation["tasks"])

    vlm = load_vlm(untrained)
    before = knowledge(vlm)
    [after] = relearn_recipe.relearn(vlm, items["forget_half"], [30],
                                     relearn_recipe.relearn_settings(2e-3, 8, 0), knowledge,
                                     "relearn")
    assert after > before + 0.05


def test_a_diverging_attack_says_so(untrained: Path, data: Path,
                                    forget_persons: list[str]) -> None:
    source = DataSource.local(data)
    items = relearn_recipe.attack_examples(source, "forget10", forget_persons,
                                           forget_persons[:1], seed=0)
    diverged = r"relearn gold on retain diverged: loss became .*lower the learning rate"
    with pytest.raises(ValueError, match=diverged):
        relearn_recipe.relearn(load_vlm(untrained), items["retain"], [20],
                               relearn_recipe.relearn_settings(1e4, 8, 0), lambda vlm: {},
                               "relearn gold on retain")


def test_a_split_with_one_forget_person_is_refused(untrained: Path, mini_data: Path,
                                                   tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["audit", "--audits", "relearn", "--model", str(untrained), "--gold",
                 str(untrained), "--data", str(mini_data), "--out", str(tmp_path)]) == 2
    assert "at least 2 forget persons" in capsys.readouterr().err
    assert not (tmp_path / "relearn.json").exists()


def test_audit_command_names_the_relearning_attack_and_checks_audits(
    untrained: Path, data: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    assert "--relearn-steps" in capsys.readouterr().out
    common = ["--model", str(untrained), "--gold", str(untrained), "--data", str(data),
              "--out", str(tmp_path)]
    assert main(["audit", "--audits", "membership,relearning", *common]) == 2
    assert "choose from membership, relearn" in capsys.readouterr().err
    assert main(["audit", "--audits", "relearn", "--relearn-steps", "0,5", *common]) == 2
    assert "relearn_steps.0 = 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
