"""SKU, selective knowledge negation (Liu et al., 2024), both stages.

Stage 1 trains a "harmful" copy that knows the forget data even better (guided distortion),
links forget prompts to other forget persons' answers (random disassociation) and moves away
from θ₀ on retain data (preservation divergence). Stage 2 negates that task vector:
θ = θ₀ − s·(θ_harm − θ₀).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from clearbench.config import NonNegativeFloat, PositiveFloat, settings
from clearbench.methods.base import (
    FORGET,
    OTHER_ANSWER,
    RETAIN,
    Batch,
    Reference,
    UnlearningMethod,
    ce,
    frozen,
    register,
)
from clearbench.methods.kl import kl_to_reference


@register
@settings
class SKU(UnlearningMethod):
    name = "sku"
    batches = (FORGET, OTHER_ANSWER, RETAIN)
    needs_reference = True
    negates_task_vector = True
    # Tuned: s: how far the task vector is negated.
    tuning = ("negation_scale", (1.0, 2.0))
    # Weights 2.5 / 1 / 0.5: as the CLEAR authors ran SKU (spec §3).
    distortion_weight: NonNegativeFloat = 2.5
    """Weight of guided distortion, CE on D_f."""
    random_weight: NonNegativeFloat = 1.0
    """Weight of random disassociation, CE(x_f → another forget person's answer), as SKU's
    code pairs harmful prompts with other harmful answers."""
    divergence_weight: NonNegativeFloat = 0.5
    """Weight of preservation divergence, −KL(π_θ₀ ‖ π_θ) on D_r."""
    negation_scale: PositiveFloat = 1.0
    """s in θ₀ − s·(θ_harm − θ₀)."""

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        kl = kl_to_reference(model, batches[RETAIN], frozen(reference, self.name))
        return (
            self.distortion_weight * ce(model, batches[FORGET])
            + self.random_weight * ce(model, batches[OTHER_ANSWER])
            - self.divergence_weight * kl
        )

    def finish(self, negate: Callable[[float], None]) -> None:
        negate(self.negation_scale)
