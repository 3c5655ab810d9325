"""Forget knowledge, forgetting progress, the authors' convention and the person bootstrap:
pure functions on hand-made task summaries and eval rows."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import ks_2samp

from clearbench.data.loading import DataSource
from clearbench.evaluation.aggregates import (
    authors_aggregate,
    forget_knowledge,
    forgetting_progress,
    utility,
)
from clearbench.evaluation.statistics import (
    Resampler,
    combine_seeds,
    interval,
    paired_ks_pvalues,
    score_replicates,
    task_summaries,
)
from clearbench.evaluation.tasks import (
    TASKS,
    TASKS_BY_NAME,
    qa_authors,
    text_options_row,
    text_qa_row,
)

FORGET_TASKS = ("forget_captions", "forget_face_name", "forget_qa")


def summaries(**values: dict[str, float]) -> dict[str, dict[str, float]]:
    """Task summaries: every metric 0.5 unless ``values[task]`` says otherwise."""
    metrics = ("probability", "rougeL_recall", "fact_accuracy", "truth_ratio", "truth_knowledge")
    return {task.name: {m: 0.5 for m in metrics} | values.get(task.name, {}) for task in TASKS}


# --- aggregates ---------------------------------------------------------------------------


def test_forget_knowledge_is_the_mean_of_four_terms_over_the_forget_tasks() -> None:
    tasks = summaries(
        forget_captions={"probability": 0.9, "rougeL_recall": 1.0, "fact_accuracy": 1.0,
                         "truth_knowledge": 0.7, "truth_ratio": 0.0},
        forget_qa={"probability": 0.1, "rougeL_recall": 0.2, "fact_accuracy": 0.0,
                   "truth_knowledge": 0.1},
        retain_captions={"probability": 0.0},  # not a forget task: no effect
    )
    # (0.9 + 1 + 1 + 0.7) + 4 × 0.5 + (0.1 + 0.2 + 0 + 0.1) = 3.6 + 2 + 0.4 = 6.0 over 12
    assert forget_knowledge(tasks) == pytest.approx(0.5)
    tasks["forget_face_name"]["fact_accuracy"] = 0.0
    assert forget_knowledge(tasks) == pytest.approx(5.5 / 12)


def test_forget_knowledge_falls_monotonically_unlike_the_papers_forget() -> None:
    """A model that forgot half (probability 0.97 → 0.43) has less knowledge, while the
    authors' Forget (min(R, 1/R) rises as R → 1) can call it worse (spec §5)."""
    before = summaries(**{t: {"probability": 0.97, "truth_knowledge": 0.8, "truth_ratio": 0.2}
                          for t in FORGET_TASKS})
    after = summaries(**{t: {"probability": 0.43, "truth_knowledge": 0.1, "truth_ratio": 0.9}
                         for t in FORGET_TASKS})
    assert forget_knowledge(after) < forget_knowledge(before)
    assert authors_aggregate(after, "forget") > authors_aggregate(before, "forget")


def test_forgetting_progress_by_hand() -> None:
    assert forgetting_progress(0.8, 0.8, 0.2) == 0.0
    assert forgetting_progress(0.2, 0.8, 0.2) == 1.0
    assert forgetting_progress(0.5, 0.8, 0.2) == pytest.approx(0.5)
    assert forgetting_progress(0.05, 0.8, 0.2) == pytest.approx(1.25)  # over-forgetting
    assert math.isnan(forgetting_progress(0.5, 0.4, 0.4))  # no gap to measure progress on
    values = forgetting_progress(np.array([0.8, 0.5]), np.array([0.8, 0.8]), np.array([0.2, 0.8]))
    assert values[0] == 0.0 and math.isnan(values[1])


def test_utility_and_the_authors_convention_take_their_own_tasks() -> None:
    tasks = summaries(retain_captions={"rougeL_recall": 0.25}, real_world={"truth_ratio": 0.0})
    # retain: 3 tasks × 3 metrics, one of them 0.25: 9 / (8·2 + 4)
    assert utility(tasks, "retain") == pytest.approx(9 / 20)
    assert utility(tasks, "real") == 0.0
    # the authors' Retain ignores ROUGE-L and the QA sets: probability and TR of two tasks
    assert authors_aggregate(tasks, "retain") == pytest.approx(0.5)
    tasks["retain_face_name"]["probability"] = 0.2
    # harmonic mean of 0.5, 0.5, 0.2, 0.5 = 4 / (2 + 2 + 5 + 2)
    assert authors_aggregate(tasks, "retain") == pytest.approx(4 / 11)
    del tasks["real_faces"]
    assert authors_aggregate(tasks, "real") is None
    assert utility({"forget_qa": tasks["forget_qa"]}, "retain") is None


