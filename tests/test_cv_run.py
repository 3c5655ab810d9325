"""``clearbench cv run`` end to end on a tiny CLEAR-mini and a tiny ResNet; the CLI; the track
in ``clearbench run`` (config, plan, results, report)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from clearbench.cli import main
from clearbench.config import ConfigError
from clearbench.cv import recipe
from clearbench.cv.methods import CV_METHODS
from clearbench.cv.recipe import MARKER, RESULTS_FILE, TABLE_FILE, CVConfig, run_cv
from clearbench.recipes.pipeline import plan, run_stage
from clearbench.recipes.results import collect
from clearbench.recipes.runconfig import embedded_config, load_run_config
from clearbench.recipes.runplan import Plan
from clearbench.report import terminal_summary, write_report

TINY = {"hidden_sizes": [8, 16], "depths": [1, 1], "embedding_dim": 16, "image_size": 32}


def tiny_config(out: Path, data: Path, **overrides) -> CVConfig:
    settings = {"network_options": TINY, "shadows": 1, "pretrain_epochs": 2,
                "finetune_epochs": 3, "unlearn_epochs": 1, "pretrain_renders": 0, **overrides}
    return CVConfig(out=out, data=str(data), **settings)


def test_cv_run_end_to_end_and_rerun(mini_data: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "cv"
    results = run_cv(tiny_config(out, mini_data))
    assert results["schema"] == 1 and results["data"]["clear"]["content_hash"]
    assert [row["method"] for row in results["rows"]] == ["vanilla", "gold", *CV_METHODS]
    for row in results["rows"]:
        for key in ("forget_accuracy", "retain_accuracy", "holdout_accuracy", "u_lira", "u_mia"):
            assert 0.0 <= row[key] <= 1.0, (row["method"], key)
        assert len(row["replicas"]["forget_accuracy"]) == 2  # target + 1 shadow
    gold = next(row for row in results["rows"] if row["method"] == "gold")
    assert gold["u_lira"] == 0.5  # gold against itself: indistinguishable by construction
    assert json.loads((out / RESULTS_FILE).read_text())["rows"] == results["rows"]
    table = (out / TABLE_FILE).read_text()
    assert "| scrub_bio |" in table and "U-LiRA (0.5)" in table

    vanilla_marker = out / "replica-0" / "vanilla" / MARKER
    stamp = vanilla_marker.stat().st_mtime_ns
    again = run_cv(tiny_config(out, mini_data))  # everything finished: nothing retrained
    assert sum(again["timing"].values()) == 0.0
    assert again["rows"] == results["rows"]

    scores = out / "replica-1" / "neggrad" / recipe.SCORES  # as if that network had diverged
    kept = json.loads(scores.read_text())
    scores.write_text(json.dumps({key: kept[key] for key in ("scoring_version", "model")}
                                 | {"status": "diverged"}))
    diverged = run_cv(tiny_config(out, mini_data))
    row = next(row for row in diverged["rows"] if row["method"] == "neggrad")
    assert row["status"] == "diverged" and "u_lira" not in row
    assert "| neggrad | – | – | – | – | – | diverged |" in (out / TABLE_FILE).read_text()

    monkeypatch.setattr(recipe, "SCORING_VERSION", recipe.SCORING_VERSION + 1)
    rescored = run_cv(tiny_config(out, mini_data))  # new scoring: scores only, no training
    assert rescored["timing"]["scoring"] > 0
    assert sum(v for k, v in rescored["timing"].items() if k != "scoring") == 0.0

    changed = run_cv(tiny_config(out, mini_data, methods=("neggrad",), unlearn_epochs=2))
    assert vanilla_marker.stat().st_mtime_ns == stamp  # only the unlearning was redone
    assert changed["timing"]["neggrad"] > 0 and changed["timing"]["vanilla"] == 0.0
    assert json.loads((out / "replica-1" / "neggrad" / MARKER).read_text())["settings"][
        "schedule"]["epochs"] == 2


def test_cv_run_is_reproducible(mini_data: Path, tmp_path: Path) -> None:
    def numbers(out: Path) -> list[dict]:
        rows = run_cv(tiny_config(out, mini_data, methods=("scrub_bio", "dpo")))["rows"]
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")


def test_cv_config_errors_name_the_fault(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown CV method 'ga'"):
        CVConfig(out=tmp_path, methods=("ga",))
    with pytest.raises(ValueError, match=r"'rmu' has no option.*beta"):
        CVConfig(out=tmp_path, method_options={"rmu": {"beta": 1}})
    with pytest.raises(ConfigError, match="shadows = 0: an integer > 0"):
        CVConfig(out=tmp_path, shadows=0)
    with pytest.raises(ConfigError, match="network = 'vgg': one of mini, resnet18"):
        CVConfig(out=tmp_path, network="vgg")
    with pytest.raises(ValueError, match=r"network_options.*width"):
        CVConfig(out=tmp_path, network_options={"width": 3}).network_config(2)


def test_cv_cli_help_and_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cv", "run", "--help"])
    assert exit_info.value.code == 0
    assert "--shadows" in capsys.readouterr().out
    assert main(["cv", "run", "--option", "nodot=1", "--out", "/nonexistent/x"]) == 2
    assert "METHOD.KEY=VALUE" in capsys.readouterr().err


def test_run_config_cv_section(tmp_path: Path) -> None:
    base = "data: {synth: {persons: 10}}\nbase: {arch: llava}\n"
    path = tmp_path / "run.yaml"
    path.write_text(base + "cv: {shadows: 2, methods: [twins]}\n")
    config = load_run_config(path)
    assert config.cv == {"shadows": 2, "methods": ("twins",)}
    the_plan = plan(config, tmp_path / "run")
    stage = next(s for s in the_plan.stages if s.kind == "cv")
    cv_config = stage.args[0]
    assert (cv_config.out, cv_config.data, cv_config.shadows) == (
        tmp_path / "run" / "cv", str(tmp_path / "run" / "data"), 2)
    assert stage.name in the_plan.stages[-1].needs  # the report waits for the track
    path.write_text(base + "cv: {enabled: false, shadows: 2}\n")
    assert load_run_config(path).cv is None
    path.write_text(base + "cv:\n")  # an empty section enables the track with its defaults
    assert load_run_config(path).cv == {}
    assert load_run_config(embedded_config("mini")).cv is not None
    for text, named in (("cv: {shadow: 2}\n", "shadow"), ("cv: {seed: 2}\n", "seed"),
                        ("cv: {methods: [ga]}\n", "'ga'"), ("cv: {enabled: 1}\n", "enabled")):
        path.write_text(base + text)
        with pytest.raises(ValueError, match=r"run\.yaml: cv") as info:
            load_run_config(path)
        assert named in str(info.value)


def test_run_results_and_report_include_the_cv_table(mini_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"data: {{source: {mini_data}}}\nbase: {{arch: llava}}\ncv: {{}}\n")
    run_dir = tmp_path / "run"
    cv = run_cv(tiny_config(run_dir / "cv", mini_data, methods=("twins",)))
    empty = Plan(load_run_config(path), run_dir, str(mini_data), [], [])  # only the track
    results = collect(empty)
    assert results["cv"] == json.loads(json.dumps(cv))
    (run_dir / "results.json").write_text(json.dumps(results))
    write_report(run_dir)
    report = (run_dir / "report.md").read_text()
    assert "## Vision-only track (paper Table 2)" in report and "| twins |" in report
    assert 'id="cv-table"' in (run_dir / "report.html").read_text()
    assert "| gold |" in terminal_summary(run_dir)


def test_cv_cli_runs_the_track(mini_data: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cv"
    assert main(["cv", "run", "--data", str(mini_data), "--out", str(out), "--shadows", "1",
                 "--methods", "twins", "--pretrain-epochs", "1", "--finetune-epochs", "1",
                 "--unlearn-epochs", "1", "--option", "twins.retain_weight=0.5"]) == 0
    results = json.loads((out / RESULTS_FILE).read_text())
    assert [row["method"] for row in results["rows"]] == ["vanilla", "gold", "twins"]
    assert results["rows"][2]["options"] == {"retain_weight": 0.5}
    assert "| twins |" in capsys.readouterr().out


def test_the_planned_cv_stage_runs(mini_data: Path, tmp_path: Path) -> None:
    """The stage ``clearbench run`` plans runs, also after the pickling that sends it to a
    worker process (jobs > 1)."""
    path = tmp_path / "run.yaml"
    path.write_text(
        f"data: {{source: {mini_data}}}\nbase: {{arch: llava}}\n"
        "cv: {shadows: 1, methods: [twins], pretrain_epochs: 1, finetune_epochs: 1,\n"
        "     unlearn_epochs: 1, pretrain_renders: 0,\n"
        "     network_options: {hidden_sizes: [8, 16], depths: [1, 1], embedding_dim: 16,\n"
        "                       image_size: 32}}\n")
    run_dir = tmp_path / "run"
    stage = next(s for s in plan(load_run_config(path), run_dir).stages if s.kind == "cv")
    run_stage(pickle.loads(pickle.dumps(stage)))
    rows = json.loads((run_dir / "cv" / RESULTS_FILE).read_text())["rows"]
    assert [row["method"] for row in rows] == ["vanilla", "gold", "twins"]
