"""LLMU (Yao et al., 2023): ascend on forget answers, learn random answers to forget prompts,
stay close to θ₀ on retain data."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.methods.base import (
    FORGET,
    RANDOM_ANSWER,
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
class LLMU(UnlearningMethod):
    name = "llmu"
    batches = (FORGET, RANDOM_ANSWER, RETAIN)
    needs_reference = True
    # Tuned: ε₁: the weight of gradient ascent on D_f.
    tuning = ("forget_weight", (0.5, 2.0))
    forget_weight: NonNegativeFloat = 0.5
    """ε₁ (the LLMU paper's value)."""
    random_weight: NonNegativeFloat = 1.0
    """ε₂."""
    retain_weight: NonNegativeFloat = 1.0
    """ε₃."""

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        kl = kl_to_reference(model, batches[RETAIN], frozen(reference, self.name))
        return (
            -self.forget_weight * ce(model, batches[FORGET])
            + self.random_weight * ce(model, batches[RANDOM_ANSWER])
            + self.retain_weight * kl
        )
