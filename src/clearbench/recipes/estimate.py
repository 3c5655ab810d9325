"""``clearbench run --dry-run``: a run's plan with data sizes, optimiser steps and memory
estimates, without loading any weights.

Model sizes come from the model's config on the meta device (local folders, the tiny base) or
from a table of the hub models the paper uses. Data sizes are counted in the data the run's
preflight loaded; a run that synthesises CLEAR-mini takes them from its synthesis settings.
Without data at hand they are spec §1.1's (``therem/CLEAR``).

Peak memory of a training stage (bytes), documented in ``docs/gpu.md``:
    weights          P · w                       (w = 2 for bf16/fp16, 4 for fp32)
  + trainable        T · 16 (LoRA adapters in fp32: weight, gradient, two Adam moments)
                     or T · (w + 8 + 4·[w = 2]) for full parameters (gradient, Adam moments,
                     fp32 master copy under mixed precision)
  + θ₀ copy          P · w, only for a method that needs θ₀ without LoRA
  + activations      n_b · B · S · (34 · H · L · w/2 + 8 · V)   (Korthikanti et al. 2022, no
                     recomputation, memory-efficient attention; fp32 logits and their gradient)
with B the micro-batch, S the sequence (image tokens + text), H and L the decoder's width and
depth, V the vocabulary and n_b the batches a step back-propagates through (forget, retain).
With gradient checkpointing L becomes L·2/34 + 1 (each layer's input, one layer's
activations).
Evaluation: weights + one batch of activations without gradients. Expect ±30 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clearbench.data.preflight import Need
from clearbench.data.schema import FORGET_SPLITS, VALIDATION_SPLITS, DataError
from clearbench.data.views import is_text_view
from clearbench.methods import build_method
from clearbench.models.tiny import TEXT_ARCHS

if TYPE_CHECKING:
    import datasets

    from clearbench.recipes.runconfig import RunConfig
    from clearbench.recipes.runplan import Plan, Stage

TEXT_TOKENS = 96
"""Text tokens of a typical training example (prompt, caption or QA answer, template)."""
GB = 1024**3


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    vision_parameters: int
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    image_tokens: int


# Public model cards / configs of the checkpoints the paper and the authors' code use.
KNOWN_MODELS = {
    "llava-hf/llava-1.5-7b-hf": ModelShape(7_063_427_072, 303_507_456, 4096, 32, 11008,
                                           32064, 576),
    "Qwen/Qwen2-VL-2B-Instruct": ModelShape(2_208_985_600, 675_295_232, 1536, 28, 8960,
                                            151936, 256),
    "Qwen/Qwen2.5-VL-3B-Instruct": ModelShape(3_754_622_976, 668_707_328, 2048, 36, 11008,
                                              151936, 256),
    # The text-only track's causal LMs: no vision tower, no image tokens.
    "meta-llama/Llama-2-7b-chat-hf": ModelShape(6_738_415_616, 0, 4096, 32, 11008, 32000, 0),
    "locuslab/tofu_ft_llama2-7b": ModelShape(6_738_415_616, 0, 4096, 32, 11008, 32000, 0),
    "mistralai/Mistral-7B-Instruct-v0.3": ModelShape(7_248_023_552, 0, 4096, 32, 14336, 32768,
                                                     0),
}

# Spec §1.1: 200 persons, 3,768 images, 20 QA each; forget 1/5/10 % = 2/10/20 persons.
CLEAR_PERSONS, CLEAR_IMAGES, CLEAR_QA_PER_PERSON = 200, 3768, 20


def shape_from_config(config: object, vocab: int | None = None) -> ModelShape:
    """Parameter counts of an HF image-text-to-text (or causal LM) config, by building it on
    the meta device."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    images = hasattr(config, "vision_config")
    with torch.device("meta"):
        model = (AutoModelForImageTextToText if images else AutoModelForCausalLM).from_config(
            config)
    parameters = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for name, p in model.named_parameters()
                 if "vision_tower" in name or ".visual." in name or name.startswith("visual."))
    text = config.get_text_config()
    image_tokens = (getattr(config, "image_seq_length", None) or 64) if images else 0
    return ModelShape(parameters, vision, text.hidden_size, text.num_hidden_layers,
                      text.intermediate_size, vocab or text.vocab_size, image_tokens)


def track_names(config: RunConfig) -> list[str]:
    """The tracks with models of their own a run has: ``multimodal``, ``text``."""
    return ["multimodal"] * config.multimodal + ["text"] * (config.text is not None)


def run_shapes(the_plan: Plan) -> dict[str, ModelShape]:
    """The base model's shape of each track the run has."""
    return {track: model_shape(the_plan, track) for track in track_names(the_plan.config)}


def stage_track(stage: Stage) -> str:
    """The track whose model a stage trains or reads: ``text`` or ``multimodal``."""
    settings = stage.args[0] if stage.args else None
    text = ((stage.kind == "base" and settings.arch in TEXT_ARCHS)
            or (stage.kind == "finetune" and is_text_view(settings.split))
            or (stage.kind == "unlearn" and settings.track == "text"))
    return "text" if text else "multimodal"


