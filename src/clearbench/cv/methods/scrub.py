"""SCRUB (Kurmanji et al., 2023): alternately maximise KL(π_θ₀ ‖ π_θ) on D_f, minimise it on D_r."""

from __future__ import annotations

import torch

from clearbench.config import settings
from clearbench.cv.losses import kl_to_reference
from clearbench.cv.methods.base import (
    Alternating,
    UnlearnBatch,
    ce,
    reference_embeddings,
    register,
)
from clearbench.cv.model import FaceNet


@register
@settings
class Scrub(Alternating):
    """SCRUB (Kurmanji et al., 2023): max-steps maximise KL(π_θ₀ ‖ π_θ) on forget images,
    min-steps minimise it on retain images plus γ·CE."""

    name = "scrub"

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        images = batch.forget if self.is_max_step(step) else batch.retain
        kl = kl_to_reference(reference.logits(reference_embeddings(reference, images)),
                             model.logits(model(images)))
        if self.is_max_step(step):
            return -kl
        return kl + self.gamma * ce(model, batch.retain, batch.retain_labels)
