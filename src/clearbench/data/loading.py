"""Load CLEAR and TOFU configs from the hub (pinned revision) or a local folder, validated.

Every load is checked against :mod:`clearbench.data.schema`: a known config, every required
column with the right type, a non-empty ``train`` split and images that decode. Problems
raise :class:`~clearbench.data.schema.DataError` naming the source, config, column and row.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import datasets
import yaml
from PIL import Image

from clearbench.data.schema import (
    CLEAR_SCHEMAS,
    IMAGE,
    TOFU_SCHEMAS,
    Column,
    DataError,
    check_columns,
)

DATACARD = "datacard.json"
_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
"""The ``datasets`` builder of each data file format a local folder may hold."""


@dataclass(frozen=True)
class DataSource:
    """Where the CLEAR and the TOFU data sets come from: hub ids (with revisions) or folders."""

    clear: str = "therem/CLEAR"
    clear_revision: str | None = None
    tofu: str = "locuslab/TOFU"
    tofu_revision: str | None = None

    @classmethod
    def local(cls, path: str | Path) -> DataSource:
        """A local CLEAR(-mini) folder whose TOFU-layout sets are in ``path/tofu``."""
        return cls(clear=str(path), tofu=str(Path(path) / "tofu"))

    def fingerprint(self) -> dict[str, dict[str, str | None]]:
        """What identifies the data: hub id and revision, or a local folder's content hash."""
        return {
            "clear": _fingerprint(self.clear, self.clear_revision),
            "tofu": _fingerprint(self.tofu, self.tofu_revision),
        }


def folder_hash(folder: Path) -> str:
    """sha256 over every data file below ``folder`` (parquet, json, jsonl, csv; not the
    datacard): relative paths and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.suffix in _BUILDERS and path.name != DATACARD and path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _fingerprint(where: str, revision: str | None) -> dict[str, str | None]:
    folder = Path(where)
    if not folder.is_dir():
        return {"hub_id": where, "revision": revision}
    card = folder / DATACARD
    if card.is_file():
        return {"content_hash": json.loads(card.read_text())["content_hash"]}
    return {"content_hash": folder_hash(folder)}


def load_clear(source: DataSource, config: str) -> datasets.Dataset:
    """The ``train`` split of a CLEAR config (images decode to PIL), validated and cached."""
    return _load("CLEAR", source.clear, source.clear_revision, config)


def load_tofu(source: DataSource, config: str) -> datasets.Dataset:
    """The ``train`` split of a TOFU config, validated and cached."""
    return _load("TOFU", source.tofu, source.tofu_revision, config)


_SCHEMAS = {"CLEAR": CLEAR_SCHEMAS, "TOFU": TOFU_SCHEMAS}


def _load(kind: str, where: str, revision: str | None, config: str) -> datasets.Dataset:
    schemas = _SCHEMAS[kind]
    if config not in schemas:
        raise DataError(f"{where}: unknown {kind} config {config!r}; valid: {', '.join(schemas)}")
    folder = Path(where)
    # A local folder's file stamps are part of the key: a regenerated folder is reloaded.
    stamp = (
        tuple(
            (p.as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        )
        if folder.is_dir()
        else ()
    )
    return _load_cached(kind, str(where), revision, config, stamp)


@functools.lru_cache(maxsize=128)
def _load_cached(
    kind: str, where: str, revision: str | None, config: str, stamp: tuple
) -> datasets.Dataset:
    label = f"{kind} {where}" + (f"@{revision}" if revision else "") + f" config {config!r}"
    folder = Path(where)
    if not folder.is_dir() and (where.startswith(("/", ".", "~")) or where.count("/") > 1):
        raise DataError(f"cannot load {label}: no such folder (and not a hub id)")
    try:
        if folder.is_dir():
            builder, files = _local_files(folder, config, label)
            dataset = datasets.load_dataset(builder, data_files={"train": files}, split="train")
        else:
            dataset = datasets.load_dataset(where, config, split="train", revision=revision)
    except DataError:
        raise
    except Exception as err:  # the library raises many types; all mean "cannot load this"
        if "corresponds to no data" in str(err):  # how `datasets` reports an empty split
            raise DataError(f"{label}: the train split is empty") from None
        raise DataError(f"cannot load {label}: {type(err).__name__}: {err}") from None
    columns = _SCHEMAS[kind][config]
    check_columns(dataset.features, columns, label)
    for column in columns:
        if column.kind == IMAGE:
            _check_images(dataset, column, label)
    return dataset


def _local_files(folder: Path, config: str, label: str) -> tuple[str, list[str]]:
    """The ``datasets`` builder and the train files of ``config``, as listed by the
    ``configs:`` header of the folder's README.md (the hub layout).

    Local folders are loaded from their files rather than by folder name: ``datasets``
    keys the cache of a folder by its name and README only, so two folders with the same
    name (or one regenerated in place) would share stale data.
    """
    readme = folder / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    front_matter = re.match(r"---\s*\n(.*?)\n---", text, re.DOTALL)
    header = yaml.safe_load(front_matter.group(1)) if front_matter else None
    listed = {c["config_name"]: c.get("data_files") for c in (header or {}).get("configs", [])}
    if config not in listed:
        raise DataError(
            f"{label}: {readme} lists no such config (it lists: {', '.join(listed) or 'none'})"
        )
    spec = listed[config]
    patterns = [p for entry in ([spec] if isinstance(spec, str) else spec) for p in _train(entry)]
    files = sorted({str(path) for pattern in patterns for path in folder.glob(pattern)})
    if not files:
        raise DataError(f"{label}: no files in {folder} match its train files {patterns}")
    builders = {_BUILDERS.get(Path(f).suffix) for f in files}
    if len(builders) != 1 or None in builders:
        raise DataError(f"{label}: files {files} are not all of one format of {list(_BUILDERS)}")
    return builders.pop(), files


def _train(entry: str | dict) -> list[str]:
    """The train patterns of one ``data_files`` entry: a pattern, or ``{split, path}``."""
    if isinstance(entry, str):
        return [entry]
    if entry.get("split", "train") != "train":
        return []
    return [entry["path"]] if isinstance(entry["path"], str) else list(entry["path"])


def _check_images(dataset: datasets.Dataset, column: Column, label: str) -> None:
    """Decode every image of ``column`` from its raw bytes; name the first bad row."""
    raw = dataset.select_columns([column.name]).cast_column(
        column.name, datasets.Image(decode=False)
    )
    values = (value for batch in raw.iter(batch_size=256) for value in batch[column.name])
    for row, value in enumerate(values):
        if value is None or not (value["bytes"] or value["path"]):
            if column.nullable:
                continue
            raise DataError(f"{label}: row {row} has no {column.name!r}")
        data = io.BytesIO(value["bytes"]) if value["bytes"] else value["path"]
        try:
            with Image.open(data) as image:
                image.load()
        except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, ...
            raise DataError(
                f"{label}: row {row}: column {column.name!r} does not decode as an image "
                f"({type(err).__name__}: {err})"
            ) from None