def model_shape(the_plan: Plan, track: str = "multimodal") -> ModelShape:
    """The shape of a track's base model: the tiny one the run builds, a local folder's or a
    known hub model's (a dry run downloads nothing)."""
    config = the_plan.config
    base, model = (config.text.base, config.text.model) if track == "text" else \
        (config.base, config.model)
    if base is not None:
        from clearbench.models.tiny import TinyVLMConfig, tiny_hf_config

        tiny = TinyVLMConfig(**{**vars(base.get("model", TinyVLMConfig())),
                                "arch": base.get("arch", "llava")})
        ids = dict.fromkeys(("bos_token_id", "eos_token_id", "pad_token_id", "image_token_id",
                             "video_token_id", "vision_start_token_id",
                             "vision_end_token_id"), 0)
        return shape_from_config(tiny_hf_config(tiny, tiny.vocab_size, ids))
    model = str(model)
    if (Path(model) / "config.json").is_file():
        from transformers import AutoConfig

        return shape_from_config(AutoConfig.from_pretrained(model))
    if model in KNOWN_MODELS:
        return KNOWN_MODELS[model]
    raise ValueError(f"--dry-run cannot size model {model!r} without downloading it: use a "
                     f"local folder or one of {', '.join(KNOWN_MODELS)}")


@dataclass(frozen=True)
class DataSizes:
    persons: int
    images: int
    qa_per_person: int
    """QA rows (of ``full+tofu``) per person: facts times their wordings."""
    splits: dict[str, tuple[int, int]] | None = None
    """(image rows, QA rows) of ``full``, ``forgetNN`` and ``retainNN`` (and ``forget_val``,
    ``retain_val``) where they are known exactly (CLEAR-mini, whose persons have unequal
    sizes); else proportional to persons."""
    views: dict[str, tuple[int, int]] | None = None
    """(image rows, QA rows) of training views counted in the data (they take precedence)."""

    def forget_persons(self, split: str) -> int:
        return max(1, round(int(split[-2:]) / 100 * self.persons))

    def view(self, name: str) -> tuple[int, int]:
        """(image rows, QA rows) of a training view (``full+tofu``, ``forget10``, ...)."""
        if self.views is not None and name in self.views:
            return self.views[name]
        base = name.removeprefix("tofu:").removesuffix("+tofu")
        if self.splits is not None:
            if base not in self.splits:
                raise DataError(f"no sizes of split {base!r}: the data have no such split")
            images, qa = self.splits[base]
        elif base in (*VALIDATION_SPLITS, *VALIDATION_SPLITS.values()):
            raise DataError(f"no sizes of split {base!r} without its data (only CLEAR-mini "
                            "with validation persons has it)")
        else:
            persons = self.persons
            if base.startswith("forget"):
                persons = self.forget_persons(base)
            elif base.startswith("retain"):
                persons = self.persons - self.forget_persons(
                    "forget" + str(100 - int(base[-2:])))
            images = round(self.images * persons / self.persons)
            qa = persons * self.qa_per_person
        if name.startswith("tofu:"):
            return 0, qa
        return images, qa if name.endswith("+tofu") else 0


def data_sizes(the_plan: Plan, loaded: dict[Need, datasets.Dataset] | None = None) -> DataSizes:
    """The run's data sizes: from its synthesis settings, counted in the configs its preflight
    ``loaded`` (which include ``full``), or else spec §1.1's."""
    config = the_plan.config
    if config.synth is not None:
        synth = config.synth
        splits = ["full", *FORGET_SPLITS, *FORGET_SPLITS.values()]
        if synth.validation_persons:
            splits += [*VALIDATION_SPLITS, *VALIDATION_SPLITS.values()]
        rows = {split: synth.training_rows(split) for split in splits}
        return DataSizes(synth.persons, rows["full"][0], round(rows["full"][1] / synth.persons),
                         rows)
    if loaded is None:
        return DataSizes(CLEAR_PERSONS, CLEAR_IMAGES, CLEAR_QA_PER_PERSON)
    views = {}
    for need, dataset in loaded.items():
        if need.dataset == "tofu":
            views[f"tofu:{need.config}"] = (0, len(dataset))
        elif need.config.endswith("+tofu"):  # image rows, then QA rows without an image
            images = len(dataset) - dataset.data.column("image").null_count
            views[need.config] = (images, len(dataset) - images)
        else:
            views[need.config] = (len(dataset), 0)
    full = loaded[Need("clear", "full")]
    persons = len(set(full["name"]))
    images, qa = views.get("full+tofu", (len(full), 0))
    return DataSizes(persons, images, round(qa / persons), views=views)


def lora_parameters(shape: ModelShape, rank: int) -> int:
    """LoRA on every linear layer of the decoder: q, k, v, o (H→H) and gate, up, down (H↔I)."""
    per_layer = 4 * rank * 2 * shape.hidden + 3 * rank * (shape.hidden + shape.intermediate)
    return shape.layers * per_layer


