"""The robustness audit (issue 20, item 4): seeded image perturbations, held-out wordings,
sampled decoding and ``run_robustness`` end to end on CLEAR-mini."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clearbench.config import ConfigError
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource, load_clear
from clearbench.data.perturb import PERTURBATIONS, SEEDED, perturb
from clearbench.data.prompts import CAPTION_PROMPTS, FACE_NAME_PROMPT
from clearbench.data.views import TRAINING_VIEWS, face_name_examples, training_examples
from clearbench.evaluation.robustness import (
    CONDITIONS,
    HELD_OUT_PROMPTS,
    HELD_OUT_WORDING,
    SAMPLED,
    best_of_samples,
    held_out_rows,
    perturbed_rows,
)
from clearbench.evaluation.tasks import TaskRow
from clearbench.models.loading import load_vlm
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes.audit import FORGET_TASKS
from clearbench.recipes.base import corpus
from clearbench.recipes.robustness import (
    RobustnessConfig,
    held_out_questions,
    run_robustness,
    sample_answers,
)
from conftest import TINY, memorise


@pytest.fixture(scope="module")
def face(mini_data: Path) -> Image.Image:
    return load_clear(DataSource.local(mini_data), "forget10_perturbed")[0]["image"]


@pytest.fixture(scope="module")
def forget_rows(mini_data: Path) -> dict[str, list[TaskRow]]:
    source = DataSource.local(mini_data)
    return {task.name: task.rows(source, "forget10") for task in FORGET_TASKS}


@pytest.fixture(scope="module")
def memorised(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model fine-tuned on the forget persons' captions, face names and QA (~5 s)."""
    source = DataSource.local(mini_data)
    vlm = build_tiny_vlm(TINY, corpus(source))
    examples = (training_examples(source, "forget10+tofu")
                + face_name_examples(source, "forget10+tofu"))
    memorise(vlm, examples, steps=40)
    out = tmp_path_factory.mktemp("robustness") / "memorised"
    vlm.save(out)
    return out


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_a_perturbation_is_deterministic_per_seed_and_row_and_keeps_size_and_mode(
    name: str, face: Image.Image
) -> None:
    once = perturb(face, name, 0, "clear/forget10_perturbed/0")
    assert once.size == face.size and once.mode == face.mode
    assert np.array_equal(pixels(once), pixels(perturb(face, name, 0,
                                                       "clear/forget10_perturbed/0")))
    assert not np.array_equal(pixels(once), pixels(face))  # the pixels changed
    other_seed = perturb(face, name, 1, "clear/forget10_perturbed/0")
    other_row = perturb(face, name, 0, "clear/forget10_perturbed/1")
    seeded = name in SEEDED
    assert np.array_equal(pixels(once), pixels(other_seed)) != seeded
    assert np.array_equal(pixels(once), pixels(other_row)) != seeded
    for mode, size in (("L", (90, 70)), ("RGBA", (48, 80))):
        image = face.convert(mode).resize(size)
        changed = perturb(image, name, 0, "row")
        assert changed.size == size and changed.mode == mode
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(face, "rotate", 0, "row")


def test_perturbed_rows_change_the_image_tasks_images_only_alike_for_one_image(
    forget_rows: dict[str, list[TaskRow]],
) -> None:
    changed = perturbed_rows(forget_rows, "blur", 0)
    assert sorted(changed) == ["forget_captions", "forget_face_name"]
    for task, rows in changed.items():
        for row, original in zip(rows, forget_rows[task], strict=True):
            assert replace(row, image=original.image) == original
            assert row.image.tobytes() != original.image.tobytes()
    captions, faces = changed["forget_captions"], changed["forget_face_name"]
    assert [r.id for r in captions] == [r.id for r in faces]
    assert all(a.image.tobytes() == b.image.tobytes() for a, b in zip(captions, faces,
                                                                      strict=True))


def test_held_out_wordings_appear_in_no_training_prompt(val_data: Path) -> None:
    """Every training view (a CLEAR-mini with validation persons has them all), face→name
    examples included: none prompts with a held-out wording."""
    source, prompts = DataSource.local(val_data), set()
    for view in TRAINING_VIEWS:
        examples = training_examples(source, view) + face_name_examples(source, view)
        prompts |= {example.prompt for example in examples}
    assert FACE_NAME_PROMPT in prompts and set(CAPTION_PROMPTS) <= prompts
    held_out = {prompt for options in HELD_OUT_PROMPTS.values() for prompt in options}
    assert not held_out & {*CAPTION_PROMPTS, FACE_NAME_PROMPT}
    assert not held_out & prompts
    questions = held_out_questions(source, "forget10")
    assert questions and not set(questions) & prompts


def test_held_out_rows_change_only_the_prompt_per_seed(
    forget_rows: dict[str, list[TaskRow]], mini_data: Path
) -> None:
    questions = held_out_questions(DataSource.local(mini_data), "forget10")
    changed = held_out_rows(forget_rows, questions, 0)
    assert sorted(changed) == sorted(forget_rows)
    for task, rows in changed.items():
        for row, original in zip(rows, forget_rows[task], strict=True):
            assert row.prompt != original.prompt
            assert replace(row, prompt=original.prompt) == original
            assert row.prompt in HELD_OUT_PROMPTS.get(task, questions)
    assert held_out_rows(forget_rows, questions, 0) == changed
    assert "forget_qa" not in held_out_rows(forget_rows, None, 0)


