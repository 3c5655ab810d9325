"""``clearbench run``: config validation, the plan, dry runs and the stage executor."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from clearbench.cli import main
from clearbench.methods import METHODS
from clearbench.recipes.pipeline import execute, plan
from clearbench.recipes.runconfig import (
    UNLEARN_KEYS,
    VARIANT_KEYS,
    embedded_config,
    load_run_config,
)
from clearbench.recipes.runplan import Stage
from clearbench.recipes.unlearn import UnlearnConfig

PAPER = Path(__file__).parents[1] / "configs" / "paper"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


MINIMAL = "data: {synth: {persons: 10}}\nbase: {arch: llava}\n"


def test_every_settable_unlearning_key_is_an_unlearn_config_field() -> None:
    settable = (UNLEARN_KEYS - {"methods", "variants", "modality_study", "options"}) | VARIANT_KEYS
    assert settable <= {f.name for f in fields(UnlearnConfig)}


@pytest.mark.parametrize("path", [embedded_config("mini"), embedded_config("smoke"),
                                  *sorted(PAPER.glob("*.yaml"))], ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    config = load_run_config(path)
    assert config.variants and config.forget_splits


@pytest.mark.parametrize(("text", "named"), [
    (MINIMAL + "unlearn: {methods: [ga, forgetful]}\n", "forgetful"),
    (MINIMAL + "unlearn: {variants: {lora: {lora: true, rank: 4}}}\n", "unlearn.variants.lora"),
    (MINIMAL + "unlearn: {modality_study: [audio]}\n", "audio"),
    (MINIMAL + "unlearn: {options: {gx: {beta: 1}}}\n", "gx"),
    (MINIMAL + "forget_splits: [forget20]\n", "forget20"),
    (MINIMAL + "finetune: {learning_rate: 1}\n", "learning_rate"),
    ("data: {synth: {persons: 10}}\nbase: {arch: llava, model: {hidden: 3}}\n", "base.model"),
    (MINIMAL + "base: {arch: llava}\n", "key 'base' appears twice"),
    (MINIMAL + "jobs: 0\n", "jobs"),
    ("base: {arch: llava}\n", "exactly one of 'synth'"),
    ("data: {source: therem/CLEAR}\n", "exactly one of 'base'"),
])
def test_config_errors_name_the_file_and_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ValueError, match="run config") as info:
        load_run_config(write(tmp_path, text))
    assert named in str(info.value) and "run.yaml" in str(info.value)


def test_the_default_plan_has_every_method_seed_and_baseline(tmp_path: Path) -> None:
    config = load_run_config(embedded_config("mini"))
    assert config.unlearning_seeds == [0, 1, 2]
    the_plan = plan(config, tmp_path)
    names = [stage.name for stage in the_plan.stages]
    assert names[:4] == ["synthesise CLEAR-mini", "pretrain base model", "fine-tune vanilla",
                         "fine-tune gold (forget10)"]
    assert "fine-tune gold, reseeded (forget10)" in names
    assert names[-1] == "collect results and write the report"
    runs = {(r.method, r.variant, r.modality, r.seed) for r in the_plan.rows}
    for method in METHODS:
        for seed in (0, 1, 2):
            assert (method, "lora", "both", seed) in runs
    # the noise floor: gold fine-tuned with another seed
    assert {("vanilla", None, None, 0), ("gold", None, None, 0),
            ("gold_reseeded", None, None, 1)} <= runs
    multimodal = [row for row in the_plan.rows if row.track == "multimodal"]
    assert len(multimodal) == 3 * len(METHODS) + 3  # (and the text-only track's rows)
    # Every stage needs only stages planned before it (the sequential order is valid).
    seen: set[str] = set()
    for stage in the_plan.stages:
        assert set(stage.needs) <= seen, stage.name
        seen.add(stage.name)
    assert len(seen) == len(names)  # names are unique


def test_the_paper_tables_preset_adds_the_l1_variant_and_the_modality_study(
    tmp_path: Path,
) -> None:
    the_plan = plan(load_run_config(embedded_config("paper-tables")), tmp_path)
    runs = {(r.method, r.variant, r.modality) for r in the_plan.rows}
    for method in METHODS:
        for variant, modality in [("lora", "both"), ("l1-lora", "both"), ("lora", "text"),
                                  ("lora", "visual")]:
            assert (method, variant, modality) in runs
    assert len([r for r in the_plan.rows if r.track == "multimodal"]) == 3 * 4 * len(METHODS) + 3


@pytest.mark.parametrize("path", sorted(PAPER.glob("*.yaml")), ids=lambda p: p.name)
def test_dry_run_of_a_paper_config_works_offline(path: Path, tmp_path: Path, offline_hub: Path,
                                                capsys) -> None:
    """From the huggingface_hub cache (ten persons there), with HF_HUB_OFFLINE set."""
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "run"),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "therem/CLEAR — 10 persons" in out
    if "_text_" in path.name:  # the text-only track alone, on a 7B causal LM
        assert "model (text):" in out and "model (multimodal)" not in out
        assert "fine-tune gold (forget10, text-only)" in out
        assert "unlearn rmu (lora, text-only, forget10)" in out
        assert "fine-tune vanilla (text-only)" in out or "locuslab" in path.read_text()
    else:
        assert "fine-tune vanilla" in out and "unlearn rmu (l1-lora, both, forget10)" in out
    assert not (tmp_path / "run").exists()  # nothing is run or written


def test_dry_run_of_an_unknown_hub_model_says_what_to_do(tmp_path: Path, capsys) -> None:
    config = write(tmp_path, "data: {source: therem/CLEAR}\nmodel: someone/some-vlm\n")
    assert main(["run", "--config", str(config), "--dry-run"]) == 2
    assert "someone/some-vlm" in capsys.readouterr().err


# Stage actions for the executor tests: module-level so that worker processes can import them.
def record_order(log: Path, name: str) -> None:
    with log.open("a") as f:
        f.write(name + "\n")


def meet(folder: Path, name: str, partner: str) -> None:
    """Wait (up to 60 s) until ``partner`` runs too; record whether it did."""
    import time

    (folder / name).touch()
    deadline = time.time() + 60
    while not (folder / partner).exists() and time.time() < deadline:
        time.sleep(0.05)
    (folder / f"{name}.met").write_text(str((folder / partner).exists()))


def fail(message: str) -> None:
    raise ValueError(message)


def diamond(log: Path) -> list[Stage]:
    return [
        Stage("a", "x", record_order, (log, "a")),
        Stage("b", "x", record_order, (log, "b"), ("a",)),
        Stage("c", "x", record_order, (log, "c"), ("a",)),
        Stage("d", "y", record_order, (log, "d"), ("b", "c")),
    ]


@pytest.mark.parametrize("jobs", [1, 2])
def test_executor_respects_dependencies(tmp_path: Path, jobs: int) -> None:
    log = tmp_path / "order.txt"
    seconds = execute(diamond(log), jobs, tmp_path / "logs")
    order = log.read_text().split()
    assert sorted(order) == ["a", "b", "c", "d"]
    assert order[0] == "a" and order[-1] == "d"
    assert set(seconds) == {"a", "b", "c", "d"}


def test_a_failed_stage_in_a_worker_names_the_stage_and_its_log(tmp_path: Path) -> None:
    log = tmp_path / "order.txt"
    stages = [Stage("a", "x", fail, ("bad column 'caption'",)),
              Stage("b", "x", record_order, (log, "b"), ("a",))]
    with pytest.raises(RuntimeError, match="stage 'a' failed: bad column 'caption'") as info:
        execute(stages, 2, tmp_path / "logs")
    log_file = Path(str(info.value).split("(log: ")[1].rstrip(")"))
    assert "bad column" in log_file.read_text()
    assert not log.exists()  # the dependent stage never ran


def test_memory_estimate_by_hand() -> None:
    from clearbench.recipes.estimate import ModelShape, lora_parameters, training_memory

    shape = ModelShape(parameters=1000, vision_parameters=100, hidden=4, layers=2,
                       intermediate=8, vocab=10, image_tokens=4)
    gb = 1024**3
    # LoRA r=2: per layer 4·2·2·4 (q,k,v,o) + 3·2·(4+8) (gate, up, down) = 64 + 72 = 136.
    assert lora_parameters(shape, 2) == 2 * 136
    sequence = 4 + 96
    activations = sequence * (34 * 4 * 2 * 2 / 2 + 8 * 10)  # one batch of one example, bf16
    lora = training_memory(shape, width=2, lora=True, lora_rank=2, train_vision=False,
                           reference_copy=False, batch=1, batches=1)
    assert lora * gb == pytest.approx(1000 * 2 + 272 * 16 + activations)
    # Full parameters in fp32 with a frozen vision tower and a θ₀ copy, two batches of 3.
    full = training_memory(shape, width=4, lora=False, lora_rank=2, train_vision=False,
                           reference_copy=True, batch=3, batches=2)
    activations = 2 * 3 * sequence * (34 * 4 * 2 * 4 / 2 + 8 * 10)
    assert full * gb == pytest.approx(1000 * 4 + 900 * 12 + 1000 * 4 + activations)


def test_data_sizes_of_views() -> None:
    from clearbench.recipes.estimate import DataSizes

    clear = DataSizes(persons=200, images=3768, qa_per_person=20)
    assert clear.view("full+tofu") == (3768, 4000)
    assert clear.view("forget10") == (377, 0)  # 20 persons × 18.84 images
    assert clear.view("tofu:forget10") == (0, 400)
    assert clear.view("retain90+tofu") == (3391, 3600)
    assert clear.view("forget01+tofu") == (38, 40)


def test_the_gpu_guide_table_matches_the_dry_run_estimates() -> None:
    """docs/gpu.md's memory table is what `--dry-run` prints for the paper configs."""
    import re

    from clearbench.recipes.estimate import data_sizes, estimate, model_shape

    docs = (Path(__file__).parents[1] / "docs" / "gpu.md").read_text()
    stages = {"fine-tune vanilla / gold": "fine-tune vanilla",
              "unlearn, one batch": "unlearn ga (lora, both, forget10)",
              "unlearn, two batches": "unlearn npo (lora, both, forget10)",
              "unlearn, three batches": "unlearn dpo (lora, both, forget10)",
              "evaluate (batch 16)": "evaluate vanilla (forget10)"}
    for column, config in enumerate(["llava-1.5-7b", "qwen2-vl-2b"]):
        the_plan = plan(load_run_config(PAPER / f"{config}_forget10.yaml"), Path("unused"))
        shape, sizes = model_shape(the_plan), data_sizes(the_plan)
        by_name = {stage.name: stage for stage in the_plan.stages}
        for label, name in stages.items():
            row = next(line for line in docs.splitlines() if line.startswith(f"| {label}"))
            documented = float(re.findall(r"\| ([\d.]+) ", row + " ")[column])
            _, _, memory = estimate(by_name[name], shape, sizes)
            assert documented == pytest.approx(float(memory), abs=0.051), (config, label)


