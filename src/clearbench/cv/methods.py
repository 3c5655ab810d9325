"""The vision-only track's unlearning methods: one small dataclass each, registered by name.

As for the VLM methods (:mod:`clearbench.methods.base`), the fields are a method's
hyper-parameters and :meth:`CVMethod.loss` its loss on one step's batch; the loop
(:mod:`clearbench.cv.train`) builds the batches and owns the optimiser. "CE" is the AM-Softmax
loss of the network's head; the reference θ₀ is the frozen vanilla network. Gold is not a loss
but a retraining from the pretrained network without the forget persons: the recipe's gold
stage.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from clearbench.cv.losses import (
    am_softmax_loss,
    cosine_target_loss,
    dpo_loss,
    feature_mse,
    kl_to_reference,
    l1_norm,
    label_log_prob,
    twins_loss,
)
from clearbench.cv.model import FaceNet


@dataclass(frozen=True)
class UnlearnBatch:
    """One step's data: forget images with their true labels, as many retain images with
    theirs, and ``other``: a random retain identity per forget image (LLMU's random label,
    DPO's preferred answer)."""

    forget: torch.Tensor
    forget_labels: torch.Tensor
    retain: torch.Tensor
    retain_labels: torch.Tensor
    other: torch.Tensor


def ce(model: FaceNet, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The AM-Softmax training loss of ``model`` on ``images``."""
    config = model.config
    return am_softmax_loss(model.cosines(model(images)), labels, config.scale, config.margin)


@torch.no_grad()
def reference_embeddings(reference: FaceNet, images: torch.Tensor) -> torch.Tensor:
    """θ₀'s embeddings of ``images``, without gradients."""
    return reference(images)


class CVMethod(ABC):
    """Base class of the track's methods; subclasses are dataclasses registered below."""

    name: ClassVar[str]

    @abstractmethod
    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        """The loss of optimiser step ``step`` (from 0); ``reference`` is θ₀ in eval mode."""

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


CV_METHODS: dict[str, type[CVMethod]] = {}


def register(cls: type[CVMethod]) -> type[CVMethod]:
    """Class decorator: make the dataclass ``cls`` available by its ``name``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    if cls.name in CV_METHODS:
        raise ValueError(f"two CV methods are named {cls.name!r}")
    CV_METHODS[cls.name] = cls
    return cls


def build_cv_method(name: str, options: dict[str, Any] | None = None) -> CVMethod:
    """The method ``name`` with ``options`` overriding its defaults; errors name the fault."""
    if name not in CV_METHODS:
        raise ValueError(f"unknown CV method {name!r}; known: {', '.join(CV_METHODS)}")
    cls = CV_METHODS[name]
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = set(options or {}) - set(known)
    if unknown:
        raise ValueError(f"CV method {name!r} has no option(s) {', '.join(sorted(unknown))}; "
                         f"its options: {', '.join(known) or 'none'}")
    return cls(**(options or {}))


@register
@dataclass
class RetainFT(CVMethod):
    """Fine-tune on the retain persons only."""

    name = "retain_ft"

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        return ce(model, batch.retain, batch.retain_labels)


@register
@dataclass
class NegGrad(CVMethod):
    """Gradient ascent on the forget persons (NegGrad+ with ``retain_weight`` > 0)."""

    name = "neggrad"
    retain_weight: float = 0.0

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        loss = -ce(model, batch.forget, batch.forget_labels)
        if self.retain_weight:
            loss = loss + self.retain_weight * ce(model, batch.retain, batch.retain_labels)
        return loss


@dataclass
class _Alternating(CVMethod):
    """SCRUB's schedule: ``max_steps`` forget steps, then ``min_steps`` retain steps."""

    max_steps: int = 1
    min_steps: int = 1
    gamma: float = 0.99
    """γ of the retain CE in the min-steps (the SCRUB paper's value)."""

    def is_max_step(self, step: int) -> bool:
        return step % (self.max_steps + self.min_steps) < self.max_steps


@register
@dataclass
class Scrub(_Alternating):
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


@register
@dataclass
class ScrubBio(_Alternating):
    """SCRUB for biometrics: max-steps push cos(e(x_f), e₀(x_f)) to −1, min-steps push
    cos(e(x_r), e₀(x_r)) to +1 (plus γ·CE)."""

    name = "scrub_bio"

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


@register
@dataclass
class Twins(CVMethod):
    """Regress a forget image's embedding to θ₀'s embedding of its horizontally flipped copy
    (an unseen "twin"), plus CE on retain images."""

    name = "twins"
    retain_weight: float = 1.0

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        twin = reference_embeddings(reference, batch.forget.flip(-1))
        loss = twins_loss(model(batch.forget), twin)
        return loss + self.retain_weight * ce(model, batch.retain, batch.retain_labels)


@register
@dataclass
class RMU(CVMethod):
    """RMU (Li et al., 2024) at ResNet stage ``stage``: forget features → c·u, retain features
    → θ₀'s."""

    name = "rmu"
    stage: int | None = None
    """Feature map (0 = stem, 1.. = ResNet stages); None: the last but one stage (3 of
    mini's and ResNet-18's 4), deep enough to hold identity, early enough to leave a head."""
    steering_coeff: float = 6.5
    """c (WMDP's value)."""
    retain_weight: float = 100.0
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


@register
@dataclass
class DPO(CVMethod):
    """DPO with θ₀ as reference: prefer a random retain identity (``other``) over the true
    identity of each forget image, plus CE on retain images."""

    name = "dpo"
    beta: float = 0.1
    retain_weight: float = 1.0

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


@register
@dataclass
class LLMU(CVMethod):
    """LLMU (Yao et al., 2023): −ε₁·CE(forget) + ε₂·CE(forget → random retain identity)
    + ε₃·KL(π_θ₀ ‖ π_θ) on retain images."""

    name = "llmu"
    forget_weight: float = 0.5
    random_weight: float = 1.0
    retain_weight: float = 1.0

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


@register
@dataclass
class Sparsity(CVMethod):
    """ℓ1-sparse unlearning (Jia et al., 2023): CE on retain images + λ·Σ|w| over every
    weight."""

    name = "sparsity"
    l1: float = 5e-5

    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        return ce(model, batch.retain, batch.retain_labels) + self.l1 * l1_norm(
            model.parameters())
