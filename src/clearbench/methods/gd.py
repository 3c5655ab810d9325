"""GD, gradient difference (Liu et al., 2022): ascend on forget, descend on retain."""

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
    register,
)


@register
@settings
class GradientDifference(UnlearningMethod):
    name = "gd"
    batches = (FORGET, RETAIN)
    # Tuned: α: a heavier retain term keeps more utility.
    tuning = ("retain_weight", (1.0, 4.0))
    retain_weight: NonNegativeFloat = 1.0
    """α in −CE(D_f) + α·CE(D_r)."""

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        return -ce(model, batches[FORGET]) + self.retain_weight * ce(model, batches[RETAIN])
