"""Training views: CLEAR/TOFU configs turned into :class:`Example` lists (spec §2)."""

from __future__ import annotations

from typing import Any

from clearbench.data.examples import Example
from clearbench.data.loading import DataSource, load_clear, load_tofu
from clearbench.data.preflight import Need
from clearbench.data.prompts import FACE_NAME_PROMPT, caption_prompt
from clearbench.data.schema import FORGET_SPLITS, VALIDATION_SPLITS, DataError, retain_split_of

_SPLITS = ("full", *FORGET_SPLITS, *FORGET_SPLITS.values(), *VALIDATION_SPLITS,
           *VALIDATION_SPLITS.values())
TRAINING_VIEWS: tuple[str, ...] = (
    *(f"{split}+tofu" for split in _SPLITS),
    *_SPLITS,
    *(f"tofu:{split}" for split in _SPLITS),
    "pretrain",
)
"""Names :func:`training_examples` accepts: ``X+tofu`` (images and text QA), ``X`` (CLEAR
images only), ``tofu:X`` (TOFU text only) and CLEAR-mini's ``pretrain``; X is ``full``, a
forget or retain split, or a validation one (``forget_val``, ``retain_val``)."""


def split_names(split: str) -> tuple[str, str]:
    """The forget split and its retain complement, e.g. ``forget10`` → (forget10, retain90),
    ``forget_val`` → (forget_val, retain_val)."""
    return split, retain_split_of(split)


def is_text_view(name: str) -> bool:
    """Whether a view holds TOFU text QA only (``tofu:X``): the text-only track's data."""
    return name.startswith("tofu:")


def view_split(name: str) -> str:
    """The split a training view is made of: ``tofu:retain90`` and ``retain90+tofu`` →
    ``retain90``."""
    return name.removeprefix("tofu:").removesuffix("+tofu")


def _check_view(name: str) -> None:
    if name not in TRAINING_VIEWS:
        raise DataError(f"unknown training data {name!r}; valid: {', '.join(TRAINING_VIEWS)}")


def row_example(row: dict[str, Any], example_id: str) -> Example:
    """One row as an Example: a question row answers it, a caption row captions its image.

    Caption rows get the fixed captioning question of their caption (:func:`caption_prompt`),
    so one image has the same prompt in every config it appears in and in evaluation.
    """
    image, person = row.get("image"), row.get("name") or ""
    if row.get("question"):
        return Example(row["question"], row["answer"], image, example_id, person)
    return Example(caption_prompt(row["caption"]), row["caption"], image, example_id, person)


def view_needs(name: str, *, face_names: bool = False) -> list[Need]:
    """The configs :func:`training_examples` reads for a view, and with ``face_names`` those
    :func:`face_name_examples` reads too."""
    _check_view(name)
    if is_text_view(name):
        return [Need("tofu", view_split(name))]
    needs = [Need("clear", name)]
    if face_names and name != "pretrain":
        needs.append(Need("clear", name.removesuffix("+tofu")))
    return needs


def training_examples(source: DataSource, name: str) -> list[Example]:
    """The examples of a training view (see :data:`TRAINING_VIEWS`), ids ``"{name}/{row}"``.

    ``X+tofu`` rows with an image are captioning examples, rows without one are TOFU QA.
    """
    _check_view(name)
    if is_text_view(name):
        dataset = load_tofu(source, view_split(name))
    else:
        dataset = load_clear(source, name)
    return [row_example(row, f"{name}/{i}") for i, row in enumerate(dataset)]


def face_name_examples(source: DataSource, name: str) -> list[Example]:
    """"The name of the person on the image is" → name, for every image of a training view
    (none for text-only views); ids ``"{name}/face_name/{row}"``."""
    _check_view(name)
    if is_text_view(name) or name == "pretrain":
        return []
    dataset = load_clear(source, name.removesuffix("+tofu")).select_columns(["image", "name"])
    return [
        Example(FACE_NAME_PROMPT, row["name"], row["image"], f"{name}/face_name/{i}", row["name"])
        for i, row in enumerate(dataset)
    ]
