"""The precision and cross-modal audits inside ``clearbench run`` (issue 20, items 3 and 5): the
``audit`` section's new choices, their stages (adapters saved for the packagings, the modality
study's models for the matrix), their results and robust-forgetting entries on hand-made audit
files, their report tables, and the relearning audit reusing gold's curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from clearbench.config import ConfigError
from clearbench.data.loading import DataSource
from clearbench.data.synth import synthesize
from clearbench.models.loading import load_vlm
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes import pipeline
from clearbench.recipes import precision as precision_recipe
from clearbench.recipes import relearn as relearn_recipe
from clearbench.recipes.base import corpus
from clearbench.recipes.crossmodal import CrossModalConfig
from clearbench.recipes.pipeline import plan
from clearbench.recipes.precision import PrecisionConfig, run_precision
from clearbench.recipes.relearn import RelearnConfig, run_relearn
from clearbench.recipes.results import AUDIT_FILES, audit_files, row_audits, summarise_audits
from clearbench.recipes.runconfig import embedded_config, load_run_config
from clearbench.recipes.runplan import ResultRow
from clearbench.report.tables import (
    crossmodal_table,
    precision_table,
    robust_table,
    skipped_by_reason,
)
from conftest import TINY
from test_run_audits import with_audit

EVERY = "[membership, relearn, robustness, precision, crossmodal]"


# --- config ------------------------------------------------------------------------------


def test_precision_and_crossmodal_are_audits_of_the_section(tmp_path: Path) -> None:
    audits = load_run_config(with_audit(
        tmp_path, "smoke", f"audit: {{audits: {EVERY}, first_seed_only: [precision, "
        "crossmodal], replicates: 50, batch_size: 4}")).audit
    assert audits.audits[-2:] == ("precision", "crossmodal")
    assert audits.first_seed_only == ("precision", "crossmodal")
    assert audits.settings["precision"] == {"batch_size": 4, "replicates": 50}
    assert audits.settings["crossmodal"] == {"batch_size": 4, "replicates": 50}


def test_crossmodal_without_the_modality_study_is_refused_naming_the_keys(
    tmp_path: Path,
) -> None:
    path = with_audit(tmp_path, "mini", "audit: {audits: [membership, crossmodal]}")
    with pytest.raises(ConfigError) as error:
        load_run_config(path)
    lines = [line for line in str(error.value).splitlines() if "audit.audits" in line]
    assert len(lines) == 1 and "unlearn.modality_study" in lines[0] and "[]" in lines[0]
    load_run_config(with_audit(tmp_path, "mini", "audit: {audits: [membership, precision]}"))


# --- plan --------------------------------------------------------------------------------


def smoke_plan(tmp_path: Path, section: str):
    return plan(load_run_config(with_audit(tmp_path, "smoke", section)), tmp_path / "run")


def test_precision_stages_save_the_adapters_of_the_audited_lora_runs_only(
    tmp_path: Path,
) -> None:
    the_plan = smoke_plan(tmp_path, "audit: {audits: [membership, precision], "
                                    "first_seed_only: [precision]}")
    stages = {s.name: s for s in the_plan.stages}
    run = tmp_path / "run"
    gold = stages["audit precision gold (forget10)"].args[0]
    assert isinstance(gold, PrecisionConfig)
    assert (gold.model, gold.gold, gold.vanilla) == (str(run / "gold-forget10"),) * 2 + (
        str(run / "vanilla"),)
    assert gold.out == run / "gold-forget10" / "audit-forget10"
    assert gold.max_new_tokens == 8  # the evaluation's generation length
    assert gold.references is None
    vanilla = stages["audit precision vanilla (forget10)"]
    assert vanilla.args[0].references == gold.out / "precision.json"  # gold's are reused
    assert "audit precision gold (forget10)" in vanilla.needs
    saved = {s.name for s in the_plan.stages if s.kind == "unlearn" and s.args[0].save_adapter}
    # the main variant's and the tuned runs' both-modality models at the first seed: audited
    assert saved == {f"unlearn {m} ({v}, both, forget10, seed 0)"
                     for m in the_plan.config.methods for v in ("lora", "lora-tuned")}
    assert "audit precision ga (lora, both, forget10, seed 1)" not in stages  # first seed only
    assert "audit precision ga (l1-lora, both, forget10, seed 0)" not in stages  # scope main
    assert "audit membership ga (lora, both, forget10, seed 1)" in stages
    # without the precision audit no stage saves an adapter: the unlearning identities stay
    plain = smoke_plan(tmp_path, "audit: {audits: [membership]}")
    assert not any(s.args[0].save_adapter for s in plain.stages if s.kind == "unlearn")
    every = smoke_plan(tmp_path, "audit: {audits: [precision], scope: all}")
    assert "audit precision ga (l1-lora, both, forget10, seed 1)" in {
        s.name for s in every.stages}
    runs = {s.name: s.args[0].save_adapter for s in every.stages
            if s.name.startswith("unlearn ")}  # not the tuning grid
    assert all(saved for name, saved in runs.items() if "text-only" not in name)  # all LoRA
    assert not any(saved for name, saved in runs.items() if "text-only" in name)  # no audit


def test_crossmodal_stages_follow_each_method_s_modality_study(tmp_path: Path) -> None:
    the_plan = smoke_plan(tmp_path, f"audit: {{audits: {EVERY}, first_seed_only: [crossmodal]}}")
    names = [s.name for s in the_plan.stages]
    crossmodal = [s for s in the_plan.stages if s.name.startswith("audit crossmodal")]
    methods = the_plan.config.methods
    assert [s.name for s in crossmodal] == [
        f"audit crossmodal {m} (lora, both, forget10, seed 0)" for m in methods]
    stage = crossmodal[0]
    settings = stage.args[0]
    assert isinstance(settings, CrossModalConfig)
    unlearned = tmp_path / "run" / "unlearn" / "forget10"
    assert (settings.model, settings.text_model, settings.visual_model) == tuple(
        str(unlearned / modality / "ga-lora" / "seed0") for modality in ("both", "text",
                                                                         "visual"))
    assert settings.out == unlearned / "both" / "ga-lora" / "seed0" / "audit-forget10"
    modalities = [f"unlearn ga (lora, {m}, forget10, seed 0)" for m in ("both", "text", "visual")]
    assert set(modalities) <= set(stage.needs)
    assert all(names.index(need) < names.index(stage.name) for need in stage.needs)
    assert stage.name in the_plan.stages[-1].needs  # the report waits for it
    rows = {(r.method, r.variant, r.modality, r.seed): r.audits for r in the_plan.rows
            if r.track == "multimodal"}
    assert "crossmodal" in rows["ga", "lora", "both", 0]
    for key in (("ga", "lora", "both", 1), ("ga", "lora-tuned", "both", 0),
                ("gold", None, None, 0), ("vanilla", None, None, 0)):
        assert "crossmodal" not in rows[key], key  # later seed, tuned run, baselines
    assert "precision" in rows["gold", None, None, 0]


def test_every_relearning_audit_but_gold_s_reuses_gold_s_curves(tmp_path: Path) -> None:
    the_plan = smoke_plan(tmp_path, "audit: {audits: [relearn], scope: all}")
    relearn = {s.name: s for s in the_plan.stages if s.name.startswith("audit relearn")}
    gold = relearn.pop("audit relearn gold (forget10)")
    assert gold.args[0].gold_curves is None
    curves = tmp_path / "run" / "gold-forget10" / "audit-forget10" / "relearn.json"
    assert len(relearn) > 10
    for stage in relearn.values():
        assert stage.args[0].gold_curves == curves
        assert "audit relearn gold (forget10)" in stage.needs


# --- results -----------------------------------------------------------------------------


def estimate(mean: float | None, spread: float = 0.05) -> dict[str, float | None]:
    return {"mean": mean, "low": None if mean is None else mean - spread,
            "high": None if mean is None else mean + spread}


def precision_file(**progress: float) -> dict:
    transforms = {kind: {"forget_knowledge": 1 - p, "change": 0.0, "progress": estimate(p),
                         "flagged": p < progress["as_is"] - 0.1}
                  for kind, p in progress.items()}
    return {"audit": "precision", "transforms": {
        **transforms, "nf4": {"skipped": "needs a CUDA device"}}}


PROBES = ("qa", "face_name", "captioning", "describe")


def crossmodal_file(both: tuple[float, ...], gap_low: float) -> dict:
    rows = {"text": (0.1, 0.0, 0.0, 0.1), "visual": (0.0, 0.3, 0.4, 0.1), "both": both}
    return {"audit": "crossmodal",
            "matrix": {m: {probe: {"forget_knowledge": estimate(0.5), "progress": estimate(p)}
                           for probe, p in zip(PROBES, ps, strict=True)}
                       for m, ps in rows.items()},
            "gap": {probe: estimate(0.5 if probe != "describe" else gap_low + 0.1, 0.1)
                    for probe in PROBES},
            "claim": {probe: {"holds": probe == "face_name"} for probe in PROBES}}


def audited_row(tmp_path: Path, method: str, seed: int, files: dict[str, dict]) -> ResultRow:
    folder = tmp_path / f"{method}-{seed}"
    (folder / "audit-forget10").mkdir(parents=True)
    for name, payload in files.items():
        (folder / "audit-forget10" / AUDIT_FILES[name]).write_text(json.dumps(payload))
    variant = None if method in ("vanilla", "gold") else "lora"
    return ResultRow(method, variant, variant and "both", "forget10", True, 0.0, seed,
                     folder / "unlearning.json", folder / "eval-forget10",
                     audits=("precision", "crossmodal") if variant else ("precision",))


def test_results_and_robust_forgetting_take_precision_and_crossmodal(tmp_path: Path) -> None:
    plan_rows = [
        audited_row(tmp_path, "gold", 0, {"precision": precision_file(as_is=1.0, int8=1.0)}),
        audited_row(tmp_path, "npo", 0, {
            "precision": precision_file(as_is=0.6, int8=0.3, merged_bf16=0.55),
            "crossmodal": crossmodal_file((0.1, 0.8, 0.9, 0.45), gap_low=0.02)}),
        audited_row(tmp_path, "npo", 1, {
            "precision": precision_file(as_is=0.6, int8=0.5, merged_bf16=0.65),
            "crossmodal": crossmodal_file((0.1, 0.8, 0.9, 0.35), gap_low=0.02)}),
        audited_row(tmp_path, "ga", 0, {
            "precision": precision_file(as_is=0.9, int8=0.9, merged_bf16=0.9),
            "crossmodal": crossmodal_file((0.1, 0.9, 0.9, 0.2), gap_low=-0.01)}),
    ]
    files = [audit_files(row) for row in plan_rows]
    rows = [{"method": r.method, "variant": r.variant, "modality": r.modality,
             "forget_split": "forget10", "seed": r.seed,
             "scores": {"forgetting_progress": headline}, **row_audits(f, {})}
            for r, f, headline in zip(plan_rows, files, (1.0, 0.6, 0.6, 0.9), strict=True)]
    npo = rows[1]
    assert npo["precision"]["int8"] == {"forget_knowledge": 0.7, "progress": 0.3,
                                        "flagged": True}
    assert npo["precision"]["nf4"] == {"skipped": "needs a CUDA device"}
    assert npo["crossmodal"]["matrix"]["visual"]["captioning"]["progress"] == 0.4
    assert npo["crossmodal"]["separable"] == {"qa": True, "face_name": True,
                                              "captioning": True, "describe": True}
    assert npo["crossmodal"]["claim"]["face_name"] and not npo["crossmodal"]["claim"]["qa"]
    summary = [{"method": m, "variant": v, "modality": v and "both", "forget_split": "forget10",
                "scores": {"forgetting_progress": estimate(p, 0.0)}}
               for m, v, p in (("gold", None, 1.0), ("npo", "lora", 0.6), ("ga", "lora", 0.9))]
    summarise_audits(load_run_config(embedded_config("smoke")), plan_rows, rows, files,
                     summary)
    worst = rows[1]["robust_forgetting"]
    # the transforms that ran but as is, and the describe probe of the model's own row only
    # (qa's 0.1 is the headline's own QA task split out: not an audit)
    assert worst["audits"] == {"headline": 0.6, "precision int8": 0.3,
                               "precision merged_bf16": 0.55, "crossmodal describe": 0.45}
    assert (worst["progress"], worst["audit"]) == (0.3, "precision int8")
    # ga: describe not separable (gap's interval reaches 0): no entry
    assert rows[3]["robust_forgetting"]["audits"]["crossmodal describe"] is None
    assert rows[3]["robust_forgetting"]["audit"] == "headline"
    gold = summary[0]
    assert gold["robust_forgetting"] == {"progress": 1.0, "audit": "headline", "audits": {
        "headline": 1.0, "precision int8": 1.0}}  # gold is the reference: 1, never 0
    entry = summary[1]
    assert entry["precision"]["seeds"] == [0, 1]
    int8 = entry["precision"]["transforms"]["int8"]
    assert int8["progress"] == pytest.approx({"mean": 0.4, "low": 0.3, "high": 0.5})
    assert int8["flagged"] == [True, False]
    assert entry["precision"]["transforms"]["nf4"] == {"skipped": "needs a CUDA device"}
    both = entry["crossmodal"]["matrix"]["both"]["describe"]["progress"]
    assert both == pytest.approx({"mean": 0.4, "low": 0.35, "high": 0.45})
    assert entry["crossmodal"]["claim"]["face_name"] == [True, True]
    assert entry["robust_forgetting"]["audits"] == pytest.approx({
        "headline": 0.6, "precision int8": 0.4, "precision merged_bf16": 0.6,
        "crossmodal describe": 0.4})
    assert entry["robust_forgetting"]["audit"] == "precision int8"

    results = {"run": {"main_variant": "lora"}, "summary": summary}
    table = precision_table(results, "forget10")
    assert table.columns == ("Method", "P as_is", "P int8", "P merged_bf16", "Flagged (seeds)",
                             "Seeds")
    npo_row = next(row for row in table.rows if row[0] == "npo")
    assert npo_row[2].startswith("0.400 [0.300, 0.500]") and npo_row[4] == "int8 (1 of 2)"
    assert "Skipped: nf4 (every model): needs a CUDA device." in table.note
    no_adapter = {"precision": {"transforms": {"nf4": {"skipped": "no GPU"},
                                               "merged_bf16": {"skipped": "no adapter"},
                                               "merged_fp16": {"skipped": "no adapter"}}}}
    with_adapter = {"precision": {"transforms": {"nf4": {"skipped": "no GPU"},
                                                 "merged_bf16": {"progress": None}}}}
    assert skipped_by_reason([("gold", no_adapter), ("ga", with_adapter)]) == {
        "no GPU": (["nf4"], ["gold", "ga"]),
        "no adapter": (["merged_bf16", "merged_fp16"], ["gold"])}
    matrix = crossmodal_table(results, "forget10")
    assert [row[0] for row in matrix.rows] == ["npo · text only", "npo · visual only", "npo",
                                              "ga · text only", "ga · visual only", "ga"]
    assert matrix.rows[2][-2] == "face_name (2 of 2)" and matrix.rows[0][-2] == ""
    assert "crossmodal describe" in robust_table(results, "forget10").columns


# --- relearning: gold's curves once per split ---------------------------------------------


@pytest.fixture(scope="module")
def relearn_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small CLEAR-mini (3 forget10 persons) and three tiny models: gold and two perturbed
    copies (the model and vanilla)."""
    root = tmp_path_factory.mktemp("reuse")
    data = synthesize(root / "data", persons=30, images_per_person=3, qa_per_person=3,
                      other_images_per_person=2, other_qa_per_person=2, celebrities=4,
                      images_per_celebrity=2, real_world=4, world_facts=4, real_authors=4,
                      holdout_persons=1)
    build_tiny_vlm(TINY, corpus(DataSource.local(data))).save(root / "gold")
    torch.manual_seed(0)
    for name in ("model", "vanilla"):
        vlm = load_vlm(root / "gold")
        with torch.no_grad():
            for parameter in vlm.model.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
        vlm.save(root / name)
    return {"data": data, "gold": root / "gold", "model": root / "model",
            "vanilla": root / "vanilla"}


