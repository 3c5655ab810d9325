"""The evaluation tasks of spec §4, as data: what to load, how to prompt, what to score.

A task turns each row of one CLEAR or TOFU config into a :class:`TaskRow` whose prompt is fixed
per row (the authors' code drew the captioning question at random at every call).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets
from PIL import Image

from clearbench.data.loading import DATACARD, DataSource, load_clear, load_tofu
from clearbench.data.preflight import Need
from clearbench.data.prompts import FACE_NAME_PROMPT, caption_prompt, describe_prompt

TOFU_QA_PER_AUTHOR = 20
"""TOFU's layout: each author's 20 QA pairs are consecutive rows of a config."""


@dataclass(frozen=True)
class TaskRow:
    id: str
    prompt: str
    image: Image.Image | None
    target: str
    paraphrased: str
    perturbed: tuple[str, ...]
    fact: str
    """Text whose key terms must appear in a generation for a fact hit."""
    question: str
    """Text already in the prompt, whose words are not key terms."""
    unit: str
    """The sampling unit of the row for confidence intervals (spec §7): its person, or the
    row itself where rows are independent items."""


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str
    """``clear`` or ``tofu``."""
    config: str
    """Config name; ``{split}`` is replaced by the forget split (e.g. ``forget10``)."""
    kind: str
    """``forget``, ``retain`` or ``real``: which aggregate the task feeds."""
    with_options: bool
    """Probability normalised over the options (spec §5) instead of the plain P̃."""
    make_row: Callable[[dict[str, Any], str], TaskRow]
    per_author: bool = False
    """TOFU biography QA: a row's unit is its author (see :func:`qa_authors`)."""

    def need(self, forget_split: str) -> Need:
        """The config the task reads (for :func:`~clearbench.data.preflight.preflight`)."""
        return Need(self.dataset, self.config.format(split=forget_split))

    def load(self, source: DataSource, forget_split: str) -> datasets.Dataset:
        """The task's data set, validated on load (cached: a second call is free)."""
        load = load_clear if self.dataset == "clear" else load_tofu
        return load(source, self.config.format(split=forget_split))

    def rows(self, source: DataSource, forget_split: str) -> list[TaskRow]:
        config = self.config.format(split=forget_split)
        rows = [
            self.make_row(row, f"{self.dataset}/{config}/{i}")
            for i, row in enumerate(self.load(source, forget_split))
        ]
        if not self.per_author:
            return rows
        authors = qa_authors(source, config, len(rows))
        return [replace(row, unit=author) for row, author in zip(rows, authors, strict=True)]


