"""Unlearning recipe: make the vanilla model forget a split with one registered method.

Top to bottom: resolve the method and the recipe, build the forget data for the modality (spec
§2 step 3) and pair each forget item with a random retain item (plus a refusal, a random
retain answer and another forget person's answer for the methods that need them), load the
vanilla model, add LoRA if asked, set up the frozen reference θ₀ only if the method needs it,
train with the method's loss (+ λ·ℓ1), let the method finish (SKU's negation), save and
record status and cost.
"""

from __future__ import annotations

import random
import resource
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any

import torch
from accelerate import PartialState

from clearbench.config import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    one_of,
    settings,
)
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.preflight import Need, preflight
from clearbench.data.refusals import load_refusals
from clearbench.data.views import (
    face_name_examples,
    split_names,
    training_examples,
    view_needs,
    view_split,
)
from clearbench.io import stable_hash, write_json_atomic
from clearbench.methods import build_method
from clearbench.methods.base import FORGET, OTHER_ANSWER, RANDOM_ANSWER, REFUSAL, RETAIN
from clearbench.methods.losses import l1_norm
from clearbench.models.errors import ModelError
from clearbench.models.loading import DTYPES, count_parameters, load_vlm
from clearbench.models.lora import (
    LoraSettings,
    apply_lora,
    enable_gradient_checkpointing,
    freeze_vision_tower,
    lora_parameters,
    scale_lora_delta,
)
from clearbench.models.vlm import VLM
from clearbench.recipes.finetune import WHERE_OR_HOW
from clearbench.recipes.stage import (
    StageFolder,
    data_source,
    model_files_hash,
    model_key,
    trained_as,
)
from clearbench.training.distributed import process_device, process_state
from clearbench.training.loop import (
    DivergedError,
    TrainSettings,
    nonfinite_parameters,
    remove_checkpoint,
    train,
)
from clearbench.training.reference import reference_for

MARKER = "unlearning.json"
ADAPTER = "adapter"
"""The folder of the unmerged LoRA adapter inside a run's output (``save_adapter``)."""
MODALITIES = ("both", "visual", "text")
TRACKS = ("multimodal", "text")
"""``multimodal``: a VLM forgets with the retain set ``retainNN+tofu``; ``text``: the text-only
track, a causal LM (or a VLM on text alone) forgets TOFU ``forgetNN`` and keeps TOFU
``retainNN`` (no image anywhere)."""
SMALL_MODEL_PARAMETERS = 100_000_000


@dataclass(frozen=True)
class UnlearnRecipe:
    lr: float
    epochs: float
    batch_size: int
    grad_accum: int
    weight_decay: float
    warmup_epochs: float
    """Linear warm-up over this many epochs, then linear decay to 0 (the CLEAR authors'
    ``mm/forget.py``)."""
    train_vision_tower: bool
    face_name_rows: bool
    """Forget the face→name prompt on forget images too (the mini vanilla model learned it),
    and retain it on retain images (symmetric data, spec §3)."""
    gradient_checkpointing: bool
    """Recompute activations in the backward pass: less memory, ~30 % more compute."""


RECIPES = {
    # Spec §2: lr 1e-5, 5 epochs over the forget set; one warm-up epoch then linear decay as
    # the authors' mm/forget.py. Batch 4 × 4 accumulation is our choice.
    "paper": UnlearnRecipe(lr=1e-5, epochs=5.0, batch_size=4, grad_accum=4, weight_decay=0.01,
                           warmup_epochs=1.0, train_vision_tower=False, face_name_rows=False,
                           gradient_checkpointing=False),
    # The tiny mini model: the same 5 epochs and schedule (one warm-up epoch, linear decay) at
    # a learning rate large enough to move it.
    "mini": UnlearnRecipe(lr=2e-4, epochs=5.0, batch_size=8, grad_accum=1, weight_decay=0.0,
                          warmup_epochs=1.0, train_vision_tower=True, face_name_rows=True,
                          gradient_checkpointing=False),
}


