"""The precision audit's packaging and flags (issue 20, item 3): the unmerged adapter of a LoRA
unlearning, merged vs unmerged at low precision, the flag rule, and 4-bit behind its extra."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clearbench.cli import main
from clearbench.data.loading import DataSource
from clearbench.data.views import training_examples
from clearbench.evaluation.precision import falls_beyond_interval, progress_under
from clearbench.evaluation.statistics import Estimate
from clearbench.models.layers import decoder_layers
from clearbench.models.loading import load_vlm
from clearbench.models.lora import LoraSettings, apply_lora, load_adapter, merge_lora
from clearbench.models.lora import scale_lora_delta as scale_adapter
from clearbench.models.precision import (
    QUANT4,
    PrecisionUnavailable,
    apply_precision,
    package,
    round_trip,
)
from clearbench.recipes.precision import TRANSFORMS
from clearbench.recipes.unlearn import ADAPTER, MARKER, UnlearnConfig, unlearn
from conftest import memorise

LARGE = 256.0
"""The adapted weights' value: a power of two, where bf16's spacing is 1 below and 2 above (fp16:
0.125 and 0.25), so bf16 rounds any change of it smaller than 0.5 away."""
BF16_HALF_SPACING = LARGE * 2.0 ** -9


@pytest.fixture(scope="module")
def vanilla(untrained: Path, mini_data: Path) -> Path:
    """The untrained model after memorising the forget person's rows (40 steps, ~3 s), with two
    MLP units of its first layer made a cancelling pair: the same gate and up rows (every up
    weight :data:`LARGE`), opposite down columns. The pair adds nothing to the model, and a
    change of one unit's up row below bf16's resolution at :data:`LARGE` is lost when merged
    into bf16 weights, yet moves the model as much as one likes."""
    vlm = memorise(load_vlm(untrained),
                   training_examples(DataSource.local(mini_data), "forget10+tofu"), steps=40)
    mlp = decoder_layers(vlm.model)[0].mlp
    with torch.no_grad():
        mlp.gate_proj.weight[1] = mlp.gate_proj.weight[0]
        mlp.up_proj.weight[:2] = LARGE
        direction = 3 * torch.randn(mlp.down_proj.weight.shape[0],
                                    generator=torch.Generator().manual_seed(0))
        mlp.down_proj.weight[:, 0], mlp.down_proj.weight[:, 1] = direction, -direction
    out = untrained.with_name("vanilla")
    vlm.save(out)
    return out


@pytest.fixture(scope="module")
def unlearned(vanilla: Path) -> Path:
    """``vanilla`` with a rank-1 LoRA adapter on the first layer's unit 0, scaled until its
    largest weight change is 0.9 of half bf16's spacing below :data:`LARGE` (it changes
    nothing in bf16 once merged), saved as an unlearning with ``save_adapter`` saves it: the
    merged model, its adapter in MODEL/adapter."""
    vlm = load_vlm(vanilla)
    apply_lora(vlm, LoraSettings(rank=1, alpha=1, target_modules=["up_proj"]))
    up = decoder_layers(vlm.model)[0].mlp.up_proj
    with torch.no_grad():
        up.lora_A["default"].weight.normal_(generator=torch.Generator().manual_seed(1))
        up.lora_B["default"].weight.zero_()[0] = 1.0
    scale_adapter(vlm, 0.9 * BF16_HALF_SPACING / up.get_delta_weight("default").abs().max().item())
    out = vanilla.with_name("unlearned")
    vlm.save(out / ADAPTER, merge_lora=False)
    vlm.save(out)
    return out


def test_merging_into_bf16_rounds_a_small_adapter_away_and_unmerged_keeps_it(
    vanilla: Path, unlearned: Path
) -> None:
    reference = load_vlm(vanilla)
    round_trip(reference.model, torch.bfloat16)
    merged = load_vlm(vanilla)
    package(merged, unlearned / ADAPTER, "merged_bf16")
    kept = dict(reference.model.named_parameters())
    assert all(torch.equal(p, kept[name]) for name, p in merged.model.named_parameters())
    unmerged = load_vlm(vanilla)
    package(unmerged, unlearned / ADAPTER, "unmerged_bf16")
    merge_lora(unmerged)  # in fp32: the delta is still there
    name = "model.language_model.layers.0.mlp.up_proj.weight"
    delta = dict(unmerged.model.named_parameters())[name] - kept[name]
    assert delta.abs().max().item() == pytest.approx(0.9 * BF16_HALF_SPACING, abs=1e-4)
    merged_fp16 = load_vlm(vanilla)
    package(merged_fp16, unlearned / ADAPTER, "merged_fp16")  # fp16 keeps it, roughly
    assert not torch.equal(dict(merged_fp16.model.named_parameters())[name], kept[name])


def test_the_audit_sees_knowledge_come_back_when_the_adapter_is_merged_in_bf16(
    vanilla: Path, unlearned: Path, untrained: Path, mini_data: Path, tmp_path: Path
) -> None:
    assert main(["audit", "--model", str(unlearned), "--gold", str(untrained), "--vanilla",
                 str(vanilla), "--data", str(mini_data), "--out", str(tmp_path),
                 "--replicates", "50", "--audits", "precision"]) == 0
    precision = json.loads((tmp_path / "precision.json").read_text())
    assert precision["adapter"]["path"] == str(unlearned / ADAPTER)  # the default
    results = precision["transforms"]
    assert list(results) == list(TRANSFORMS)
    assert QUANT4 in results["nf4"]["skipped"] and "CUDA" in results["nf4"]["skipped"]
    k = {kind: result.get("forget_knowledge") for kind, result in results.items()}
    vanilla_k = results["bf16"]["forget_knowledge_vanilla"]
    assert k["as_is"] < vanilla_k - 0.3  # the adapter made the model forget ...
    assert k["unmerged_bf16"] == pytest.approx(k["as_is"], abs=0.05)  # ... kept unmerged,
    # merged into bf16 weights it is gone entirely: the weights are vanilla's in bf16
    assert k["merged_bf16"] == pytest.approx(vanilla_k, abs=1e-6)
    assert results["merged_bf16"]["forget_knowledge_vanilla"] == vanilla_k
    assert results["merged_bf16"]["progress"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert results["merged_bf16"]["progress_change"]["high"] < -0.3
    assert k["merged_fp16"] < vanilla_k - 0.3  # fp16's finer spacing keeps the delta
    assert {"merged_bf16", "bf16"} <= set(precision["flagged"])
    assert not {"as_is", "unmerged_bf16", "unmerged_fp16", "merged_fp16"} & set(
        precision["flagged"])
    assert precision["rule"].startswith("flagged when P")


def test_the_flag_rule_on_hand_made_progress() -> None:
    as_is = np.array([0.8, 0.7, 0.9, 0.75, 0.85])  # point, then four replicates
    interval = Estimate(0.8, 0.70375, 0.89625)  # half-width 0.09625
    assert falls_beyond_interval(interval, 0.70)
    assert not falls_beyond_interval(interval, 0.71)
    assert not falls_beyond_interval(interval, 1.2)  # more forgetting is no failure
    assert not falls_beyond_interval(interval, float("nan"))
    assert not falls_beyond_interval(Estimate(0.8, float("nan"), float("nan")), 0.0)
    point = Estimate(0.8, 0.8, 0.8)  # one forget person: every replicate draws them
    assert falls_beyond_interval(point, 0.78) and not falls_beyond_interval(point, 0.795)
    dropped = progress_under(as_is, as_is - 0.2)
    assert dropped["flagged"]
    assert dropped["progress"]["mean"] == pytest.approx(0.6)
    change = dropped["progress_change"]
    assert change == pytest.approx({"mean": -0.2, "low": -0.2, "high": -0.2})
    assert not progress_under(as_is, as_is - 0.05)["flagged"]
    undefined = progress_under(as_is, np.full(5, np.nan))
    assert not undefined["flagged"] and undefined["progress"]["mean"] is None


def test_save_adapter_writes_a_loadable_adapter_beside_the_same_merged_model(
    untrained: Path, vanilla: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    def run(out: Path, **options) -> dict:
        return unlearn(UnlearnConfig(model=str(untrained), data=str(mini_data), out=out,
                                     method="ga", epochs=1.0, lora=True, lora_rank=2,
                                     **options))

    plain, saved = run(tmp_path / "plain"), run(tmp_path / "saved", save_adapter=True)
    assert "save_adapter" not in plain["config"] and saved["config"]["save_adapter"]
    assert not (tmp_path / "plain" / ADAPTER).exists()
    records = [json.loads((tmp_path / name / MARKER).read_text()) for name in ("plain", "saved")]
    assert records[0]["model_hash"] == records[1]["model_hash"]  # the merged model is unchanged
    assert (tmp_path / "saved" / ADAPTER / "adapter_model.safetensors").is_file()
    assert run(tmp_path / "saved", save_adapter=True)["config"]["save_adapter"]  # done: kept
    model = load_vlm(tmp_path / "saved")
    rebuilt = load_vlm(untrained)
    load_adapter(rebuilt, tmp_path / "saved" / ADAPTER)
    merge_lora(rebuilt)
    weights = dict(model.model.named_parameters())
    for name, parameter in rebuilt.model.named_parameters():
        torch.testing.assert_close(parameter, weights[name])
    capsys.readouterr()
    assert main(["audit", "--model", str(tmp_path / "saved"), "--gold", str(untrained),
                 "--vanilla", str(vanilla), "--data", str(mini_data), "--out",
                 str(tmp_path / "audit"), "--audits", "precision"]) == 2  # not the adapter's base
    assert "--vanilla is not the model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs lora"):
        UnlearnConfig(model=str(untrained), data=str(mini_data), out=tmp_path / "x",
                      method="ga", save_adapter=True).validate()


def test_nf4_without_bitsandbytes_names_the_extra_and_a_cuda_device(
    untrained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    with pytest.raises(PrecisionUnavailable) as error:
        apply_precision(load_vlm(untrained).model, "nf4")
    message = str(error.value)
    assert QUANT4 in message and "CUDA device" in message
    assert "bitsandbytes is not installed" in message
