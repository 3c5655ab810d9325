"""Precision and packaging transforms of a loaded model (issue 20, item 3): does what a model
forgot stay forgotten when it is stored, served or shipped differently?

Transforms of the model as it is (:data:`PRECISIONS`, :func:`apply_precision`):

- ``bf16`` / ``fp16``: every floating parameter and buffer cast to that dtype and back, in
  place (what saving and reloading the weights in that precision does);
- ``int8``: dynamic quantization of every ``torch.nn.Linear`` (``torch.ao``: int8 weights,
  activations quantized on the fly; CPU only);
- ``nf4``: 4-bit NormalFloat quantization of every linear layer but the output head
  (bitsandbytes, as ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")``
  loads a model; optional extra ``clearbench[quant4]``, CUDA only).

Packaging of a LoRA unlearning as the base (vanilla) model plus its adapter
(:data:`PACKAGINGS`, :func:`package`), at bf16 and fp16:

- ``merged_DTYPE``: the base stored at DTYPE, the adapter merged into it and the merged weights
  stored at DTYPE: a merged checkpoint served at that precision, where an adapted weight keeps
  w + Δ only to the dtype's resolution (a Δ below half its spacing at w is rounded away);
- ``unmerged_DTYPE``: the same base with the adapter kept beside it at full precision, unmerged.

The two differ only in merging, so K(merged) − K(unmerged) at one dtype is what merging loses.
Computation stays in the loaded dtype: only storage changes (but int8 and nf4 compute in their
kernels).
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from clearbench.models.lora import load_adapter, merge_lora

if TYPE_CHECKING:
    from clearbench.models.vlm import VLM

PRECISIONS = ("int8", "bf16", "fp16", "nf4")
ROUND_TRIPS = {"bf16": torch.bfloat16, "fp16": torch.float16}
PACKAGINGS = {f"{how}_{name}": (how == "merged", name)
              for name in ROUND_TRIPS for how in ("merged", "unmerged")}
"""Packaging → (merged, the round trip of its storage dtype)."""
QUANT4 = "pip install clearbench[quant4]"


class PrecisionUnavailable(ValueError):
    """A transform that cannot run here (no GPU, a missing optional library): the audit records
    it as skipped with this message."""


def unavailable(kind: str, device: torch.device | str) -> str | None:
    """Why transform ``kind`` cannot run on a model on ``device`` here; None when it can."""
    device = torch.device(device)
    if kind == "int8" and device.type != "cpu":
        return ("int8 dynamic quantization (torch.ao) runs on the CPU only; audit with "
                "--device cpu")
    if kind == "nf4":
        missing = []
        if importlib.util.find_spec("bitsandbytes") is None:
            missing.append("bitsandbytes is not installed")
        if device.type != "cuda":
            missing.append(f"the model is on {device.type}, not a CUDA device")
        if missing:
            return (f"4-bit NF4 quantization needs bitsandbytes and a CUDA device ({QUANT4}; "
                    f"audit with --device cuda): {'; '.join(missing)}")
    return None


def _check_available(model: torch.nn.Module, kind: str) -> None:
    reason = unavailable(kind, next(model.parameters()).device)
    if reason is not None:
        raise PrecisionUnavailable(reason)


def round_trip(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast every floating parameter and buffer of ``model`` to ``dtype`` and back, in place."""
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every ``nn.Linear`` replaced by its int8 dynamically quantized version
    (in place; the model must be on the CPU)."""
    _check_available(model, "int8")
    with warnings.catch_warnings():  # torch 2.13 announces the qint8 tensors' deprecation
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                      dtype=torch.qint8, inplace=True)


def quantize_nf4(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every ``nn.Linear`` but the output head replaced by a bitsandbytes
    ``Linear4bit`` holding its NF4-quantized weights (in place; the model must be on a CUDA
    device). Computation runs in the layer's former dtype."""
    _check_available(model, "nf4")
    import bitsandbytes as bnb

    head = model.get_output_embeddings()
    linears = [(name, module) for name, module in model.named_modules()
               if type(module) is torch.nn.Linear and module is not head]
    for name, linear in linears:
        layer = bnb.nn.Linear4bit(linear.in_features, linear.out_features,
                                  bias=linear.bias is not None,
                                  compute_dtype=linear.weight.dtype, quant_type="nf4")
        layer.load_state_dict(linear.state_dict())
        model.set_submodule(name, layer.to(linear.weight.device))  # quantizes the weights
    return model


def apply_precision(model: torch.nn.Module, kind: str) -> torch.nn.Module:
    """``model`` after the transform ``kind`` (one of :data:`PRECISIONS`), in place;
    :class:`PrecisionUnavailable` when it cannot run here."""
    if kind == "int8":
        return quantize_int8(model)
    if kind == "nf4":
        return quantize_nf4(model)
    if kind not in ROUND_TRIPS:
        raise ValueError(f"unknown precision {kind!r}; choose {', '.join(PRECISIONS)}")
    round_trip(model, ROUND_TRIPS[kind])
    return model


def package(vlm: VLM, adapter: str | Path, kind: str) -> None:
    """Make ``vlm``, holding the base model the adapter in ``adapter`` was trained on, the
    packaging ``kind`` of :data:`PACKAGINGS` (in place)."""
    if kind not in PACKAGINGS:
        raise ValueError(f"unknown packaging {kind!r}; choose {', '.join(PACKAGINGS)}")
    merged, storage = PACKAGINGS[kind]
    round_trip(vlm.model, ROUND_TRIPS[storage])
    load_adapter(vlm, adapter)
    if merged:
        merge_lora(vlm)
        round_trip(vlm.model, ROUND_TRIPS[storage])