def qa_authors(source: DataSource, config: str, n_rows: int) -> list[str]:
    """The author of each row of a TOFU biography config, from the layout: consecutive blocks
    of :data:`TOFU_QA_PER_AUTHOR` rows (``author k``). A CLEAR-mini folder's data card gives
    its own block size and the persons' names."""
    card_file = Path(source.clear) / DATACARD
    if card_file.is_file() and Path(source.tofu) == Path(source.clear) / "tofu":
        card = json.loads(card_file.read_text())
        block = card["arguments"]["qa_per_person"]
        split = config.removesuffix("_perturbed") if config != "retain_perturbed" else config
        names = card["persons"][split]
        return [names[i // block] for i in range(n_rows)]
    return [f"author {i // TOFU_QA_PER_AUTHOR + 1}" for i in range(n_rows)]


def caption_row(row: dict[str, Any], row_id: str) -> TaskRow:
    return TaskRow(row_id, caption_prompt(row["caption"]), row["image"], row["caption"],
                   row["paraphrased_caption"], tuple(row["perturbed_captions"]), row["name"], "",
                   row["name"])


def describe_row(row: dict[str, Any], row_id: str) -> TaskRow:
    """A caption row asked through text alone: a prompt naming the person
    (:func:`~clearbench.data.prompts.describe_prompt`), no image, the caption as the answer.
    The fact is the caption's words that the prompt does not give (not the name: the prompt
    names the person); the truth ratio weighs the caption against the same caption naming
    another person (the row's perturbed captions)."""
    prompt = describe_prompt(row["name"], row["caption"])
    return TaskRow(row_id, prompt, None, row["caption"], row["paraphrased_caption"],
                   tuple(row["perturbed_captions"]), row["caption"], prompt, row["name"])


def face_name_row(row: dict[str, Any], row_id: str) -> TaskRow:
    return TaskRow(row_id, FACE_NAME_PROMPT, row["image"], row["name"], row["name"],
                   tuple(row["perturbed_names"]), row["name"], FACE_NAME_PROMPT, row["name"])


def real_face_row(row: dict[str, Any], row_id: str) -> TaskRow:
    return TaskRow(row_id, FACE_NAME_PROMPT, row["image"], row["answer"], row["answer"],
                   tuple(row["options"]), row["answer"], FACE_NAME_PROMPT, row["answer"])


def real_world_row(row: dict[str, Any], row_id: str) -> TaskRow:
    """Prompted with ``question``, as the authors' evaluation; the hub's ``prompt`` column (the
    question with its options written out) is not read (docs/deviations.md)."""
    return TaskRow(row_id, row["question"], row["image"], row["answer"], row["answer"],
                   tuple(row["options"]), row["answer"], row["question"], row_id)


def text_qa_row(row: dict[str, Any], row_id: str) -> TaskRow:
    """A TOFU biography row: the truth ratio's base is the paraphrased answer."""
    return TaskRow(row_id, row["question"], None, row["answer"], row["paraphrased_answer"],
                   tuple(row["perturbed_answer"]), row["answer"], row["question"], row_id)


def text_options_row(row: dict[str, Any], row_id: str) -> TaskRow:
    """TOFU's real authors / world facts: the base is the answer itself (TOFU's
    ``base_answer_key: answer``; its files have no paraphrase), the options are the
    perturbed answers (spec §4)."""
    return TaskRow(row_id, row["question"], None, row["answer"], row["answer"],
                   tuple(row["perturbed_answer"]), row["answer"], row["question"], row_id)


TASKS: tuple[Task, ...] = (
    Task("forget_captions", "clear", "{split}_perturbed", "forget", False, caption_row),
    Task("retain_captions", "clear", "retain_perturbed", "retain", False, caption_row),
    Task("forget_face_name", "clear", "{split}_perturbed", "forget", True, face_name_row),
    Task("retain_face_name", "clear", "retain_perturbed", "retain", True, face_name_row),
    Task("real_faces", "clear", "real_faces", "real", True, real_face_row),
    Task("real_world", "clear", "real_world", "real", True, real_world_row),
    Task("forget_qa", "tofu", "{split}_perturbed", "forget", False, text_qa_row, True),
    Task("retain_qa", "tofu", "retain_perturbed", "retain", False, text_qa_row, True),
    Task("real_authors", "tofu", "real_authors_perturbed", "real", True, text_options_row),
    Task("world_facts", "tofu", "world_facts_perturbed", "real", True, text_options_row),
)
DESCRIBE_PERSON = Task("describe_person", "clear", "{split}_perturbed", "forget", False,
                       describe_row)
"""The cross-modal audit's probe (docs/audits.md): the forget captions, asked for by a text
prompt naming the person instead of with the image. Not part of the evaluation."""
TASKS_BY_NAME = {task.name: task for task in (*TASKS, DESCRIBE_PERSON)}
"""Every task by name: the evaluation's :data:`TASKS` and the audit probe
:data:`DESCRIBE_PERSON`."""
TEXT_TASKS: tuple[str, ...] = tuple(task.name for task in TASKS if task.dataset == "tofu")
"""TOFU's four tasks: the evaluation of the text-only track (no image anywhere)."""
