"""SCRUB (Kurmanji et al., 2023): alternate max-steps that push the student away from the
teacher θ₀ on forget data with min-steps that keep it close (and accurate) on retain data."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, NonNegativeInt, PositiveInt, settings
from clearbench.methods.base import (
    FORGET,
    RETAIN,
    Batch,
    Reference,
    UnlearningMethod,
    frozen,
    register,
)
from clearbench.methods.kl import kl_to_reference
from clearbench.methods.losses import answer_kl, mean_nll
from clearbench.models.vlm import answer_logits


@register
@settings
class Scrub(UnlearningMethod):
    name = "scrub"
    batches = (FORGET, RETAIN)
    needs_reference = True
    max_steps: PositiveInt = 1
    """Max-steps at the start of each cycle of ``max_steps + min_steps`` optimiser steps."""
    min_steps: NonNegativeInt = 1
    gamma: NonNegativeFloat = 0.99
    """γ in the min-step loss KL(π_θ₀ ‖ π_θ) + γ·CE on D_r (the SCRUB paper's value)."""

    def is_max_step(self, step: int) -> bool:
        return step % (self.max_steps + self.min_steps) < self.max_steps

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        reference = frozen(reference, self.name)
        if self.is_max_step(step):
            return -kl_to_reference(model, batches[FORGET], reference)
        retain = batches[RETAIN]
        logits, targets = answer_logits(model, retain)  # one forward for both terms
        kl = answer_kl(reference.answer_logits(retain), logits)
        return kl + self.gamma * mean_nll(logits, targets)
