"""NegGrad (docs/cv.md, Methods): gradient ascent on the forget persons, −CE(D_f) (+ α·CE(D_r))."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, ce, register
from clearbench.cv.model import FaceNet


@register
@settings
class NegGrad(CVMethod):
    """Gradient ascent on the forget persons (NegGrad+ with ``retain_weight`` > 0)."""

    name = "neggrad"
    retain_weight: NonNegativeFloat = 0.0

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        loss = -ce(model, batch.forget, batch.forget_labels)
        if self.retain_weight:
            loss = loss + self.retain_weight * ce(model, batch.retain, batch.retain_labels)
        return loss
