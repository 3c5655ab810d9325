"""RMU (Li et al., 2024, WMDP) at a ResNet stage: forget features → c·u, retain features → θ₀'s.

c follows the VLM track's rule (:mod:`clearbench.methods.rmu`): by default ``steering_scale``
× the median L2 norm of θ₀'s feature vectors (one per position, over channels) at the stage on
the first forget batch.
"""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, settings
from clearbench.cv.losses import feature_mse
from clearbench.cv.methods.base import CVMethod, UnlearnBatch, register
from clearbench.cv.model import FaceNet
from clearbench.methods.rmu import (
    STEERING_SCALE,
    coefficient,
    control_vector,
    steering_coefficient,
)


@register
@settings
class RMU(CVMethod):
    """RMU (Li et al., 2024) at ResNet stage ``stage``: forget features → c·u, retain features
    → θ₀'s."""

    name = "rmu"
    stage: NonNegativeInt | None = None
    """Feature map (0 = stem, 1.. = ResNet stages); None: the last but one stage (3 of
    mini's and ResNet-18's 4), deep enough to hold identity, early enough to leave a head."""
    steering_coeff: PositiveFloat | None = None
    """c; None: calibrated, ``steering_scale`` × θ₀'s median feature-vector norm at the stage."""
    steering_scale: PositiveFloat = STEERING_SCALE
    """Relative c, used when ``steering_coeff`` is None."""
    retain_weight: NonNegativeFloat = 1.0
    """α (the CLEAR authors' value in the VLM track; 100 left forget accuracy at vanilla's)."""
    seed: int = 0
    """Seed of the random direction u."""

    def __post_init__(self) -> None:
        self.calibrated: float | None = None

    def stage_of(self, model: FaceNet) -> int:
        """The steered feature map of ``model``."""
        return model.stages - 2 if self.stage is None else self.stage

    @torch.no_grad()
    def calibrate(self, reference: FaceNet, forget: torch.Tensor) -> dict[str, float]:
        if self.steering_coeff is not None:
            return {}
        features = reference.features(forget, self.stage_of(reference))
        self.calibrated = steering_coefficient(features.movedim(1, -1), None,
                                               self.steering_scale)
        return {"steering_coeff": self.calibrated}

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        stage = self.stage_of(model)
        features = model.features(batch.forget, stage)
        c = coefficient(self.steering_coeff, self.calibrated)
        control = control_vector(features.shape[1], c, self.seed).to(features)
        with torch.no_grad():
            kept = reference.features(batch.retain, stage)
        return feature_mse(features, control) + self.retain_weight * feature_mse(
            model.features(batch.retain, stage), kept)
