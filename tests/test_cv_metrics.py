"""The vision-only track's metrics on inputs with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from clearbench.cv.metrics import (
    best_threshold,
    enrol,
    fit_gaussians,
    gaussian_log_likelihood,
    identification_accuracy,
    identify,
    lira_unlearned,
    membership_scores,
    ulira_accuracy,
    umia_accuracy,
)


def test_enrolment_on_a_toy_embedding_set() -> None:
    # identity 3 enrolled near +x, identity 7 near +y (magnitudes must not matter)
    enrolment = np.array([[1.0, 0.1], [5.0, -0.5], [0.1, 1.0], [-0.2, 3.0]])
    labels = np.array([3, 3, 7, 7])
    identities, means = enrol(enrolment, labels)
    assert identities.tolist() == [3, 7]
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 1.0)
    queries = np.array([[2.0, 0.0], [0.0, 0.3], [1.0, 0.9], [-1.0, 0.2]])
    # nearest by cosine: 3, 7, 3 (closer to +x), 7 (−x is nearer to +y's mean than +x's)
    assert identify(queries, identities, means).tolist() == [3, 7, 3, 7]
    truth = np.array([3, 7, 7, 7])
    assert identification_accuracy(queries, truth, identities, means) == 0.75


def test_membership_scores_are_atanh_of_the_cosine_to_the_other_images() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0], [2.0, 0.0], [4.0, 0.0]])
    labels = np.array([0, 0, 0, 1, 1])
    # image 0: the others' unit mean is ∝ (0, 1) + (√½, √½): cos = √½ / |(√½, 1 + √½)|
    first = np.sqrt(0.5) / np.hypot(np.sqrt(0.5), 1 + np.sqrt(0.5))
    scores = membership_scores(embeddings, labels)
    np.testing.assert_allclose(scores[0], np.arctanh(first))
    # image 2 points exactly along (1, 0) + (0, 1); identity 1's images share one direction
    np.testing.assert_allclose(scores[[2, 3, 4]], np.arctanh(1 - 1e-6))
    with pytest.raises(ValueError, match="identity 1 has one image"):
        membership_scores(embeddings[:4], labels[:4])


def test_gaussian_log_likelihood_matches_scipy() -> None:
    x, mean, var = np.array([0.3, -2.0, 5.0]), np.array([0.0, 1.0, 4.0]), np.array([1.0, 2.5, 0.1])
    np.testing.assert_allclose(gaussian_log_likelihood(x, mean, var),
                               norm.logpdf(x, loc=mean, scale=np.sqrt(var)))


def test_fit_gaussians_per_example_and_pooled() -> None:
    mean, var = fit_gaussians(np.array([[0.0, 10.0], [2.0, 14.0]]))
    np.testing.assert_allclose(mean, [1.0, 12.0])
    np.testing.assert_allclose(var, [2.0, 8.0])  # unbiased, per example
    mean, var = fit_gaussians(np.array([[0.0, 10.0], [2.0, 14.0]]), fixed_variance=True)
    np.testing.assert_allclose(var, [5.0, 5.0])  # (1 + 1 + 4 + 4) / (4 scores − 2 means)
    mean, var = fit_gaussians(np.array([[1.0, 3.0]]))  # one model: pooled variance
    np.testing.assert_allclose(var, [1.0, 1.0])


def test_lira_decides_by_the_likelihood_ratio() -> None:
    unlearned = np.array([[1.0, 5.0], [3.0, 7.0]])  # means 2, 6
    retrained = np.array([[-1.0, 0.0], [-3.0, 2.0]])  # means −2, 1
    assert lira_unlearned(np.array([2.5, 0.5]), unlearned, retrained).tolist() == [True, False]


def test_ulira_identical_distributions_give_one_half() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(size=(8, 300))
    assert ulira_accuracy(same, same) == 0.5  # ties: every target is called "retrained"
    other = rng.normal(size=(8, 300))
    assert ulira_accuracy(same, other) == pytest.approx(0.5, abs=0.06)


def test_ulira_well_separated_distributions_give_one() -> None:
    rng = np.random.default_rng(1)
    unlearned = rng.normal(8.0, 1.0, size=(6, 200))
    retrained = rng.normal(0.0, 1.0, size=(6, 200))
    assert ulira_accuracy(unlearned, retrained) > 0.99
    # per-example means: a shift that is small next to the spread of examples is found
    offsets = rng.normal(0.0, 10.0, size=200)
    shifted = ulira_accuracy(offsets + rng.normal(1.5, 0.3, size=(6, 200)),
                             offsets + rng.normal(0.0, 0.3, size=(6, 200)))
    assert shifted > 0.95
    assert ulira_accuracy(unlearned, retrained, fixed_variance=True) > 0.99
    assert ulira_accuracy(retrained, retrained, fixed_variance=True) == 0.5
    with pytest.raises(ValueError, match="≥ 2"):
        ulira_accuracy(unlearned[:1], retrained[:1])


def test_umia_known_answers() -> None:
    rng = np.random.default_rng(2)
    assert umia_accuracy(rng.normal(size=400), rng.normal(size=400)) == pytest.approx(0.5,
                                                                                      abs=0.06)
    assert umia_accuracy(rng.normal(4, 0.5, 300), rng.normal(0, 0.5, 500)) > 0.99
    # members *below* non-members are found too
    assert umia_accuracy(rng.normal(-4, 0.5, 300), rng.normal(0, 0.5, 300)) > 0.99
    with pytest.raises(ValueError, match="≥ 5"):
        umia_accuracy(np.zeros(3), np.zeros(10))


def test_best_threshold() -> None:
    threshold, above = best_threshold(np.array([0.0, 1.0, 2.0, 3.0]),
                                      np.array([False, False, True, True]))
    assert (threshold, above) == (1.5, True)
    threshold, above = best_threshold(np.array([0.0, 1.0, 2.0, 3.0]),
                                      np.array([True, True, False, False]))
    assert (threshold, above) == (1.5, False)
