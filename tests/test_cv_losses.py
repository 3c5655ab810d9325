"""The vision-only track's losses on hand-computed tensors, and every method's loss at θ = θ₀,
where each reduces to a value known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from clearbench.cv.losses import (
    am_softmax_loss,
    cosine_target_loss,
    feature_mse,
    kl_to_reference,
    label_log_prob,
    twins_loss,
)
from clearbench.cv.methods import CV_METHODS, UnlearnBatch, build_cv_method, ce
from clearbench.cv.model import FaceNet, FaceNetConfig


def test_am_softmax_subtracts_the_margin_from_the_true_cosine_only() -> None:
    cosines = torch.tensor([[0.5, 0.1]])
    # logits 2·(0.5 − 0.1, 0.1) = (0.8, 0.2): CE = log(1 + e^(0.2 − 0.8))
    loss = am_softmax_loss(cosines, torch.tensor([0]), scale=2.0, margin=0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.6)))
    # label 1: logits (1.0, 2·(0.1 − 0.1)) = (1.0, 0.0)
    loss = am_softmax_loss(cosines, torch.tensor([1]), scale=2.0, margin=0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(1.0)))


def test_label_log_prob_and_kl() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])  # π = (1/4, 3/4)
    assert label_log_prob(logits, torch.tensor([1])).item() == pytest.approx(math.log(0.75))
    uniform = torch.zeros(1, 2)
    # KL((½, ½) ‖ (¼, ¾)) = ½·log 2 + ½·log(2/3) = ½·log(4/3)
    assert kl_to_reference(uniform, logits).item() == pytest.approx(0.5 * math.log(4 / 3))
    assert kl_to_reference(logits, logits).item() == pytest.approx(0.0, abs=1e-7)


def test_cosine_target_loss_pushes_to_minus_one_or_plus_one() -> None:
    e = torch.tensor([[1.0, 0.0]])
    orthogonal, opposite = torch.tensor([[0.0, 1.0]]), torch.tensor([[-2.0, 0.0]])
    assert cosine_target_loss(e, orthogonal, -1.0).item() == pytest.approx(1.0)
    assert cosine_target_loss(e, opposite, -1.0).item() == pytest.approx(0.0)
    assert cosine_target_loss(e, opposite, 1.0).item() == pytest.approx(2.0)
    assert cosine_target_loss(e, 3 * e, 1.0).item() == pytest.approx(0.0)


def test_twins_and_feature_mse() -> None:
    assert twins_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 2.0]])).item() == 2.0
    features = torch.tensor([1.0, 3.0]).reshape(1, 2, 1, 1)
    # control vector (0, 1): ((1 − 0)² + (3 − 1)²) / 2 channels
    assert feature_mse(features, torch.tensor([0.0, 1.0])).item() == pytest.approx(2.5)
    assert feature_mse(features, features).item() == 0.0


TINY = FaceNetConfig(hidden_sizes=(4, 8), depths=(1, 1), embedding_dim=6, classes=4,
                     image_size=16)


@pytest.fixture
def setup() -> tuple[FaceNet, FaceNet, UnlearnBatch]:
    torch.manual_seed(0)
    model = FaceNet(TINY)
    reference = FaceNet(TINY)
    reference.load_state_dict(model.state_dict())
    model.eval()
    reference.eval()
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    batch = UnlearnBatch(forget=images[:2], forget_labels=torch.tensor([0, 1]),
                         retain=images[2:], retain_labels=torch.tensor([2, 3]),
                         other=torch.tensor([3, 2]))
    return model, reference, batch


def _expected(name: str, model: FaceNet, reference: FaceNet, batch: UnlearnBatch,
              step: int) -> float:
    """Each method's loss at θ = θ₀ (KL, cosine and feature terms vanish), by its formula."""
    ce_f = ce(model, batch.forget, batch.forget_labels).item()
    ce_r = ce(model, batch.retain, batch.retain_labels).item()
    ce_other = ce(model, batch.forget, batch.other).item()
    beta = 0.1
    l1 = sum(p.abs().sum().item() for p in model.parameters())
    features = model.features(batch.forget, 1)  # RMU's default: the last but one feature map
    direction = torch.rand(features.shape[1], generator=torch.Generator().manual_seed(0))
    c = 12 * features.norm(dim=1).flatten().quantile(0.5)  # 12 × θ₀'s median feature norm
    control = c * direction / direction.norm()  # c·u, u a seeded random unit vector
    rmu = (features - control[None, :, None, None]).pow(2).mean().item()
    flipped = reference(batch.forget.flip(-1))
    twins = (model(batch.forget) - flipped).pow(2).mean().item()
    return {
        "retain_ft": ce_r,
        "neggrad": -ce_f,
        "scrub": 0.0 if step == 0 else 0.99 * ce_r,
        "scrub_bio": 2.0 if step == 0 else 0.99 * ce_r,
        "twins": twins + ce_r,
        "rmu": rmu,
        "dpo": (2 / beta) * math.log(2) + ce_r,
        "llmu": -0.5 * ce_f + ce_other,
        "sparsity": ce_r + 5e-5 * l1,
    }[name]


@pytest.mark.parametrize("name", list(CV_METHODS))
@pytest.mark.parametrize("step", [0, 1])
def test_every_method_loss_at_the_reference(name: str, step: int, setup) -> None:
    model, reference, batch = setup
    method = build_cv_method(name)
    method.calibrate(reference, batch.forget)
    with torch.no_grad():
        loss = method.loss(model, batch, reference, step).item()
        expected = _expected(name, model, reference, batch, step)
    assert loss == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_methods_move_the_model_as_their_loss_says(setup) -> None:
    """One gradient step of NegGrad raises the forget CE; one of Retain FT lowers the retain CE."""
    model, reference, batch = setup
    for name, images, labels, sign in (("neggrad", batch.forget, batch.forget_labels, 1),
                                       ("retain_ft", batch.retain, batch.retain_labels, -1)):
        model.load_state_dict(reference.state_dict())
        before = ce(model, images, labels).item()
        optimiser = torch.optim.SGD(model.parameters(), lr=1e-4)
        build_cv_method(name).loss(model, batch, reference, 0).backward()
        optimiser.step()
        assert sign * (ce(model, images, labels).item() - before) > 0


def test_unknown_method_and_option_are_named() -> None:
    with pytest.raises(ValueError, match="unknown CV method 'nope'"):
        build_cv_method("nope")
    with pytest.raises(ValueError, match=r"'dpo' has no option.*alpha"):
        build_cv_method("dpo", {"alpha": 1.0})
