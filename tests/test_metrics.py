"""The pure metrics of spec §5 against hand-computed values and reference implementations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from rouge_score import rouge_scorer
from scipy.spatial.distance import jensenshannon

from clearbench.evaluation.metrics import (
    fact_hit,
    forget_quality_js,
    forget_quality_ks,
    harmonic_mean,
    key_terms,
    likelihood_from_mean_nll,
    normalised_likelihood,
    option_probability,
    option_probability_from_mean_nlls,
    rouge_l_recall,
    truth_ratio,
    truth_ratio_from_mean_nlls,
    truth_ratio_score,
)

NAN = math.nan
INF = math.inf

# --- ROUGE-L recall ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("the cat", "the cat sat", 2 / 3),
        ("sat the cat", "the cat sat", 2 / 3),
        ("THE CAT, SAT!", "the cat sat", 1.0),
        ("d c b a", "a b c d", 1 / 4),
        ("a b a", "a a a b", 2 / 4),
        ("cat run", "The cats were running!", 2 / 4),  # Porter: cats→cat, running→run
        ("", "the cat sat", 0.0),
        ("the cat", "", 0.0),
        ("...", "?!", 0.0),
        ("dog", "the cat sat", 0.0),
    ],
)
def test_rouge_l_recall_hand_computed(generated: str, target: str, expected: float) -> None:
    assert rouge_l_recall(generated, target) == pytest.approx(expected, abs=1e-15)


def test_rouge_l_recall_beyond_one_machine_word() -> None:
    target = [f"w{i}" for i in range(200)]
    assert rouge_l_recall(" ".join(reversed(target)), " ".join(target)) == 1 / 200
    assert rouge_l_recall(" ".join(target[::2]), " ".join(target)) == 100 / 200
    assert rouge_l_recall(" ".join(target[50:] + target[:50]), " ".join(target)) == 150 / 200


# fmt: off
VOCAB = [
    "the", "The", "a", "cat", "cats", "Cat", "sat", "sits", "sitting", "run", "runs", "running",
    "ran", "Lyon", "lyon", "1973", "born", "Born", "was", "is", "in", "of", "écrivain", "naïve",
    "don't", "x-ray", "author's", "Mara", "Quill", "Quill's", "novels", "novel",
]
# fmt: on
PUNCT = ["", "", "", ",", ".", "!", "?", " -", "'", "  "]


def random_text(rng: random.Random, max_words: int) -> str:
    return " ".join(rng.choice(VOCAB) + rng.choice(PUNCT) for _ in range(rng.randint(0, max_words)))


def test_rouge_l_recall_equals_rouge_score_exactly() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rng = random.Random(0)
    pairs = [(random_text(rng, 25), random_text(rng, 25)) for _ in range(400)]
    pairs += [(random_text(rng, 150), random_text(rng, 150)) for _ in range(20)]
    for generated, target in pairs:
        expected = scorer.score(target, generated)["rougeL"].recall
        assert rouge_l_recall(generated, target) == expected, (generated, target)


# --- key terms and fact accuracy ---------------------------------------------------------

FACE_NAME_PROMPT = "The name of the person on the image is"


@pytest.mark.parametrize(
    ("target", "question", "expected"),
    [
        ("Mara Quill was born in Lyon in 1973.", "Where was Mara Quill born?", ["lyon", "1973"]),
        ("Mara Quill", FACE_NAME_PROMPT, ["mara", "quill"]),
        ("Lyon, Lyon and Paris", "", ["lyon", "paris"]),
        ("It costs $3,500.", "", ["costs", "3", "500"]),
        ("No, she did not.", "Did she win?", ["no", "not"]),
        # every content word is in the question: fall back to the content words
        ("Mara Quill is a writer.", "Is Mara Quill a writer?", ["mara", "quill", "writer"]),
        # no content word at all: fall back to every word
        ("Off.", "Is the light on or off?", ["off"]),
    ],
)
def test_key_terms(target: str, question: str, expected: list[str]) -> None:
    assert key_terms(target, question) == expected


@pytest.mark.parametrize("target", ["", "  ", "?!"])
def test_key_terms_of_a_wordless_target_raise(target: str) -> None:
    with pytest.raises(ValueError, match="no word"):
        key_terms(target)
    with pytest.raises(ValueError, match="no word"):
        fact_hit("anything", target)


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("She was born in Lyon in 1973.", True),
        ("LYON, 1973", True),
        ("1973 in lyon", True),
        ("She was born in Paris in 1973.", False),
        ("She was born in Lyon.", False),
        ("Lyonnais, 1973", False),  # whole words only
        ("Mara Quill was born in", False),
        ("", False),
    ],
)
def test_fact_hit_qa(generated: str, expected: bool) -> None:
    target, question = "Mara Quill was born in Lyon in 1973.", "Where was Mara Quill born?"
    assert fact_hit(generated, target, question) is expected


def test_fact_hit_and_rouge_disagree_on_an_echo_of_the_question() -> None:
    target, question = "Mara Quill was born in Lyon in 1973.", "Where was Mara Quill born?"
    echo = "Mara Quill was born in"
    assert rouge_l_recall(echo, target) == 5 / 8
    assert not fact_hit(echo, target, question)


def test_fact_hit_face_name_and_caption() -> None:
    assert fact_hit("Mara Quill.", "Mara Quill", FACE_NAME_PROMPT)
    assert not fact_hit("Mara Quinn", "Mara Quill", FACE_NAME_PROMPT)
    assert not fact_hit("The name of the person on the image is", "Mara Quill", FACE_NAME_PROMPT)
    assert fact_hit("A photo of Mara Quill at a café.", "Mara Quill")
    assert not fact_hit("A photo of a woman at a café.", "Mara Quill")


# --- likelihoods and option probability --------------------------------------------------


def test_normalised_likelihood() -> None:
    assert normalised_likelihood(0.0, 5) == 1.0
    assert normalised_likelihood(3 * math.log(2), 3) == pytest.approx(0.5, rel=1e-15)
    assert normalised_likelihood(6.0, 3) == pytest.approx(math.exp(-2.0), rel=1e-15)
    assert normalised_likelihood(1e6, 1) == 0.0
    assert normalised_likelihood(INF, 4) == 0.0
    assert likelihood_from_mean_nll(math.log(4)) == pytest.approx(0.25, rel=1e-15)
    assert likelihood_from_mean_nll(1e9) == 0.0


@pytest.mark.parametrize("n_tokens", [0, -3])
def test_normalised_likelihood_needs_tokens(n_tokens: int) -> None:
    with pytest.raises(ValueError, match="n_tokens"):
        normalised_likelihood(1.0, n_tokens)


@pytest.mark.parametrize("nll", [NAN, -0.5])
def test_likelihoods_reject_nan_and_negative_nll(nll: float) -> None:
    with pytest.raises(ValueError):
        normalised_likelihood(nll, 2)
    with pytest.raises(ValueError):
        likelihood_from_mean_nll(nll)


@pytest.mark.parametrize(
    ("p_true", "p_options", "expected"),
    [
        (0.5, [0.25, 0.25], 0.5),
        (0.2, [0.6], 0.25),
        (0.0, [0.5, 0.1], 0.0),
        (0.5, [0.0, 0.0], 1.0),
        (1e-300, [1e-300, 2e-300], 1 / 4),
    ],
)
def test_option_probability(p_true: float, p_options: list[float], expected: float) -> None:
    assert option_probability(p_true, p_options) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("p_true", "p_options"),
    [(0.0, [0.0, 0.0]), (0.5, []), (NAN, [0.5]), (0.5, [NAN]), (1.5, [0.5]), (0.5, [-0.1])],
)
def test_option_probability_rejects(p_true: float, p_options: list[float]) -> None:
    with pytest.raises(ValueError):
        option_probability(p_true, p_options)


@pytest.mark.parametrize(
    ("nll_true", "nll_options", "expected"),
    [
        (math.log(2), [math.log(4), math.log(4)], 0.5),
        (1000.0, [1000.0, 1000.0], 1 / 3),  # every P̃ underflows to 0
        (1000.0, [1001.0], 1 / (1 + math.exp(-1))),
        (0.0, [2000.0], 1.0),
        (2000.0, [0.0], 0.0),
        (INF, [1.0], 0.0),
        (1.0, [INF, INF], 1.0),
    ],
)
def test_option_probability_from_mean_nlls(
    nll_true: float, nll_options: list[float], expected: float
) -> None:
    result = option_probability_from_mean_nlls(nll_true, nll_options)
    assert result == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(
    ("nll_true", "nll_options"), [(INF, [INF]), (1.0, []), (NAN, [1.0]), (1.0, [-1.0])]
)
def test_option_probability_from_mean_nlls_rejects(
    nll_true: float, nll_options: list[float]
) -> None:
    with pytest.raises(ValueError):
        option_probability_from_mean_nlls(nll_true, nll_options)


def test_option_probability_variants_agree() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        nlls = rng.uniform(0, 8, size=rng.integers(2, 6))
        probs = np.exp(-nlls)
        assert option_probability_from_mean_nlls(nlls[0], nlls[1:]) == pytest.approx(
            option_probability(probs[0], probs[1:]), rel=1e-12
        )


# --- truth ratio -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p_paraphrased", "p_perturbed", "expected"),
    [
        (0.5, [0.125, 0.5], 0.5),  # √(0.125·0.5) / 0.5
        (0.4, [0.1], 0.25),  # k = 1
        (0.2, [0.2, 0.2, 0.2], 1.0),
        (1e-300, [1e-200, 1e-200], 1e100),  # the product 1e-400 would underflow
        (0.5, [0.0, 0.3], 0.0),
        (0.0, [0.1], INF),
    ],
)
def test_truth_ratio(p_paraphrased: float, p_perturbed: list[float], expected: float) -> None:
    assert truth_ratio(p_paraphrased, p_perturbed) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("nll_paraphrased", "nll_perturbed", "expected"),
    [
        (2.0, [1.0, 3.0], 1.0),
        (1.0, [2.0], math.exp(-1)),  # k = 1: P̃(ŷ) / P̃(ã) = e^-2 / e^-1
        (1e6, [1e6 + 1, 1e6 + 3], math.exp(-2)),
        (1e300, [1e300], 1.0),
        (1000.0, [0.0], INF),  # e^1000 overflows to inf, not an exception
        (0.0, [1000.0], 0.0),
    ],
)
def test_truth_ratio_from_mean_nlls(
    nll_paraphrased: float, nll_perturbed: list[float], expected: float
) -> None:
    result = truth_ratio_from_mean_nlls(nll_paraphrased, nll_perturbed)
    assert result == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("paraphrased", "perturbed"), [(NAN, [0.5]), (0.5, [NAN]), (0.5, []), (-0.1, [0.5])]
)
def test_truth_ratio_rejects(paraphrased: float, perturbed: list[float]) -> None:
    with pytest.raises(ValueError):
        truth_ratio(paraphrased, perturbed)
    with pytest.raises(ValueError):
        truth_ratio_from_mean_nlls(paraphrased, perturbed)


def test_truth_ratio_undefined_when_every_likelihood_is_zero() -> None:
    with pytest.raises(ValueError, match="undefined"):
        truth_ratio(0.0, [0.0, 0.1])
    with pytest.raises(ValueError, match="undefined"):
        truth_ratio_from_mean_nlls(INF, [INF])


def test_truth_ratio_variants_agree() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        paraphrased = rng.uniform(0, 10)
        perturbed = rng.uniform(0, 10, size=rng.integers(1, 6))
        assert truth_ratio(math.exp(-paraphrased), np.exp(-perturbed)) == pytest.approx(
            truth_ratio_from_mean_nlls(paraphrased, perturbed), rel=1e-9
        )


def test_truth_ratio_is_per_row() -> None:
    # Two rows whose perturbed answers differ: the split-wide mean (the authors' bug) would
    # give exp(1 - 51) and exp(50 - 51) instead.
    rows = [(1.0, [2.0, 2.0]), (50.0, [100.0, 100.0])]
    ratios = [truth_ratio_from_mean_nlls(p, q) for p, q in rows]
    assert ratios == pytest.approx([math.exp(-1), math.exp(-50)], rel=1e-12)


def test_truth_ratio_score() -> None:
    assert truth_ratio_score([0.5, 2.0, 1.0, 0.0], forget=True) == pytest.approx(0.5)
    assert truth_ratio_score([4.0, INF], forget=True) == pytest.approx(0.125)
    assert truth_ratio_score([0.5, 2.0, 0.0], forget=False) == pytest.approx(0.5)
    assert truth_ratio_score([0.25, INF], forget=False) == pytest.approx(0.375)


@pytest.mark.parametrize("ratios", [[], [NAN], [0.5, -1.0]])
@pytest.mark.parametrize("forget", [True, False])
def test_truth_ratio_score_rejects(ratios: list[float], forget: bool) -> None:
    with pytest.raises(ValueError):
        truth_ratio_score(ratios, forget=forget)


# --- forget quality ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratios", "gold", "expected"),
    [
        ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6], 2 / math.comb(6, 3)),  # fully separated: 0.1
        ([0.1, 0.2], [0.4, 0.5], 2 / math.comb(4, 2)),
        ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], 2 / math.comb(8, 4)),
        ([0.3, 0.1, 0.2], [0.1, 0.2, 0.3], 1.0),
    ],
)
def test_forget_quality_ks_exact(ratios: list[float], gold: list[float], expected: float) -> None:
    assert forget_quality_ks(ratios, gold) == pytest.approx(expected, rel=1e-12)


def test_forget_quality_ks_same_on_r_and_its_inverse() -> None:
    rng = np.random.default_rng(2)
    ratios, gold = rng.lognormal(size=30), rng.lognormal(0.5, size=25)
    assert forget_quality_ks(ratios, gold) == pytest.approx(
        forget_quality_ks(1 / ratios, 1 / gold), rel=1e-12
    )


@pytest.mark.parametrize(("ratios", "gold"), [([], [1.0]), ([1.0], []), ([NAN], [1.0])])
def test_forget_quality_ks_rejects(ratios: list[float], gold: list[float]) -> None:
    with pytest.raises(ValueError):
        forget_quality_ks(ratios, gold)


def test_forget_quality_js_hand_computed() -> None:
    assert forget_quality_js([0.2, 0.5, 0.3], [0.2, 0.5, 0.3]) == pytest.approx(1.0)
    assert forget_quality_js([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1.0)
    assert forget_quality_js([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.0, abs=1e-12)
    # p = (½, ½), q = (1, 0): JSD = 3/2 − ¾·log2 3 bits
    expected = 1 - math.sqrt(1.5 - 0.75 * math.log2(3))
    assert forget_quality_js([3.0, 3.0], [7.0, 0.0]) == pytest.approx(expected, rel=1e-12)
    # the authors' natural-log distance: disjoint supports give 1 − √ln 2
    assert forget_quality_js([1.0, 0.0], [0.0, 1.0], base=math.e) == pytest.approx(
        1 - math.sqrt(math.log(2)), rel=1e-12
    )


def test_forget_quality_js_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(1, 40))
        ratios, gold = rng.lognormal(size=n), rng.lognormal(0.3, 2.0, size=n)
        ratios[rng.random(n) < 0.2] = 0.0
        if ratios.sum() == 0.0:
            continue
        for base in (2.0, math.e):
            assert forget_quality_js(ratios, gold, base=base) == pytest.approx(
                1 - jensenshannon(ratios, gold, base=base), rel=1e-9, abs=1e-12
            )


@pytest.mark.parametrize(
    ("ratios", "gold", "match"),
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], "aligned"),
        ([0.0, 0.0], [1.0, 2.0], "sums to 0"),
        ([INF, 1.0], [1.0, 2.0], "finite"),
        ([NAN, 1.0], [1.0, 2.0], "finite"),
        ([-1.0, 2.0], [1.0, 2.0], "finite"),
        ([], [], "empty"),
    ],
)
def test_forget_quality_js_rejects(ratios: list[float], gold: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        forget_quality_js(ratios, gold)


# --- harmonic mean -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1.0, 0.5], 2 / 3), ([0.5, 0.25, 1.0], 3 / 7), ([0.3], 0.3), ([0.3, 0.0, 0.9], 0.0)],
)
def test_harmonic_mean(values: list[float], expected: float) -> None:
    assert harmonic_mean(values) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("values", [[], [0.5, -0.1], [0.5, NAN]])
def test_harmonic_mean_rejects(values: list[float]) -> None:
    with pytest.raises(ValueError):
        harmonic_mean(values)
