"""The run report on hand-made schema-2 results: tables, leaderboard, paired-bootstrap findings,
plots, files, run comparison.

Every summary entry has 4 bootstrap replicates per score, chosen so that each verdict can be
checked by hand: a score given as a number has 4 equal replicates; a list is the replicates,
and the entry records their mean, minimum and maximum as mean, low and high.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
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
    NOT_SEPARABLE,
    UTILITY_CLAIM,
    findings,
)
from clearbench.report.plots import pareto_front
from clearbench.report.results import SCORE_NAMES
from clearbench.report.tables import (
    authors_table,
    cost_table,
    l1_table,
    leaderboard_rows,
    main_table,
    modality_table,
    relearn_table,
    robust_table,
    robustness_table,
)

SPLIT = "forget10"
N = 4
VARIANTS = {"lora": (True, 0.0), "l1-lora": (True, 1e-4)}
TASKS = ("forget_captions", "retain_captions", "forget_qa")
DEFAULTS = {
    "forget_knowledge": 0.5, "forgetting_progress": 0.5, "retain": 0.6, "real": 0.5,
    "model_utility": 0.55, "forget_quality": 0.2, "forget_quality_qa": 0.3, "authors_real": 0.48,
    "authors_retain": 0.51, "authors_forget": 0.3, "authors_forget_quality": 0.84,
}
NOISE_FLOOR = "gold (reseeded) — noise floor"

Value = float | list[float] | None


def scored(value: Value) -> tuple[dict[str, float | None], list[float | None]]:
    """(mean/low/high, replicates) of a score given as a number, replicates or None."""
    if value is None:
        return {"mean": None, "low": None, "high": None}, [None] * N
    draws = [float(value)] * N if isinstance(value, int | float) else value
    return {"mean": sum(draws) / len(draws), "low": min(draws), "high": max(draws)}, draws


def make_entry(method: str, variant: str | None = None, modality: str | None = None, *,
               status: str = "ok", seeds: tuple[int, ...] = (0, 1), **scores: Value
               ) -> dict[str, Any]:
    """A summary entry; scores not given take :data:`DEFAULTS`; diverged at every seed: none."""
    lora, l1 = VARIANTS[variant] if variant else (False, 0.0)
    values = {} if status.startswith("diverged at seed 0, 1") else {**DEFAULTS, **scores}
    pairs = {name: scored(value) for name, value in values.items()}
    return {"method": method, "variant": variant, "modality": modality, "forget_split": SPLIT,
            "lora": lora, "l1": l1, "seeds": list(seeds), "status": status,
            "scores": {name: pair[0] for name, pair in pairs.items()},
            "replicates": {name: pair[1] for name, pair in pairs.items()}}


def make_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-seed rows of an entry (every seed diverged when the entry has no scores)."""
    ok = bool(entry["scores"])
    return [{
        **{key: entry[key] for key in ("method", "variant", "modality", "forget_split", "lora",
                                       "l1")},
        "seed": seed, "status": "ok" if ok else "diverged",
        "scores": {"forget_quality_by_task": {"forget_captions": 0.2},
                   **{n: s["mean"] for n, s in entry["scores"].items()}} if ok else None,
        "tasks": {task: {"rougeL_recall": 0.4 + seed / 10, "probability": 0.6,
                         "truth_ratio": 0.5, "fact_accuracy": 0.3, "truth_knowledge": 0.5}
                  for task in TASKS} if ok else None,
        "cost": {"seconds": 12.5 + seed, "optimiser_steps": 40, "forward_passes": 80,
                 "peak_memory_gb": 0.9, "trainable_parameters": 3558912},
        "losses": [] if entry["method"] in ("vanilla", "gold", "gold_reseeded")
        else [2.0, 1.5, 1.2 + seed],
        "model": f"runs/x/{entry['method']}", "gate": None,
    } for seed in entry["seeds"]]


