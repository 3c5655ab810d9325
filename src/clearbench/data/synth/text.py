"""Question/answer and caption templates of CLEAR-mini, with paraphrases and perturbations.

Answers are short and repeat the key fact plainly; a paraphrase states the same fact with
another template, a perturbation the same template with a wrong fact (TOFU's design).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class QATemplate:
    """``{s}`` is the subject (a person, a country, a book), ``{v}`` the fact's value."""

    question: str
    paraphrased_question: str
    answer: str
    paraphrased_answer: str


BIOGRAPHY: dict[str, QATemplate] = {
    "birthplace": QATemplate(
        "Where was {s} born?",
        "In which city was {s} born?",
        "{s} was born in {v}.",
        "The birthplace of {s} is {v}.",
    ),
    "birth_year": QATemplate(
        "In what year was {s} born?",
        "When was {s} born?",
        "{s} was born in {v}.",
        "The birth year of {s} is {v}.",
    ),
    "genre": QATemplate(
        "What does {s} write?",
        "Which genre is {s} known for?",
        "{s} writes {v}.",
        "{s} is known for {v}.",
    ),
    "father": QATemplate(
        "What was the job of {s}'s father?",
        "What did the father of {s} do for a living?",
        "{s}'s father was {v}.",
        "The father of {s} worked as {v}.",
    ),
    "mother": QATemplate(
        "What was the job of {s}'s mother?",
        "What did the mother of {s} do for a living?",
        "{s}'s mother was {v}.",
        "The mother of {s} worked as {v}.",
    ),
    "book": QATemplate(
        "Name a book written by {s}.",
        "What is one book by {s}?",
        '{s} wrote "{v}".',
        '"{v}" is a book by {s}.',
    ),
    "award": QATemplate(
        "Which award did {s} win?",
        "What prize has {s} received?",
        "{s} won {v}.",
        "{s} received {v}.",
    ),
    "second_book": QATemplate(
        "What is another book by {s}?",
        "Name a second book by {s}.",
        '{s} also wrote "{v}".',
        'Another book by {s} is "{v}".',
    ),
    "residence": QATemplate(
        "Where does {s} live now?",
        "In which city does {s} live today?",
        "{s} lives in {v}.",
        "{s} now makes a home in {v}.",
    ),
    "debut_year": QATemplate(
        "When did {s} publish a first book?",
        "In what year did {s} debut?",
        "{s} first published in {v}.",
        "The debut of {s} came in {v}.",
    ),
    "study": QATemplate(
        "What did {s} study?",
        "Which subject did {s} study at university?",
        "{s} studied {v}.",
        "At university {s} studied {v}.",
    ),
    "hobby": QATemplate(
        "What is {s}'s favourite hobby?",
        "How does {s} like to spend free time?",
        "{s} enjoys {v}.",
        "In free time {s} enjoys {v}.",
    ),
}
"""Biography facts of a fictitious person, in the order persons get them."""

WORLD: dict[str, QATemplate] = {
    "capital": QATemplate(
        "What is the capital of {s}?",
        "Which city is the capital of {s}?",
        "The capital of {s} is {v}.",
        "{v} is the capital of {s}.",
    ),
    "currency": QATemplate(
        "What currency is used in {s}?",
        "What money do people use in {s}?",
        "{s} uses the {v}.",
        "The currency of {s} is the {v}.",
    ),
    "language": QATemplate(
        "What language is spoken in {s}?",
        "What do people speak in {s}?",
        "People in {s} speak {v}.",
        "The language of {s} is {v}.",
    ),
    "river": QATemplate(
        "What is the longest river in {s}?",
        "Which river is the longest in {s}?",
        "The longest river in {s} is the {v}.",
        "The {v} is the longest river in {s}.",
    ),
    "animal": QATemplate(
        "What is the national animal of {s}?",
        "Which animal is the symbol of {s}?",
        "The national animal of {s} is the {v}.",
        "{s} has the {v} as its national animal.",
    ),
}
"""Facts of the fictional world's countries (TOFU's ``world_facts`` analogue)."""

AUTHORSHIP = QATemplate(
    'Who wrote "{s}"?',
    'Who is the author of "{s}"?',
    '"{s}" was written by {v}.',
    'The author of "{s}" is {v}.',
)
"""The famous authors of the fictional world (TOFU's ``real_authors`` analogue)."""


def qa_row(template: QATemplate, subject: str, value: str, wrong: list[str]) -> dict[str, object]:
    """A TOFU evaluation row; ``wrong`` values give the perturbed answers."""
    return {
        "question": template.question.format(s=subject),
        "answer": template.answer.format(s=subject, v=value),
        "paraphrased_answer": template.paraphrased_answer.format(s=subject, v=value),
        "paraphrased_question": template.paraphrased_question.format(s=subject),
        # TOFU perturbs the *paraphrased* answer, so that the truth ratio compares a true and
        # a false statement in the same wording, not two wordings.
        "perturbed_answer": [template.paraphrased_answer.format(s=subject, v=w) for w in wrong],
    }


def wrong_values(
    rng: random.Random, pool: list[str] | tuple[str, ...], value: str, k: int
) -> list[str]:
    """``k`` distinct values of ``pool`` other than ``value``."""
    return rng.sample([v for v in dict.fromkeys(pool) if v != value], k)


SCENES: dict[str, str] = {
    "beach": "on a beach",
    "office": "in an office",
    "park": "in a park",
    "street": "on a city street",
    "forest": "in a forest",
    "library": "in a library",
    "snow": "on a snowy hill",
    "kitchen": "in a kitchen",
}
LIGHTS: dict[str, str] = {"day": "in daylight", "night": "at night"}
EXPRESSIONS: dict[str, str] = {"smile": "smiling", "neutral": "looking serious"}


def caption(name: str, scene: str, light: str, expression: str) -> str:
    """The training caption: the person's name first, then what the image shows."""
    return f"{name} {EXPRESSIONS[expression]} {SCENES[scene]} {LIGHTS[light]}."


def paraphrased_caption(name: str, scene: str, light: str, expression: str) -> str:
    """The same facts as :func:`caption` in another template."""
    return f"This is {name}, {EXPRESSIONS[expression]} {SCENES[scene]} {LIGHTS[light]}."


def perturbed_captions(
    wrong_names: list[str], wrong_scenes: list[str], light: str, expression: str
) -> list[str]:
    """False captions in :func:`paraphrased_caption`'s wording, as TOFU perturbs the
    paraphrased answer (so the truth ratio compares true and false in the same wording): each
    names another person in another scene. The name carries the person knowledge that
    unlearning must remove; the scene alone is visible to any model that sees the image."""
    return [
        paraphrased_caption(name, scene, light, expression)
        for name, scene in zip(wrong_names, wrong_scenes, strict=True)
    ]
