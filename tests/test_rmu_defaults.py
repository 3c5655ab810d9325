"""RMU's defaults do something at any model size (spec §3, issue 18): the steering coefficient
is calibrated to the steered layer's norm, a few steps move the forget representations towards
c·u where WMDP's values did not; and every option example in the shipped configs is real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from clearbench.cv.methods import UnlearnBatch, build_cv_method
from clearbench.cv.model import FaceNet, FaceNetConfig
from clearbench.data.loading import DataSource
from clearbench.data.views import training_examples
from clearbench.methods import build_method
from clearbench.methods.base import FORGET, RETAIN
from clearbench.methods.losses import masked_mse, median_token_norm
from clearbench.methods.rmu import STEERING_SCALE, control_vector, steering_coefficient
from clearbench.models.layers import layer_output
from clearbench.models.tiny import build_tiny_vlm
from clearbench.models.vlm import model_inputs
from clearbench.recipes.base import corpus
from clearbench.recipes.unlearn import MARKER, UnlearnConfig, unlearn
from clearbench.training.reference import reference_for
from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
WMDP = {"steering_coeff": 6.5, "retain_weight": 1200.0}
"""The old defaults: WMDP's Zephyr-7B values."""


def test_the_calibration_rule_on_a_hand_made_tensor() -> None:
    hidden = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]]])  # token norms 5, 1, 10
    mask = torch.tensor([[1, 1, 0]])  # the last token is padding
    assert median_token_norm(hidden, mask) == pytest.approx(3.0)  # between 1 and 5
    assert median_token_norm(hidden) == pytest.approx(5.0)
    assert steering_coefficient(hidden, mask) == pytest.approx(STEERING_SCALE * 3.0)
    assert steering_coefficient(hidden, mask, scale=2.0) == pytest.approx(6.0)


def test_an_explicit_coefficient_overrides_and_an_uncalibrated_default_fails(
    mini_data: Path,
) -> None:
    vlm, data = tiny_vlm(mini_data)
    reference = reference_for(vlm.model)
    explicit = build_method("rmu", {"steering_coeff": 3.0})
    assert explicit.calibrate(vlm.model, data, reference) == {}
    explicit.loss(vlm.model, data, reference, 0)
    with pytest.raises(RuntimeError, match="calibrate"):
        build_method("rmu").loss(vlm.model, data, reference, 0)


def tiny_vlm(mini_data: Path) -> tuple[Any, dict]:
    torch.manual_seed(0)
    source = DataSource.local(mini_data)
    vlm = build_tiny_vlm(TINY, corpus(source))
    return vlm, {FORGET: vlm.encode(training_examples(source, "forget10+tofu")[:8]),
                 RETAIN: vlm.encode(training_examples(source, "retain90+tofu")[:8])}


def vlm_steering(mini_data: Path, options: dict[str, float]) -> tuple[float, float]:
    """Ten AdamW steps of RMU on a tiny VLM: (relative drop of the forget MSE to c·u, forget
    hidden states' movement relative to their norm) at the steered layer."""
    vlm, data = tiny_vlm(mini_data)
    reference = reference_for(vlm.model)
    method = build_method("rmu", options)
    calibration = method.calibrate(vlm.model, data, reference)
    layer, mask = method.layer_of(vlm.model), data[FORGET]["attention_mask"]

    def forget_hidden() -> torch.Tensor:
        with torch.no_grad():
            return layer_output(vlm.model, model_inputs(data[FORGET]), layer)

    before = forget_hidden()
    c = calibration.get("steering_coeff", options.get("steering_coeff"))
    target = control_vector(before.shape[-1], c, method.seed)
    optimiser = torch.optim.AdamW(vlm.model.parameters(), lr=1e-3, weight_decay=0.0)
    vlm.model.train()
    for step in range(10):
        optimiser.zero_grad()
        method.loss(vlm.model, data, reference, step).backward()
        optimiser.step()
    vlm.model.eval()
    after = forget_hidden()
    drop = 1 - masked_mse(after, target, mask).item() / masked_mse(before, target, mask).item()
    return drop, median_token_norm(after - before, mask) / median_token_norm(before, mask)


def test_rmu_defaults_steer_the_forget_hidden_states_where_wmdps_did_not(
    mini_data: Path,
) -> None:
    drop, moved = vlm_steering(mini_data, {})
    assert drop > 0.2 and moved > 0.05
    old_drop, _ = vlm_steering(mini_data, WMDP)  # α = 1200 pins the layer
    assert old_drop < 0.05


def cv_steering(options: dict[str, float]) -> float:
    """Twenty AdamW steps of CV RMU on a tiny ResNet: the relative gain of the forget
    features' mean projection on u."""
    torch.manual_seed(0)
    config = FaceNetConfig(hidden_sizes=(4, 8), depths=(1, 1), embedding_dim=6, classes=4,
                           image_size=16)
    model, reference = FaceNet(config), FaceNet(config)
    reference.load_state_dict(model.state_dict())
    reference.eval()
    images = torch.rand(16, 3, 16, 16) * 2 - 1
    labels = torch.zeros(8, dtype=torch.long)
    batch = UnlearnBatch(images[:8], labels, images[8:], labels + 1, labels + 1)
    method = build_cv_method("rmu", options)
    method.calibrate(reference, batch.forget)
    stage = method.stage_of(model)
    direction = control_vector(config.hidden_sizes[stage - 1], 1.0, method.seed)

    def projection() -> float:
        with torch.no_grad():
            features = model.features(batch.forget, stage)
        return (features * direction[None, :, None, None]).sum(1).mean().item()

    before = projection()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for step in range(20):
        optimiser.zero_grad()
        method.loss(model, batch, reference, step).backward()
        optimiser.step()
    model.eval()
    return projection() / before - 1


def test_cv_rmu_defaults_steer_the_forget_features_where_the_old_ones_did_not() -> None:
    assert cv_steering({}) > 0.1
    assert cv_steering({"steering_coeff": 6.5, "retain_weight": 100.0}) < 0.05


def test_the_unlearning_record_holds_the_calibrated_coefficient(
    mini_data: Path, tmp_path: Path
) -> None:
    vanilla = tmp_path / "vanilla"
    tiny_vlm(mini_data)[0].save(vanilla)
    config = UnlearnConfig(model=str(vanilla), data=str(mini_data), out=tmp_path / "rmu",
                           method="rmu", epochs=1.0)
    record = unlearn(config)
    assert record["status"] == "ok"
    assert record["method_calibration"]["steering_coeff"] > 0
    assert record["method_options"]["steering_coeff"] is None
    saved = json.loads((tmp_path / "rmu" / MARKER).read_text())
    assert saved["method_calibration"] == record["method_calibration"]


OPTION_EXAMPLE = re.compile(r"#\s*(options|method_options):\s*(\{.*\})")


@pytest.mark.parametrize(
    "path", sorted({p.resolve() for p in [*ROOT.glob("configs/**/*.yaml"),
                                                 *ROOT.glob("src/clearbench/configs/*.yaml")]}),
    ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_option_example_in_the_configs_names_real_options(path: Path) -> None:
    build = {"options": build_method, "method_options": build_cv_method}
    for key, example in OPTION_EXAMPLE.findall(path.read_text()):
        for method, options in yaml.safe_load(example).items():
            build[key](method, options)
