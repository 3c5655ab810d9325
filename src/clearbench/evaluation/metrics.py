"""The CLEAR metrics of spec §5 as pure functions of numbers and strings.

Notation: L(a|x) is the summed NLL of answer ``a``, |a| its token count and
P̃ = exp(−L/|a|) the length-normalised likelihood. Every probability-based metric has a twin
that takes per-token mean NLLs (L/|a|) and works in log space, so that models whose P̃
underflows to 0 (e.g. after gradient ascent) still get a defined score.

Deviations from the authors' code (spec §5): the truth ratio averages the perturbed answers of
*its own row* (the authors' scorer averaged them over the whole split), and the Jensen–Shannon
forget quality is taken between the R vectors with base-2 logarithms (the authors passed
TOFU's 1/R to scipy's default natural-log ``jensenshannon``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from statistics import fmean
from types import SimpleNamespace
from typing import Any

import numpy as np
from nltk.stem import porter
from rouge_score import tokenize as rouge_tokenize
from scipy.stats import ks_2samp

_STEMMER = SimpleNamespace(stem=functools.lru_cache(maxsize=1 << 16)(porter.PorterStemmer().stem))
"""rouge-score's Porter stemmer (``use_stemmer=True``) with its stems cached."""


def _checked(
    values: Iterable[float], name: str, *, high: float = math.inf, finite: bool = False
) -> list[float]:
    """``values`` as floats, each in [0, high] (finite if asked); ValueError otherwise."""
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name} is empty")
    for v in out:
        if not 0.0 <= v <= high or (finite and math.isinf(v)):  # NaN fails the comparison
            kind = "finite and " if finite else ""
            raise ValueError(f"{name} must be {kind}in [0, {high}], got {v}")
    return out


def _exp(x: float) -> float:
    """exp(x), or inf where it overflows."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _nll(p: float) -> float:
    """−log p, with −log 0 = inf."""
    return -math.log(p) if p > 0.0 else math.inf


# --- generation metrics ------------------------------------------------------------------


def _rouge_tokens(text: str) -> list[str]:
    return rouge_tokenize.tokenize(text, _STEMMER)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel over ``a`` (Hyyrö 2004)."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l_recall(generated: str, target: str) -> float:
    """ROUGE-L recall: LCS length over the target's token count.

    Tokenised and stemmed exactly as ``RougeScorer(["rougeL"], use_stemmer=True)``; like it,
    returns 0 when either text has no token.
    """
    target_tokens = _rouge_tokens(target)
    generated_tokens = _rouge_tokens(generated)
    if not target_tokens or not generated_tokens:
        return 0.0
    return _lcs_length(target_tokens, generated_tokens) / len(target_tokens)


# fmt: off
STOP_WORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "nor", "so", "yet", "if", "then", "than", "that", "this",
    "these", "those",
    "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "has", "have",
    "had", "having",
    "will", "would", "shall", "should", "can", "could", "may", "might", "must",
    "of", "in", "on", "at", "to", "for", "from", "by", "with", "about", "as", "into", "onto",
    "over", "under", "between", "through", "during",
    "after", "before", "up", "down", "out", "off",
    "i", "me", "my", "mine", "you", "your", "yours", "he", "him", "his", "she", "her", "hers", "it",
    "its", "we", "us", "our", "ours",
    "they", "them", "their", "theirs", "who", "whom", "whose", "which", "what", "where", "when",
    "why", "how", "there", "here",
    "also", "very", "just", "too", "s", "t", "d", "ll", "re", "ve", "m",
})
# fmt: on
"""Small English stop-word list for key terms. Negations (no, not, never) are kept: they are
facts."""


def _words(text: str) -> list[str]:
    """Lower-cased words and numbers of ``text``; punctuation and underscores split words."""
    return re.findall(r"[^\W_]+", text.lower())


def key_terms(target: str, question: str = "") -> list[str]:
    """The key fact of ``target``: its content words that the question does not already give.

    Falls back to the target's content words when the question gives them all, and to all of
    its words when it has no content word (e.g. the answer "off"). Order of first occurrence,
    without duplicates. ValueError when the target has no word at all.
    """
    words = list(dict.fromkeys(_words(target)))
    if not words:
        raise ValueError(f"target {target!r} has no word to check a fact against")
    content = [w for w in words if w not in STOP_WORDS]
    asked = set(_words(question))
    return [w for w in content if w not in asked] or content or words


def fact_hit(generated: str, target: str, question: str = "") -> bool:
    """Whether every key term of ``target`` (see :func:`key_terms`) is a word of ``generated``.

    Case-insensitive whole-word match, so "Lyon" does not hit "Lyonnais".
    """
    present = set(_words(generated))
    return all(term in present for term in key_terms(target, question))


# --- likelihood metrics ------------------------------------------------------------------


def normalised_likelihood(nll_sum: float, n_tokens: int) -> float:
    """P̃ = exp(−L/|a|) from the summed answer NLL ``L`` and the answer's token count |a|."""
    if n_tokens <= 0:
        raise ValueError(f"n_tokens must be positive, got {n_tokens}")
    (nll,) = _checked([nll_sum], "nll_sum")
    return math.exp(-nll / n_tokens)


def likelihood_from_mean_nll(mean_nll: float) -> float:
    """P̃ = exp(−mean NLL) from the per-token mean NLL L/|a|."""
    (nll,) = _checked([mean_nll], "mean_nll")
    return math.exp(-nll)


