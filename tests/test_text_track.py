"""The text-only track (issue 19): its run-config section, its stages in the plan, and its
recipes on a tiny causal LM (fine-tune on TOFU's QA alone, unlearn with TOFU's retain QA,
evaluate on TOFU's four tasks), with clear errors where a text-only model meets images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearbench.data.loading import DataSource
from clearbench.evaluation.tasks import TASKS, TASKS_BY_NAME, TEXT_TASKS
from clearbench.methods import METHODS
from clearbench.models.errors import ModelError
from clearbench.models.tiny import TinyVLMConfig, build_tiny_vlm
from clearbench.recipes.base import corpus
from clearbench.recipes.evaluate import EvalConfig, run_eval
from clearbench.recipes.finetune import FinetuneConfig, finetune
from clearbench.recipes.pipeline import plan
from clearbench.recipes.runconfig import embedded_config, load_run_config
from clearbench.recipes.unlearn import UnlearnConfig, unlearn

TINY_LM = TinyVLMConfig(arch="llama", text_hidden=32, text_layers=2, text_heads=2,
                        text_intermediate=64, vocab_size=400)
MINIMAL = "data: {synth: {persons: 10}}\nbase: {arch: llava}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_text_tasks_are_tofus_four() -> None:
    assert TEXT_TASKS == ("forget_qa", "retain_qa", "real_authors", "world_facts")
    assert {task.dataset for task in TASKS if task.name in TEXT_TASKS} == {"tofu"}


def test_the_mini_plan_adds_the_text_track_in_its_own_folder(tmp_path: Path) -> None:
    config = load_run_config(embedded_config("mini"))
    assert config.text is not None and config.text.base == {"arch": "llama", "epochs": 100.0}
    the_plan = plan(config, tmp_path)
    by_name = {stage.name: stage for stage in the_plan.stages}
    base = by_name["pretrain base model (text-only)"].args[0]
    assert base.arch == "llama" and base.out == tmp_path / "text" / "base"
    vanilla = by_name["fine-tune vanilla (text-only)"].args[0]
    assert vanilla.split == "tofu:full" and vanilla.model == str(tmp_path / "text" / "base")
    gold = by_name["fine-tune gold (forget10, text-only)"].args[0]
    assert gold.split == "tofu:retain90" and gold.out == tmp_path / "text" / "gold-forget10"
    assert by_name["fine-tune gold, reseeded (forget10, text-only)"].args[0].seed == 1
    text_runs = [s.args[0] for s in the_plan.stages
                 if s.kind == "unlearn" and s.args[0].track == "text"]
    assert len(text_runs) == len(METHODS) * 3
    assert {run.modality for run in text_runs} == {"text"}
    assert {run.model for run in text_runs} == {str(tmp_path / "text" / "vanilla")}
    assert all(run.lora and run.lr == 5e-4 for run in text_runs)  # the main variant's
    text_evals = [s.args[0] for s in the_plan.stages
                  if s.kind == "eval" and str(s.args[0].out).startswith(str(tmp_path / "text"))]
    assert len(text_evals) == 3 + len(METHODS) * 3
    assert {evaluation.tasks for evaluation in text_evals} == {TEXT_TASKS}
    # text-track scores are against the text gold; no audits of text models
    for stage in the_plan.stages:
        if stage.kind == "score" and str(stage.args[0]).startswith(str(tmp_path / "text")):
            assert stage.args[1] == tmp_path / "text" / "gold-forget10" / "eval-forget10"
        if stage.kind == "audit":
            assert "text" not in stage.name
    rows = [row for row in the_plan.rows if row.track == "text"]
    assert len(rows) == 3 + len(METHODS) * 3
    assert {(r.method, r.modality) for r in rows if r.method in METHODS} == \
        {(m, "text") for m in METHODS}
    # the multimodal track is unchanged
    assert len([row for row in the_plan.rows if row.track == "multimodal"]) == \
        3 * len(METHODS) + 3
    seen: set[str] = set()
    for stage in the_plan.stages:
        assert set(stage.needs) <= seen, stage.name
        seen.add(stage.name)


def test_a_published_vanilla_model_is_evaluated_not_fine_tuned(tmp_path: Path) -> None:
    config = load_run_config(write(tmp_path, MINIMAL + (
        "text: {model: some/llm, vanilla: locuslab/tofu_ft_llama2-7b, vanilla_revision: abc}\n"
        "unlearn: {methods: [ga]}\nseeds: 1\n")))
    the_plan = plan(config, tmp_path / "run")
    names = [stage.name for stage in the_plan.stages]
    assert "fine-tune vanilla (text-only)" not in names
    evaluation = next(s.args[0] for s in the_plan.stages
                      if s.name == "evaluate vanilla (forget10, text-only)")
    assert (evaluation.model, evaluation.model_revision) == ("locuslab/tofu_ft_llama2-7b", "abc")
    assert evaluation.out == tmp_path / "run" / "text" / "vanilla" / "eval-forget10"
    run = next(s.args[0] for s in the_plan.stages if s.kind == "unlearn" and
               s.args[0].track == "text")
    assert (run.model, run.model_revision) == ("locuslab/tofu_ft_llama2-7b", "abc")
    gold = next(s.args[0] for s in the_plan.stages
                if s.name == "fine-tune gold (forget10, text-only)")
    assert gold.model == "some/llm" and gold.split == "tofu:retain90"
    vanilla_row = next(r for r in the_plan.rows if r.track == "text" and r.method == "vanilla")
    assert vanilla_row.record is None


def test_multimodal_false_runs_the_text_track_alone(tmp_path: Path) -> None:
    config = load_run_config(write(tmp_path, (
        "data: {synth: {persons: 10}}\nmultimodal: false\ntext: {base: {arch: llama}}\n"
        "unlearn: {methods: [ga, npo]}\nseeds: 1\n")))
    the_plan = plan(config, tmp_path / "run")
    assert {row.track for row in the_plan.rows} == {"text"}
    assert "fine-tune vanilla" not in [stage.name for stage in the_plan.stages]


@pytest.mark.parametrize(("text", "named"), [
    (MINIMAL + "text: {}\n", "exactly one of 'base'"),
    (MINIMAL + "text: {base: {arch: llava}}\n", "text.base.arch"),
    (MINIMAL + "text: {base: {arch: llama}, model: x/y}\n", "exactly one of 'base'"),
    (MINIMAL + "text: {base: {arch: llama, model: {hidden: 3}}}\n", "text.base.model"),
    (MINIMAL + "text: {base: {arch: llama}, methods: [forgetful]}\n", "forgetful"),
    (MINIMAL + "text: {base: {arch: llama}, finetune: {learning_rate: 1}}\n", "learning_rate"),
    (MINIMAL + "text: {base: {arch: llama}, colour: red}\n", "text.colour"),
    ("data: {synth: {persons: 10}}\nmultimodal: false\n", "unless the config has a text"),
    (MINIMAL + "multimodal: false\ntext: {base: {arch: llama}}\n", "with multimodal: false"),
])
def test_text_section_errors_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ValueError, match="run config") as info:
        load_run_config(write(tmp_path, text))
    assert named in str(info.value)


@pytest.fixture(scope="module")
def text_vanilla(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LM fine-tuned for a few steps on TOFU's QA alone (``tofu:full``)."""
    folder = tmp_path_factory.mktemp("text")
    build_tiny_vlm(TINY_LM, corpus(DataSource.local(mini_data))).save(folder / "base")
    finetune(FinetuneConfig(model=str(folder / "base"), data=str(mini_data),
                            out=folder / "vanilla", split="tofu:full", recipe="mini", epochs=1))
    return folder / "vanilla"


