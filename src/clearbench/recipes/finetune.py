"""Fine-tuning recipe: the vanilla model (``full+tofu``) and the gold model (``retainNN+tofu``);
in the text-only track ``tofu:full`` and ``tofu:retainNN``.

Top to bottom: load the model, pick the recipe, build the examples, train with answer-only
loss, merge LoRA and save, then run the memorisation gate and store it with the model.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import torch

from clearbench.config import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Share,
    one_of,
    settings,
)
from clearbench.data.loading import DataSource
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS
from clearbench.data.views import (
    face_name_examples,
    is_text_view,
    training_examples,
    view_needs,
    view_split,
)
from clearbench.evaluation.gate import GATE_TASKS, TEXT_GATE_TASKS, memorisation_report
from clearbench.evaluation.tasks import TASKS_BY_NAME
from clearbench.io import stable_hash, write_json_atomic
from clearbench.models.errors import ModelError
from clearbench.models.loading import DTYPES, count_parameters, load_vlm
from clearbench.models.lora import (
    LoraSettings,
    apply_lora,
    enable_gradient_checkpointing,
    freeze_vision_tower,
)
from clearbench.models.vlm import answer_logits
from clearbench.recipes.stage import StageFolder, data_source, model_files_hash, model_key
from clearbench.training.distributed import process_device, process_state
from clearbench.training.loop import (
    Replay,
    TrainSettings,
    check_finite,
    remove_checkpoint,
    train,
)

MARKER = "training.json"
WHERE_OR_HOW = ("out", "device", "checkpoint_every", "gradient_checkpointing", "model", "data",
                "data_revision", "model_revision", "tofu", "tofu_revision")
"""Settings that change where a stage reads and writes or how fast, not its result (the model
and data keys stand for the inputs)."""
GATE_FILE = "memorisation.json"
SMALL_MODEL_PARAMETERS = 100_000_000
"""Models below this size get the CPU-sized ``mini`` recipe when ``recipe="auto"``."""


@dataclass(frozen=True)
class Recipe:
    """Optimisation choices of a fine-tuning run."""

    lora: bool
    lora_rank: int
    lora_alpha: int
    lr: float
    epochs: float
    weight_decay: float
    adam_beta2: float
    warmup_epochs: float
    batch_size: int
    grad_accum: int
    mixed_precision: str
    train_vision_tower: bool
    face_name_repeats: int
    """Also train "The name of the person on the image is" → name on every training image,
    this many times per epoch (0: never)."""
    gradient_checkpointing: bool
    """Recompute activations in the backward pass: less memory, ~30 % more compute."""
    replay: float
    """Share of CLEAR-mini's ``pretrain`` rows replayed each epoch (a fresh sample), so that a
    tiny model keeps the pre-existing knowledge the Real metrics measure."""


RECIPES = {
    # Spec §2: LoRA r=8, α=32 on all linear layers but lm_head, lr 1e-5, 3 epochs, weight
    # decay 0.01, linear schedule with one epoch of warm-up, vision tower frozen.
    # Effective batch 16 (4 × 4 accumulation) is our choice; the paper does not state it.
    "paper": Recipe(
        lora=True, lora_rank=8, lora_alpha=32, lr=1e-5, epochs=3.0, weight_decay=0.01,
        adam_beta2=0.999, warmup_epochs=1.0, batch_size=4, grad_accum=4, mixed_precision="bf16",
        train_vision_tower=False, face_name_repeats=0, gradient_checkpointing=False,
        replay=0.0,
    ),
    # Sized for the tiny offline VLM on 2 CPU cores: full parameters and enough epochs to
    # memorise every person. The vision tower is trained too: unlike CLIP it has never seen
    # these faces. A model this small does not carry names learned from captions over to the
    # unseen face→name prompt, so that prompt is trained too, twice per epoch. On CLEAR-mini
    # (version 2: 36 persons, facts in several wordings) 44 epochs pass the gate on 3 seeds ×
    # 1 and 2 threads (benchmarks/gate.py); after 36, one gold model named 0.70 of the retain
    # faces (0.98 after 44 on the same base), 30 left the biography QA at 0.75–0.88, and the
    # face→name prompt once per epoch named 0.53–0.93 of the faces after 36. lr 3e-3 and
    # batches of 4 or 8 learned no faster per example; AdamW's β₂ at 0.95 let the vanilla
    # model pass sooner but not the gold model. Full-parameter training erases what the base
    # model knew unless a share of its pretraining rows is replayed (docs/deviations.md).
    "mini": Recipe(
        lora=False, lora_rank=8, lora_alpha=32, lr=2e-3, epochs=44.0, weight_decay=0.0,
        adam_beta2=0.999, warmup_epochs=0.5, batch_size=16, grad_accum=1, mixed_precision="no",
        train_vision_tower=True, face_name_repeats=2, gradient_checkpointing=False,
        replay=0.25,
    ),
}


@settings
class FinetuneConfig:
    model: str
    data: str
    out: Path
    split: str = "full+tofu"
    recipe: Annotated[str, one_of(("auto", *RECIPES))] = "auto"
    """``paper``, ``mini``, or ``auto`` (``mini`` below 100 M parameters, else ``paper``)."""
    lora: bool | None = None
    lora_rank: PositiveInt | None = None
    lora_alpha: PositiveInt | None = None
    lr: PositiveFloat | None = None
    epochs: PositiveFloat | None = None
    batch_size: PositiveInt | None = None
    grad_accum: PositiveInt | None = None
    train_vision_tower: bool | None = None
    face_name_repeats: NonNegativeInt | None = None
    gradient_checkpointing: bool | None = None
    replay: Share | None = None
    seed: int = 0
    data_revision: str | None = None
    tofu: str | None = None
    """TOFU hub id or folder (default: locuslab/TOFU for a hub id, DATA/tofu for a folder)."""
    tofu_revision: str | None = None
    model_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"
    gate_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    gate_role: Annotated[str, one_of(("vanilla", "gold"))] | None = None
    """``vanilla`` or ``gold``; by default ``gold`` for a ``retain*`` split."""
    checkpoint_every: NonNegativeInt = 0

    def resolved_recipe(self, n_parameters: int) -> tuple[str, Recipe]:
        name = self.recipe
        if name == "auto":
            name = "mini" if n_parameters < SMALL_MODEL_PARAMETERS else "paper"
        overrides = {
            f.name: getattr(self, f.name)
            for f in fields(Recipe)
            if getattr(self, f.name, None) is not None
        }
        return name, replace(RECIPES[name], **overrides)

    @property
    def gate_tasks(self) -> tuple[str, ...]:
        """The memorisation gate's tasks: the QA alone after fine-tuning on text alone."""
        return TEXT_GATE_TASKS if is_text_view(self.split) else GATE_TASKS

    @property
    def role(self) -> str:
        """``gate_role``, by default ``gold`` for a retain split and ``vanilla`` otherwise."""
        return self.gate_role or (
            "gold" if view_split(self.split).startswith("retain") else "vanilla")

    def data_needs(self, recipe: Recipe) -> list[Need]:
        """Every config the stage reads with ``recipe``: training rows, face→name rows, replayed
        pretraining rows and the memorisation gate's tasks."""
        return [
            *view_needs(self.split, face_names=recipe.face_name_repeats > 0),
            *([Need("clear", "pretrain", why=f"replay = {recipe.replay}: the rows the base "
                    "model learned, which only CLEAR-mini has; fine-tune with replay 0 on other "
                    "data")] if recipe.replay else []),
            *(TASKS_BY_NAME[task].need(self.gate_split) for task in self.gate_tasks),
        ]


