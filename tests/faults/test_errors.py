"""Expected failures end in one line on stderr naming the path or option at fault (exit code 2,
130 for Ctrl-C), never in a traceback; ``--debug`` shows it; a bug shows it and says so."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants

import clearbench.recipes.pipeline as pipeline
from clearbench.cli import main
from clearbench.data.loading import DataSource
from clearbench.io import write_json_atomic
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes.base import corpus
from clearbench.recipes.lock import run_folder_lock
from clearbench.recipes.pipeline import execute
from clearbench.recipes.runplan import Stage
from conftest import TINY

SRC = Path(__file__).parents[2] / "src"


def one_line_error(capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """stderr, checked to be one line without a traceback that names each of ``names``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("clearbench "), err
    for name in names:
        assert str(name) in err, (name, err)
    return err


@pytest.fixture(scope="module")
def model(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "model"
    build_tiny_vlm(TINY, corpus(DataSource.local(mini_data))).save(out)
    return out


def finetune(model: Path | str, data: Path | str, out: Path) -> int:
    return main(["finetune", "--model", str(model), "--data", str(data), "--out", str(out),
                 "--epochs", "0.01"])


def interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("debug", [False, True])
def test_ctrl_c_is_one_line_and_exit_code_130(debug, monkeypatch, capsys) -> None:
    monkeypatch.setattr(pipeline, "run", interrupt)
    assert main(["--debug", "run"] if debug else ["run"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; finished stages are kept, rerun the same command" in err
    assert ("Traceback" in err) == debug


# Stage actions run in worker processes: module-level, so that they pickle.
def wait_for(folder: Path, name: str) -> None:
    """Say this stage started, then wait for the end of the test."""
    (folder / f"{name}.started").touch()
    time.sleep(60)


def die(folder: Path) -> None:
    while not (folder / "sleeper.started").exists():
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


def two_stages(folder: Path, first: Stage) -> list[Stage]:
    return [first, Stage("sleeper", "x", wait_for, (folder, "sleeper"))]


def test_a_killed_worker_names_the_running_stages_and_their_logs(tmp_path, monkeypatch,
                                                                 capsys) -> None:
    stages = two_stages(tmp_path, Stage("killed", "x", die, (tmp_path,)))
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: execute(stages, 2, tmp_path / "logs"))
    assert main(["run"]) == 2
    # the stage beside it is named too when its worker is stopped first (not always, on a
    # loaded machine): the killed one always is
    one_line_error(capsys, "worker process died", "'killed'",
                   tmp_path / "logs" / "killed.log", "rerun the same command to resume")
    assert "Traceback" not in (tmp_path / "logs" / "sleeper.log").read_text()


CTRL_C = """
import signal
import sys
# Ctrl-C in a terminal: a process started in the background of a non-interactive shell (a CI
# script's `cmd &`) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)
import clearbench.recipes.pipeline as pipeline
from clearbench.cli import main
from test_errors import two_stages, Stage, wait_for
folder = pipeline.Path(sys.argv[1])
stages = two_stages(folder, Stage("other", "x", wait_for, (folder, "other")))
pipeline.run = lambda *a, **k: pipeline.execute(stages, 2, folder / "logs")
sys.exit(main(["run"]))
"""


def test_ctrl_c_with_two_workers_stops_them_without_tracebacks(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parent),
                                                        str(Path(__file__).parents[1])])}
    env.pop("CLEARBENCH_DEBUG", None)
    process = subprocess.Popen([sys.executable, "-c", CTRL_C, str(tmp_path)], env=env,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while not all((tmp_path / f"{s}.started").exists() for s in ("other", "sleeper")):
        assert time.time() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    try:  # 2 s on an idle machine; the stages would sleep 60 s
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        pytest.fail(f"clearbench run did not end within 30 s of Ctrl-C; stderr: {err}")
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "interrupted; finished stages are kept" in err


def test_a_second_run_on_a_held_run_folder_names_the_holder(tmp_path, capsys) -> None:
    with run_folder_lock(tmp_path / "run"):
        assert main(["run", "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, tmp_path / "run", "is in use by clearbench run",
                   f"pid {os.getpid()}", "wait for it or stop it")


def fail() -> None:
    raise ValueError("bad input")


def test_every_attempt_of_a_stage_keeps_its_log(tmp_path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "fails.log").write_text("the first attempt")
    with pytest.raises(pipeline.RunError, match="stage 'fails' failed: bad input") as info:
        execute([Stage("fails", "x", fail, ())], 2, logs)
    assert str(logs / "fails.2.log") in str(info.value)
    assert "ValueError: bad input" in (logs / "fails.2.log").read_text()
    assert (logs / "fails.log").read_text() == "the first attempt"


def test_run_out_that_is_a_file(tmp_path, capsys) -> None:
    out = tmp_path / "results.txt"
    out.write_text("not a folder")
    assert main(["run", "--out", str(out)]) == 2
    one_line_error(capsys, out, "File exists")


def test_a_path_through_a_file(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("")
    assert main(["data", "synth", "--out", str(tmp_path / "file" / "data")]) == 2
    one_line_error(capsys, tmp_path / "file", "Not a directory", "is a file, not a folder")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_os_errors_name_the_file_and_the_reason(code, tmp_path, monkeypatch, capsys) -> None:
    def refuse(fd: int) -> None:
        raise OSError(code, os.strerror(code))  # as a write to a full disk: no file named

    monkeypatch.setattr(os, "fsync", refuse)
    target = tmp_path / "run" / "timing.json"
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: write_json_atomic(target, {}))
    assert main(["run"]) == 2
    one_line_error(capsys, target, os.strerror(code))


@pytest.mark.parametrize("damage", ["truncated", "no weights", "no config.json"])
def test_damaged_model_folder(damage, model, mini_data, tmp_path, capsys) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    if damage == "truncated":
        (broken / "model.safetensors").write_bytes(
            (model / "model.safetensors").read_bytes()[:1000])
    else:
        (broken / {"no weights": "model.safetensors", "no config.json": "config.json"}[damage]
         ).unlink()
    assert finetune(broken, mini_data, tmp_path / "out") == 2
    names = [broken, "re-run the stage that wrote it"]
    names += ["model.safetensors"] if damage == "truncated" else []
    one_line_error(capsys, *names)


def test_mistyped_local_model_path_fails_at_once(tmp_path, monkeypatch, mini_data,
                                                 capsys) -> None:
    (tmp_path / "runs" / "vanilla").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    assert finetune("runs/vanila", mini_data, tmp_path / "out") == 2
    assert time.perf_counter() - started < 5
    one_line_error(capsys, "runs/vanila", "did you mean runs/vanilla?")


def test_mistyped_local_data_path_fails_at_once(tmp_path, monkeypatch, model, capsys) -> None:
    (tmp_path / "runs" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert finetune(model, "runs/dat", tmp_path / "out") == 2
    err = capsys.readouterr().err  # the preflight's list of problems: one here
    assert "Traceback" not in err
    assert "CLEAR runs/dat: no such folder (did you mean runs/data?)" in err


def test_hub_model_without_a_hub(tmp_path, monkeypatch, mini_data, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert finetune("llava-hf/no-such-model", mini_data, tmp_path / "out") == 2
    one_line_error(capsys, "llava-hf/no-such-model", "cannot load it from the hub")


def test_null_caption_names_file_column_and_row(model, mini_data, tmp_path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(mini_data, data)
    (file,) = (data / "full+tofu").glob("*.parquet")
    table = pq.read_table(file)
    captions = table.column("caption").to_pylist()
    captions[2] = None
    table = table.set_column(table.schema.get_field_index("caption"), "caption",
                             pa.array(captions, pa.string()))
    pq.write_table(table, file)
    assert finetune(model, data, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"row 2 ({file}, row 2) has a null in column 'caption'" in err
    assert "'full+tofu'" in err


def bug(*args: object, **kwargs: object) -> None:
    raise KeyError("a bug")


def test_a_bug_shows_its_traceback_and_how_to_report_it(monkeypatch, capsys) -> None:
    monkeypatch.setattr(pipeline, "run", bug)
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'a bug'" in err
    assert err.strip().splitlines()[-1].startswith("clearbench run: this is a bug in clearbench")
