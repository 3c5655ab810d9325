"""The run report: tables, spec §6 findings, plots, files and run comparison on hand-made rows."""

from __future__ import annotations

import copy
import csv
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clearbench.report import compare_runs, terminal_summary, write_report
from clearbench.report.findings import (
    COLLAPSE_CLAIM,
    DOES_NOT_HOLD,
    HOLDS,
    L1_CLAIM,
    MODALITY_CLAIM,
    NOT_MEASURED,
    PARTLY,
    UTILITY_CLAIM,
    findings,
)
from clearbench.report.plots import pareto_front
from clearbench.report.tables import cost_table, l1_table, leaderboard_rows, main_table

SPLIT = "forget10"
VARIANTS = {"lora": (True, 0.0), "l1-lora": (True, 1e-4)}
TASKS = ("forget_captions", "retain_captions", "forget_qa")


def make_row(
    method: str,
    variant: str | None = None,
    modality: str | None = None,
    *,
    retain: float = 0.6,
    forget: float = 0.3,
    status: str = "ok",
) -> dict[str, Any]:
    """One results row; its scores and task metrics derive from ``retain`` and ``forget``."""
    lora, l1 = VARIANTS[variant] if variant else (False, 0.0)
    ok = status == "ok"
    return {
        "method": method, "variant": variant, "modality": modality, "forget_split": SPLIT,
        "lora": lora, "l1": l1, "status": status,
        "scores": {
            "forget_quality": 1e-8 if method == "vanilla" else 0.25,
            "forget_quality_by_task": {"forget_captions": 0.25},
            "forget_quality_js": 0.8, "forget_quality_js_by_task": {"forget_captions": 0.8},
            "model_utility": retain / 2, "real": None, "retain": retain, "forget": forget,
        } if ok else None,
        "tasks": {
            task: {"rougeL_recall": forget, "probability": retain, "truth_ratio": 0.5,
                   "fact_accuracy": 0.4}
            for task in TASKS
        } if ok else None,
        "cost": {"seconds": 12.5, "optimiser_steps": 40, "forward_passes": 80,
                 "peak_memory_gb": 0.9, "trainable_parameters": 3558912},
        "losses": [] if method in ("vanilla", "gold") else [2.0, 1.5, 1.2],
    }


def make_results() -> dict[str, Any]:
    """vanilla Retain 0.64 (collapse below 0.32), Forget 0.40; gold Forget 0.10 (gap 0.30)."""
    rows = [
        make_row("vanilla", retain=0.64, forget=0.40),
        make_row("gold", retain=0.62, forget=0.10),
        # GA, GD and RMU collapse; KL does not: the collapse finding partly holds.
        make_row("ga", "lora", "both", retain=0.05, forget=0.00),
        make_row("gd", "lora", "both", retain=0.10, forget=0.02),
        make_row("kl", "lora", "both", retain=0.50, forget=0.20),
        make_row("rmu", "lora", "both", retain=0.01, forget=0.00),
        # IDK, SCRUB and NPO keep ≥ 0.512 and close < 50 % of the gap: that finding holds.
        make_row("idk", "lora", "both", retain=0.60, forget=0.38),
        make_row("scrub", "lora", "both", retain=0.63, forget=0.39),
        make_row("npo", "lora", "both", retain=0.55, forget=0.30),
        make_row("dpo", "lora", "both", status="diverged"),
        # Modalities: GA and GD forget more with both, IDK does not: 2 of 3 is not > 2/3.
        make_row("ga", "lora", "text", retain=0.2, forget=0.20),
        make_row("ga", "lora", "visual", retain=0.3, forget=0.30),
        make_row("gd", "lora", "text", retain=0.2, forget=0.10),
        make_row("gd", "lora", "visual", retain=0.3, forget=0.05),
        make_row("idk", "lora", "text", retain=0.6, forget=0.35),
        make_row("idk", "lora", "visual", retain=0.6, forget=0.36),
        # ℓ1: GA no longer collapses, GD still does, RMU diverged: partly holds.
        make_row("ga", "l1-lora", "both", retain=0.45, forget=0.10),
        make_row("gd", "l1-lora", "both", retain=0.20, forget=0.05),
        make_row("rmu", "l1-lora", "both", status="diverged"),
        make_row("npo", "l1-lora", "both", status="diverged"),
    ]
    return {
        "schema": 1,
        "run": {"config": "configs/mini.yaml", "main_variant": "lora",
                "variants": {n: {"lora": lo, "l1": l1} for n, (lo, l1) in VARIANTS.items()},
                "forget_splits": [SPLIT]},
        "rows": rows,
    }


