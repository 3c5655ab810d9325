"""RMU, representation misdirection (Li et al., 2024, WMDP): at one decoder layer, steer the
forget data's hidden states towards a fixed random direction and keep the retain data's
hidden states where θ₀ had them."""

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
from clearbench.methods.losses import masked_mse
from clearbench.models.layers import decoder_layers, layer_output
from clearbench.models.vlm import model_inputs

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


@register
@settings
class RMU(UnlearningMethod):
    name = "rmu"
    batches = (FORGET, RETAIN)
    needs_reference = True
    layer: NonNegativeInt | None = None
    """Decoder layer ℓ (0-based); None: :func:`default_layer`."""
    steering_coeff: PositiveFloat = 6.5
    """c (WMDP's value for Zephyr-7B)."""
    retain_weight: NonNegativeFloat = 1200.0
    """α (WMDP's value)."""
    seed: int = 0
    """Seed of the random direction u."""

    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        reference = frozen(reference, self.name)
        layer = default_layer(model) if self.layer is None else self.layer
        forget, retain = batches[FORGET], batches[RETAIN]
        hidden = layer_output(model, model_inputs(forget), layer)
        control = control_vector(hidden.shape[-1], self.steering_coeff, self.seed).to(hidden)
        forget_loss = masked_mse(hidden, control, forget["attention_mask"])
        retain_hidden = layer_output(model, model_inputs(retain), layer)
        retain_loss = masked_mse(
            retain_hidden, reference.hidden(retain, layer), retain["attention_mask"]
        )
        return forget_loss + self.retain_weight * retain_loss
