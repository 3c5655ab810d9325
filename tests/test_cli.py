"""The command line: every subcommand has --help; bad input is a one-line error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clearbench.cli import build_parser, main

SUBCOMMANDS = [[], ["data"], ["data", "synth"], ["base"], ["finetune"], ["run"], ["report"],
               ["compare"]]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "clearbench")
def test_help(words, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*words, "--help"])
    assert info.value.code == 0
    assert "usage: clearbench" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["base", "finetune", "eval", "unlearn"])
def test_every_command_that_reads_tofu_takes_its_source_and_revision(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    usage = capsys.readouterr().out
    assert "--tofu SOURCE" in usage and "--tofu-revision" in usage


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "clearbench", "--help"], capture_output=True,
                          text=True, check=True)
    assert "finetune" in done.stdout


def test_missing_run_config_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "Traceback" not in err


def test_unknown_run_config_key_is_named(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("seed: 0\nforget_split: [forget10]\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "forget_split" in capsys.readouterr().err


def test_torchvision_is_in_the_gpu_extra_only():
    """Qwen2-VL's processor needs torchvision on GPUs (docs/gpu.md); CPU installs stay lean."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("torchvision") for d in project["dependencies"])
    assert any(d.startswith("torchvision") for d in project["optional-dependencies"]["gpu"])
