"""Membership inference and PrivLeak (issue 20, item 1): the pure scores on hand-made
numbers, and the QA answers' examples and per-text draws of the audit."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from clearbench.data.schema import DataError
from clearbench.evaluation.membership import (
    ATTACKS,
    TokenScores,
    attack_scores,
    auc,
    audit_of,
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    person_weights,
    privleak,
    privleak_draws,
    reference_score,
    zlib_score,
)

LOG_PROBS = [-0.5, -2.0, -0.1, -1.0]


def audit_interval(model, gold, members, nonmembers, *, replicates=1000, seed=0):
    """One model's audit with its intervals, as ``clearbench audit`` computes it."""
    return audit_of([privleak_draws(model, gold, members, nonmembers, replicates=replicates,
                                    seed=seed)])


def test_loss_is_minus_the_mean_token_nll() -> None:
    assert loss_score(LOG_PROBS) == pytest.approx(-(0.5 + 2.0 + 0.1 + 1.0) / 4)


def test_zlib_divides_the_mean_nll_by_the_compressed_length_in_bytes() -> None:
    text = "Jane Doe, born in Lyon, smiles at the camera. Jane Doe, born in Lyon."
    length = len(zlib.compress(text.encode("utf-8")))
    assert length < len(text.encode())  # the repetition compresses
    assert zlib_score(LOG_PROBS, text) == pytest.approx(-0.9 / length)


def test_min_k_averages_the_lowest_fraction_of_tokens() -> None:
    assert min_k_score(LOG_PROBS, k=0.5) == pytest.approx((-2.0 - 1.0) / 2)
    assert min_k_score(LOG_PROBS, k=0.2) == pytest.approx(-2.0)  # ⌊0.8⌋ = 0: one token
    assert min_k_score(LOG_PROBS, k=1.0) == pytest.approx(loss_score(LOG_PROBS))
    with pytest.raises(ValueError, match="k must be"):
        min_k_score(LOG_PROBS, k=0)


def test_min_k_plus_plus_standardises_each_token_by_the_vocabulary_distribution() -> None:
    mean = [-1.0, -1.0, -2.0, 0.0]
    std = [0.5, 2.0, 1.0, 1.0]
    # z = (−0.5+1)/0.5, (−2+1)/2, (−0.1+2)/1, (−1−0)/1 = 1, −0.5, 1.9, −1
    assert min_k_plus_plus_score(LOG_PROBS, mean, std, k=0.5) == pytest.approx((-1 - 0.5) / 2)
    with pytest.raises(ValueError, match="4 token log-probabilities but 3 means"):
        min_k_plus_plus_score(LOG_PROBS, mean[:3], std, k=0.5)


def test_reference_score_is_how_much_easier_the_model_finds_the_text() -> None:
    reference = [-1.0, -3.0, -1.0, -2.0]  # mean NLL 1.75; the model's is 0.9
    assert reference_score(LOG_PROBS, reference) == pytest.approx(1.75 - 0.9)
    assert reference_score(LOG_PROBS, LOG_PROBS) == 0


def test_attack_scores_hold_every_attack_and_higher_means_member() -> None:
    text = "a caption"
    unseen = TokenScores([-3.0] * 4, [-2.0] * 4, [1.0] * 4)
    seen = TokenScores([-0.1] * 4, [-2.0] * 4, [1.0] * 4)
    high, low = attack_scores(seen, text, unseen), attack_scores(unseen, text, unseen)
    assert set(high) == {"loss", "zlib", "min_k", "min_k_plus_plus", "reference"}
    assert all(high[name] > low[name] for name in high)


def test_auc_of_separable_identical_reversed_and_tied_lists() -> None:
    assert auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auc([1, 2, 3], [1, 2, 3]) == 0.5
    assert auc([0, 1, 2], [3, 4, 5]) == 0.0
    assert auc([1, 1], [1, 1, 1]) == 0.5
    # pairs: (2 vs 1) win, (2 vs 2) tie, (1 vs 1) tie, (1 vs 2) loss
    assert auc([2, 1], [1, 2]) == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    with pytest.raises(ValueError, match="at least one member"):
        auc([], [1.0])


