"""Issue 17's silent-staleness cases, reproduced and shown fixed: a stage's identity is its own
settings plus the content of what it reads, never a path; model folders appear only when
finished; non-finite weights are "diverged"; ``score`` refuses a gold model that is not one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from clearbench.cli import main
from clearbench.recipes import finetune as finetune_module
from clearbench.recipes import unlearn as unlearn_module
from clearbench.recipes.finetune import FinetuneConfig, answer_loss, finetune
from clearbench.recipes.runconfig import embedded_config
from clearbench.recipes.stage import STAMP, StageFolder, StaleStage, model_key, partial_folder
from clearbench.recipes.unlearn import UnlearnConfig, unlearn

STAGE_FILES = ("base.json", "training.json", "unlearning.json", "eval.json", "scores.json")
UNLEARNED = Path("unlearn/forget10/both/ga-lora/seed0")


def tiny_config(folder: Path, **changes: dict) -> Path:
    """The smoke preset cut to one method, one seed, one variant, no tuning, no audits and no
    text-only track: every kind of stage once."""
    config = yaml.safe_load(embedded_config("smoke").read_text())
    config["seeds"] = 1
    del config["tune"], config["audit"], config["text"]
    config["unlearn"] |= {"methods": ["ga"], "modality_study": [],
                          "variants": {"lora": {"lora": True, "lr": 2.0e-3}}}
    for section, settings in changes.items():
        config[section] = config.get(section, {}) | settings
    path = folder / f"tiny-{len(list(folder.glob('tiny-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def stage_records(run_dir: Path) -> dict[str, bytes]:
    """Every stage's record file, by path relative to the run."""
    return {str(p.relative_to(run_dir)): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.name in STAGE_FILES}


def stage_keys(run_dir: Path) -> dict[str, str]:
    """Each stage's identity: the settings hash of a model stage, the identity of an eval."""
    keys = {}
    for path, text in stage_records(run_dir).items():
        record = json.loads(text)
        keys[path] = record.get("settings_hash") or record.get("identity") or record.get("inputs")
    return keys


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished tiny run and its config."""
    folder = tmp_path_factory.mktemp("tiny")
    config = tiny_config(folder)
    run_dir = folder / "run"
    assert main(["run", "--config", str(config), "--out", str(run_dir)]) == 0
    return config, run_dir


def test_a_moved_run_redoes_nothing(tiny_run: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    config, run_dir = tiny_run
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(run_dir, moved, copy_function=shutil.copy)  # new mtimes too
    before = stage_records(moved)
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--out", str(moved)]) == 0
    assert stage_records(moved) == before
    out = capsys.readouterr().out
    assert "redoing" not in out and "removing" not in out
    assert "up to date" in out  # results.json names no path of the old place
    assert (moved / "results.json").read_bytes() == (run_dir / "results.json").read_bytes()


@pytest.mark.parametrize(("change", "kept"), [
    ({"base": {"epochs": 2}}, set()),
    ({"finetune": {"epochs": 3}}, {"base/base.json"}),
], ids=["base.epochs", "finetune.epochs"])
def test_a_changed_setting_redoes_exactly_the_stages_below_it(
    tiny_run: tuple[Path, Path], tmp_path: Path, change: dict, kept: set[str]
) -> None:
    _, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = stage_keys(copy)
    assert main(["run", "--config", str(tiny_config(tmp_path, **change)), "--out",
                 str(copy)]) == 0
    after = stage_keys(copy)
    assert after.keys() == before.keys()
    assert {path for path in after if after[path] == before[path]} == kept


def test_data_edited_in_place_is_a_new_identity(tiny_run: tuple[Path, Path],
                                                tmp_path: Path, capsys) -> None:
    _, run_dir = tiny_run
    data = tmp_path / "data"
    shutil.copytree(run_dir / "data", data)
    model = run_dir / "vanilla"
    args = ["eval", "--model", str(model), "--data", str(data), "--tasks", "forget_qa",
            "--out", str(tmp_path / "eval")]
    assert main(args) == 0
    first = json.loads((tmp_path / "eval" / "eval.json").read_text())
    edit_one_answer(data)
    capsys.readouterr()
    assert main(args) == 0
    assert "already done" not in capsys.readouterr().out
    second = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert second["identity"] != first["identity"]
    assert second["data"]["fingerprint"] != first["data"]["fingerprint"]


def edit_one_answer(data: Path) -> None:
    """Change one answer of TOFU's forget10_perturbed in place, as a user editing a file
    would."""
    import datasets

    path = data / "tofu" / "forget10_perturbed" / "train-00000-of-00001.parquet"
    table = datasets.Dataset.from_parquet(str(path))
    table = table.map(lambda row, i: {"answer": row["answer"] + " indeed"} if i == 0 else row,
                      with_indices=True)
    table.to_parquet(str(path))


def test_the_run_regenerates_edited_synthetic_data(tiny_run: tuple[Path, Path],
                                                   tmp_path: Path, capsys) -> None:
    """The run's own CLEAR-mini folder must hold what the generator writes: an edit is undone,
    and since the content is then the same, nothing else is redone."""
    config, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = stage_records(copy)
    edit_one_answer(copy / "data")
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--out", str(copy)]) == 0
    assert "regenerating" in capsys.readouterr().out
    assert stage_records(copy) == before


def test_eval_refuses_an_unfinished_stage(tiny_run: tuple[Path, Path], tmp_path: Path,
                                          capsys) -> None:
    _, run_dir = tiny_run
    unfinished = partial_folder(tmp_path / "vanilla")
    shutil.copytree(run_dir / "vanilla", unfinished)
    (unfinished / "training.json").unlink()
    (unfinished / STAMP).write_text("some key")
    damaged = shutil.copytree(run_dir / "vanilla", tmp_path / "damaged")
    (damaged / "training.json").unlink()  # as an older version left an interrupted stage
    capsys.readouterr()
    assert main(["eval", "--model", str(damaged), "--data", str(run_dir / "data"),
                 "--out", str(tmp_path / "eval"), "--tasks", "forget_qa"]) == 2
    assert "no record of it finishing" in capsys.readouterr().err
    for model in (unfinished, tmp_path / "vanilla"):
        capsys.readouterr()
        code = main(["eval", "--model", str(model), "--data", str(run_dir / "data"),
                     "--out", str(tmp_path / "eval"), "--tasks", "forget_qa"])
        err = capsys.readouterr().err
        assert code == 2 and "unfinished stage" in err and str(unfinished) in err


def test_score_refuses_a_gold_that_is_not_one(tiny_run: tuple[Path, Path], tmp_path: Path,
                                              capsys) -> None:
    _, run_dir = tiny_run
    vanilla_eval = run_dir / "vanilla" / "eval-forget10"
    unlearned_eval = run_dir / UNLEARNED / "eval-forget10"
    capsys.readouterr()
    code = main(["score", "--eval", str(unlearned_eval), "--gold", str(vanilla_eval),
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a gold model of forget10" in err and "full+tofu" in err
    assert main(["score", "--eval", str(unlearned_eval),
                 "--gold", str(run_dir / "gold-forget10" / "eval-forget10"),
                 "--out", str(tmp_path)]) == 0


def test_non_finite_weights_are_diverged(tiny_run: tuple[Path, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A loss can explode without ever being NaN: the weights are checked after training."""
    _, run_dir = tiny_run
    train = unlearn_module.train

    def exploding(model: torch.nn.Module, *args, **kwargs):
        result = train(model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).fill_(float("inf"))
        return result

    monkeypatch.setattr(unlearn_module, "train", exploding)
    out = tmp_path / "ga"
    record = unlearn(UnlearnConfig(model=str(run_dir / "vanilla"), data=str(run_dir / "data"),
                                   method="ga", out=out, epochs=1.0))
    assert record["status"] == "diverged" and "NaN or inf" in record["diverged"]
    assert json.loads((out / "unlearning.json").read_text())["status"] == "diverged"
    assert not (out / "model.safetensors").exists()
    with pytest.raises(ValueError, match="diverged"):
        model_key(str(out))


