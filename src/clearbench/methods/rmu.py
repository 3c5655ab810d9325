"""RMU, representation misdirection (Li et al., 2024, WMDP): at one decoder layer, steer the
forget data's hidden states towards a fixed random direction and keep the retain data's
hidden states where θ₀ had them.

The steering coefficient c must be large against the steered layer's hidden states, whose norm
depends on the model; by default it is scaled to them (spec §3): c = ``steering_scale`` × the
median per-token L2 norm of θ₀'s hidden states at the layer on the first forget batch
(:func:`steering_coefficient`; the median, since image tokens are far larger than text tokens:
on the mini model the mean is 2 774, the median 240). The default scale is the CLEAR authors'
c = 300 on LLaVA-1.5-7B relative to that model's layer-7 token norm, *assumed* ≈ 25 (not
measured here: Llama-2-7B's ordinary tokens are ≈ 20 at early layers), so 300 / 25 = 12.
"""

from __future__ import annotations

import torch

from clearbench.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, settings
from clearbench.methods.base import (
    FORGET,
    RETAIN,
    Batch,
    Reference,
    UnlearningMethod,
    frozen,
    register,
)
from clearbench.methods.losses import masked_mse, median_token_norm
from clearbench.models.layers import decoder_layers, layer_output
from clearbench.models.vlm import model_inputs

STEERING_SCALE = 12.0
"""c relative to the steered layer's median token norm (see the module docstring)."""
WMDP_LAYER_FRACTION = 7 / 32
"""WMDP steered layer 7 of Zephyr-7B's 32; other depths get the same relative layer."""


def default_layer(model: torch.nn.Module) -> int:
    """The relative depth of RMU's paper, found on any model by :func:`decoder_layers`."""
    count = len(decoder_layers(model))
    return min(count - 1, round(WMDP_LAYER_FRACTION * count))


def control_vector(hidden_size: int, scale: float, seed: int) -> torch.Tensor:
    """c·u: a fixed random unit vector (uniform entries, normalised, as in RMU) times c."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.rand(hidden_size, generator=generator)
    return scale * direction / direction.norm()


def steering_coefficient(
    hidden: torch.Tensor, mask: torch.Tensor | None, scale: float = STEERING_SCALE
) -> float:
    """c = ``scale`` × the median per-token L2 norm of ``hidden`` (``mask``: the real tokens)."""
    return scale * median_token_norm(hidden, mask)


def coefficient(explicit: float | None, calibrated: float | None) -> float:
    """c: the explicit ``steering_coeff``, else the calibrated value."""
    if explicit is not None:
        return explicit
    if calibrated is None:
        raise RuntimeError("rmu: steering_coeff is None and calibrate() was not called")
    return calibrated


@register
@settings
class RMU(UnlearningMethod):
    name = "rmu"
    batches = (FORGET, RETAIN)
    needs_reference = True
    # Tuned: c (relative): how far the forget activations are pushed.
    tuning = ("steering_scale", (12.0, 24.0))
    layer: NonNegativeInt | None = None
    """Decoder layer ℓ (0-based); None: :func:`default_layer`."""
    steering_coeff: PositiveFloat | None = None
    """c; None: calibrated, ``steering_scale`` × θ₀'s median token norm at the layer."""
    steering_scale: PositiveFloat = STEERING_SCALE
    """Relative c, used when ``steering_coeff`` is None."""
    retain_weight: NonNegativeFloat = 1.0
    """α (the CLEAR authors'; WMDP's 1200 pins a small model's layer: nothing moves)."""
    seed: int = 0
    """Seed of the random direction u."""

    def __post_init__(self) -> None:
        self.calibrated: float | None = None

    def calibrate(
        self, model: torch.nn.Module, batches: dict[str, Batch], reference: Reference | None
    ) -> dict[str, float]:
        if self.steering_coeff is not None:
            return {}
        forget = batches[FORGET]
        hidden = frozen(reference, self.name).hidden(forget, self.layer_of(model))
        self.calibrated = steering_coefficient(hidden, forget["attention_mask"],
                                               self.steering_scale)
        return {"steering_coeff": self.calibrated}

    def layer_of(self, model: torch.nn.Module) -> int:
        """The steered layer ℓ of ``model``."""
        return default_layer(model) if self.layer is None else self.layer

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        reference = frozen(reference, self.name)
        layer = self.layer_of(model)
        forget, retain = batches[FORGET], batches[RETAIN]
        hidden = layer_output(model, model_inputs(forget), layer)
        c = coefficient(self.steering_coeff, self.calibrated)
        control = control_vector(hidden.shape[-1], c, self.seed).to(hidden)
        forget_loss = masked_mse(hidden, control, forget["attention_mask"])
        retain_hidden = layer_output(model, model_inputs(retain), layer)
        retain_loss = masked_mse(
            retain_hidden, reference.hidden(retain, layer), retain["attention_mask"]
        )
        return forget_loss + self.retain_weight * retain_loss
