"""Column schemas of every CLEAR and TOFU config (spec §1.1), and the data layer's error type.

A schema lists the columns a config must have; real data may carry extra ones. The same
schemas give the ``datasets`` features the CLEAR-mini generator writes, so the generated
folders and the hub data sets are checked by one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets


class DataError(ValueError):
    """Bad input data: names the source, config, column or row at fault and what was expected."""


IMAGE = "image"
TEXT = "string"
TEXTS = "list[string]"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    """:data:`IMAGE`, :data:`TEXT` or :data:`TEXTS`."""
    nullable: bool = False
    """Rows may hold ``None`` (an image column of a mixed image/text config)."""
    optional: bool = False
    """The column may be absent altogether."""


def _columns(*spec: str | Column) -> tuple[Column, ...]:
    """``"name"`` is a required text column, ``"name*"`` a list of strings, ``"image"`` an image."""
    columns = []
    for item in spec:
        if isinstance(item, Column):
            columns.append(item)
        elif item == "image":
            columns.append(Column("image", IMAGE))
        elif item.endswith("*"):
            columns.append(Column(item[:-1], TEXTS))
        else:
            columns.append(Column(item, TEXT))
    return tuple(columns)


FORGET_SPLITS: dict[str, str] = {
    "forget01": "retain99",
    "forget05": "retain95",
    "forget10": "retain90",
}
"""Each *test* forget split and the retain split that is its complement."""
VALIDATION_SPLITS: dict[str, str] = {"forget_val": "retain_val"}
"""The validation forget split (persons to tune hyper-parameters on, disjoint from forget10)
and its retain split: every fictitious person but forget10's and the validation persons, so a
gold model of the validation split never saw a test forget person either. Only CLEAR-mini
with ``validation_persons`` has them (docs/architecture.md, "Validation persons")."""
EVALUATED_SPLITS: tuple[str, ...] = (*FORGET_SPLITS, *VALIDATION_SPLITS)
"""The forget splits a model can be evaluated (and unlearned) on: the test splits and
``forget_val``."""


def retain_split_of(split: str) -> str:
    """The retain split of a forget split: ``forget10`` → ``retain90``, ``forget_val`` →
    ``retain_val``."""
    splits = FORGET_SPLITS | VALIDATION_SPLITS
    if split not in splits:
        raise DataError(f"unknown forget split {split!r}; valid: {', '.join(splits)}")
    return splits[split]


_OPTIONAL_IMAGE = Column("image", IMAGE, nullable=True)
_FACES = _columns("image", "caption", "name")
_MIXED = _columns(_OPTIONAL_IMAGE, "caption", "question", "answer")
_FACES_EVAL = _columns(
    "image", "caption", "name", "perturbed_captions*", "paraphrased_caption", "perturbed_names*"
)
_QA = _columns("question", "answer")
_QA_EVAL = _columns(
    "question",
    "answer",
    "paraphrased_answer",
    Column("paraphrased_question", TEXT, optional=True),
    "perturbed_answer*",
)
_QA_OPTIONS = _columns(
    "question",
    "answer",
    Column("paraphrased_answer", TEXT, optional=True),
    Column("paraphrased_question", TEXT, optional=True),
    "perturbed_answer*",
)
"""TOFU's real-authors and world-facts sets: the hub files have no paraphrase (spec §4)."""
_SPLITS = ("full", *FORGET_SPLITS, *FORGET_SPLITS.values())
_VALIDATION = (*VALIDATION_SPLITS, *VALIDATION_SPLITS.values())

