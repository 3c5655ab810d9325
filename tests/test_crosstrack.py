"""The text-only table and the cross-track rankings on hand-made results: Spearman's ρ and its
paired-replicate interval, the vision track's P, the tables and their place in the report.

The fixture's P per track (ρ by hand, 1 − 6 Σd² / (n (n² − 1))):
multimodal ga 1.2, rmu 0.9, dpo 0.5, npo 0.3, scrub 0.1; text ga 1.0, rmu 0.8, npo 0.6,
scrub 0.3, dpo 0.2 → ρ = 1 − 6·6/120 = 0.7; vision (a_vanilla 0.9, a_gold 0.1) ga 1.0,
twins 0.875, scrub 0.75, rmu 0.5, dpo 0.25 → vision → multimodal over ga, rmu, dpo, scrub:
1 − 6·6/60 = 0.4; text → vision: 1 − 6·2/60 = 0.8.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from clearbench.report import terminal_summary, write_report
from clearbench.report.crosstrack import (
    Track,
    compare,
    cv_progress,
    ranks,
    spearman,
    tracks,
)
from clearbench.report.results import Series
from clearbench.report.tables import crosstrack_tables, leaderboard_rows, main_table, text_table
from test_report import SPLIT, N, make_entry, make_results, results_of, write_run

MULTIMODAL_P = {"ga": 1.2, "rmu": 0.9, "dpo": 0.5, "npo": 0.3, "scrub": 0.1}
TEXT_P = {"ga": 1.0, "rmu": 0.8, "npo": 0.6, "scrub": 0.3, "dpo": 0.2}
CV_ACCURACY = {"vanilla": 0.9, "gold": 0.1, "neggrad": 0.1, "twins": 0.2, "scrub": 0.3,
               "rmu": 0.5, "dpo": 0.7}
NOISE_FLOOR = "gold (reseeded) — noise floor"


def baselines() -> list[dict[str, Any]]:
    return [make_entry("vanilla", forgetting_progress=0.0, seeds=(0,)),
            make_entry("gold", forgetting_progress=1.0, seeds=(0,)),
            make_entry("gold_reseeded", forgetting_progress=0.95, seeds=(1,))]


def cv_row(method: str, accuracy: float, replicas: list[float] | None = None) -> dict[str, Any]:
    return {"method": method, "status": "ok", "forget_accuracy": accuracy,
            "replicas": {"forget_accuracy": replicas or [accuracy, accuracy]}}


def crosstrack_results(*, text: bool = True, cv: bool = True) -> dict[str, Any]:
    """Multimodal results with the text-only block and the vision-only track (either left out
    on request); every P has equal replicates."""
    results = results_of([*baselines(), *(make_entry(m, "lora", "both", forgetting_progress=p)
                                           for m, p in MULTIMODAL_P.items())])
    if text:
        summary = [*baselines(), *(make_entry(m, "lora", "text", forgetting_progress=p)
                                   for m, p in TEXT_P.items())]
        summary[0]["scores"]["forget_quality_qa"] = {"mean": 7.7e-4, "low": 1.2e-6,
                                                     "high": 0.031}
        results["text"] = {"model": "hub/tofu-text", "main_variant": "lora",
                           "forget_split": SPLIT, "rows": [], "summary": summary}
    if cv:
        results["cv"] = {"settings": {"forget_split": SPLIT, "network": "tiny", "shadows": 1},
                         "rows": [*(cv_row(m, a) for m, a in CV_ACCURACY.items()),
                                  {"method": "sparsity", "status": "diverged"}]}
    return results


def track(name: str, points: dict[str, float], draws: list[list[float | None]] | None = None
          ) -> Track:
    """A track whose method m has P ``points[m]`` and replicates ``draws[i]`` (default: the
    point 4 times)."""
    return Track(name, name, {m: Series(p, tuple(draws[i]) if draws else (p,) * N)
                              for i, (m, p) in enumerate(points.items())})


# --- Spearman's ρ ------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [
    ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]),  # Σd² = 4: 1 − 24/120 = 0.8
    ([0.1, 0.5, 0.5, 0.9], [1, 3, 2, 4]),  # a tie: average ranks
    ([3, 1, 2, 2, 5, 4], [0.2, 0.1, 0.3, 0.3, 0.9, 0.0]),  # ties in both
])
def test_spearman_matches_scipy(a: list[float], b: list[float]):
    assert spearman(np.array(a), np.array(b)) == pytest.approx(spearmanr(a, b).statistic)


def test_spearman_by_hand():
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1)
    assert spearman(np.array([1, 2, 3, 4, 5]), np.array([2, 1, 4, 3, 5])) == pytest.approx(0.8)
    assert np.isnan(spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))  # no ranking
    rows = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [1, 3, 2, 4]]), np.array([[1, 2, 3, 4]] * 3)
    assert spearman(*rows) == pytest.approx([1, -1, 0.8])  # row by row


def test_ranks_highest_p_first_ties_averaged():
    assert ranks({"a": 0.1, "b": 0.5, "c": 1.2, "d": 0.5}) == {"a": 4, "b": 2.5, "c": 1, "d": 2.5}


# --- the interval of ρ -------------------------------------------------------------------


def test_identical_replicates_give_a_degenerate_interval_at_the_point():
    found = compare(track("text", TEXT_P), track("multimodal", MULTIMODAL_P), 0.95)
    assert found.rho.mean == pytest.approx(0.7)
    assert (found.rho.low, found.rho.high) == pytest.approx((0.7, 0.7))
    assert (found.kept, found.draws) == (N, N)
    assert found.compared == ("ga", "rmu", "npo", "scrub", "dpo") and found.left_out == ()


def test_interval_from_hand_made_replicates():
    """x's replicates b = 0…3 against y's fixed order (4, 3, 2, 1): (4, 3, 2, 1) ρ = 1,
    (1, 2, 3, 4) ρ = −1, (4, 2, 3, 1) Σd² = 2, ρ = 0.8, (1, 4, 3, 2) Σd² = 12, ρ = −0.2;
    replicate 4 has no value for c and replicate 5 ranks every method alike: both dropped."""
    y = track("y", {"a": 4, "b": 3, "c": 2, "d": 1}, [[p] * 6 for p in (4, 3, 2, 1)])
    x = track("x", {"a": 4, "b": 3, "c": 2, "d": 1}, [
        [4, 1, 4, 1, 4, 1], [3, 2, 2, 4, 3, 1], [2, 3, 3, 3, None, 1], [1, 4, 1, 2, 1, 1]])
    found = compare(x, y, 0.95)
    rho = [1, -1, 0.8, -0.2]
    assert (found.kept, found.draws) == (4, 6)
    low, high = np.percentile(rho, [2.5, 97.5])
    assert (found.rho.mean, found.rho.low, found.rho.high) == pytest.approx((1, low, high))


def test_fewer_than_three_shared_methods_have_no_rho():
    found = compare(track("x", {"a": 1.0, "b": 0.5, "c": 0.2}),
                    track("y", {"a": 0.9, "b": 0.1, "z": 0.3}), 0.95)
    assert found.rho.mean is None and found.compared == ("a", "b")
    assert found.left_out == ("c", "z")


# --- the vision track's P ----------------------------------------------------------------


def test_cv_progress_maps_neggrad_to_ga():
    rows = [cv_row(m, a) for m, a in CV_ACCURACY.items()]
    found = cv_progress([*rows, {"method": "sparsity", "status": "diverged"}], draws=5)
    assert list(found) == ["ga", "twins", "scrub", "rmu", "dpo"]
    assert {m: s.point for m, s in found.items()} == pytest.approx(
        {"ga": 1.0, "twins": 0.875, "scrub": 0.75, "rmu": 0.5, "dpo": 0.25})
    assert found["scrub"].replicates == pytest.approx((0.75,) * 5)
    assert cv_progress(rows[1:], draws=5) == {}  # no vanilla
    tie = [cv_row("vanilla", 0.5), cv_row("gold", 0.5), cv_row("rmu", 0.3)]
    assert cv_progress(tie, draws=5) == {}  # vanilla and gold tie: no P


def test_cv_replicates_resample_the_replicas_paired():
    """The method and gold are vanilla shifted by 0.4 and 0.8 in every replica: drawing the
    same replicas for all three gives P = 0.5 in every replicate; the draws are seeded."""
    rows = [cv_row("vanilla", 0.9, [0.8, 0.9, 1.0]), cv_row("gold", 0.1, [0.0, 0.1, 0.2]),
            cv_row("rmu", 0.5, [0.4, 0.5, 0.6]), cv_row("dpo", 0.5, [0.6, 0.5, 0.4])]
    found = cv_progress(rows, draws=200)
    assert found["rmu"].replicates == pytest.approx((0.5,) * 200)
    dpo = np.array(found["dpo"].replicates)
    assert dpo.std() > 0 and dpo.min() >= 0.25 and dpo.max() <= 0.75
    assert cv_progress(rows, draws=200) == found
    unequal = [*rows[:2], cv_row("rmu", 0.5, [0.5])]  # replicas do not pair up: the point only
    assert cv_progress(unequal, draws=4)["rmu"] == Series(0.5, ())


# --- tables ------------------------------------------------------------------------------


def test_text_table_like_the_main_table():
    results = crosstrack_results()
    table = text_table(results)
    assert table is not None
    assert table.title == f"Text-only track, {SPLIT} (model hub/tofu-text, variant lora)"
    assert table.columns == main_table(results, SPLIT).columns
    assert [row[0] for row in table.rows] == ["vanilla", "gold", NOISE_FLOOR, *TEXT_P]
    assert table.rows[0][6] == "7.7e-4 [1.2e-6, 0.031]"  # FQ: the QA forget quality
    assert table.rows[3][2] == "1.000 [1.000, 1.000]" and table.rows[3][-2:] == ("0 1", "ok")
    assert "TOFU's model utility" in (table.note or "")
    assert text_table(crosstrack_results(text=False)) is None


def test_crosstrack_tables_with_all_three_tracks():
    tables = crosstrack_tables(crosstrack_results())
    assert tables is not None
    progress, rho = tables
    assert progress.columns == ("Method", "P (multimodal)", "Rank (multimodal)", "P (text)",
                                "Rank (text)", "P (vision)", "Rank (vision)")
    cells = {row[0]: row[1:] for row in progress.rows}
    assert list(cells) == [*MULTIMODAL_P, "twins"]
    assert cells["ga"] == ("1.200 [1.200, 1.200]", "1", "1.000 [1.000, 1.000]", "1",
                           "1.000 [1.000, 1.000]", "1")
    assert cells["npo"][4:] == ("–", "–") and cells["twins"][:4] == ("–",) * 4
    assert cells["twins"][5] == "2"
    assert (progress.note or "").endswith(
        " vision has no P (diverged, or vanilla and gold tie) for sparsity.")
    assert rho.rows == (
        ("text → multimodal", "0.700 [0.700, 0.700]", "5: ga, rmu, npo, scrub, dpo", "0.7"),
        ("vision → multimodal", "0.400 [0.400, 0.400]", "4: ga, scrub, rmu, dpo", "0.2"),
        ("text → vision", "0.800 [0.800, 0.800]", "4: ga, rmu, scrub, dpo", "–"),
    )
    note = rho.note or ""
    assert "text → multimodal 4 of 4" in note
    assert "vision → multimodal: twins (vision only), npo (multimodal only)" in note


def test_crosstrack_tables_show_the_pairs_the_tracks_allow():
    no_cv = crosstrack_tables(crosstrack_results(cv=False))
    assert no_cv is not None and [row[0] for row in no_cv[1].rows] == ["text → multimodal"]
    assert "neggrad" not in (no_cv[0].note or "")  # the vision sentence only with the track
    no_text = crosstrack_tables(crosstrack_results(text=False))
    assert no_text is not None and [row[0] for row in no_text[1].rows] == [
        "vision → multimodal"]
    assert no_text[0].columns[-1] == "Rank (vision)" and "P (text)" not in no_text[0].columns
    assert crosstrack_tables(crosstrack_results(text=False, cv=False)) is None
    vision_only = crosstrack_results(text=False)
    vision_only["summary"] = vision_only["summary"][:3]  # a run of the vision track alone
    assert list(tracks(vision_only)) == ["vision"] and crosstrack_tables(vision_only) is None


def test_a_method_without_p_is_named_not_ranked():
    results = crosstrack_results(cv=False)
    results["summary"][-1] = make_entry("scrub", "lora", "both", forgetting_progress=None)
    found = tracks(results)["multimodal"]
    assert "scrub" not in found.progress and found.unscored == ("scrub",)
    tables = crosstrack_tables(results)
    assert tables is not None
    assert "multimodal has no P (diverged, or vanilla and gold tie) for scrub." in (
        tables[0].note or "")
    assert tables[1].rows[0][2] == "4: ga, rmu, npo, dpo"


def test_a_missing_replicate_is_dropped_and_counted():
    results = crosstrack_results(cv=False)
    entry = next(e for e in results["text"]["summary"] if e["method"] == "rmu")
    entry["replicates"]["forgetting_progress"][2] = None
    tables = crosstrack_tables(results)
    assert tables is not None and "text → multimodal 3 of 4" in (tables[1].note or "")
    assert tracks(results)["text"].progress["rmu"].replicates[2] is None


def test_multimodal_tables_ignore_the_text_block():
    plain = make_results()
    with_text = copy.deepcopy(plain)
    with_text["text"] = crosstrack_results(cv=False)["text"]
    assert leaderboard_rows(with_text) == leaderboard_rows(plain)
    assert main_table(with_text, SPLIT) == main_table(plain, SPLIT)


# --- validation and the report -----------------------------------------------------------


@pytest.mark.parametrize(("text", "error"), [
    ([], r"results\.json: 'text' must be an object with 'summary' and 'rows' lists"),
    ({"summary": []}, r"results\.json: 'text' must be an object with 'summary' and 'rows'"),
    ({"summary": [{"method": "ga"}], "rows": []},
     r"results\.json: text: summary entry 0 lacks 'status'"),
])
def test_a_malformed_text_block_names_the_file_and_key(tmp_path: Path, text: Any, error: str):
    results = crosstrack_results()
    results["text"] = text
    with pytest.raises(ValueError, match=error):
        write_report(write_run(tmp_path / "run", results))


def test_the_report_shows_both_sections(tmp_path: Path):
    run = write_run(tmp_path / "run", crosstrack_results())
    write_report(run)
    markdown = (run / "report.md").read_text()
    assert "## Text-only track\n\n**Text-only track, forget10" in markdown
    assert "## Cross-track rankings\n\n**Forgetting progress P and rank per track**" in markdown
    assert "| text → multimodal | 0.700 [0.700, 0.700] | 5: ga, rmu, npo, scrub, dpo | 0.7 |" \
        in markdown
    assert markdown.index("## Text-only track") < markdown.index("## Vision-only track") \
        < markdown.index("## Cross-track rankings") < markdown.index("## Leaderboard")
    page = (run / "report.html").read_text()
    assert all(f'id="{i}"' in page for i in ("text-table", "crosstrack-table", "spearman-table"))
    summary = terminal_summary(run)
    assert "**Text-only track" in summary and "**Spearman's ρ between" in summary
    plain = write_run(tmp_path / "plain", make_results())
    write_report(plain)
    markdown = (plain / "report.md").read_text()
    assert "Text-only track" not in markdown and "Cross-track" not in markdown
