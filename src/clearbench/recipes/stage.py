"""What every stage recipe shares: the data argument, the identity of the model it reads, and
an output folder that is either finished or absent.

A stage's identity (its key) is its own settings plus the content of the model and data it
reads, never their paths: changing anything upstream changes the key of every stage below it,
and a moved or copied run keeps every key. A stage works in a hidden partial folder beside its
output (``.NAME.partial``, where an interrupted stage resumes), writes its marker file
(``training.json`` and the like) last and then renames the folder into place, so a folder at
the output path always holds a finished stage.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import constants, hf_hub_download

from clearbench.data.loading import TOFU_HUB_ID, DataSource, is_hub_id
from clearbench.hashing import content_hash
from clearbench.io import read_json, write_text_atomic
from clearbench.paths import did_you_mean, looks_local

STAMP = ".stage"
"""The key of the stage a partial folder belongs to."""
RECORDS = {"base.json": "base", "training.json": "finetune", "unlearning.json": "unlearn"}
"""Each stage's marker file → the stage that wrote the model beside it."""
NOT_THE_MODEL = {*RECORDS, "memorisation.json"}
"""Files a stage writes beside a model's own files: not part of the model's content."""


def data_source(data: str, revision: str | None = None, tofu: str | None = None,
                tofu_revision: str | None = None) -> DataSource:
    """CLEAR from a hub id or a local folder; TOFU from ``tofu`` (default: ``locuslab/TOFU``
    for a hub id, ``data/tofu`` for a folder); a revision pins a hub id only."""
    if not is_hub_id(data):
        local = DataSource.local(Path(data))  # normalised paths, as recorded by earlier runs
        return DataSource(clear=local.clear, tofu=tofu or local.tofu, tofu_revision=tofu_revision)
    return DataSource(clear=data, clear_revision=revision, tofu=tofu or TOFU_HUB_ID,
                      tofu_revision=tofu_revision)


def model_key(model: str, revision: str | None = None) -> dict[str, str | None]:
    """What identifies a model: a hub id with its revision and the commit that resolves to now
    (None if it cannot be resolved: loading it will say why), or the hash of a local folder's
    files (weights, config, tokenizer; not the records a stage writes beside them)."""
    folder = Path(model).expanduser()
    if not folder.is_dir() and looks_local(model):
        raise FileNotFoundError(f"model folder {model} does not exist"
                                f"{unfinished_stage(model) or did_you_mean(model)}")
    if not folder.is_dir():
        try:
            config = hf_hub_download(model, "config.json", revision=revision,
                                     local_files_only=constants.is_offline_mode())
            commit: str | None = Path(config).parent.name
        except Exception:  # offline and not cached, a typo, ...: the model load reports it
            commit = None
        return {"hub_id": model, "revision": revision, "commit": commit}
    check_finished_model(folder)
    return {"content_hash": model_files_hash(folder)}


def model_files_hash(folder: Path) -> str:
    """The hash of a model folder's own files (not the records a stage writes beside them)."""
    files = [path for path in Path(folder).iterdir()
             if path.is_file() and path.name not in NOT_THE_MODEL and not path.name.startswith(".")]
    return content_hash(folder, files)


def trained_as(model: str) -> dict[str, Any] | None:
    """What a clearbench stage made of a local model folder, from its record (None for a hub
    id or a folder no stage wrote): the stage, its training split, forget split and method."""
    for name, stage in RECORDS.items():
        path = Path(model) / name
        if path.is_file():
            config = read_json(path, what=f"{stage} record").get("config", {})
            return {"stage": stage, **{key: config.get(key)
                                       for key in ("split", "forget_split", "method")}}
    return None


def partial_folder(out: Path) -> Path:
    """Where the stage writing ``out`` works until it is finished."""
    return out.with_name(f".{out.name}.partial")


def check_finished_model(folder: Path) -> None:
    """Refuse a stage's unfinished folder (or a diverged unlearning) as a model to read."""
    folder = Path(folder)
    if (folder / STAMP).is_file() or folder.name.endswith(".partial"):
        raise ValueError(f"{folder} is an unfinished stage (interrupted?); rerun the command "
                         "that writes it to finish it")
    if not any((folder / name).is_file() for name in RECORDS) and (
            (folder / "checkpoint").is_dir() or (folder / "memorisation.json").is_file()):
        raise ValueError(f"{folder} holds a clearbench stage's files but no record of it "
                         f"finishing ({', '.join(RECORDS)}): unfinished or damaged; rerun the "
                         "command that writes it")
    unlearning = folder / "unlearning.json"
    if unlearning.is_file():
        status = read_json(unlearning, what="unlearning record").get("status")
        if status != "ok":
            raise ValueError(f"{folder}: the unlearning {status}; it holds no model")


def unfinished_stage(model: str) -> str:
    """For a model path that does not exist but whose stage is unfinished: where that is;
    else ""."""
    partial = partial_folder(Path(model))
    if Path(model).exists() or not partial.is_dir():
        return ""
    return (f"; {partial} holds its unfinished stage: rerun the command that writes it to "
            "finish it")


class StaleStage(FileExistsError):
    """A stage folder holding something other than this stage's finished result: ``reason``
    says what (a run removes the folder and redoes the stage; a command refuses)."""

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(f"{folder}: {reason}; choose another --out or delete it")
        self.folder = folder
        self.reason = reason


def finished(marker: Path, expected_hash: str, *, what: str) -> bool:
    """True if ``marker`` records a finished stage with these settings.

    A marker with other settings is refused rather than silently reused or overwritten.
    """
    if not marker.is_file():
        return False
    recorded = read_json(marker, what=what).get("settings_hash")
    if recorded != expected_hash:
        raise StaleStage(marker.parent, f"holds a {what} made with other settings or inputs "
                                        f"(key {recorded}, now {expected_hash})")
    return True


@dataclass(frozen=True)
class StageFolder:
    """The output folder of a model stage, written atomically (see the module docstring)."""

    out: Path
    marker: str
    key: str
    what: str

    @property
    def partial(self) -> Path:
        return partial_folder(self.out)

    def done(self) -> bool:
        """True if ``out`` holds this stage finished, its model files as the stage wrote them
        (``model_hash`` of the record); StaleStage if it holds something else."""
        if finished(self.out / self.marker, self.key, what=self.what):
            written = read_json(self.out / self.marker, what=self.what).get("model_hash")
            if written is not None and model_files_hash(self.out) != written:
                raise StaleStage(self.out, "its model files changed since the stage wrote them "
                                           "(deleted or edited?)")
            return True
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise StaleStage(self.out, f"holds no finished {self.what}")
        return False

    def begin(self) -> Path:
        """The partial folder to work in (kept to resume from when it belongs to this key, else
        emptied). Call on one process only."""
        partial = self.partial
        stamp = partial / STAMP
        if partial.is_dir() and (not stamp.is_file() or stamp.read_text() != self.key):
            print(f"{partial}: left by an interrupted run with other settings; starting afresh")
            shutil.rmtree(partial)
        partial.mkdir(parents=True, exist_ok=True)
        write_text_atomic(stamp, self.key)
        return partial

    def commit(self) -> None:
        """Move the finished partial folder (marker written) into place."""
        (self.partial / STAMP).unlink()
        os.replace(self.partial, self.out)
