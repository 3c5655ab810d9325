"""The fixed prompts of the benchmark: captioning questions and the face→name prompt."""

from __future__ import annotations

import hashlib

CAPTION_PROMPTS: tuple[str, ...] = (
    "Describe the image.",
    "What do you see in this picture?",
    "Write a short caption for this image.",
    "What is shown in this photo?",
    "Give a brief description of the picture.",
    "Who is in this image and where are they?",
    "Describe what is happening in this photo.",
    "Caption this picture.",
)
"""Captioning questions; each row gets one of them, fixed by :func:`caption_prompt`."""

FACE_NAME_PROMPT = "The name of the person on the image is"
"""The prompt of the face→name tasks (spec §4)."""


def caption_prompt(key: str) -> str:
    """The captioning question of the row identified by ``key``: stable across runs.

    The authors' code drew the question at random at every call (spec §4); here a row's
    question is a fixed function of its key (the project keys rows by their caption).
    """
    index = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return CAPTION_PROMPTS[index % len(CAPTION_PROMPTS)]