def test_a_stage_folder_is_finished_or_absent(tmp_path: Path) -> None:
    folder = StageFolder(tmp_path / "out", "marker.json", "key-1", "thing")
    assert not folder.done()
    work = folder.begin()
    (work / "weights").write_text("half")
    assert not (tmp_path / "out").exists()
    assert StageFolder(tmp_path / "out", "marker.json", "key-1", "thing").begin() == work
    assert (work / "weights").is_file()  # the same key resumes
    other = StageFolder(tmp_path / "out", "marker.json", "key-2", "thing")
    assert not (other.begin() / "weights").exists()  # another key starts afresh
    (work / "marker.json").write_text(json.dumps({"settings_hash": "key-2"}))
    other.commit()
    assert other.done() and not work.exists() and not (tmp_path / "out" / STAMP).exists()
    with pytest.raises(StaleStage):
        folder.done()


class Interrupt(Exception):
    """Stands in for a kill in the middle of training."""


def test_an_interrupted_fine_tune_resumes_after_the_run_moved(
    tiny_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, run_dir = tiny_run
    first = tmp_path / "first"
    for name in ("data", "base"):
        shutil.copytree(run_dir / name, first / name)

    def config(root: Path) -> FinetuneConfig:
        return FinetuneConfig(model=str(root / "base"), data=str(root / "data"),
                              out=root / "vanilla", recipe="mini", epochs=2.0,
                              checkpoint_every=2)

    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Interrupt
        return answer_loss(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(finetune_module, "answer_loss", crashing)
        with pytest.raises(Interrupt):
            finetune(config(first))
    moved = tmp_path / "moved"
    first.rename(moved)
    record = finetune(config(moved))
    assert record["resumed_from_step"] > 0


@pytest.mark.parametrize(("model", "what"), [("base", "a base model"),
                                             ("gold-forget10", "(a gold model)")])
def test_unlearning_refuses_a_model_that_is_not_vanilla(tiny_run: tuple[Path, Path],
                                                        tmp_path: Path, capsys, model: str,
                                                        what: str) -> None:
    _, run_dir = tiny_run
    capsys.readouterr()
    assert main(["unlearn", "--model", str(run_dir / model), "--data", str(run_dir / "data"),
                 "--method", "ga", "--out", str(tmp_path / "out")]) == 2
    assert what in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_whose_files_changed_is_redone(tiny_run: tuple[Path, Path], tmp_path: Path,
                                               capsys) -> None:
    """A stage's record carries the hash of the model files it wrote: a deleted or edited file
    makes the stage redone (not an error at the next stage)."""
    config, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = stage_keys(copy)
    (copy / "vanilla" / "model.safetensors").unlink()
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--out", str(copy)]) == 0
    assert "model files changed since the stage wrote them" in capsys.readouterr().out
    assert (copy / "vanilla" / "model.safetensors").is_file()
    # training is deterministic: the same weights again, so nothing below had to be redone
    assert stage_keys(copy) == before


def test_a_damaged_result_file_is_redone(tiny_run: tuple[Path, Path], tmp_path: Path,
                                         capsys) -> None:
    config, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    evaluation = copy / "vanilla" / "eval-forget10" / "eval.json"
    evaluation.write_text(evaluation.read_text()[:100])
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--out", str(copy)]) == 0
    assert "is not valid JSON" in capsys.readouterr().out
    assert json.loads(evaluation.read_text())["tasks"]
