"""Content hashes of files, with a cache that makes rehashing unchanged files free.

A stage's identity includes the content of the data and of the model it reads, never their
paths: a moved or copied folder keeps its identity, a file edited in place changes it. Hashing
a 7B model's weights takes a while, so a hash is stored with the size and modification time
of every file it covers; while those stamps stay the same the stored hash is reused, and any
change to them (an edit, a copy without ``-p``) costs one full rehash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from clearbench.io import write_json_atomic

CACHE_ENV = "CLEARBENCH_CACHE"
"""Folder of the stamp cache (default ``~/.cache/clearbench``)."""

Stamps = list[list[str | int]]


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clearbench"
    return Path(os.environ.get(CACHE_ENV, default)) / "hashes"


def content_hash(root: Path, files: Iterable[Path]) -> str:
    """sha256 over the relative path and bytes of every file (sorted), reusing the hash
    stored for ``root`` when every file's size and modification time are unchanged."""
    root = Path(root).resolve()
    files = sorted(Path(f).resolve() for f in files)
    stamps: Stamps = []
    for path in files:
        stat = path.stat()
        stamps.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    entry = cache_dir() / f"{hashlib.sha256(str(root).encode()).hexdigest()[:32]}.json"
    try:
        stored = json.loads(entry.read_text())
        if stored.get("stamps") == stamps:
            return stored["hash"]
    except (OSError, ValueError, AttributeError):
        pass  # no cache entry (or an unreadable one): hash the files
    digest = hashlib.sha256()
    for (relative, _, _), path in zip(stamps, files, strict=True):
        digest.update(str(relative).encode() + b"\0")
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only home: every check rehashes
        write_json_atomic(entry, {"root": str(root), "stamps": stamps, "hash": value})
    return value
