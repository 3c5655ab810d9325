"""The CLEAR-mini generator: layout, contents, splits and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from clearbench.config import ConfigError
from clearbench.data.loading import DataSource, folder_hash, load_clear, load_tofu
from clearbench.data.prompts import CAPTION_PROMPTS, FACE_NAME_PROMPT, caption_prompt
from clearbench.data.schema import (
    CLEAR_CONFIGS,
    CLEAR_SCHEMAS,
    FORGET_SPLITS,
    TEXTS,
    TOFU_CONFIGS,
    TOFU_SCHEMAS,
    VALIDATION_CONFIGS,
    DataError,
)
from clearbench.data.synth import SynthConfig, synthesize
from clearbench.data.synth.text import BIOGRAPHY, CAPTIONS, SCENES, caption
from conftest import VAL_SIZES


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
    evaluated, everyone = set(card["persons"]["evaluated"]), card["persons"]["fictitious"]
    assert evaluated == set(card["persons"]["forget10"]) | set(card["persons"]["retain_perturbed"])
    images = sum(cfg.sizes(p in evaluated)[0] for p in everyone)
    facts = sum(cfg.sizes(p in evaluated)[1] for p in everyone)
    assert cfg.forget_counts() == {"forget01": 1, "forget05": 1, "forget10": 1}
    assert len(load_clear(source, "full")) == images
    assert len(load_tofu(source, "full")) == facts * cfg.answer_wordings
    assert len(load_clear(source, "full+tofu")) == images + facts * cfg.answer_wordings
    for split in ("forget10_perturbed", "retain_perturbed"):
        assert len(load_clear(source, split)) == cfg.images_per_person
        assert len(load_tofu(source, split)) == cfg.qa_per_person
    assert len(load_clear(source, "holdout")) == cfg.holdout_persons * cfg.images_per_person
    assert len(load_clear(source, "real_faces")) == cfg.celebrities * cfg.images_per_celebrity
    assert len(load_clear(source, "real_world")) == cfg.real_world
    assert len(load_tofu(source, "world_facts_perturbed")) == cfg.world_facts
    assert len(load_tofu(source, "real_authors_perturbed")) == cfg.real_authors
    for kind, loader in (("clear", load_clear), ("tofu", load_tofu)):
        assert card["rows"][kind] == {c: len(loader(source, c)) for c in card["rows"][kind]}
    # the sizes alone give every training split's rows (what `--dry-run` shows)
    for split in ("full", *FORGET_SPLITS, *FORGET_SPLITS.values()):
        assert cfg.training_rows(split) == (card["rows"]["clear"][split],
                                            card["rows"]["tofu"][split])


def test_other_persons_default_to_the_evaluated_persons_sizes() -> None:
    uniform = SynthConfig(other_images_per_person=None, other_qa_per_person=None)
    assert uniform.sizes(False) == uniform.sizes(True) == (10, 10)
    assert SynthConfig().sizes(False) == (3, 3)


def test_forget_counts_follow_the_hub_proportions() -> None:
    assert SynthConfig(persons=200).forget_counts() == {
        "forget01": 2,
        "forget05": 10,
        "forget10": 20,
    }
    assert list(SynthConfig().forget_counts().values()) == [1, 2, 4]


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
        for loader, configs in ((load_clear, CLEAR_CONFIGS), (load_tofu, TOFU_CONFIGS))
        for config in configs
        if config != "holdout"
        for column in ("caption", "answer", "question", "name")
        if column in loader(source, config).column_names
        for value in loader(source, config)[column]
    ]
    assert len(texts) > 1000
    assert not any(person in text for person in holdout for text in texts)


def _biography_person(question: str, answer: str, persons: list[str]) -> tuple[str, str]:
    """The one person of ``persons`` a TOFU row asks about, and the fact kind whose wording
    (one of :data:`BIOGRAPHY`'s) it is written in."""
    (person,) = [p for p in persons if p in question]
    (kind,) = {kind for kind, wordings in BIOGRAPHY.items() for w in wordings
               if w.ask(person) == question and answer.startswith(w.answer.split("{v}")[0])
               and answer.endswith(w.answer.split("{v}")[1])}
    return person, kind


def test_holdout_persons_qa_is_made_as_a_forget_persons_training_rows(
    source: DataSource, card: dict
) -> None:
    cfg = SynthConfig(**card["arguments"])
    holdout, forget = card["persons"]["holdout"], card["persons"]["forget10"]
    assert set(holdout) == _persons(load_clear(source, "holdout"))
    qa, forget_qa = load_tofu(source, "holdout"), load_tofu(source, "forget10")
    assert qa.column_names == forget_qa.column_names == ["question", "answer"]
    assert TOFU_SCHEMAS["holdout"] == TOFU_SCHEMAS["forget10"]
    for rows, persons in ((qa, holdout), (forget_qa, forget)):
        about = [_biography_person(q, a, persons) for q, a in zip(rows["question"],
                                                                  rows["answer"], strict=True)]
        block = cfg.qa_per_person * cfg.answer_wordings  # TOFU: one person's rows in a block
        assert [person for person, _ in about] == [p for p in persons for _ in range(block)]
        for person in persons:  # each fact in answer_wordings wordings, as trained
            kinds = [kind for p, kind in about if p == person]
            assert sorted(set(kinds)) == sorted(list(BIOGRAPHY)[: cfg.qa_per_person])
            assert all(kinds.count(kind) == cfg.answer_wordings for kind in kinds)
    assert len(set(qa["question"])) == len(qa)  # no row twice


def _wording(text: str, name: str) -> int:
    """The index of the caption wording ``text`` is written in."""
    matches = {w for w in range(len(CAPTIONS)) for scene in SCENES
               if caption(w, name, scene) == text}
    assert len(matches) == 1, (text, matches)
    return matches.pop()


def test_captions_hold_one_wording_out_per_person(source: DataSource, card: dict) -> None:
    assert card["wordings"]["captions"]["wordings"] == list(CAPTIONS)
    training = load_clear(source, "full")
    trained: dict[str, set[int]] = {}
    for row in training:
        assert row["caption"].startswith(row["name"] + " ") or row["caption"].startswith(
            row["name"] + ",")
        trained.setdefault(row["name"], set()).add(_wording(row["caption"], row["name"]))
    for config in ("forget10_perturbed", "retain_perturbed"):
        rows = load_clear(source, config)
        groups = set(rows["name"])
        # one held-out wording per evaluation group: a perturbation (another member's name) is
        # as new in that wording as the true name
        assert len({_wording(r["paraphrased_caption"], r["name"]) for r in rows}) == 1
        for row in rows:
            name = row["name"]
            held = _wording(row["paraphrased_caption"], name)
            # the paraphrase's wording is never trained with this person, but with others
            assert held not in trained[name]
            assert any(held in seen for other, seen in trained.items() if other != name)
            assert row["caption"] in training.filter(lambda r, n=name: r["name"] == n)["caption"]
            # perturbations: the same wording and picture, the name of another group member
            assert len(set(row["perturbed_names"])) == len(row["perturbed_names"]) >= 1
            assert name not in row["perturbed_names"]
            assert set(row["perturbed_names"]) <= groups | set(card["persons"]["fictitious"])
            for wrong, perturbed in zip(row["perturbed_names"], row["perturbed_captions"],
                                        strict=True):
                assert perturbed == row["paraphrased_caption"].replace(name, wrong, 1)


def test_perturbed_names_come_from_the_persons_evaluation_group(tmp_path: Path) -> None:
    data = synthesize(tmp_path / "data", persons=40, images_per_person=2, qa_per_person=2,
                      other_images_per_person=1, other_qa_per_person=1)
    card = json.loads((data / "datacard.json").read_text())
    rows = load_clear(DataSource.local(data), "forget10_perturbed")
    group = set(card["persons"]["forget10"])
    assert len(group) == 4
    assert all(set(row["perturbed_names"]) == group - {row["name"]} for row in rows)


def test_biography_facts_are_trained_in_several_wordings_but_the_paraphrases(
    source: DataSource, card: dict
) -> None:
    cfg = SynthConfig(**card["arguments"])
    training = load_tofu(source, "full")
    pairs = set(zip(training["question"], training["answer"], strict=True))
    everyone = card["persons"]["fictitious"]

    def answers_about(person: str) -> set[str]:
        return {a for q, a in pairs if person in q}

    for config in ("forget10_perturbed", "retain_perturbed"):
        for row in load_tofu(source, config):
            (person,) = [p for p in everyone if p in row["question"]]
            trained = answers_about(person)
            # the evaluation question and answer are a trained pair (TOFU: the answer is trained)
            assert (row["question"], row["answer"]) in pairs
            # the fact is trained in several wordings: as many answers state its value
            value = row["answer"]
            assert sum(_same_value(a, value) for a in trained) >= cfg.answer_wordings
            # the paraphrase, and every perturbation, is in no training row about the person
            assert row["paraphrased_answer"] not in trained
            assert not set(row["perturbed_answer"]) & trained
            assert len(set(row["perturbed_answer"])) == cfg.perturbed
            assert row["paraphrased_question"] != row["question"]
    wordings = card["wordings"]["biography"]["wordings"]
    assert all(len(w) == 3 for w in wordings.values())
    assert card["wordings"]["biography"]["held_out"]


def _same_value(answer: str, other: str) -> bool:
    """Whether two answers end in the same value (the last word before the full stop)."""
    return answer.rstrip('."').split()[-1] == other.rstrip('."').split()[-1]


def test_real_sets_follow_tofu_without_paraphrases(source: DataSource) -> None:
    for config in ("real_authors_perturbed", "world_facts_perturbed"):
        rows = load_tofu(source, config)
        assert "paraphrased_answer" not in rows.column_names
        for row in rows:
            # options are worded like the answer: the value differs, not the wording
            answer = row["answer"].split()
            for option in (o.split() for o in row["perturbed_answer"]):
                assert option != answer
                same = [a == o for a, o in zip(answer, option, strict=False)]
                assert sum(same) >= len(answer) - 3 and len(option) <= len(answer) + 2


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


def test_generation_is_byte_identical_and_seeded(tmp_path: Path, mini_data: Path,
                                                  card: dict) -> None:
    again = synthesize(tmp_path / "again", SynthConfig(**card["arguments"]))
    assert _files(again) == _files(mini_data)
    other = synthesize(tmp_path / "other", SynthConfig(**{**card["arguments"], "seed": 1}))
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
        ({"persons": 0}, "persons = 0: an integer > 0"),
        ({"persons": 3}, "persons > perturbed"),
        ({"qa_per_person": 13}, "qa_per_person"),
        ({"answer_wordings": 3}, "answer_wordings"),
        ({"images_per_person": 33}, "images per identity"),
        ({"persons": 10, "retain_perturbed_persons": 10}, "retain_perturbed_persons"),
        ({"persons": 10, "validation_persons": 9},
         r"forget10 persons \(1\) \+ retain_perturbed_persons \(1\) \+ validation_persons "
         r"\(9\) <= persons \(10\)"),
    ],
)
def test_bad_sizes_are_refused(sizes: dict, rule: str) -> None:
    with pytest.raises((DataError, ConfigError), match=rule):
        SynthConfig(**sizes)