def write_run(folder: Path, results: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def by_claim(rows: list[dict[str, Any]], variant: str = "lora") -> dict[str, Any]:
    return {f.claim: f for f in findings(rows, variant)}


def set_scores(rows: list[dict[str, Any]], method: str, variant: str, **scores: float) -> None:
    for row in rows:
        if (row["method"], row["variant"], row["modality"]) == (method, variant, "both"):
            row["scores"].update(scores)


# --- tables -------------------------------------------------------------------------------


def test_main_table_cells():
    table = main_table(make_results()["rows"], SPLIT, "lora")
    cells = {row[0]: row for row in table.rows}
    assert [row[0] for row in table.rows] == [
        "vanilla", "gold", "ga", "gd", "kl", "rmu", "idk", "scrub", "npo", "dpo"
    ]
    assert table.columns[:4] == ("Method", "Real↑", "Retain↑", "Forget↓")
    assert cells["vanilla"] == ("vanilla", "–", "0.640", "0.400", "1.0e-8", "0.800", "0.320", "ok")
    assert cells["ga"][2:5] == ("0.050", "0.000", "0.250")
    assert cells["dpo"] == ("dpo", "–", "–", "–", "–", "–", "–", "diverged")


def test_l1_and_cost_tables():
    rows = make_results()["rows"]
    table = l1_table(rows, SPLIT)
    assert table is not None
    assert "Retain↑ lora (LoRA, λ=0)" in table.columns
    assert "MU↑ l1-lora (LoRA, λ=0.0001)" in table.columns
    ga = next(row for row in table.rows if row[0] == "ga")
    assert ga[1] == "0.050" and ga[5] == "0.450"
    assert "rmu (l1-lora, both): diverged" in (table.note or "")
    cost = cost_table(rows, SPLIT)
    assert cost.rows[0] == ("vanilla", "–", "–", "12.5", "40", "80", "0.90", "3,558,912")
    assert len(cost.rows) == len(rows)


def test_leaderboard_rows_are_flat():
    records = leaderboard_rows(make_results()["rows"])
    assert {len(r) for r in records} == {len(records[0])}
    assert records[0]["retain"] == 0.64 and records[0]["seconds"] == 12.5
    assert "forget_quality_by_task" not in records[0]
    assert records[9]["status"] == "diverged" and records[9]["retain"] is None


# --- findings ----------------------------------------------------------------------------


def test_findings_on_constructed_numbers():
    found = by_claim(make_results()["rows"])
    assert found[COLLAPSE_CLAIM].verdict == PARTLY
    assert "kl 0.500 (does not)" in found[COLLAPSE_CLAIM].evidence
    assert "0.320" in found[COLLAPSE_CLAIM].evidence  # the threshold is stated
    assert found[UTILITY_CLAIM].verdict == HOLDS
    assert found[MODALITY_CLAIM].verdict == PARTLY
    assert "(2 of 3)" in found[MODALITY_CLAIM].evidence
    assert found[L1_CLAIM].verdict == PARTLY
    assert "rmu at l1-lora/both diverged" in found[L1_CLAIM].evidence


def test_findings_hold_and_do_not_hold():
    rows = make_results()["rows"]
    for method in ("ga", "gd", "kl", "rmu"):
        set_scores(rows, method, "lora", retain=0.6)  # nothing collapses any more
    set_scores(rows, "idk", "lora", forget=0.10)  # closes the whole forget gap
    set_scores(rows, "scrub", "lora", retain=0.4)  # loses utility, without collapsing
    set_scores(rows, "npo", "lora", retain=0.4, forget=0.1)
    found = by_claim(rows)
    assert found[COLLAPSE_CLAIM].verdict == DOES_NOT_HOLD
    assert found[UTILITY_CLAIM].verdict == DOES_NOT_HOLD
    assert found[L1_CLAIM].verdict == NOT_MEASURED
    assert "no method collapses without ℓ1" in found[L1_CLAIM].evidence

    rows = make_results()["rows"]
    set_scores(rows, "gd", "l1-lora", retain=0.5)
    for row in rows:  # IDK forgets more with both modalities too, and RMU's ℓ1 run is valid
        if row["method"] == "idk" and row["modality"] != "both":
            row["scores"]["forget"] = 0.39
        if (row["method"], row["variant"]) == ("rmu", "l1-lora"):
            row.update(make_row("rmu", "l1-lora", "both", retain=0.4))
    found = by_claim(rows)
    assert found[MODALITY_CLAIM].verdict == HOLDS
    assert found[L1_CLAIM].verdict == HOLDS


def test_findings_not_measured():
    rows = [r for r in make_results()["rows"]
            if r["variant"] != "l1-lora" and r["method"] not in ("idk", "scrub", "npo")]
    found = by_claim(rows)
    assert found[UTILITY_CLAIM].verdict == NOT_MEASURED
    assert "Not run: idk, scrub, npo" in found[UTILITY_CLAIM].evidence
    assert found[L1_CLAIM].verdict == NOT_MEASURED
    assert "needs a LoRA variant with λ = 0 and one with λ > 0" in found[L1_CLAIM].evidence
    no_vanilla = by_claim([r for r in rows if r["method"] != "vanilla"])
    assert no_vanilla[COLLAPSE_CLAIM].verdict == NOT_MEASURED
    knows_nothing = [make_row("vanilla", retain=0.0) if r["method"] == "vanilla" else r
                     for r in rows]
    assert by_claim(knows_nothing)[COLLAPSE_CLAIM].verdict == NOT_MEASURED


# --- plots -------------------------------------------------------------------------------


def test_pareto_front():
    points = [(0.5, 0.5), (0.1, 0.2), (0.3, 0.6), (0.3, 0.4), (0.0, 0.0), (0.6, 0.6), (0.1, 0.2)]
    assert pareto_front(points) == [(0.0, 0.0), (0.1, 0.2), (0.3, 0.6)]
    assert pareto_front([]) == []


# --- files -------------------------------------------------------------------------------


def test_write_report_writes_every_file(tmp_path: Path):
    results = make_results()
    run = write_run(tmp_path / "run", results)
    written = write_report(run)
    names = {p.relative_to(run).as_posix() for p in written}
    assert {"report.md", "report.html", "leaderboard.csv"} <= names
    assert {f"plots/forget_retain_{SPLIT}.png", f"plots/task_metrics_{SPLIT}.png",
            f"plots/losses_{SPLIT}.png"} <= names
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    assert not list(run.rglob("*.partial"))
    with open(run / "leaderboard.csv", newline="") as f:
        records = list(csv.reader(f))
    assert len(records) == len(results["rows"]) + 1
    assert records[0][:3] == ["method", "variant", "modality"]
    markdown = (run / "report.md").read_text()
    assert "## Paper findings (spec §6) on this run" in markdown
    assert f"](plots/forget_retain_{SPLIT}.png)" in markdown
    assert "| dpo | – | – | – | – | – | – | diverged |" in markdown
    page = (run / "report.html").read_text()
    assert 'id="main-table"' in page and page.count("data:image/png;base64,") == 3
    assert not re.findall(r'(?:src|href)="(?!data:)', page)  # self-contained
    before = {p: p.read_bytes() for p in written}
    write_report(run)
    assert {p: p.read_bytes() for p in written} == before  # deterministic


def test_a_failed_memorisation_gate_is_a_warning_in_every_summary(tmp_path: Path):
    results = make_results()
    results["rows"][0]["gate"] = {"passed": False,
                                  "failures": ["retain_qa fact_accuracy = 0.875 < 0.9"]}
    results["rows"][1]["gate"] = {"passed": True, "failures": []}
    run = write_run(tmp_path / "run", results)
    write_report(run)
    warning = (f"WARNING: the vanilla model ({SPLIT}) failed its memorisation gate "
               "(retain_qa fact_accuracy = 0.875 < 0.9)")
    for text in ((run / "report.md").read_text(), html.unescape((run / "report.html").read_text()),
                 terminal_summary(run)):
        assert warning in text and text.count("WARNING") == 1
    results["rows"][0]["gate"] = {"passed": True, "failures": []}
    write_report(write_run(run, results))
    assert "WARNING" not in (run / "report.md").read_text()


def test_write_report_errors_name_the_file(tmp_path: Path):
    with pytest.raises(ValueError, match=r"results\.json not found"):
        write_report(tmp_path)
    results = make_results()
    del results["rows"][3]["status"]
    write_run(tmp_path, results)
    with pytest.raises(ValueError, match=r"results\.json: row 3 lacks 'status'"):
        write_report(tmp_path)
    write_run(tmp_path, {"schema": 1, "run": {}})
    with pytest.raises(ValueError, match=r"results\.json: missing 'rows'"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(ValueError, match=r"results\.json is not valid JSON"):
        write_report(tmp_path)


def test_compare_runs(tmp_path: Path):
    results = make_results()
    run_a = write_run(tmp_path / "a", results)
    assert compare_runs(run_a, write_run(tmp_path / "same", results)).endswith("no differences")
    changed = copy.deepcopy(results)
    set_scores(changed["rows"], "ga", "lora", retain=0.15)
    changed["rows"][9] = make_row("dpo", "lora", "both", retain=0.5, forget=0.2)
    changed["rows"].pop()  # npo l1-lora
    text = compare_runs(run_a, write_run(tmp_path / "b", changed))
    ga = next(line for line in text.splitlines() if "ga/lora/both" in line)
    assert re.search(r"retain\s+0\.05\s+0\.15\s+\+0\.1\b", ga)
    assert re.search(r"dpo/lora/both\s+status\s+diverged\s+ok", text)
    assert "only in A: forget10 npo/l1-lora/both" in text
    assert "no differences" not in text
    assert "model_utility" in text and "kl/" not in text


# --- the HTML page in a real browser -----------------------------------------------------

IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  const out = document.createElement("pre");
  out.id = "img-check";
  out.textContent = (loaded === images.length ? "ok " : "failed ") + loaded + "/" + images.length;
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    """A Chromium that runs (an Ubuntu snap stub without snapd is on PATH but does not)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path and subprocess.run([path, "--version"], capture_output=True,
                                   timeout=60).returncode == 0:
            return path
    return None


def test_html_report_renders_in_chromium(tmp_path: Path):
    browser = find_chromium()
    if browser is None:
        if os.environ.get("CLEARBENCH_REQUIRE_CHROMIUM") == "1":
            pytest.fail("CLEARBENCH_REQUIRE_CHROMIUM=1 but no working chromium, "
                        "chromium-browser or google-chrome is on PATH")
        pytest.skip("no working Chromium on PATH")
    run = write_run(tmp_path / "run", make_results())
    write_report(run)
    page = tmp_path / "check.html"
    page.write_text((run / "report.html").read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    dom = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom",
         "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}",
         page.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout
    table = re.search(r'<table id="main-table">(.*?)</table>', dom, re.S)
    assert table is not None, dom[:2000]
    methods = re.findall(r"<tr><td>([^<]*)</td>", table.group(1))
    assert methods == ["vanilla", "gold", "ga", "gd", "kl", "rmu", "idk", "scrub", "npo", "dpo"]
    check = re.search(r'<pre id="img-check">(\w+) (\d+)/(\d+)</pre>', dom)
    assert check is not None, "the image check did not run"
    status, loaded, total = check.group(1), int(check.group(2)), int(check.group(3))
    assert status == "ok" and loaded == total >= 3
