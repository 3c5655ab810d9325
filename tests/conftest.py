"""Fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.synth import synthesize
from clearbench.hashing import CACHE_ENV
from clearbench.models.tiny import TinyVLMConfig, build_tiny_vlm
from clearbench.models.vlm import VLM
from clearbench.recipes.base import corpus
from hub_layout import write_clear, write_hub_cache, write_tofu


@pytest.fixture(scope="session")
def mini_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLEAR-mini folder (10 persons with 5 images and 5 facts each, as on the hub every
    person alike), generated once per test session (~0.5 s)."""
    return synthesize(tmp_path_factory.mktemp("clear-mini") / "data", persons=10,
                      images_per_person=5, qa_per_person=5, other_images_per_person=None,
                      other_qa_per_person=None)


VAL_SIZES = {"persons": 12, "images_per_person": 3, "qa_per_person": 3, "real_world": 4}
"""A small CLEAR-mini with validation persons (:func:`val_data`), also generated without."""


@pytest.fixture(scope="session")
def val_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CLEAR-mini with 2 validation persons (``forget_val``) beside forget10's 1 and
    ``retain_perturbed``'s 1, generated once per test session."""
    return synthesize(tmp_path_factory.mktemp("clear-mini-val") / "data", **VAL_SIZES,
                      validation_persons=2)


@pytest.fixture(scope="session")
def hub_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CLEAR and TOFU snapshot folders in the real hub layout (tests/hub_layout.py), ten
    persons."""
    root = tmp_path_factory.mktemp("hub")
    return {"clear": write_clear(root / "CLEAR"), "tofu": write_tofu(root / "TOFU")}


@pytest.fixture
def offline_hub(hub_data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HF_HUB_OFFLINE=1`` and a huggingface_hub cache holding therem/CLEAR and locuslab/TOFU
    (the hub data's folders); the cache."""
    cache = tmp_path / "hf-cache"
    write_hub_cache(cache, "therem/CLEAR", hub_data["clear"])
    write_hub_cache(cache, "locuslab/TOFU", hub_data["tofu"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # for subprocesses
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once, on import
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


TINY = TinyVLMConfig(
    vision_hidden=32,
    vision_layers=1,
    vision_heads=2,
    text_hidden=64,
    text_layers=2,
    text_heads=2,
    text_intermediate=128,
    vocab_size=600,
)
"""About 150 k parameters: a training step takes a few tens of milliseconds on one core."""


@pytest.fixture(scope="session")
def untrained(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VLM built on ``mini_data``'s corpus and never trained (its folder's siblings
    are free for models derived from it)."""
    out = tmp_path_factory.mktemp("untrained") / "untrained"
    build_tiny_vlm(TINY, corpus(DataSource.local(mini_data))).save(out)
    return out


def memorise(vlm: VLM, examples: Sequence[Example], steps: int, lr: float = 3e-3) -> VLM:
    """``vlm`` after ``steps`` full-batch AdamW steps on ``examples`` (a tiny model memorises
    them in a few tens), left in eval mode."""
    optimizer = torch.optim.AdamW(vlm.model.parameters(), lr=lr)
    batch = vlm.encode(examples)
    vlm.model.train()
    for _ in range(steps):
        vlm.model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    vlm.model.eval()
    return vlm


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Run torch on one thread: for models this small, two OpenMP threads competing with any
    other process on a 2-core machine make each step ~50× slower (measured 1.5 s vs 30 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def hash_cache(tmp_path_factory: pytest.TempPathFactory):
    """Content-hash stamps (clearbench.hashing) go to a folder of the test session, not the
    user's cache (environment variable: worker subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("hash-cache")))
        yield
