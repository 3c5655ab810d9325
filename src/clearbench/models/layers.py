"""Model-agnostic access to a VLM's decoder layers and their outputs (for RMU)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from clearbench.models.errors import ModelError


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The language model's decoder layers, found by structure rather than attribute path.

    The one ``ModuleList`` whose children are all ``*DecoderLayer`` modules: LLaVA's Llama
    layers, Qwen2-VL's ``Qwen2VLDecoderLayer``s, ...; vision-tower blocks are named otherwise.
    Works through a PEFT wrapper.
    """
    found = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.ModuleList)
        and len(module) > 0
        and all(type(child).__name__.endswith("DecoderLayer") for child in module)
    ]
    if len(found) != 1:
        raise ModelError(
            f"{type(model).__name__}: expected one list of decoder layers, found {len(found)}"
        )
    return found[0]


@contextmanager
def captured_output(layer: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the hidden states ``layer`` outputs while the context is open."""
    outputs: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        outputs.append(output[0] if isinstance(output, tuple) else output)

    handle = layer.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


def layer_output(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], layer: int
) -> torch.Tensor:
    """Hidden states ``(batch, length, hidden)`` after decoder layer ``layer`` (0-based)."""
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer {layer} out of range: the model has {len(layers)} decoder layers")
    with captured_output(layers[layer]) as outputs:
        model(**inputs)
    return outputs[-1]