@settings
class UnlearnConfig:
    model: str
    data: str
    method: str
    out: Path
    forget_split: str = "forget10"
    modality: Annotated[str, one_of(MODALITIES)] = "both"
    track: Annotated[str, one_of(TRACKS)] = "multimodal"
    """``text``: the text-only track (its modality is ``text``, its retain data TOFU's)."""
    options: dict[str, Any] = field(default_factory=dict)
    """The method's hyper-parameters (defaults: the method paper's values)."""
    lora: bool = False
    lora_rank: PositiveInt = 8
    lora_alpha: PositiveInt = 32
    lora_targets: tuple[str, ...] | None = None
    save_adapter: bool = False
    """With LoRA, also save the unmerged adapter (PEFT, safetensors) to OUT/adapter, for the
    precision audit's packagings; the model beside it is merged as always."""
    l1: NonNegativeFloat = 0.0
    """λ of λ·Σ|w| over the LoRA A and B matrices, or over θ − θ₀ without LoRA."""
    recipe: Annotated[str, one_of(("auto", *RECIPES))] = "auto"
    lr: PositiveFloat | None = None
    lr_scale: PositiveFloat = 1.0
    """Multiplies the learning rate (``lr`` or the recipe's): the grid axis of ``clearbench
    tune``, which scales whatever rate a variant runs at."""
    epochs: PositiveFloat | None = None
    batch_size: PositiveInt | None = None
    gradient_checkpointing: bool | None = None
    seed: int = 0
    data_revision: str | None = None
    tofu: str | None = None
    """TOFU hub id or folder (default: locuslab/TOFU for a hub id, DATA/tofu for a folder)."""
    tofu_revision: str | None = None
    model_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"
    checkpoint_every: NonNegativeInt = 0

    def validate(self) -> None:
        split_names(self.forget_split)
        if self.track == "text" and self.modality != "text":
            raise ValueError(f"the text-only track unlearns text alone: modality must be "
                             f"'text', got {self.modality!r}")
        if self.save_adapter and not self.lora:
            raise ValueError("save_adapter keeps the LoRA adapter unmerged: it needs lora")

    def resolved_recipe(self, n_parameters: int) -> tuple[str, UnlearnRecipe]:
        name = self.recipe
        if name == "auto":
            name = "mini" if n_parameters < SMALL_MODEL_PARAMETERS else "paper"
        overrides = {f.name: getattr(self, f.name) for f in fields(UnlearnRecipe)
                     if getattr(self, f.name, None) is not None}
        recipe = replace(RECIPES[name], **overrides)
        return name, replace(recipe, lr=recipe.lr * self.lr_scale)

    def face_names(self, recipe: UnlearnRecipe) -> bool:
        """Whether both pools get face→name rows: the recipe adds them and the forget view has
        images (every modality but text)."""
        return recipe.face_name_rows and self.modality != "text"

    @property
    def retain_view(self) -> str:
        """The retain examples' view: ``retainNN+tofu``, TOFU's ``retainNN`` in the text track."""
        retain = split_names(self.forget_split)[1]
        return f"tofu:{retain}" if self.track == "text" else f"{retain}+tofu"

    def data_needs(self, recipe: UnlearnRecipe) -> list[Need]:
        """Every config the run reads with ``recipe``: the forget and retain views (and their
        face→name rows)."""
        faces = self.face_names(recipe)
        return [*view_needs(forget_view(self.forget_split, self.modality), face_names=faces),
                *view_needs(self.retain_view, face_names=faces)]

    def pools(
        self, source: DataSource, recipe: UnlearnRecipe
    ) -> tuple[list[Example], list[Example]]:
        """The forget and the retain examples, with face→name rows on both sides or neither."""
        faces = self.face_names(recipe)

        def examples(view: str) -> list[Example]:
            return training_examples(source, view) + (
                face_name_examples(source, view) if faces else [])

        return examples(forget_view(self.forget_split, self.modality)), \
            examples(self.retain_view)


def check_starting_model(model: str) -> None:
    """Refuse a model whose clearbench record shows it is not a vanilla model: a base model,
    or a fine-tune that never saw the forget data (a gold model). Models made elsewhere, and
    unlearned models (sequential unlearning), are taken as they are."""
    trained = trained_as(model)
    if trained is None or trained["stage"] == "unlearn" or (
            trained["stage"] == "finetune" and view_split(str(trained["split"])) == "full"):
        return
    what = "a base model" if trained["stage"] == "base" else \
        f"a fine-tune on {trained['split']} (a gold model)"
    raise ValueError(f"--model {model} is {what}; unlearning starts from the vanilla model, "
                     "fine-tuned on full+tofu (tofu:full in the text-only track)")


def forget_view(forget_split: str, modality: str) -> str:
    """Spec §2 step 3: both = forgetNN+tofu, visual = forgetNN, text = TOFU forgetNN."""
    return {"both": f"{forget_split}+tofu", "visual": forget_split,
            "text": f"tofu:{forget_split}"}[modality]


