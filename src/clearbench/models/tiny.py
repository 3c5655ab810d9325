"""Tiny randomly initialised VLMs and text-only LMs, built offline, for the mini benchmark and
the tests.

They are ordinary Hugging Face models of the real families (LLaVA: CLIP tower + Llama decoder;
Qwen2-VL; text-only: a Llama causal LM with Llama-2's chat template), so ``VLM.save`` and
``load_vlm`` treat them like hub checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
)

from clearbench.config import PositiveInt, one_of, settings
from clearbench.models.formats import ChatFormat, LlavaFormat, QwenVLFormat, TextFormat
from clearbench.models.vlm import VLM

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
VIDEO_PAD = "<|video_pad|>"
"""Never written, but Qwen2-VL's config needs a video token id."""
TEXT_ARCHS = ("llama",)
"""Text-only architectures: causal LMs without a vision tower."""
ARCHS = ("llava", "qwen2_vl", *TEXT_ARCHS)
LLAMA2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'].strip() + ' ' + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
)
"""Llama-2-chat's template without its system-prompt branch: the text-only tiny LM's, from
which :meth:`TextFormat.from_model` reads :meth:`TextFormat.llama2`."""


@settings
class TinyVLMConfig:
    """Sizes of a tiny VLM or text-only LM (defaults: 1.8 M parameters, trains on CPU; the
    vision sizes are unused by a text-only arch).

    The defaults were chosen for time on 2 CPU cores: a decoder of width 128 costs ~3× less
    per example than one of width 256 and memorised CLEAR-mini in fewer epochs; a vision tower
    of width 128 rather than 64 costs 2 % more per step and names faces far better after the
    same fine-tuning (measured).
    """

    arch: Annotated[str, one_of(ARCHS)] = "llava"
    """``llava``, ``qwen2_vl`` or ``llama`` (text-only)."""
    image_size: PositiveInt = 32
    patch_size: PositiveInt = 8
    vision_hidden: PositiveInt = 128
    vision_layers: PositiveInt = 2
    vision_heads: PositiveInt = 4
    text_hidden: PositiveInt = 128
    text_layers: PositiveInt = 4
    text_heads: PositiveInt = 4
    text_intermediate: PositiveInt = 512
    vocab_size: PositiveInt = 2000
    max_positions: PositiveInt = 512


