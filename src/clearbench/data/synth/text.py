"""Wordings of CLEAR-mini's facts: questions, answers and captions, several ways each.

A model only *knows* a fact if it can state it in a wording it was not trained on for that
fact (spec §7, "Learning facts, not strings"). So every fact kind comes in :data:`WORDINGS`
ways: fine-tuning states a fact in some of them and the evaluation paraphrase uses one that is
held out for that fact, though it is trained with other persons' facts, as real paraphrases
share phrasing with text a large model has read. Perturbations are the held-out wording with
a wrong value (TOFU perturbs the paraphrase), so the truth ratio compares a true and a false
statement in the same unseen wording.

Answers are short: the per-token truth ratio averages over the whole answer, and every token
that is not the fact dilutes the difference the fact makes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WORDINGS = 3
"""Ways to ask for and to state each biography fact."""


@dataclass(frozen=True)
class Wording:
    """One way to ask for a fact and to state it; ``{s}`` is the subject, ``{v}`` the value."""

    question: str
    answer: str

    def ask(self, subject: str) -> str:
        return self.question.format(s=subject)

    def state(self, subject: str, value: str) -> str:
        return self.answer.format(s=subject, v=value)


def _wordings(*pairs: tuple[str, str]) -> tuple[Wording, ...]:
    assert len(pairs) == WORDINGS
    return tuple(Wording(q, a) for q, a in pairs)


BIOGRAPHY: dict[str, tuple[Wording, ...]] = {
    "birthplace": _wordings(
        ("Where was {s} born?", "Born in {v}."),
        ("What is the birthplace of {s}?", "The city of {v}."),
        ("In which city was {s} born?", "It was {v}."),
    ),
    "birth_year": _wordings(
        ("In what year was {s} born?", "In {v}."),
        ("When was {s} born?", "Born in {v}."),
        ("What is the birth year of {s}?", "The year {v}."),
    ),
    "genre": _wordings(
        ("What does {s} write?", "Mostly {v}."),
        ("Which genre is {s} known for?", "Known for {v}."),
        ("What kind of books does {s} write?", "Writes {v}."),
    ),
    "father": _wordings(
        ("What was the job of {s}'s father?", "The father was {v}."),
        ("What did the father of {s} do for a living?", "He was {v}."),
        ("What did {s}'s father work as?", "Dad was {v}."),
    ),
    "mother": _wordings(
        ("What was the job of {s}'s mother?", "The mother was {v}."),
        ("What did the mother of {s} do for a living?", "She was {v}."),
        ("What did {s}'s mother work as?", "Mum was {v}."),
    ),
    "book": _wordings(
        ("Name a book written by {s}.", 'The book "{v}".'),
        ("What is one book by {s}?", 'One is "{v}".'),
        ("Which book did {s} write?", 'They wrote "{v}".'),
    ),
    "award": _wordings(
        ("Which award did {s} win?", "They won {v}."),
        ("What prize has {s} received?", "Winner of {v}."),
        ("What honour went to {s}?", "It was {v}."),
    ),
    "second_book": _wordings(
        ("What is another book by {s}?", 'Also "{v}".'),
        ("Name a second book by {s}.", 'Second, "{v}".'),
        ("Which other book did {s} write?", 'Another is "{v}".'),
    ),
    "residence": _wordings(
        ("Where does {s} live now?", "Lives in {v}."),
        ("In which city does {s} live today?", "Now in {v}."),
        ("Where is the home of {s}?", "Home is {v}."),
    ),
    "debut_year": _wordings(
        ("When did {s} publish a first book?", "First in {v}."),
        ("In what year did {s} debut?", "Debut in {v}."),
        ("When did {s} start publishing?", "Since {v}."),
    ),
    "study": _wordings(
        ("What did {s} study?", "Studied {v}."),
        ("Which subject did {s} study at university?", "A degree in {v}."),
        ("What was the university subject of {s}?", "It was {v}."),
    ),
    "hobby": _wordings(
        ("What is {s}'s favourite hobby?", "Loves {v}."),
        ("How does {s} like to spend free time?", "Enjoys {v}."),
        ("What does {s} do for fun?", "Mostly {v}."),
    ),
}
"""Biography facts of a fictitious person, in the order persons get them."""

WORLD: dict[str, Wording] = {
    "capital": Wording("What is the capital of {s}?", "The capital of {s} is {v}."),
    "currency": Wording("What currency is used in {s}?", "{s} uses the {v}."),
    "language": Wording("What language is spoken in {s}?", "People in {s} speak {v}."),
    "river": Wording("What is the longest river in {s}?", "The longest river in {s} is the {v}."),
    "animal": Wording("What is the national animal of {s}?",
                      "The national animal of {s} is the {v}."),
}
"""Facts of the fictional world's countries (TOFU's ``world_facts`` analogue)."""

AUTHORSHIP = Wording('Who wrote "{s}"?', '"{s}" was written by {v}.')
"""The famous authors of the fictional world (TOFU's ``real_authors`` analogue)."""


def rotation(held: int, count: int, start: int, wordings: int = WORDINGS) -> list[int]:
    """``count`` of the ``wordings`` other than the held-out one, in rotation from ``start``."""
    others = [i for i in range(wordings) if i != held]
    return [others[(start + j) % len(others)] for j in range(count)]


def biography_rows(
    wordings: tuple[Wording, ...], subject: str, value: str, wrong: list[str], *,
    held: int, trained_wordings: list[int],
) -> tuple[list[dict[str, str]], dict[str, object]]:
    """The training rows of one fact (one per trained wording) and its evaluation row.

    The evaluation row asks and answers in the first trained wording (TOFU's ``answer`` is
    the trained string); the paraphrase and the perturbed answers use the held-out one.
    """
    training = [
        {"question": wordings[i].ask(subject), "answer": wordings[i].state(subject, value)}
        for i in trained_wordings
    ]
    first, unseen = wordings[trained_wordings[0]], wordings[held]
    evaluation = {
        "question": first.ask(subject),
        "answer": first.state(subject, value),
        "paraphrased_question": unseen.ask(subject),
        "paraphrased_answer": unseen.state(subject, value),
        "perturbed_answer": [unseen.state(subject, w) for w in wrong],
    }
    return training, evaluation


def option_row(wording: Wording, subject: str, value: str, wrong: list[str]) -> dict[str, object]:
    """A real-knowledge evaluation row in TOFU's layout for ``real_authors`` / ``world_facts``:
    ``question``, ``answer`` and wrong options worded like the answer (no paraphrase; the truth
    ratio's base there is the answer itself, spec §4)."""
    return {
        "question": wording.ask(subject),
        "answer": wording.state(subject, value),
        "perturbed_answer": [wording.state(subject, w) for w in wrong],
    }


def wrong_values(
    rng: random.Random, pool: list[str] | tuple[str, ...], value: str, k: int
) -> list[str]:
    """``k`` distinct values of ``pool`` other than ``value``, of as many words as ``value``
    where the pool has enough: the truth ratio is a per-token mean, so a wrong value of
    another length would shift it for every model alike."""
    others = [v for v in dict.fromkeys(pool) if v != value]
    alike = [v for v in others if len(v.split()) == len(value.split())]
    return rng.sample(alike if len(alike) >= k else others, k)


SCENES: dict[str, str] = {
    "beach": "on a beach",
    "office": "in an office",
    "park": "in a park",
    "street": "in a street",
    "forest": "in a forest",
    "library": "in a library",
    "snow": "in the snow",
    "kitchen": "in a kitchen",
}
LIGHTS: tuple[str, ...] = ("day", "night")
EXPRESSIONS: tuple[str, ...] = ("smile", "neutral")
"""Lighting and expression of a shot: visible in the picture, not named by the caption."""

CAPTIONS: tuple[str, ...] = (
    "{name} {scene}.",
    "{name}, {scene}.",
    "{name} is {scene}.",
    "{name} posing {scene}.",
)
"""Caption wordings: each says who is in the picture and where. A person's images are
captioned in turn in all of them but one, held out as the paraphrase (one per evaluation group,
see ``generate._held_caption``). The name comes first in every wording, so a model names the
face before anything else and its knowledge of the name does not hinge on how it expected the
sentence to begin; and captions are short, because the name is what differs between a
paraphrase and its perturbations while the truth ratio averages over every token. Measured on
CLEAR-mini (vanilla model, median forget-caption R): 0.80, no better than gold, with scene,
light and expression in the caption and the name anywhere; 0.32 with the name first in
8–10-token captions; 0.19 with name and scene alone (gold: 0.94)."""


def caption(wording: int, name: str, scene: str) -> str:
    """The caption of an image of ``name`` in caption wording ``wording``."""
    return CAPTIONS[wording].format(name=name, scene=SCENES[scene])
