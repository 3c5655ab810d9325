"""DPO (Rafailov et al., 2023), θ₀ as reference: prefer a random retain identity to the true one."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, PositiveFloat, settings
from clearbench.cv.losses import dpo_loss, label_log_prob
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, ce, reference_embeddings, register
from clearbench.cv.model import FaceNet


@register
@settings
class DPO(CVMethod):
    """DPO with θ₀ as reference: prefer a random retain identity (``other``) over the true
    identity of each forget image, plus CE on retain images."""

    name = "dpo"
    beta: PositiveFloat = 0.1
    retain_weight: NonNegativeFloat = 1.0

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        logits = model.logits(model(batch.forget))
        reference_logits = reference.logits(reference_embeddings(reference, batch.forget))
        loss = dpo_loss(
            label_log_prob(logits, batch.other), label_log_prob(logits, batch.forget_labels),
            label_log_prob(reference_logits, batch.other),
            label_log_prob(reference_logits, batch.forget_labels), self.beta,
        )
        return loss + self.retain_weight * ce(model, batch.retain, batch.retain_labels)
