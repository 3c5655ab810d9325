"""``clearbench audit`` (issue 20, item 1): token scores of a tiny model and the membership audit
end to end on CLEAR-mini."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from clearbench.cli import main
from clearbench.config import ConfigError
from clearbench.data.loading import DataSource, load_clear, load_tofu
from clearbench.data.views import training_examples
from clearbench.evaluation.membership import ATTACKS
from clearbench.evaluation.membership_scores import token_scores
from clearbench.models.loading import load_vlm
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes.audit import NONMEMBERS
from clearbench.recipes.base import corpus
from clearbench.recipes.runconfig import embedded_config, load_run_config
from conftest import TINY, memorise


@pytest.fixture(scope="module")
def memorised(untrained: Path, mini_data: Path) -> Path:
    """The untrained model fine-tuned on the forget persons' rows only, captions and QA (a few
    seconds)."""
    vlm = memorise(load_vlm(untrained),
                   training_examples(DataSource.local(mini_data), "forget10+tofu"), steps=40)
    out = untrained.with_name("memorised")
    vlm.save(out)
    return out


def test_token_scores_are_the_evaluations_likelihoods_batched_or_not(
    memorised: Path, mini_data: Path
) -> None:
    vlm = load_vlm(memorised)
    source = DataSource.local(mini_data)
    examples = training_examples(source, "forget10")[:3] + training_examples(source, "retain90")[:2]
    vlm.model.train()
    scores = token_scores(vlm, examples, batch_size=2)
    assert vlm.model.training  # the mode it had
    nlls = vlm.answer_nlls(examples, [[e.answer] for e in examples])
    for s, [(nll, count)] in zip(scores, nlls, strict=True):
        assert len(s.log_probs) == len(s.mean) == len(s.std) == count
        assert -np.mean(s.log_probs) == pytest.approx(nll, abs=1e-4)
        assert all(m <= 0 for m in s.mean) and all(sd >= 0 for sd in s.std)
    one = token_scores(vlm, examples, batch_size=len(examples))
    for a, b in zip(scores, one, strict=True):
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-5)
        np.testing.assert_allclose(a.std, b.std, atol=1e-5)


def test_token_scores_moments_are_under_the_next_token_distribution(memorised: Path,
                                                                     mini_data: Path) -> None:
    vlm = load_vlm(memorised)
    example = training_examples(DataSource.local(mini_data), "forget10")[0]
    [scores] = token_scores(vlm, [example])
    batch = vlm.encode([example])
    with torch.no_grad():
        logits = vlm.model(**batch).logits[0, :-1]
    at = batch["labels"][0, 1:] != -100
    log_p = logits[at].log_softmax(-1).double()
    p = log_p.exp()
    mean = (p * log_p).sum(-1)
    std = ((p * (log_p - mean[:, None]) ** 2).sum(-1)).sqrt()
    np.testing.assert_allclose(scores.mean, mean.numpy(), atol=1e-4)
    np.testing.assert_allclose(scores.std, std.numpy(), atol=1e-4)


def audit(model: Path, gold: Path, data: Path, out: Path) -> dict:
    assert main(["audit", "--model", str(model), "--gold", str(gold), "--data", str(data),
                 "--out", str(out), "--replicates", "200"]) == 0
    return json.loads((out / "audit.json").read_text())


@pytest.fixture(scope="module")
def leaking(memorised: Path, untrained: Path, mini_data: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The audit of the memorised model against the untrained one as gold."""
    return audit(memorised, untrained, mini_data, tmp_path_factory.mktemp("leaking"))


def without_holdout_qa(data: Path, out: Path) -> Path:
    """A copy of CLEAR-mini without the holdout persons' QA (TOFU config ``holdout``), as
    generated before it existed."""
    shutil.copytree(data, out)
    shutil.rmtree(out / "tofu" / NONMEMBERS)
    readme = out / "tofu" / "README.md"
    readme.write_text(re.sub(rf"- config_name: {NONMEMBERS}\n(?:  .*\n)*", "",
                             readme.read_text()))
    return out


