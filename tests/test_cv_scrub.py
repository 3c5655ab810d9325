"""The vision-only SCRUB family's schedule (Kurmanji et al.): max-steps only in the first
``max_epochs`` epochs, then min-steps alone; a max-step sees forget images only, a min-step
retain images only."""

from __future__ import annotations

import pytest
import torch

from clearbench.cv.data import Faces
from clearbench.cv.losses import kl_to_reference
from clearbench.cv.methods import UnlearnBatch, build_cv_method, ce
from clearbench.cv.model import FaceNet, FaceNetConfig
from clearbench.cv.train import Schedule, unlearn

SCRUBS = ["scrub", "scrub_bio"]
TINY = FaceNetConfig(hidden_sizes=(4, 8), depths=(1, 1), embedding_dim=6, classes=4,
                     image_size=16)


def kinds(method, steps: int) -> list[str]:
    return ["max" if method.is_max_step(step) else "min" for step in range(steps)]


@pytest.mark.parametrize("name", SCRUBS)
def test_max_steps_only_in_the_first_max_epochs(name: str) -> None:
    method = build_cv_method(name, {"max_epochs": 2})
    method.prepare(3)  # epochs 0 and 1 are steps 0–5
    assert kinds(method, 10) == ["max", "min"] * 3 + ["min"] * 4
    cycles = build_cv_method(name, {"max_epochs": 1, "max_steps": 2, "min_steps": 1})
    cycles.prepare(4)
    assert kinds(cycles, 7) == ["max", "max", "min", "max", "min", "min", "min"]


def test_scrub_defaults_to_max_steps_in_a_share_of_the_tracks_epochs() -> None:
    method = build_cv_method("scrub")
    assert method.options()["max_epochs"] == 6.0  # recorded with the method's options
    method.prepare(2)
    assert kinds(method, 14) == ["max", "min"] * 6 + ["min"] * 2


def test_scrub_bio_defaults_to_alternating_through_the_tracks_epochs() -> None:
    method = build_cv_method("scrub_bio")
    assert method.options()["max_epochs"] == 20.0
    method.prepare(2)
    assert kinds(method, 40) == ["max", "min"] * 20
    assert kinds(method, 42)[40:] == ["min", "min"]


def test_the_unlearning_loop_tells_the_method_its_steps_per_epoch() -> None:
    torch.manual_seed(0)
    reference = FaceNet(TINY).eval()
    model = FaceNet(TINY)
    model.load_state_dict(reference.state_dict())
    forget = Faces(torch.rand(5, 3, 16, 16) * 2 - 1, torch.tensor([0, 0, 1, 1, 1]))
    retain = Faces(torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([2, 2, 3, 3]))
    method = build_cv_method("scrub", {"max_epochs": 1})
    losses = unlearn(model, method, reference, forget, retain, Schedule(2, 2, 1e-4), seed=0,
                     description="test")
    assert len(losses) == 6 and method.steps_per_epoch == 3  # ⌈5 / 2⌉
    assert kinds(method, 6) == ["max", "min", "max", "min", "min", "min"]


@pytest.fixture
def setup() -> tuple[FaceNet, FaceNet, UnlearnBatch]:
    torch.manual_seed(0)
    reference = FaceNet(TINY).eval()
    model = FaceNet(TINY).eval()  # θ ≠ θ₀, so every KL and cosine term has a gradient
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    forget, retain = images[:2].clone().requires_grad_(), images[2:].clone().requires_grad_()
    return model, reference, UnlearnBatch(forget, torch.tensor([0, 1]), retain,
                                          torch.tensor([2, 3]), torch.tensor([3, 2]))


@pytest.mark.parametrize("name", SCRUBS)
def test_a_max_step_sees_forget_images_and_a_min_step_retain_images(name: str,
                                                                     setup) -> None:
    model, reference, batch = setup
    method = build_cv_method(name, {"max_epochs": 1})
    method.prepare(4)
    for step, seen, unseen in ((0, batch.forget, batch.retain),   # max-step
                               (1, batch.retain, batch.forget),   # min-step in epoch 0
                               (4, batch.retain, batch.forget)):  # epoch 1: min-steps only
        batch.forget.grad = batch.retain.grad = None
        method.loss(model, batch, reference, step).backward()
        assert seen.grad is not None and seen.grad.abs().sum() > 0
        assert unseen.grad is None


def test_scrub_losses_by_their_formulas(setup) -> None:
    model, reference, batch = setup
    method = build_cv_method("scrub", {"max_epochs": 1})
    method.prepare(4)

    def kl(images: torch.Tensor) -> float:
        return kl_to_reference(reference.logits(reference(images)),
                               model.logits(model(images))).item()

    with torch.no_grad():
        assert method.loss(model, batch, reference, 0).item() == pytest.approx(
            -kl(batch.forget), rel=1e-5)
        min_step = kl(batch.retain) + 0.99 * ce(model, batch.retain, batch.retain_labels).item()
        for step in (1, 4):
            assert method.loss(model, batch, reference, step).item() == pytest.approx(
                min_step, rel=1e-5)