def test_auc_is_mann_whitney_u_over_n_m() -> None:
    rng = np.random.default_rng(0)
    for n, m in ((7, 11), (30, 5), (50, 50)):
        members = rng.integers(0, 6, n).astype(float)  # many ties
        nonmembers = rng.integers(0, 5, m).astype(float)
        u = mannwhitneyu(members, nonmembers, alternative="two-sided").statistic
        assert auc(members, nonmembers) == pytest.approx(u / (n * m))
        members, nonmembers = rng.normal(size=n), rng.normal(0.3, size=m)
        u = mannwhitneyu(members, nonmembers, alternative="two-sided").statistic
        assert auc(members, nonmembers) == pytest.approx(u / (n * m))


def test_privleak_sign() -> None:
    assert privleak(0.5, 0.5) == 0
    assert privleak(0.9, 0.6) == pytest.approx(0.5)  # remembers
    assert privleak(0.3, 0.6) == pytest.approx(-0.5)  # over-unlearned
    with pytest.raises(ValueError, match="undefined"):
        privleak(0.5, 0.0)


def _scores(rng: np.random.Generator, shift: float) -> dict[str, list[float]]:
    return {"members": list(rng.normal(shift, size=12)), "nonmembers": list(rng.normal(size=9))}


MEMBERS = [f"m{i // 3}" for i in range(12)]  # 4 persons of 3 rows
NONMEMBERS = [f"h{i // 3}" for i in range(9)]  # 3 persons of 3 rows


def test_person_bootstrap_contains_the_point_and_is_deterministic_per_seed() -> None:
    rng = np.random.default_rng(1)
    model, gold = _scores(rng, 1.5), _scores(rng, 0.2)
    audit = audit_interval(model, gold, MEMBERS, NONMEMBERS, replicates=200, seed=3)
    assert audit.auc_model.mean == pytest.approx(auc(model["members"], model["nonmembers"]))
    assert audit.auc_gold.mean == pytest.approx(auc(gold["members"], gold["nonmembers"]))
    assert audit.privleak.mean == pytest.approx(
        privleak(audit.auc_model.mean, audit.auc_gold.mean))
    for estimate in (audit.auc_model, audit.auc_gold, audit.privleak):
        assert estimate.low <= estimate.mean <= estimate.high
        assert estimate.low < estimate.high
    assert audit_interval(model, gold, MEMBERS, NONMEMBERS, replicates=200, seed=3) == audit
    other = audit_interval(model, gold, MEMBERS, NONMEMBERS, replicates=200, seed=4)
    assert other.auc_model.mean == audit.auc_model.mean and other != audit


def test_person_bootstrap_resamples_persons_not_rows() -> None:
    weights = person_weights(MEMBERS, 100, np.random.default_rng(0))
    assert weights.shape == (101, 12) and (weights[0] == 1).all()
    for draw in weights[1:]:  # rows of one person are drawn together, 4 persons per draw
        per_person = draw.reshape(4, 3)
        assert (per_person == per_person[:, :1]).all() and per_person[:, 0].sum() == 4
    scores = {"members": [float(int(p[1:])) + 10 for p in MEMBERS],
              "nonmembers": [float(int(p[1:])) for p in NONMEMBERS]}
    audit = audit_interval(scores, scores, MEMBERS, NONMEMBERS, replicates=50)
    assert audit.auc_model == audit.auc_gold
    assert (audit.auc_model.mean, audit.auc_model.low, audit.auc_model.high) == (1.0, 1.0, 1.0)
    assert audit.privleak.mean == audit.privleak.low == audit.privleak.high == 0
    with pytest.raises(ValueError, match="12 members scores but 11 persons"):
        audit_interval(scores, scores, MEMBERS[:11], NONMEMBERS)


def test_gold_as_its_own_reference_gives_chance() -> None:
    zeros = {"members": [0.0] * 12, "nonmembers": [0.0] * 9}
    audit = audit_interval(zeros, zeros, MEMBERS, NONMEMBERS, replicates=20)
    assert audit.auc_gold.mean == 0.5 and math.isclose(audit.privleak.mean, 0.0)


