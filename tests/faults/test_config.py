"""Faulty run configs are refused at load, every problem at once, before any stage runs."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from pydantic import ValidationError

from clearbench.cli import main
from clearbench.config import ConfigError, Problem, problems
from clearbench.presets import PRESETS
from clearbench.recipes.finetune import FinetuneConfig
from clearbench.recipes.pipeline import plan
from clearbench.recipes.runconfig import embedded_config, load_run_config, unlearn_settings
from clearbench.recipes.unlearn import UnlearnConfig

SMOKE = yaml.safe_load(embedded_config("smoke").read_text())
PAPER = Path(__file__).parents[2] / "configs" / "paper"


def write(tmp_path: Path, **changes: Any) -> Path:
    """The smoke config with ``changes`` (dotted key → value) applied, as ``bad.yaml``."""
    config = copy.deepcopy(SMOKE)
    for key, value in changes.items():
        *parents, last = key.split(".")
        section = config
        for name in parents:
            section = section.setdefault(name, {})
        section[last] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# (dotted key in the smoke config, bad value, the start of the line that must name it)
BAD = [
    ("finetune.epochs", "five", "finetune.epochs = 'five': a number > 0"),
    ("finetune.batch_size", 0, "finetune.batch_size = 0: an integer > 0"),
    ("finetune.lr", -1, "finetune.lr = -1: a number > 0"),
    ("finetune.epochs", 0, "finetune.epochs = 0: a number > 0"),
    ("finetune.replay", 1.5, "finetune.replay = 1.5: a number ≥ 0 and ≤ 1"),
    ("finetune.lora_rank", "eight", "finetune.lora_rank = 'eight': an integer > 0"),
    ("finetune.recipe", "huge", "finetune.recipe = 'huge': one of auto, paper, mini"),
    ("finetune.model", "x", "finetune.model = 'x': set by the run"),
    ("forget_splits", [], "forget_splits = []: a list of distinct names"),
    ("forget_splits", ["forget10", "forget10"], "forget_splits = ['forget10', 'forget10']"),
    ("forget_splits", "forget10", "forget_splits = 'forget10': a list"),
    ("unlearn.methods", ["ga", "npo", "ga"], "unlearn.methods = ['ga', 'npo', 'ga']"),
    ("unlearn.modality_study", ["text", "text"], "unlearn.modality_study = ['text', 'text']"),
    ("unlearn.epochs", "five", "unlearn.epochs = 'five': a number > 0"),
    ("unlearn.options", {"npo": {"beta": "high"}}, "unlearn.options.npo.beta = 'high': a number"),
    ("unlearn.options", {"npo": {"beta": 0}}, "unlearn.options.npo.beta = 0: a number > 0"),
    ("unlearn.options", {"gd": {"retain_weight": -1}}, "unlearn.options.gd.retain_weight = -1"),
    ("unlearn.options", {"npo": {"bta": 0.5}}, "unlearn.options.npo: method 'npo' has no"),
    ("unlearn.options", {"npo": 3}, "unlearn.options.npo = 3: a mapping"),
    ("unlearn.options", {"npx": {}}, "unlearn.options.npx = {}: unknown method"),
    ("unlearn.variants.lora.lora", "maybe", "unlearn.variants.lora.lora = 'maybe': true or"),
    ("unlearn.variants.lora.lora_rank", "eight", "unlearn.variants.lora.lora_rank = 'eight'"),
    ("unlearn.variants.lora.lr", -2e-3, "unlearn.variants.lora.lr = -0.002: a number > 0"),
    ("unlearn.variants.lora.epochs", 0, "unlearn.variants.lora.epochs = 0: a number > 0"),
    ("unlearn.variants.l1-lora.l1", -1, "unlearn.variants.l1-lora.l1 = -1: a number ≥ 0"),
    ("unlearn.variants.lora.batch_size", 0, "unlearn.variants.lora.batch_size = 0"),
    ("unlearn.methods", [], "unlearn.methods = []: a list of distinct names"),
    ("unlearn.variants", {}, "unlearn.variants = {}: at least one variant"),
    ("jobs", 0, "jobs = 0: an integer > 0"),
    ("learning_rate", 1e-3, "learning_rate = 0.001: unknown key; known: audit, base, cv"),
    ("seeds", "three", "seeds = 'three': an integer > 0"),
    ("seeds", 1.5, "seeds = 1.5: an integer > 0"),
    ("dtype", "float8", "dtype = 'float8': one of auto"),
    ("eval.batch_size", 0, "eval.batch_size = 0: an integer > 0"),
    ("eval.limit", -3, "eval.limit = -3: an integer > 0"),
    ("cv", {"shadows": 0}, "cv.shadows = 0: an integer > 0"),
    ("cv", {"unlearn_lr": "fast"}, "cv.unlearn_lr = 'fast': a number > 0"),
    ("cv", {"method_options": {"dpo": {"beta": "x"}}}, "cv: CV method 'dpo': beta = 'x'"),
    ("base.epochs", 0, "base.epochs = 0: a number > 0"),
    ("base.arch", "gpt", "base.arch = 'gpt': one of llava, qwen2_vl"),
    ("base.model.text_hidden", -4, "base.model.text_hidden = -4: an integer > 0"),
    ("data.synth.persons", 0, "data.synth.persons = 0: an integer > 0"),
    ("data.synth.images_per_person", "ten", "data.synth.images_per_person = 'ten'"),
    ("device", "tpu", "device tpu: expected cpu, cuda, cuda:N or mps"),
]


@pytest.mark.parametrize(("key", "value", "line"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_a_bad_setting_is_refused_at_load_and_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    key: str, value: Any, line: str,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write(tmp_path, **{key: value})
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    assert any(text.startswith(f"run config {path}: {line}")
               for text in str(info.value).splitlines())
    out = tmp_path / "run"
    started = time.perf_counter()
    assert main(["run", "--config", str(path), "--out", str(out)]) == 2
    assert time.perf_counter() - started < 30
    assert line in capsys.readouterr().err
    assert not out.exists()  # no stage folder


def test_every_problem_of_a_config_is_one_line_of_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, **{"finetune.epochs": "five", "jobs": 0, "finetune.lora": "x",
                              "unlearn.methods": ["ga", "ga"], "base.model.text_hidden": -4})
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) == 5
    assert all(text.startswith(f"run config {path}: ") for text in lines)


@pytest.mark.parametrize(("device", "gpus", "line"), [
    ("cuda", 0, "device cuda: this torch"),
    ("cuda:0", 0, "device cuda:0: this torch"),
    ("cuda:1", 1, "device cuda:1: this machine has 1 GPU"),
])
def test_a_missing_gpu_is_refused_by_run_but_not_by_a_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    device: str, gpus: int, line: str,
) -> None:
    """A dry run plans for the machine the run will go to; the run itself needs the GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    path = write(tmp_path, device=device)
    assert load_run_config(path).device == device
    out = tmp_path / "run"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 2
    assert line in capsys.readouterr().err
    assert not out.exists()
    assert main(["run", "--config", str(path), "--out", str(out), "--dry-run"]) == 0


