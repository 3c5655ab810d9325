"""SCRUB (Kurmanji et al., 2023): max-steps that push the student away from the teacher θ₀ on
forget data, interleaved with min-steps that keep it close (and accurate) on retain data, during
the first ``max_epochs`` epochs (the reference code's ``msteps``); min-steps alone afterwards,
which restore utility.

Max-step loss: −KL(π_θ₀ ‖ π_θ) on D_f. Min-step loss: KL(π_θ₀ ‖ π_θ) + γ·CE on D_r. The KL
weight is 1 (spec §3) and the temperature 1 (the reference's kd_T = 4 and KL weight 0.001 were
set for image classifiers' logits).
"""

from __future__ import annotations

import math

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


def is_max_step(step: int, steps_per_epoch: float, max_epochs: float, max_steps: int,
                min_steps: int) -> bool:
    """SCRUB's phases (both tracks): whether optimiser step ``step`` (from 0) is a max-step —
    in the first ``max_epochs`` epochs, the first ``max_steps`` of each cycle of ``max_steps +
    min_steps`` steps; never afterwards."""
    if step // steps_per_epoch >= max_epochs:
        return False
    return step % (max_steps + min_steps) < max_steps


@register
@settings
class Scrub(UnlearningMethod):
    name = "scrub"
    batches = (FORGET, RETAIN)
    needs_reference = True
    # Tuned: msteps: how long the max-steps (forgetting) last.
    tuning = ("max_epochs", (2.0, 4.0))
    max_epochs: NonNegativeFloat = 2.0
    """Epochs with max-steps (the reference's ``msteps``): 2 of the recipes' 5, as the
    reference's large-scale runs (msteps 2 of 3 epochs) leave the last epochs to min-steps."""
    max_steps: PositiveInt = 1
    """Max-steps at the start of each cycle of ``max_steps + min_steps`` optimiser steps."""
    min_steps: NonNegativeInt = 1
    gamma: NonNegativeFloat = 0.99
    """γ in the min-step loss KL(π_θ₀ ‖ π_θ) + γ·CE on D_r (the SCRUB paper's value)."""
    steps_per_epoch = math.inf
    """Set by :meth:`prepare`; without it every step lies in the first epoch."""

    def prepare(self, steps_per_epoch: float) -> None:
        self.steps_per_epoch = steps_per_epoch

    def is_max_step(self, step: int) -> bool:
        return is_max_step(step, self.steps_per_epoch, self.max_epochs, self.max_steps,
                           self.min_steps)

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