def test_gradient_checkpointing_lowers_the_estimate() -> None:
    from clearbench.recipes.estimate import KNOWN_MODELS, training_memory

    shape = KNOWN_MODELS["llava-hf/llava-1.5-7b-hf"]
    settings = {"width": 2, "lora": True, "lora_rank": 8, "train_vision": False,
                "reference_copy": False, "batch": 4, "batches": 2}
    plain = training_memory(shape, **settings)
    checkpointed = training_memory(shape, **settings, checkpointing=True)
    assert 14 < checkpointed < plain / 2  # weights (14 GB) stay, most activations go


@pytest.mark.parametrize("name", ["ddp", "deepspeed-zero2", "deepspeed-zero3"])
def test_accelerate_configs_load(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(PAPER.parent / "accelerate" / f"{name}.yaml"))
    assert config.mixed_precision == "bf16" and config.num_processes > 1
    if name.startswith("deepspeed"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


def record_threads(folder: Path, name: str, partner: str | None) -> None:
    import torch

    if partner:
        meet(folder, name, partner)
    (folder / f"{name}.threads").write_text(str(torch.get_num_threads()))


def test_ready_stages_run_side_by_side_sharing_the_cores(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    stages = [Stage("base", "base", record_threads, (tmp_path, "base", "cv")),
              Stage("cv", "cv", record_threads, (tmp_path, "cv", "base")),
              Stage("vanilla", "finetune", record_threads, (tmp_path, "vanilla", "gold"),
                    ("base",)),
              Stage("gold", "finetune", record_threads, (tmp_path, "gold", "vanilla"),
                    ("base",)),
              Stage("last", "report-like", record_threads, (tmp_path, "last", None),
                    ("vanilla", "gold", "cv"))]
    execute(stages, 2, tmp_path / "logs")
    for name in ("base", "cv", "vanilla", "gold"):
        assert (tmp_path / f"{name}.met").read_text() == "True", name
        assert (tmp_path / f"{name}.threads").read_text() == "1", name
    assert (tmp_path / "last.threads").read_text() == "2"  # alone: every core


def test_eta_waits_for_one_stage_of_each_kind(capsys) -> None:
    from clearbench.recipes.pipeline import Progress

    stages = [Stage(name, kind, record_order, ()) for name, kind in
              [("t", "finetune"), ("u1", "unlearn"), ("u2", "unlearn"), ("u3", "unlearn")]]
    progress = Progress(stages, jobs=2)
    progress.done(stages[0], 600.0)
    assert progress.eta() == "after the first unlearn stage"
    progress.done(stages[1], 10.0)
    assert progress.eta() == "~0m10s"  # two unlearning stages of 10 s, two at a time