def results_of(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": 2,
        "run": {"config": "configs/mini.yaml", "data": "data/mini", "main_variant": "lora",
                "variants": {n: {"lora": lo, "l1": l1} for n, (lo, l1) in VARIANTS.items()},
                "forget_splits": [SPLIT], "modalities": ["both", "text", "visual"],
                "seeds": [0, 1],
                "intervals": {"level": 0.95, "replicates": N,
                              "method": "percentile bootstrap over persons and seeds"}},
        "rows": [row for entry in entries for row in make_rows(entry)],
        "summary": entries,
    }


VANILLA_RETAIN = [0.60, 0.62, 0.66, 0.68]  # half: [0.30, 0.31, 0.33, 0.34]; 0.8×: 0.48…0.544


def make_results() -> dict[str, Any]:
    """Verdicts: collapse not separable (KL), utility does not hold (NPO), modality holds,
    ℓ1 holds (hand-checked in the comments)."""
    entries = [
        make_entry("vanilla", forget_knowledge=0.8, forgetting_progress=0.0,
                   retain=VANILLA_RETAIN, seeds=(0,)),
        make_entry("gold", forget_knowledge=0.2, forgetting_progress=1.0, retain=0.62,
                   forget_quality=1.0, seeds=(0,)),
        make_entry("gold_reseeded", forget_knowledge=[0.20, 0.22, 0.24, 0.26],
                   forgetting_progress=[0.9, 0.93, 0.97, 1.0], retain=0.61,
                   forget_quality=[0.3, 0.4, 0.5, 0.6], seeds=(1,)),
        # Retain − 0.5 × vanilla: ga, rmu well below 0; gd −0.01 on every replicate (paired;
        # its own interval [0.29, 0.33] overlaps the threshold's [0.30, 0.34]); kl
        # [−0.02, −0.01, 0.01, 0.02], not separable.
        make_entry("ga", "lora", "both", retain=[0.03, 0.04, 0.06, 0.07], forget_knowledge=0.05,
                   forgetting_progress=[1.2, 1.25, 1.25, 1.3]),
        make_entry("gd", "lora", "both", retain=[0.29, 0.30, 0.32, 0.33], forget_knowledge=0.06),
        make_entry("kl", "lora", "both", retain=[0.28, 0.30, 0.34, 0.36]),
        make_entry("rmu", "lora", "both", retain=[0.01, 0.01, 0.02, 0.02]),
        # Retain − 0.8 × vanilla > 0 for all three; P − 0.5 < 0 for idk and scrub, > 0 for npo.
        make_entry("idk", "lora", "both", retain=[0.58, 0.59, 0.61, 0.62], forget_knowledge=0.75,
                   forgetting_progress=[0.06, 0.08, 0.12, 0.14]),
        make_entry("scrub", "lora", "both", retain=0.63, forgetting_progress=0.05),
        make_entry("npo", "lora", "both", retain=[0.53, 0.54, 0.56, 0.57],
                   forgetting_progress=[0.6, 0.65, 0.75, 0.8]),
        make_entry("dpo", "lora", "both", status="diverged at seed 0, 1"),
        # K(both) − min(K(text), K(visual)): ga −0.20, gd −0.09, idk −0.03: 3 of 3 hold.
        make_entry("ga", "lora", "text", forget_knowledge=0.30),
        make_entry("ga", "lora", "visual", forget_knowledge=0.25),
        make_entry("gd", "lora", "text", forget_knowledge=0.20),
        make_entry("gd", "lora", "visual", forget_knowledge=0.15),
        make_entry("idk", "lora", "text", forget_knowledge=0.78),
        make_entry("idk", "lora", "visual", forget_knowledge=0.80),
        # With ℓ1, Retain − 0.5 × vanilla: ga +0.11…+0.15, gd +0.16…+0.20; rmu diverged.
        make_entry("ga", "l1-lora", "both", retain=0.45),
        make_entry("gd", "l1-lora", "both", retain=0.50),
        make_entry("rmu", "l1-lora", "both", status="diverged at seed 0, 1"),
    ]
    results = results_of(entries)
    results["summary"][0]["scores"]["forget_quality"] = {"mean": 7.7e-4, "low": 1.2e-6,
                                                         "high": 0.031}
    return results


def entry_of(results: dict[str, Any], method: str, variant: str | None = None,
             modality: str | None = None) -> dict[str, Any]:
    return next(e for e in results["summary"]
                if (e["method"], e["variant"], e["modality"]) == (method, variant, modality))


