"""Pictures of coloured shapes with questions about them: CLEAR-mini's ``real_world`` (VQA)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from clearbench.data.synth.faces import SIZE
from clearbench.data.synth.text import wrong_values

SHAPES = ("circle", "square", "triangle", "star")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "blue": (40, 80, 210),
    "green": (40, 160, 60),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "grey": (140, 140, 140),
    "black": (25, 25, 25),
    "brown": (120, 85, 55),
}
NUMBERS = ("one", "two", "three", "four", "five")


@dataclass(frozen=True)
class Group:
    shape: str
    colour: str
    count: int

    @property
    def noun(self) -> str:
        return self.shape if self.count == 1 else f"{self.shape}s"


@dataclass(frozen=True)
class Still:
    """A picture of one or two groups of shapes (no shape or colour shared) on a background."""

    background: str
    groups: tuple[Group, ...]
    layout_seed: int


def random_still(rng: random.Random) -> Still:
    n = rng.choice((1, 2))
    shapes, colours = rng.sample(SHAPES, n), rng.sample(list(COLOURS), n)
    groups = tuple(Group(s, c, rng.randint(1, 3)) for s, c in zip(shapes, colours, strict=True))
    return Still(rng.choice(list(BACKGROUNDS)), groups, rng.getrandbits(32))


def render_still(still: Still) -> Image.Image:
    """Draw the shapes on a 3×3 grid at twice the output size, then downsample."""
    side = 2 * SIZE
    image = Image.new("RGB", (side, side), BACKGROUNDS[still.background])
    d = ImageDraw.Draw(image)
    rng = random.Random(still.layout_seed)
    cells = rng.sample(range(9), sum(g.count for g in still.groups))
    items = [g for g in still.groups for _ in range(g.count)]
    for cell, group in zip(cells, items, strict=True):
        cx = side * (cell % 3 * 2 + 1) / 6 + rng.uniform(-5, 5)
        cy = side * (cell // 3 * 2 + 1) / 6 + rng.uniform(-5, 5)
        r = rng.uniform(12, 17)
        fill = COLOURS[group.colour]
        if group.shape == "circle":
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif group.shape == "square":
            d.rectangle((cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85), fill=fill)
        else:
            points, radii = (3, (r,)) if group.shape == "triangle" else (10, (r, r * 0.45))
            corners = [
                (math.sin(2 * math.pi * k / points), -math.cos(2 * math.pi * k / points))
                for k in range(points)
            ]
            d.polygon(
                [
                    (cx + radii[k % len(radii)] * x, cy + radii[k % len(radii)] * y)
                    for k, (x, y) in enumerate(corners)
                ],
                fill=fill,
            )
    return image.reduce(2)


def still_caption(still: Still) -> str:
    """E.g. "Two red circles and one blue square on a grey background." """
    things = " and ".join(f"{NUMBERS[g.count - 1]} {g.colour} {g.noun}" for g in still.groups)
    return f"{things[0].upper()}{things[1:]} on a {still.background} background."


def still_questions(still: Still, rng: random.Random, k: int) -> list[dict[str, object]]:
    """Every question about ``still``, each with its answer and ``k`` wrong options."""
    questions = []
    for g in still.groups:
        verb = "is" if g.count == 1 else "are"
        objects = "object" if g.count == 1 else "objects"
        questions += [
            (f"How many {g.colour} {g.shape}s are there?", NUMBERS[g.count - 1], NUMBERS),
            (f"What colour {verb} the {g.noun}?", g.colour, list(COLOURS)),
            (f"What shape {verb} the {g.colour} {objects}?", g.shape, SHAPES),
        ]
    questions.append(("What colour is the background?", still.background, list(BACKGROUNDS)))
    return [
        {"question": q, "answer": a, "options": wrong_values(rng, pool, a, k)}
        for q, a, pool in questions
    ]
