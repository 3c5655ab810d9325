"""``RUN_DIR/report.json``: which results the report shows, so that a stale report is noticed.

``report.json`` = ``{"results": H, "files": {PATH: SHA}}``: H the :func:`~clearbench.io.stable_hash`
of the ``results.json`` the report was built from; PATH each report file relative to the run
folder, SHA the SHA-256 of its bytes. It is written last, after every report file, and deleted
before any is rewritten, so a report interrupted half-way has no manifest. The report is current
when the manifest names the results now in ``results.json`` and every file it lists is there
with the bytes it recorded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from clearbench.io import stable_hash, write_json_atomic

MANIFEST = "report.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forget_manifest(run_dir: Path) -> None:
    """Delete the manifest: from now until :func:`write_manifest`, the report is stale."""
    (run_dir / MANIFEST).unlink(missing_ok=True)


def write_manifest(run_dir: Path, results: dict[str, Any], written: list[Path]) -> Path:
    """Record that the files ``written`` show ``results``; the manifest's path."""
    path = run_dir / MANIFEST
    write_json_atomic(path, {
        "results": stable_hash(results),
        "files": {p.relative_to(run_dir).as_posix(): _sha256(p) for p in written},
    })
    return path


def stale_reason(run_dir: Path, results: dict[str, Any]) -> str | None:
    """Why the report in ``run_dir`` does not show ``results``; None when it does."""
    path = run_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        recorded, files = manifest["results"], dict(manifest["files"])
    except FileNotFoundError:
        return f"{path} is missing (no report, or one interrupted while being written)"
    except (ValueError, KeyError, TypeError):
        return f"{path} is unreadable"
    if recorded != stable_hash(results):
        return "it shows other results than results.json"
    for name, sha in files.items():
        file = run_dir / name
        if not file.is_file():
            return f"{file} is missing"
        if _sha256(file) != sha:
            return f"{file} was changed after it was written"
    return None
