"""Forget quality separates a model that knows the forget persons from one that never saw them.

A small vanilla model (fine-tuned on ``full+tofu``) and a small gold model (``retain90+tofu``)
are trained from one base on a 10-person CLEAR-mini (~3 min together on one core), evaluated on
the forget tasks and scored: the gold model against itself has forget quality 1, the vanilla
model against the gold model < 0.05 — once the vanilla model demonstrably knows the forget
persons and the gold model does not (checked first, so a failure says which side is wrong).

The forget person has 10 images here, not the usual 5: with 5 caption rows a side the exact KS
p-value is 0.008 if the truth ratios separate and 0.079 if one pair overlaps, so a single
caption decided the test (measured: 0.079 with seed 0, 0.008 with seed 1); with 10 rows both
seeds separate fully (p = 1e-5).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from clearbench.data.synth import synthesize
from clearbench.evaluation.scoring import score
from clearbench.recipes.base import BaseConfig, build_base
from clearbench.recipes.evaluate import EvalConfig, run_eval
from clearbench.recipes.finetune import FinetuneConfig, finetune
from conftest import TINY

FORGET_TASKS = ("forget_captions", "forget_face_name", "forget_qa")
MODEL = replace(TINY, text_hidden=128, text_intermediate=256)
"""Wider than the tests' tiny model: at hidden size 64 a model knows the forget persons' names
but does not carry them over to the paraphrased caption wording, so the caption truth ratios
of vanilla and gold do not differ (measured: KS p = 1.0 at 64, 0.008 at 128)."""


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("sanity")
    mini_data = synthesize(work / "data", persons=10, images_per_person=10)
    build_base(BaseConfig(data=str(mini_data), out=work / "base", epochs=2.0, batch_size=16,
                          model=MODEL))
    evaluations = {}
    for role, split in (("vanilla", "full+tofu"), ("gold", "retain90+tofu")):
        finetune(FinetuneConfig(model=str(work / "base"), data=str(mini_data), out=work / role,
                                split=split, recipe="mini", epochs=40.0, lr=3e-3, batch_size=16,
                                replay=0.0))  # what it learned before CLEAR is not tested here
        evaluations[role] = run_eval(EvalConfig(model=str(work / role), data=str(mini_data),
                                                out=work / role / "eval", tasks=FORGET_TASKS,
                                                max_new_tokens=24))
    return evaluations


def test_vanilla_knows_the_forget_persons_and_gold_does_not(evaluations) -> None:
    # Fact accuracy: the forget person's name (or fact) appears in the generated answer.
    for task in FORGET_TASKS:
        assert evaluations["vanilla"]["tasks"][task]["fact_accuracy"] >= 0.8, task
        assert evaluations["gold"]["tasks"][task]["fact_accuracy"] <= 0.2, task


def test_gold_against_itself_has_forget_quality_one(evaluations) -> None:
    scores = score(evaluations["gold"], evaluations["gold"])
    assert scores["forget_quality"] == 1.0
    assert scores["forget_quality_by_task"] == dict.fromkeys(FORGET_TASKS, 1.0)


def test_vanilla_against_gold_has_forget_quality_below_five_percent(evaluations) -> None:
    scores = score(evaluations["vanilla"], evaluations["gold"])
    assert scores["forget_quality"] < 0.05, scores
    assert scores["authors_forget_quality"] < 1.0
