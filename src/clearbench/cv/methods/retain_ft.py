"""Retain FT (docs/cv.md, Methods): fine-tune on the retain persons only, CE(D_r)."""

from __future__ import annotations

import torch

from clearbench.config import settings
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, ce, register
from clearbench.cv.model import FaceNet


@register
@settings
class RetainFT(CVMethod):
    """Fine-tune on the retain persons only."""

    name = "retain_ft"

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        return ce(model, batch.retain, batch.retain_labels)
