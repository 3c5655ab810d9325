"""Loss building blocks of the vision-only track: pure functions of tensors.

``cosines`` are ``(batch, classes)`` cos(embedding, identity weight) of the AM-Softmax head,
``logits`` = s·cosines, ``embeddings`` ``(batch, dim)``, ``features`` ``(batch, channels, h,
w)`` feature maps. DPO's preference loss and the ℓ1 norm are the VLM methods' own
(:mod:`clearbench.methods.losses`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clearbench.methods.losses import dpo_loss, l1_norm

__all__ = [
    "am_softmax_loss",
    "cosine_target_loss",
    "dpo_loss",
    "feature_mse",
    "kl_to_reference",
    "l1_norm",
    "label_log_prob",
    "twins_loss",
]


def am_softmax_loss(
    cosines: torch.Tensor, labels: torch.Tensor, scale: float, margin: float
) -> torch.Tensor:
    """AM-Softmax: CE of the logits s·(cos − m·[j = y]), batch mean (the track's "CE")."""
    margins = F.one_hot(labels, cosines.shape[-1]).to(cosines) * margin
    return F.cross_entropy(scale * (cosines - margins), labels)


def label_log_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` log π(y|x) of the given identity labels."""
    return logits.log_softmax(-1).gather(-1, labels[:, None]).squeeze(-1)


def kl_to_reference(reference_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(π_θ₀ ‖ π_θ) of the identity distributions, batch mean."""
    reference = reference_logits.log_softmax(-1)
    current = logits.log_softmax(-1)
    return (reference.exp() * (reference - current)).sum(-1).mean()


def cosine_target_loss(
    embeddings: torch.Tensor, reference: torch.Tensor, target: float
) -> torch.Tensor:
    """SCRUB_bio: mean of 1 − t·cos(e, e₀); with t = −1 it is minimal at cos = −1 (forget),
    with t = +1 at cos = +1 (retain)."""
    return (1.0 - target * F.cosine_similarity(embeddings, reference, dim=-1)).mean()


def twins_loss(embeddings: torch.Tensor, flipped_reference: torch.Tensor) -> torch.Tensor:
    """Twins: mean squared error between e(x) and e₀(flip(x)), over dimensions and batch."""
    return F.mse_loss(embeddings, flipped_reference)


def feature_mse(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RMU's ‖h − target‖² / channels, mean over the batch and positions; ``target`` is
    ``(batch, channels, h, w)`` or a ``(channels,)`` control vector c·u."""
    if target.dim() == 1:
        target = target[None, :, None, None]
    return (features - target).pow(2).mean(1).mean()
