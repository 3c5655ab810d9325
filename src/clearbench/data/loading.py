"""Load CLEAR and TOFU configs from the hub (pinned revision) or a local folder, validated.

A hub id is read from the huggingface_hub cache (``local_files_only``) when ``HF_HUB_OFFLINE``
is set or the hub cannot be reached. Every load is checked against
:mod:`clearbench.data.schema`: a known config, whole data files (not git-lfs pointers, not
cut-off downloads), every required column with the right type, a non-empty ``train`` split
and images that decode. Problems raise :class:`~clearbench.data.schema.DataError` naming the
source, config, column or row and the likely cause.
"""

from __future__ import annotations

import functools
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from PIL import Image

from clearbench.data.schema import (
    CLEAR_SCHEMAS,
    IMAGE,
    TEXTS,
    TOFU_SCHEMAS,
    VALIDATION_CONFIGS,
    Column,
    DataError,
    check_columns,
)
from clearbench.hashing import content_hash
from clearbench.paths import did_you_mean, looks_local

DATACARD = "datacard.json"
_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
"""The ``datasets`` builder of each data file format a local folder may hold."""
CLEAR_HUB_ID = "therem/CLEAR"
TOFU_HUB_ID = "locuslab/TOFU"
LFS_POINTER = b"version https://git-lfs"
"""How a git-lfs pointer file (left in place of the data by a clone without git-lfs) begins."""
TOFU_HINT = (
    "a CLEAR snapshot holds no TOFU: name the TOFU source with --tofu (locuslab/TOFU or a "
    "snapshot folder of it) or data.tofu in the run config"
)


@dataclass(frozen=True)
class DataSource:
    """Where the CLEAR and the TOFU data sets come from: hub ids (with revisions) or folders."""

    clear: str = CLEAR_HUB_ID
    clear_revision: str | None = None
    tofu: str = TOFU_HUB_ID
    tofu_revision: str | None = None

    @classmethod
    def local(cls, path: str | Path) -> DataSource:
        """A local CLEAR(-mini) folder whose TOFU-layout sets are in ``path/tofu``."""
        return cls(clear=str(path), tofu=str(Path(path) / "tofu"))

    def fingerprint(self) -> dict[str, dict[str, str | None]]:
        """What identifies the data: a hub id with the commit its revision resolves to, or a
        local folder's content hash."""
        return {
            "clear": _fingerprint("CLEAR", self.clear, self.clear_revision),
            "tofu": _fingerprint("TOFU", self.tofu, self.tofu_revision),
        }


def folder_hash(folder: Path) -> str:
    """sha256 over every data file below ``folder`` (parquet, json, jsonl, csv; not the
    datacard): relative paths and bytes, in sorted order. Unchanged files (same sizes and
    modification times) are not reread (:mod:`clearbench.hashing`)."""
    files = [path for path in folder.rglob("*")
             if path.suffix in _BUILDERS and path.name != DATACARD and path.is_file()]
    return content_hash(folder, files)


