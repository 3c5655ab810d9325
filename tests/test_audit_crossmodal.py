"""The cross-modal leakage audit (issue 20, item 5): the ``describe_person`` probe, the matrix
and its verdicts on hand-made evaluations, and ``clearbench audit --audits crossmodal`` end to
end on tiny models."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np
import pytest

from clearbench.cli import main
from clearbench.data.loading import DataSource
from clearbench.data.prompts import DESCRIBE_PROMPTS, describe_prompt
from clearbench.data.synth import synthesize
from clearbench.data.views import TRAINING_VIEWS, face_name_examples, training_examples
from clearbench.evaluation.aggregates import KNOWLEDGE_METRICS, forget_knowledge
from clearbench.evaluation.crossmodal import (
    MODALITIES,
    PROBES,
    crossmodal_matrix,
    verdict,
)
from clearbench.evaluation.records import row_record, task_summary
from clearbench.evaluation.statistics import Estimate
from clearbench.evaluation.tasks import DESCRIBE_PERSON, TASKS_BY_NAME
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes.base import corpus
from clearbench.recipes.crossmodal import CROSSMODAL_FILE
from conftest import TINY, memorise


def test_describe_prompts_appear_in_no_training_prompt(val_data: Path) -> None:
    """No prompt of any training view (a CLEAR-mini with validation persons has them all),
    face→name examples included, is worded as a describe prompt, whatever name it holds."""
    source, prompts = DataSource.local(val_data), set()
    for view in TRAINING_VIEWS:
        examples = training_examples(source, view) + face_name_examples(source, view)
        prompts |= {example.prompt for example in examples}
    for template in DESCRIBE_PROMPTS:
        before, after = template.split("{name}")
        assert not [p for p in prompts if p.startswith(before) and p.endswith(after)], template
    rows = DESCRIBE_PERSON.rows(source, "forget10")
    assert rows and not {row.prompt for row in rows} & prompts


def test_describe_rows_are_the_forget_captions_asked_by_name_without_image(
    mini_data: Path,
) -> None:
    source = DataSource.local(mini_data)
    captions = TASKS_BY_NAME["forget_captions"].rows(source, "forget10")
    rows = DESCRIBE_PERSON.rows(source, "forget10")
    assert len(rows) == len(captions)
    for row, caption in zip(rows, captions, strict=True):
        assert row.image is None and row.unit == caption.unit
        assert (row.target, row.paraphrased, row.perturbed) == (
            caption.target, caption.paraphrased, caption.perturbed)
        assert row.prompt == describe_prompt(row.unit, row.target) == row.question
        assert row.unit in row.prompt and row.fact == row.target
    assert len({row.prompt for row in rows}) > 1  # the wordings vary over the rows


def test_the_describe_score_counts_the_captions_facts_not_the_echoed_name() -> None:
    prompt = describe_prompt("Kasper Ardridge", "Kasper Ardridge is in a park.")
    caption = "Kasper Ardridge is in a park."

    def record(generated: str, nll: float) -> dict[str, Any]:
        return row_record(row_id="r", unit="Kasper Ardridge", generated=generated,
                          target=caption, fact=caption, question=prompt, loss_target=nll,
                          len_target=8, loss_paraphrased=nll,
                          loss_perturbed=[nll + 1.0, nll + 2.0], with_options=False)

    knows, echoes = record("Kasper Ardridge in a park.", 0.1), record("Kasper Ardridge.", 3.0)
    assert knows["fact_hit"] and not echoes["fact_hit"]  # the fact is the park, not the name
    assert knows["rougeL_recall"] == pytest.approx(5 / 6)
    assert echoes["rougeL_recall"] == pytest.approx(2 / 6)
    summary = task_summary([knows, echoes], forget=True)
    k = forget_knowledge({"describe_person": summary})
    assert 0 < k < 1
    assert k == pytest.approx(fmean(summary[metric] for metric in KNOWLEDGE_METRICS))


def test_the_verdict_reads_the_interval_where_vanilla_and_gold_differ() -> None:
    gap, nan = Estimate(0.5, 0.4, 0.6), float("nan")
    assert verdict(Estimate(0.3, 0.1, 0.5), gap) == "greater"
    assert verdict(Estimate(-0.3, -0.5, -0.1), gap) == "smaller"
    assert verdict(Estimate(0.1, -0.1, 0.3), gap) == "not separable"
    assert verdict(Estimate(0.0, 0.0, 0.0), gap) == "not separable"
    assert verdict(Estimate(nan, nan, nan), gap) == "undefined"
    assert verdict(Estimate(0.3, 0.1, 0.5), Estimate(0.05, -0.02, 0.1)) == "undefined"
    assert verdict(Estimate(0.3, 0.1, 0.5), Estimate(-0.5, -0.6, -0.4)) == "undefined"


PERSONS = [f"Person {c}" for c in "ABCD"]


def rows_of(values: list[float]) -> dict[str, Any]:
    """A task's hand-made rows, two per person, each scoring its person's value: probability,
    ROUGE-L and truth knowledge alike, a fact hit above 0.5."""
    return {"rows": [{"unit": person, "prob": value, "rougeL_recall": value,
                      "fact_hit": value > 0.5, "truth_ratio_raw": 1.0 - value}
                     for person, value in zip(PERSONS, values, strict=True) for _ in range(2)]}


def hand_made(levels: dict[str, float]) -> dict[str, Any]:
    """An evaluation of every probe's task at ``levels[probe]`` ± a per-person spread."""
    return {"tasks": {task: rows_of([float(np.clip(levels[probe] + 0.04 * (i - 1.5), 0, 1))
                                     for i in range(len(PERSONS))])
                      for probe, task in PROBES.items()}}


