"""A report never stale, a comparison never blind (issue 17), on hand-made results.json files.

``write_results`` is driven with a stand-in for the run's stage outputs (``collect``
monkeypatched), so that a kill between ``results.json`` and the report, or half-way through
the report, can be simulated in milliseconds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clearbench.cli import main
from clearbench.recipes import results as recipe
from clearbench.report import render
from clearbench.report.manifest import MANIFEST, stale_reason
from clearbench.report.results import load_results
from test_report import SPLIT, make_entry, make_results, make_rows, set_score, write_run

REPORT_FILES = ("report.md", "report.html", "leaderboard.csv",
                f"plots/forget_retain_{SPLIT}.png", MANIFEST)


class Run:
    """A run folder whose stage outputs collect to ``self.results``."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = folder
        self.results = make_results()
        monkeypatch.setattr(recipe, "collect", lambda plan: copy.deepcopy(self.results))

    def write(self) -> None:
        recipe.write_results(SimpleNamespace(run_dir=self.dir))

    def add_method(self, method: str) -> None:
        entry = make_entry(method, "lora", "both")
        self.results["summary"].append(entry)
        self.results["rows"] += make_rows(entry)


def reported_methods(run_dir: Path) -> set[str]:
    lines = (run_dir / "leaderboard.csv").read_text().splitlines()[1:]
    return {line.split(",")[0] for line in lines}


def mtimes(run_dir: Path) -> dict[str, int]:
    return {name: (run_dir / name).stat().st_mtime_ns for name in REPORT_FILES}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Run:
    """A run whose report was written; its output read."""
    made = Run(tmp_path / "run", monkeypatch)
    made.write()
    capsys.readouterr()
    return made


def test_an_unchanged_run_rewrites_nothing(run: Run, capsys: pytest.CaptureFixture) -> None:
    before = mtimes(run.dir)
    run.write()
    assert "up to date; nothing to do" in capsys.readouterr().out
    assert mtimes(run.dir) == before


def test_a_kill_between_results_and_report_is_repaired(
        run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run.add_method("newmethod")
    with monkeypatch.context() as patch:
        def killed(run_dir: Path) -> list[Path]:
            raise KeyboardInterrupt("killed after results.json")
        patch.setattr("clearbench.report.write_report", killed)
        with pytest.raises(KeyboardInterrupt):
            run.write()
    assert load_results(run.dir) == run.results
    assert "newmethod" not in reported_methods(run.dir)  # the kill left the report behind
    run.write()
    out = capsys.readouterr().out
    assert "up to date" not in out and "shows other results than results.json" in out
    assert "newmethod" in reported_methods(run.dir)
    assert stale_reason(run.dir, run.results) is None


def test_a_kill_half_way_through_the_report_is_repaired(
        run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run.add_method("newmethod")
    write = render.write_text_atomic
    with monkeypatch.context() as patch:
        def killed_at_the_leaderboard(path: Path, text: str) -> None:
            if path.name == "leaderboard.csv":
                raise KeyboardInterrupt("killed while writing the report")
            write(path, text)
        patch.setattr(render, "write_text_atomic", killed_at_the_leaderboard)
        with pytest.raises(KeyboardInterrupt):
            run.write()
    assert "newmethod" in (run.dir / "report.md").read_text()  # half of the new report
    assert not (run.dir / MANIFEST).exists()  # ... never taken as complete
    run.write()
    assert "report.json is missing" in capsys.readouterr().out
    assert "newmethod" in reported_methods(run.dir)


@pytest.mark.parametrize(("name", "change"), [
    *((name, "deleted") for name in REPORT_FILES),
    *((name, "edited") for name in REPORT_FILES if name != MANIFEST),
])
def test_a_deleted_or_edited_report_file_is_rebuilt(
        run: Run, name: str, change: str, capsys: pytest.CaptureFixture) -> None:
    path = run.dir / name
    expected = path.read_bytes()
    if change == "deleted":
        path.unlink()
    else:
        path.write_bytes(expected + b"\n")
    run.write()
    assert "rebuilding the report" in capsys.readouterr().out
    assert path.read_bytes() == expected
    assert stale_reason(run.dir, run.results) is None


def test_the_report_command_writes_the_manifest(run: Run, capsys: pytest.CaptureFixture) -> None:
    (run.dir / "report.html").unlink()
    assert main(["report", str(run.dir)]) == 0
    assert f"wrote {run.dir / MANIFEST}" in capsys.readouterr().out
    assert stale_reason(run.dir, run.results) is None


# --- compare -----------------------------------------------------------------------------


def npo_row(results: dict[str, Any], seed: int) -> dict[str, Any]:
    return next(row for row in results["rows"] if (row["method"], row["variant"],
                row["modality"], row["seed"]) == ("npo", "lora", "both", seed))


def compare(tmp_path: Path, a: dict[str, Any], b: dict[str, Any],
            capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    assert main(["compare", str(write_run(tmp_path / "a", a)),
                 str(write_run(tmp_path / "b", b))]) == 0
    return capsys.readouterr().out


def test_compare_lists_a_score_that_became_nan(tmp_path: Path, capsys) -> None:
    a, b = make_results(), make_results()
    set_score(a, "npo", "lora", "both", "forget_quality", 0.18)
    set_score(b, "npo", "lora", "both", "forget_quality", None)
    npo_row(b, 0)["scores"]["forget_quality"] = float("nan")  # npo seed 0, as Python writes it
    text = compare(tmp_path, a, b, capsys)
    assert "forget10 npo/lora/both forget_quality: 0.18 → NaN (diverged?)" in text
    assert "forget10 npo/lora/both seed 0 forget_quality: 0.2 → NaN (diverged?)" in text
    assert "no differences" not in text
    reverse = compare(tmp_path, b, a, capsys)
    assert "forget10 npo/lora/both forget_quality: NaN → 0.18\n" in reverse


def test_compare_lists_scores_models_and_rows_only_one_run_has(tmp_path: Path, capsys) -> None:
    a, b = make_results(), make_results()
    del next(e for e in b["summary"] if e["method"] == "npo")["scores"]["retain"]
    b["rows"].remove(npo_row(b, 1))
    b["summary"].append(make_entry("newmethod", "lora", "both"))
    text = compare(tmp_path, a, b, capsys)
    assert "forget10 npo/lora/both retain: 0.55 → absent (diverged?)" in text
    assert "row only in A: forget10 npo/lora/both seed 1" in text
    assert "model only in B: forget10 newmethod/lora/both" in text


def test_compare_nan_in_both_runs_is_no_difference(tmp_path: Path, capsys) -> None:
    results = make_results()
    set_score(results, "npo", "lora", "both", "forget_quality", None)
    npo_row(results, 0)["scores"]["forget_quality"] = None
    assert compare(tmp_path, results, results, capsys).endswith("no differences\n")