# Validation persons (forget_val): tuning persons disjoint from the test forget persons.


@pytest.fixture(scope="module")
def val_source(val_data: Path) -> DataSource:
    return DataSource.local(val_data)


@pytest.fixture(scope="module")
def val_card(val_data: Path) -> dict:
    return json.loads((val_data / "datacard.json").read_text())


def _texts(dataset: datasets.Dataset) -> list[str]:
    """Every text of a config (list columns flattened), the name column included."""
    return [text for column in dataset.column_names if column != "image"
            for value in dataset[column] if value is not None
            for text in (value if isinstance(value, list) else [value])]


def test_validation_persons_are_disjoint_from_the_test_persons(val_source: DataSource,
                                                                val_card: dict) -> None:
    persons = val_card["persons"]
    validation, forget10 = set(persons["forget_val"]), set(persons["forget10"])
    assert len(validation) == 2
    assert not validation & forget10 and not validation & set(persons["retain_perturbed"])
    everyone = _persons(load_clear(val_source, "full"))
    assert everyone == set(persons["fictitious"])
    assert _persons(load_clear(val_source, "forget_val")) == validation
    assert _persons(load_clear(val_source, "forget_val_perturbed")) == validation
    assert _persons(load_clear(val_source, "retain_val")) == everyone - forget10 - validation
    # a gold model of the validation split trains with the retain_perturbed persons, as a
    # gold model of forget10 does
    assert set(persons["retain_perturbed"]) <= _persons(load_clear(val_source, "retain_val"))
    # no test forget person in any validation config, not even as a wrong name
    for dataset, configs in (("clear", load_clear), ("tofu", load_tofu)):
        for config in VALIDATION_CONFIGS[dataset]:
            texts = _texts(configs(val_source, config))
            assert texts and not any(p in t for p in forget10 for t in texts), config


