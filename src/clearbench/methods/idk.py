"""IDK (TOFU): teach the model to answer forget prompts with a refusal."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.methods.base import (
    REFUSAL,
    RETAIN,
    Batch,
    Reference,
    UnlearningMethod,
    ce,
    register,
)


@register
@settings
class IDontKnow(UnlearningMethod):
    name = "idk"
    batches = (REFUSAL, RETAIN)
    # Tuned: α: a lighter retain term lets the refusals take over.
    tuning = ("retain_weight", (0.25, 1.0))
    retain_weight: NonNegativeFloat = 1.0
    """α in CE(x_f → refusal) + α·CE(D_r)."""

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        return ce(model, batches[REFUSAL]) + self.retain_weight * ce(model, batches[RETAIN])