def test_the_matrix_checks_the_claim_cell_by_cell() -> None:
    def at(qa: float, face_name: float, captioning: float, describe: float) -> dict[str, Any]:
        return hand_made({"qa": qa, "face_name": face_name, "captioning": captioning,
                          "describe": describe})

    evaluations = {
        "vanilla": at(0.9, 0.9, 0.9, 0.5),
        "gold": at(0.1, 0.1, 0.1, 0.5),   # describe: vanilla and gold alike, P undefined
        "text": at(0.1, 0.9, 0.5, 0.2),   # forgot the QA only
        "visual": at(0.9, 0.5, 0.5, 0.2),
        "both": at(0.1, 0.1, 0.3, 0.2),
    }
    evaluations["both"]["tasks"]["forget_captions"] = evaluations["text"]["tasks"][
        "forget_captions"]
    evaluations["both"]["tasks"]["forget_qa"] = at(0.5, 0, 0, 0)["tasks"]["forget_qa"]
    result = crossmodal_matrix(evaluations, replicates=200, seed=0)
    matrix = result["matrix"]
    assert list(matrix) == list(MODALITIES) and all(list(row) == list(PROBES)
                                                     for row in matrix.values())
    assert matrix["text"]["qa"]["progress"]["mean"] == pytest.approx(1.0)
    assert matrix["text"]["face_name"]["progress"]["mean"] == pytest.approx(0.0)
    assert matrix["both"]["qa"]["progress"]["mean"] == pytest.approx(0.5)
    cell = matrix["both"]["face_name"]["forget_knowledge"]
    assert cell["low"] <= cell["mean"] <= cell["high"]
    assert result["references"]["gold"]["qa"]["mean"] == pytest.approx(0.1 * 3 / 4)  # no hit
    assert result["gap"]["qa"]["mean"] == pytest.approx(0.925 - 0.075)
    assert result["gap"]["describe"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    claim = result["claim"]
    # qa: both forgot less than text, more than visual
    assert claim["qa"]["both_minus_text"]["verdict"] == "smaller"
    assert claim["qa"]["both_minus_visual"]["verdict"] == "greater"
    assert not claim["qa"]["holds"]
    # face→name: both beats either
    assert claim["face_name"]["holds"]
    assert claim["face_name"]["both_minus_text"]["mean"] == pytest.approx(1.0)
    # captioning: both is text's evaluation: the same on every draw
    assert claim["captioning"]["both_minus_text"] == {"mean": 0.0, "low": 0.0, "high": 0.0,
                                                      "verdict": "not separable"}
    # describe: no gap between vanilla and gold, so no progress and no verdict
    assert matrix["both"]["describe"]["progress"] == {"mean": None, "low": None, "high": None}
    assert claim["describe"]["both_minus_visual"]["verdict"] == "undefined"
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_no_verdict_where_the_gap_between_vanilla_and_gold_is_not_separable() -> None:
    evaluations = {name: hand_made(dict.fromkeys(PROBES, level)) for name, level in
                   (("vanilla", 0.9), ("gold", 0.1), ("text", 0.9), ("visual", 0.9),
                    ("both", 0.1))}
    # describe: gold knows two persons better than vanilla does, the others worse
    evaluations["vanilla"]["tasks"]["describe_person"] = rows_of([0.2, 0.3, 0.8, 0.9])
    evaluations["gold"]["tasks"]["describe_person"] = rows_of([0.7, 0.7, 0.3, 0.3])
    result = crossmodal_matrix(evaluations, replicates=200, seed=0)
    gap = result["gap"]["describe"]
    assert gap["low"] < 0 < gap["mean"] < gap["high"]
    assert result["matrix"]["both"]["describe"]["progress"]["mean"] > 10  # a small gap inflates P
    assert result["claim"]["describe"]["both_minus_text"]["verdict"] == "undefined"
    assert result["claim"]["qa"]["holds"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CLEAR-mini with 3 forget10 persons, 3 images and 3 facts each (~1 s)."""
    return synthesize(tmp_path_factory.mktemp("crossmodal") / "data", persons=30,
                      images_per_person=3, qa_per_person=3, other_images_per_person=2,
                      other_qa_per_person=2, celebrities=4, images_per_celebrity=2,
                      real_world=4, world_facts=4, real_authors=4, holdout_persons=1)


@pytest.fixture(scope="module")
def models(data: Path) -> dict[str, Path]:
    """Gold: an untrained tiny model; vanilla: it fine-tuned on the forget persons' captions,
    face names and QA (a few seconds). The "unlearned" models are copies with unlearning
    records: text and visual of vanilla (nothing forgotten), both of gold (all forgotten)."""
    source = DataSource.local(data)
    vlm = build_tiny_vlm(TINY, corpus(source))
    folders = {"gold": data.with_name("gold"), "vanilla": data.with_name("vanilla")}
    vlm.save(folders["gold"])
    memorise(vlm, training_examples(source, "forget10+tofu")
             + face_name_examples(source, "forget10+tofu"), steps=30)
    vlm.save(folders["vanilla"])
    for modality, origin in (("text", "vanilla"), ("visual", "vanilla"), ("both", "gold")):
        folders[modality] = shutil.copytree(folders[origin], data.with_name(modality))
        record = {"status": "ok",
                  "config": {"modality": modality, "forget_split": "forget10", "method": "npo"}}
        (folders[modality] / "unlearning.json").write_text(json.dumps(record))
    return folders


def command(models: dict[str, Path], data: Path, out: Path) -> list[str]:
    return ["audit", "--audits", "crossmodal", "--model", str(models["both"]),
            "--text-model", str(models["text"]), "--visual-model", str(models["visual"]),
            "--vanilla", str(models["vanilla"]), "--gold", str(models["gold"]),
            "--data", str(data), "--out", str(out), "--max-new-tokens", "8",
            "--replicates", "200"]


def test_the_crossmodal_audit_writes_the_matrix_and_is_not_redone(
    models: dict[str, Path], data: Path, tmp_path: Path
) -> None:
    started = time.perf_counter()
    assert main(command(models, data, tmp_path)) == 0
    seconds = time.perf_counter() - started
    result = json.loads((tmp_path / CROSSMODAL_FILE).read_text())
    assert set(result["models"]) == {*MODALITIES, "vanilla", "gold"}
    assert len(result["persons"]) == 3
    assert result["evaluations"].keys() == result["models"].keys()
    for tasks in result["evaluations"].values():  # each model evaluated once per probe
        assert sorted(tasks) == sorted(PROBES.values())
        assert tasks["describe_person"]["n"] == tasks["forget_captions"]["n"] == 9
    k_vanilla, k_gold = result["references"]["vanilla"], result["references"]["gold"]
    for probe in PROBES:
        assert k_vanilla[probe]["mean"] > k_gold[probe]["mean"]  # vanilla memorised them
        for modality in MODALITIES:
            cell = result["matrix"][modality][probe]
            assert 0 <= cell["forget_knowledge"]["mean"] <= 1
        assert result["matrix"]["text"][probe]["progress"]["mean"] == pytest.approx(0.0)
        assert result["matrix"]["both"][probe]["progress"]["mean"] == pytest.approx(1.0)
        assert result["claim"][probe]["holds"]
    print(f"cross-modal audit of five tiny models: {seconds:.1f} s")
    stamp = (tmp_path / CROSSMODAL_FILE).stat().st_mtime_ns
    assert main(command(models, data, tmp_path)) == 0
    assert (tmp_path / CROSSMODAL_FILE).stat().st_mtime_ns == stamp


def test_models_recorded_in_other_modalities_are_refused(
    models: dict[str, Path], data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swapped = {**models, "text": models["visual"], "visual": models["text"]}
    capsys.readouterr()
    assert main(command(swapped, data, tmp_path)) == 2
    error = capsys.readouterr().err
    assert f"--text-model {models['visual']} was unlearned on modality 'visual', not 'text'" \
        in error
    assert f"--visual-model {models['text']} was unlearned on modality 'text'" in error
    assert not (tmp_path / CROSSMODAL_FILE).exists()