def _fingerprint(kind: str, where: str, revision: str | None) -> dict[str, str | None]:
    """A hub id with its revision and the commit it resolves to now (an unpinned ``main`` that
    moves is other data), or the hash of a local folder's files as they are now (a data card's
    recorded hash is not taken on trust: the files may have been edited since)."""
    folder = Path(where)
    if not folder.is_dir():
        try:
            commit: str | None = hub_snapshot(kind, where, revision)[0].name
        except DataError:  # not there: the preflight that follows says why, with the rest
            commit = None
        return {"hub_id": where, "revision": revision, "commit": commit}
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
    # A local folder's file stamps are part of the key: a regenerated folder is reloaded; so
    # are the hub cache and the offline switch for a hub id.
    stamp = (
        tuple(
            (p.as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        )
        if folder.is_dir()
        else (constants.HF_HUB_CACHE, constants.is_offline_mode())
    )
    return _load_cached(kind, str(where), revision, config, stamp)


@functools.lru_cache(maxsize=128)
def _load_cached(
    kind: str, where: str, revision: str | None, config: str, stamp: tuple
) -> datasets.Dataset:
    label = f"{kind} {where}" + (f"@{revision}" if revision else "") + f" config {config!r}"
    folder = Path(where)
    if not folder.is_dir():
        if not is_hub_id(where):
            hint = f"; {TOFU_HINT}" if kind == "TOFU" else ""
            raise DataError(f"{kind} {where}: no such folder{did_you_mean(where)} (and not a "
                            f"hub id){hint}")
        folder, online = hub_snapshot(kind, where, revision)
        if online:
            _download(where, folder, _patterns(folder, config, label), label)
    builder, files = _local_files(folder, config, label)
    try:
        dataset = datasets.load_dataset(builder, data_files={"train": files}, split="train")
    except Exception as err:  # the library raises many types; all mean "cannot load this"
        if "corresponds to no data" in str(err):  # how `datasets` reports an empty split
            raise DataError(f"{label}: the train split is empty") from None
        raise DataError(f"cannot load {label}: {type(err).__name__}: {err}") from None
    columns = _SCHEMAS[kind][config]
    check_columns(dataset.features, columns, label)
    expected = _listed_rows(folder, config)
    if expected is not None and expected != len(dataset):
        raise DataError(f"{label}: {folder / 'README.md'} lists {expected} rows, its files "
                        f"{files} hold {len(dataset)} (partial download? fetch the missing "
                        "files)")
    for column in columns:
        if column.kind == IMAGE:
            _check_images(dataset, column, label)
        elif not column.nullable and column.name in dataset.column_names:
            _check_texts(dataset, column, files, label)
    return dataset


def has_config(source: DataSource, dataset: str, config: str) -> bool:
    """Whether the CLEAR or the TOFU data of ``source`` (``dataset``: ``clear`` or ``tofu``)
    lists ``config``: its README.md's ``configs:`` header, a local folder's or the hub
    snapshot's. False where that data cannot be found (loading it says why)."""
    kind, where, revision = (("CLEAR", source.clear, source.clear_revision) if dataset == "clear"
                             else ("TOFU", source.tofu, source.tofu_revision))
    folder = Path(where)
    if not folder.is_dir():
        if not is_hub_id(where):
            return False
        try:
            folder = hub_snapshot(kind, where, revision)[0]
        except DataError:
            return False
    return any(entry.get("config_name") == config for entry in _card(folder).get("configs", []))


def is_hub_id(where: str) -> bool:
    """``name`` or ``owner/name`` that is not a local path (see :func:`looks_local`)."""
    return not Path(where).is_dir() and not looks_local(where)


def hub_snapshot(kind: str, repo_id: str, revision: str | None) -> tuple[Path, bool]:
    """The snapshot folder of a hub data set at ``revision`` (with its README.md) and whether
    the hub answered: downloaded, or read from the huggingface_hub cache
    (``local_files_only``) when ``HF_HUB_OFFLINE`` is set or the hub cannot be reached."""
    return _hub_snapshot(kind, repo_id, revision, constants.HF_HUB_CACHE,
                         constants.is_offline_mode())


@functools.lru_cache(maxsize=32)
def _hub_snapshot(
    kind: str, repo_id: str, revision: str | None, cache: str, offline: bool
) -> tuple[Path, bool]:
    where = f"{kind} {repo_id}" + (f"@{revision}" if revision else "")
    online = not offline
    if online:
        try:
            HfApi().dataset_info(repo_id, revision=revision)
        except RevisionNotFoundError:
            raise DataError(f"{where}: wrong revision: the hub has no revision {revision!r} "
                            "of this data set") from None
        except RepositoryNotFoundError:
            raise DataError(f"{where}: no such data set on the hub (or it is gated: log in "
                            "with `hf auth login`)") from None
        except Exception:  # no connection, a timeout, the hub down: use the cache
            online = False
    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                   cache_dir=cache, allow_patterns=["README.md"],
                                   local_files_only=not online)
        return Path(folder), online
    except LocalEntryNotFoundError:  # not in the cache: say below what the cache holds
        pass
    except Exception as err:  # an invalid id, a full disk, ...
        raise DataError(f"{where}: {type(err).__name__}: {err}") from None
    repo = Path(cache) / f"datasets--{repo_id.replace('/', '--')}"
    why = "HF_HUB_OFFLINE is set" if offline else "the hub is unreachable"
    if not (repo / "snapshots").is_dir():
        hint = f"; {TOFU_HINT}" if kind == "TOFU" else ""
        raise DataError(
            f"{where}: {why} and the huggingface_hub cache {cache} does not hold it; download "
            f"it first (huggingface_hub.snapshot_download({repo_id!r}, repo_type='dataset')) "
            f"or pass a snapshot folder{hint}"
        )
    refs = {
        ref.relative_to(repo / "refs").as_posix(): ref.read_text().strip()
        for ref in sorted((repo / "refs").rglob("*")) if ref.is_file()
    }
    snapshots = sorted(path.name for path in (repo / "snapshots").iterdir())
    commit = refs.get(revision or "main", revision)
    if commit in snapshots:
        raise DataError(f"{where}: the huggingface_hub cache {cache} holds an incomplete "
                        f"snapshot {commit} (partial download: fetch it again)")
    raise DataError(
        f"{where}: wrong revision? {why} and the huggingface_hub cache {cache} holds only refs "
        f"{refs} and snapshots {snapshots} of it; pin one of those (a full 40-character commit "
        "hash) or download this revision"
    )


