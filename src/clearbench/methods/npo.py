"""NPO, negative preference optimisation (Zhang et al., 2024): DPO with only a rejected answer."""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
@dataclass
class NegativePreference(UnlearningMethod):
    name = "npo"
    batches = (FORGET, RETAIN)
    needs_reference = True
    beta: float = 0.1
    retain_weight: float = 1.0

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
