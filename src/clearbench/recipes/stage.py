"""What every stage recipe shares: resolving the data argument and the "done" marker.

A stage writes its outputs first and its marker file (``training.json`` and the like) last,
atomically; a folder without the marker is an interrupted stage and is resumed, never read.
"""

from __future__ import annotations

from pathlib import Path

from clearbench.data.loading import DataSource
from clearbench.io import read_json


def data_source(data: str, revision: str | None = None) -> DataSource:
    """A local CLEAR folder (its TOFU sets in ``data/tofu``) or a CLEAR hub id."""
    if Path(data).is_dir():
        return DataSource.local(Path(data))
    return DataSource(clear=data, clear_revision=revision)


class StaleStage(FileExistsError):
    """A stage folder holding a finished result made with other settings."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


def finished(marker: Path, expected_hash: str, *, what: str) -> bool:
    """True if ``marker`` records a finished stage with these settings.

    A marker with other settings is refused rather than silently reused or overwritten.
    """
    if not marker.is_file():
        return False
    recorded = read_json(marker, what=what).get("settings_hash")
    if recorded != expected_hash:
        raise StaleStage(
            f"{marker.parent} already holds a {what} made with other settings "
            f"(hash {recorded}, now {expected_hash}); choose another --out or delete it",
            marker.parent,
        )
    return True
