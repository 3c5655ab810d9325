"""Row records, task summaries and scoring against gold: pure functions on hand-made numbers."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from clearbench.evaluation.records import candidate_answers, row_record, task_summary
from clearbench.evaluation.scoring import EvalMismatch, check_eval, score
from clearbench.evaluation.tasks import TASKS


def record(**overrides: Any) -> dict[str, Any]:
    arguments = {
        "row_id": "clear/forget10_perturbed/0",
        "unit": "Alice Smith",
        "generated": "Alice was born in Paris",
        "target": "Alice Smith was born in Paris",
        "fact": "Alice Smith was born in Paris",
        "question": "Where was Alice Smith born?",
        "loss_target": 0.5,
        "len_target": 7,
        "loss_paraphrased": 1.0,
        "loss_perturbed": [2.0, 3.0],
        "with_options": False,
    }
    return row_record(**(arguments | overrides))


def test_row_record_free_text_by_hand() -> None:
    row = record()
    assert row["rougeL_recall"] == pytest.approx(5 / 6)  # LCS 5 of the target's 6 words
    assert row["fact_hit"] is True  # the key term "paris" appears
    assert row["prob"] == pytest.approx(math.exp(-0.5))
    # R = exp(NLL(paraphrased) − mean NLL(perturbed)) = exp(1.0 − 2.5)
    assert row["truth_ratio_raw"] == pytest.approx(math.exp(-1.5))
    assert row["loss_perturbed"] == [2.0, 3.0] and row["len_target"] == 7
    assert row["unit"] == "Alice Smith"


def test_row_record_with_options_is_the_targets_share() -> None:
    row = record(with_options=True)
    share = math.exp(-0.5) / (math.exp(-0.5) + math.exp(-2.0) + math.exp(-3.0))
    assert row["prob"] == pytest.approx(share)  # 0.6065 / 0.7917
    assert row["prob"] == pytest.approx(0.766157, abs=1e-6)


def test_row_record_without_perturbed_answers_names_the_row() -> None:
    with pytest.raises(ValueError, match="forget10_perturbed/0"):
        record(loss_perturbed=[])


def test_candidate_answers_drop_the_target_from_options_only() -> None:
    assert candidate_answers("Ann", "Ann", ["Bob", "Ann"], with_options=True) == (
        "Ann", "Ann", ["Bob"])
    assert candidate_answers("a b", "b a", ["a b", "c"], with_options=False) == (
        "a b", "b a", ["a b", "c"])


def test_task_summary_truth_ratio_depends_on_the_set_kind() -> None:
    rows = [record(loss_paraphrased=1.0, loss_perturbed=[1.0 + math.log(2)]),  # R = 0.5
            record(loss_paraphrased=1.0 + math.log(2), loss_perturbed=[1.0])]  # R = 2
    assert [r["truth_ratio_raw"] for r in rows] == pytest.approx([0.5, 2.0])
    forget = task_summary(rows, forget=True)
    assert forget["truth_ratio"] == pytest.approx(0.5)  # mean of min(R, 1/R)
    assert task_summary(rows, forget=False)["truth_ratio"] == pytest.approx(0.25)  # max(0, 1-R)
    # Forget knowledge's term is max(0, 1 − R) on forget sets too: (0.5 + 0) / 2
    assert forget["truth_knowledge"] == pytest.approx(0.25)
    assert forget["n"] == 2 and forget["fact_accuracy"] == 1.0
    assert forget["probability"] == pytest.approx(math.exp(-0.5))


# --- scoring ------------------------------------------------------------------------------


def fake_eval(ratios: dict[str, list[float]] | None = None, metric: float = 0.5) -> dict[str, Any]:
    """An eval.json payload: every task has metric value ``metric``; forget tasks the given R."""
    ratios = ratios or {}
    tasks = {}
    for task in TASKS:
        values = ratios.get(task.name, [1.0, 1.0, 1.0])
        rows = [
            {"id": f"{task.name}/{i}", "unit": f"person {i}", "generated": "",
             "rougeL_recall": metric, "fact_hit": True, "loss_target": 1.0,
             "loss_paraphrased": 1.0, "loss_perturbed": [1.0], "len_target": 3, "prob": metric,
             "truth_ratio_raw": r}
            for i, r in enumerate(values)
        ]
        tasks[task.name] = {"n": len(rows), "rougeL_recall": metric, "probability": metric,
                            "truth_ratio": metric, "fact_accuracy": metric,
                            "truth_knowledge": metric, "rows": rows}
    return {
        "model": {"path": "m"}, "forget_split": "forget10", "settings": {},
        "data": {"source": {}, "fingerprint": {"clear": {"content_hash": "abc"}}},
        "tasks": tasks,
    }


VANILLA_R = [0.05, 0.1, 0.2, 0.15, 0.08, 0.12]
GOLD_R = [0.9, 1.1, 0.8, 1.3, 0.95, 1.05]


def test_gold_against_itself_has_forget_quality_one() -> None:
    gold = fake_eval({"forget_captions": GOLD_R})
    scores = score(gold, copy.deepcopy(gold))
    assert scores["forget_quality"] == 1.0
    assert scores["authors_forget_quality"] == pytest.approx(1.0)
    assert set(scores["forget_quality_by_task"]) == {"forget_captions", "forget_face_name",
                                                     "forget_qa"}


def test_forget_quality_is_scipys_ks_p_value_on_the_per_row_ratios() -> None:
    evaluation = fake_eval({"forget_captions": VANILLA_R})
    scores = score(evaluation, fake_eval({"forget_captions": GOLD_R}))
    assert scores["forget_quality"] == pytest.approx(ks_2samp(VANILLA_R, GOLD_R).pvalue)
    assert scores["forget_quality"] < 0.05  # fully separated samples of 6: p = 2/924
    assert scores["forget_quality"] == pytest.approx(2 / 924)


def test_authors_forget_quality_is_one_minus_scipys_js_distance_of_inverse_ratios() -> None:
    evaluation = fake_eval({"forget_captions": VANILLA_R})
    scores = score(evaluation, fake_eval({"forget_captions": GOLD_R}))
    expected = 1 - jensenshannon(1 / np.array(VANILLA_R), 1 / np.array(GOLD_R))
    assert scores["authors_forget_quality"] == pytest.approx(expected, rel=1e-12)


def test_aggregates_are_means_over_the_right_tasks() -> None:
    evaluation = fake_eval(metric=0.5)
    evaluation["tasks"]["real_world"]["probability"] = 0.25
    evaluation["tasks"]["forget_qa"]["truth_ratio"] = 0.0
    evaluation["tasks"]["forget_captions"]["fact_accuracy"] = 0.0
    scores = score(evaluation, fake_eval())
    # real: 4 tasks × 3 metrics, eleven 0.5s and one 0.25: 12 / (11·2 + 4) = 12/26
    assert scores["real"] == pytest.approx(12 / 26)
    assert scores["retain"] == pytest.approx(0.5)
    # model utility: retain (3 tasks) + real (4 tasks) = 21 values, one of them 0.25
    assert scores["model_utility"] == pytest.approx(21 / (20 * 2 + 4))
    # K: arithmetic mean of 3 forget tasks × 4 terms, one of them 0 (the reported forget
    # truth ratio is not a term of K): 11 × 0.5 / 12
    assert scores["forget_knowledge"] == pytest.approx(11 * 0.5 / 12)
    # the authors' Forget: harmonic mean of prob and TR of forget captions and face→name only
    assert scores["authors_forget"] == pytest.approx(0.5)
    evaluation["tasks"]["forget_face_name"]["truth_ratio"] = 0.0
    assert score(evaluation, fake_eval())["authors_forget"] == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(forget_split="forget05"), "forget split 'forget05'"),
        (lambda e: e["data"].update(fingerprint={"clear": {"content_hash": "zzz"}}),
         "different data"),
        (lambda e: e["tasks"]["forget_qa"]["rows"].pop(), "task 'forget_qa' scored different rows"),
    ],
)
def test_score_refuses_evaluations_that_differ(change, message: str) -> None:
    evaluation = fake_eval()
    change(evaluation)
    with pytest.raises(EvalMismatch, match=message):
        score(evaluation, fake_eval())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("forget_split"), "missing top-level key 'forget_split'"),
        (lambda e: e["tasks"].update(bogus={}), "unknown task 'bogus'"),
        (lambda e: e["tasks"]["real_world"].pop("truth_ratio"), "'real_world' lacks truth_ratio"),
        (lambda e: e["tasks"]["retain_qa"].update(n=7), "has n=7"),
        (lambda e: e["tasks"]["forget_qa"]["rows"][1].pop("prob"), "row 1 lacks prob"),
        (lambda e: e["tasks"]["forget_qa"]["rows"][0].update(truth_ratio_raw="x"),
         "non-numeric truth ratio"),
    ],
)
def test_check_eval_names_what_is_malformed(change, message: str) -> None:
    evaluation = fake_eval()
    check_eval(evaluation, "x/eval.json")
    change(evaluation)
    with pytest.raises(ValueError, match=message):
        check_eval(evaluation, "x/eval.json")
