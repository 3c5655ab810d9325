"""The one exception type of the model layer."""

from __future__ import annotations


class ModelError(ValueError):
    """A model, tokenizer or checkpoint that this package cannot use, and why."""
