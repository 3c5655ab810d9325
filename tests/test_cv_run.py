"""``clearbench cv run`` end to end on a tiny CLEAR-mini and a tiny ResNet; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearbench.cli import main
from clearbench.cv.methods import CV_METHODS
from clearbench.cv.recipe import MARKER, RESULTS_FILE, TABLE_FILE, CVConfig, run_cv

TINY = {"hidden_sizes": [8, 16], "depths": [1, 1], "embedding_dim": 16, "image_size": 32}


def tiny_config(out: Path, data: Path, **overrides) -> CVConfig:
    settings = {"network_options": TINY, "shadows": 1, "pretrain_epochs": 2,
                "finetune_epochs": 3, "unlearn_epochs": 1, "pretrain_renders": 0, **overrides}
    return CVConfig(out=out, data=str(data), **settings)


def test_cv_run_end_to_end_and_rerun(mini_data: Path, tmp_path: Path) -> None:
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

    changed = run_cv(tiny_config(out, mini_data, methods=("neggrad",), unlearn_epochs=2))
    assert vanilla_marker.stat().st_mtime_ns == stamp  # only the unlearning was redone
    assert changed["timing"]["neggrad"] > 0 and changed["timing"]["vanilla"] == 0.0
    assert json.loads((out / "replica-1" / "neggrad" / MARKER).read_text())["settings"][
        "schedule"]["epochs"] == 2


def test_cv_config_errors_name_the_fault(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown CV method 'ga'"):
        CVConfig(out=tmp_path, methods=("ga",))
    with pytest.raises(ValueError, match=r"'rmu' has no option.*beta"):
        CVConfig(out=tmp_path, method_options={"rmu": {"beta": 1}})
    with pytest.raises(ValueError, match="shadows must be ≥ 1"):
        CVConfig(out=tmp_path, shadows=0)
    with pytest.raises(ValueError, match="unknown network 'vgg'"):
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