def _chat_format(config: TinyVLMConfig) -> ChatFormat:
    """The chat format of a tiny model of ``config.arch``."""
    if config.arch == "llava":
        return LlavaFormat(end_token=EOS, patch_size=config.patch_size)
    if config.arch == "qwen2_vl":
        return QwenVLFormat(merge_size=2)
    if config.arch == "llama":
        return TextFormat.llama2(EOS)
    raise ValueError(f"unknown tiny VLM arch {config.arch!r}; choose one of {', '.join(ARCHS)}")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, arch: str = "llava"
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``, with the special tokens of ``arch``.

    Specials: ``<pad>``, ``<s>``, ``</s>``, ``<unk>`` and the chat format's tokens (LLaVA's
    ``<image>``; ChatML and vision tokens for Qwen2-VL; none more for a text-only arch, whose
    tokenizer carries :data:`LLAMA2_CHAT_TEMPLATE`). No bos is added automatically: the chat
    format decides.
    """
    chat_format = _chat_format(TinyVLMConfig(arch=arch))
    family_tokens = [t for t in chat_format.special_tokens if t not in (PAD, BOS, EOS, UNK)]
    if arch == "qwen2_vl":
        family_tokens.append(VIDEO_PAD)
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK, *family_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        extra_special_tokens=(
            {} if chat_format.image_token is None else {"image_token": chat_format.image_token}
        ),
    )
    if arch in TEXT_ARCHS:
        fast.chat_template = LLAMA2_CHAT_TEMPLATE
    return fast


def build_tiny_vlm(config: TinyVLMConfig, texts: Iterable[str], *, seed: int = 0) -> VLM:
    """A randomly initialised tiny VLM or text-only LM whose tokenizer is trained on ``texts``.

    Deterministic for a given ``seed`` and corpus. Each text is wrapped in the chat template
    for tokenizer training, so the template's words get tokens of their own.
    """
    chat_format = _chat_format(config)
    corpus = (chat_format.prompt(text, 0) for text in texts)
    tokenizer = train_tokenizer(corpus, config.vocab_size, arch=config.arch)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if config.arch not in TEXT_ARCHS:
        ids |= {
            "image_token_id": tokenizer.convert_tokens_to_ids(chat_format.image_token),
            "video_token_id": tokenizer.convert_tokens_to_ids(VIDEO_PAD),
            "vision_start_token_id": tokenizer.convert_tokens_to_ids(QwenVLFormat.VISION_START),
            "vision_end_token_id": tokenizer.convert_tokens_to_ids(QwenVLFormat.VISION_END),
        }
    torch.manual_seed(seed)
    hf_config = tiny_hf_config(config, len(tokenizer), ids)
    if config.arch in TEXT_ARCHS:
        model = LlamaForCausalLM(hf_config)
        image_processor = processor = None
    elif config.arch == "llava":
        model = LlavaForConditionalGeneration(hf_config)
        image_processor = CLIPImageProcessorPil(
            size={"shortest_edge": config.image_size},
            crop_size={"height": config.image_size, "width": config.image_size},
        )
        processor = LlavaProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=config.patch_size,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
        )
    else:
        model = Qwen2VLForConditionalGeneration(hf_config)
        # A fixed pixel budget: a square image becomes image_size/patch_size patches a side.
        image_processor = Qwen2VLImageProcessorPil(
            patch_size=config.patch_size,
            temporal_patch_size=2,
            merge_size=chat_format.merge_size,
            min_pixels=config.image_size**2,
            max_pixels=config.image_size**2,
        )
        processor = None  # Qwen2VLProcessor needs torchvision (see loading._load_processor)
    vlm = VLM(model.eval(), tokenizer, image_processor, chat_format, processor)
    model.generation_config = GenerationConfig(
        bos_token_id=vlm.tokenizer.bos_token_id,
        eos_token_id=vlm.stop_token_ids,
        pad_token_id=vlm.pad_token_id,
    )
    return vlm


def tiny_hf_config(
    config: TinyVLMConfig, vocab_size: int, ids: dict[str, int]
) -> LlavaConfig | Qwen2VLConfig | LlamaConfig:
    """The Hugging Face config of a tiny model; ``ids`` holds the special token ids (bos, eos,
    pad; for a VLM also image; for Qwen2-VL also video, vision start and end)."""
    text = {
        "vocab_size": vocab_size,
        "hidden_size": config.text_hidden,
        "intermediate_size": config.text_intermediate,
        "num_hidden_layers": config.text_layers,
        "num_attention_heads": config.text_heads,
        "num_key_value_heads": config.text_heads,
        "max_position_embeddings": config.max_positions,
        "tie_word_embeddings": True,
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
    }
    if config.arch in TEXT_ARCHS:
        return LlamaConfig(**text)
    if config.arch == "llava":
        return LlavaConfig(
            vision_config=CLIPVisionConfig(
                hidden_size=config.vision_hidden,
                intermediate_size=4 * config.vision_hidden,
                num_hidden_layers=config.vision_layers,
                num_attention_heads=config.vision_heads,
                image_size=config.image_size,
                patch_size=config.patch_size,
            ),
            text_config=LlamaConfig(**text),
            image_token_index=ids["image_token_id"],
            image_seq_length=(config.image_size // config.patch_size) ** 2,
            # The last layer, not LLaVA's -2: with two layers -2 would leave one unused.
            vision_feature_layer=-1,
            tie_word_embeddings=True,
        )
    head_dim = config.text_hidden // config.text_heads
    # Multimodal RoPE splits the head's frequencies between time, height and width.
    mrope_section = [head_dim // 8, 3 * head_dim // 16, head_dim // 2 - 5 * head_dim // 16]
    return Qwen2VLConfig(
        vision_config={
            "depth": config.vision_layers,
            "embed_dim": config.vision_hidden,
            "hidden_size": config.text_hidden,
            "num_heads": config.vision_heads,
            "patch_size": config.patch_size,
            "spatial_merge_size": _chat_format(config).merge_size,
            "temporal_patch_size": 2,
        },
        text_config={
            **text,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": mrope_section,
            },
        },
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        tie_word_embeddings=True,
    )
