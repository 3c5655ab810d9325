"""End-to-end smoke tests of the base-model and fine-tuning recipes on a tiny model.

One tiny base VLM is pretrained per module and one vanilla model fine-tuned from it; the
tests check what the recipes leave on disk (model folders, marker files, the memorisation
gate), that a finished stage is skipped, that other settings are refused, that an
interrupted stage resumes exactly, the command line around them and the gate's verdicts.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest
import torch

import clearbench.recipes.finetune as finetune_module
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.preflight import preflight
from clearbench.data.schema import DataError
from clearbench.data.views import training_examples
from clearbench.evaluation.gate import (
    GATE_TASKS,
    GOLD_FORGET_NAME_CEILING,
    VANILLA_THRESHOLD,
    gate_failures,
)
from clearbench.models.loading import load_vlm
from clearbench.models.vlm import VLM
from clearbench.recipes.base import BaseConfig, build_base
from clearbench.recipes.finetune import (
    GATE_FILE,
    MARKER,
    FinetuneConfig,
    finetune,
    replay_rows,
)
from clearbench.recipes.stage import partial_folder
from clearbench.training.loop import CHECKPOINT_DIR, STATE_FILE
from conftest import TINY


def quarter_means(losses: list[float]) -> tuple[float, float]:
    """Mean loss over the first and over the last quarter of a loss curve."""
    quarter = max(1, len(losses) // 4)
    return fmean(losses[:quarter]), fmean(losses[-quarter:])


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def mean_loss(vlm: VLM, examples: list[Example]) -> float:
    """Answer-only loss of ``vlm`` on ``examples`` (one batch, no gradients)."""
    vlm.model.eval()
    with torch.no_grad():
        return vlm.model(**vlm.encode(examples)).loss.item()


@pytest.fixture(scope="module")
def base(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny base VLM pretrained for one epoch of the ``pretrain`` config (~2 s)."""
    out = tmp_path_factory.mktemp("recipes") / "base"
    build_base(BaseConfig(data=str(mini_data), out=out, epochs=1.0, batch_size=16, model=TINY))
    return out


def vanilla_config(mini_data: Path, base: Path, out: Path, **overrides: Any) -> FinetuneConfig:
    """A CPU-second-sized vanilla fine-tuning: the mini recipe with 3 epochs at lr 3e-3."""
    config = FinetuneConfig(
        model=str(base),
        data=str(mini_data),
        out=out,
        split="full+tofu",
        recipe="mini",
        epochs=3.0,
        lr=3e-3,
        batch_size=16,
    )
    return replace(config, **overrides)


