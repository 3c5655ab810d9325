"""Loss building blocks of the unlearning methods (spec §3): pure functions of tensors.

Conventions: only answer positions ever count, and they come flattened in row-major order as
:func:`~clearbench.models.vlm.answer_logits` returns them: ``logits`` are the ``(n, vocab)``
next-token logits at the n positions followed by an answer token, ``targets`` the ``(n,)``
answer tokens they predict, and ``rows`` the batch row of each (:func:`answer_rows` of the
batch's labels, which carry −100 on prompt, image and padding positions).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def answer_rows(labels: torch.Tensor) -> torch.Tensor:
    """``(n,)`` the batch row of each answer token of ``(batch, length)`` labels, row-major."""
    return (labels[:, 1:] != IGNORE_INDEX).nonzero()[:, 0]


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(n,)`` NLL of each answer token."""
    return F.cross_entropy(logits.float(), targets, reduction="none")


def mean_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CE: mean NLL over every answer token of the batch (0 if it has none)."""
    return token_nll(logits, targets).sum() / max(targets.numel(), 1)


def sequence_log_prob(
    logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``(batch_size,)`` log π(y|x): the summed log-likelihood of each example's answer."""
    log_likelihood = -token_nll(logits, targets)
    return log_likelihood.new_zeros(batch_size).index_add(0, rows, log_likelihood)


def answer_kl(reference_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(π_ref ‖ π_θ) of the next-token distributions, mean over answer positions (0 if
    none)."""
    reference = reference_logits.float().log_softmax(-1)
    current = logits.float().log_softmax(-1)
    return (reference.exp() * (reference - current)).sum() / max(len(logits), 1)


def dpo_loss(
    log_prob_preferred: torch.Tensor,
    log_prob_rejected: torch.Tensor,
    reference_preferred: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """−(2/β)·log σ(β·[(log π(y_w) − log π₀(y_w)) − (log π(y_l) − log π₀(y_l))]), batch mean."""
    margin = (log_prob_preferred - reference_preferred) - (log_prob_rejected - reference_rejected)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def npo_loss(log_prob: torch.Tensor, reference_log_prob: torch.Tensor, beta: float) -> torch.Tensor:
    """(2/β)·log(1 + (π(y|x)/π₀(y|x))^β) on sequence likelihoods, batch mean."""
    return (2.0 / beta) * F.softplus(beta * (log_prob - reference_log_prob)).mean()


def masked_mse(hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hidden dimension and the masked positions (RMU's loss,
    ‖h − target‖² / hidden size; ``target`` broadcasts, e.g. a control vector)."""
    squared = (hidden.float() - target.float()).pow(2).mean(-1)
    return (squared * mask).sum() / mask.sum().clamp(min=1)


def median_token_norm(hidden: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Median L2 norm of the vectors along the last dimension of ``hidden`` (positions where
    ``mask`` is 1 only, if given). The median, not the mean: a few tokens (image tokens, a
    model's "massive activations") can be 10-100× the others and would dominate a mean."""
    norms = hidden.float().norm(dim=-1)
    if mask is not None:
        norms = norms[mask.bool()]
    return norms.flatten().quantile(0.5).item()


def l1_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """Σ|w| over every entry of ``parameters`` (a plain sum, no averaging)."""
    sums = [p.abs().sum() for p in parameters]
    if not sums:
        raise ValueError("l1_norm needs at least one tensor")
    return torch.stack(sums).sum()
