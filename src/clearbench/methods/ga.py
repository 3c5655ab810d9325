"""GA, gradient ascent (Jang et al., 2023): maximise the loss on the forget data."""

from __future__ import annotations

import torch

from clearbench.config import settings
from clearbench.methods.base import FORGET, Batch, Reference, UnlearningMethod, ce, register


@register
@settings
class GradientAscent(UnlearningMethod):
    name = "ga"
    batches = (FORGET,)

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        return -ce(model, batches[FORGET])