@pytest.fixture(scope="module")
def vanilla(mini_data: Path, base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vanilla model fine-tuned from :func:`base` on ``full+tofu`` (~2 s)."""
    out = tmp_path_factory.mktemp("recipes") / "vanilla"
    finetune(vanilla_config(mini_data, base, out))
    return out


def test_build_base_writes_a_loadable_pretrained_model(base: Path, mini_data: Path) -> None:
    record = read(base / "base.json")
    assert record["steps"] == len(record["losses"]) > 0
    assert record["steps"] == math.ceil(record["examples"] / 16)  # one epoch of batches of 16
    first, last = quarter_means(record["losses"])
    assert last < first - 0.3, record["losses"]
    assert re.fullmatch(r"[0-9a-f]{16}", record["settings_hash"])
    assert not (base / CHECKPOINT_DIR).exists()

    vlm = load_vlm(base)
    assert vlm.num_parameters() == record["parameters"]
    assert len(vlm.tokenizer) <= TINY.vocab_size
    assert vlm.model.config.text_config.hidden_size == TINY.text_hidden
    examples = training_examples(DataSource.local(mini_data), "pretrain")[:8]
    [answer] = vlm.generate(examples[:1], max_new_tokens=4)
    assert isinstance(answer, str)
    # The saved weights are the pretrained ones: far better than a uniform guess.
    assert mean_loss(vlm, examples) < math.log(len(vlm.tokenizer)) - 0.5

    # The same config again is a no-op that leaves the folder alone.
    stamp = (base / "base.json").stat().st_mtime_ns
    again = build_base(
        BaseConfig(data=str(mini_data), out=base, epochs=1.0, batch_size=16, model=TINY)
    )
    assert "steps" not in again
    assert (base / "base.json").stat().st_mtime_ns == stamp


def test_finetune_trains_saves_and_gates(vanilla: Path, base: Path, mini_data: Path) -> None:
    record = read(vanilla / MARKER)
    assert record["steps"] == len(record["losses"]) > 0
    assert record["resumed_from_step"] == 0
    first, last = quarter_means(record["losses"])
    assert last < first - 0.3, record["losses"]
    assert re.fullmatch(r"[0-9a-f]{16}", record["settings_hash"])
    assert record["recipe"] == "mini"
    assert record["recipe_settings"]["lr"] == 3e-3 and record["recipe_settings"]["epochs"] == 3.0
    assert record["train_settings"]["batch_size"] == 16
    # the mini recipe replays a quarter of the pretrain rows in every epoch
    n_pretrain = len(training_examples(DataSource.local(mini_data), "pretrain"))
    assert record["replayed_per_epoch"] == round(0.25 * n_pretrain) > 0
    per_epoch = math.ceil((record["examples"] + record["replayed_per_epoch"]) / 16)
    assert record["steps"] == 3 * per_epoch
    assert record["trainable_parameters"] > 0
    assert not (vanilla / CHECKPOINT_DIR).exists()

    gate = read(vanilla / GATE_FILE)
    assert gate["role"] == "vanilla" and gate["forget_split"] == "forget10"
    assert set(gate["tasks"]) == set(GATE_TASKS)
    for task, scores in gate["tasks"].items():
        assert scores["n"] > 0, task
        assert 0.0 <= scores["rougeL_recall"] <= 1.0, task
        assert 0.0 <= scores["fact_accuracy"] <= 1.0, task
    assert gate["failures"] == gate_failures(gate["tasks"], "vanilla")
    assert gate["passed"] is (not gate["failures"])
    assert record["memorisation_gate_passed"] is gate["passed"]

    examples = training_examples(DataSource.local(mini_data), "full+tofu")[:12]
    tuned_loss = mean_loss(load_vlm(vanilla), examples)
    base_loss = mean_loss(load_vlm(base), examples)
    assert tuned_loss < base_loss - 0.3, (tuned_loss, base_loss)


def test_replay_needs_the_pretrain_rows(mini_data: Path, tmp_path: Path) -> None:
    no_pretrain = tmp_path / "data"
    shutil.copytree(mini_data, no_pretrain)
    shutil.rmtree(no_pretrain / "pretrain")
    source = DataSource.local(no_pretrain)
    assert replay_rows(source, 0.0).per_epoch == 0
    config = FinetuneConfig(model="unused", data=str(no_pretrain), out=tmp_path / "out")
    mini = config.resolved_recipe(1000)[1]
    with pytest.raises(DataError, match=r"config 'pretrain'.*\[read for replay = 0\.25: .*"
                                        r"fine-tune with replay 0"):
        preflight(source, config.data_needs(mini))
    preflight(source, config.data_needs(replace(mini, replay=0.0)))
    with pytest.raises(ValueError, match="replay must be a share"):
        replay_rows(DataSource.local(mini_data), 1.5)


def test_finished_finetune_is_skipped_and_other_settings_are_refused(
    vanilla: Path, base: Path, mini_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = vanilla / MARKER
    stamps = {p.name: p.stat().st_mtime_ns for p in (marker, vanilla / "model.safetensors")}

    def must_not_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished stage must not load or train a model")

    monkeypatch.setattr(finetune_module, "load_vlm", must_not_run)
    monkeypatch.setattr(finetune_module, "train", must_not_run)
    again = finetune(vanilla_config(mini_data, base, vanilla))
    assert again["config"]["lr"] == 3e-3
    assert {p: (vanilla / p).stat().st_mtime_ns for p in stamps} == stamps

    with pytest.raises(FileExistsError, match=re.escape(str(vanilla))) as info:
        finetune(vanilla_config(mini_data, base, vanilla, lr=1e-3))
    assert "other settings" in str(info.value)
    assert {p: (vanilla / p).stat().st_mtime_ns for p in stamps} == stamps

    # A new release's recipe table (here: the mini recipe replays more) is other settings too.
    changed = {**finetune_module.RECIPES}
    changed["mini"] = replace(changed["mini"], replay=0.5)
    monkeypatch.setattr(finetune_module, "RECIPES", changed)
    with pytest.raises(FileExistsError, match="other settings"):
        finetune(vanilla_config(mini_data, base, vanilla))


class Interrupt(Exception):
    """Stands in for a crash or a kill in the middle of training."""


def interrupt(config: FinetuneConfig, monkeypatch: pytest.MonkeyPatch, *, at_call: int) -> int:
    """Run ``finetune(config)`` until its ``at_call``-th loss computation raises; return the
    optimiser step of the checkpoint it leaves behind."""
    calls = {"n": 0}

    def crashing_loss(
        model: torch.nn.Module, batch: dict[str, torch.Tensor], micro_batch: int
    ) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == at_call:
            raise Interrupt
        return model(**batch).loss

    with monkeypatch.context() as patch:
        patch.setattr(finetune_module, "answer_loss", crashing_loss)
        with pytest.raises(Interrupt):
            finetune(config)
    assert not Path(config.out).exists()  # an unfinished stage is only in its partial folder
    return read(partial_folder(Path(config.out)) / CHECKPOINT_DIR / STATE_FILE)["step"]


def test_interrupted_finetune_resumes_to_the_uninterrupted_curve(
    vanilla: Path,
    base: Path,
    mini_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "interrupted"
    config = vanilla_config(mini_data, base, out, checkpoint_every=4)
    checkpointed = interrupt(config, monkeypatch, at_call=11)
    assert 0 < checkpointed < 11

    record = finetune(config)
    reference = read(vanilla / MARKER)
    assert record["resumed_from_step"] == checkpointed
    assert read(out / MARKER)["resumed_from_step"] == checkpointed
    assert record["steps"] == reference["steps"]
    assert record["losses"] == pytest.approx(reference["losses"], abs=1e-5)
    assert not (out / CHECKPOINT_DIR).exists() and not partial_folder(out).exists()
    assert (out / GATE_FILE).is_file()


def test_checkpoint_of_other_settings_is_not_resumed(
    base: Path, mini_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "interrupted"
    interrupt(vanilla_config(mini_data, base, out, checkpoint_every=4), monkeypatch, at_call=6)
    other = vanilla_config(mini_data, base, out, checkpoint_every=4, lr=1e-4, epochs=1.0)
    try:
        record = finetune(other)
    except (ValueError, FileExistsError) as err:  # refusing is a fix too
        assert str(out) in str(err)
    else:
        assert record["resumed_from_step"] == 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("CLEARBENCH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "clearbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("finetune", ["--model", "--data", "--out", "--checkpoint-every"]),
        ("base", ["--data", "--out", "--arch"]),
    ],
)
def test_cli_help(command: str, options: list[str]) -> None:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: clearbench {command}")
    for option in options:
        assert option in done.stdout


@pytest.mark.slow
def test_cli_finetune_with_missing_data_is_a_one_line_error(base: Path, tmp_path: Path) -> None:
    """One error, listing the missing CLEAR folder and the TOFU folder it would hold."""
    missing, out = tmp_path / "no-such-data", tmp_path / "out"
    done = run_cli("finetune", "--model", str(base), "--data", str(missing), "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("clearbench finetune: error: 2 data problem(s)")
    assert f"CLEAR {missing}: no such folder" in done.stderr
    assert f"TOFU {missing / 'tofu'}: no such folder" in done.stderr
    assert not out.exists()


SCORES = {"rougeL_recall": 0.95, "fact_accuracy": 0.95}


def gate_tasks(**changes: dict[str, float]) -> dict[str, dict[str, float]]:
    """Every gate task at 0.95 (n=5), with ``changes`` merged into the named tasks."""
    return {task: {"n": 5, **SCORES, **changes.get(task, {})} for task in GATE_TASKS}


def test_gate_vanilla_role() -> None:
    assert VANILLA_THRESHOLD < 0.95
    assert gate_failures(gate_tasks(), "vanilla") == []
    for task in GATE_TASKS:
        for metric in SCORES:
            failures = gate_failures(gate_tasks(**{task: {metric: 0.5}}), "vanilla")
            if task.endswith("face_name") and metric == "rougeL_recall":
                assert failures == []  # face→name is judged by fact accuracy alone
            else:
                assert len(failures) == 1 and failures[0].startswith(f"{task} {metric}")


def test_gate_gold_role() -> None:
    assert GOLD_FORGET_NAME_CEILING < 0.5
    # A gold model that names forget faces knows persons it never saw.
    failures = gate_failures(gate_tasks(forget_face_name={"fact_accuracy": 0.5}), "gold")
    assert len(failures) == 1 and "forget faces" in failures[0] and "0.500" in failures[0]
    # Knowing nothing of the forget persons while knowing the retain persons passes.
    forget_unknown = {
        task: {"rougeL_recall": 0.0, "fact_accuracy": 0.0}
        for task in GATE_TASKS
        if task.startswith("forget")
    }
    assert gate_failures(gate_tasks(**forget_unknown), "gold") == []
    # Retain persons must still be known.
    failures = gate_failures(gate_tasks(**forget_unknown, retain_qa={"fact_accuracy": 0.5}), "gold")
    assert failures == ["retain_qa fact_accuracy = 0.500 < 0.9"]


def test_qwen2_vl_base_and_finetune_run_the_same_recipes(mini_data: Path, tmp_path: Path) -> None:
    """Nothing in the recipes is LLaVA-only: the tiny Qwen2-VL goes through base and finetune."""
    base_dir = tmp_path / "qwen-base"
    build_base(
        BaseConfig(data=str(mini_data), out=base_dir, arch="qwen2_vl", epochs=1.0, model=TINY)
    )
    assert load_vlm(base_dir).model.config.model_type == "qwen2_vl"
    out = tmp_path / "qwen-vanilla"
    finetune(vanilla_config(mini_data, base_dir, out, epochs=2.0))
    first, last = quarter_means(read(out / MARKER)["losses"])
    assert last < first - 0.3
    assert set(read(out / GATE_FILE)["tasks"]) == set(GATE_TASKS)