def training_memory(shape: ModelShape, *, width: int, lora: bool, lora_rank: int,
                    train_vision: bool, reference_copy: bool, batch: int, batches: int,
                    checkpointing: bool = False) -> float:
    """Peak training memory in GB (see the module docstring for the formula)."""
    if lora:
        trainable = lora_parameters(shape, lora_rank)
        per_trainable = 16
    else:
        trainable = shape.parameters - (0 if train_vision else shape.vision_parameters)
        per_trainable = width + 8 + (4 if width == 2 else 0)
    sequence = shape.image_tokens + TEXT_TOKENS
    # With gradient checkpointing only each layer's input is kept, plus one layer's activations.
    kept_layers = shape.layers * (2 / 34) + 1 if checkpointing else shape.layers
    activations = batches * batch * sequence * (
        34 * shape.hidden * kept_layers * width / 2 + 8 * shape.vocab)
    total = (shape.parameters * width + trainable * per_trainable
             + (shape.parameters * width if reference_copy else 0) + activations)
    return total / GB


def evaluation_memory(shape: ModelShape, *, width: int, batch: int) -> float:
    sequence = shape.image_tokens + TEXT_TOKENS
    activations = batch * sequence * (4 * shape.hidden * shape.layers * width
                                      + 4 * shape.vocab)
    return (shape.parameters * width + activations) / GB


def _width(dtype: str, device: str) -> int:
    if dtype in ("float32", "fp32") or (dtype == "auto" and device == "cpu"):
        return 4
    return 2


def estimate(stage: Stage, shape: ModelShape | None,
             sizes: DataSizes) -> tuple[str, str, str]:
    """(examples, optimiser steps, peak memory) of one stage, as printable strings (none
    without the shape of its track's model)."""
    config = stage.args[0] if stage.args else None
    if shape is None:
        return "", "", ""
    if stage.kind == "finetune":
        _, recipe = config.resolved_recipe(shape.parameters)
        images, qa = sizes.view(config.split)
        examples = images * (1 + recipe.face_name_repeats) + qa
        steps = math.ceil(examples / recipe.batch_size / recipe.grad_accum) * recipe.epochs
        memory = training_memory(shape, width=_width(config.dtype, config.device),
                                 lora=recipe.lora, lora_rank=recipe.lora_rank,
                                 train_vision=recipe.train_vision_tower, reference_copy=False,
                                 batch=recipe.batch_size, batches=1,
                                 checkpointing=recipe.gradient_checkpointing)
        return str(examples), f"{steps:.0f}", f"{memory:.2f}"
    if stage.kind == "unlearn":
        from clearbench.recipes.unlearn import forget_view

        _, recipe = config.resolved_recipe(shape.parameters)
        method = build_method(config.method, config.options)
        images, qa = sizes.view(forget_view(config.forget_split, config.modality))
        examples = images * (2 if recipe.face_name_rows else 1) + qa
        steps = math.ceil(examples / recipe.batch_size / recipe.grad_accum) * recipe.epochs
        memory = training_memory(shape, width=_width(config.dtype, config.device),
                                 lora=config.lora, lora_rank=config.lora_rank,
                                 train_vision=recipe.train_vision_tower,
                                 reference_copy=method.needs_reference and not config.lora,
                                 batch=recipe.batch_size, batches=len(method.batches),
                                 checkpointing=recipe.gradient_checkpointing)
        return str(examples), f"{steps:.0f}", f"{memory:.2f}"
    if stage.kind == "eval":
        memory = evaluation_memory(shape, width=_width(config.dtype, config.device),
                                   batch=config.batch_size)
        return "all rows", "–", f"{memory:.2f}"
    return "", "", ""


def describe(the_plan: Plan, loaded: dict[Need, datasets.Dataset] | None = None) -> str:
    """The printable plan of ``clearbench run --dry-run``, sized by the data its preflight
    ``loaded`` (None: synthesised by the run)."""
    shapes = run_shapes(the_plan)
    sizes = data_sizes(the_plan, loaded)
    config = the_plan.config
    models = {"multimodal": config.model or "tiny VLM built by the run"}
    if config.text is not None:
        models["text"] = config.text.model or "tiny LM built by the run"
    lines = [
        f"plan of {config.path} -> {the_plan.run_dir}: {len(the_plan.stages)} stages",
        f"data: {the_plan.data} — {sizes.persons} persons, {sizes.images} images, "
        f"{sizes.qa_per_person} QA per person",
        *(f"model ({track}): {models[track]} — {shape.parameters / 1e6:,.1f} M parameters "
          f"({shape.vision_parameters / 1e6:,.1f} M vision), decoder {shape.layers} × "
          f"{shape.hidden}, {shape.image_tokens} image tokens"
          for track, shape in shapes.items()),
        "",
        f"{'#':>3}  {'stage':58} {'examples':>9} {'steps':>7} {'peak GB':>8}",
    ]
    for index, stage in enumerate(the_plan.stages, start=1):
        examples, steps, memory = estimate(stage, shapes.get(stage_track(stage)), sizes)
        lines.append(f"{index:3d}  {stage.name[:58]:58} {examples:>9} {steps:>7} {memory:>8}")
    return "\n".join(lines)
