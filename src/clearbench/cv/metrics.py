"""Metrics of the vision-only track, as pure functions of embeddings and scores (numpy).

- **Identification accuracy**: enrol each identity with the mean of its enrolment embeddings;
  a query is identified as the enrolled identity of highest cosine similarity.
- **Membership score** of an image: s = atanh(cos(e(x), mean embedding of the other images of
  its identity)), on the logit-like scale LiRA fits Gaussians on (atanh(c) is
  ½·logit((1 + c)/2)). Training pulls a person's training images together far more than
  generalisation does; the similarity to the (never trained) enrolment images was tried first
  and separated vanilla from gold much less (U-LiRA 0.64 vs 0.98 on mini, 3 shadows).
- **U-LiRA** (Hayes et al., 2024): per example, Gaussians fitted to its scores under shadow
  models that unlearned it and under shadow models retrained without it; a target model is
  called "unlearned" when the likelihood ratio favours the first. Accuracy over a balanced set
  of unlearned and retrained targets; 0.5 = indistinguishable (ideal).
- **U-MIA**: a population attack, a threshold on the score separating forget images from
  images of never-seen persons, fitted and tested by k-fold cross-validation; 0.5 ideal.
"""

from __future__ import annotations

import numpy as np

COSINE_CLIP = 1 - 1e-6
VARIANCE_FLOOR = 1e-6


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def enrol(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The enrolled identities (sorted) and their unit-norm mean embeddings."""
    identities = np.unique(labels)
    means = np.stack([_normalise(embeddings[labels == i]).mean(0) for i in identities])
    return identities, _normalise(means)


def identify(queries: np.ndarray, identities: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The enrolled identity of highest cosine similarity, per query."""
    return identities[np.argmax(_normalise(queries) @ means.T, axis=1)]


def identification_accuracy(queries: np.ndarray, query_labels: np.ndarray,
                            identities: np.ndarray, means: np.ndarray) -> float:
    """Fraction of ``queries`` identified as their own identity."""
    if len(queries) == 0:
        raise ValueError("identification accuracy of no queries")
    return float(np.mean(identify(queries, identities, means) == query_labels))


def membership_scores(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """atanh(cos(e(x), mean of the unit embeddings of the *other* images of x's identity))
    per image: how tightly a network pulls an identity's images together, which training on
    them does far more than generalisation does."""
    units = _normalise(embeddings)
    scores = np.empty(len(units))
    for identity in np.unique(labels):
        rows = np.flatnonzero(labels == identity)
        if len(rows) < 2:
            raise ValueError(f"identity {identity} has one image; a membership score needs two")
        others = units[rows].sum(0) - units[rows]
        scores[rows] = np.sum(units[rows] * _normalise(others), axis=1)
    return np.arctanh(np.clip(scores, -COSINE_CLIP, COSINE_CLIP))


def gaussian_log_likelihood(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log N(x; mean, var), elementwise."""
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def fit_gaussians(samples: np.ndarray, fixed_variance: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-example mean and variance of ``(models, examples)`` scores. ``fixed_variance``
    (LiRA's variant for few shadow models), or a single model: one variance pooled over every
    example (the spread around each example's own mean)."""
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ValueError(f"expected (models, examples) scores, got shape {samples.shape}")
    mean = samples.mean(0)
    models = samples.shape[0]
    if models == 1:
        var = np.full_like(mean, float(samples.var()))
    elif fixed_variance:
        var = np.full_like(mean, float(np.sum((samples - mean) ** 2)) / (samples.size - mean.size))
    else:
        var = samples.var(0, ddof=1)
    return mean, np.maximum(var, VARIANCE_FLOOR)


def lira_unlearned(scores: np.ndarray, unlearned: np.ndarray, retrained: np.ndarray,
                   fixed_variance: bool = False) -> np.ndarray:
    """True where the likelihood ratio calls a target's per-example ``scores`` unlearned:
    log N(s; μ_u, σ²_u) > log N(s; μ_r, σ²_r), Gaussians from the shadow scores."""
    u_mean, u_var = fit_gaussians(unlearned, fixed_variance)
    r_mean, r_var = fit_gaussians(retrained, fixed_variance)
    return (gaussian_log_likelihood(scores, u_mean, u_var)
            > gaussian_log_likelihood(scores, r_mean, r_var))


def ulira_accuracy(unlearned: np.ndarray, retrained: np.ndarray,
                   fixed_variance: bool = False) -> float:
    """U-LiRA accuracy over ``(models, examples)`` scores of unlearned and of retrained
    models (pairs, the same examples): each model in turn is the target, the others are its
    shadows (leave one out). Needs at least 2 models of each kind."""
    if unlearned.shape != retrained.shape or unlearned.shape[0] < 2:
        raise ValueError(f"U-LiRA needs ≥ 2 unlearned and retrained models with scores of the "
                         f"same examples; got shapes {unlearned.shape} and {retrained.shape}")
    correct = []
    for target in range(unlearned.shape[0]):
        others = np.arange(unlearned.shape[0]) != target
        u, r = unlearned[others], retrained[others]
        correct.append(lira_unlearned(unlearned[target], u, r, fixed_variance))
        correct.append(~lira_unlearned(retrained[target], u, r, fixed_variance))
    return float(np.mean(np.concatenate(correct)))


def umia_accuracy(members: np.ndarray, non_members: np.ndarray, folds: int = 5,
                  seed: int = 0) -> float:
    """Cross-validated accuracy of the best threshold (either direction) on the scores of
    ``members`` (forget images) vs ``non_members`` (never-seen persons), on a balanced
    sample (the larger group is subsampled)."""
    n = min(len(members), len(non_members))
    if n < folds:
        raise ValueError(f"U-MIA needs ≥ {folds} scores per group, got {n}")
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.permutation(members)[:n], rng.permutation(non_members)[:n]])
    labels = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    fold = np.concatenate([rng.permutation(n) % folds, rng.permutation(n) % folds])
    correct = 0
    for k in range(folds):
        train, test = fold != k, fold == k
        threshold, above = best_threshold(scores[train], labels[train])
        correct += int(np.sum(((scores[test] > threshold) == above) == labels[test]))
    return correct / (2 * n)


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, bool]:
    """The threshold t and direction (members above t, or below) of highest accuracy."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate([[order[0] - 1.0], (order[:-1] + order[1:]) / 2, [order[-1]]])
    above = (scores[None, :] > candidates[:, None])
    accuracy_above = np.mean(above == labels[None, :], axis=1)
    best = int(np.argmax(np.maximum(accuracy_above, 1 - accuracy_above)))
    return float(candidates[best]), bool(accuracy_above[best] >= 0.5)