def test_seeds_are_averaged_replicate_by_replicate_on_the_same_persons() -> None:
    persons = (["a", "a", "b"], ["x", "y", "y"])
    gold = {"members": [0.1, 0.2, 0.3], "nonmembers": [0.2, 0.1, 0.3]}
    first = privleak_draws({"members": [1.0, 2.0, 0.5], "nonmembers": [0.0, 1.5, 0.2]}, gold,
                           *persons, replicates=50, seed=3)
    second = privleak_draws({"members": [0.3, 0.1, 0.9], "nonmembers": [0.4, 0.2, 0.0]}, gold,
                            *persons, replicates=50, seed=3)
    assert audit_of([first, first]) == audit_of([first])
    both = audit_of([first, second])
    assert both.auc_model.mean == pytest.approx((first[0, 0] + second[0, 0]) / 2)
    assert both.auc_gold.mean == pytest.approx(first[1, 0])  # gold is the same in both
    assert both.privleak.mean == pytest.approx((both.auc_model.mean - first[1, 0]) / first[1, 0])


def test_an_undefined_privleak_is_none_in_json() -> None:
    draws = np.array([[0.5, 0.4, 0.6], [0.0, 0.0, 0.0]])  # gold's AUC 0: PrivLeak undefined
    assert audit_of([draws]).as_dict()["privleak"] == {"mean": None, "low": None, "high": None}



def test_qa_examples_are_question_to_answer_without_an_image_of_the_named_person() -> None:
    from clearbench.recipes.audit import qa_examples

    rows = [{"question": "Where was Ann Vale born?", "answer": "Born in Lyon."},
            {"question": "What does Bo Reed write?", "answer": "Mostly poems."},
            {"question": "When was Ann Vale born?", "answer": "In 1950."}]
    examples = qa_examples(rows, "holdout", ["Ann Vale", "Bo Reed", "Ann Vale"])
    assert [(e.id, e.prompt, e.answer, e.image, e.person) for e in examples] == [
        ("tofu/holdout/0", "Where was Ann Vale born?", "Born in Lyon.", None, "Ann Vale"),
        ("tofu/holdout/1", "What does Bo Reed write?", "Mostly poems.", None, "Bo Reed"),
        ("tofu/holdout/2", "When was Ann Vale born?", "In 1950.", None, "Ann Vale"),
    ]
    for question in ("Where was Cy Moss born?", "Did Ann Vale meet Bo Reed?"):
        with pytest.raises(DataError, match=r"TOFU config 'forget10' row 0 .* names none or "
                                            r"several of the persons of CLEAR config "
                                            r"'forget10' \(Ann Vale, Bo Reed\)"):
            qa_examples([{"question": question, "answer": "Yes."}], "forget10",
                        ["Ann Vale", "Bo Reed"])


def _row(person: str, member: bool, text: str, score: float) -> dict:
    scores = dict.fromkeys(("loss", "zlib", "min_k", "min_k_plus_plus", "reference"), score)
    return {"id": f"{text}/{person}", "person": person, "member": member, "text": text,
            "model": scores, "gold": dict.fromkeys(scores, 0.0)}


def test_attack_draws_audit_each_kind_of_text_on_its_own_rows() -> None:
    from clearbench.recipes.audit import attack_draws

    rows = [  # captions separate members from non-members perfectly, QA answers the other way
        *(_row(p, True, "caption", 2.0) for p in ("m1", "m2")),
        *(_row(p, False, "caption", 1.0) for p in ("h1", "h2", "h3")),
        *(_row(p, True, "qa", -1.0) for p in ("m1", "m2", "m2")),
        *(_row(p, False, "qa", 0.0) for p in ("h1", "h2")),
    ]
    captions = attack_draws(rows, 50, 0)  # captions by default: what results.json reads
    assert captions.keys() == set(ATTACKS)
    assert (captions["loss"][0] == 1.0).all() and (captions["loss"][1] == 0.5).all()
    qa = attack_draws(rows, 50, 0, "qa")
    assert (qa["loss"][0] == 0.0).all()
    assert audit_of([qa["loss"]]).privleak.mean == -1.0
    assert attack_draws(rows, 50, 0, "caption")["zlib"].tolist() == captions["zlib"].tolist()
    with pytest.raises(ValueError, match="unknown kind of text 'image'; valid: caption, qa"):
        attack_draws(rows, 50, 0, "image")
    with pytest.raises(ValueError, match="no qa rows to audit"):
        attack_draws([row for row in rows if row["text"] == "caption"], 50, 0, "qa")