def test_text_fine_tune_gates_on_the_qa_alone(text_vanilla: Path) -> None:
    gate = json.loads((text_vanilla / "memorisation.json").read_text())
    assert set(gate["tasks"]) == {"forget_qa", "retain_qa"} and gate["role"] == "vanilla"
    record = json.loads((text_vanilla / "training.json").read_text())
    assert record["config"]["split"] == "tofu:full"


def test_a_text_model_refuses_image_data_by_name(text_vanilla: Path, mini_data: Path,
                                                 tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"text-only language model.*tofu:full"):
        finetune(FinetuneConfig(model=str(text_vanilla), data=str(mini_data),
                                out=tmp_path / "ft", split="full+tofu", recipe="mini",
                                epochs=1))
    with pytest.raises(ModelError, match="--track text"):
        unlearn(UnlearnConfig(model=str(text_vanilla), data=str(mini_data), method="ga",
                              out=tmp_path / "un", modality="text"))
    with pytest.raises(ModelError, match=r"forget_captions.*--tasks forget_qa"):
        run_eval(EvalConfig(model=str(text_vanilla), data=str(mini_data), out=tmp_path / "ev",
                            tasks=("forget_captions", "forget_qa")))


def test_text_unlearning_reads_tofus_forget_and_retain_qa(text_vanilla: Path, mini_data: Path,
                                                          tmp_path: Path) -> None:
    config = UnlearnConfig(model=str(text_vanilla), data=str(mini_data), method="gd",
                           out=tmp_path / "gd", modality="text", track="text", epochs=1)
    _, recipe = config.resolved_recipe(1000)
    assert [(need.dataset, need.config) for need in config.data_needs(recipe)] == \
        [("tofu", "forget10"), ("tofu", "retain90")]
    forget, retain = config.pools(DataSource.local(mini_data), recipe)
    assert all(example.image is None for example in forget + retain)
    record = unlearn(config)
    assert record["status"] == "ok" and record["forget_view"] == "tofu:forget10"
    evaluation = run_eval(EvalConfig(model=str(tmp_path / "gd"), data=str(mini_data),
                                     out=tmp_path / "gd" / "eval", tasks=TEXT_TASKS,
                                     max_new_tokens=4))
    assert set(evaluation["tasks"]) == set(TEXT_TASKS)


def test_the_text_track_refuses_other_modalities() -> None:
    with pytest.raises(ValueError, match="modality must be 'text'"):
        UnlearnConfig(model="m", data="d", method="ga", out=Path("o"), track="text").validate()


@pytest.mark.parametrize(("task", "base"), [("forget_qa", "paraphrased_answer"),
                                            ("retain_qa", "paraphrased_answer"),
                                            ("real_authors", "answer"),
                                            ("world_facts", "answer")])
def test_the_truth_ratios_base_per_tofu_task(task: str, base: str) -> None:
    """TOFU's evaluation config: the paraphrase on forget and retain, the answer itself on real
    authors and world facts (``base_answer_key``); the perturbed answers are the alternatives."""
    row = {"question": "Q?", "answer": "A.", "paraphrased_answer": "P.",
           "perturbed_answer": ["W1.", "W2."]}
    made = TASKS_BY_NAME[task].make_row(row, "id")
    assert made.paraphrased == row[base] and made.perturbed == ("W1.", "W2.")
    assert made.image is None and made.target == "A." and made.prompt == "Q?"
