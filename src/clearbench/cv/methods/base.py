"""What a vision-only unlearning method is, and the registry of all of them.

Each method is a small dataclass in its own module of this package, registered by name. As
for the VLM methods (:mod:`clearbench.methods.base`), the fields are a method's
hyper-parameters and :meth:`CVMethod.loss` its loss on one step's batch; the loop
(:mod:`clearbench.cv.train`) builds the batches and owns the optimiser. "CE" is the AM-Softmax
loss of the network's head; the reference θ₀ is the frozen vanilla network. Gold is not a loss
but a retraining from the pretrained network without the forget persons: the recipe's gold
stage.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from clearbench.config import ConfigError, NonNegativeFloat, NonNegativeInt, PositiveInt, settings
from clearbench.cv.losses import am_softmax_loss
from clearbench.cv.model import FaceNet
from clearbench.methods.scrub import is_max_step


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
    """Base class of the track's methods; subclasses are dataclasses, one module each."""

    name: ClassVar[str]

    @abstractmethod
    def loss(self, model: FaceNet, batch: UnlearnBatch, reference: FaceNet,
             step: int) -> torch.Tensor:
        """The loss of optimiser step ``step`` (from 0); ``reference`` is θ₀ in eval mode."""

    def prepare(self, steps_per_epoch: int) -> None:  # noqa: B027 - optional hook
        """Before training: optimiser steps per epoch over the forget images, for methods
        whose loss depends on the epoch (SCRUB's max-steps phase); most methods ignore it."""

    def calibrate(self, reference: FaceNet, forget: torch.Tensor) -> dict[str, float]:
        """Before training, on the first batch of forget images: measure what a default
        depends on (RMU's steering coefficient); return it for the record (most: none)."""
        return {}

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
    try:
        return cls(**(options or {}))
    except ConfigError as err:
        raise ConfigError(f"CV method {name!r}", err.problems) from None


@settings
class Alternating(CVMethod):
    """SCRUB's schedule (Kurmanji et al., 2023), shared by ``scrub`` and ``scrub_bio``: during
    the first ``max_epochs`` epochs (the reference code's ``msteps``), cycles of ``max_steps``
    forget steps then ``min_steps`` retain steps; min-steps alone afterwards, which restore
    utility. An epoch is one pass over the forget images; the loop says how many steps that
    is through :meth:`prepare`."""

    max_epochs: NonNegativeFloat = 6.0
    """Epochs with max-steps: 6 of the track's 20 unlearning epochs (``unlearn_epochs``), the
    share of the reference's image-classifier runs (small-scale: msteps 3 of 10 epochs)."""
    max_steps: PositiveInt = 1
    """Max-steps at the start of each cycle of ``max_steps + min_steps`` optimiser steps."""
    min_steps: NonNegativeInt = 1
    gamma: NonNegativeFloat = 0.99
    """γ of the retain CE in the min-steps (the SCRUB paper's value)."""
    steps_per_epoch = math.inf
    """Set by :meth:`prepare`; without it every step lies in the first epoch."""

    def prepare(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch

    def is_max_step(self, step: int) -> bool:
        return is_max_step(step, self.steps_per_epoch, self.max_epochs, self.max_steps,
                           self.min_steps)