def set_score(results: dict[str, Any], method: str, variant: str | None, modality: str | None,
              name: str, value: Value) -> None:
    entry = entry_of(results, method, variant, modality)
    entry["scores"][name], entry["replicates"][name] = scored(value)


def write_run(folder: Path, results: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def by_claim(results: dict[str, Any]) -> dict[str, Any]:
    return {f.claim: f for f in findings(results)}


# --- tables -------------------------------------------------------------------------------


def test_main_table_cells():
    table = main_table(make_results(), SPLIT)
    assert table.columns == ("Method", "K↓", "P (1 = gold)", "Retain↑", "Real↑", "MU↑",
                             "FQ↑ (KS p)", "Seeds", "Status")
    assert [row[0] for row in table.rows] == [
        "vanilla", "gold", NOISE_FLOOR, "ga", "gd", "kl", "rmu", "idk", "scrub", "npo", "dpo"
    ]
    cells = {row[0]: row for row in table.rows}
    assert cells["vanilla"] == (
        "vanilla", "0.800 [0.800, 0.800]", "0.000 [0.000, 0.000]", "0.640 [0.600, 0.680]",
        "0.500 [0.500, 0.500]", "0.550 [0.550, 0.550]", "7.7e-4 [1.2e-6, 0.031]", "0", "ok",
    )
    assert cells[NOISE_FLOOR][1:3] == ("0.230 [0.200, 0.260]", "0.950 [0.900, 1.000]")
    assert cells[NOISE_FLOOR][6:] == ("0.450 [0.300, 0.600]", "1", "ok")
    assert cells["ga"][3] == "0.050 [0.030, 0.070]"
    assert cells["dpo"] == ("dpo", *["–"] * 6, "0 1", "diverged at seed 0, 1")
    note = table.note or ""
    assert "95 % interval (percentile bootstrap over persons and seeds; 4 replicates)" in note
    assert "noise floor" in note and "not meaningful" in note


def test_a_cell_without_an_interval_shows_the_mean():
    results = make_results()
    entry_of(results, "ga", "lora", "both")["scores"]["retain"] = {"mean": 0.05, "low": None,
                                                                   "high": None}
    assert next(r for r in main_table(results, SPLIT).rows if r[0] == "ga")[3] == "0.050"


def test_authors_table_cells_and_published_values():
    table = authors_table(make_results(), SPLIT)
    assert "Authors' convention" in table.title and "mm/build_vllm_table.py" in table.title
    assert table.columns == ("Method", "Real↑", "Retain↑", "Forget↓", "FQ↑ (1−JS)")
    assert table.rows[2] == (NOISE_FLOOR, "0.480 [0.480, 0.480]", "0.510 [0.510, 0.510]",
                             "0.300 [0.300, 0.300]", "0.840 [0.840, 0.840]")
    assert table.rows[-1] == ("dpo", "–", "–", "–", "–")
    assert "GA .27/.00/.00/.67" in (table.note or "")


def test_modality_table_cells():
    table = modality_table(make_results(), SPLIT)
    assert table is not None
    assert table.columns[:5] == ("Method", "K↓ (both)", "P (both)", "Retain↑ (both)",
                                 "FQ↑ (both)")
    assert table.columns[5] == "K↓ (visual)" and table.columns[9] == "K↓ (text)"
    cells = {row[0]: row for row in table.rows}
    assert list(cells)[:3] == ["vanilla", "gold", NOISE_FLOOR]
    assert cells[NOISE_FLOOR][1] == cells[NOISE_FLOOR][5] == "0.230 [0.200, 0.260]"
    assert (cells["ga"][1], cells["ga"][5], cells["ga"][9]) == (
        "0.050 [0.050, 0.050]", "0.250 [0.250, 0.250]", "0.300 [0.300, 0.300]")
    assert cells["kl"][5:] == ("–",) * 8  # kl unlearned both modalities only
    assert "dpo/lora/both: diverged at seed 0, 1" in (table.note or "")
    both_only = make_results()
    both_only["summary"] = [e for e in both_only["summary"] if e["modality"] in (None, "both")]
    assert modality_table(both_only, SPLIT) is None


def test_l1_table_cells():
    table = l1_table(make_results(), SPLIT)
    assert table is not None
    assert "Retain↑ (l1-lora, LoRA, λ=0.0001)" in table.columns
    assert table.columns[1] == "K↓ (lora, LoRA, λ=0)"
    cells = {row[0]: row for row in table.rows}
    assert NOISE_FLOOR in cells
    assert (cells["ga"][3], cells["ga"][7]) == ("0.050 [0.030, 0.070]", "0.450 [0.450, 0.450]")
    assert cells["rmu"][5:] == ("–",) * 4
    assert "rmu/l1-lora/both: diverged at seed 0, 1" in (table.note or "")
    one_variant = make_results()
    one_variant["summary"] = [e for e in one_variant["summary"] if e["variant"] != "l1-lora"]
    assert l1_table(one_variant, SPLIT) is None


def test_cost_table_has_a_row_per_seed():
    results = make_results()
    table = cost_table(results, SPLIT)
    assert table.columns[:4] == ("Method", "Variant", "Modality", "Seed")
    assert len(table.rows) == len(results["rows"])
    assert table.rows[0] == ("vanilla", "–", "–", "0", "12.5", "40", "80", "0.90", "3,558,912")
    assert table.rows[2][:4] == (NOISE_FLOOR, "–", "–", "1")
    assert ("ga", "lora", "both", "1", "13.5") in {row[:5] for row in table.rows}


# --- leaderboard -------------------------------------------------------------------------


def leaderboard_results() -> dict[str, Any]:
    """|1 − P| replicates (mean of P → |1 − mean|): a [.05, 0, 0, .05] (0) → interval [0, .05];
    b [.15, .1, .1, .05] (.1) → [.05375, .14625]; c [.05, .1, .1, .19] (.11) → [.05375, .18325],
    tied with b; d [.5, .4, .4, .3] (.4) → [.3075, .4925]; e has no P."""
    return results_of([
        make_entry("vanilla", forgetting_progress=0.0, seeds=(0,)),
        make_entry("d", "lora", "both", forgetting_progress=[0.5, 0.6, 0.6, 0.7]),
        make_entry("c", "lora", "both", forgetting_progress=[1.05, 1.1, 1.1, 1.19]),
        make_entry("gold", forgetting_progress=1.0, seeds=(0,)),
        make_entry("e", "lora", "both", forgetting_progress=None),
        make_entry("b", "lora", "both", forgetting_progress=[0.85, 0.9, 0.9, 0.95]),
        make_entry("a", "lora", "both", forgetting_progress=[0.95, 1.0, 1.0, 1.05]),
        make_entry("gold_reseeded", forgetting_progress=0.95, seeds=(1,)),
    ])


def test_leaderboard_order_rank_and_ties():
    records = leaderboard_rows(leaderboard_results())
    assert [(r["method"], r["rank"], r["tied_with"]) for r in records] == [
        ("a", 1, ""), ("b", 2, "c/lora/both"), ("c", 2, "b/lora/both"), ("d", 4, ""),
        ("e", None, ""), ("vanilla", None, ""), ("gold", None, ""), ("gold_reseeded", None, ""),
    ]
    d = records[3]
    assert (d["forgetting_progress"], d["forgetting_progress_low"],
            d["forgetting_progress_high"]) == pytest.approx((0.6, 0.5, 0.7))
    assert d["seeds"] == "0 1" and d["status"] == "ok"


def test_leaderboard_columns():
    records = leaderboard_rows(make_results())
    scores = [f"{n}{part}" for n in SCORE_NAMES for part in ("", "_low", "_high")]
    assert list(records[0]) == ["method", "variant", "modality", "forget_split", "lora", "l1",
                                "seeds", "status", *scores, "rank", "tied_with"]
    assert {len(r) for r in records} == {len(records[0])}
    dpo = next(r for r in records if r["method"] == "dpo")
    assert dpo["retain"] is None and dpo["status"] == "diverged at seed 0, 1"


# --- findings ----------------------------------------------------------------------------


def test_findings_on_the_constructed_run():
    found = by_claim(make_results())
    collapse = found[COLLAPSE_CLAIM]
    assert collapse.verdict == NOT_SEPARABLE
    assert "vanilla Retain 0.640 [0.600, 0.680]" in collapse.evidence
    assert "gd -0.010 [-0.010, -0.010] (holds)" in collapse.evidence  # paired, replicate-wise
    assert "kl +0.000 [-0.019, +0.019] (not separable at this size)" in collapse.evidence
    assert "95 % interval" in collapse.evidence
    utility = found[UTILITY_CLAIM]
    assert utility.verdict == DOES_NOT_HOLD
    assert "npo: Retain − 0.8 × vanilla Retain +0.038 [+0.026, +0.050] (holds), " \
           "P − 0.5 +0.200 [+0.104, +0.296] (does not hold) → does not hold" in utility.evidence
    assert "Excluded" not in utility.evidence
    modality = found[MODALITY_CLAIM]
    assert modality.verdict == HOLDS
    assert "ga -0.200 [-0.200, -0.200] (holds)" in modality.evidence
    assert "(of 3: 3 hold, 0 do not hold, 0 not separable)" in modality.evidence
    l1 = found[L1_CLAIM]
    assert l1.verdict == HOLDS
    assert "rmu/l1-lora/both: retain diverged at seed 0, 1" in l1.evidence
    assert "kl +0.000 [-0.019, +0.019] (not separable at this size)" in l1.evidence


def modified(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    results = make_results()
    change(results)
    return results


@pytest.mark.parametrize(("claim", "change", "verdict"), [
    (COLLAPSE_CLAIM, lambda r: set_score(r, "kl", "lora", "both", "retain", 0.05), HOLDS),
    (COLLAPSE_CLAIM, lambda r: set_score(r, "kl", "lora", "both", "retain", 0.6), DOES_NOT_HOLD),
    (COLLAPSE_CLAIM, lambda r: r["summary"].pop(0), NOT_MEASURED),  # no vanilla
    (UTILITY_CLAIM, lambda r: set_score(r, "npo", "lora", "both", "forgetting_progress", 0.2),
     HOLDS),
    (UTILITY_CLAIM, lambda r: set_score(r, "npo", "lora", "both", "forgetting_progress",
                                        [0.4, 0.45, 0.55, 0.6]), NOT_SEPARABLE),
    (UTILITY_CLAIM, lambda r: set_score(r, "npo", "lora", "both", "forgetting_progress", None),
     HOLDS),  # npo unmeasured: idk and scrub hold
    # idk: K(both) 0.75 − the replicate-wise min [0.70, 0.70, 0.90, 0.90] straddles 0 although
    # the point, 0.75 − min(0.85, 0.85), is −0.10; 2 of 3 hold is not more than two thirds.
    (MODALITY_CLAIM, lambda r: (
        set_score(r, "idk", "lora", "text", "forget_knowledge", [0.70, 0.90, 0.90, 0.90]),
        set_score(r, "idk", "lora", "visual", "forget_knowledge", [0.90, 0.70, 0.90, 0.90])),
     NOT_SEPARABLE),
    (MODALITY_CLAIM, lambda r: [set_score(r, m, "lora", "both", "forget_knowledge", 0.9)
                                for m in ("ga", "gd", "idk")], DOES_NOT_HOLD),
    (MODALITY_CLAIM, lambda r: r.update(summary=[e for e in r["summary"]
                                                 if e["modality"] in (None, "both")]),
     NOT_MEASURED),
    (L1_CLAIM, lambda r: set_score(r, "gd", "l1-lora", "both", "retain",
                                   [0.29, 0.30, 0.32, 0.33]), DOES_NOT_HOLD),
    (L1_CLAIM, lambda r: set_score(r, "gd", "l1-lora", "both", "retain",
                                   [0.28, 0.30, 0.34, 0.36]), NOT_SEPARABLE),
    (L1_CLAIM, lambda r: [set_score(r, m, "lora", "both", "retain", 0.6)
                          for m in ("ga", "gd", "rmu")], NOT_MEASURED),
    (L1_CLAIM, lambda r: r["summary"].pop(0), NOT_MEASURED),  # no vanilla
])
def test_each_verdict(claim: str, change: Callable[[dict[str, Any]], None], verdict: str):
    assert by_claim(modified(change))[claim].verdict == verdict


def test_findings_say_why_they_are_not_measured():
    results = make_results()
    results["summary"] = [e for e in results["summary"] if e["variant"] != "l1-lora"
                          and e["method"] not in ("idk", "scrub", "npo")]
    found = by_claim(results)
    assert found[UTILITY_CLAIM].verdict == NOT_MEASURED
    assert "Not run: idk, scrub, npo" in found[UTILITY_CLAIM].evidence
    assert found[L1_CLAIM].verdict == NOT_MEASURED
    assert "needs a LoRA variant with λ = 0 and one with λ > 0" in found[L1_CLAIM].evidence
    nothing = make_results()
    nothing["summary"] = []  # the split's vanilla or gold model had no evaluation
    assert {f.verdict for f in findings(nothing)} == {NOT_MEASURED}
    collapse = by_claim(modified(lambda r: r["summary"].pop(0)))[COLLAPSE_CLAIM]
    assert "Excluded: no vanilla model." in collapse.evidence


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
        records = list(csv.DictReader(f))
    assert len(records) == len(results["summary"])
    assert (records[0]["method"], records[0]["rank"]) == ("ga", "1")
    assert records[-1]["method"] == "gold_reseeded" and records[-1]["rank"] == ""
    dpo = next(r for r in records if r["method"] == "dpo")
    assert (dpo["retain"], dpo["retain_low"], dpo["rank"]) == ("", "", "")  # nulls are empty
    markdown = (run / "report.md").read_text()
    assert "unlearning seeds: 0, 1" in markdown
    assert "95 % interval (percentile bootstrap over persons and seeds; 4 replicates)" in markdown
    assert "## Paper findings (spec §6) on this run" in markdown
    assert "Each verdict comes from paired bootstrap tests" in markdown
    assert "## Leaderboard\n\nleaderboard.csv has one record per model" in markdown
    assert f"](plots/forget_retain_{SPLIT}.png)" in markdown
    assert "| dpo | – | – | – | – | – | – | 0 1 | diverged at seed 0, 1 |" in markdown
    assert markdown.count(f"| {NOISE_FLOOR} |") == 5  # main, authors', modality, ℓ1, cost
    page = (run / "report.html").read_text()
    assert 'id="main-table"' in page and page.count("data:image/png;base64,") == 3
    assert 'class="verdict not-separable-at-this-size"' in page
    assert not re.findall(r'(?:src|href)="(?!data:)', page)  # self-contained
    before = {p: p.read_bytes() for p in written}
    write_report(run)
    assert {p: p.read_bytes() for p in written} == before  # deterministic


def spread(value: float | None) -> dict[str, float | None]:
    return {"mean": value, "low": value, "high": value}


def with_audits(results: dict[str, Any]) -> dict[str, Any]:
    """The constructed run with robustness (as_is, crop) and relearn (forget_half, steps 0 and
    5) audits of the baselines, GA and NPO at the main variant, and their robust forgetting."""
    audited = {("vanilla", None, None): (0.0, 0.0), ("gold", None, None): (1.0, 1.0),
               ("ga", "lora", "both"): (1.1, 0.9), ("npo", "lora", "both"): (0.3, None)}
    for (method, variant, modality), (crop, relearned) in audited.items():
        entry = entry_of(results, method, variant, modality)
        headline = entry["scores"]["forgetting_progress"]["mean"]
        entry["robustness"] = {"seeds": [0], "conditions": {
            c: {"forget_knowledge": spread(0.4), "progress": spread(p)}
            for c, p in (("as_is", headline), ("crop", crop))}}
        entry["relearn"] = {"seeds": [0, 1], "attacks": {"forget_half": {
            "steps": [0, 5], "forget_knowledge": [spread(0.3), spread(0.5)],
            "progress": [spread(headline), spread(relearned)], "passed": [True, False]}}}
        audits = {"headline": headline, "robustness crop": crop,
                  "relearn forget_half": relearned}
        lowest = min((p, a) for a, p in audits.items() if p is not None)
        entry["robust_forgetting"] = {"progress": lowest[0], "audit": lowest[1],
                                      "audits": audits}
    return results


def test_robust_forgetting_beside_the_headline_and_the_audit_tables():
    results = with_audits(make_results())
    table = robust_table(results, SPLIT)
    assert table.columns == ("Method", "P (1 = gold)", "Robust P", "Lowest under",
                             "robustness crop", "relearn forget_half")
    assert [row[:4] for row in table.rows] == [
        ("vanilla", "0.000 [0.000, 0.000]", "0.000", "headline"),
        ("gold", "1.000 [1.000, 1.000]", "1.000", "headline"),
        ("ga", "1.250 [1.200, 1.300]", "0.900", "relearn forget_half"),
        ("npo", "0.700 [0.600, 0.800]", "0.300", "robustness crop")]
    assert table.rows[3][5] == "–"
    robustness = robustness_table(results, SPLIT)
    assert robustness.columns == ("Method", "K as_is", "K crop", "Seeds")
    assert robustness.rows[2] == ("ga", "0.400 [0.400, 0.400]", "0.400 [0.400, 0.400]", "0")
    relearn = relearn_table(results, SPLIT)
    assert relearn.rows[3] == ("npo", "0.300 / 0.500", "1 of 2", "0 1")
    assert robust_table(make_results(), SPLIT) is None
    records = {r["method"]: r for r in leaderboard_rows(results)}
    columns = list(records["npo"])
    at = columns.index("forgetting_progress_high")
    assert columns[at + 1: at + 3] == ["robust_forgetting", "robust_forgetting_audit"]
    assert (records["npo"]["robust_forgetting"], records["npo"]["robust_forgetting_audit"]) \
        == (0.3, "robustness crop")
    assert records["kl"]["robust_forgetting"] is None  # not audited


def test_the_report_shows_the_audits_and_the_heatmap(tmp_path: Path):
    run = write_run(tmp_path / "run", with_audits(make_results()))
    written = {p.relative_to(run).as_posix() for p in write_report(run)}
    assert f"plots/audits_{SPLIT}.png" in written
    markdown = (run / "report.md").read_text()
    main = markdown.index(f"**Main results, {SPLIT}")
    assert main < markdown.index(f"**Robust forgetting, {SPLIT}") < markdown.index(
        f"**Authors' convention, {SPLIT}")
    audits = markdown.index("## Audits: does the model really forget?")
    assert audits < markdown.index(f"**Audit: robustness, {SPLIT}") < markdown.index(
        f"**Audit: relearning attack, {SPLIT}")
    assert f"](plots/audits_{SPLIT}.png)" in markdown
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "Forgetting progress P of every audited model under every audit" in page


def test_terminal_summary(tmp_path: Path):
    text = terminal_summary(write_run(tmp_path / "run", make_results()))
    assert "**Main results, forget10" in text and f"| {NOISE_FLOOR} |" in text
    assert f"- {COLLAPSE_CLAIM}: {NOT_SEPARABLE}" in text
    assert f"- {L1_CLAIM}: {HOLDS}" in text


def test_a_failed_memorisation_gate_is_a_warning_in_every_summary(tmp_path: Path):
    results = make_results()
    results["rows"][0]["gate"] = {"passed": False,
                                  "failures": ["retain_qa fact_accuracy = 0.875 < 0.9"]}
    results["rows"][1]["gate"] = {"passed": True, "failures": []}
    run = write_run(tmp_path / "run", results)
    write_report(run)
    warning = (f"WARNING: the vanilla model ({SPLIT}, seed 0) failed its memorisation gate "
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
    write_run(tmp_path, {"schema": 1, "run": {}, "rows": []})
    with pytest.raises(ValueError, match=r"results\.json: schema 1, .* re-run the run .*"
                                         r"then `clearbench report RUN_DIR`"):
        write_report(tmp_path)
    results = make_results()
    del results["rows"][3]["status"]
    write_run(tmp_path, results)
    with pytest.raises(ValueError, match=r"results\.json: row 3 lacks 'status'"):
        write_report(tmp_path)
    results = make_results()
    del results["summary"][3]["scores"]["retain"]["low"]
    write_run(tmp_path, results)
    with pytest.raises(ValueError, match=r"summary entry 3 \(ga/lora/both\): "
                                         r"scores\['retain'\] must have"):
        write_report(tmp_path)
    results = make_results()
    results["summary"][4]["replicates"]["retain"].append(0.3)
    write_run(tmp_path, results)
    with pytest.raises(ValueError, match=r"replicates\['retain'\] has 5 values, other models "
                                         r"of the split have 4"):
        write_report(tmp_path)
    write_run(tmp_path, {"schema": 2, "run": {}, "rows": []})
    with pytest.raises(ValueError, match=r"results\.json: missing 'summary'"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(ValueError, match=r"results\.json is not valid JSON"):
        write_report(tmp_path)


# --- compare -----------------------------------------------------------------------------


def line_of(text: str, model: str, score: str) -> str:
    return next(line for line in text.splitlines()
                if line.startswith(f"{SPLIT} {model} ") and f" {score} " in line)


def test_compare_runs(tmp_path: Path):
    results = make_results()
    run_a = write_run(tmp_path / "a", results)
    assert compare_runs(run_a, write_run(tmp_path / "same", results)).endswith("no differences")
    changed = copy.deepcopy(results)
    # ga's Retain +0.1 on every replicate: Δ's interval [+0.1, +0.1] excludes 0.
    set_score(changed, "ga", "lora", "both", "retain", [0.13, 0.14, 0.16, 0.17])
    # kl's K +0.01 on average, replicate differences [−0.02, 0, 0.02, 0.04]: it includes 0.
    set_score(changed, "kl", "lora", "both", "forget_knowledge", [0.48, 0.50, 0.52, 0.54])
    set_score(changed, "idk", "lora", "both", "forgetting_progress", None)
    changed["summary"][10] = make_entry("dpo", "lora", "both")
    changed["summary"].pop()  # rmu l1-lora
    changed["rows"] = [row for entry in changed["summary"] for row in make_rows(entry)]
    text = compare_runs(run_a, write_run(tmp_path / "b", changed))
    assert re.search(r"retain\s+0\.05\s+0\.15\s+\+0\.1\s+\[\+0\.1, \+0\.1\]\s+yes$",
                     line_of(text, "ga/lora/both", "retain"))
    assert re.search(r"forget_knowledge\s+0\.5\s+0\.51\s+\+0\.01\s+\[-0\.0185, \+0\.0385\]\s+no$",
                     line_of(text, "kl/lora/both", "forget_knowledge"))
    assert "forget10 idk/lora/both forgetting_progress: 0.1 → NaN (diverged?)" in text
    assert "forget10 idk/lora/both seed 1 forgetting_progress: 0.1 → NaN (diverged?)" in text
    assert "forget10 dpo/lora/both: status diverged at seed 0, 1 → ok" in text
    assert "forget10 dpo/lora/both seed 0: status diverged → ok" in text
    assert "dpo/lora/both retain" not in text  # a changed status explains its scores
    assert "model only in A: forget10 rmu/l1-lora/both" in text
    assert "row only in A" not in text  # the model's line covers its rows
    assert "95 % CI of Δ" in text and "no differences" not in text
    assert "gd/" not in text  # unchanged models are not listed


def test_compare_a_score_nan_in_both_runs_is_no_difference(tmp_path: Path):
    results = make_results()
    set_score(results, "npo", "lora", "both", "forgetting_progress", None)
    text = compare_runs(write_run(tmp_path / "a", results), write_run(tmp_path / "b", results))
    assert text.endswith("no differences")


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
    assert methods == ["vanilla", "gold", NOISE_FLOOR, "ga", "gd", "kl", "rmu", "idk", "scrub",
                       "npo", "dpo"]
    check = re.search(r'<pre id="img-check">(\w+) (\d+)/(\d+)</pre>', dom)
    assert check is not None, "the image check did not run"
    status, loaded, total = check.group(1), int(check.group(2)), int(check.group(3))
    assert status == "ok" and loaded == total >= 3
