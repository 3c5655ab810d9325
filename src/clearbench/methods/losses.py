"""Loss building blocks of the unlearning methods (spec §3): pure functions of tensors.

Conventions: ``logits`` are ``(batch, length, vocab)`` model outputs and ``labels`` the
``(batch, length)`` ids with −100 on every position that carries no loss (prompt, image,
padding), exactly as :meth:`~clearbench.models.vlm.VLM.encode` makes them; position *t*'s logits
predict label *t* + 1. Only answer positions ever count.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def _shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the positions that predict a label, and the labels they predict."""
    return logits[:, :-1].float(), labels[:, 1:]


def answer_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(batch, length − 1)`` True where a (shifted) label is an answer token."""
    return labels[:, 1:] != IGNORE_INDEX


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(batch, length − 1)`` NLL of each label token; 0 on positions without a label."""
    logits, targets = _shifted(logits, labels)
    mask = targets != IGNORE_INDEX
    nll = F.cross_entropy(
        logits.transpose(1, 2), targets.masked_fill(~mask, 0), reduction="none"
    )
    return nll * mask


def sequence_log_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` log π(y|x): the summed log-likelihood of each example's answer tokens."""
    return -token_nll(logits, labels).sum(-1)


def answer_kl(
    reference_logits: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """KL(π_ref ‖ π_θ) of the next-token distributions, mean over answer positions."""
    mask = answer_mask(labels)
    reference = reference_logits[:, :-1].float().log_softmax(-1)
    current = logits[:, :-1].float().log_softmax(-1)
    per_position = (reference.exp() * (reference - current)).sum(-1)
    return (per_position * mask).sum() / mask.sum().clamp(min=1)


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


def l1_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """Σ|w| over every entry of ``parameters`` (a plain sum, no averaging)."""
    sums = [p.abs().sum() for p in parameters]
    if not sums:
        raise ValueError("l1_norm needs at least one tensor")
    return torch.stack(sums).sum()
