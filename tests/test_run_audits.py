"""The audits inside ``clearbench run`` (issue 20): the ``audit`` section, the audit stages of the
plan, the results' robustness, relearn and robust-forgetting blocks (on hand-made audit
files) and the worst-case score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from clearbench.config import ConfigError
from clearbench.evaluation.relearning import progress_against_gold
from clearbench.evaluation.worstcase import WorstCase, audit_progress, robust_forgetting
from clearbench.recipes.audit import AuditConfig
from clearbench.recipes.pipeline import plan
from clearbench.recipes.relearn import RelearnConfig
from clearbench.recipes.results import audit_files, row_audits, summarise_audits
from clearbench.recipes.robustness import RobustnessConfig
from clearbench.recipes.runconfig import RunAudits, embedded_config, load_run_config
from clearbench.recipes.runplan import ResultRow


def with_audit(tmp_path: Path, preset: str, section: str) -> Path:
    """The embedded ``preset`` config with its audit section replaced by ``section``."""
    text = embedded_config(preset).read_text()
    start = text.index("\naudit:\n")
    end = text.index("\n\n", start + 1)
    path = tmp_path / "run.yaml"
    path.write_text(text[:start] + "\n" + section.rstrip("\n") + text[end:])
    return path


# --- config ------------------------------------------------------------------------------


def test_the_audit_section_chooses_audits_scope_seeds_and_settings(tmp_path: Path) -> None:
    assert load_run_config(embedded_config("mini")).audit == RunAudits(
        audits=("membership", "relearn", "robustness", "precision"),
        first_seed_only=("relearn", "robustness", "precision"),
        settings={"membership": {"k": 0.2, "batch_size": 16, "replicates": 1000},
                  "relearn": {"relearn_steps": (5, 20, 50), "relearn_lr": 2e-3,
                              "relearn_batch_size": 16, "batch_size": 16, "replicates": 1000},
                  "robustness": {"samples": 5, "temperature": 1.0, "batch_size": 16},
                  "precision": {"batch_size": 16, "replicates": 1000}})
    path = with_audit(tmp_path, "smoke", "audit: {audits: [relearn, robustness], scope: all, "
                      "first_seed_only: [relearn], relearn_steps: [2, 1], relearn_lr: 1e-3, "
                      "samples: 2, temperature: 0.5, batch_size: 4}")
    audits = load_run_config(path).audit
    assert audits.audits == ("relearn", "robustness") and audits.scope == "all"
    assert audits.first_seed_only == ("relearn",)
    assert audits.settings == {
        "relearn": {"relearn_steps": (2, 1), "relearn_lr": 1e-3, "batch_size": 4},
        "robustness": {"samples": 2, "temperature": 0.5, "batch_size": 4}}
    assert audits.of_model(main=False, first_seed=True) == ("relearn", "robustness")
    assert audits.of_model(main=True, first_seed=False) == ("robustness",)
    main = RunAudits(audits=("membership",))
    assert main.of_model(main=False, first_seed=True) == ()
    full = load_run_config(embedded_config("full"))
    assert full.audit.audits == ("membership", "relearn", "robustness", "precision",
                                 "crossmodal")
    assert full.audit.scope == "all" and not full.audit.first_seed_only
    paper = load_run_config(embedded_config("paper-tables"))
    assert (full.variants, full.modality_study) == (paper.variants, paper.modality_study)


def test_every_audit_problem_is_one_line_naming_its_key(tmp_path: Path) -> None:
    path = with_audit(tmp_path, "smoke", "audit: {audits: [membership, recall], scope: most, "
                      "first_seed_only: relearn, relearn_steps: [], samples: 0, "
                      "temperature: -1, batch_size: 0, model: runs/m, vanilla: v}")
    with pytest.raises(ConfigError) as error:
        load_run_config(path)
    lines = str(error.value).splitlines()
    for key in ("audit.audits", "audit.scope", "audit.first_seed_only", "audit.relearn_steps",
                "audit.samples", "audit.temperature", "audit.batch_size"):
        assert sum(f"{key} = " in line for line in lines) == 1, key  # shared keys: once
    assert any("'recall'" in line for line in lines)
    assert any("audit.model = 'runs/m': set by the run" in line for line in lines)
    assert any("audit.vanilla = 'v': unknown key" in line for line in lines)
    assert all(line.startswith(f"run config {path}: ") for line in lines)


# --- plan --------------------------------------------------------------------------------


def audit_stages(config: Path, run_dir: Path) -> dict[str, object]:
    return {s.name: s for s in plan(load_run_config(config), run_dir).stages
            if s.kind == "audit"}


def test_the_plan_audits_the_scope_s_models_with_the_split_s_gold_and_vanilla(
    tmp_path: Path,
) -> None:
    section = ("audit: {audits: [membership, relearn, robustness], scope: %s, "
               "first_seed_only: [relearn]}")
    run = tmp_path / "run"
    main = audit_stages(with_audit(tmp_path, "paper-tables", section % "main"), run)
    config = load_run_config(with_audit(tmp_path, "paper-tables", section % "all"))
    the_plan = plan(config, run)
    every = {s.name: s for s in the_plan.stages if s.kind == "audit"}
    methods, seeds = len(config.methods), len(config.unlearning_seeds)
    # 3 baselines; per method: membership and robustness per seed, relearn at seed 0 only;
    # scope all: 4 variant-modality pairs instead of 1
    assert len(main) == 3 * 3 + methods * (2 * seeds + 1)
    assert len(every) == 3 * 3 + 4 * methods * (2 * seeds + 1)
    assert set(main) < set(every)
    relearn = every["audit relearn ga (l1-lora, both, forget10, seed 0)"]
    settings = relearn.args[0]
    assert isinstance(settings, RelearnConfig)
    model = run / "unlearn" / "forget10" / "both" / "ga-l1-lora" / "seed0"
    assert (settings.model, settings.gold, settings.vanilla) == (
        str(model), str(run / "gold-forget10"), str(run / "vanilla"))
    assert settings.out == model / "audit-forget10" and settings.max_new_tokens == 16
    assert relearn.needs == ("unlearn ga (l1-lora, both, forget10, seed 0)",
                             "fine-tune gold (forget10)", "fine-tune vanilla",
                             "audit relearn gold (forget10)")  # reuses gold's curves
    assert settings.gold_curves == run / "gold-forget10" / "audit-forget10" / "relearn.json"
    assert "audit relearn ga (lora, text, forget10, seed 1)" not in every  # first seed only
    robustness = every["audit robustness ga (lora, text, forget10, seed 1)"].args[0]
    assert isinstance(robustness, RobustnessConfig)
    assert robustness.vanilla is robustness.gold is None  # P from the baselines' own files
    membership = every["audit membership gold, reseeded (forget10)"].args[0]
    assert isinstance(membership, AuditConfig)
    assert membership.model == str(run / "gold-forget10-reseeded")
    assert membership.gold == str(run / "gold-forget10")
    assert set(every) <= set(the_plan.stages[-1].needs)  # the report waits for every audit
    rows = {(r.method, r.variant, r.modality, r.seed): r.audits for r in the_plan.rows
            if r.track == "multimodal"}
    assert rows["gold", None, None, 0] == ("membership", "relearn", "robustness")
    assert rows["ga", "lora", "visual", 1] == ("membership", "robustness")
    assert all(not r.audits for r in the_plan.rows if r.track == "text")


# --- the worst-case score ----------------------------------------------------------------


def test_robust_forgetting_is_the_lowest_p_and_names_its_audit() -> None:
    assert robust_forgetting({"headline": 0.9, "robustness crop": 0.4, "relearn retain": 0.7,
                              "int8": 0.4}) == WorstCase(0.4, "robustness crop")
    assert robust_forgetting({"headline": 1.2, "a": None, "b": math.nan}) == \
        WorstCase(1.2, "headline")
    assert robust_forgetting({"headline": None}) is None
    assert robust_forgetting({}) is None


def test_audit_progress_names_each_audit_and_takes_a_curve_s_lowest_step() -> None:
    progress = audit_progress(0.8, {"crop": 0.6, "sampled": None},
                              {"forget_half": [0.9, 0.3, 0.5], "retain": [None, None]})
    assert progress == {"headline": 0.8, "robustness crop": 0.6, "robustness sampled": None,
                        "relearn forget_half": 0.3, "relearn retain": None}
    assert robust_forgetting(progress) == WorstCase(0.3, "relearn forget_half")


def test_relearning_progress_is_against_gold_after_the_same_steps() -> None:
    assert progress_against_gold([0.5, 0.4], [0.2, 0.0], 0.8) == pytest.approx([0.5, 0.5])
    assert progress_against_gold([0.3, 0.1], [0.3, 0.1], 0.9) == [1.0, 1.0]  # gold itself
    assert progress_against_gold([0.3], [0.8], 0.8) == [None]  # vanilla and gold alike


# --- results -----------------------------------------------------------------------------

CONDITIONS = ("as_is", "crop", "held_out_wording")


def robustness_file(**k: float) -> dict:
    return {"audit": "robustness", "results": {c: {"forget_knowledge": k[c], "change": 0.0}
                                               for c in CONDITIONS}}


def relearn_file(k_model: dict[str, list[float]], k_gold: dict[str, list[float]],
                 passed: bool) -> dict:
    return {"audit": "relearn", "vanilla_knowledge": 0.9, "attacks": {
        attack: {"steps": [0, 1, 2], "knowledge": {"model": k_model[attack],
                                                   "gold": k_gold[attack]},
                 "gap": [{"mean": m - g, "low": m - g - 0.01, "high": m - g + 0.01}
                         for m, g in zip(k_model[attack], k_gold[attack], strict=True)],
                 "faster_than_gold": [False] * 3, "passed": passed}
        for attack in k_model}}


def audited_row(tmp_path: Path, method: str, seed: int, files: dict[str, dict]) -> ResultRow:
    folder = tmp_path / f"{method}-{seed}"
    (folder / "audit-forget10").mkdir(parents=True)
    names = {"relearn": "relearn.json", "robustness": "robustness.json"}
    for name, payload in files.items():
        (folder / "audit-forget10" / names[name]).write_text(json.dumps(payload))
    variant = None if method in ("vanilla", "gold") else "lora"
    return ResultRow(method, variant, variant and "both", "forget10", False, 0.0, seed,
                     folder / "unlearning.json", folder / "eval-forget10",
                     audits=("relearn", "robustness"))


def test_results_summarise_robustness_and_relearn_over_seeds(tmp_path: Path) -> None:
    gold_curve = {"forget_half": [0.2, 0.1, 0.1], "retain": [0.2, 0.2, 0.3]}
    plan_rows = [
        audited_row(tmp_path, "vanilla", 0, {"robustness": robustness_file(
            as_is=0.9, crop=0.8, held_out_wording=0.4)}),
        audited_row(tmp_path, "gold", 0, {"robustness": robustness_file(
            as_is=0.2, crop=0.2, held_out_wording=0.4)}),
        audited_row(tmp_path, "npo", 0, {
            "robustness": robustness_file(as_is=0.55, crop=0.5, held_out_wording=0.3),
            "relearn": relearn_file({"forget_half": [0.3, 0.55, 0.4],
                                     "retain": [0.3, 0.3, 0.4]}, gold_curve, False)}),
        audited_row(tmp_path, "npo", 1, {
            "robustness": robustness_file(as_is=0.45, crop=0.4, held_out_wording=0.3),
            "relearn": relearn_file({"forget_half": [0.3, 0.25, 0.2],
                                     "retain": [0.3, 0.4, 0.4]}, gold_curve, True)}),
        audited_row(tmp_path, "npo", 2, {}),  # diverged: no audit file
    ]
    files = [audit_files(row) for row in plan_rows]
    assert [sorted(f) for f in files] == [["robustness"]] * 2 + [["relearn", "robustness"]] * 2 \
        + [[]]
    references = {"vanilla": files[0]["robustness"], "gold": files[1]["robustness"]}
    rows = [{"method": r.method, "variant": r.variant, "modality": r.modality,
             "forget_split": "forget10", "seed": r.seed,
             "scores": {"forgetting_progress": 0.95}, **row_audits(f, references)}
            for r, f in zip(plan_rows, files, strict=True)]
    npo = rows[2]
    assert npo["robustness"]["crop"] == {"forget_knowledge": 0.5, "progress": 0.5}
    assert npo["robustness"]["held_out_wording"]["progress"] is None  # vanilla = gold there
    forget_half = npo["relearn"]["forget_half"]
    assert forget_half["steps"] == [0, 1, 2] and forget_half["passed"] is False
    assert forget_half["progress"] == pytest.approx([6 / 7, 0.35 / 0.8, 0.5 / 0.8])
    summary = [{"method": m, "variant": v, "modality": v and "both", "forget_split": "forget10",
                "scores": {"forgetting_progress": {"mean": p, "low": p, "high": p}}}
               for m, v, p in (("vanilla", None, 0.0), ("gold", None, 1.0),
                               ("npo", "lora", 0.6))]
    summarise_audits(load_run_config(embedded_config("smoke")), plan_rows, rows, files,
                     summary)
    # per seed: the row's lowest P (robustness' as_is is the headline's, left out)
    assert rows[2]["robust_forgetting"]["progress"] == pytest.approx(0.35 / 0.8)
    assert rows[2]["robust_forgetting"]["audit"] == "relearn forget_half"
    assert rows[3]["robust_forgetting"]["progress"] == pytest.approx(0.4 / 0.6, abs=1e-5)
    assert rows[3]["robust_forgetting"]["audit"] == "robustness crop"
    assert "robust_forgetting" not in rows[4]
    entry = summary[2]
    assert entry["robustness"]["seeds"] == [0, 1] and entry["relearn"]["seeds"] == [0, 1]
    crop = entry["robustness"]["conditions"]["crop"]
    assert crop["forget_knowledge"] == pytest.approx({"mean": 0.45, "low": 0.4, "high": 0.5})
    assert crop["progress"] == pytest.approx({"mean": 3.5 / 6, "low": 0.5, "high": 4 / 6},
                                             abs=1e-5)
    curve = entry["relearn"]["attacks"]["forget_half"]
    assert curve["passed"] == [False, True]
    assert [k["mean"] for k in curve["forget_knowledge"]] == pytest.approx([0.3, 0.4, 0.3])
    assert curve["forget_knowledge"][1]["low"] == 0.25 and \
        curve["forget_knowledge"][1]["high"] == 0.55
    worst = entry["robust_forgetting"]
    # the lowest of the means over the seeds: crop 0.583; forget_half's lowest step 0.625
    # (step 1: 0.4375 and 0.8125), retain's 0.786, the headline 0.6
    assert worst["audit"] == "robustness crop"
    assert worst["progress"] == pytest.approx(3.5 / 6, abs=1e-5)
    assert worst["audits"]["relearn forget_half"] == pytest.approx(0.625)
    assert worst["audits"]["relearn retain"] == pytest.approx((0.6 / 0.7 + 0.5 / 0.7) / 2)
    assert worst["audits"]["headline"] == 0.6
    assert set(worst["audits"]) == {"headline", "robustness crop",
                                    "robustness held_out_wording", "relearn forget_half",
                                    "relearn retain"}
    gold = summary[1]
    assert gold["robustness"]["conditions"]["crop"]["progress"]["mean"] == 1.0
    assert "relearn" not in gold  # gold's own relearn file was not written here
