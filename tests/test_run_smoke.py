"""``clearbench run --preset smoke`` end to end: every stage, the results, the report, and the
stage cache (nothing redone; a changed method setting redoes only what depends on it; an
interrupted stage is redone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearbench.cli import main
from clearbench.recipes.runconfig import embedded_config, load_run_config

METHODS = load_run_config(embedded_config("smoke")).methods


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    assert main(["run", "--preset", "smoke", "--out", str(run_dir)]) == 0
    return run_dir


def outputs(run_dir: Path) -> dict[str, int]:
    """Modification times of every stage's result files."""
    names = {"base.json", "training.json", "unlearning.json", "eval.json", "scores.json",
             "results.json", "report.html"}
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns
            for p in run_dir.rglob("*") if p.name in names}


def test_results_hold_every_model_and_seed_of_the_run(smoke_run: Path) -> None:
    results = json.loads((smoke_run / "results.json").read_text())
    config = load_run_config(embedded_config("smoke"))
    seeds = config.unlearning_seeds
    assert results["schema"] == 2 and results["run"]["seeds"] == seeds == [0, 1]
    rows, summary = results["rows"], results["summary"]
    # per method: lora, l1-lora, lora-tuned (both modalities), lora on text, lora on visual
    assert len(rows) == 3 + 5 * len(METHODS) * len(seeds)
    assert len(summary) == 3 + 5 * len(METHODS)
    keys = {(r["method"], r["variant"], r["modality"], r["seed"]) for r in rows}
    assert {("vanilla", None, None, 0), ("gold", None, None, 0),
            ("gold_reseeded", None, None, 1)} <= keys
    for method in METHODS:
        for seed in seeds:
            assert {(method, "lora", "both", seed), (method, "l1-lora", "both", seed),
                    (method, "lora-tuned", "both", seed), (method, "lora", "text", seed),
                    (method, "lora", "visual", seed)} <= keys
    # the tuning protocol's choices, one per method, each from its two-point grid
    tuning = results["tuning"]
    assert tuning["tuned_variant"] == "lora-tuned"
    assert [s["method"] for s in tuning["selections"]] == list(METHODS)
    for selection in tuning["selections"]:
        assert [p["label"] for p in selection["grid"]] == ["lr×1", "lr×2"]
        assert selection["chosen"] in ("lr×1", "lr×2") and selection["split"] == "forget_val"
        assert selection["cost"]["runs"] == 2 and selection["cost"]["seconds"] > 0
    assert "forget_val" not in {r["forget_split"] for r in rows}
    # audits: every model of the main table (and the tuned runs), not the studies; relearning,
    # robustness, precision and the cross-modal matrix of the methods at the first seed only,
    # the matrix of the main variant's methods only
    main = {(m, v, "both") for m in METHODS for v in ("lora", "lora-tuned")} | {
        ("vanilla", None, None), ("gold", None, None), ("gold_reseeded", None, None)}
    for block, audited_seeds in (("audit", seeds), ("qa_audit", seeds), ("relearn", [0]),
                                 ("robustness", [0]), ("precision", [0])):
        assert {(r["method"], r["variant"], r["modality"]) for r in rows if block in r} == main
        assert sorted({r["seed"] for r in rows if block in r and r["method"] in METHODS}) == \
            audited_seeds
    assert {(r["method"], r["variant"], r["modality"], r["seed"]) for r in rows
            if "crossmodal" in r} == {(m, "lora", "both", 0) for m in METHODS}
    for row in rows:  # packagings ran on the adapters the audited LoRA runs saved
        if "precision" in row and row["method"] in METHODS and row["status"] == "ok":
            assert "progress" in row["precision"]["merged_bf16"], row["method"]
    gold_entry = next(e for e in summary if e["method"] == "gold")
    # gold is every P-based audit's reference: P 1 under each (relearning: against gold after
    # the same steps, which is itself)
    assert gold_entry["robust_forgetting"]["progress"] == 1.0
    assert all(p in (1.0, None) for p in gold_entry["robust_forgetting"]["audits"].values())
    for curve in gold_entry["relearn"]["attacks"].values():
        assert [p["mean"] for p in curve["progress"]] == [1.0] * len(curve["steps"])
        assert curve["steps"] == [0, 1, 2] and curve["passed"] == [True]
    assert all("robust_forgetting" in e for e in summary
               if (e["method"], e["variant"], e["modality"]) in main and e["status"] == "ok")
    for block in ("audit", "qa_audit"):  # captions and QA answers
        gold_audit = gold_entry[block]
        assert set(gold_audit) == {"loss", "zlib", "min_k", "min_k_plus_plus", "reference"}
        for attack in gold_audit.values():  # gold is the reference: PrivLeak 0 (None: AUC 0)
            assert attack["auc_model"] == attack["auc_gold"]
            assert attack["privleak"]["mean"] in (0.0, None)
    for row in rows:
        assert set(row) >= {"method", "modality", "forget_split", "lora", "l1", "seed",
                            "status", "scores", "cost"}
        assert row["status"] in ("ok", "diverged")
        if row["status"] == "ok":
            assert set(row["scores"]) >= {"forget_quality", "forget_knowledge",
                                          "forgetting_progress", "model_utility", "real",
                                          "retain", "authors_forget", "authors_forget_quality"}
            assert 0.0 <= row["scores"]["forget_quality"] <= 1.0
    gold = next(r for r in rows if r["method"] == "gold")
    assert gold["scores"]["forget_quality"] == 1.0  # gold against itself
    assert gold["scores"]["forgetting_progress"] == 1.0
    vanilla = next(r for r in rows if r["method"] == "vanilla")
    assert vanilla["scores"]["forgetting_progress"] == 0.0
    for entry in summary:
        ok = [r for r in rows if (r["method"], r["variant"], r["modality"]) ==
              (entry["method"], entry["variant"], entry["modality"]) and r["status"] == "ok"]
        if not ok:
            continue
        for name in ("forget_knowledge", "retain", "forget_quality"):
            score = entry["scores"][name]
            assert score["low"] <= score["mean"] <= score["high"], (entry["method"], name)
            assert score["mean"] == pytest.approx(
                sum(r["scores"][name] for r in ok) / len(ok), rel=1e-5, abs=1e-9)
            assert len(entry["replicates"][name]) == results["run"]["intervals"]["replicates"]
    # Fine-tuned models carry their memorisation gate verdict; unlearned models have none.
    for row in rows:
        fine_tuned = row["method"] in ("vanilla", "gold", "gold_reseeded")
        assert (isinstance(row["gate"]["passed"], bool) if fine_tuned else row["gate"] is None)
    l1_rows = [r for r in rows if r["variant"] == "l1-lora"]
    assert all(r["lora"] and r["l1"] == 1e-4 for r in l1_rows)
    assert all(r["cost"]["optimiser_steps"] > 0 for r in rows if r["method"] in METHODS)
    for name in ("report.html", "report.md", "leaderboard.csv", "timing.json"):
        assert (smoke_run / name).is_file(), name
    report = (smoke_run / "report.md").read_text()
    assert "gold (reseeded)" in report and "Audit: privacy leakage (MUSE PrivLeak)" in report
    for title in ("Robust forgetting, forget10", "Audit: robustness, forget10",
                  "Audit: relearning attack, forget10", "](plots/audits_forget10.png)",
                  "Audit: precision and packaging, forget10",
                  "Audit: cross-modal leakage, forget10"):
        assert title in report, title
    leaderboard = (smoke_run / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "robust_forgetting" in leaderboard and "robust_forgetting_audit" in leaderboard


def test_the_text_only_track_has_its_own_rows_and_summary(smoke_run: Path) -> None:
    results = json.loads((smoke_run / "results.json").read_text())
    config = load_run_config(embedded_config("smoke"))
    text = results["text"]
    assert text["main_variant"] == "lora" and text["forget_split"] == "forget10"
    rows, summary = text["rows"], text["summary"]
    assert len(rows) == 3 + len(config.text.methods) * 2 and len(summary) == 3 + 3
    assert {(r["method"], r["modality"]) for r in rows} == {
        ("vanilla", None), ("gold", None), ("gold_reseeded", None),
        *((m, "text") for m in config.text.methods)}
    for row in rows:
        assert row["model"].startswith("text/")
        assert set(row["tasks"]) == {"forget_qa", "retain_qa", "real_authors", "world_facts"}
    gold = next(r for r in rows if r["method"] == "gold")
    assert gold["scores"]["forgetting_progress"] == 1.0
    assert gold["scores"]["forget_quality_qa"] == 1.0  # gold against itself
    assert "forget_quality" not in gold["scores"]  # no captions in the text track
    for entry in summary:
        score = entry["scores"]["model_utility"]
        assert score["low"] <= score["mean"] <= score["high"]
    # the multimodal rows hold no text-track model
    assert not any(r["model"].startswith("text/") for r in results["rows"])


def test_rerun_redoes_nothing(smoke_run: Path, capsys) -> None:
    before = outputs(smoke_run)
    assert main(["run", "--preset", "smoke", "--out", str(smoke_run)]) == 0
    assert outputs(smoke_run) == before
    assert "up to date" in capsys.readouterr().out


def test_interrupted_stage_is_redone(smoke_run: Path) -> None:
    marker = smoke_run / "unlearn" / "forget10" / "text" / "ga-lora" / "seed1" / "unlearning.json"
    marker.unlink()  # as if killed before the stage finished
    before = outputs(smoke_run)
    assert main(["run", "--preset", "smoke", "--out", str(smoke_run)]) == 0
    after = outputs(smoke_run)
    changed = {name for name in after if after[name] != before.get(name)}
    assert {"unlearn/forget10/text/ga-lora/seed1/unlearning.json",
            "unlearn/forget10/text/ga-lora/seed1/eval-forget10/eval.json"} <= changed
    assert all(name.startswith("unlearn/forget10/text/ga-lora/seed1/")
               or name in ("results.json", "report.html") for name in changed)


def test_changed_method_setting_redoes_only_that_method(smoke_run: Path, tmp_path: Path) -> None:
    config = tmp_path / "smoke-npo.yaml"
    text = embedded_config("smoke").read_text()
    config.write_text(text.replace("  modality_study: [text, visual]\n",
                                   "  modality_study: [text, visual]\n"
                                   "  options: {npo: {beta: 0.5}}\n"))
    before = outputs(smoke_run)
    assert main(["run", "--config", str(config), "--out", str(smoke_run)]) == 0
    after = outputs(smoke_run)
    changed = {name for name in after if after[name] != before.get(name)}
    # unlearn/SPLIT/MODALITY/METHOD-VARIANT/..., tune/SPLIT/METHOD-VARIANT/POINT/... and
    # text/unlearn/SPLIT/METHOD-VARIANT/... (the text-only track)
    where = {"unlearn/": 3, "tune/": 2, "text/unlearn/": 3}
    unlearned = {name.split("/")[index].split("-")[0]
                 for name in changed for prefix, index in where.items()
                 if name.startswith(prefix)}
    assert unlearned == {"npo"}  # its test runs, its grid and its text-only runs
    # lora, l1-lora, lora-tuned, text, visual × 2 seeds, the grid's 2 points, text-only × 2
    assert sum(name.endswith("unlearning.json") for name in changed) == 5 * 2 + 2 + 2
    assert not any(name.startswith(("vanilla/", "gold-", "base/", "text/vanilla/",
                                    "text/gold-", "text/base/")) for name in changed)
    assert "results.json" in changed


def test_dry_run_sizes_a_local_model_and_data_folder(smoke_run: Path, tmp_path: Path,
                                                      capsys) -> None:
    config = tmp_path / "local.yaml"
    config.write_text(f"data: {{source: {smoke_run / 'data'}}}\n"
                      f"model: {smoke_run / 'base'}\nunlearn: {{methods: [ga]}}\n")
    assert main(["run", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "15 persons, 30 images, 4 QA per person" in out  # 2 facts in 2 wordings each
    base = json.loads((smoke_run / "base" / "base.json").read_text())
    assert f"{base['parameters'] / 1e6:,.1f} M parameters" in out
