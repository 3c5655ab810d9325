"""Load any supported image-text-to-text checkpoint (hub id or local folder) as a :class:`VLM`."""

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
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    ProcessorMixin,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from clearbench.models.errors import REDO, ModelError
from clearbench.models.formats import chat_format_class
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

    ``dtype`` is ``auto`` (the checkpoint's), ``float32``, ``bfloat16`` or ``float16``.
    Raises :class:`ModelError` for a missing or unreadable local folder (cut-off weights, no
    config.json), a hub id that cannot be fetched, a model that is not image-text-to-text, an
    unsupported family, or a tokenizer without the image token.
    """
    if dtype not in DTYPES:
        raise ModelError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    name = str(name_or_path)
    hub = {"revision": revision, "trust_remote_code": trust_remote_code}
    config = _load_config(name_or_path, hub)
    format_class = chat_format_class(config.model_type)
    with _reading(name):
        model = AutoModelForImageTextToText.from_pretrained(
            name, config=config, dtype=DTYPES[dtype], **hub
        )
        processor = _load_processor(name, hub)
        tokenizer = processor.tokenizer if processor else AutoTokenizer.from_pretrained(name, **hub)
        image_processor = (
            processor.image_processor if processor
            else AutoImageProcessor.from_pretrained(name, **hub)
        )
    chat_format = format_class.from_model(config, tokenizer, image_processor, processor)
    return VLM(model.to(device), tokenizer, image_processor, chat_format, processor)


def count_parameters(name_or_path: str | Path, *, revision: str | None = None) -> int:
    """A checkpoint's parameter count from its config alone (the model is built on the meta
    device: no weights are read)."""
    config = _load_config(name_or_path, {"revision": revision})
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    return sum(p.numel() for p in model.parameters())


def _load_config(name_or_path: str | Path, hub: dict[str, Any]) -> Any:
    """The checkpoint's config; ModelError for a missing folder or a model that is not
    image-text-to-text."""
    name = str(name_or_path)
    folder = Path(name).expanduser()
    if not folder.exists() and (isinstance(name_or_path, Path) or looks_local(name)):
        raise ModelError(f"model folder {name} does not exist{did_you_mean(name)}")
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise ModelError(f"model folder {name} has no config.json (not a model folder, or an "
                         f"unfinished save: {REDO})")
    with _reading(name):
        config = AutoConfig.from_pretrained(name, **hub)
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ModelError(
            f"{name} is not an image-text-to-text model (model_type {config.model_type!r})"
        )
    return config


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
