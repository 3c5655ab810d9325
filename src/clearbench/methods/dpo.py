"""DPO (Rafailov et al., 2023) for unlearning: prefer a refusal over the true forget answer.

Unlike the authors' code, this is DPO: it compares policy and reference log-likelihoods of
both answers (spec §3).
"""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, PositiveFloat, settings
from clearbench.methods.base import (
    FORGET,
    REFUSAL,
    RETAIN,
    Batch,
    Reference,
    UnlearningMethod,
    ce,
    frozen,
    register,
)
from clearbench.methods.losses import answer_rows, dpo_loss, sequence_log_prob
from clearbench.models.vlm import answer_logits


def log_probs(
    model: torch.nn.Module, batch: Batch, reference: Reference
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log π_θ(y|x), log π_θ₀(y|x))`` per example of ``batch``."""
    logits, targets = answer_logits(model, batch)
    rows, size = answer_rows(batch["labels"]), len(batch["labels"])
    return (
        sequence_log_prob(logits, targets, rows, size),
        sequence_log_prob(reference.answer_logits(batch), targets, rows, size),
    )


@register
@settings
class DirectPreference(UnlearningMethod):
    name = "dpo"
    batches = (FORGET, REFUSAL, RETAIN)
    needs_reference = True
    # Tuned: β: how far from θ₀ the preference may move.
    tuning = ("beta", (0.1, 0.5))
    beta: PositiveFloat = 0.1
    retain_weight: NonNegativeFloat = 1.0

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        reference = frozen(reference, self.name)
        preferred, reference_preferred = log_probs(model, batches[REFUSAL], reference)
        rejected, reference_rejected = log_probs(model, batches[FORGET], reference)
        loss = dpo_loss(preferred, rejected, reference_preferred, reference_rejected, self.beta)
        return loss + self.retain_weight * ce(model, batches[RETAIN])
