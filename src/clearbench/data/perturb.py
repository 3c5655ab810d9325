"""Seeded image perturbations for the robustness audit (issue 20, item 4): pure PIL + numpy.

Each perturbation is ``(image, rng) -> image``: mild enough that a model that knows the face
should still see it, and returning an image of the input's size and mode, so that the image
processor treats it as it treats the original. :func:`perturb` draws the random parameters
from a generator seeded by a stable hash of (perturbation, seed, row id): the same row gets the
same perturbed image in every run, process and task (the forget caption and face→name rows of
one image share its id).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

Perturbation = Callable[[Image.Image, np.random.Generator], Image.Image]


def stable_rng(*keys: object) -> np.random.Generator:
    """A numpy generator seeded by the SHA-256 of ``keys`` (not Python's salted ``hash``)."""
    digest = hashlib.sha256(":".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _in_rgb(image: Image.Image, change: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """``change`` applied to ``image`` in RGB, returned in the input's mode."""
    return change(image.convert("RGB")).convert(image.mode)


def crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A crop of 85–95 % of each side (one scale for both: the aspect is kept) at a uniform
    random position, resized back to the input size (bilinear)."""
    width, height = image.size
    scale = rng.uniform(0.85, 0.95)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    return image.resize((width, height), Image.Resampling.BILINEAR,
                        box=(left, top, left + w, top + h))


def blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Gaussian blur of radius 0.75–1.5 % of the shorter side (0.5–1 px on CLEAR-mini's
    64×64)."""
    radius = rng.uniform(0.0075, 0.015) * min(image.size)
    return _in_rgb(image, lambda rgb: rgb.filter(ImageFilter.GaussianBlur(radius)))


def jpeg(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A JPEG round trip at quality 50–80 (uniform integer; lower qualities' chroma blocks
    erase the eyes of CLEAR-mini's 64×64 faces)."""
    quality = int(rng.integers(50, 81))

    def compress(rgb: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        rgb.save(buffer, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    return _in_rgb(image, compress)


def grayscale(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Luminance only (ITU-R 601-2), as three equal channels; no random parameter."""
    return _in_rgb(image, lambda rgb: ImageOps.grayscale(rgb).convert("RGB"))


def hflip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The mirror image (left ↔ right); no random parameter."""
    return ImageOps.mirror(image)


def color_jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation each scaled by a factor of 0.8–1.2, in that order
    (torchvision's ``ColorJitter(0.2, 0.2, 0.2)`` without hue)."""
    factors = rng.uniform(0.8, 1.2, size=3)

    def jitter(rgb: Image.Image) -> Image.Image:
        for enhance, factor in zip((ImageEnhance.Brightness, ImageEnhance.Contrast,
                                    ImageEnhance.Color), factors, strict=True):
            rgb = enhance(rgb).enhance(float(factor))
        return rgb

    return _in_rgb(image, jitter)


PERTURBATIONS: dict[str, Perturbation] = {
    "crop": crop,
    "blur": blur,
    "jpeg": jpeg,
    "grayscale": grayscale,
    "hflip": hflip,
    "color_jitter": color_jitter,
}
"""The image perturbations by name, in the order the audit reports them."""
SEEDED = ("crop", "blur", "jpeg", "color_jitter")
"""The perturbations with random parameters; ``grayscale`` and ``hflip`` are fixed maps."""


def perturb(image: Image.Image, name: str, seed: int, row_id: str) -> Image.Image:
    """``image`` under perturbation ``name`` with parameters drawn for (``seed``, ``row_id``)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    return PERTURBATIONS[name](image, stable_rng("perturb", name, seed, row_id))
