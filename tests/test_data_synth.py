"""The CLEAR-mini generator: layout, contents, splits and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from clearbench.data.loading import DataSource, folder_hash, load_clear, load_tofu
from clearbench.data.prompts import CAPTION_PROMPTS, FACE_NAME_PROMPT, caption_prompt
from clearbench.data.schema import (
    CLEAR_CONFIGS,
    CLEAR_SCHEMAS,
    FORGET_SPLITS,
    TEXTS,
    TOFU_CONFIGS,
    DataError,
)
from clearbench.data.synth import SynthConfig, synthesize


@pytest.fixture(scope="module")
def source(mini_data: Path) -> DataSource:
    return DataSource.local(mini_data)


@pytest.fixture(scope="module")
def card(mini_data: Path) -> dict:
    return json.loads((mini_data / "datacard.json").read_text())


def test_every_config_loads_with_the_hub_features(mini_data: Path, source: DataSource) -> None:
    readme = (mini_data / "README.md").read_text()
    assert "- config_name: forget10+tofu\n" in readme
    assert "path: forget10+tofu/train-*.parquet" in readme
    assert (mini_data / "forget10" / "train-00000-of-00001.parquet").is_file()
    for config in CLEAR_CONFIGS:
        dataset = load_clear(source, config)
        for column in CLEAR_SCHEMAS[config]:
            feature = dataset.features[column.name]
            expected = {
                "image": datasets.Image,
                "string": datasets.Value,
                TEXTS: datasets.List,
            }[column.kind]
            assert isinstance(feature, expected), (config, column.name)
    for config in TOFU_CONFIGS:
        assert len(load_tofu(source, config)) > 0
    # the folder is an ordinary `datasets` folder, no clearbench needed
    raw = datasets.load_dataset(str(mini_data), "real_faces", split="train")
    assert raw[0]["image"].size == (64, 64) and raw[0]["image"].mode == "RGB"


def test_counts_match_the_sizes_and_the_datacard(source: DataSource, card: dict) -> None:
    cfg = SynthConfig(**card["arguments"])
    images, qa = cfg.images_per_person, cfg.qa_per_person
    assert cfg.forget_counts() == {"forget01": 1, "forget05": 1, "forget10": 1}
    assert len(load_clear(source, "full")) == cfg.persons * images
    assert len(load_tofu(source, "full")) == cfg.persons * qa
    assert len(load_clear(source, "full+tofu")) == cfg.persons * (images + qa)
    assert len(load_clear(source, "holdout")) == cfg.holdout_persons * images
    assert len(load_clear(source, "real_faces")) == cfg.celebrities * cfg.images_per_celebrity
    assert len(load_clear(source, "real_world")) == cfg.real_world
    assert len(load_tofu(source, "world_facts_perturbed")) == cfg.world_facts
    assert len(load_tofu(source, "real_authors_perturbed")) == cfg.real_authors
    for kind, loader in (("clear", load_clear), ("tofu", load_tofu)):
        assert card["rows"][kind] == {c: len(loader(source, c)) for c in card["rows"][kind]}


def test_forget_counts_follow_the_hub_proportions() -> None:
    assert SynthConfig(persons=200).forget_counts() == {
        "forget01": 2,
        "forget05": 10,
        "forget10": 20,
    }
    assert list(SynthConfig().forget_counts().values()) == [1, 2, 3]


def test_mixed_configs_put_image_rows_before_qa_rows(source: DataSource) -> None:
    mixed = load_clear(source, "forget10+tofu")
    n_images = len(load_clear(source, "forget10"))
    assert all(
        row["image"] is not None and row["question"] == "" for row in mixed.select(range(n_images))
    )
    rest = mixed.select(range(n_images, len(mixed)))
    assert all(row["image"] is None and row["caption"] == "" and row["question"] for row in rest)


def _persons(dataset: datasets.Dataset) -> set[str]:
    return set(dataset["name"])


def test_splits_are_nested_complementary_and_disjoint(source: DataSource, card: dict) -> None:
    everyone = _persons(load_clear(source, "full"))
    forget = [_persons(load_clear(source, split)) for split in FORGET_SPLITS]
    assert forget[0] <= forget[1] <= forget[2]
    for split, retain in FORGET_SPLITS.items():
        persons, kept = _persons(load_clear(source, split)), _persons(load_clear(source, retain))
        assert persons | kept == everyone and not persons & kept
        assert _persons(load_clear(source, f"{split}_perturbed")) == persons
        assert set(card["persons"][split]) == persons
        # the TOFU sets hold the same persons' biographies
        questions = load_tofu(source, split)["question"]
        assert all(any(p in q for p in persons) for q in questions)
    retain_eval = _persons(load_clear(source, "retain_perturbed"))
    assert len(retain_eval) == len(forget[2]) and not retain_eval & forget[2]
    holdout = _persons(load_clear(source, "holdout"))
    assert holdout and not holdout & everyone
    celebrities = set(load_clear(source, "real_faces")["answer"])
    assert not celebrities & (everyone | holdout)


def test_holdout_persons_are_in_no_training_text(source: DataSource) -> None:
    holdout = _persons(load_clear(source, "holdout"))
    texts = [
        value
        for config in CLEAR_CONFIGS
        if config != "holdout"
        for column in ("caption", "answer", "question", "name")
        if column in load_clear(source, config).column_names
        for value in load_clear(source, config)[column]
    ]
    assert not any(person in text for person in holdout for text in texts)


def test_captions_name_the_person_first_and_stay_short(source: DataSource) -> None:
    rows = load_clear(source, "retain_perturbed")
    for row in rows:
        assert row["caption"].startswith(row["name"] + " ")
        assert len(row["caption"].split()) <= 12
        assert row["name"] in row["paraphrased_caption"] != row["caption"]
        assert len(set(row["perturbed_captions"])) >= 3
        assert row["caption"] not in row["perturbed_captions"]
        assert len(set(row["perturbed_names"])) >= 3 and row["name"] not in row["perturbed_names"]
    assert len(set(rows["caption"])) == len(rows)


def test_biography_answers_repeat_the_fact(source: DataSource) -> None:
    for row in load_tofu(source, "forget10_perturbed"):
        perturbed = row["perturbed_answer"]
        assert len(set(perturbed)) >= 3 and row["answer"] not in perturbed
        assert row["paraphrased_answer"] != row["answer"]
        assert row["paraphrased_question"]
    answers = load_tofu(source, "full")["answer"]
    assert len(set(answers)) == len(answers)


def test_pretrain_covers_every_real_evaluation_row(source: DataSource) -> None:
    pretrain = load_clear(source, "pretrain")
    text_pairs = {(r["question"], r["answer"]) for r in pretrain if r["image"] is None}
    pretrain_raw = pretrain.cast_column("image", datasets.Image(decode=False))
    image_pairs = {
        (r["image"]["bytes"], r["question"], r["answer"]) for r in pretrain_raw if r["image"]
    }

    def raw(config: str) -> datasets.Dataset:
        return load_clear(source, config).cast_column("image", datasets.Image(decode=False))

    for r in raw("real_faces"):
        assert (r["image"]["bytes"], FACE_NAME_PROMPT, r["answer"]) in image_pairs
        assert any(
            b == r["image"]["bytes"] and a.startswith(r["answer"]) for b, _, a in image_pairs
        )
    for r in raw("real_world"):
        assert (r["image"]["bytes"], r["question"], r["answer"]) in image_pairs
    for config in ("real_authors_perturbed", "world_facts_perturbed"):
        for r in load_tofu(source, config):
            assert (r["question"], r["answer"]) in text_pairs
    captions = [(q, a) for _, q, a in image_pairs if q in CAPTION_PROMPTS]
    assert captions and all(q == caption_prompt(a) for q, a in captions)


def test_datacard_records_the_content_hash(mini_data: Path, card: dict) -> None:
    assert card["content_hash"] == folder_hash(mini_data)
    assert card["arguments"]["persons"] == 10 and card["version"] >= 1
    assert DataSource.local(mini_data).fingerprint()["clear"] == {
        "content_hash": card["content_hash"]
    }


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_generation_is_byte_identical_and_seeded(tmp_path: Path, mini_data: Path) -> None:
    again = synthesize(tmp_path / "again", SynthConfig(persons=10))
    assert _files(again) == _files(mini_data)
    other = synthesize(tmp_path / "other", persons=10, seed=1)
    assert json.loads((other / "datacard.json").read_text())["content_hash"] != folder_hash(
        mini_data
    )


def test_synthesize_replaces_its_own_folder_but_nothing_else(tmp_path: Path) -> None:
    out = synthesize(tmp_path / "data", persons=4, images_per_person=1, real_world=2)
    synthesize(out, persons=4, images_per_person=1, real_world=2, seed=3)
    assert json.loads((out / "datacard.json").read_text())["arguments"]["seed"] == 3
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="refusing"):
        synthesize(foreign, persons=4)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("sizes", "rule"),
    [
        ({"persons": 0}, "positive"),
        ({"persons": 3}, "persons > perturbed"),
        ({"qa_per_person": 13}, "qa_per_person"),
        ({"images_per_person": 33}, "images per identity"),
        ({"persons": 10, "retain_perturbed_persons": 10}, "retain_perturbed_persons"),
    ],
)
def test_bad_sizes_are_refused(sizes: dict, rule: str) -> None:
    with pytest.raises(DataError, match=rule):
        SynthConfig(**sizes)
