"""Prompts, training views and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearbench.data.loading import DataSource, load_clear, load_tofu
from clearbench.data.preflight import Need
from clearbench.data.prompts import CAPTION_PROMPTS, FACE_NAME_PROMPT, caption_prompt
from clearbench.data.refusals import load_refusals
from clearbench.data.schema import DataError, retain_split_of
from clearbench.data.views import (
    TRAINING_VIEWS,
    face_name_examples,
    split_names,
    training_examples,
    view_needs,
)
from clearbench.recipes.unlearn import RECIPES, UnlearnConfig


def test_caption_prompt_is_fixed_per_key_and_spread_over_prompts() -> None:
    keys = [f"Person {i} smiling on a beach." for i in range(400)]
    assert [caption_prompt(k) for k in keys] == [caption_prompt(k) for k in keys]
    assert set(map(caption_prompt, keys)) == set(CAPTION_PROMPTS)
    assert len(CAPTION_PROMPTS) == len(set(CAPTION_PROMPTS)) >= 8
    assert FACE_NAME_PROMPT == "The name of the person on the image is"


def test_split_names() -> None:
    assert split_names("forget10") == ("forget10", "retain90")
    assert split_names("forget01") == ("forget01", "retain99")
    with pytest.raises(DataError, match=r"forget20.*forget05"):
        split_names("forget20")
    assert split_names("forget_val") == ("forget_val", "retain_val")


@pytest.mark.parametrize(("split", "retain"), [
    ("forget01", "retain99"), ("forget05", "retain95"), ("forget10", "retain90"),
    ("forget_val", "retain_val"),
])
def test_retain_split_of(split: str, retain: str) -> None:
    assert retain_split_of(split) == retain


@pytest.mark.parametrize("split", ["forget20", "retain90", "retain_val", "val", ""])
def test_retain_split_of_names_the_split_and_the_valid_ones(split: str) -> None:
    with pytest.raises(DataError, match=rf"{split!r}; valid: forget01, forget05, forget10, "
                                        "forget_val"):
        retain_split_of(split)


@pytest.fixture(scope="module")
def source(mini_data: Path) -> DataSource:
    return DataSource.local(mini_data)


def test_mixed_view_captions_images_and_answers_questions(source: DataSource) -> None:
    examples = training_examples(source, "full+tofu")
    rows = load_clear(source, "full+tofu")
    assert len(examples) == len(rows)
    assert [e.id for e in examples[:2]] == ["full+tofu/0", "full+tofu/1"]
    images = [e for e in examples if e.image is not None]
    texts = [e for e in examples if e.image is None]
    assert len(images) == len(load_clear(source, "full"))
    assert len(texts) == len(load_tofu(source, "full"))
    for example in images:
        assert example.prompt == caption_prompt(example.answer)
        assert example.image.size == (64, 64)
    assert [(e.prompt, e.answer) for e in texts] == list(
        zip(load_tofu(source, "full")["question"], load_tofu(source, "full")["answer"], strict=True)
    )


def test_a_caption_keeps_its_prompt_across_views(source: DataSource) -> None:
    forget = training_examples(source, "forget10")
    full = {e.answer: e.prompt for e in training_examples(source, "full")}
    assert forget and all(full[e.answer] == e.prompt for e in forget)


def test_text_only_and_pretrain_views(source: DataSource) -> None:
    text = training_examples(source, "tofu:retain90")
    assert text and all(e.image is None for e in text)
    assert text[0].id == "tofu:retain90/0"
    pretrain = training_examples(source, "pretrain")
    prompts = {e.prompt for e in pretrain}
    assert FACE_NAME_PROMPT in prompts and prompts & set(CAPTION_PROMPTS)
    assert any(e.image is None for e in pretrain) and any(e.image is not None for e in pretrain)
    assert set(TRAINING_VIEWS) >= {"full+tofu", "retain90+tofu", "forget01", "tofu:full"}


def test_unknown_view_lists_the_valid_ones(source: DataSource) -> None:
    with pytest.raises(DataError, match=r"'forget10_perturbed'.*full\+tofu"):
        training_examples(source, "forget10_perturbed")


def test_refusals() -> None:
    refusals = load_refusals()
    assert len(refusals) >= 90 and len(set(refusals)) == len(refusals)
    assert "I don't know." in refusals
    assert all(r.strip() == r and r[-1] in ".!" for r in refusals)


def test_face_name_examples_name_every_image_of_the_view(source: DataSource) -> None:
    rows = load_clear(source, "retain90")
    examples = face_name_examples(source, "retain90+tofu")
    assert len(examples) == len(rows) > 0
    assert {e.prompt for e in examples} == {FACE_NAME_PROMPT}
    assert [e.answer for e in examples] == rows["name"]
    assert all(e.image is not None for e in examples)
    assert examples[0].id == "retain90+tofu/face_name/0"
    assert face_name_examples(source, "tofu:full") == []
    assert face_name_examples(source, "pretrain") == []
    with pytest.raises(DataError, match="unknown training data"):
        face_name_examples(source, "everything")


def test_validation_views(val_data: Path) -> None:
    source = DataSource.local(val_data)
    for view in ("forget_val+tofu", "forget_val", "tofu:forget_val", "retain_val+tofu",
                 "retain_val", "tofu:retain_val"):
        assert view in TRAINING_VIEWS
    mixed = training_examples(source, "forget_val+tofu")
    assert len(mixed) == len(load_clear(source, "forget_val+tofu"))
    assert len(training_examples(source, "tofu:forget_val")) == len(load_tofu(source, "forget_val"))
    validation = set(load_clear(source, "forget_val")["name"])
    assert {e.person for e in face_name_examples(source, "forget_val+tofu")} == validation
    assert view_needs("tofu:retain_val") == [Need("tofu", "retain_val")]


@pytest.mark.parametrize(("modality", "forget"), [
    ("both", "forget_val+tofu"), ("visual", "forget_val"), ("text", "tofu:forget_val"),
])
def test_unlearning_a_validation_split_reads_its_views(val_data: Path, modality: str,
                                                        forget: str) -> None:
    config = UnlearnConfig(model="m", data=str(val_data), method="ga", out=Path("out"),
                           forget_split="forget_val", modality=modality)
    config.validate()
    needs = {need.config for need in config.data_needs(RECIPES["mini"])}
    assert {forget.removeprefix("tofu:"), "retain_val+tofu"} <= needs
    forget_pool, retain_pool = config.pools(DataSource.local(val_data), RECIPES["paper"])
    assert len(forget_pool) == len(training_examples(DataSource.local(val_data), forget))
    assert all(e.id.startswith("retain_val+tofu/") for e in retain_pool)


def test_no_training_view_holds_a_holdout_persons_row(val_data: Path) -> None:
    """The membership audit's non-members: no model trains on the holdout persons' captioned
    images or QA. Every training view (fine-tuning, unlearning and relearning read views; the
    base model and replay ``pretrain``), with its face→name rows, on data that has them all.
    The tokenizer's corpus holds their captions, not their QA (see
    :func:`~clearbench.recipes.base.corpus`)."""
    from clearbench.recipes.base import corpus

    source = DataSource.local(val_data)
    holdout_images = load_clear(source, "holdout")
    holdout_qa = load_tofu(source, "holdout")
    persons = set(holdout_images["name"])
    pictures = {image.tobytes() for image in holdout_images["image"]}
    qa = set(zip(holdout_qa["question"], holdout_qa["answer"], strict=True))
    assert persons and pictures and len(qa) == len(holdout_qa)
    examples = [example for view in TRAINING_VIEWS
                for example in training_examples(source, view) + face_name_examples(source, view)]
    assert len(examples) > 1000
    for example in examples:
        assert not any(person in text for person in persons
                       for text in (example.prompt, example.answer, example.person)), example.id
        assert (example.prompt, example.answer) not in qa, example.id
        assert example.image is None or example.image.tobytes() not in pictures, example.id
    texts = set(corpus(source))
    assert set(holdout_images["caption"]) <= texts
    assert not any(person in text for person in persons for text in texts - set(
        holdout_images["caption"]) - set(holdout_images["name"]))