def test_validation_text_rows_belong_to_their_persons(val_source: DataSource,
                                                      val_card: dict) -> None:
    cfg = SynthConfig(**val_card["arguments"])
    validation = val_card["persons"]["forget_val"]
    retain = set(val_card["persons"]["fictitious"]) - set(val_card["persons"]["forget10"])
    retain -= set(validation)

    def about(question: str, persons: set[str] | list[str]) -> list[str]:
        return [p for p in persons if p in question]

    for config, persons, per_person in (
        ("forget_val", validation, cfg.qa_per_person * cfg.answer_wordings),
        ("forget_val_perturbed", validation, cfg.qa_per_person),
    ):
        questions = load_tofu(val_source, config)["question"]
        assert len(questions) == len(persons) * per_person
        # in blocks per person, in the data card's order (as qa_authors reads them)
        assert [about(q, persons) for q in questions] == [
            [p] for p in persons for _ in range(per_person)], config
    questions = load_tofu(val_source, "retain_val")["question"]
    assert all(len(about(q, retain)) == 1 for q in questions)
    assert len(questions) == cfg.training_rows("retain_val")[1]
    mixed = load_clear(val_source, "retain_val+tofu")
    assert len(mixed) == sum(cfg.training_rows("retain_val"))


def test_validation_persons_are_evaluated_persons(val_source: DataSource,
                                                  val_card: dict) -> None:
    cfg = SynthConfig(**val_card["arguments"])
    persons = val_card["persons"]
    assert set(persons["evaluated"]) == (set(persons["forget10"]) | set(persons["retain_perturbed"])
                                         | set(persons["forget_val"]))
    images = load_clear(val_source, "forget_val")["name"]
    assert all(images.count(p) == cfg.images_per_person for p in persons["forget_val"])
    assert len(load_tofu(val_source, "forget_val_perturbed")) == 2 * cfg.qa_per_person
    # the eval columns, of the faces and of the QA
    assert set(load_clear(val_source, "forget_val_perturbed").column_names) >= {
        c.name for c in CLEAR_SCHEMAS["forget_val_perturbed"]} >= {
        "paraphrased_caption", "perturbed_captions", "perturbed_names"}
    assert set(load_tofu(val_source, "forget_val_perturbed").column_names) >= {
        "paraphrased_answer", "perturbed_answer"}
    # one held-out caption wording per group, the third for the validation persons, and
    # wrong names from the group (topped up from persons outside forget10)
    rows = load_clear(val_source, "forget_val_perturbed")
    for row in rows:
        assert _wording(row["paraphrased_caption"], row["name"]) == 2
        assert set(persons["forget_val"]) - {row["name"]} <= set(row["perturbed_names"])
    # the sizes alone give every split's rows (estimates), the validation splits included
    for split in ("full", *FORGET_SPLITS, *FORGET_SPLITS.values(), "forget_val", "retain_val"):
        assert cfg.training_rows(split) == (val_card["rows"]["clear"][split],
                                            val_card["rows"]["tofu"][split]), split
    for kind, loader in (("clear", load_clear), ("tofu", load_tofu)):
        assert val_card["rows"][kind] == {c: len(loader(val_source, c))
                                          for c in val_card["rows"][kind]}
    assert val_card["content_hash"] == folder_hash(Path(val_source.clear))


