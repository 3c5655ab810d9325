"""RMU (Li et al., 2024, WMDP) at a ResNet stage: forget features → c·u, retain features → θ₀'s."""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, settings
from clearbench.cv.losses import feature_mse
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, register
from clearbench.cv.model import FaceNet


@register
@settings
class RMU(CVMethod):
    """RMU (Li et al., 2024) at ResNet stage ``stage``: forget features → c·u, retain features
    → θ₀'s."""

    name = "rmu"
    stage: NonNegativeInt | None = None
    """Feature map (0 = stem, 1.. = ResNet stages); None: the last but one stage (3 of
    mini's and ResNet-18's 4), deep enough to hold identity, early enough to leave a head."""
    steering_coeff: PositiveFloat = 6.5
    """c (WMDP's value)."""
    retain_weight: NonNegativeFloat = 100.0
    """α. WMDP's 1200 balances a transformer's hidden states; a CNN's post-ReLU features are
    of another scale (our choice)."""
    seed: int = 0
    """Seed of the random direction u."""

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        stage = model.stages - 2 if self.stage is None else self.stage
        features = model.features(batch.forget, stage)
        generator = torch.Generator().manual_seed(self.seed)
        direction = torch.rand(features.shape[1], generator=generator)
        control = self.steering_coeff * direction / direction.norm()
        with torch.no_grad():
            kept = reference.features(batch.retain, stage)
        return feature_mse(features, control) + self.retain_weight * feature_mse(
            model.features(batch.retain, stage), kept)
