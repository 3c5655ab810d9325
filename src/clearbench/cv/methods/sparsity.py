"""ℓ1-sparse unlearning (Jia et al., 2023): CE on the retain persons + λ·Σ|w| over every weight."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.cv.losses import l1_norm
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, ce, register
from clearbench.cv.model import FaceNet


@register
@settings
class Sparsity(CVMethod):
    """ℓ1-sparse unlearning (Jia et al., 2023): CE on retain images + λ·Σ|w| over every
    weight."""

    name = "sparsity"
    l1: NonNegativeFloat = 5e-5

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        return ce(model, batch.retain, batch.retain_labels) + self.l1 * l1_norm(
            model.parameters())