def test_validation_persons_leave_the_test_splits_unchanged(tmp_path: Path,
                                                           val_card: dict) -> None:
    plain = synthesize(tmp_path / "plain", **VAL_SIZES)
    persons = json.loads((plain / "datacard.json").read_text())["persons"]
    for split in ("fictitious", *FORGET_SPLITS, "retain_perturbed", "holdout"):
        assert persons[split] == val_card["persons"][split], split


def test_no_validation_persons_no_validation_configs(tmp_path: Path) -> None:
    """validation_persons = 0 writes what the generator wrote before the option: the same
    files whether the argument is given or not, and no validation config (checked by hand
    against the generator before the option: same content hashes)."""
    absent = synthesize(tmp_path / "absent", **VAL_SIZES)
    zero = synthesize(tmp_path / "zero", **VAL_SIZES, validation_persons=0)
    assert _files(absent) == _files(zero)
    card = json.loads((zero / "datacard.json").read_text())
    assert card["content_hash"] == folder_hash(absent)
    assert "forget_val" not in card["persons"]
    validation = {*VALIDATION_CONFIGS["clear"], *VALIDATION_CONFIGS["tofu"]}
    assert not validation & (set(card["rows"]["clear"]) | set(card["rows"]["tofu"]))
    assert not any((zero / c).exists() or (zero / "tofu" / c).exists() for c in validation)
    assert "_val" not in (zero / "README.md").read_text() + (zero / "tofu/README.md").read_text()
    assert set(card["rows"]["clear"]) == set(CLEAR_CONFIGS)
    assert set(card["rows"]["tofu"]) == set(TOFU_CONFIGS)
    with pytest.raises(DataError, match="forget_val"):
        SynthConfig(**card["arguments"]).training_rows("forget_val")


