"""Evaluation with a real (tiny) model: shared-prefix scoring against the naive reference,
image conditioning, batch-size invariance, determinism, resume and the command line."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from clearbench.cli import main
from clearbench.config import ConfigError
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.preflight import Need
from clearbench.data.views import training_examples
from clearbench.evaluation.reference import NaiveVLM
from clearbench.evaluation.tasks import TASKS, TASKS_BY_NAME, TaskRow
from clearbench.models.loading import load_vlm
from clearbench.models.tiny import build_tiny_vlm
from clearbench.models.vlm import VLM
from clearbench.recipes.base import corpus
from clearbench.recipes.evaluate import EVAL_FILE, TASKS_DIR, EvalConfig, check_gold, run_eval
from clearbench.recipes.finetune import FinetuneConfig
from conftest import TINY

ROW_NUMBERS = ("rougeL_recall", "loss_target", "loss_paraphrased", "prob", "truth_ratio_raw")


def briefly_trained(vlm: VLM, source: DataSource, steps: int = 30) -> VLM:
    """A few optimiser steps on full+tofu, so that answers and likelihoods are not uniform."""
    examples = training_examples(source, "full+tofu")
    optimizer = torch.optim.AdamW(vlm.model.parameters(), lr=3e-3)
    vlm.model.train()
    for step in range(steps):
        batch = vlm.encode([examples[(step * 16 + i) % len(examples)] for i in range(16)])
        vlm.model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    vlm.model.eval()
    return vlm


@pytest.fixture(scope="module", params=["llava", "qwen2_vl"])
def tiny_vlm(request, mini_data: Path) -> VLM:
    source = DataSource.local(mini_data)
    config = replace(TINY, arch=request.param)
    return briefly_trained(build_tiny_vlm(config, corpus(source)), source)


@pytest.fixture(scope="module")
def model_dir(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained tiny LLaVA saved like any hub model."""
    source = DataSource.local(mini_data)
    out = tmp_path_factory.mktemp("eval") / "model"
    briefly_trained(build_tiny_vlm(TINY, corpus(source)), source).save(out)
    return out


def mixed_rows(source: DataSource) -> list[TaskRow]:
    """Rows with and without images, prompts of different lengths, 2 to 4 candidates."""
    pick = {"forget_captions": 2, "retain_face_name": 2, "real_world": 2, "forget_qa": 2}
    return [row for name, n in pick.items()
            for row in TASKS_BY_NAME[name].rows(source, "forget10")[:n]]


def candidates(row: TaskRow) -> list[str]:
    return list(dict.fromkeys([row.target, row.paraphrased, *row.perturbed]))


def test_shared_prefix_scoring_equals_one_full_forward_per_candidate(
    tiny_vlm: VLM, mini_data: Path
) -> None:
    rows = mixed_rows(DataSource.local(mini_data))
    examples = [Example(r.prompt, "", r.image, r.id) for r in rows]
    answers = [candidates(r) for r in rows]
    assert {len(a) for a in answers} >= {4, 5}  # rows need different numbers of passes
    naive = NaiveVLM(tiny_vlm).answer_nlls(examples, answers)
    alone = tiny_vlm.generate(examples, max_new_tokens=8, batch_size=1)
    for batch_size in (1, 3, 16):
        fast = tiny_vlm.answer_nlls(examples, answers, batch_size=batch_size)
        generated, shared = tiny_vlm.generate_and_score(
            examples, answers, max_new_tokens=8, batch_size=batch_size
        )
        assert generated == alone
        assert [nll for row in shared for nll, _ in row] == pytest.approx(
            [nll for row in fast for nll, _ in row], abs=1e-5
        )
        for fast_row, naive_row in zip(fast, naive, strict=True):
            assert [n for _, n in fast_row] == [n for _, n in naive_row]
            assert [nll for nll, _ in fast_row] == pytest.approx(
                [nll for nll, _ in naive_row], abs=1e-5
            )


def test_scores_and_answers_depend_on_the_image(tiny_vlm: VLM, mini_data: Path) -> None:
    rows = TASKS_BY_NAME["forget_captions"].rows(DataSource.local(mini_data), "forget10")[:3]
    with_image = [Example(r.prompt, "", r.image, r.id) for r in rows]
    blind = [Example(r.prompt, "", None, r.id) for r in rows]
    answers = [[r.target] for r in rows]
    seen = tiny_vlm.answer_nlls(with_image, answers)
    unseen = tiny_vlm.answer_nlls(blind, answers)
    # A briefly trained model leans on the image only a little (measured: 5e-4 to 1e-2 per
    # token), but a score that ignored the image would equal the blind one exactly.
    assert all(abs(a[0][0] - b[0][0]) > 1e-5 for a, b in zip(seen, unseen, strict=True))


