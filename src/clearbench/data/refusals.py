"""The refusal sentences IDK-style methods train towards (spec §1.2)."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def _refusals() -> tuple[str, ...]:
    text = (resources.files("clearbench") / "resources" / "refusals.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def load_refusals() -> list[str]:
    """The project's refusal sentences, one per line of ``resources/refusals.txt``."""
    return list(_refusals())
