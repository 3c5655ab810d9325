"""LLMU (Yao et al., 2023): ascend on D_f, relabel it with random retain identities, KL on D_r."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.cv.losses import am_softmax_loss, kl_to_reference
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, reference_embeddings, register
from clearbench.cv.model import FaceNet


@register
@settings
class LLMU(CVMethod):
    """LLMU (Yao et al., 2023): −ε₁·CE(forget) + ε₂·CE(forget → random retain identity)
    + ε₃·KL(π_θ₀ ‖ π_θ) on retain images."""

    name = "llmu"
    forget_weight: NonNegativeFloat = 0.5
    random_weight: NonNegativeFloat = 1.0
    retain_weight: NonNegativeFloat = 1.0

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        config = model.config
        cosines = model.cosines(model(batch.forget))
        ascent = am_softmax_loss(cosines, batch.forget_labels, config.scale, config.margin)
        relabelled = am_softmax_loss(cosines, batch.other, config.scale, config.margin)
        kl = kl_to_reference(reference.logits(reference_embeddings(reference, batch.retain)),
                             model.logits(model(batch.retain)))
        return (-self.forget_weight * ascent + self.random_weight * relabelled
                + self.retain_weight * kl)