def _download(repo_id: str, snapshot: Path, patterns: list[str], label: str) -> None:
    """Fetch the files of ``patterns`` into a hub snapshot (same commit); files already in the
    cache are not fetched again."""
    try:
        snapshot_download(repo_id, repo_type="dataset", revision=snapshot.name,
                          cache_dir=snapshot.parents[2], allow_patterns=patterns)
    except Exception as err:  # a lost connection, a full disk, ...
        raise DataError(f"{label}: downloading {patterns} failed ({type(err).__name__}: "
                        f"{err})") from None


def _card(folder: Path) -> dict:
    """The YAML header of the folder's README.md (the hub's dataset card), or {}."""
    readme = folder / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    front_matter = re.match(r"---\s*\n(.*?)\n---", text, re.DOTALL)
    return (yaml.safe_load(front_matter.group(1)) if front_matter else None) or {}


def _listed_rows(folder: Path, config: str) -> int | None:
    """The train rows of ``config`` by the card's ``dataset_info`` (None where it says none)."""
    info = _card(folder).get("dataset_info", [])
    for entry in [info] if isinstance(info, dict) else info:
        if entry.get("config_name", "default") == config:
            rows = [s.get("num_examples") for s in entry.get("splits", []) if s["name"] == "train"]
            return rows[0] if rows else None
    return None


def _patterns(folder: Path, config: str, label: str) -> list[str]:
    """The train file patterns of ``config``, as listed by the ``configs:`` header of the
    folder's README.md (the hub layout)."""
    readme = folder / "README.md"
    listed = {c["config_name"]: c.get("data_files") for c in _card(folder).get("configs", [])}
    if config not in listed:
        cause = ("wrong revision? another revision of the data set may have it" if listed
                 else "not a hub snapshot, or a partial download without its README.md")
        if config in (*VALIDATION_CONFIGS["clear"], *VALIDATION_CONFIGS["tofu"]):
            cause = ("a validation config: only CLEAR-mini generated with validation_persons "
                     "> 0 has them; therem/CLEAR and locuslab/TOFU have no validation split")
        raise DataError(
            f"{label}: {readme} lists no such config (it lists: {', '.join(listed) or 'none'}; "
            f"{cause})"
        )
    spec = listed[config]
    return [p for entry in ([spec] if isinstance(spec, str) else spec) for p in _train(entry)]


