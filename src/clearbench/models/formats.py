"""Per-family chat formats: how a prompt, its image and an answer become text.

Prompt and answer are tokenised *separately* and the ids concatenated, never tokenised as one
string. Only then is the prompt/answer border exact: no token can straddle it (a BPE merge of
``"ASSISTANT:"`` with the answer's first characters, say), so answer-only labels mask exactly
the prompt and the summed answer log-likelihood covers exactly the answer.

Border convention: the prompt text runs up to and including the template's separator before the
reply (``" ASSISTANT:"`` for LLaVA-1.5, ``"<|im_start|>assistant\\n"`` for ChatML); whitespace
that leads the reply (LLaVA's single space) belongs to the answer. The answer is followed by the
family's end token (LLaVA: the tokenizer's eos, ChatML: ``<|im_end|>``), which is trained on
and stops generation.

Text-only causal LMs have a :class:`TextFormat`, read from the tokenizer's chat template.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jinja2 import TemplateError

from clearbench.models.errors import ModelError


class ChatFormat(ABC):
    """Text template of one model family; :class:`~clearbench.models.vlm.VLM` tokenises it."""

    model_types: ClassVar[tuple[str, ...]]
    """``config.model_type`` values this format serves."""
    add_bos: bool
    """Whether a prompt starts with the tokenizer's bos token."""
    packable: ClassVar[bool] = False
    """Whether training rows may be packed side by side (1-D positions, one pixel tensor per
    image), see :meth:`~clearbench.models.vlm.VLM.encode`."""
    image_token: str | None
    """The placeholder token, repeated once per vision feature; None: a text-only format."""
    end_token: str
    """The token that closes an answer."""

    @classmethod
    @abstractmethod
    def from_model(
        cls, config: Any, tokenizer: Any, image_processor: Any, processor: Any | None
    ) -> ChatFormat:
        """The format of a loaded model, configured from its config and preprocessors."""

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """Tokens the template writes; each must be a single token of the tokenizer."""
        return (self.image_token, self.end_token)

    @abstractmethod
    def prompt(self, text: str, n_image_tokens: int) -> str:
        """The prompt text with ``n_image_tokens`` placeholders (0: a text-only turn)."""

    @abstractmethod
    def answer(self, text: str) -> str:
        """The answer text, without the end token (added as an id by the caller)."""

    @abstractmethod
    def image_token_counts(self, image_inputs: Mapping[str, torch.Tensor]) -> list[int]:
        """Placeholder tokens per image, from the image processor's output."""

    def extra_inputs(self, input_ids: torch.Tensor, image_token_id: int) -> dict[str, torch.Tensor]:
        """Model inputs besides ids, mask and pixels that a batch with images needs."""
        return {}

    def position_ids(
        self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Explicit position ids of a (left-padded) batch: each row counts from 0 at its first
        real token, so a row's numbers do not depend on how much padding its batch needs.

        Shape ``(batch, length)``; a family with multi-dimensional positions may return
        ``(dims, batch, length)``.
        """
        return (batch["attention_mask"].long().cumsum(-1) - 1).clamp(min=0)


class LlavaFormat(ChatFormat):
    """LLaVA-1.5: ``USER: <image>\\n{prompt} ASSISTANT:`` then ``" {answer}"`` + eos."""

    model_types = ("llava",)
    add_bos = True
    packable = True

    def __init__(
        self,
        *,
        end_token: str,
        patch_size: int,
        num_additional_image_tokens: int = 1,
        drop_cls: bool = True,
        image_token: str = "<image>",
    ) -> None:
        self.end_token = end_token
        self.patch_size = patch_size
        self.num_additional_image_tokens = num_additional_image_tokens
        self.drop_cls = drop_cls
        self.image_token = image_token

    @classmethod
    def from_model(
        cls, config: Any, tokenizer: Any, image_processor: Any, processor: Any | None
    ) -> LlavaFormat:
        """Read the placeholder arithmetic from the processor, else from the model config."""
        return cls(
            end_token=tokenizer.eos_token,
            patch_size=getattr(processor, "patch_size", None) or config.vision_config.patch_size,
            # Without a processor we assume a CLIP tower, whose CLS token is one extra feature.
            num_additional_image_tokens=getattr(processor, "num_additional_image_tokens", 1),
            drop_cls=config.vision_feature_select_strategy == "default",
            image_token=getattr(processor, "image_token", None)
            or getattr(tokenizer, "image_token", None)
            or "<image>",
        )

    def prompt(self, text: str, n_image_tokens: int) -> str:
        image = self.image_token * n_image_tokens + "\n" if n_image_tokens else ""
        return f"USER: {image}{text} ASSISTANT:"

    def answer(self, text: str) -> str:
        return f" {text}"

    def image_token_counts(self, image_inputs: Mapping[str, torch.Tensor]) -> list[int]:
        # One token per vision feature: one per patch, plus the CLS token unless the
        # "default" feature selection drops it (as LlavaProcessor counts).
        pixels = image_inputs["pixel_values"]
        height, width = pixels.shape[-2:]
        count = (height // self.patch_size) * (width // self.patch_size)
        count += self.num_additional_image_tokens - int(self.drop_cls)
        return [count] * pixels.shape[0]


class QwenVLFormat(ChatFormat):
    """Qwen2-VL / Qwen2.5-VL ChatML with the default system turn; answer + ``<|im_end|>``."""

    model_types = ("qwen2_vl", "qwen2_5_vl")
    add_bos = False
    IM_START = "<|im_start|>"
    IM_END = "<|im_end|>"
    VISION_START = "<|vision_start|>"
    VISION_END = "<|vision_end|>"
    SYSTEM = "You are a helpful assistant."

    def __init__(self, *, merge_size: int, image_token: str = "<|image_pad|>") -> None:
        self.merge_size = merge_size
        self.image_token = image_token
        self.end_token = self.IM_END

    @classmethod
    def from_model(
        cls, config: Any, tokenizer: Any, image_processor: Any, processor: Any | None
    ) -> QwenVLFormat:
        """Merge size from the image processor, image token from the tokenizer if it names one."""
        return cls(
            merge_size=image_processor.merge_size,
            image_token=getattr(tokenizer, "image_token", None) or "<|image_pad|>",
        )

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return (*super().special_tokens, self.IM_START, self.VISION_START, self.VISION_END)

    def prompt(self, text: str, n_image_tokens: int) -> str:
        image = (
            f"{self.VISION_START}{self.image_token * n_image_tokens}{self.VISION_END}"
            if n_image_tokens
            else ""
        )
        return (
            f"{self.IM_START}system\n{self.SYSTEM}{self.IM_END}\n"
            f"{self.IM_START}user\n{image}{text}{self.IM_END}\n"
            f"{self.IM_START}assistant\n"
        )

    def answer(self, text: str) -> str:
        return text

    def image_token_counts(self, image_inputs: Mapping[str, torch.Tensor]) -> list[int]:
        # The vision tower merges merge_size × merge_size patches into one token.
        merged = image_inputs["image_grid_thw"].prod(-1) // self.merge_size**2
        return merged.tolist()

    def extra_inputs(self, input_ids: torch.Tensor, image_token_id: int) -> dict[str, torch.Tensor]:
        # Multimodal RoPE needs to know which positions hold image tokens (1) or text (0).
        return {"mm_token_type_ids": (input_ids == image_token_id).int()}

    def position_ids(
        self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        # Multimodal RoPE: image tokens get (temporal, height, width) positions, computed by
        # the model's own get_rope_index (which honours the attention mask's padding).
        if "image_grid_thw" not in batch:
            return super().position_ids(model, batch)
        rope_index = next(
            (m.get_rope_index for m in model.modules() if hasattr(m, "get_rope_index")), None
        )
        if rope_index is None:
            raise ModelError(f"{type(model).__name__} has no get_rope_index for Qwen-VL positions")
        positions, _ = rope_index(
            batch["input_ids"],
            mm_token_type_ids=batch["mm_token_type_ids"],
            image_grid_thw=batch["image_grid_thw"],
            attention_mask=batch["attention_mask"],
        )
        return positions


USER_SENTINEL = "CLEARBENCH_USER_TEXT"
ANSWER_SENTINEL = "CLEARBENCH_ANSWER_TEXT"
"""Stand-ins for a user's and an assistant's text, rendered by a chat template to find where
the template puts them."""
LLAMA2_MODEL_TYPES = ("llama", "mistral")
"""Model types that fall back to :meth:`TextFormat.llama2` without a chat template (TOFU's
``locuslab/tofu_ft_llama2-7b`` has none)."""


@dataclass(frozen=True)
class TextFormat(ChatFormat):
    """A text-only causal LM: ``prompt_prefix + text + prompt_suffix``, then ``answer_prefix +
    answer`` and the end token. No image placeholder.

    :meth:`from_model` reads the fields from the tokenizer's chat template. A template that
    starts with the bos token text gives ``add_bos=True`` and a prefix without it: the bos is
    added as an id and the rest is tokenised as the start of a string, as Llama-2 was trained
    (a SentencePiece tokenizer may tokenise text after a special token differently).
    """

    prompt_prefix: str
    prompt_suffix: str
    answer_prefix: str
    """Template text between the prompt and the answer (Llama-2: ``" "``)."""
    end_token: str
    add_bos: bool

    model_types = ()
    """Any causal LM: the loader picks this format by model class, not by model type."""
    packable = True
    image_token = None

    @classmethod
    def llama2(cls, eos_token: str) -> TextFormat:
        """TOFU's Llama-2 format: bos ``[INST] {prompt} [/INST]``, then ``" {answer}"`` + eos."""
        return cls(prompt_prefix="[INST] ", prompt_suffix=" [/INST]", answer_prefix=" ",
                   end_token=eos_token, add_bos=True)

    @classmethod
    def from_model(
        cls, config: Any, tokenizer: Any, image_processor: Any = None, processor: Any = None
    ) -> TextFormat:
        """From the tokenizer's chat template (:meth:`from_template`); without one,
        :meth:`llama2` for a Llama or Mistral model, else :class:`ModelError`."""
        if getattr(tokenizer, "chat_template", None):
            return cls.from_template(tokenizer)
        if config.model_type in LLAMA2_MODEL_TYPES:
            return cls.llama2(tokenizer.eos_token)
        name = getattr(config, "name_or_path", "") or config.model_type
        raise ModelError(
            f"{name} has no chat template (its tokenizer names none), and only "
            f"{' and '.join(LLAMA2_MODEL_TYPES)} models fall back to the Llama-2 [INST] format "
            f"(model_type {config.model_type!r})"
        )

    @classmethod
    def from_template(cls, tokenizer: Any) -> TextFormat:
        """Render a user turn (with the generation prompt) and a user + assistant conversation
        around sentinel texts: the prompt is split at the user's sentinel, the answer prefix is
        what the conversation adds between the generation prompt and the assistant's sentinel,
        and the end token is the special token that follows the answer (else the eos)."""
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        user = {"role": "user", "content": USER_SENTINEL}
        prompt = _render(tokenizer, name, [user], generation_prompt=True)
        conversation = _render(
            tokenizer, name, [user, {"role": "assistant", "content": ANSWER_SENTINEL}],
            generation_prompt=False,
        )
        before_answer, found, after_answer = conversation.partition(ANSWER_SENTINEL)
        if prompt.count(USER_SENTINEL) != 1 or not found or not before_answer.startswith(prompt):
            raise ModelError(
                f"{name}: cannot read a chat format from its chat template: it does not render "
                "the user's text once, then the generation prompt, then the assistant's answer"
            )
        prefix, suffix = prompt.split(USER_SENTINEL)
        bos = tokenizer.bos_token
        add_bos = bool(bos) and prefix.startswith(bos)
        specials = {*tokenizer.all_special_tokens,
                    *(token.content for token in tokenizer.added_tokens_decoder.values()
                      if token.special)}
        after_answer = after_answer.lstrip()
        end_token = max(
            (token for token in specials if token and after_answer.startswith(token)),
            key=len, default=tokenizer.eos_token,
        )
        return cls(
            prompt_prefix=prefix.removeprefix(bos) if add_bos else prefix,
            prompt_suffix=suffix,
            answer_prefix=before_answer.removeprefix(prompt),
            end_token=end_token,
            add_bos=add_bos,
        )

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return (self.end_token,)

    def prompt(self, text: str, n_image_tokens: int) -> str:
        if n_image_tokens:
            raise ModelError("a text-only chat format has no image placeholders")
        return f"{self.prompt_prefix}{text}{self.prompt_suffix}"

    def answer(self, text: str) -> str:
        return f"{self.answer_prefix}{text}"

    def image_token_counts(self, image_inputs: Mapping[str, torch.Tensor]) -> list[int]:
        raise ModelError("a text-only chat format takes no images")


def _render(tokenizer: Any, name: str, messages: list[dict[str, str]], *,
            generation_prompt: bool) -> str:
    """``messages`` rendered by the tokenizer's chat template, as text."""
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
    except (TemplateError, ValueError) as err:
        roles = " + ".join(message["role"] for message in messages)
        raise ModelError(f"{name}: its chat template cannot render {roles} ({err})") from err


FORMATS: tuple[type[ChatFormat], ...] = (LlavaFormat, QwenVLFormat)


def chat_format_class(model_type: str) -> type[ChatFormat]:
    """The format class serving the VLM family ``model_type``; :class:`ModelError` if there is
    none (a text-only causal LM of any family has a :class:`TextFormat`)."""
    for format_class in FORMATS:
        if model_type in format_class.model_types:
            return format_class
    supported = ", ".join(t for f in FORMATS for t in f.model_types)
    raise ModelError(f"no chat format for model_type {model_type!r}; supported: {supported}")


def chat_format_for(
    config: Any, tokenizer: Any, image_processor: Any, processor: Any | None = None
) -> ChatFormat:
    """The chat format of a loaded model, chosen by ``config.model_type``."""
    return chat_format_class(config.model_type).from_model(
        config, tokenizer, image_processor, processor
    )
