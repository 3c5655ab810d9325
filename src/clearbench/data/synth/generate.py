"""Generate CLEAR-mini: a small offline data set in the exact layout of the hub's CLEAR + TOFU.

Fictitious persons get a fixed procedurally drawn face, captioned images in varied scenes and
a TOFU-style biography; forget/retain splits are by person (spec §1.1). A separate pool of
"celebrities", shape pictures, famous authors and facts of a fictional world play the part of
the real-world knowledge behind the Real metrics; the ``pretrain`` config holds all of it for
the mini base model. ``holdout`` persons appear in no training config.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from clearbench.data.loading import DATACARD, folder_hash
from clearbench.data.prompts import FACE_NAME_PROMPT, caption_prompt
from clearbench.data.schema import CLEAR_SCHEMAS, FORGET_SPLITS, TOFU_SCHEMAS, DataError
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
    EXPRESSIONS,
    LIGHTS,
    SCENES,
    WORLD,
    caption,
    paraphrased_caption,
    perturbed_captions,
    qa_row,
    wrong_values,
)

GENERATOR_VERSION = 1
"""Bumped whenever the same arguments would generate different data."""

Row = dict[str, Any]


@dataclass(frozen=True)
class SynthConfig:
    """Sizes of a CLEAR-mini data set (every count is a parameter)."""

    persons: int = 30
    seed: int = 0
    images_per_person: int = 5
    qa_per_person: int = 8
    holdout_persons: int = 4
    celebrities: int = 12
    images_per_celebrity: int = 4
    real_world: int = 40
    """Shape pictures, one ``real_world`` evaluation question each."""
    world_facts: int = 30
    real_authors: int = 12
    retain_perturbed_persons: int | None = None
    """Retain persons in ``retain_perturbed``; default: as many as forget10 has (TOFU)."""
    perturbed: int = 3
    """Wrong answers (perturbed captions/names/answers, options) per evaluation row."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and value is not None and (not isinstance(value, int) or value < 1):
                raise DataError(f"SynthConfig.{f.name} must be a positive integer, got {value!r}")
        shots = len(SCENES) * len(LIGHTS) * len(EXPRESSIONS)
        identities = self.persons + self.holdout_persons + self.celebrities + self.real_authors
        options = min(len(SHAPES), len(BACKGROUNDS)) - 1
        checks = [
            (self.perturbed <= options, f"perturbed <= {options}"),
            (self.persons > self.perturbed, "persons > perturbed"),
            (self.celebrities > self.perturbed, "celebrities > perturbed"),
            (self.real_authors > self.perturbed, "real_authors > perturbed"),
            (
                max(self.images_per_person, self.images_per_celebrity) <= shots,
                f"images per identity <= {shots} (distinct scene/light/expression)",
            ),
            (self.qa_per_person <= len(BIOGRAPHY), f"qa_per_person <= {len(BIOGRAPHY)}"),
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
                2 * self.persons + self.real_authors
                <= len(vocab.TITLE_ADJECTIVES) * len(vocab.TITLE_NOUNS),
                "enough book titles",
            ),
            (
                self.forget_counts()["forget10"] + self.retain_persons() <= self.persons,
                "forget10 persons + retain_perturbed_persons <= persons",
            ),
        ]
        failed = [rule for ok, rule in checks if not ok]
        if failed:
            raise DataError(f"SynthConfig {asdict(self)} breaks: {'; '.join(failed)}")

    def forget_counts(self) -> dict[str, int]:
        """Persons per forget split: max(1, round(fraction · persons))."""
        return {s: max(1, round(int(s[-2:]) / 100 * self.persons)) for s in FORGET_SPLITS}

    def retain_persons(self) -> int:
        """Persons in ``retain_perturbed``."""
        if self.retain_perturbed_persons is not None:
            return self.retain_perturbed_persons
        return self.forget_counts()["forget10"]


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
    "world facts, in the layout of `locuslab/TOFU`."
)


def _write(root: Path, config: SynthConfig) -> None:
    clear, tofu, persons = _tables(config)
    rows = {
        "clear": write_configs(root, clear, CLEAR_SCHEMAS, CLEAR_README),
        "tofu": write_configs(root / "tofu", tofu, TOFU_SCHEMAS, TOFU_README),
    }
    card = {
        "generator": "clearbench.data.synth",
        "version": GENERATOR_VERSION,
        "arguments": asdict(config),
        "rows": rows,
        "persons": persons,
        "content_hash": folder_hash(root),
    }
    (root / DATACARD).write_text(json.dumps(card, indent=2) + "\n")


def _rng(config: SynthConfig, *keys: object) -> random.Random:
    """An independent random stream per purpose, so parts do not depend on generation order."""
    return random.Random(":".join(map(str, (config.seed, *keys))))


