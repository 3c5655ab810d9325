"""Generate CLEAR-mini: a small offline data set in the exact layout of the hub's CLEAR + TOFU.

Fictitious persons get a fixed procedurally drawn face, captioned images in varied scenes and
a TOFU-style biography; forget/retain splits are by person (spec §1.1). A separate pool of
"celebrities", shape pictures, famous authors and facts of a fictional world play the part of
the real-world knowledge behind the Real metrics; the ``pretrain`` config holds all of it for
the mini base model. ``holdout`` persons appear in no training config: their captioned images
are CLEAR's ``holdout``, their biography QA TOFU's ``holdout`` (made as a forget person's
training rows), the membership audit's non-members.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from clearbench.config import NonNegativeInt, PositiveInt, settings
from clearbench.data.loading import DATACARD, folder_hash
from clearbench.data.prompts import FACE_NAME_PROMPT, caption_prompt
from clearbench.data.schema import (
    CLEAR_SCHEMAS,
    FORGET_SPLITS,
    TOFU_SCHEMAS,
    VALIDATION_CONFIGS,
    VALIDATION_SPLITS,
    DataError,
)
from clearbench.data.synth import vocab
from clearbench.data.synth.faces import Look, distinct_looks, random_shot, render
from clearbench.data.synth.layout import png, write_configs
from clearbench.data.synth.objects import (
    BACKGROUNDS,
    SHAPES,
    random_still,
    render_still,
    still_caption,
    still_questions,
)
from clearbench.data.synth.text import (
    AUTHORSHIP,
    BIOGRAPHY,
    CAPTIONS,
    EXPRESSIONS,
    LIGHTS,
    SCENES,
    WORDINGS,
    WORLD,
    biography_rows,
    caption,
    option_row,
    rotation,
    wrong_values,
)

GENERATOR_VERSION = 4
"""Bumped whenever the same arguments would generate different data (2: facts in several
wordings, paraphrases held out per fact, perturbed names never trained, TOFU-layout real
sets without paraphrases; 3: milder night, lighter dark scenes, smaller tilt; 4: the holdout
persons' biography QA, TOFU config ``holdout``, every other config unchanged)."""

Row = dict[str, Any]


@settings(frozen=True)
class SynthConfig:
    """Sizes of a CLEAR-mini data set (every count is a parameter).

    The defaults give 4 forget10 and 4 ``retain_perturbed`` persons (the *evaluated* persons)
    with 10 images and 10 biography facts each: 40 rows per forget and per retain task, enough
    for the KS test to separate a model that knows the persons from one that never saw them
    (docs/statistics.md). The 28 other persons only shape the models and serve as retain
    data; they get fewer images and facts, which halves fine-tuning on 2 CPU cores.
    """

    persons: PositiveInt = 36
    seed: int = 0
    images_per_person: PositiveInt = 10
    """Images of each evaluated person (forget10 and ``retain_perturbed``) and holdout person."""
    qa_per_person: PositiveInt = 10
    """Biography facts of each evaluated person and holdout person."""
    other_images_per_person: PositiveInt | None = 3
    """Images of each other person (None: ``images_per_person``, as on the hub)."""
    other_qa_per_person: PositiveInt | None = 3
    """Biography facts of each other person (None: ``qa_per_person``, as on the hub)."""
    answer_wordings: PositiveInt = 2
    """Wordings each biography fact is trained in (the paraphrase's wording is never one)."""
    holdout_persons: PositiveInt = 4
    celebrities: PositiveInt = 24
    """The "real" faces the base model learns before CLEAR: with 24 rather than 12 its vision
    tower tells new faces apart well enough that fine-tuning names every person's face after
    36 epochs (measured: face→name 1.00 vs 0.65–0.83)."""
    images_per_celebrity: PositiveInt = 4
    real_world: PositiveInt = 40
    """Shape pictures, one ``real_world`` evaluation question each."""
    world_facts: PositiveInt = 30
    real_authors: PositiveInt = 12
    retain_perturbed_persons: PositiveInt | None = None
    """Retain persons in ``retain_perturbed``; default: as many as forget10 has (TOFU)."""
    perturbed: PositiveInt = 3
    """Wrong answers (perturbed captions/names/answers, options) per evaluation row."""
    validation_persons: NonNegativeInt = 0
    """Validation persons (``forget_val``) for ``clearbench tune``, which tunes hyper-parameters
    on persons disjoint from the test forget persons; evaluated persons, with forget10's sizes.
    0: no validation configs (and every other config as without this option)."""

    def __post_init__(self) -> None:
        shots = len(SCENES) * len(LIGHTS) * len(EXPRESSIONS)
        identities = self.persons + self.holdout_persons + self.celebrities + self.real_authors
        options = min(len(SHAPES), len(BACKGROUNDS)) - 1
        checks = [
            (self.perturbed <= options, f"perturbed <= {options}"),
            (self.persons > self.perturbed, "persons > perturbed"),
            (self.celebrities > self.perturbed, "celebrities > perturbed"),
            (self.real_authors > self.perturbed, "real_authors > perturbed"),
            (
                max(self.images_per_person, self.images_per_celebrity,
                    self.other_images_per_person or 0) <= shots,
                f"images per identity <= {shots} (distinct scene/light/expression)",
            ),
            (
                max(self.qa_per_person, self.other_qa_per_person or 0) <= len(BIOGRAPHY),
                f"qa_per_person and other_qa_per_person <= {len(BIOGRAPHY)}",
            ),
            (self.answer_wordings < WORDINGS, f"answer_wordings <= {WORDINGS - 1} (one of "
             f"the {WORDINGS} wordings is held out as the paraphrase)"),
            (
                self.world_facts <= len(vocab.COUNTRIES) * len(WORLD),
                f"world_facts <= {len(vocab.COUNTRIES) * len(WORLD)}",
            ),
            (
                identities <= len(vocab.SURNAME_HEADS) * len(vocab.SURNAME_TAILS),
                "persons + holdout_persons + celebrities + real_authors <= "
                f"{len(vocab.SURNAME_HEADS) * len(vocab.SURNAME_TAILS)} (unique surnames)",
            ),
            (
                2 * (self.persons + self.holdout_persons) + self.real_authors + self.perturbed
                <= len(vocab.TITLE_ADJECTIVES) * len(vocab.TITLE_NOUNS),
                "enough book titles",
            ),
            (
                self.evaluated_persons() <= self.persons,
                f"forget10 persons ({self.forget_counts()['forget10']}) + "
                f"retain_perturbed_persons ({self.retain_persons()}) + validation_persons "
                f"({self.validation_persons}) <= persons ({self.persons})",
            ),
        ]
        failed = [rule for ok, rule in checks if not ok]
        if failed:
            raise DataError(f"SynthConfig {asdict(self)} breaks: {'; '.join(failed)}")

    def forget_counts(self) -> dict[str, int]:
        """Persons per forget split: max(1, round(fraction · persons))."""
        return {s: max(1, round(int(s[-2:]) / 100 * self.persons)) for s in FORGET_SPLITS}

    def training_rows(self, split: str) -> tuple[int, int]:
        """(image rows, QA rows) of a training split (``full``, ``forgetNN``, ``retainNN``,
        with validation persons ``forget_val`` and ``retain_val``), from the sizes alone:
        forget and validation persons are evaluated persons (forget10 is)."""
        if split in (*VALIDATION_SPLITS, *VALIDATION_SPLITS.values()) \
                and not self.validation_persons:
            raise DataError(f"no {split!r} without validation persons (validation_persons = 0)")
        counts = self.forget_counts() | {"forget_val": self.validation_persons}
        forget = {retain: counts[forget] for forget, retain in FORGET_SPLITS.items()}
        forget["retain_val"] = counts["forget10"] + self.validation_persons
        evaluated = self.evaluated_persons()
        big, small = self.sizes(True), self.sizes(False)
        full = tuple(evaluated * b + (self.persons - evaluated) * s
                     for b, s in zip(big, small, strict=True))
        if split in counts:
            images, facts = (counts[split] * b for b in big)
        elif split in forget:
            images, facts = (f - forget[split] * b for f, b in zip(full, big, strict=True))
        else:
            images, facts = full
        return images, facts * self.answer_wordings

    def sizes(self, evaluated: bool) -> tuple[int, int]:
        """Images and biography facts of an evaluated person, or of another person."""
        if evaluated:
            return self.images_per_person, self.qa_per_person
        return (self.other_images_per_person or self.images_per_person,
                self.other_qa_per_person or self.qa_per_person)

    def retain_persons(self) -> int:
        """Persons in ``retain_perturbed``."""
        if self.retain_perturbed_persons is not None:
            return self.retain_perturbed_persons
        return self.forget_counts()["forget10"]

    def evaluated_persons(self) -> int:
        """Persons with evaluation rows: forget10's, ``retain_perturbed``'s and the validation
        persons."""
        return self.forget_counts()["forget10"] + self.retain_persons() + self.validation_persons


def synthesize(out: Path | str, config: SynthConfig | None = None, /, **sizes: int) -> Path:
    """Write a CLEAR-mini folder at ``out`` and return it.

    ``sizes`` override fields of ``config`` (default :class:`SynthConfig`), e.g.
    ``synthesize(out, persons=200, seed=1)``. The folder is built beside ``out`` and moved
    into place at the end; an existing CLEAR-mini folder at ``out`` is replaced, anything
    else there is refused.
    """
    config = replace(config or SynthConfig(), **sizes)
    out = Path(out)
    if out.exists() and not (
        out.is_dir() and ((out / DATACARD).is_file() or not any(out.iterdir()))
    ):
        raise DataError(f"{out} exists and is not a CLEAR-mini folder; refusing to overwrite it")
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        _write(partial, config)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


CLEAR_README = (
    "# CLEAR-mini\n\nA synthetic, offline stand-in for `therem/CLEAR` generated by "
    "`clearbench data synth`: fictitious persons with procedurally drawn faces, captions, "
    "forget/retain splits by person, real-world analogues, plus the CLEAR-mini-only configs "
    "`holdout` and `pretrain`. See `datacard.json` for the arguments and counts."
)
TOFU_README = (
    "# CLEAR-mini TOFU sets\n\nThe biography QA of CLEAR-mini's fictitious persons and its "
    "world facts, in the layout of `locuslab/TOFU`, plus the CLEAR-mini-only config `holdout`: "
    "the holdout persons' biography QA, never trained on."
)


def _write(root: Path, config: SynthConfig) -> None:
    clear, tofu, persons = _tables(config)
    skipped = () if config.validation_persons else (*VALIDATION_CONFIGS["clear"],
                                                     *VALIDATION_CONFIGS["tofu"])
    rows = {
        "clear": write_configs(root, clear, _without(CLEAR_SCHEMAS, skipped), CLEAR_README),
        "tofu": write_configs(root / "tofu", tofu, _without(TOFU_SCHEMAS, skipped),
                              TOFU_README),
    }
    card = {
        "generator": "clearbench.data.synth",
        "version": GENERATOR_VERSION,
        "arguments": asdict(config),
        "rows": rows,
        "persons": persons,
        "wordings": _wordings_card(config),
        "content_hash": folder_hash(root),
    }
    (root / DATACARD).write_text(json.dumps(card, indent=2) + "\n")


def _without(schemas: dict[str, Any], configs: tuple[str, ...]) -> dict[str, Any]:
    return {name: columns for name, columns in schemas.items() if name not in configs}


def _wordings_card(config: SynthConfig) -> dict[str, Any]:
    """What the data card says about which wordings are trained and which are held out."""
    return {
        "captions": {
            "wordings": list(CAPTIONS),
            "trained": "each image has one caption; a person's images take the caption "
                       "wordings in turn, all but one",
            "held_out": "one wording per evaluation group (forget10: the first, "
                        "retain_perturbed: the second, forget_val if any: the third): its "
                        "members' paraphrased and perturbed captions, never trained with any "
                        "member; other persons hold out wording (person index mod "
                        f"{len(CAPTIONS)})",
            "perturbed": "the held-out wording with the name of another person of the same "
                         "evaluation group (forget10, retain_perturbed or forget_val; "
                         "perturbed_names), the picture's scene kept",
        },
        "biography": {
            "wordings": {kind: [[w.question, w.answer] for w in wordings]
                         for kind, wordings in BIOGRAPHY.items()},
            "trained": f"fact k of person i: {config.answer_wordings} of the {WORDINGS} "
                       "(question, answer) wordings, each a training row; the evaluation row "
                       "asks and answers in the first of them",
            "held_out": f"wording ((i + k) mod {WORDINGS}): the paraphrased question and "
                        "answer and the perturbed answers, never trained for that fact",
            "perturbed": "the held-out wording with wrong values of the same kind, never one "
                         "of the person's own; wrong book titles are titles no trained person "
                         "wrote",
            "holdout": f"TOFU config holdout: each holdout person's {config.qa_per_person} "
                       "facts as a forget person's training rows, never trained on (the "
                       "membership audit's non-members); their books are titles no trained "
                       "person wrote",
        },
        "real_sets": "real_authors_perturbed and world_facts_perturbed as on the hub: "
                     "question, answer and perturbed_answer worded like the answer",
    }


def _rng(config: SynthConfig, *keys: object) -> random.Random:
    """An independent random stream per purpose, so parts do not depend on generation order."""
    return random.Random(":".join(map(str, (config.seed, *keys))))


def _tables(config: SynthConfig) -> tuple[dict[str, list[Row]], dict[str, list[Row]], dict]:
    """Rows of every CLEAR and TOFU config, and the persons of each split."""
    n, n_holdout, n_celebrities = config.persons, config.holdout_persons, config.celebrities
    n_faces = n + n_holdout + n_celebrities
    names = _names(_rng(config, "names"), n_faces + config.real_authors)
    people, holdout = names[:n], names[n : n + n_holdout]
    celebrities = names[n + n_holdout : n_faces]
    authors = names[n_faces:]
    titles = [f"The {a} {b}" for a in vocab.TITLE_ADJECTIVES for b in vocab.TITLE_NOUNS]
    _rng(config, "titles").shuffle(titles)
    unused_titles = titles[2 * n + config.real_authors :]
    holdout_titles = titles[len(titles) - 2 * n_holdout :]  # in the wrong-title pool, as before

    def photos(identities: list[tuple[str, int, list[str], int]]) -> list[Row]:
        """The images of each (name, image count, wrong names, held-out caption wording)."""
        return [row for name, count, wrong, held in identities
                for row in _photos(config, name, look_of[name], count, wrong, held)]

    members = _splits(config, people)
    groups = [members[split] for split in ("forget10", "retain_perturbed", "forget_val")
              if split in members]
    evaluated = [any(p in group for group in groups) for p in people]
    order = look_order([p for p, e in zip(people, evaluated, strict=True) if e], people,
                       holdout, celebrities)
    look_of = dict(zip(order, distinct_looks(_rng(config, "looks"), len(order)), strict=True))
    sizes = [config.sizes(e) for e in evaluated]
    faces = photos([(p, sizes[i][0], _peers(p, groups, people, config.perturbed),
                     _held_caption(p, i, groups)) for i, p in enumerate(people)])
    biographies = _biographies(config, people, evaluated, titles[: 2 * n], unused_titles)

    clear: dict[str, list[Row]] = {}
    tofu: dict[str, list[Row]] = {}
    for split, group in members.items():
        in_group = set(group)
        images = [row for row in faces if row["name"] in in_group]
        training = [row for p in group for row in biographies[p][0]]
        evaluation = [row for p in group for row in biographies[p][1]]
        if split == "retain_perturbed":
            clear[split], tofu[split] = images, evaluation
            continue
        clear[split], tofu[split] = images, training
        clear[f"{split}+tofu"] = [{**r, "question": "", "answer": ""} for r in images] + [
            {**r, "image": None, "caption": ""} for r in training
        ]
        if split in FORGET_SPLITS or split in VALIDATION_SPLITS:
            clear[f"{split}_perturbed"], tofu[f"{split}_perturbed"] = images, evaluation

    celebrity_photos = photos([(c, config.images_per_celebrity, celebrities, i)
                               for i, c in enumerate(celebrities)])
    clear["real_faces"] = [
        {"image": r["image"], "answer": r["name"], "options": r["perturbed_names"]}
        for r in celebrity_photos
    ]
    # (the holdout config keeps no wrong names)
    clear["holdout"] = photos([(h, config.images_per_person, people, i)
                               for i, h in enumerate(holdout)])
    holdout_qa = _biographies(config, holdout, [True] * n_holdout, holdout_titles,
                              unused_titles, stream="holdout biographies")
    tofu["holdout"] = [row for h in holdout for row in holdout_qa[h][0]]
    clear["real_world"], shape_rows = _real_world(config)
    tofu["real_authors_perturbed"] = _real_authors(config, authors, titles[2 * n :])
    tofu["world_facts_perturbed"] = _world_facts(config)
    clear["pretrain"] = [
        *(
            {"image": r["image"], "question": question, "answer": answer}
            for r in celebrity_photos
            for question, answer in (
                (caption_prompt(r["caption"]), r["caption"]),
                (FACE_NAME_PROMPT, r["name"]),
            )
        ),
        *shape_rows,
        *(
            {"image": None, "question": r["question"], "answer": r["answer"]}
            for r in tofu["real_authors_perturbed"] + tofu["world_facts_perturbed"]
        ),
    ]
    persons = {
        "fictitious": people,
        **{split: members[split] for split in (*FORGET_SPLITS, "retain_perturbed",
                                                 *VALIDATION_SPLITS) if split in members},
        "holdout": holdout,
        "celebrities": celebrities,
        "real_authors": authors,
        "evaluated": [p for p, e in zip(people, evaluated, strict=True) if e],
    }
    return clear, tofu, persons


def _names(rng: random.Random, n: int) -> list[str]:
    """``n`` plausible full names with pairwise distinct surnames."""
    surnames = list(dict.fromkeys(h + t for h in vocab.SURNAME_HEADS for t in vocab.SURNAME_TAILS))
    rng.shuffle(surnames)
    return [f"{rng.choice(vocab.FIRST_NAMES)} {surname}" for surname in surnames[:n]]


def _splits(config: SynthConfig, people: list[str]) -> dict[str, list[str]]:
    """Persons of ``full``, the nested forget splits, their retain complements,
    ``retain_perturbed`` and, with validation persons, ``forget_val`` and ``retain_val``, each
    in the order of ``people``.

    The split order puts forget10's persons first, then ``retain_perturbed``'s, then the
    validation persons: adding validation persons changes neither of the others.
    """
    order = _rng(config, "splits").sample(people, len(people))
    counts = config.forget_counts()
    chosen = {split: set(order[:k]) for split, k in counts.items()}
    chosen |= {retain: set(people) - chosen[forget] for forget, retain in FORGET_SPLITS.items()}
    first = counts["forget10"]
    last = first + config.retain_persons()
    chosen["retain_perturbed"] = set(order[first:last])
    if config.validation_persons:
        chosen["forget_val"] = set(order[last : last + config.validation_persons])
        chosen["retain_val"] = set(people) - chosen["forget10"] - chosen["forget_val"]
    return {"full": list(people)} | {
        split: [p for p in people if p in group] for split, group in chosen.items()
    }


def look_order(evaluated: list[str], people: list[str], holdout: list[str],
               celebrities: list[str]) -> list[str]:
    """The order in which identities get their looks: the evaluated persons first, so that
    they get the most distinct looks (those the gate and the forget-quality test rest on),
    then the other persons, the holdout persons and the celebrities."""
    return [*evaluated, *(p for p in people if p not in evaluated), *holdout, *celebrities]


def _held_caption(person: str, index: int, groups: list[list[str]]) -> int:
    """The caption wording held out as ``person``'s paraphrase: one per evaluation group
    (forget10: the first, ``retain_perturbed``: the second, ``forget_val``: the third), shared
    by its members, so that a perturbation (another member's name) is as new in that wording as
    the true name; the other persons take the wordings in turn.

    A wording held out per person would teach the model which wordings go with which person,
    and the perturbations would win on the wording alone (measured on CLEAR-mini: the vanilla
    model's median forget-caption R was 0.49 with per-person wordings).
    """
    for g, group in enumerate(groups):
        if person in group:
            return g
    return index


def _peers(person: str, groups: list[list[str]], people: list[str], k: int) -> list[str]:
    """The persons whose names are ``person``'s wrong names: the others of its evaluation
    group (forget10, ``retain_perturbed`` or ``forget_val``), so that a model that never saw
    the group tells none of them from the true name, topped up from everyone else when the
    group has fewer than ``k`` others; a validation person's never from forget10 (a test
    forget person's name appears in no validation config)."""
    group = next((g for g in groups if person in g), people)
    others = [p for p in group if p != person]
    # groups: forget10, retain_perturbed and, with validation persons, forget_val
    test = groups[0] if len(groups) > 2 and group is groups[2] else []
    return others + [p for p in people if p not in group and p not in test][
        : max(0, k - len(others))]


def _photos(
    config: SynthConfig, name: str, look: Look, count: int, wrong: list[str], held: int
) -> list[Row]:
    """Captioned images of one identity in distinct (scene, light, expression) shots, with
    evaluation columns.

    The images are captioned in turn in every caption wording but ``held`` (modulo their
    number), which is the paraphrase; the perturbed captions are the paraphrase with one of
    the ``perturbed_names``, drawn from ``wrong``: the same picture, another person's name.
    """
    rng = _rng(config, "photos", name)
    shots = rng.sample(list(itertools.product(SCENES, LIGHTS, EXPRESSIONS)), count)
    held %= len(CAPTIONS)
    wordings = rotation(held, count, 0, len(CAPTIONS))
    rows = []
    for (scene, light, expression), wording in zip(shots, wordings, strict=True):
        image = png(render(look, random_shot(rng, scene, light, expression)))
        wrong_names = wrong_values(rng, wrong, name, config.perturbed)
        rows.append(
            {
                "image": image,
                "caption": caption(wording, name, scene),
                "name": name,
                "paraphrased_caption": caption(held, name, scene),
                "perturbed_captions": [
                    caption(held, other, scene) for other in wrong_names
                ],
                "perturbed_names": wrong_names,
            }
        )
    return rows


def _biographies(
    config: SynthConfig, people: list[str], evaluated: list[bool], titles: list[str],
    unused_titles: list[str], *, stream: str = "biographies",
) -> dict[str, tuple[list[Row], list[Row]]]:
    """Per person, the TOFU training rows and evaluation rows of the person's facts.

    An evaluated person has the first ``qa_per_person`` facts of :data:`BIOGRAPHY`; the others
    ``other_qa_per_person`` of those kinds each, in turn, so that every kind is trained with
    other persons too. Fact ``k`` of person ``i`` is trained in ``answer_wordings`` wordings and
    paraphrased in the held-out wording ``(i + k) mod WORDINGS``.

    True and wrong values come from the same distribution (a uniform draw from the kind's pool;
    years as birth year plus age at the first book), so that a model that never saw a person
    has no reason to prefer the true value (measured: with wrong years from a wider range, and
    kinds that only the evaluated persons had, the gold model's median forget-QA truth ratio
    was 0.65–0.83 and 0.08 on awards). Wrong values are never one of the person's own; books
    are each person's own titles (``titles[2i]``, ``titles[2i + 1]``), their wrong values titles
    no trained person wrote (``unused_titles``). ``stream`` names the random stream: the
    holdout persons' own, so that adding them changes no other person's facts.
    """
    rng = _rng(config, stream)
    births, ages = range(1930, 1986), range(20, 36)
    pools = {
        "birthplace": vocab.CITIES,
        "birth_year": [str(year) for year in births],
        "genre": vocab.GENRES,
        "father": vocab.JOBS,
        "mother": vocab.JOBS,
        "book": unused_titles,
        "award": vocab.AWARDS,
        "second_book": unused_titles,
        "residence": vocab.CITIES,
        "study": vocab.SUBJECTS,
        "hobby": vocab.HOBBIES,
    }
    kinds = list(BIOGRAPHY)[: config.qa_per_person]
    other_count = config.sizes(False)[1]
    biographies = {}
    for i, (person, evaluates) in enumerate(zip(people, evaluated, strict=True)):
        birth = rng.choice(births)
        facts = {kind: rng.choice(pool) for kind, pool in pools.items()} | {
            "birth_year": str(birth),
            "debut_year": str(birth + rng.choice(ages)),
            "book": titles[2 * i],
            "second_book": titles[2 * i + 1],
        }
        own = set(facts.values())
        mine = kinds if evaluates else [kinds[(i * other_count + j) % len(kinds)]
                                        for j in range(other_count)]
        training, evaluation = [], []
        for kind in mine:
            held = (i + kinds.index(kind)) % WORDINGS
            if kind == "debut_year":  # another birth year plus another age, as true ones are
                wrong: list[str] = []
                while len(wrong) < config.perturbed:
                    year = str(rng.choice(births) + rng.choice(ages))
                    if year not in own and year not in wrong:
                        wrong.append(year)
            else:
                wrong = wrong_values(rng, [v for v in pools[kind] if v not in own], facts[kind],
                                     config.perturbed)
            rows, row = biography_rows(
                BIOGRAPHY[kind], person, facts[kind], wrong, held=held,
                trained_wordings=rotation(held, config.answer_wordings, i),
            )
            training += rows
            evaluation.append(row)
        biographies[person] = (training, evaluation)
    return biographies


def _real_world(config: SynthConfig) -> tuple[list[Row], list[Row]]:
    """``real_world`` rows (one question per shape picture) and the pretraining rows that
    cover them: every question of every picture, and its caption."""
    rng = _rng(config, "real_world")
    evaluation, pretrain = [], []
    for _ in range(config.real_world):
        still = random_still(rng)
        image = png(render_still(still))
        questions = still_questions(still, rng, config.perturbed)
        evaluation.append({"image": image, **rng.choice(questions)})
        text = still_caption(still)
        pretrain.append({"image": image, "question": caption_prompt(text), "answer": text})
        pretrain += [
            {"image": image, "question": q["question"], "answer": q["answer"]} for q in questions
        ]
    return evaluation, pretrain


def _real_authors(config: SynthConfig, authors: list[str], titles: list[str]) -> list[Row]:
    """One famous book per famous author: "Who wrote ...?" (TOFU's ``real_authors``)."""
    rng = _rng(config, "real_authors")
    return [
        option_row(AUTHORSHIP, title, author,
                   wrong_values(rng, authors, author, config.perturbed))
        for author, title in zip(authors, titles, strict=False)
    ]


def _world_facts(config: SynthConfig) -> list[Row]:
    """``world_facts`` facts about the fictional countries (TOFU's ``world_facts``)."""
    rng = _rng(config, "world")
    pools = {
        "capital": vocab.CITIES,
        "currency": vocab.CURRENCIES,
        "language": vocab.LANGUAGES,
        "river": vocab.RIVERS,
        "animal": vocab.ANIMALS,
    }
    values = {kind: rng.sample(pool, len(vocab.COUNTRIES)) for kind, pool in pools.items()}
    facts = sorted(rng.sample(range(len(vocab.COUNTRIES) * len(WORLD)), config.world_facts))
    rows = []
    for fact in facts:
        country, kind = divmod(fact, len(WORLD))
        value = values[list(WORLD)[kind]][country]
        wrong = wrong_values(rng, values[list(WORLD)[kind]], value, config.perturbed)
        rows.append(option_row(WORLD[list(WORLD)[kind]], vocab.COUNTRIES[country], value, wrong))
    return rows
