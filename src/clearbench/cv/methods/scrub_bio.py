"""SCRUB_bio (docs/cv.md, Methods): SCRUB's schedule on embedding cosines to θ₀'s."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, settings
from clearbench.cv.losses import am_softmax_loss, cosine_target_loss
from clearbench.cv.methods.base import Alternating, UnlearnBatch, reference_embeddings, register
from clearbench.cv.model import FaceNet


@register
@settings
class ScrubBio(Alternating):
    """SCRUB for biometrics on :class:`Alternating`'s schedule: max-steps push
    cos(e(x_f), e₀(x_f)) to −1 (loss 1 + cos), min-steps push cos(e(x_r), e₀(x_r)) to +1
    (loss 1 − cos, weight 1) plus γ·CE; no temperature."""

    name = "scrub_bio"
    max_epochs: NonNegativeFloat = 20.0
    """Max-steps in all of the track's 20 epochs (alternating throughout): with SCRUB's 6, the
    14 epochs of min-steps pulled the embeddings back to θ₀'s and it forgot nothing on
    CLEAR-mini (forget accuracy 0.981 = vanilla's, U-LiRA 0.80; alternating throughout: 0.881,
    0.656)."""

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        if self.is_max_step(step):
            return cosine_target_loss(model(batch.forget),
                                      reference_embeddings(reference, batch.forget), -1.0)
        retain = model(batch.retain)
        loss = cosine_target_loss(retain, reference_embeddings(reference, batch.retain), 1.0)
        config = model.config
        return loss + self.gamma * am_softmax_loss(model.cosines(retain), batch.retain_labels,
                                                   config.scale, config.margin)
