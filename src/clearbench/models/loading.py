"""Load any supported image-text-to-text checkpoint, or any causal LM with its chat template
(hub id or local folder), as a :class:`VLM`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    ProcessorMixin,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
)

from clearbench.models.errors import REDO, ModelError
from clearbench.models.formats import ChatFormat, TextFormat, chat_format_class
from clearbench.models.vlm import VLM
from clearbench.paths import did_you_mean, looks_local

DTYPES: dict[str, str | torch.dtype] = {
    "auto": "auto",
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def load_vlm(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    dtype: str = "auto",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
) -> VLM:
    """Load model, tokenizer, image processor (and processor when it can be built).

    An image-text-to-text model is loaded as such; otherwise a causal LM is loaded as a
    text-only model (no image processor) with the :class:`TextFormat` of its chat template.
    ``dtype`` is ``auto`` (the checkpoint's), ``float32``, ``bfloat16`` or ``float16``.
    Raises :class:`ModelError` for a missing or unreadable local folder (cut-off weights, no
    config.json), a hub id that cannot be fetched, a model that is neither image-text-to-text
    nor a causal LM, an unsupported VLM family, a causal LM without a chat template (but
    Llama's and Mistral's), or a tokenizer without the format's special tokens; the family
    and the template are checked before the weights are read.
    """
    if dtype not in DTYPES:
        raise ModelError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    name = str(name_or_path)
    hub = {"revision": revision, "trust_remote_code": trust_remote_code}
    config = _load_config(name_or_path, hub)
    auto_class = _auto_class(config, name)
    image_processor = processor = None
    chat_format: ChatFormat
    if auto_class is AutoModelForCausalLM:
        with _reading(name):
            tokenizer = AutoTokenizer.from_pretrained(name, **hub)
        chat_format = TextFormat.from_model(config, tokenizer)
    else:
        format_class = chat_format_class(config.model_type)
        with _reading(name):
            processor = _load_processor(name, hub)
            tokenizer = (processor.tokenizer if processor
                         else AutoTokenizer.from_pretrained(name, **hub))
            image_processor = (processor.image_processor if processor
                               else AutoImageProcessor.from_pretrained(name, **hub))
        chat_format = format_class.from_model(config, tokenizer, image_processor, processor)
    with _reading(name):
        model = auto_class.from_pretrained(name, config=config, dtype=DTYPES[dtype], **hub)
    return VLM(model.to(device), tokenizer, image_processor, chat_format, processor)


def count_parameters(name_or_path: str | Path, *, revision: str | None = None) -> int:
    """A checkpoint's parameter count from its config alone (the model is built on the meta
    device: no weights are read)."""
    config = _load_config(name_or_path, {"revision": revision})
    with torch.device("meta"):
        model = _auto_class(config, str(name_or_path)).from_config(config)
    return sum(p.numel() for p in model.parameters())


def is_text_model(name_or_path: str | Path, *, revision: str | None = None) -> bool:
    """Whether :func:`load_vlm` loads the checkpoint as a text-only causal LM (from its config
    alone: no weights are read); :class:`ModelError` as :func:`load_vlm`'s for a missing
    folder or a model that is neither kind."""
    config = _load_config(name_or_path, {"revision": revision})
    return _auto_class(config, str(name_or_path)) is AutoModelForCausalLM


def _auto_class(config: Any, name: str) -> type[Any]:
    """Image-text-to-text if the model type is one, else causal LM if it is one, else
    ModelError."""
    if config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return AutoModelForImageTextToText
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return AutoModelForCausalLM
    raise ModelError(f"{name} is neither an image-text-to-text model nor a causal LM "
                     f"(model_type {config.model_type!r})")


def _load_config(name_or_path: str | Path, hub: dict[str, Any]) -> Any:
    """The checkpoint's config; ModelError for a missing folder or an unreadable config."""
    name = str(name_or_path)
    folder = Path(name).expanduser()
    if not folder.exists() and (isinstance(name_or_path, Path) or looks_local(name)):
        raise ModelError(f"model folder {name} does not exist{did_you_mean(name)}")
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise ModelError(f"model folder {name} has no config.json (not a model folder, or an "
                         f"unfinished save: {REDO})")
    with _reading(name):
        return AutoConfig.from_pretrained(name, **hub)


@contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn what transformers, safetensors and huggingface_hub raise for unreadable files, a
    hub id not in the cache with no hub to reach, or an invalid id into one ModelError."""
    try:
        yield
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelError(f"model {name}: cannot load it from the hub or the huggingface_hub "
                             f"cache ({reason})") from err
        broken = [path.name for path in sorted(folder.glob("*.safetensors"))
                  if not _whole_safetensors(path)]
        what = f"{', '.join(broken)} in model folder {name}" if broken else f"model folder {name}"
        raise ModelError(f"{what} cannot be read ({reason}); {REDO}") from err


def _whole_safetensors(path: Path) -> bool:
    """Whether a safetensors file's header and tensors are all there (not cut off)."""
    try:
        with safe_open(str(path), "pt"):  # checks that the header covers the whole file
            pass
    except (SafetensorError, OSError):
        return False
    return True


def _load_processor(name: str, hub: dict[str, Any]) -> ProcessorMixin | None:
    """The HF processor, or None where it cannot be built.

    In transformers 5.x ``Qwen2VLProcessor`` always builds a video processor, which needs
    torchvision; without it we drive the tokenizer and image processor ourselves (as we do
    anyway: the processor is only kept to be saved with the model).
    """
    try:
        processor = AutoProcessor.from_pretrained(name, **hub)
    except ImportError:
        return None
    return processor if isinstance(processor, ProcessorMixin) else None
