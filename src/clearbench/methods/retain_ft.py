"""Retain FT: keep fine-tuning on the retain data only, hoping the forget data fade."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from clearbench.methods.base import RETAIN, Batch, Reference, UnlearningMethod, ce, register


@register
@dataclass
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
