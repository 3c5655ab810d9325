"""Face-identification data of the vision-only track, from any CLEAR folder or hub id.

Identities and their images:

- **celebrities** (``real_faces``: ``image``, ``answer``): the pretraining pool;
- **CLEAR persons** (``full``: ``image``, ``name``), split into forget (``forgetNN``) and
  retain persons; every image of theirs is a training image (a *member*) and a query;
- **holdout persons**, never trained on: CLEAR-mini's ``holdout`` config; the hub data set has
  none, so there ``holdout_persons`` retain persons are drawn (fixed draw) and left out of
  every training set.

Identification accuracy enrols each identity with ``enrol_images`` images that no model ever
trains on. The hub data set has ~19 images per person, so they are drawn from the person's
own images (which are then neither trained on nor queried). CLEAR-mini has only 4 to 10 per
person: all of them stay training images (so the forget set is exactly the data set's forget
config), and the enrolment images are *rendered* with CLEAR-mini's own face renderer: the
identity's :class:`~clearbench.data.synth.faces.Look`, new shots. Flips or crops of the
training images would not do: enrolling with (near) copies of the training images measures
memorisation of those pixels, not recognition of the person, and Twins treats the flipped
copy as an unseen twin. The looks are recomputed from the data card; that they are the data
set's looks is checked by re-rendering each identity's first image, pixel for pixel.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clearbench.data.loading import DATACARD, DataSource, load_clear
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import FORGET_SPLITS, DataError
from clearbench.data.synth.faces import Look, distinct_looks, random_shot, render
from clearbench.data.synth.generate import look_order
from clearbench.data.synth.text import EXPRESSIONS, LIGHTS, SCENES
from clearbench.io import read_json

SUPPORTED_GENERATOR_VERSIONS = (3, 4)
"""CLEAR-mini generator versions whose looks :func:`mini_looks` knows how to recompute (4 added
the holdout persons' QA and rendered the same faces)."""


@dataclass(frozen=True)
class Faces:
    """Images ``(n, 3, size, size)`` scaled to [−1, 1] and identity labels ``(n,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def of(self, identities: Sequence[int]) -> Faces:
        """The images whose label is one of ``identities``."""
        keep = torch.isin(self.labels, torch.as_tensor(list(identities), dtype=torch.long))
        return Faces(self.images[keep], self.labels[keep])


@dataclass(frozen=True)
class FaceData:
    """Everything the vision-only track trains and measures on.

    ``identities`` lists the CLEAR persons the models learn (label ``i`` < ``classes``) and
    then the holdout persons; ``forget``, ``retain`` and ``holdout`` are label lists.
    """

    identities: tuple[str, ...]
    classes: int
    forget: tuple[int, ...]
    retain: tuple[int, ...]
    holdout: tuple[int, ...]
    queries: Faces
    """Every image of the CLEAR and holdout persons but the enrolment ones; those of the
    CLEAR persons are the training images."""
    enrolment: Faces
    celebrities: tuple[str, ...]
    pretrain: Faces
    """Celebrity images, labels over ``celebrities``."""

    def training(self, persons: Sequence[int]) -> Faces:
        """The training images of ``persons`` (all CLEAR persons, or the retain persons)."""
        if any(p >= self.classes for p in persons):
            raise ValueError("holdout persons are never trained on")
        return self.queries.of(persons)


def to_tensor(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """``(n, 3, size, size)`` float images in [−1, 1] (resized when not ``size`` square)."""
    arrays = []
    for image in images:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(image, dtype=np.float32))
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return stacked / 127.5 - 1.0


def is_mini(source: DataSource) -> bool:
    """Whether ``source`` is a CLEAR-mini folder (it has a data card)."""
    return (Path(source.clear) / DATACARD).is_file()


def _rows(source: DataSource, config: str, name_column: str) -> tuple[list[Image.Image], list[str]]:
    dataset = load_clear(source, config)
    if name_column not in dataset.column_names:
        raise DataError(f"CLEAR {source.clear} config {config!r} has no {name_column!r} column")
    return list(dataset["image"]), [str(n) for n in dataset[name_column]]


def _group(images: list[Image.Image], names: list[str]) -> dict[str, list[Image.Image]]:
    groups: dict[str, list[Image.Image]] = {}
    for image, name in zip(images, names, strict=True):
        groups.setdefault(name, []).append(image)
    return groups


def mini_looks(source: DataSource) -> tuple[dict[str, Look], dict]:
    """Every CLEAR-mini identity's look (persons, holdout, celebrities) and the data card,
    recomputed as the generator drew them."""
    card = read_json(Path(source.clear) / DATACARD, what="CLEAR-mini data card")
    if card.get("version") not in SUPPORTED_GENERATOR_VERSIONS:
        raise DataError(
            f"{source.clear}/{DATACARD}: generator version {card.get('version')!r}; the CV "
            f"track re-renders faces of versions {SUPPORTED_GENERATOR_VERSIONS} only"
        )
    persons = card["persons"]
    names = look_order(persons["evaluated"], persons["fictitious"], persons["holdout"],
                       persons["celebrities"])
    seed = card["arguments"]["seed"]
    looks = distinct_looks(random.Random(f"{seed}:looks"), len(names))
    return dict(zip(names, looks, strict=True)), card


def _check_look(source: DataSource, card: dict, name: str, look: Look, first: Image.Image,
                per_identity: int) -> None:
    """Re-render the first image of ``name`` as the generator did; it must match exactly."""
    rng = random.Random(f"{card['arguments']['seed']}:photos:{name}")
    shots = rng.sample(list(itertools.product(SCENES, LIGHTS, EXPRESSIONS)), per_identity)
    again = render(look, random_shot(rng, *shots[0]))
    if not np.array_equal(np.asarray(again), np.asarray(first.convert("RGB"))):
        raise DataError(
            f"{source.clear}: cannot re-render {name!r} as the data set shows them (the "
            "generator changed?); regenerate the folder with `clearbench data synth`"
        )


def render_faces(look: Look, name: str, count: int, purpose: str) -> list[Image.Image]:
    """``count`` new images of an identity: its look in random shots, seeded by name and
    ``purpose`` (so enrolment and pretraining renders differ)."""
    rng = random.Random(f"cv:{purpose}:{name}")
    combos = list(itertools.product(SCENES, LIGHTS, EXPRESSIONS))
    return [render(look, random_shot(rng, *rng.choice(combos))) for _ in range(count)]


def face_needs(source: DataSource, forget_split: str) -> list[Need]:
    """The configs :func:`load_faces` reads."""
    return [Need("clear", config) for config in
            ("full", forget_split, "real_faces", *(["holdout"] if is_mini(source) else []))]


def load_faces(
    source: DataSource,
    forget_split: str = "forget10",
    *,
    image_size: int = 64,
    enrol_images: int = 5,
    holdout_persons: int = 10,
    pretrain_renders: int = 0,
) -> FaceData:
    """The face-identification data of ``source`` (see the module docstring).

    ``holdout_persons`` matters only without a ``holdout`` config (the hub);
    ``pretrain_renders`` extra rendered images per celebrity need a CLEAR-mini folder.
    """
    if forget_split not in FORGET_SPLITS:
        raise ValueError(f"unknown forget split {forget_split!r}; "
                         f"choose {', '.join(FORGET_SPLITS)}")
    if enrol_images < 1:
        raise ValueError(f"enrol_images must be ≥ 1, got {enrol_images}")
    mini = is_mini(source)
    if pretrain_renders and not mini:
        raise ValueError("pretrain_renders needs a CLEAR-mini folder (it renders their faces)")
    preflight(source, face_needs(source, forget_split))
    person_images = _group(*_rows(source, "full", "name"))
    forgotten = set(_rows(source, forget_split, "name")[1])
    unknown = forgotten - person_images.keys()
    if unknown:
        raise DataError(f"CLEAR {source.clear}: config {forget_split!r} names persons missing "
                        f"from 'full': {sorted(unknown)[:3]}")
    celebrity_images = _group(*_rows(source, "real_faces", "answer"))

    enrol: dict[str, list[Image.Image]] = {}
    if mini:
        holdout_images = _group(*_rows(source, "holdout", "name"))
        looks, card = mini_looks(source)
        for group in (person_images, holdout_images, celebrity_images):
            for name, images in group.items():
                if name not in looks:
                    raise DataError(f"{source.clear}: {name!r} is not in {DATACARD}")
                _check_look(source, card, name, looks[name], images[0], len(images))
        for name in [*person_images, *holdout_images]:
            enrol[name] = render_faces(looks[name], name, enrol_images, "enrol")
        for name in celebrity_images:
            celebrity_images[name] = celebrity_images[name] + render_faces(
                looks[name], name, pretrain_renders, "pretrain")
    else:
        candidates = sorted(set(person_images) - forgotten)
        if holdout_persons >= len(candidates):
            raise ValueError(f"holdout_persons={holdout_persons} leaves no retain person "
                             f"({len(candidates)} retain persons)")
        drawn = set(random.Random("cv:holdout").sample(candidates, holdout_persons))
        holdout_images = {n: person_images.pop(n) for n in list(person_images) if n in drawn}
        for name, images in [*person_images.items(), *holdout_images.items()]:
            if len(images) <= enrol_images:
                raise DataError(f"CLEAR {source.clear} config 'full': {name!r} has "
                                f"{len(images)} images; enrolment needs more than {enrol_images}")
            picked = set(random.Random(f"cv:enrol:{name}").sample(range(len(images)),
                                                                  enrol_images))
            enrol[name] = [images[i] for i in sorted(picked)]
            images[:] = [image for i, image in enumerate(images) if i not in picked]

    identities = (*person_images, *holdout_images)
    index = {name: i for i, name in enumerate(identities)}

    def faces(groups: dict[str, list[Image.Image]], labels: dict[str, int]) -> Faces:
        images = [image for name in groups for image in groups[name]]
        ids = [labels[name] for name in groups for _ in groups[name]]
        return Faces(to_tensor(images, image_size), torch.tensor(ids, dtype=torch.long))

    celebrities = tuple(celebrity_images)
    return FaceData(
        identities=identities,
        classes=len(person_images),
        forget=tuple(index[n] for n in person_images if n in forgotten),
        retain=tuple(index[n] for n in person_images if n not in forgotten),
        holdout=tuple(index[n] for n in holdout_images),
        queries=faces({**person_images, **holdout_images}, index),
        enrolment=faces(enrol, index),
        celebrities=celebrities,
        pretrain=faces(celebrity_images, {n: i for i, n in enumerate(celebrities)}),
    )