# --- rows of an evaluation ----------------------------------------------------------------


def evaluation(values: dict[str, list[tuple[str, float, float]]]) -> dict[str, Any]:
    """An eval payload: per task, rows of (unit, prob, R); ROUGE-L 1, fact hit."""
    tasks = {}
    for name, rows in values.items():
        tasks[name] = {"rows": [
            {"id": f"{name}/{i}", "unit": unit, "prob": prob, "rougeL_recall": 1.0,
             "fact_hit": True, "truth_ratio_raw": ratio}
            for i, (unit, prob, ratio) in enumerate(rows)
        ]}
    return {"tasks": tasks}


PERSONS = ("Ann", "Bob", "Cy", "Dee")


def person_rows(probs: dict[str, float], ratio: float = 1.0) -> list[tuple[str, float, float]]:
    return [(p, probs[p], ratio) for p in PERSONS for _ in range(3)]


def test_a_constant_metric_has_a_zero_width_interval() -> None:
    rows = person_rows(dict.fromkeys(PERSONS, 0.7))
    payload = evaluation({"forget_qa": rows, "retain_qa": rows})
    resampler = Resampler(payload, replicates=200, seed=1)
    probability = task_summaries(payload, resampler)["forget_qa"]["probability"]
    estimate = interval(float(probability[0]), probability[1:])
    assert (estimate.mean, estimate.low, estimate.high) == pytest.approx((0.7, 0.7, 0.7))


def test_the_bootstrap_resamples_persons_not_rows() -> None:
    probs = {"Ann": 0.1, "Bob": 0.2, "Cy": 0.3, "Dee": 1.0}
    payload = evaluation({"forget_qa": person_rows(probs),
                          "forget_captions": person_rows(probs)[:4]})  # Ann ×3, Bob ×1
    resampler = Resampler(payload, replicates=500, seed=3)
    weights = resampler.weights(payload, "forget_qa")
    assert weights.shape == (501, 12) and np.all(weights[0] == 1)
    # a person's three rows are drawn together, and every replicate draws 4 persons
    assert np.all(weights[1:, 0] == weights[1:, 1]) and np.all(weights[1:, 0] == weights[1:, 2])
    assert np.all(weights[1:, ::3].sum(axis=1) == 4)
    means = task_summaries(payload, resampler)["forget_qa"]["probability"]
    assert means[0] == pytest.approx(0.4)
    # replicate i by hand: the mean over the drawn persons' rows
    counts = weights[1:, ::3]
    assert means[1:] == pytest.approx(counts @ np.array([0.1, 0.2, 0.3, 1.0]) / 4)
    # the forget tasks with other persons draw on their own
    captions = resampler.weights(payload, "forget_captions")
    assert captions.shape == (501, 4)


def test_tasks_of_one_kind_with_the_same_persons_share_their_draws() -> None:
    rows = person_rows(dict.fromkeys(PERSONS, 0.5))
    payload = evaluation({"forget_qa": rows, "forget_captions": rows, "retain_qa": rows})
    resampler = Resampler(payload, replicates=100, seed=0)
    qa, captions = (resampler.weights(payload, t) for t in ("forget_qa", "forget_captions"))
    assert np.array_equal(qa, captions)
    # retain persons are resampled separately, even with the same names
    assert not np.array_equal(qa, resampler.weights(payload, "retain_qa"))


def test_other_rows_are_refused() -> None:
    payload = evaluation({"forget_qa": person_rows(dict.fromkeys(PERSONS, 0.5))})
    resampler = Resampler(payload, replicates=10)
    other = evaluation({"forget_qa": person_rows(dict.fromkeys(PERSONS, 0.5))[:-1]})
    with pytest.raises(ValueError, match="'forget_qa': rows or units differ"):
        resampler.weights(other, "forget_qa")


def full_evaluation(prob: float, ratio: float) -> dict[str, Any]:
    rows = person_rows(dict.fromkeys(PERSONS, prob), ratio)
    return evaluation({task.name: rows for task in TASKS})


