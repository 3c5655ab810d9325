"""NPO, negative preference optimisation (Zhang et al., 2024): DPO with only a rejected answer."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, PositiveFloat, settings
from clearbench.methods.base import (
    FORGET,
    RETAIN,
    Batch,
    Reference,
    UnlearningMethod,
    ce,
    frozen,
    register,
)
from clearbench.methods.dpo import log_probs
from clearbench.methods.losses import npo_loss


@register
@settings
class NegativePreference(UnlearningMethod):
    name = "npo"
    batches = (FORGET, RETAIN)
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
        policy, reference_log_prob = log_probs(model, batches[FORGET], frozen(reference, self.name))
        loss = npo_loss(policy, reference_log_prob, self.beta)
        return loss + self.retain_weight * ce(model, batches[RETAIN])