def _local_files(folder: Path, config: str, label: str) -> tuple[str, list[str]]:
    """The ``datasets`` builder and the train files of ``config``, each checked to be whole.

    Local folders are loaded from their files rather than by folder name: ``datasets``
    keys the cache of a folder by its name and README only, so two folders with the same
    name (or one regenerated in place) would share stale data.
    """
    patterns = _patterns(folder, config, label)
    files = sorted({str(path) for pattern in patterns for path in folder.glob(pattern)})
    if not files:
        raise DataError(f"{label}: no files in {folder} match its train files {patterns} "
                        "(partial download? fetch the missing files)")
    builders = {_BUILDERS.get(Path(f).suffix) for f in files}
    if len(builders) != 1 or None in builders:
        raise DataError(f"{label}: files {files} are not all of one format of {list(_BUILDERS)}")
    problems = [f"{file} {problem}" for file in files if (problem := _file_problem(Path(file)))]
    if problems:
        raise DataError(f"{label}: " + "; ".join(problems))
    return builders.pop(), files


def _file_problem(path: Path) -> str | None:
    """Why a data file cannot be whole (a git-lfs pointer, a cut-off download), or None."""
    if not path.exists():
        return "is a link to a file that is not there (partial download: fetch it again)"
    size = path.stat().st_size
    with path.open("rb") as stream:
        head = stream.read(len(LFS_POINTER))
        stream.seek(max(0, size - 4))
        tail = stream.read()
    if head == LFS_POINTER:
        return ("is a git-lfs pointer file, not the data (cloned without git-lfs: run "
                "`git lfs install && git lfs pull` in the folder, or download it with "
                "huggingface_hub.snapshot_download)")
    if path.suffix == ".parquet" and (size < 12 or head[:4] != b"PAR1" or tail != b"PAR1"):
        return (f"is not a whole parquet file ({size} bytes without parquet's PAR1 end "
                "marker: partial download? fetch it again)")
    if _BUILDERS.get(path.suffix) == "json" and head[:1] == b"{":
        last = path.read_bytes().rstrip().rsplit(b"\n", 1)[-1]
        try:
            json.loads(last)
        except ValueError:
            return "ends in an incomplete JSON line (partial download? fetch it again)"
    return None


def _train(entry: str | dict) -> list[str]:
    """The train patterns of one ``data_files`` entry: a pattern, or ``{split, path}``."""
    if isinstance(entry, str):
        return [entry]
    if entry.get("split", "train") != "train":
        return []
    return [entry["path"]] if isinstance(entry["path"], str) else list(entry["path"])


def _check_texts(dataset: datasets.Dataset, column: Column, files: list[str], label: str) -> None:
    """Name the first row whose text (or one of whose texts) is null."""
    values = dataset.data.column(column.name).combine_chunks()
    nulls = pc.is_null(values)
    if column.kind == TEXTS:  # a list with a null in it is as bad as no list
        flat = pc.list_flatten(values)
        parents = pc.filter(pc.list_parent_indices(values), pc.is_null(flat))
        nulls = pc.or_(nulls, pc.is_in(pa.array(range(len(values))), parents))
    row = pc.index(nulls, True).as_py()
    if row >= 0:
        file, row_in_file = _locate(files, row)
        raise DataError(f"{label}: row {row} ({file}, row {row_in_file}) has a null in column "
                        f"{column.name!r} (expected {column.kind}; a broken conversion of the "
                        "data set? fetch it again)")


def _locate(files: list[str], row: int) -> tuple[str, int]:
    """The data file that holds ``row`` of the rows of ``files`` in order, and its row there."""
    for file in files:
        path = Path(file)
        rows = (pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet"
                else len(datasets.load_dataset(_BUILDERS[path.suffix], data_files=file,
                                               split="train")))
        if row < rows:
            return file, row
        row -= rows
    return files[-1], row


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