def test_audit_of_a_model_against_itself_leaks_nothing(
    untrained: Path, mini_data: Path, tmp_path: Path
) -> None:
    started = time.perf_counter()
    result = audit(untrained, untrained, mini_data, tmp_path)
    seconds = time.perf_counter() - started
    assert seconds < 30
    for key in ("attacks", "qa_attacks"):
        assert list(result[key]) == list(ATTACKS)
        for attack in result[key].values():
            assert 0 <= attack["auc_model"]["mean"] <= 1
            assert attack["auc_model"] == attack["auc_gold"]
            assert attack["privleak"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
        assert result[key]["reference"]["auc_gold"]["mean"] == 0.5
    source = DataSource.local(mini_data)
    compared = result["compared"]
    forget = set(load_clear(source, "forget10")["name"])
    holdout = set(load_clear(source, "holdout")["name"])
    rows = result["rows"]
    assert all(set(row["model"]) == set(ATTACKS) for row in rows)
    for text, of_text, dataset, load in (("caption", compared, "clear", load_clear),
                                         ("qa", compared["qa"], "tofu", load_tofu)):
        # every row of the forget split's and of the holdout persons' config, in order
        assert (of_text["members"]["config"], of_text["nonmembers"]["config"]) == (
            "forget10", "holdout")
        assert of_text["members"]["dataset"] == of_text["nonmembers"]["dataset"] == dataset
        assert set(of_text["members"]["persons"]) == forget
        assert set(of_text["nonmembers"]["persons"]) == holdout
        prefix = "tofu/" if text == "qa" else ""
        for member, config in ((True, "forget10"), (False, "holdout")):
            of_group = [row for row in rows if row["text"] == text and row["member"] == member]
            assert [row["id"] for row in of_group] == [
                f"{prefix}{config}/{i}" for i in range(len(load(source, config)))]
            assert {row["person"] for row in of_group} == (forget if member else holdout)
            assert len(of_group) == of_text["members" if member else "nonmembers"]["rows"]
    assert {row["text"] for row in rows} == {"caption", "qa"}
    # a rerun of the same models, data and settings is not redone
    stamp = (tmp_path / "audit.json").stat().st_mtime_ns
    audit(untrained, untrained, mini_data, tmp_path)
    assert (tmp_path / "audit.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("key", ["attacks", "qa_attacks"])
def test_a_model_that_memorised_the_forget_persons_leaks(leaking: dict, key: str) -> None:
    loss = leaking[key]["loss"]
    assert loss["auc_model"]["mean"] > loss["auc_gold"]["mean"]
    assert loss["privleak"]["mean"] > 0
    assert leaking[key]["reference"]["privleak"]["mean"] > 0


def test_without_holdout_qa_the_audit_scores_captions_alone_and_says_why(
    leaking: dict, memorised: Path, untrained: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    data = without_holdout_qa(mini_data, tmp_path / "data")
    capsys.readouterr()
    result = audit(memorised, untrained, data, tmp_path / "audit")
    assert "qa_attacks" not in result
    skipped = result["compared"]["qa"]["skipped"]
    assert f"{data / 'tofu'} has no config 'holdout'" in skipped
    assert f"qa: skipped: {skipped}" in capsys.readouterr().out
    assert {row["text"] for row in result["rows"]} == {"caption"}
    assert result["attacks"] == leaking["attacks"]  # the captions' audit is as with QA
    assert result["identity"] != leaking["identity"]


def test_audit_without_holdout_persons_names_the_config(
    untrained: Path, hub_data: dict[str, Path], tmp_path: Path, capsys
) -> None:
    capsys.readouterr()
    assert main(["audit", "--model", str(untrained), "--gold", str(untrained),
                 "--data", str(hub_data["clear"]), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "config 'holdout'" in error and "persons no model was trained on" in error
    assert "docs/audits.md" in error
    assert not (tmp_path / "audit.json").exists()


def test_audit_help_and_bad_settings_fail_before_any_model_loads(
    untrained: Path, mini_data: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "--help"])
    assert info.value.code == 0 and "usage: clearbench audit" in capsys.readouterr().out
    for option, value in (("k", "1.5"), ("k", "0.0"), ("replicates", "0")):
        assert main(["audit", "--model", str(untrained), "--gold", str(untrained),
                     "--data", str(mini_data), "--out", str(tmp_path), f"--{option}",
                     value]) == 2
        assert f"{option} = {value}" in capsys.readouterr().err
    assert not (tmp_path / "audit.json").exists()


def test_token_scores_of_a_qwen2_vl_model_match_its_evaluation_likelihoods(
    mini_data: Path,
) -> None:
    source = DataSource.local(mini_data)
    vlm = build_tiny_vlm(replace(TINY, arch="qwen2_vl"), corpus(source))
    examples = training_examples(source, "forget10")[:2] + training_examples(source, "retain90")[:2]
    scores = token_scores(vlm, examples, batch_size=3)
    nlls = vlm.answer_nlls(examples, [[e.answer] for e in examples])
    for s, [(nll, count)] in zip(scores, nlls, strict=True):
        assert len(s.log_probs) == count
        assert -np.mean(s.log_probs) == pytest.approx(nll, abs=1e-4)


def test_audit_section_is_read_and_checked(tmp_path: Path) -> None:
    text = embedded_config("smoke").read_text()
    start = text.index("\naudit:\n")
    text = text[:start] + text[text.index("\n\n", start + 1):]
    path = tmp_path / "run.yaml"
    path.write_text(text + "\naudit: {k: 0.5, replicates: 10}\n")
    audit = load_run_config(path).audit
    assert audit.audits == ("membership",) and audit.scope == "main"
    assert audit.settings == {"membership": {"k": 0.5, "replicates": 10}}
    path.write_text(text + "\naudit: {enabled: false}\n")
    assert load_run_config(path).audit is None
    path.write_text(text + "\naudit: {k: 2, model: runs/x}\n")
    with pytest.raises(ConfigError) as error:
        load_run_config(path)
    assert "audit.k = 2" in str(error.value)
    assert "audit.model = 'runs/x': set by the run, not by its config" in str(error.value)


@pytest.mark.parametrize("block", ["audit", "qa_audit"])
def test_the_report_table_shows_each_audited_model_once_with_its_privleak(block: str) -> None:
    from clearbench.report.tables import audit_table

    def audited(method: str, variant: str | None, leak: float) -> dict:
        estimate = {"mean": leak, "low": leak - 0.1, "high": leak + 0.1}
        attacks = {a: {"auc_model": {"mean": 0.9, "low": 0.8, "high": 1.0},
                       "auc_gold": {"mean": 0.5, "low": 0.4, "high": 0.6},
                       "privleak": estimate} for a in ATTACKS}
        return {"method": method, "variant": variant, "modality": variant and "both",
                "forget_split": "forget10", "status": "ok", "scores": {}, block: attacks}

    summary = [audited("ga", "lora", 0.25), audited("vanilla", None, 0.8),
               audited("gold", None, 0.0)]
    table = audit_table({"run": {"main_variant": "lora"}, "summary": summary}, "forget10", block)
    assert [row[0] for row in table.rows] == ["vanilla", "gold", "ga"]  # no "(tuned)" here
    assert table.rows[2][2] == "0.250 [0.150, 0.350]"
    assert ("QA answers" in table.title) == (block == "qa_audit")
    tuned = {"run": {"main_variant": "lora"}, "tuning": {"tuned_variant": "lora-tuned"},
             "summary": [*summary, audited("ga", "lora-tuned", 0.1)]}
    assert [row[0] for row in audit_table(tuned, "forget10", block).rows][-2:] == [
        "ga", "ga (tuned)"]
    unaudited = [{k: v for k, v in entry.items() if k != block} for entry in summary]
    assert audit_table({"run": {}, "summary": unaudited}, "forget10", block) is None


def test_int8_quantization_changes_the_weights_storage_and_the_model_still_generates(
    untrained: Path, mini_data: Path
) -> None:
    from clearbench.models.precision import apply_precision

    vlm = load_vlm(untrained)
    examples = training_examples(DataSource.local(mini_data), "forget10")[:2]
    answers = [[e.answer] for e in examples]
    _, before = vlm.generate_and_score(examples, answers, max_new_tokens=4, batch_size=2)
    linear = sum(isinstance(m, torch.nn.Linear) for m in vlm.model.modules())
    apply_precision(vlm.model, "int8")
    quantized = [m for m in vlm.model.modules()
                 if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert linear > 0 and len(quantized) == linear
    assert all(m.weight().dtype == torch.qint8 for m in quantized)
    texts, after = vlm.generate_and_score(examples, answers, max_new_tokens=4, batch_size=2)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert [round(s[0][0], 1) for s in after] == pytest.approx(
        [round(s[0][0], 1) for s in before], abs=0.5)  # close to, not bitwise, the float model


@pytest.mark.parametrize(("kind", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_a_round_trip_stores_every_weight_at_that_precision(untrained: Path, kind: str,
                                                            dtype: torch.dtype) -> None:
    from clearbench.models.precision import apply_precision

    vlm = load_vlm(untrained)
    before = {n: p.detach().clone() for n, p in vlm.model.named_parameters()}
    apply_precision(vlm.model, kind)
    changed = 0
    for name, parameter in vlm.model.named_parameters():
        assert parameter.dtype == before[name].dtype
        assert torch.equal(parameter, parameter.to(dtype).to(parameter.dtype)), name
        changed += not torch.equal(parameter, before[name])
    assert changed > 0


def test_the_precision_audit_records_knowledge_under_each_transform(
    untrained: Path, mini_data: Path, tmp_path: Path
) -> None:
    assert main(["audit", "--model", str(untrained), "--gold", str(untrained), "--data",
                 str(mini_data), "--out", str(tmp_path), "--replicates", "20", "--audits",
                 "precision"]) == 0
    from clearbench.recipes.precision import NO_ADAPTER, TRANSFORMS

    assert not (tmp_path / "audit.json").exists()  # its own file, not the membership audit's
    precision = json.loads((tmp_path / "precision.json").read_text())
    assert "flagged" not in precision  # P and its flags need --vanilla
    results = precision["transforms"]
    assert list(results) == list(TRANSFORMS)
    assert results["as_is"]["change"] == 0.0
    for kind in ("int8", "bf16", "fp16"):
        assert 0 <= results[kind]["forget_knowledge"] <= 1
        assert results[kind]["change"] == pytest.approx(
            results[kind]["forget_knowledge"] - results["as_is"]["forget_knowledge"])
    assert results["merged_bf16"] == {"skipped": NO_ADAPTER}  # the untrained model has none
    assert "pip install clearbench[quant4]" in results["nf4"]["skipped"]
