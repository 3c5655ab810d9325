"""The frozen reference model θ₀ of unlearning: outputs in eval mode, without gradients.

With LoRA the reference is the same model with its adapter switched off, so a LoRA run never
holds two copies of the weights; a full-parameter run keeps one frozen copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from peft import PeftModel

from clearbench.models.layers import layer_output
from clearbench.models.vlm import answer_logits, model_inputs

Batch = dict[str, torch.Tensor]


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class FrozenCopy:
    """A frozen deep copy of the model as it was when created."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def answer_logits(self, batch: Batch) -> torch.Tensor:
        with _evaluating(self.model):
            return answer_logits(self.model, batch)[0]

    def hidden(self, batch: Batch, layer: int) -> torch.Tensor:
        with _evaluating(self.model):
            return layer_output(self.model, model_inputs(batch), layer)


class AdapterOff:
    """The LoRA model itself with its adapter disabled: the weights before unlearning."""

    def __init__(self, model: PeftModel) -> None:
        self.model = model

    def answer_logits(self, batch: Batch) -> torch.Tensor:
        with _evaluating(self.model), self.model.disable_adapter():
            return answer_logits(self.model, batch)[0]

    def hidden(self, batch: Batch, layer: int) -> torch.Tensor:
        with _evaluating(self.model), self.model.disable_adapter():
            return layer_output(self.model, model_inputs(batch), layer)


def reference_for(model: torch.nn.Module) -> FrozenCopy | AdapterOff:
    """:class:`AdapterOff` for a PEFT model, else a :class:`FrozenCopy`."""
    return AdapterOff(model) if isinstance(model, PeftModel) else FrozenCopy(model)
