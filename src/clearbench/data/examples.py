"""The one record type every stage consumes: an (image?, prompt, answer) triple."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Example:
    """One conversational turn to train on or to score.

    ``prompt`` is the user's text *without* any image placeholder: the model's chat
    format inserts the image token(s) itself when ``image`` is set. ``answer`` is the
    assistant's reply; only its tokens are ever scored or trained on.
    """

    prompt: str
    answer: str
    image: Image.Image | None = None
    id: str = ""
    person: str = ""
    """The person the row is about where the data names one (CLEAR image rows), else ""."""
