"""SCRUB (Kurmanji et al., 2023): max-steps maximise KL(π_θ₀ ‖ π_θ) on D_f, interleaved with
min-steps that minimise it on D_r, in the first ``max_epochs`` epochs; min-steps alone after."""

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
    """SCRUB (Kurmanji et al., 2023) on :class:`Alternating`'s schedule (max-steps only in the
    first ``max_epochs`` epochs). Max-step loss: −KL(π_θ₀ ‖ π_θ) on forget images; min-step
    loss: KL(π_θ₀ ‖ π_θ) + γ·CE on retain images. π is the softmax of the identity logits
    s·cos (the AM-Softmax scale, no margin) at temperature 1, KL weight 1 (the VLM track's
    choice; the reference's kd_T = 2–4 and KL weights 0.001–0.5 were set for plain
    classifier logits)."""

    name = "scrub"

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        maximise = self.is_max_step(step)
        images = batch.forget if maximise else batch.retain
        kl = kl_to_reference(reference.logits(reference_embeddings(reference, images)),
                             model.logits(model(images)))
        if maximise:
            return -kl
        return kl + self.gamma * ce(model, batch.retain, batch.retain_labels)
