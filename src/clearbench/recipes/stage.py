"""What every stage recipe shares: resolving the data argument and the "done" marker.

A stage writes its outputs first and its marker file (``training.json`` and the like) last,
atomically; a folder without the marker is an interrupted stage and is resumed, never read.
"""

from __future__ import annotations

from pathlib import Path

from clearbench.data.loading import TOFU_HUB_ID, DataSource, is_hub_id
from clearbench.io import read_json


def data_source(data: str, revision: str | None = None, tofu: str | None = None,
                tofu_revision: str | None = None) -> DataSource:
    """CLEAR from a hub id or a local folder; TOFU from ``tofu`` (default: ``locuslab/TOFU``
    for a hub id, ``data/tofu`` for a folder); a revision pins a hub id only."""
    if not is_hub_id(data):
        local = DataSource.local(Path(data))  # normalised paths, as recorded by earlier runs
        return DataSource(clear=local.clear, tofu=tofu or local.tofu, tofu_revision=tofu_revision)
    return DataSource(clear=data, clear_revision=revision, tofu=tofu or TOFU_HUB_ID,
                      tofu_revision=tofu_revision)


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
