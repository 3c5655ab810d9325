"""Unlearning defaults of spec §3: the authors' schedule (one warm-up epoch, linear decay) and
SCRUB's max-then-min phases, SKU's answers from other forget persons and its weights,
symmetric forget and retain data."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.prompts import FACE_NAME_PROMPT
from clearbench.data.synth.generate import synthesize
from clearbench.data.views import face_name_examples, training_examples
from clearbench.methods import build_method
from clearbench.methods.base import FORGET, OTHER_ANSWER
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes.base import corpus
from clearbench.recipes.unlearn import RECIPES, UnlearnConfig, paired_items, unlearn
from clearbench.training import loop
from conftest import TINY


@pytest.fixture(scope="module")
def vanilla(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unlearn-defaults") / "vanilla"
    build_tiny_vlm(TINY, corpus(DataSource.local(mini_data))).save(out)
    return out


def test_every_unlearning_recipe_warms_up_for_one_epoch() -> None:
    assert {name: recipe.warmup_epochs for name, recipe in RECIPES.items()} == {
        "paper": 1.0, "mini": 1.0}


def test_learning_rates_per_step_are_warm_up_then_linear_decay(
    vanilla: Path, mini_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[float] = []  # the rate each optimiser step applies
    make = loop.get_scheduler

    def recording(name, optimizer, **kwargs):
        optimizer.register_step_pre_hook(
            lambda opt, *_: used.append(opt.param_groups[0]["lr"]))
        return make(name, optimizer, **kwargs)

    monkeypatch.setattr(loop, "get_scheduler", recording)
    record = unlearn(UnlearnConfig(model=str(vanilla), data=str(mini_data), out=tmp_path / "ga",
                                   method="ga", recipe="mini"))
    recipe, settings = RECIPES["mini"], record["train_settings"]
    per_epoch = math.ceil(record["forget_items"] / recipe.batch_size)
    warmup, total = per_epoch, round(per_epoch * recipe.epochs)
    assert settings["schedule"] == "linear" and settings["warmup_steps"] == warmup > 0
    expected = [recipe.lr * (k / warmup if k < warmup else (total - k) / (total - warmup))
                for k in range(total)]
    assert used == pytest.approx(expected)


@pytest.mark.parametrize("steps_per_epoch", [3, 2.5])
def test_scrub_takes_max_steps_only_in_its_first_epochs(steps_per_epoch: float) -> None:
    scrub = build_method("scrub", {"max_epochs": 2})
    scrub.prepare(steps_per_epoch)
    kinds = ["max" if scrub.is_max_step(step) else "min" for step in range(15)]
    first = math.ceil(2 * steps_per_epoch)  # the first step of epoch 2
    assert kinds[:first] == ["max", "min"] * (first // 2) + ["max"] * (first % 2)
    assert kinds[first:] == ["min"] * (15 - first)


def other_persons_answers(example: Example, forget: list[Example]) -> set[str]:
    return {other.answer for other in forget
            if other is not example and (not example.person or other.person != example.person)}


def test_sku_answers_come_from_other_forget_persons(tmp_path: Path) -> None:
    data = synthesize(tmp_path / "data", persons=20, images_per_person=2, qa_per_person=2,
                      other_images_per_person=None, other_qa_per_person=None)
    source = DataSource.local(data)
    forget = training_examples(source, "forget10") + face_name_examples(source, "forget10")
    retain = training_examples(source, "retain90+tofu")
    assert len({example.person for example in forget}) == 2
    for item in paired_items(forget, retain, ["I don't know."], seed=0):
        assert item[OTHER_ANSWER].answer in other_persons_answers(item[FORGET], forget)


def test_sku_answers_of_unnamed_rows_are_other_forget_answers_never_retain_ones() -> None:
    forget = [Example("q", f"forget {i}", id=f"f{i}", person=p)
              for i, p in enumerate(["Ann", "Ann", "", ""])]
    retain = [Example("q", f"retain {i}", id=f"r{i}") for i in range(5)]
    for seed in range(20):
        for item in paired_items(forget, retain, ["I don't know."], seed):
            assert item[OTHER_ANSWER].answer in other_persons_answers(item[FORGET], forget)


def test_sku_weights_are_the_clear_authors() -> None:
    options = build_method("sku").options()
    assert (options["distortion_weight"], options["random_weight"],
            options["divergence_weight"]) == (2.5, 1.0, 0.5)


@pytest.mark.parametrize("recipe", ["mini", "paper"])
@pytest.mark.parametrize("modality", ["both", "visual", "text"])
def test_retain_gets_face_name_rows_iff_forget_does(
    mini_data: Path, recipe: str, modality: str
) -> None:
    config = UnlearnConfig(model="m", data=str(mini_data), method="ga", out=Path("out"),
                           modality=modality)
    forget, retain = config.pools(DataSource.local(mini_data), RECIPES[recipe])
    faces = [sum(e.prompt == FACE_NAME_PROMPT for e in pool) for pool in (forget, retain)]
    if recipe == "mini" and modality != "text":
        assert faces == [5, 45]  # every image of the 1 forget and 9 retain persons
    else:
        assert faces == [0, 0]


def test_scrub_max_steps_have_no_gradient_at_the_vanilla_model(mini_data: Path) -> None:
    """Why SCRUB's default is a no-op (as the paper's SCRUB row, equal to vanilla's): its
    max-step loss −KL(π_θ₀ ‖ π_θ) is at its stationary point when θ = θ₀, so the max-steps
    only move once the min-steps have moved θ; gradient ascent has a gradient there."""
    import torch

    from clearbench.methods.base import RETAIN
    from clearbench.training.reference import reference_for

    source = DataSource.local(mini_data)
    vlm = build_tiny_vlm(TINY, corpus(source))
    batches = {FORGET: vlm.encode(training_examples(source, "forget10+tofu")[:4]),
               RETAIN: vlm.encode(training_examples(source, "retain90+tofu")[:4])}
    reference = reference_for(vlm.model)

    def gradient_norm(method: str) -> float:
        vlm.model.zero_grad()
        build_method(method, {}).loss(vlm.model, batches, reference, 0).backward()
        return torch.sqrt(sum((p.grad ** 2).sum() for p in vlm.model.parameters()
                              if p.grad is not None)).item()

    assert gradient_norm("scrub") < 1e-6  # step 0 is a max-step
    assert gradient_norm("ga") > 1e-2
