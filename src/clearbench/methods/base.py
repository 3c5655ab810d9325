"""What an unlearning method is, and the registry of all of them.

A method is a small dataclass: its fields are its hyper-parameters (defaults from its own
paper), the class attributes say which batches it needs and whether it needs the frozen
reference model θ₀, and :meth:`UnlearningMethod.loss` computes its loss. It touches nothing
else: the recipe builds the batches, the reference, the ℓ1 term and the training loop.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import torch

from clearbench.config import ConfigError
from clearbench.methods.losses import mean_nll
from clearbench.models.vlm import answer_logits

FORGET = "forget"
"""Forget prompts with their true answers."""
RETAIN = "retain"
"""Retain prompts with their true answers (one random retain item per forget item)."""
REFUSAL = "refusal"
"""Forget prompts answered with a refusal ("I don't know" style, spec §1.2)."""
RANDOM_ANSWER = "random_answer"
"""Forget prompts answered with a random retain answer (LLMU's random mismatch)."""
OTHER_ANSWER = "other_answer"
"""Forget prompts answered with the answer of a forget item about another person (SKU's random
disassociation)."""
BATCH_KINDS = (FORGET, RETAIN, REFUSAL, RANDOM_ANSWER, OTHER_ANSWER)

Batch = dict[str, torch.Tensor]


class Reference(Protocol):
    """The frozen vanilla model θ₀: outputs without gradients, in eval mode."""

    def answer_logits(self, batch: Batch) -> torch.Tensor:
        """θ₀'s ``(n, vocab)`` logits at the answer positions (see ``methods.losses``)."""
        ...

    def hidden(self, batch: Batch, layer: int) -> torch.Tensor: ...


class UnlearningMethod(ABC):
    """Base class of every method; subclasses are dataclasses registered with :func:`register`."""

    name: ClassVar[str]
    batches: ClassVar[tuple[str, ...]]
    """Which of :data:`BATCH_KINDS` the loss reads."""
    needs_reference: ClassVar[bool] = False
    negates_task_vector: ClassVar[bool] = False
    tuning: ClassVar[tuple[str, tuple[float, ...]] | None] = None
    """(option, values): the method's one key coefficient and the values ``clearbench tune``
    tries besides the learning rate (see :mod:`clearbench.recipes.tune`); None: no such
    coefficient (GA, Retain FT)."""
    """Whether :meth:`finish` negates θ − θ₀ (the recipe then keeps θ₀'s trainable weights)."""

    @abstractmethod
    def loss(
        self,
        model: torch.nn.Module,
        batches: dict[str, Batch],
        reference: Reference | None,
        step: int,
    ) -> torch.Tensor:
        """The loss of one micro-batch of optimiser step ``step`` (counted from 0)."""

    def prepare(self, steps_per_epoch: float) -> None:  # noqa: B027 - optional hook
        """Before training: optimiser steps per epoch over the forget items, for methods whose
        loss depends on the epoch (SCRUB's max-steps phase); most methods ignore it."""

    def finish(self, negate: Callable[[float], None]) -> None:  # noqa: B027 - optional hook
        """After training. ``negate(s)`` replaces the weights θ by θ₀ − s·(θ − θ₀) (SKU's
        task-vector negation, LoRA-aware); most methods do nothing here."""

    def calibrate(
        self, model: torch.nn.Module, batches: dict[str, Batch], reference: Reference | None
    ) -> dict[str, float]:
        """Before training, on the first batch: measure what a default depends on (RMU's
        steering coefficient); return the measured values for the record (most: none)."""
        return {}

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


METHODS: dict[str, type[UnlearningMethod]] = {}


def register(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Class decorator: make ``cls`` (a dataclass) available by its ``name``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    if cls.name in METHODS:
        raise ValueError(f"two unlearning methods are named {cls.name!r}")
    unknown = set(cls.batches) - set(BATCH_KINDS)
    if unknown:
        raise ValueError(f"{cls.__name__} asks for unknown batches {sorted(unknown)}")
    METHODS[cls.name] = cls
    return cls


def build_method(name: str, options: dict[str, Any] | None = None) -> UnlearningMethod:
    """The method ``name`` with ``options`` overriding its defaults; errors name what is wrong."""
    if name not in METHODS:
        raise ValueError(f"unknown unlearning method {name!r}; known: {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    options = options or {}
    unknown = set(options) - set(fields)
    if unknown:
        raise ValueError(
            f"method {name!r} has no option(s) {', '.join(sorted(unknown))}; its options: "
            f"{', '.join(fields) or 'none'}"
        )
    try:
        return cls(**options)
    except ConfigError as err:
        raise ConfigError(f"unlearning method {name!r}", err.problems) from None


def ce(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """CE of spec §3: mean NLL over the answer tokens of ``batch`` (0 if it has none)."""
    return mean_nll(*answer_logits(model, batch))


def frozen(reference: Reference | None, method: str) -> Reference:
    """The reference model, which the recipe must provide to a method that needs it."""
    if reference is None:
        raise RuntimeError(f"method {method!r} needs the reference model θ₀, none was given")
    return reference
