"""KL minimisation (TOFU): ascend on forget, stay close to θ₀ on retain."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
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
from clearbench.methods.losses import answer_kl
from clearbench.models.vlm import answer_logits


def kl_to_reference(model: torch.nn.Module, batch: Batch, reference: Reference) -> torch.Tensor:
    """KL(π_θ₀ ‖ π_θ) on the answer positions of ``batch`` (forget or retain)."""
    logits, _ = answer_logits(model, batch)
    return answer_kl(reference.answer_logits(batch), logits)


@register
@settings
class KLMinimisation(UnlearningMethod):
    name = "kl"
    batches = (FORGET, RETAIN)
    needs_reference = True
    # Tuned: α: a heavier retain term keeps more utility.
    tuning = ("retain_weight", (1.0, 4.0))
    retain_weight: NonNegativeFloat = 1.0
    """α in −CE(D_f) + α·KL(π_θ₀ ‖ π_θ) on D_r."""

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        kl = kl_to_reference(model, batches[RETAIN], frozen(reference, self.name))
        return -ce(model, batches[FORGET]) + self.retain_weight * kl