CLEAR_SCHEMAS: dict[str, tuple[Column, ...]] = {
    **{name: _FACES for name in _SPLITS},
    **{f"{name}+tofu": _MIXED for name in _SPLITS},
    **{f"{name}_perturbed": _FACES_EVAL for name in FORGET_SPLITS},
    "retain_perturbed": _FACES_EVAL,
    "real_faces": _columns("image", "answer", "options*"),
    "real_world": _columns("image", "question", "answer", "options*"),
    # CLEAR-mini only:
    "holdout": _FACES,
    "pretrain": _columns(_OPTIONAL_IMAGE, "question", "answer"),
    # CLEAR-mini with validation persons only:
    **{name: _FACES for name in _VALIDATION},
    **{f"{name}+tofu": _MIXED for name in _VALIDATION},
    **{f"{name}_perturbed": _FACES_EVAL for name in VALIDATION_SPLITS},
}
TOFU_SCHEMAS: dict[str, tuple[Column, ...]] = {
    **{name: _QA for name in _SPLITS},
    **{f"{name}_perturbed": _QA_EVAL for name in FORGET_SPLITS},
    "retain_perturbed": _QA_EVAL,
    "real_authors_perturbed": _QA_OPTIONS,
    "world_facts_perturbed": _QA_OPTIONS,
    # CLEAR-mini only: the holdout persons' biography QA, as TOFU's `forgetNN`
    "holdout": _QA,
    **{name: _QA for name in _VALIDATION},
    **{f"{name}_perturbed": _QA_EVAL for name in VALIDATION_SPLITS},
}
VALIDATION_CONFIGS: dict[str, tuple[str, ...]] = {
    "clear": ("forget_val", "retain_val", "forget_val+tofu", "retain_val+tofu",
              "forget_val_perturbed"),
    "tofu": ("forget_val", "retain_val", "forget_val_perturbed"),
}
"""The CLEAR and TOFU configs of :data:`VALIDATION_SPLITS`: optional, only CLEAR-mini
generated with validation persons has them."""
CLEAR_CONFIGS: tuple[str, ...] = tuple(c for c in CLEAR_SCHEMAS
                                       if c not in VALIDATION_CONFIGS["clear"])
"""Every CLEAR config, CLEAR-mini's included (see :data:`MINI_ONLY_CONFIGS`), but the optional
validation configs (:data:`VALIDATION_CONFIGS`)."""
TOFU_CONFIGS: tuple[str, ...] = tuple(c for c in TOFU_SCHEMAS
                                      if c not in VALIDATION_CONFIGS["tofu"])
"""Every TOFU config, CLEAR-mini's included (see :data:`MINI_ONLY_CONFIGS`), but the optional
validation configs."""
MINI_ONLY_CONFIGS: dict[str, tuple[str, ...]] = {"clear": ("holdout", "pretrain"),
                                                 "tofu": ("holdout",)}
"""The CLEAR and TOFU configs that only CLEAR-mini has, not the hub's ``therem/CLEAR`` and
``locuslab/TOFU``: the holdout persons' images and QA (never trained on) and the mini base
model's ``pretrain``."""


def features(columns: tuple[Column, ...]) -> datasets.Features:
    """The ``datasets`` features of a schema (what the CLEAR-mini generator writes)."""
    kinds = {
        IMAGE: datasets.Image(),
        TEXT: datasets.Value("string"),
        TEXTS: datasets.List(datasets.Value("string")),
    }
    return datasets.Features({column.name: kinds[column.kind] for column in columns})


def _has_kind(feature: object, kind: str) -> bool:
    if kind == IMAGE:
        return isinstance(feature, datasets.Image)
    if kind == TEXT:
        return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")
    return isinstance(feature, (datasets.List, datasets.LargeList)) and _has_kind(
        feature.feature, TEXT
    )


def check_columns(found: datasets.Features, columns: tuple[Column, ...], where: str) -> None:
    """Raise :class:`DataError` naming every required column that is missing or has the wrong
    type."""
    problems = []
    for column in columns:
        if column.name not in found:
            if not column.optional:
                problems.append(f"missing column {column.name!r} (expected {column.kind})")
        elif not _has_kind(found[column.name], column.kind):
            problems.append(
                f"column {column.name!r} is {found[column.name]}, expected {column.kind}")
    if problems:
        raise DataError(f"{where}: {'; '.join(problems)}; the data set has {sorted(found)} "
                        "(wrong revision, or not this data set?)")
