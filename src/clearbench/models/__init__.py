"""Models: loading, chat formats, batching, generation, LoRA and the tiny offline VLMs and
text-only LMs."""

from clearbench.models.errors import ModelError
from clearbench.models.formats import (
    ChatFormat,
    LlavaFormat,
    QwenVLFormat,
    TextFormat,
    chat_format_for,
)
from clearbench.models.loading import is_text_model, load_vlm
from clearbench.models.lora import (
    LoraSettings,
    apply_lora,
    enable_gradient_checkpointing,
    freeze_vision_tower,
    lora_parameters,
    merge_lora,
)
from clearbench.models.tiny import TEXT_ARCHS, TinyVLMConfig, build_tiny_vlm, train_tokenizer
from clearbench.models.vlm import VLM

__all__ = [
    "TEXT_ARCHS",
    "VLM",
    "ChatFormat",
    "LlavaFormat",
    "LoraSettings",
    "ModelError",
    "QwenVLFormat",
    "TextFormat",
    "TinyVLMConfig",
    "apply_lora",
    "build_tiny_vlm",
    "chat_format_for",
    "enable_gradient_checkpointing",
    "freeze_vision_tower",
    "is_text_model",
    "load_vlm",
    "lora_parameters",
    "merge_lora",
    "train_tokenizer",
]
