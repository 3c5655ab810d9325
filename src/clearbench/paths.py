"""Local paths versus hub ids, and the folder a mistyped path probably meant."""

from __future__ import annotations

import difflib
from pathlib import Path


def looks_local(name: str) -> bool:
    """A local path rather than a hub id (``name`` or ``owner/name``): absolute or starting
    with ``.`` or ``~``, deeper than ``owner/name``, or ``folder/name`` where ``folder`` is a
    local folder (``runs/vanila`` beside ``runs/`` is a mistyped path, not a hub id)."""
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def did_you_mean(path: str) -> str:
    """`` (did you mean SIBLING?)`` for the closest existing folder beside a missing ``path``,
    or ``""``."""
    missing = Path(path).expanduser()
    if not missing.parent.is_dir():
        return ""
    siblings = [entry.name for entry in missing.parent.iterdir() if entry.is_dir()]
    match = difflib.get_close_matches(missing.name, siblings, n=1)
    return f" (did you mean {missing.parent / match[0]}?)" if match else ""
