"""The training loop every stage uses: seed, progress bar, checkpoints, resume.

Read it top to bottom like a torchtune recipe: there are no callbacks. It knows nothing of
CLEAR: the caller gives it the model, the items of one epoch, how to turn a list of items into
a batch, and how to compute the loss of a batch.

Runs unchanged under ``accelerate launch`` (DDP, FSDP, DeepSpeed): every device-, process- and
precision-specific step goes through :class:`accelerate.Accelerator`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from clearbench.io import stable_hash

LossFn = Callable[[torch.nn.Module, Any, int], torch.Tensor]
"""``loss_fn(model, batch, micro_batch)``: the loss of one micro-batch; ``micro_batch`` counts
every micro-batch of the run from 0 (resume included), for losses that change over time."""
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; nothing after this step can be trusted."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"loss became {loss} at optimiser step {step}; training stopped")
        self.step = step
        self.loss = loss


@dataclass
class TrainSettings:
    """Optimisation settings of one training stage."""

    epochs: float = 3.0
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-5
    weight_decay: float = 0.01
    adam_beta2: float = 0.999
    """AdamW's second-moment decay (β₂)."""
    warmup_steps: int = 0
    schedule: str = "linear"
    max_grad_norm: float = 1.0
    seed: int = 0
    mixed_precision: str = "no"
    checkpoint_every: int = 0
    """Optimiser steps between checkpoints; 0 = once per epoch."""

    def validate(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.grad_accum <= 0:
            raise ValueError(
                f"epochs, batch_size and grad_accum must be positive, got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, grad_accum={self.grad_accum}"
            )
        if self.lr <= 0:
            raise ValueError(f"learning rate must be positive, got lr={self.lr}")
        if not 0 <= self.adam_beta2 < 1:
            raise ValueError(f"adam_beta2 must lie in [0, 1), got {self.adam_beta2}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(
                f"mixed_precision must be 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}"
            )


@dataclass
class TrainState:
    """What a checkpoint must remember besides weights and optimiser moments."""

    step: int = 0
    """Optimiser steps done."""
    micro_batches: int = 0
    """Micro-batches consumed in total (resume skips this many)."""
    losses: list[float] = field(default_factory=list)
    """Mean loss of every optimiser step."""
    seconds: float = 0.0
    run: str = ""
    """Identity of the run that wrote the checkpoint (:func:`run_identity`)."""


@dataclass
class TrainResult:
    steps: int
    losses: list[float]
    seconds: float
    resumed_from_step: int


def run_identity(settings: TrainSettings, fingerprint: str) -> str:
    """What a checkpoint must match to be resumed: the settings (bar checkpoint spacing) and
    the caller's fingerprint of everything else (model, data, stage config)."""
    fields = asdict(settings)
    fields.pop("checkpoint_every")
    return stable_hash([fields, fingerprint])


@dataclass(frozen=True)
class Replay:
    """Items mixed into every epoch besides the training items: a fresh sample of
    ``per_epoch`` of them each epoch (e.g. pre-training rows a small model must not forget)."""

    items: Sequence[Any]
    per_epoch: int

    def __post_init__(self) -> None:
        if not 0 <= self.per_epoch <= len(self.items):
            raise ValueError(
                f"replay: cannot draw {self.per_epoch} of {len(self.items)} items per epoch"
            )


def epoch_order(
    n_items: int,
    seed: int,
    epoch: int,
    *,
    n_replay: int = 0,
    replay_per_epoch: int = 0,
) -> list[int]:
    """The item order of one epoch, fixed by (seed, epoch) so that resume is exact.

    A random permutation of the training items and ``replay_per_epoch`` replay items drawn
    from ``n_replay``: indices below ``n_items`` are training items, ``n_items + j`` is
    replay item ``j``.
    """
    rng = np.random.default_rng([seed, epoch])
    drawn = rng.choice(n_replay, size=replay_per_epoch, replace=False) if n_replay else []
    pool = np.concatenate([np.arange(n_items), n_items + np.asarray(drawn, dtype=int)])
    return rng.permutation(pool).tolist()


def train(
    model: torch.nn.Module,
    items: Sequence[Any],
    collate: Callable[[list[Any]], Any],
    loss_fn: LossFn,
    settings: TrainSettings,
    out_dir: Path,
    *,
    accelerator: Accelerator | None = None,
    description: str = "training",
    fingerprint: str = "",
    replay: Replay | None = None,
    after_step: Callable[[int], None] | None = None,
    shuffle: bool = True,
) -> TrainResult:
    """Train ``model`` in place on ``items`` and return the loss curve.

    ``replay`` mixes a fresh sample of other items into every epoch. ``after_step`` is called
    with the number of optimiser steps done after each one (e.g. to evaluate the model there).
    ``shuffle=False`` takes every epoch's items in the given order (no replay).

    A checkpoint (weights, optimiser, scheduler, RNG, :class:`TrainState`) is written
    atomically to ``out_dir/checkpoint`` every ``checkpoint_every`` steps and at each epoch's
    end; if one is there when ``train`` starts, training resumes from it, skipping exactly the
    micro-batches already consumed. A checkpoint left by a run with other settings or another
    ``fingerprint`` is refused (ValueError naming it), never silently continued.
    """
    settings.validate()
    if not items:
        raise ValueError(f"{description}: nothing to train on (0 items)")
    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator = accelerator or Accelerator(
        cpu=next(model.parameters()).device.type == "cpu",  # CPU processes talk over gloo
        gradient_accumulation_steps=settings.grad_accum,
        mixed_precision=settings.mixed_precision,
        # Text-only batches leave the vision tower without gradients: DDP must allow it.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(settings.seed)

    if replay is not None and not shuffle:
        raise ValueError(f"{description}: replay mixes items into shuffled epochs only")
    replay = replay or Replay(items=(), per_epoch=0)
    pool = [*items, *replay.items]
    epoch_size = len(items) + replay.per_epoch
    batches_per_epoch = math.ceil(epoch_size / (settings.batch_size * accelerator.num_processes))
    total_micro = math.ceil(batches_per_epoch * settings.epochs)
    total_steps = math.ceil(total_micro / settings.grad_accum)

    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None and plugin.zero_stage == 3:
        raise ValueError(
            f"{description}: DeepSpeed ZeRO-3 shards the weights, and saving a ZeRO-3 model is "
            "not supported yet; use configs/accelerate/deepspeed-zero2.yaml or ddp.yaml"
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{description}: the model has no trainable parameters")
    # The fused kernel updates every tensor in one pass: ~4x less optimiser time on CPU.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in trainable)
    optimizer = torch.optim.AdamW(
        trainable, lr=settings.lr, betas=(0.9, settings.adam_beta2),
        weight_decay=settings.weight_decay, fused=fused,
    )
    scheduler = get_scheduler(
        settings.schedule,
        optimizer,
        num_warmup_steps=settings.warmup_steps * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes,
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    state = TrainState(run=run_identity(settings, fingerprint))
    checkpoint = out_dir / CHECKPOINT_DIR
    if (checkpoint / STATE_FILE).is_file():
        saved = TrainState(**json.loads((checkpoint / STATE_FILE).read_text()))
        if saved.run != state.run:
            raise ValueError(
                f"{checkpoint} was left by an interrupted run with other settings; delete it to"
                " start over, or rerun with the settings that made it"
            )
        accelerator.load_state(str(checkpoint))
        state = saved
        accelerator.print(f"{description}: resuming from optimiser step {state.step}")
    resumed_from = state.step

    model.train()
    progress = tqdm(
        total=total_steps,
        initial=state.step,
        desc=description,
        disable=not accelerator.is_local_main_process,
        dynamic_ncols=True,
    )
    started = time.perf_counter() - state.seconds
    window: list[float] = []
    while state.micro_batches < total_micro:
        epoch, done_in_epoch = divmod(state.micro_batches, batches_per_epoch)
        order = epoch_order(
            len(items), settings.seed, epoch, n_replay=len(replay.items),
            replay_per_epoch=replay.per_epoch,
        ) if shuffle else list(range(len(items)))
        loader = accelerator.prepare_data_loader(
            DataLoader([pool[i] for i in order], batch_size=settings.batch_size,
                       collate_fn=collate, shuffle=False)
        )
        if done_in_epoch:
            loader = accelerator.skip_first_batches(loader, done_in_epoch)
        for batch in loader:
            with accelerator.accumulate(model):
                loss = loss_fn(model, batch, state.micro_batches)
                accelerator.backward(loss)
                if accelerator.sync_gradients and settings.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window.append(accelerator.gather(loss.detach().float()).mean().item())
            state.micro_batches += 1
            if accelerator.sync_gradients:
                step_loss = float(np.mean(window))
                window.clear()
                if not math.isfinite(step_loss):
                    raise DivergedError(state.step + 1, step_loss)
                state.step += 1
                state.losses.append(step_loss)
                progress.update(1)
                lr = scheduler.get_last_lr()[0]
                progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", refresh=False)
                if after_step is not None:
                    after_step(state.step)
                end_of_epoch = state.micro_batches % batches_per_epoch == 0
                periodic = settings.checkpoint_every and state.step % settings.checkpoint_every == 0
                if (periodic or end_of_epoch) and state.micro_batches < total_micro:
                    state.seconds = time.perf_counter() - started
                    save_checkpoint(accelerator, state, checkpoint)
            if state.micro_batches >= total_micro:
                break
    progress.close()
    state.seconds = time.perf_counter() - started
    accelerator.wait_for_everyone()
    return TrainResult(state.step, state.losses, state.seconds, resumed_from)


def save_checkpoint(accelerator: Accelerator, state: TrainState, checkpoint: Path) -> None:
    """Write a checkpoint next to the old one, then swap, so a crash never leaves half of one."""
    partial = checkpoint.with_name(checkpoint.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps(asdict(state)))
        old = checkpoint.with_name(checkpoint.name + ".old")
        if checkpoint.exists():
            os.replace(checkpoint, old)
        os.replace(partial, checkpoint)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def nonfinite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters holding a NaN or an infinity."""
    with torch.no_grad():
        return [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]


def check_finite(model: torch.nn.Module, what: str) -> None:
    """ValueError naming ``what`` if training left non-finite weights (a loss can explode
    without ever being NaN)."""
    bad = nonfinite_parameters(model)
    if bad:
        raise ValueError(f"{what} diverged: {len(bad)} weight tensors hold NaN or inf (first: "
                         f"{bad[0]}); lower the learning rate")


def remove_checkpoint(out_dir: Path) -> None:
    """Delete the resume checkpoint once the stage's final output is safely written."""
    shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