def test_best_of_samples_counts_a_row_known_when_any_sample_names_the_person() -> None:
    rows = [TaskRow(f"r{i}", "Who is this?", None, "Ada Lovelace.", "Ada Lovelace.", (),
                    "Ada Lovelace", "", "Ada Lovelace") for i in range(2)]
    summary = {"n": 2, "probability": 0.3, "rougeL_recall": 0.0, "fact_accuracy": 0.0,
               "truth_ratio": 0.5, "truth_knowledge": 0.1}
    samples = [["no idea", "That is Ada Lovelace."], ["Grace Hopper", "Ada"]]
    result = best_of_samples(summary, rows, samples)
    assert result["fact_accuracy"] == 0.5
    assert result["sample_fact_rate"] == 0.25
    assert result["greedy_fact_accuracy"] == 0.0
    assert result["rougeL_recall"] == pytest.approx((1.0 + 0.5) / 2)
    assert {k: result[k] for k in ("probability", "truth_ratio", "truth_knowledge")} == {
        "probability": 0.3, "truth_ratio": 0.5, "truth_knowledge": 0.1}


def test_sampled_decoding_is_reproducible_and_gives_samples_answers_per_row(
    memorised: Path, mini_data: Path, forget_rows: dict[str, list[TaskRow]]
) -> None:
    vlm = load_vlm(memorised)
    rows = forget_rows["forget_captions"][:3] + forget_rows["forget_qa"][:2]
    config = RobustnessConfig(model=str(memorised), data=str(mini_data), out=Path("unused"),
                              samples=3, max_new_tokens=8, batch_size=4)
    state = torch.random.get_rng_state()
    first = sample_answers(vlm, rows, config, key="task")
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG untouched
    assert len(first) == len(rows) and all(len(texts) == 3 for texts in first)
    assert all(isinstance(text, str) for texts in first for text in texts)
    assert sample_answers(vlm, rows, config, key="task") == first
    assert sample_answers(vlm, rows, replace(config, seed=1), key="task") != first
    # near temperature 0 every sample is the greedy answer
    cold = sample_answers(vlm, rows, replace(config, temperature=1e-5), key="task")
    greedy = vlm.generate([Example(r.prompt, r.target, r.image, r.id) for r in rows],
                          max_new_tokens=8)
    assert cold == [[text] * 3 for text in greedy]


def test_the_robustness_audit_records_every_condition_and_is_not_redone(
    memorised: Path, mini_data: Path, tmp_path: Path
) -> None:
    config = RobustnessConfig(model=str(memorised), data=str(mini_data), out=tmp_path,
                              vanilla=str(memorised), gold=str(memorised), samples=2,
                              max_new_tokens=8)
    started = time.perf_counter()
    run_robustness(config)
    seconds = time.perf_counter() - started
    result = json.loads((tmp_path / "robustness.json").read_text())
    assert list(result["results"]) == list(CONDITIONS)
    assert set(result["summaries"]) == {"model", "vanilla", "gold"}
    tasks = sorted(task.name for task in FORGET_TASKS)
    as_is = result["summaries"]["model"]["as_is"]
    for condition, tasks_changed in result["conditions"].items():
        summaries = result["summaries"]["model"][condition]
        assert sorted(summaries) == tasks
        if condition in (HELD_OUT_WORDING, SAMPLED):
            assert tasks_changed == tasks
        else:  # an image perturbation: the QA task is the as-is one
            assert tasks_changed == ["forget_captions", "forget_face_name"]
            assert summaries["forget_qa"] == as_is["forget_qa"]
    for numbers in result["results"].values():
        assert 0 <= numbers["forget_knowledge"] <= 1
        assert sorted(numbers["fact_accuracy"]) == tasks
        assert numbers["progress"] is None  # vanilla and gold are the model: no gap
    assert result["results"]["as_is"]["change"] == 0.0
    assert result["results"]["as_is"]["forget_knowledge"] > 0.3  # it memorised
    sampled = result["results"][SAMPLED]
    assert sampled["greedy_fact_accuracy"] == result["results"]["as_is"]["fact_accuracy"]
    print(f"robustness audit of three tiny models: {seconds:.1f} s")
    stamp = (tmp_path / "robustness.json").stat().st_mtime_ns
    run_robustness(config)
    assert (tmp_path / "robustness.json").stat().st_mtime_ns == stamp


def test_progress_needs_both_vanilla_and_gold(mini_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both --vanilla and --gold"):
        RobustnessConfig(model="m", data=str(mini_data), out=tmp_path, gold="g")
    with pytest.raises(ConfigError, match="samples = 0"):
        RobustnessConfig(model="m", data=str(mini_data), out=tmp_path, samples=0)