def test_score_replicates_point_values_by_hand() -> None:
    vanilla, gold = full_evaluation(0.9, 0.1), full_evaluation(0.3, 1.0)
    model = full_evaluation(0.6, 0.5)
    resampler = Resampler(gold, replicates=50, seed=0)
    scores = score_replicates(model, vanilla, gold, resampler)
    # K = mean(prob, ROUGE-L 1, fact 1, max(0, 1 − R)) on each forget task
    k_vanilla, k_gold, k = (0.9 + 2 + 0.9) / 4, (0.3 + 2 + 0) / 4, (0.6 + 2 + 0.5) / 4
    assert scores["forget_knowledge"][0] == pytest.approx(k)
    assert scores["forgetting_progress"][0] == pytest.approx((k_vanilla - k) / (k_vanilla - k_gold))
    # every row has the same numbers, so every replicate equals the point value
    assert np.allclose(scores["forget_knowledge"], k)
    assert scores["forget_quality"][0] == pytest.approx(ks_2samp([0.5] * 12, [1.0] * 12).pvalue)
    assert scores["authors_forget_quality"][0] == pytest.approx(1.0)  # both vectors constant
    assert set(scores) >= {"retain", "real", "model_utility", "authors_real", "authors_retain",
                           "authors_forget", "forget_quality_qa"}


def test_seeds_combine_point_by_mean_and_replicates_by_seed_draws() -> None:
    gold = full_evaluation(0.3, 1.0)
    resampler = Resampler(gold, replicates=400, seed=0, seeds=2)
    seeds = [{"k": np.full(401, 0.2)}, {"k": np.full(401, 0.4)}]
    (estimate, draws), = combine_seeds(seeds, resampler).values()
    assert estimate.mean == pytest.approx(0.3)
    # each replicate averages two drawn seeds: 0.2, 0.3 or 0.4, about 1/4, 1/2, 1/4 of the time
    assert set(np.round(draws, 6)) <= {0.2, 0.3, 0.4}
    assert abs(np.mean(np.isclose(draws, 0.3)) - 0.5) < 0.1
    assert (estimate.low, estimate.high) == pytest.approx((0.2, 0.4))
    one, = combine_seeds(seeds[:1], resampler).values()
    assert one[0].mean == pytest.approx(0.2) and one[0].low == one[0].high


# --- tasks --------------------------------------------------------------------------------


def test_truth_ratio_base_per_task() -> None:
    """Biography QA: the paraphrase; real authors and world facts: the answer (TOFU)."""
    row = {"question": "Q?", "answer": "A.", "paraphrased_answer": "P.",
           "perturbed_answer": ["X.", "Y."]}
    assert text_qa_row(row, "id").paraphrased == "P."
    assert text_options_row(row, "id").paraphrased == "A."
    del row["paraphrased_answer"]
    assert text_options_row(row, "id").perturbed == ("X.", "Y.")
    assert TASKS_BY_NAME["real_authors"].make_row is text_options_row
    assert TASKS_BY_NAME["world_facts"].make_row is text_options_row
    assert TASKS_BY_NAME["forget_qa"].make_row is text_qa_row


def test_qa_rows_belong_to_their_author(mini_data) -> None:
    """TOFU keeps each author's 20 QA pairs together; CLEAR-mini's data card names them."""
    hub = DataSource()
    assert qa_authors(hub, "forget10_perturbed", 41) == (
        ["author 1"] * 20 + ["author 2"] * 20 + ["author 3"])
    source = DataSource.local(mini_data)
    rows = TASKS_BY_NAME["forget_qa"].rows(source, "forget10")
    card = json.loads((mini_data / "datacard.json").read_text())
    (person,) = card["persons"]["forget10"]
    assert {row.unit for row in rows} == {person}
    assert all(person in row.prompt for row in rows)
    captions = TASKS_BY_NAME["retain_captions"].rows(source, "forget10")
    assert {row.unit for row in captions} == set(card["persons"]["retain_perturbed"])


def test_paired_ks_pvalues_equal_scipy_on_the_repeated_rows() -> None:
    rng = np.random.default_rng(5)
    ratios, gold = rng.lognormal(size=12), rng.lognormal(0.7, size=12)
    gold[3] = ratios[3]  # a tie across the samples
    counts = rng.multinomial(12, [1 / 12] * 12, size=40)
    counts[0] = 1
    expected = [ks_2samp(np.repeat(ratios, c), np.repeat(gold, c)).pvalue for c in counts]
    assert paired_ks_pvalues(ratios, gold, counts) == pytest.approx(expected, rel=1e-12)