def evaluate(model_dir: Path, mini_data: Path, out: Path, **overrides: Any) -> dict[str, Any]:
    config = EvalConfig(model=str(model_dir), data=str(mini_data), out=out,
                        max_new_tokens=12, **overrides)
    return run_eval(config)


@pytest.fixture(scope="module")
def evaluation(model_dir: Path, mini_data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "b16"
    evaluate(model_dir, mini_data, out, batch_size=16)
    return out


def test_eval_json_has_every_task_and_row(evaluation: Path, mini_data: Path) -> None:
    payload = json.loads((evaluation / EVAL_FILE).read_text())
    assert list(payload["tasks"]) == [t.name for t in TASKS]
    assert payload["forget_split"] == "forget10"
    assert payload["settings"] == {"batch_size": 16, "max_new_tokens": 12, "seed": 0,
                                   "limit": None}
    assert payload["data"]["fingerprint"] == DataSource.local(mini_data).fingerprint()
    source = DataSource.local(mini_data)
    for task in TASKS:
        result = payload["tasks"][task.name]
        assert result["n"] == len(task.load(source, "forget10")) == len(result["rows"])
        for key in ("rougeL_recall", "probability", "truth_ratio", "fact_accuracy",
                    "truth_knowledge"):
            assert 0.0 <= result[key] <= 1.0
        row = result["rows"][0]
        assert set(row) == {"id", "unit", "generated", "rougeL_recall", "fact_hit",
                            "loss_target", "loss_paraphrased", "loss_perturbed", "len_target",
                            "prob", "truth_ratio_raw"}
        # the sampling unit: a person, a celebrity, or the row itself
        units = {r["unit"] for r in result["rows"]}
        if task.kind in ("forget", "retain"):
            assert units <= set(json.loads((mini_data / "datacard.json").read_text())
                                ["persons"]["fictitious"])
        elif task.name == "real_faces":
            assert len(units) < result["n"]
        expected = len(task.make_row(task.load(source, "forget10")[0], "").perturbed)
        assert len(row["loss_perturbed"]) == expected


def test_eval_rows_are_the_models_image_conditioned_answers_and_scores(
    evaluation: Path, model_dir: Path, mini_data: Path
) -> None:
    payload = json.loads((evaluation / EVAL_FILE).read_text())
    vlm = load_vlm(model_dir)
    rows = TASKS_BY_NAME["forget_face_name"].rows(DataSource.local(mini_data), "forget10")
    examples = [Example(r.prompt, "", r.image, r.id) for r in rows]
    recorded = payload["tasks"]["forget_face_name"]["rows"]
    assert [r["generated"] for r in recorded] == vlm.generate(examples, max_new_tokens=12)
    naive = NaiveVLM(vlm).answer_nlls(examples, [[r.target, *r.perturbed] for r in rows])
    for record, row_nlls in zip(recorded, naive, strict=True):
        assert record["loss_target"] == pytest.approx(row_nlls[0][0], abs=1e-5)
        assert record["len_target"] == row_nlls[0][1]
        assert record["loss_perturbed"] == pytest.approx([n for n, _ in row_nlls[1:]], abs=1e-5)


def test_eval_is_batch_size_invariant_and_deterministic(
    evaluation: Path, model_dir: Path, mini_data: Path, tmp_path: Path
) -> None:
    reference = json.loads((evaluation / EVAL_FILE).read_text())
    again = evaluate(model_dir, mini_data, tmp_path / "again", batch_size=16)
    assert again["tasks"] == reference["tasks"]  # bit-identical across runs
    one = evaluate(model_dir, mini_data, tmp_path / "b1", batch_size=1)
    for name, task in reference["tasks"].items():
        for a, b in zip(task["rows"], one["tasks"][name]["rows"], strict=True):
            assert a["generated"] == b["generated"], (name, a["id"])
            for key in ROW_NUMBERS:
                assert a[key] == pytest.approx(b[key], abs=1e-4), (name, a["id"], key)
            assert a["loss_perturbed"] == pytest.approx(b["loss_perturbed"], abs=1e-4)


def test_eval_resumes_finished_tasks_and_skips_a_finished_run(
    model_dir: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "resume"
    first = ("forget_qa", "real_faces")
    evaluate(model_dir, mini_data, out, tasks=first)
    stamps = {name: (out / TASKS_DIR / f"{name}.json").stat().st_mtime_ns for name in first}
    (out / EVAL_FILE).unlink()  # as if interrupted after these two tasks
    full = evaluate(model_dir, mini_data, out, tasks=("forget_qa", "real_faces", "retain_qa"))
    assert list(full["tasks"]) == ["forget_qa", "real_faces", "retain_qa"]
    for name, stamp in stamps.items():  # reused, not recomputed
        assert (out / TASKS_DIR / f"{name}.json").stat().st_mtime_ns == stamp
    done = (out / EVAL_FILE).stat().st_mtime_ns
    capsys.readouterr()
    evaluate(model_dir, mini_data, out, tasks=("forget_qa", "real_faces", "retain_qa"))
    assert "already done" in capsys.readouterr().out
    assert (out / EVAL_FILE).stat().st_mtime_ns == done


def test_limit_scores_only_the_first_rows(model_dir: Path, mini_data: Path, tmp_path: Path):
    payload = evaluate(model_dir, mini_data, tmp_path, tasks=("world_facts",), limit=3)
    assert [r["id"] for r in payload["tasks"]["world_facts"]["rows"]] == [
        f"tofu/world_facts_perturbed/{i}" for i in range(3)
    ]


def test_score_cli_gold_against_itself(evaluation: Path, tmp_path: Path) -> None:
    """A model no clearbench fine-tune made is taken as gold only when the user says so."""
    assert main(["score", "--eval", str(evaluation), "--gold", str(evaluation / EVAL_FILE),
                 "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "scores.json").exists()
    assert main(["score", "--eval", str(evaluation), "--gold", str(evaluation / EVAL_FILE),
                 "--out", str(tmp_path), "--unverified-gold"]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["forget_quality"] == 1.0
    assert all(p == 1.0 for p in scores["forget_quality_by_task"].values())
    assert scores["authors_forget_quality"] == pytest.approx(1.0)
    tasks = json.loads((evaluation / EVAL_FILE).read_text())["tasks"]
    utility = [tasks[t.name][m] for t in TASKS if t.kind != "forget"
               for m in ("probability", "rougeL_recall", "truth_ratio")]
    assert scores["model_utility"] == pytest.approx(statistics.harmonic_mean(utility))


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def test_score_cli_refuses_corrupted_and_mismatched_evals(
    evaluation: Path, tmp_path: Path, capsys
) -> None:
    broken = tmp_path / "broken" / EVAL_FILE
    broken.parent.mkdir()
    broken.write_text('{"model": "m", "tasks": {')
    code, err = run_cli(["score", "--eval", str(broken), "--gold", str(evaluation),
                         "--out", str(tmp_path)], capsys)
    assert code == 2 and str(broken) in err and "not valid JSON" in err

    other = json.loads((evaluation / EVAL_FILE).read_text()) | {"forget_split": "forget05"}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / EVAL_FILE).write_text(json.dumps(other))
    code, err = run_cli(["score", "--eval", str(tmp_path / "other"), "--gold", str(evaluation),
                         "--out", str(tmp_path), "--unverified-gold"], capsys)
    assert code == 2 and "forget split 'forget05' vs gold 'forget10'" in err
    assert not (tmp_path / "scores.json").exists()


def test_eval_cli_rejects_bad_input_before_loading_a_model(
    model_dir: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    code, err = run_cli(["eval", "--model", str(model_dir), "--data", str(mini_data),
                         "--out", str(tmp_path), "--tasks", "forget_qa", "faces"], capsys)
    assert code == 2 and "tasks.1 = 'faces': one of forget_captions" in err
    code, err = run_cli(["eval", "--model", str(tmp_path / "none"), "--data", str(mini_data),
                         "--out", str(tmp_path), "--tasks", "forget_qa"], capsys)
    assert code == 2 and "does not exist" in err


def test_eval_cli_rejects_a_model_without_an_image_token(
    model_dir: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    for path in model_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["image_token_id"] = 3
    (broken / "config.json").write_text(json.dumps(config))
    code, err = run_cli(["eval", "--model", str(broken), "--data", str(mini_data),
                         "--out", str(tmp_path / "out"), "--tasks", "forget_qa"], capsys)
    assert code == 2 and "image token" in err


def test_a_retrained_model_is_evaluated_again(
    model_dir: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    """The evaluation's identity is the model's content: a touched file is the same model,
    changed weights are another."""
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    evaluate(model, mini_data, tmp_path / "out", tasks=("forget_qa",))
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    capsys.readouterr()
    evaluate(model, mini_data, tmp_path / "out", tasks=("forget_qa",))
    assert "already done" in capsys.readouterr().out
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, weights, metadata={"format": "pt"})
    evaluate(model, mini_data, tmp_path / "out", tasks=("forget_qa",))
    assert "already done" not in capsys.readouterr().out


# The validation split (forget_val): evaluated like a forget split, on its own configs.


def test_forget_val_tasks_read_forget_val_perturbed(val_data: Path, tmp_path: Path) -> None:
    config = EvalConfig(model="m", data=str(val_data), out=tmp_path, forget_split="forget_val")
    needs = set(config.data_needs())
    assert {Need("clear", "forget_val_perturbed"), Need("tofu", "forget_val_perturbed"),
            Need("clear", "retain_perturbed"), Need("tofu", "retain_perturbed")} <= needs
    assert not any("forget10" in need.config for need in needs)
    source = DataSource.local(val_data)
    card = json.loads((val_data / "datacard.json").read_text())
    validation = card["persons"]["forget_val"]
    qa = TASKS_BY_NAME["forget_qa"].rows(source, "forget_val")
    assert {row.unit for row in qa} == set(validation)  # the data card's persons, per block
    assert all(row.unit in row.prompt for row in qa)
    faces = TASKS_BY_NAME["forget_face_name"].rows(source, "forget_val")
    assert {row.target for row in faces} == set(validation)
    assert all(r.id.startswith("clear/forget_val_perturbed/") for r in faces)
    retain = TASKS_BY_NAME["retain_captions"].rows(source, "forget_val")
    assert {row.unit for row in retain} == set(card["persons"]["retain_perturbed"])
    gate = FinetuneConfig(model="m", data=str(val_data), out=tmp_path, split="retain_val+tofu",
                          gate_split="forget_val")
    assert Need("tofu", "forget_val_perturbed") in gate.data_needs(
        gate.resolved_recipe(1)[1])
    with pytest.raises(ConfigError, match="forget20"):
        EvalConfig(model="m", data=str(val_data), out=tmp_path, forget_split="forget20")


def test_run_eval_on_forget_val(val_data: Path, tmp_path: Path) -> None:
    source = DataSource.local(val_data)
    build_tiny_vlm(TINY, corpus(source)).save(tmp_path / "model")
    payload = run_eval(EvalConfig(model=str(tmp_path / "model"), data=str(val_data),
                                  out=tmp_path / "eval", forget_split="forget_val",
                                  tasks=("forget_qa", "forget_captions", "retain_qa"),
                                  limit=2, max_new_tokens=4))
    assert payload["forget_split"] == "forget_val"
    assert [r["id"] for r in payload["tasks"]["forget_qa"]["rows"]] == [
        "tofu/forget_val_perturbed/0", "tofu/forget_val_perturbed/1"]
    assert payload["tasks"]["forget_captions"]["rows"][0]["id"].startswith(
        "clear/forget_val_perturbed/")
    assert payload["tasks"]["retain_qa"]["rows"][0]["id"].startswith("tofu/retain_perturbed/")


@pytest.mark.parametrize(("split", "trained", "ok"), [
    ("forget_val", "retain_val+tofu", True),
    ("forget_val", "retain90+tofu", False),
    ("forget10", "retain_val+tofu", False),
    ("forget10", "retain90+tofu", True),
])
def test_a_gold_model_of_forget_val_is_fine_tuned_on_retain_val(split: str, trained: str,
                                                                 ok: bool) -> None:
    gold = {"forget_split": split, "model": {"trained_as": {"stage": "finetune",
                                                           "split": trained}}}
    if ok:
        check_gold(gold, Path("gold"))
    else:
        with pytest.raises(ValueError, match=f"not a gold model of {split}"):
            check_gold(gold, Path("gold"))