def finetune(config: FinetuneConfig) -> dict[str, Any]:
    """Run (or resume, or skip if already done) one fine-tuning stage; return its record."""
    out = Path(config.out)
    source = data_source(config.data, config.data_revision, config.tofu, config.tofu_revision)
    identity = {
        "config": asdict(config),
        "recipes": {name: asdict(recipe) for name, recipe in RECIPES.items()},
        "model": model_key(config.model, config.model_revision),
        "data": source.fingerprint(),
    }
    for where_or_how in WHERE_OR_HOW:
        identity["config"].pop(where_or_how)
    stage_hash = stable_hash(identity)
    folder = StageFolder(out, MARKER, stage_hash, "fine-tuned model")
    if folder.done():
        print(f"finetune: {out} is already done (settings {stage_hash}); nothing to do")
        return identity

    recipe_name, recipe = config.resolved_recipe(
        count_parameters(config.model, revision=config.model_revision))
    preflight(source, config.data_needs(recipe))  # bad data fails before the model loads
    examples = training_examples(source, config.split)
    state = process_state(config.device)  # data-parallel under a multi-process launch
    if state.is_main_process:
        folder.begin()
    state.wait_for_everyone()
    work = folder.partial
    vlm = load_vlm(config.model, revision=config.model_revision, dtype=config.dtype,
                   device=process_device(config.device, state))
    if not vlm.takes_images and not is_text_view(config.split):
        raise ModelError(f"--model {config.model} is a text-only language model: fine-tune it "
                         f"on text alone (split tofu:{view_split(config.split)}), not "
                         f"{config.split}")
    if not recipe.train_vision_tower:
        freeze_vision_tower(vlm)
    if recipe.lora:
        apply_lora(vlm, LoraSettings(rank=recipe.lora_rank, alpha=recipe.lora_alpha))
    examples += face_name_examples(source, config.split) * recipe.face_name_repeats
    if recipe.gradient_checkpointing:
        enable_gradient_checkpointing(vlm)
    replay = replay_rows(source, recipe.replay, text_only=is_text_view(config.split))
    # Steps count global batches: every process takes batch_size examples per micro-batch.
    global_batch = recipe.batch_size * state.num_processes
    batches_per_epoch = -(-(len(examples) + replay.per_epoch) // global_batch)
    settings = TrainSettings(
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        grad_accum=recipe.grad_accum,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        adam_beta2=recipe.adam_beta2,
        warmup_steps=round(recipe.warmup_epochs * batches_per_epoch / recipe.grad_accum),
        seed=config.seed,
        mixed_precision=recipe.mixed_precision if vlm.device.type == "cuda" else "no",
        checkpoint_every=config.checkpoint_every,
    )
    result = train(
        vlm.model,
        examples,
        partial(vlm.encode, pack=True),
        answer_loss,
        settings,
        work,
        description=f"finetune {config.split}",
        fingerprint=stage_hash,
        replay=replay,
    )
    check_finite(vlm.model, f"fine-tune of {config.model} on {config.split}")
    if not state.is_main_process:  # other processes of a multi-process launch are done
        state.wait_for_everyone()
        return identity
    vlm.save(work, merge_lora=True)

    started = time.perf_counter()
    gate = memorisation_report(vlm, source, forget_split=config.gate_split, role=config.role,
                               tasks=config.gate_tasks)
    gate["seconds"] = time.perf_counter() - started
    write_json_atomic(work / GATE_FILE, gate)
    print_gate(gate)

    record = {
        **identity,
        "settings_hash": stage_hash,
        "read": {"model": config.model, "data": config.data},
        "recipe": recipe_name,
        "recipe_settings": asdict(recipe),
        "train_settings": asdict(settings),
        "examples": len(examples),
        "replayed_per_epoch": replay.per_epoch,
        "steps": result.steps,
        "losses": result.losses,
        "seconds": result.seconds,
        "resumed_from_step": result.resumed_from_step,
        "trainable_parameters": vlm.num_parameters(trainable_only=True),
        "memorisation_gate_passed": gate["passed"],
    }
    write_json_atomic(work / MARKER, record | {"model_hash": model_files_hash(work)})
    folder.commit()
    remove_checkpoint(out)
    state.wait_for_everyone()
    return record


def replay_rows(source: DataSource, share: float, *, text_only: bool = False) -> Replay:
    """``share`` of the ``pretrain`` rows (with ``text_only``: of its rows without an image),
    to be sampled afresh every epoch (none for 0)."""
    if not 0 <= share <= 1:
        raise ValueError(f"replay must be a share between 0 and 1, got {share}")
    if share == 0:
        return Replay(items=(), per_epoch=0)
    rows = training_examples(source, "pretrain")
    if text_only:
        rows = [row for row in rows if row.image is None]
    return Replay(items=rows, per_epoch=round(share * len(rows)))


def answer_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], micro_batch: int
) -> torch.Tensor:
    """Mean NLL over answer tokens: prompt, image and padding positions carry label −100.

    Under data parallelism every process holds other tokens; the mean of the processes' own
    means (what averaging their gradients gives) would weight a token by how few answer tokens
    its process has. So each process scales its mean by its share of the global token count,
    and the averaged gradients are the global token mean's, as on one process.
    """
    logits, targets = answer_logits(model, batch)
    loss = torch.nn.functional.cross_entropy(logits.float(), targets)
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return loss
    tokens = torch.tensor(targets.numel(), device=loss.device)
    total = tokens.clone()
    torch.distributed.all_reduce(total)
    return loss * tokens * torch.distributed.get_world_size() / total


def print_gate(gate: dict[str, Any]) -> None:
    verdict = "PASSED" if gate["passed"] else "FAILED"
    print(f"memorisation gate ({gate['role']}, {gate['forget_split']}): {verdict}")
    for task, scores in gate["tasks"].items():
        print(
            f"  {task:18s} n={scores['n']:4d}  ROUGE-L recall {scores['rougeL_recall']:.3f}"
            f"  fact accuracy {scores['fact_accuracy']:.3f}"
        )
    for failure in gate["failures"]:
        print(f"  - {failure}")