def _tables(config: SynthConfig) -> tuple[dict[str, list[Row]], dict[str, list[Row]], dict]:
    """Rows of every CLEAR and TOFU config, and the persons of each split."""
    n, n_holdout, n_celebrities = config.persons, config.holdout_persons, config.celebrities
    names = _names(_rng(config, "names"), n + n_holdout + n_celebrities + config.real_authors)
    looks = distinct_looks(_rng(config, "looks"), n + n_holdout + n_celebrities)
    people, holdout = names[:n], names[n : n + n_holdout]
    celebrities = names[n + n_holdout : n + n_holdout + n_celebrities]
    authors = names[n + n_holdout + n_celebrities :]
    titles = [f"The {a} {b}" for a in vocab.TITLE_ADJECTIVES for b in vocab.TITLE_NOUNS]
    _rng(config, "titles").shuffle(titles)

    look_of = dict(zip(names, looks, strict=False))  # the famous authors have no face

    def photos(group: list[str], per_identity: int, wrong: list[str]) -> list[Row]:
        return [
            row
            for name in group
            for row in _photos(config, name, look_of[name], per_identity, wrong)
        ]

    members = _splits(config, people)
    faces = photos(people, config.images_per_person, people)
    biographies = _biographies(config, people, titles[: 2 * n])

    clear: dict[str, list[Row]] = {}
    tofu: dict[str, list[Row]] = {}
    for split, group in members.items():
        in_group = set(group)
        images = [row for row in faces if row["name"] in in_group]
        qa = [row for p in group for row in biographies[p]]
        clear[split], tofu[split] = images, qa
        if split in FORGET_SPLITS:
            clear[f"{split}_perturbed"], tofu[f"{split}_perturbed"] = images, qa
        if split != "retain_perturbed":
            clear[f"{split}+tofu"] = [{**r, "question": "", "answer": ""} for r in images] + [
                {**r, "image": None, "caption": ""} for r in qa
            ]

    celebrity_photos = photos(celebrities, config.images_per_celebrity, celebrities)
    clear["real_faces"] = [
        {"image": r["image"], "answer": r["name"], "options": r["perturbed_names"]}
        for r in celebrity_photos
    ]
    clear["holdout"] = photos(holdout, config.images_per_person, names)
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
        **{split: members[split] for split in (*FORGET_SPLITS, "retain_perturbed")},
        "holdout": holdout,
        "celebrities": celebrities,
        "real_authors": authors,
    }
    return clear, tofu, persons


def _names(rng: random.Random, n: int) -> list[str]:
    """``n`` plausible full names with pairwise distinct surnames."""
    surnames = list(dict.fromkeys(h + t for h in vocab.SURNAME_HEADS for t in vocab.SURNAME_TAILS))
    rng.shuffle(surnames)
    return [f"{rng.choice(vocab.FIRST_NAMES)} {surname}" for surname in surnames[:n]]


def _splits(config: SynthConfig, people: list[str]) -> dict[str, list[str]]:
    """Persons of ``full``, the nested forget splits, their retain complements and
    ``retain_perturbed``, each in the order of ``people``."""
    order = _rng(config, "splits").sample(people, len(people))
    counts = config.forget_counts()
    chosen = {split: set(order[:k]) for split, k in counts.items()}
    chosen |= {retain: set(people) - chosen[forget] for forget, retain in FORGET_SPLITS.items()}
    first = counts["forget10"]
    chosen["retain_perturbed"] = set(order[first : first + config.retain_persons()])
    return {"full": list(people)} | {
        split: [p for p in people if p in group] for split, group in chosen.items()
    }


def _photos(config: SynthConfig, name: str, look: Look, count: int, wrong: list[str]) -> list[Row]:
    """Captioned images of one identity in distinct (scene, light, expression) shots, with
    evaluation columns; ``perturbed_names`` are drawn from ``wrong`` (minus ``name``)."""
    rng = _rng(config, "photos", name)
    shots = rng.sample(list(itertools.product(SCENES, LIGHTS, EXPRESSIONS)), count)
    rows = []
    for scene, light, expression in shots:
        facts = (name, scene, light, expression)
        image = png(render(look, random_shot(rng, scene, light, expression)))
        wrong_scenes = wrong_values(rng, list(SCENES), scene, config.perturbed)
        wrong_names = wrong_values(rng, wrong, name, config.perturbed)
        rows.append(
            {
                "image": image,
                "caption": caption(*facts),
                "name": name,
                "paraphrased_caption": paraphrased_caption(*facts),
                "perturbed_captions": perturbed_captions(wrong_names, wrong_scenes, light,
                                                         expression),
                "perturbed_names": wrong_names,
            }
        )
    return rows


def _biographies(config: SynthConfig, people: list[str], titles: list[str]) -> dict[str, list[Row]]:
    """TOFU-style QA rows per person: the first ``qa_per_person`` facts of :data:`BIOGRAPHY`.

    Each person gets two of ``titles`` as books; a perturbed answer never uses a value that is
    one of the person's own facts.
    """
    rng = _rng(config, "biographies")
    years = [str(year) for year in range(1930, 2021)]
    pools = {
        "birthplace": vocab.CITIES,
        "birth_year": years,
        "genre": vocab.GENRES,
        "father": vocab.JOBS,
        "mother": vocab.JOBS,
        "book": titles,
        "award": vocab.AWARDS,
        "second_book": titles,
        "residence": vocab.CITIES,
        "debut_year": years,
        "study": vocab.SUBJECTS,
        "hobby": vocab.HOBBIES,
    }
    kinds = list(BIOGRAPHY)[: config.qa_per_person]
    biographies = {}
    for i, person in enumerate(people):
        facts = {kind: rng.choice(pool) for kind, pool in pools.items()}
        birth = rng.randint(1930, 1985)
        facts |= {
            "birth_year": str(birth),
            "debut_year": str(birth + rng.randint(20, 35)),
            "book": titles[2 * i],
            "second_book": titles[2 * i + 1],
        }
        own = set(facts.values())
        biographies[person] = [
            qa_row(
                BIOGRAPHY[kind],
                person,
                facts[kind],
                wrong_values(
                    rng, [v for v in pools[kind] if v not in own], facts[kind], config.perturbed
                ),
            )
            for kind in kinds
        ]
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
        qa_row(AUTHORSHIP, title, author, wrong_values(rng, authors, author, config.perturbed))
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
        rows.append(qa_row(WORLD[list(WORLD)[kind]], vocab.COUNTRIES[country], value, wrong))
    return rows
