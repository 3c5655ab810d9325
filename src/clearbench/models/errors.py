"""The one exception type of the model layer."""

from __future__ import annotations


class ModelError(ValueError):
    """A model, tokenizer or checkpoint that this package cannot use, and why."""


REDO = "re-run the stage that wrote it, or delete the folder to have it redone"
"""What to do about a model folder that a stage of this package wrote but cannot be read."""
