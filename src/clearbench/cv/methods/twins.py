"""Twins (docs/cv.md, Methods): pull a forget image's embedding to θ₀'s of its flipped copy."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.cv.losses import twins_loss
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, ce, reference_embeddings, register
from clearbench.cv.model import FaceNet


@register
@settings
class Twins(CVMethod):
    """Regress a forget image's embedding to θ₀'s embedding of its horizontally flipped copy
    (an unseen "twin"), plus CE on retain images."""

    name = "twins"
    retain_weight: NonNegativeFloat = 1.0

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        twin = reference_embeddings(reference, batch.forget.flip(-1))
        loss = twins_loss(model(batch.forget), twin)
        return loss + self.retain_weight * ce(model, batch.retain, batch.retain_labels)