def test_reused_gold_curves_equal_recomputed_ones(relearn_models: dict[str, Path],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    trained = []
    real = relearn_recipe.relearn
    monkeypatch.setattr(relearn_recipe, "relearn",
                        lambda *args: trained.append(args[-1]) or real(*args))
    models = {key: str(path) for key, path in relearn_models.items()}

    def audit(model: str, out: str, **given: object) -> dict:
        return run_relearn(RelearnConfig(
            model=models[model], gold=models["gold"], data=models["data"], out=tmp_path / out,
            relearn_steps=(1, 2), relearn_batch_size=4, max_new_tokens=8, replicates=50,
            **given))

    gold = audit("gold", "gold")
    assert len(trained) == 2  # gold against itself: each attack trained once
    for curve in gold["attacks"].values():
        assert curve["knowledge"]["model"] == curve["knowledge"]["gold"]
    trained.clear()
    reused = audit("model", "reused", gold_curves=tmp_path / "gold" / "relearn.json")
    assert trained == ["relearn model on forget_half", "relearn model on retain"]
    recomputed = audit("model", "recomputed")
    assert len(trained) == 6  # the model and gold, both attacks
    assert reused["identity"] == recomputed["identity"]
    assert reused["attacks"] == recomputed["attacks"]
    assert json.loads(json.dumps(recomputed["gold_curves"])) == reused["gold_curves"]
    assert reused["gold_curves"] == gold["gold_curves"]

    with pytest.raises(ValueError, match=r"gold_curves .*gold.*relearn\.json cannot be "
                                         r"reused: its settings differ"):
        audit("model", "other", relearn_lr=1e-3, gold_curves=tmp_path / "gold" / "relearn.json")


def test_reused_precision_references_equal_recomputed_ones(
    relearn_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluated = []
    real = precision_recipe.precision_evaluation
    monkeypatch.setattr(precision_recipe, "precision_evaluation",
                        lambda config, rows, path, kind: evaluated.append((Path(path).name, kind))
                        or real(config, rows, path, kind))
    models = {key: str(path) for key, path in relearn_models.items()}

    def audit(model: str, out: str, **given: object) -> dict:
        return run_precision(PrecisionConfig(**{
            "model": models[model], "gold": models["gold"], "vanilla": models["vanilla"],
            "data": models["data"], "out": tmp_path / out, "max_new_tokens": 8,
            "replicates": 50, "batch_size": 8, **given}))

    gold = audit("gold", "gold")
    kinds = ["as_is", "int8", "bf16", "fp16"]  # nf4 and the packagings are skipped here
    assert sorted(gold["reference_evaluations"]["vanilla"]) == sorted(kinds)
    assert all(gold["transforms"][kind]["progress"]["mean"] == 1.0 for kind in kinds)
    evaluated.clear()
    reused = audit("model", "reused", references=tmp_path / "gold" / "precision.json")
    assert evaluated == [("model", kind) for kind in kinds]  # vanilla and gold not again
    recomputed = audit("model", "recomputed")
    assert len(evaluated) == 4 + 3 * 4
    assert reused["identity"] == recomputed["identity"]
    assert reused["transforms"] == recomputed["transforms"]
    assert json.loads(json.dumps(recomputed["reference_evaluations"])) == \
        reused["reference_evaluations"]
    with pytest.raises(ValueError, match=r"references .*gold.*precision\.json cannot be "
                                         r"reused: its settings differ"):
        audit("model", "other", max_new_tokens=4,
              references=tmp_path / "gold" / "precision.json")



def test_a_crossmodal_audit_with_a_diverged_twin_is_skipped(tmp_path: Path, capsys,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    models = {}
    for modality, status in (("both", "ok"), ("text", "diverged"), ("visual", "ok")):
        models[modality] = tmp_path / modality
        models[modality].mkdir()
        (models[modality] / "unlearning.json").write_text(json.dumps({"status": status}))
    ran = []
    monkeypatch.setitem(pipeline.AUDIT_RUNS, CrossModalConfig, ran.append)
    config = CrossModalConfig(model=str(models["both"]), text_model=str(models["text"]),
                              visual_model=str(models["visual"]), vanilla="v", gold="g",
                              data="d", out=tmp_path / "out")
    pipeline.audit_stage(config)
    assert not ran and f"{models['text']} diverged; nothing to audit" in capsys.readouterr().out
    (models["text"] / "unlearning.json").write_text(json.dumps({"status": "ok"}))
    pipeline.audit_stage(config)
    assert ran == [config]