def paired_items(
    forget: list[Example], retain: list[Example], refusals: list[str], seed: int
) -> list[dict[str, Example]]:
    """Each forget item with a random retain item, a refusal, a random retain answer and the
    answer of a random forget item about another person."""
    rng = random.Random(seed)
    items = []
    for example in forget:
        others = [other for other in forget
                  if other is not example and not (example.person
                                                   and other.person == example.person)]
        # A forget set of one person has no other person: any other forget item will do.
        others = others or [other for other in forget if other is not example] or [example]
        items.append({FORGET: example, RETAIN: rng.choice(retain),
                      REFUSAL: answered(example, rng.choice(refusals)),
                      RANDOM_ANSWER: answered(example, rng.choice(retain).answer),
                      OTHER_ANSWER: answered(example, rng.choice(others).answer)})
    return items


def answered(example: Example, answer: str) -> Example:
    """``example``'s prompt and image with another answer."""
    return replace(example, answer=answer)


class Counter:
    """Forward passes through a module (policy and reference alike), via a hook."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        module.register_forward_hook(self._count)

    def _count(self, *_: Any) -> None:
        self.calls += 1


def unlearn(config: UnlearnConfig) -> dict[str, Any]:
    """Run (or resume, or skip if done) one unlearning run; return its record."""
    config.validate()
    check_starting_model(config.model)
    method = build_method(config.method, config.options)
    out = Path(config.out)
    source = data_source(config.data, config.data_revision, config.tofu, config.tofu_revision)
    identity = {
        "config": asdict(config),
        "recipes": {name: asdict(recipe) for name, recipe in RECIPES.items()},
        "method_options": method.options(),
        "model": model_key(config.model, config.model_revision),
        "data": source.fingerprint(),
    }
    for where_or_how in WHERE_OR_HOW:
        identity["config"].pop(where_or_how)
    if not config.save_adapter:  # stages from before the option keep their keys
        identity["config"].pop("save_adapter")
    stage_hash = stable_hash(identity)
    folder = StageFolder(out, MARKER, stage_hash, "unlearned model")
    if folder.done():
        print(f"unlearn: {out} is already done (settings {stage_hash}); nothing to do")
        return identity

    recipe_name, recipe = config.resolved_recipe(
        count_parameters(config.model, revision=config.model_revision))
    preflight(source, config.data_needs(recipe))  # bad data fails before the model loads
    view = forget_view(config.forget_split, config.modality)
    forget, retain = config.pools(source, recipe)

    started = time.perf_counter()
    state = process_state(config.device)  # data-parallel under a multi-process launch
    if state.is_main_process:
        folder.begin()
    state.wait_for_everyone()
    work = folder.partial
    vlm = load_vlm(config.model, revision=config.model_revision, dtype=config.dtype,
                   device=process_device(config.device, state))
    if not vlm.takes_images and config.track != "text":
        raise ModelError(f"--model {config.model} is a text-only language model: unlearn it "
                         "in the text-only track (--track text, --modality text)")
    items = paired_items(forget, retain, load_refusals(), config.seed)
    if not recipe.train_vision_tower:
        freeze_vision_tower(vlm)
    if config.lora:
        torch.manual_seed(config.seed)  # the adapters' random initialisation
        apply_lora(vlm, LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha,
                                     target_modules=config.lora_targets))
    if recipe.gradient_checkpointing:
        enable_gradient_checkpointing(vlm)
    trainable = [p for p in vlm.model.parameters() if p.requires_grad]
    # θ₀'s trainable weights, kept only where needed: ℓ1 on θ − θ₀ or SKU's negation without LoRA.
    keep_initial = not config.lora and (config.l1 > 0 or method.negates_task_vector)
    initial = [p.detach().clone() for p in trainable] if keep_initial else []
    reference = reference_for(vlm.model) if method.needs_reference else None
    forwards = [Counter(vlm.model)] + ([Counter(reference.model)]
                                       if reference is not None and reference.model is not vlm.model
                                       else [])

    def loss_fn(model: torch.nn.Module, batches: dict, micro_batch: int) -> torch.Tensor:
        # Methods see optimiser steps: all micro-batches of one step take the same kind of
        # step (SCRUB's max/min alternation must not mix within an accumulated gradient).
        loss = method.loss(model, batches, reference, micro_batch // recipe.grad_accum)
        if config.l1:
            penalised = (lora_parameters(vlm) if config.lora
                         else [p - p0 for p, p0 in zip(trainable, initial, strict=True)])
            loss = loss + config.l1 * l1_norm(penalised)
        return loss

    def collate(batch_items: list[dict[str, Example]]) -> dict[str, dict[str, torch.Tensor]]:
        return {kind: vlm.encode([item[kind] for item in batch_items]) for kind in method.batches}

    # Steps count global batches: every process takes batch_size items per micro-batch.
    batches_per_epoch = -(-len(items) // (recipe.batch_size * state.num_processes))
    settings = TrainSettings(epochs=recipe.epochs, batch_size=recipe.batch_size,
                             grad_accum=recipe.grad_accum, lr=recipe.lr,
                             weight_decay=recipe.weight_decay, schedule="linear",
                             warmup_steps=round(recipe.warmup_epochs * batches_per_epoch
                                                / recipe.grad_accum),
                             seed=config.seed, checkpoint_every=config.checkpoint_every)
    method.prepare(batches_per_epoch / recipe.grad_accum)
    record = {**identity, "settings_hash": stage_hash,
              "read": {"model": config.model, "data": config.data}, "recipe": recipe_name,
              "recipe_settings": asdict(recipe), "train_settings": asdict(settings),
              "forget_view": view, "forget_items": len(items), "retain_pool": len(retain)}
    try:
        # Defaults measured on θ₀ (RMU's steering coefficient), on the first batch of items.
        calibration = method.calibrate(vlm.model, collate(items[:recipe.batch_size]), reference)
        result = train(vlm.model, items, collate, loss_fn, settings, work,
                       description=f"unlearn {method.name} ({config.modality})",
                       fingerprint=stage_hash)
    except DivergedError as diverged:
        return finish_diverged(folder, record | {
            "diverged_at_step": diverged.step, "diverged": str(diverged),
            "cost": cost(started, diverged.step * settings.grad_accum, forwards, trainable)
            | {"optimiser_steps": diverged.step}}, state)
    method.finish(lambda scale: negate(vlm, config.lora, trainable, initial, scale))
    record |= {"losses": result.losses, "method_calibration": calibration,
               "cost": cost(started, result.steps * settings.grad_accum, forwards, trainable)
               | {"optimiser_steps": result.steps, "training_seconds": result.seconds}}
    nonfinite = nonfinite_parameters(vlm.model)
    if nonfinite:  # the loss exploded without becoming NaN
        return finish_diverged(folder, record | {
            "diverged": f"{len(nonfinite)} weight tensors hold NaN or inf after training "
                        f"(first: {nonfinite[0]})"}, state)
    if not state.is_main_process:  # other processes of a multi-process launch are done
        state.wait_for_everyone()
        return record
    if config.save_adapter:
        vlm.save(work / ADAPTER, merge_lora=False)
    vlm.save(work, merge_lora=True)
    write_json_atomic(work / MARKER,
                      record | {"status": "ok", "model_hash": model_files_hash(work)})
    folder.commit()
    remove_checkpoint(out)
    state.wait_for_everyone()
    return record | {"status": "ok"}


def finish_diverged(folder: StageFolder, record: dict[str, Any],
                    state: PartialState) -> dict[str, Any]:
    """Record a diverged run (no model is saved: there is nothing to evaluate); the run goes
    on with the other stages."""
    record |= {"status": "diverged"}
    state.wait_for_everyone()
    if state.is_main_process:
        remove_checkpoint(folder.partial)
        write_json_atomic(folder.partial / MARKER, record)
        folder.commit()
        print(f"unlearn: diverged: {record['diverged']}")
    state.wait_for_everyone()
    return record


def negate(
    vlm: VLM, lora: bool, trainable: list[torch.nn.Parameter], initial: list[torch.Tensor],
    scale: float,
) -> None:
    """θ ← θ₀ − s·(θ − θ₀). With LoRA, θ − θ₀ = B·A·(α/r), so B ← −s·B is exact."""
    if lora:
        scale_lora_delta(vlm, -scale)
        return
    with torch.no_grad():
        for parameter, before in zip(trainable, initial, strict=True):
            parameter.copy_(before - scale * (parameter - before))


def cost(
    started: float, backward_passes: int, forwards: list[Counter],
    trainable: list[torch.nn.Parameter],
) -> dict[str, Any]:
    """Wall seconds (model load to end), passes, peak memory (GPU if used, else the process's
    peak resident memory) and trainable parameters."""
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    if torch.cuda.is_available():
        peak_gb = torch.cuda.max_memory_allocated() / 1024**3
    return {"seconds": time.perf_counter() - started, "backward_passes": backward_passes,
            "forward_passes": sum(c.calls for c in forwards),
            "peak_memory_gb": peak_gb,
            "trainable_parameters": sum(p.numel() for p in trainable)}