def option_probability(p_true: float, p_options: Sequence[float]) -> float:
    """P̃(y) / (P̃(y) + Σ_j P̃(ŷ_j)): the true answer's share among the options."""
    (p,) = _checked([p_true], "p_true", high=1.0)
    total = p + math.fsum(_checked(p_options, "p_options", high=1.0))
    if total == 0.0:
        raise ValueError(
            "every option has likelihood 0; use option_probability_from_mean_nlls instead"
        )
    return p / total


def option_probability_from_mean_nlls(nll_true: float, nll_options: Sequence[float]) -> float:
    """:func:`option_probability` from per-token mean NLLs, as a softmax in log space."""
    (true,) = _checked([nll_true], "nll_true")
    logits = [0.0] + [true - nll for nll in _checked(nll_options, "nll_options")]
    if any(math.isnan(x) for x in logits):
        raise ValueError("option probability undefined: every option has infinite NLL")
    top = max(logits)
    if math.isinf(top):
        return 0.0
    return math.exp(-(top + math.log(math.fsum(math.exp(x - top) for x in logits))))


def truth_ratio_from_mean_nlls(nll_paraphrased: float, nll_perturbed: Sequence[float]) -> float:
    """Per-row truth ratio R from per-token mean NLLs.

    R = exp(NLL(ã) − mean_j NLL(ŷ_j)), the geometric mean of the k perturbed answers' P̃ over
    the paraphrased answer's P̃ (TOFU), averaged over this row's perturbed answers only.
    """
    (paraphrased,) = _checked([nll_paraphrased], "nll_paraphrased")
    log_ratio = paraphrased - fmean(_checked(nll_perturbed, "nll_perturbed"))
    if math.isnan(log_ratio):
        raise ValueError("truth ratio undefined: paraphrased and perturbed NLLs are all infinite")
    return _exp(log_ratio)


def truth_ratio(p_paraphrased: float, p_perturbed: Sequence[float]) -> float:
    """Per-row truth ratio R = (Π_j P̃(ŷ_j))^{1/k} / P̃(ã), computed in log space."""
    (paraphrased,) = _checked([p_paraphrased], "p_paraphrased", high=1.0)
    perturbed = _checked(p_perturbed, "p_perturbed", high=1.0)
    return truth_ratio_from_mean_nlls(_nll(paraphrased), [_nll(p) for p in perturbed])


def truth_ratio_terms(ratios: Sequence[float], *, forget: bool) -> np.ndarray:
    """Per-row terms of the reported truth ratio: min(R, 1/R) on forget sets (0 at R = 0 or
    ∞), max(0, 1 − R) on the others."""
    values = np.asarray(_checked(ratios, "ratios"))
    if forget:
        with np.errstate(divide="ignore"):
            return np.minimum(values, 1.0 / values)
    return knowledge_terms(values)


def knowledge_terms(ratios: Sequence[float]) -> np.ndarray:
    """Per-row max(0, 1 − R): the truth-ratio term of Forget knowledge (spec §5), which falls
    as the model stops preferring the true answer, on forget and other sets alike."""
    return np.maximum(0.0, 1.0 - np.asarray(_checked(ratios, "ratios")))


def truth_ratio_score(ratios: Sequence[float], *, forget: bool) -> float:
    """Reported truth ratio of a set: mean min(R, 1/R) on forget sets, else mean max(0, 1 − R)."""
    return float(np.mean(truth_ratio_terms(ratios, forget=forget)))


# --- aggregates --------------------------------------------------------------------------


def forget_quality_ks(ratios: Sequence[float], gold_ratios: Sequence[float]) -> float:
    """Forget quality (TOFU, CLEAR v1): p-value of the two-sample KS test between R vectors.

    The KS test depends only on ranks, so passing 1/R (TOFU's convention) gives the same value.
    """
    test = ks_2samp(_checked(ratios, "ratios"), _checked(gold_ratios, "gold_ratios"))
    return float(test.pvalue)


def forget_quality_js(
    ratios: Sequence[float], gold_ratios: Sequence[float], *, base: float = 2.0
) -> float:
    """Forget quality of CLEAR v4: 1 − Jensen–Shannon distance between the row-aligned R vectors.

    Each vector is normalised to sum 1. With ``base`` 2 the result lies in [0, 1]; the authors'
    code used scipy's default natural logarithm (``base=math.e``), which bounds it below by
    1 − √ln 2 ≈ 0.17.
    """
    p = np.array(_checked(ratios, "ratios", finite=True))
    q = np.array(_checked(gold_ratios, "gold_ratios", finite=True))
    if p.shape != q.shape:
        raise ValueError(f"R vectors must be aligned per row: {p.size} vs {q.size} rows")
    if p.sum() == 0.0 or q.sum() == 0.0:
        raise ValueError("an R vector sums to 0 and cannot be normalised")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    divergence = max(0.0, float(kl_pm + kl_qm) / 2 / math.log(base))
    return 1.0 - math.sqrt(divergence)


def harmonic_mean(values: Sequence[Any]) -> Any:
    """Harmonic mean of non-negative values; 0 when any value is 0 (one zero sinks the MU).

    The values may also be equally shaped numpy arrays (e.g. bootstrap replicates): the mean
    is then taken element-wise.
    """
    stacked = np.asarray(values, dtype=float)
    if stacked.ndim == 0 or stacked.shape[0] == 0:
        raise ValueError("values is empty")
    if np.any(np.isnan(stacked)) or np.any(stacked < 0):
        raise ValueError(f"values must be non-negative numbers, got {stacked.tolist()}")
    with np.errstate(divide="ignore"):
        result = np.where(np.any(stacked == 0.0, axis=0), 0.0,
                          stacked.shape[0] / np.sum(1.0 / stacked, axis=0))
    return float(result) if result.ndim == 0 else result