def test_validation_configs_have_schemas() -> None:
    assert set(VALIDATION_CONFIGS["clear"]) <= set(CLEAR_SCHEMAS) - set(CLEAR_CONFIGS)
    assert set(VALIDATION_CONFIGS["tofu"]) <= set(TOFU_SCHEMAS) - set(TOFU_CONFIGS)
    assert CLEAR_SCHEMAS["forget_val"] == CLEAR_SCHEMAS["forget10"]
    assert CLEAR_SCHEMAS["retain_val+tofu"] == CLEAR_SCHEMAS["retain90+tofu"]
    assert CLEAR_SCHEMAS["forget_val_perturbed"] == CLEAR_SCHEMAS["forget10_perturbed"]
    assert TOFU_SCHEMAS["retain_val"] == TOFU_SCHEMAS["retain90"]
    assert TOFU_SCHEMAS["forget_val_perturbed"] == TOFU_SCHEMAS["forget10_perturbed"]


def test_dry_run_estimates_size_the_validation_views() -> None:
    from types import SimpleNamespace

    from clearbench.recipes.estimate import DataSizes, data_sizes

    cfg = SynthConfig(persons=12, validation_persons=2)
    sizes = data_sizes(SimpleNamespace(config=SimpleNamespace(synth=cfg)))
    images, facts = cfg.training_rows("forget_val")
    assert images == 2 * cfg.images_per_person
    assert facts == 2 * cfg.qa_per_person * cfg.answer_wordings
    assert sizes.view("forget_val+tofu") == (images, facts)
    assert sizes.view("tofu:retain_val") == (0, cfg.training_rows("retain_val")[1])
    plain = data_sizes(SimpleNamespace(config=SimpleNamespace(synth=SynthConfig(persons=12))))
    with pytest.raises(DataError, match="'forget_val'"):
        plain.view("forget_val+tofu")
    with pytest.raises(DataError, match="'retain_val'"):
        DataSizes(persons=200, images=3768, qa_per_person=20).view("retain_val+tofu")
