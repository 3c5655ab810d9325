"""Precision and packaging transforms of a loaded model (issue 20, item 3): does what a model
forgot stay forgotten when it is stored or served at lower precision?

- ``bf16`` / ``fp16``: every floating parameter and buffer cast to that dtype and back, in
  place (what saving and reloading the weights in that precision does);
- ``int8``: dynamic quantization of every ``torch.nn.Linear`` (``torch.ao``: int8 weights,
  activations quantized on the fly; CPU only).
"""

from __future__ import annotations

import itertools
import warnings

import torch

PRECISIONS = ("int8", "bf16", "fp16")
ROUND_TRIPS = {"bf16": torch.bfloat16, "fp16": torch.float16}


def round_trip(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast every floating parameter and buffer of ``model`` to ``dtype`` and back, in place."""
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every ``nn.Linear`` replaced by its int8 dynamically quantized version
    (in place; the model must be on the CPU)."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8 dynamic quantization (torch.ao) runs on the CPU only; audit "
                         "with --device cpu")
    with warnings.catch_warnings():  # torch 2.13 announces the qint8 tensors' deprecation
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                      dtype=torch.qint8, inplace=True)


def apply_precision(model: torch.nn.Module, kind: str) -> torch.nn.Module:
    """``model`` after the transform ``kind`` (one of :data:`PRECISIONS`), in place."""
    if kind == "int8":
        return quantize_int8(model)
    if kind not in ROUND_TRIPS:
        raise ValueError(f"unknown precision {kind!r}; choose {', '.join(PRECISIONS)}")
    round_trip(model, ROUND_TRIPS[kind])
    return model