@pytest.mark.parametrize("command", [["finetune"], ["eval"], ["unlearn", "--method", "ga"]])
def test_the_stage_commands_refuse_a_missing_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main([*command, "--model", "m", "--data", "d", "--out", str(out),
                 "--device", "cuda"]) == 2
    assert f"--device cuda: this torch ({torch.__version__})" in capsys.readouterr().err
    assert not out.exists()


def test_a_config_that_is_no_yaml_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    repeated = tmp_path / "repeated.yaml"
    repeated.write_text("seed: 0\nunlearn:\n  methods: [ga]\n  methods: [npo]\n")
    cases = [(folder, "is a folder"), (listed, "must be a mapping of settings, got a list"),
             (repeated, "key 'methods' appears twice")]
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.yaml"
        locked.write_text("seed: 0\n")
        locked.chmod(0)
        cases.append((locked, "cannot be read: Permission denied"))
    for path, why in cases:
        with pytest.raises(ValueError, match=why) as info:
            load_run_config(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert main(["run", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
        assert why in capsys.readouterr().err


def stage_config(the_plan: Any, kind: str) -> Any:
    return next(stage.args[0] for stage in the_plan.stages if stage.kind == kind)


def test_yaml_1_1_exponents_without_a_dot_are_numbers(tmp_path: Path) -> None:
    assert yaml.safe_load("lr: 2e-3") == {"lr": "2e-3"}  # the premise: YAML 1.1 reads a string
    path = write(tmp_path, **{"unlearn.variants.lora.lr": "2e-3", "finetune.lr": "2e-3"})
    assert "lr: 2e-3\n" in path.read_text()
    the_plan = plan(load_run_config(path), tmp_path / "run")
    unlearning = stage_config(the_plan, "unlearn")
    assert isinstance(unlearning, UnlearnConfig)
    assert type(unlearning.lr) is float and unlearning.lr == 0.002
    finetuning = stage_config(the_plan, "finetune")
    assert isinstance(finetuning, FinetuneConfig)
    assert type(finetuning.lr) is float and finetuning.lr == 0.002


def test_quoted_booleans_and_numbers_are_coerced(tmp_path: Path) -> None:
    path = write(tmp_path, **{"unlearn.variants.lora.lora": "false", "seeds": "3",
                              "finetune.lora": "true"})
    config = load_run_config(path)
    assert config.seeds == 3 and config.finetune["lora"] is True
    assert unlearn_settings(config, "lora")["lora"] is False
    the_plan = plan(config, tmp_path / "run")
    assert {row.lora for row in the_plan.rows if row.variant == "lora"} == {False}
    assert all(not stage.args[0].lora for stage in the_plan.stages
               if stage.kind == "unlearn" and "(lora," in stage.name)


@pytest.mark.parametrize("path", [*(embedded_config(name) for name in PRESETS),
                                  *sorted(PAPER.glob("*.yaml"))], ids=lambda p: p.name)
def test_the_shipped_configs_load(path: Path) -> None:
    config = load_run_config(path)
    assert config.variants and config.forget_splits and config.methods


def test_the_formatter_names_key_value_and_what_is_allowed() -> None:
    error = ValidationError.from_exception_data("FinetuneConfig", [
        {"type": "greater_than", "loc": ("lr",), "input": -1, "ctx": {"gt": 0}},
        {"type": "float_parsing", "loc": ("epochs",), "input": "five"},
        {"type": "bool_parsing", "loc": ("lora",), "input": "maybe"},
        {"type": "value_error", "loc": ("recipe",), "input": "huge",
         "ctx": {"error": ValueError("one of auto, paper, mini")}},
        {"type": "unexpected_keyword_argument", "loc": ("learning_rate",), "input": 1},
        {"type": "missing_argument", "loc": ("model",), "input": {}},
        {"type": "int_parsing", "loc": ("extra", 0), "input": "x"},
    ])
    found = problems(error, FinetuneConfig)
    assert [str(problem) for problem in found[:4]] == [
        "lr = -1: a number > 0 or null",
        "epochs = 'five': a number > 0 or null",
        "lora = 'maybe': true or false or null",
        "recipe = 'huge': one of auto, paper, mini",
    ]
    assert str(found[4]).startswith("learning_rate = 1: unknown key; known: model, data, out")
    assert str(found[5]) == "model: required: a string"
    assert str(found[6]) == "extra.0 = 'x': a valid integer, unable to parse string as an integer"
    assert str(found[0].under("finetune")) == "finetune.lr = -1: a number > 0 or null"
    assert str(ConfigError("run config x.yaml", [Problem("jobs", "an integer > 0", 0)])) == (
        "run config x.yaml: jobs = 0: an integer > 0")
