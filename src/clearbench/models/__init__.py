"""Models: loading, chat formats, batching, generation, LoRA and the tiny offline VLMs."""

from clearbench.models.errors import ModelError
from clearbench.models.formats import ChatFormat, LlavaFormat, QwenVLFormat, chat_format_for
from clearbench.models.loading import load_vlm
from clearbench.models.lora import (
    LoraSettings,
    apply_lora,
    enable_gradient_checkpointing,
    freeze_vision_tower,
    lora_parameters,
    merge_lora,
)
from clearbench.models.tiny import TinyVLMConfig, build_tiny_vlm, train_tokenizer
from clearbench.models.vlm import VLM

__all__ = [
    "VLM",
    "ChatFormat",
    "LlavaFormat",
    "LoraSettings",
    "ModelError",
    "QwenVLFormat",
    "TinyVLMConfig",
    "apply_lora",
    "build_tiny_vlm",
    "chat_format_for",
    "enable_gradient_checkpointing",
    "freeze_vision_tower",
    "load_vlm",
    "lora_parameters",
    "merge_lora",
    "train_tokenizer",
]
