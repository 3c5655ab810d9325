"""LoRA on the language model of a VLM, and freezing its vision tower.

Model-agnostic: the vision tower and the multimodal projector are found by module name
(LLaVA: ``vision_tower`` and ``multi_modal_projector``; Qwen2-VL: ``visual``, whose ``merger``
is its projector), the output head as the model's output embeddings. A text-only causal LM
(no ``vision_config``) has neither: LoRA adapts every linear layer but the output head, and
there is no tower to freeze.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from clearbench.models.errors import ModelError

if TYPE_CHECKING:
    from clearbench.models.vlm import VLM

VISION_TOWER_NAMES = ("vision_tower", "visual")
PROJECTOR_NAMES = ("multi_modal_projector", "merger")


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (paper recipe: r=8, α=32 on every language-model linear layer)."""

    rank: int = 8
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] | None = None
    """Last names of the language model's linear layers to adapt (e.g. ``["q_proj", "v_proj"]``);
    ``None``: all of them. The vision tower, projector and ``lm_head`` are never adapted."""


def _module_names(model: torch.nn.Module, leaf_names: tuple[str, ...]) -> list[str]:
    return [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] in leaf_names]


def _vision_tower_names(model: torch.nn.Module) -> list[str]:
    """The vision tower's module names; none for a text-only model, ModelError for a VLM
    whose tower goes by another name."""
    names = _module_names(model, VISION_TOWER_NAMES)
    if not names and getattr(model.config, "vision_config", None) is not None:
        raise ModelError(
            f"cannot find the vision tower of {type(model).__name__}: no module named "
            f"{' or '.join(VISION_TOWER_NAMES)}"
        )
    return names


def _inside(name: str, prefixes: list[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def language_model_linears(model: torch.nn.Module) -> list[str]:
    """Names of every linear layer outside the vision tower, the projector and the output head."""
    excluded = _vision_tower_names(model) + _module_names(model, PROJECTOR_NAMES)
    head = model.get_output_embeddings()
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and module is not head
        and not _inside(name, excluded)
    ]


def apply_lora(vlm: VLM, settings: LoraSettings) -> None:
    """Wrap ``vlm.model`` in a PEFT LoRA model; only the adapters stay trainable."""
    if isinstance(vlm.model, PeftModel):
        raise ModelError("the model already has LoRA adapters; merge them first")
    targets = [
        name
        for name in language_model_linears(vlm.model)
        if settings.target_modules is None or name.rsplit(".", 1)[-1] in settings.target_modules
    ]
    if not targets:
        raise ModelError(
            f"no linear layer of the language model is named any of {settings.target_modules}"
        )
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        bias="none",
    )
    vlm.model = get_peft_model(vlm.model, config)


def lora_parameters(vlm: VLM) -> list[torch.nn.Parameter]:
    """The LoRA A and B matrices (empty without LoRA), e.g. for an ℓ1 penalty."""
    return [
        parameter
        for name, parameter in vlm.model.named_parameters()
        if ".lora_A." in name or ".lora_B." in name
    ]


def scale_lora_delta(vlm: VLM, factor: float) -> None:
    """Multiply every adapter's weight change B·A·(α/r) by ``factor`` (by scaling B)."""
    with torch.no_grad():
        for name, parameter in vlm.model.named_parameters():
            if ".lora_B." in name:
                parameter.mul_(factor)


def merge_lora(vlm: VLM) -> None:
    """Fold the LoRA adapters into the base weights and drop the PEFT wrapper (no-op without)."""
    if isinstance(vlm.model, PeftModel):
        vlm.model = vlm.model.merge_and_unload()


def load_adapter(vlm: VLM, path: str | Path) -> None:
    """Put the PEFT LoRA adapter saved in ``path`` on ``vlm.model``, unmerged, for inference."""
    if isinstance(vlm.model, PeftModel):
        raise ModelError("the model already has LoRA adapters; merge them first")
    if not (Path(path) / "adapter_config.json").is_file():
        raise ModelError(f"{path} holds no PEFT adapter (no adapter_config.json)")
    vlm.model = PeftModel.from_pretrained(vlm.model, str(path))


def enable_gradient_checkpointing(vlm: VLM) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them
    (non-reentrant, so frozen inputs and LoRA adapters need no extra hooks)."""
    vlm.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def freeze_vision_tower(vlm: VLM) -> None:
    """Stop gradients to the vision tower; the multimodal projector stays trainable. No-op on
    a text-only model.

    Qwen2-VL's projector (``visual.merger``) sits inside its vision module and is kept
    trainable like LLaVA's ``multi_modal_projector``, so both families train the same parts.
    """
    towers = _vision_tower_names(vlm.model)
    projectors = _module_names(vlm.model, PROJECTOR_NAMES)
    for name, parameter in vlm.model.named_parameters():
        if _inside(name, towers) and not _inside(name, projectors):
            parameter.requires_grad_(False)
