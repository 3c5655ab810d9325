"""Retain FT: keep fine-tuning on the retain data only, hoping the forget data fade."""

from __future__ import annotations

import torch

from clearbench.config import settings
from clearbench.methods.base import RETAIN, Batch, Reference, UnlearningMethod, ce, register


@register
@settings
class RetainFT(UnlearningMethod):
    name = "retain_ft"
    batches = (RETAIN,)

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        return ce(model, batches[RETAIN])
