"""Unlearning on a real (tiny) model: optimiser steps move the right losses, the RMU layer
lookup, references, SKU negation, LoRA × ℓ1, divergence, and every method × modality end to end."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from clearbench.cli import build_parser, main
from clearbench.data.loading import DataSource
from clearbench.data.views import training_examples
from clearbench.methods import METHODS, build_method
from clearbench.methods.base import FORGET, RETAIN, UnlearningMethod
from clearbench.methods.rmu import default_layer
from clearbench.models.layers import decoder_layers, layer_output
from clearbench.models.loading import load_vlm
from clearbench.models.lora import LoraSettings, apply_lora, lora_parameters, scale_lora_delta
from clearbench.models.tiny import build_tiny_vlm
from clearbench.models.vlm import answer_logits, model_inputs
from clearbench.recipes.base import corpus
from clearbench.recipes.unlearn import MARKER, UnlearnConfig, negate, unlearn
from clearbench.training.reference import AdapterOff, FrozenCopy
from conftest import TINY


@pytest.fixture(scope="module")
def vanilla(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unlearn") / "vanilla"
    build_tiny_vlm(TINY, corpus(DataSource.local(mini_data))).save(out)
    return out


def batches(vlm, mini_data: Path) -> dict:
    source = DataSource.local(mini_data)
    return {FORGET: vlm.encode(training_examples(source, "forget10+tofu")[:8]),
            RETAIN: vlm.encode(training_examples(source, "retain90+tofu")[:8])}


def ce(vlm, batch) -> float:
    with torch.no_grad():
        return vlm.model(**batch).loss.item()


@pytest.mark.parametrize(
    ("name", "kind", "direction"), [("ga", FORGET, +1), ("retain_ft", RETAIN, -1)]
)
def test_one_optimiser_step_moves_the_loss_the_right_way(
    vanilla: Path, mini_data: Path, name: str, kind: str, direction: int
) -> None:
    vlm = load_vlm(vanilla)
    data = batches(vlm, mini_data)
    before = ce(vlm, data[kind])
    optimizer = torch.optim.SGD(vlm.model.parameters(), lr=0.5)
    build_method(name).loss(vlm.model, data, None, 0).backward()
    optimizer.step()
    assert direction * (ce(vlm, data[kind]) - before) > 0


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_rmu_layer_lookup_finds_the_decoder_layers(arch: str, mini_data: Path) -> None:
    config = replace(TINY, arch=arch, text_layers=8)
    vlm = build_tiny_vlm(config, corpus(DataSource.local(mini_data)))
    layers = decoder_layers(vlm.model)
    assert len(layers) == 8 and default_layer(vlm.model) == 2  # round(7/32 · 8)
    batch = batches(vlm, mini_data)[FORGET]
    hidden = layer_output(vlm.model, model_inputs(batch), 2)
    assert hidden.shape == (*batch["input_ids"].shape, config.text_hidden)
    apply_lora(vlm, LoraSettings(rank=2))  # still found through the PEFT wrapper
    assert decoder_layers(vlm.model) is layers or len(decoder_layers(vlm.model)) == 8


def test_references_are_the_weights_before_unlearning(vanilla: Path, mini_data: Path) -> None:
    vlm = load_vlm(vanilla)
    batch = batches(vlm, mini_data)[RETAIN]
    with torch.no_grad():
        original, _ = answer_logits(vlm.model, batch)
    frozen = FrozenCopy(vlm.model)
    apply_lora(vlm, LoraSettings(rank=2))
    adapter_off = AdapterOff(vlm.model)
    optimizer = torch.optim.SGD([p for p in vlm.model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        vlm.model(**batch).loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert not torch.allclose(answer_logits(vlm.model, batch)[0], original, atol=1e-4)
    torch.testing.assert_close(adapter_off.answer_logits(batch), original)
    torch.testing.assert_close(frozen.answer_logits(batch), original)
    assert not any(p.requires_grad for p in frozen.model.parameters())


def test_sku_negation_is_exact_for_full_parameters_and_lora(vanilla: Path) -> None:
    parameter = torch.nn.Parameter(torch.tensor([3.0, -1.0]))
    negate(None, False, [parameter], [torch.tensor([1.0, 1.0])], 0.5)
    assert parameter.tolist() == [0.0, 2.0]  # θ₀ − ½(θ − θ₀) = (1 − 1, 1 + 1)

    vlm = load_vlm(vanilla)
    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    before = dict(vlm.model.named_parameters())[name].detach().clone()
    apply_lora(vlm, LoraSettings(rank=2))
    with torch.no_grad():
        for p in lora_parameters(vlm):
            p.normal_()
    trained = _merged_weight(vlm, name)
    scale_lora_delta(vlm, -0.5)
    torch.testing.assert_close(_merged_weight(vlm, name), before - 0.5 * (trained - before))


def _merged_weight(vlm, name: str) -> torch.Tensor:
    module_name = name.removesuffix(".weight")
    module = dict(vlm.model.base_model.model.named_modules())[module_name]
    return module.get_base_layer().weight + module.get_delta_weight("default")


def run(vanilla: Path, mini_data: Path, out: Path, **overrides) -> dict:
    settings = {"method": "ga", "epochs": 1.0} | overrides
    config = UnlearnConfig(model=str(vanilla), data=str(mini_data), out=out, **settings)
    return unlearn(config)


@pytest.mark.parametrize("modality", ["both", "visual", "text"])
def test_every_method_runs_end_to_end(
    vanilla: Path, mini_data: Path, tmp_path: Path, modality: str
) -> None:
    for name in sorted(METHODS):
        record = run(vanilla, mini_data, tmp_path / name, method=name, modality=modality)
        assert record["status"] == "ok", name
        assert record["forget_view"] == {"both": "forget10+tofu", "visual": "forget10",
                                         "text": "tofu:forget10"}[modality]
        cost = record["cost"]
        assert cost["optimiser_steps"] == len(record["losses"]) > 0
        assert cost["forward_passes"] >= cost["backward_passes"] == cost["optimiser_steps"]
        assert cost["trainable_parameters"] > 0 and cost["peak_memory_gb"] > 0
        load_vlm(tmp_path / name)  # a plain, loadable model folder
    assert json.loads((tmp_path / "ga" / MARKER).read_text())["method_options"] == {}


def test_lora_and_l1_switch_independently(vanilla: Path, mini_data: Path, tmp_path: Path):
    records = {
        (lora, l1): run(vanilla, mini_data, tmp_path / f"{lora}-{l1}", lora=lora, l1=l1,
                        lora_rank=2)
        for lora in (False, True) for l1 in (0.0, 0.01)
    }
    full, adapter = records[False, 0.0], records[True, 0.0]
    assert adapter["cost"]["trainable_parameters"] < full["cost"]["trainable_parameters"]
    # At the first step θ = θ₀: without LoRA the ℓ1 term on θ − θ₀ is 0 ...
    assert records[False, 0.01]["losses"][0] == pytest.approx(full["losses"][0], rel=1e-6)
    # ... with LoRA it is λ·Σ|A| (B starts at 0), the same random A for the same seed.
    vlm = load_vlm(vanilla)
    torch.manual_seed(0)
    apply_lora(vlm, LoraSettings(rank=2))
    penalty = 0.01 * sum(p.abs().sum().item() for p in lora_parameters(vlm))
    gap = records[True, 0.01]["losses"][0] - adapter["losses"][0]
    assert gap == pytest.approx(penalty, rel=1e-4)


@dataclass
class Exploding(UnlearningMethod):
    name = "exploding"
    batches = (FORGET,)

    def loss(self, model, batches, reference, step):
        loss = model(**batches[FORGET]).loss
        return loss * float("inf") if step == 1 else loss


def test_a_nan_or_inf_loss_stops_the_run_as_diverged(
    vanilla: Path, mini_data: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(METHODS, "exploding", Exploding)
    record = run(vanilla, mini_data, tmp_path, method="exploding")
    assert record["status"] == "diverged" and record["diverged_at_step"] == 2
    assert json.loads((tmp_path / MARKER).read_text())["status"] == "diverged"
    assert not (tmp_path / "model.safetensors").exists()


def test_unlearn_cli_parses_method_options_and_rejects_bad_ones(
    vanilla: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    def args(method: str, option: str, out: str) -> list[str]:
        return ["unlearn", "--model", str(vanilla), "--data", str(mini_data), "--epochs", "1",
                "--method", method, "--option", option, "--out", str(tmp_path / out)]

    assert main(args("npo", "beta=0.5", "npo")) == 0
    record = json.loads((tmp_path / "npo" / MARKER).read_text())
    assert record["method_options"] == {"beta": 0.5, "retain_weight": 1.0}
    capsys.readouterr()
    assert main(args("npo", "gamma=2", "x")) == 2
    assert "has no option(s) gamma" in capsys.readouterr().err
    assert main(args("forgetful", "beta=1", "y")) == 2
    assert "unknown unlearning method 'forgetful'" in capsys.readouterr().err
    assert main(args("npo", "beta", "z")) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    help_text = build_parser()._subparsers._group_actions[0].choices["unlearn"].format_help()
    assert all(name in help_text for name in METHODS)
