"""What a run is made of, as :func:`clearbench.recipes.pipeline.plan` lays it out: stages
(what to do, once which others are done), the rows of ``results.json`` (where each model finds
its numbers) and the plan holding both. Plain data: the modules that make (pipeline), cost
(estimate) and read (results) a plan depend on it, not on each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearbench.recipes.runconfig import RunConfig


@dataclass(frozen=True)
class Stage:
    """One step of a run: ``action(*args)`` once the stages named in ``needs`` are done."""

    name: str
    kind: str
    action: Callable[..., object]
    args: tuple[Any, ...]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResultRow:
    """Where one row of ``results.json`` (a model of the run) finds its numbers."""

    method: str
    variant: str | None
    modality: str | None
    forget_split: str
    lora: bool
    l1: float
    seed: int
    record: Path | None
    """``training.json`` (vanilla, gold) or ``unlearning.json``; None for a published model
    the run did not train (the text-only track's vanilla model may be one)."""
    eval_dir: Path
    track: str = "multimodal"
    """``multimodal``, or ``text`` for the text-only track's models."""
    audits: tuple[str, ...] = ()
    """The audits the run gives the model, each writing into ``MODEL/audit-SPLIT``."""


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    run_dir: Path
    data: str
    stages: list[Stage]
    rows: list[ResultRow]
