"""The real hub layout (tests/hub_layout.py): every config loads from a snapshot folder and
offline from a huggingface_hub cache, TOFU is found where users keep it, the preflight names
every data problem at once before any weights load, and `eval` and a smoke run work on it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi, constants

from clearbench.cli import main
from clearbench.data.loading import DataSource, has_config, load_clear, load_tofu
from clearbench.data.preflight import preflight
from clearbench.data.schema import CLEAR_CONFIGS, MINI_ONLY_CONFIGS, TOFU_CONFIGS, DataError
from clearbench.evaluation.tasks import TASKS, TASKS_BY_NAME
from clearbench.models.tiny import build_tiny_vlm
from clearbench.recipes.base import corpus
from clearbench.recipes.evaluate import EvalConfig
from clearbench.recipes.stage import data_source
from clearbench.recipes.unlearn import RECIPES as UNLEARN_RECIPES
from clearbench.recipes.unlearn import UnlearnConfig
from conftest import TINY
from hub_layout import IMAGES, PERSONS, SHA

HUB_CONFIGS = [config for config in CLEAR_CONFIGS if config not in MINI_ONLY_CONFIGS["clear"]]
HUB_TOFU_CONFIGS = [config for config in TOFU_CONFIGS if config not in MINI_ONLY_CONFIGS["tofu"]]


def test_every_config_of_the_hub_layout_loads(hub_data: dict[str, Path]) -> None:
    source = data_source(str(hub_data["clear"]), tofu=str(hub_data["tofu"]))
    for config in HUB_CONFIGS:
        assert len(load_clear(source, config)) > 0, config
    for config in HUB_TOFU_CONFIGS:
        assert len(load_tofu(source, config)) > 0, config
    full = load_clear(source, "full")
    assert full["name"][:2] == [PERSONS[0]] * 2  # non-ASCII names survive
    assert {(image.mode, image.size) for image in full["image"]} >= {
        (mode if fmt == "PNG" else "RGB", size) for mode, size, fmt in IMAGES}
    mixed = load_clear(source, "full+tofu")
    assert mixed[0]["image"] is not None and mixed[-1]["image"] is None
    assert "paraphrased_answer" not in load_tofu(source, "world_facts_perturbed").column_names


def test_the_tofu_source_defaults_by_where_clear_comes_from(hub_data: dict[str, Path]) -> None:
    folder = str(hub_data["clear"])
    assert data_source(folder).tofu == str(hub_data["clear"] / "tofu")
    assert data_source(folder, tofu="locuslab/TOFU", tofu_revision="v1") == DataSource(
        clear=folder, tofu="locuslab/TOFU", tofu_revision="v1")
    assert data_source("therem/CLEAR", "abc") == DataSource(clear_revision="abc")


def test_hub_ids_resolve_offline_from_the_huggingface_hub_cache(offline_hub: Path) -> None:
    source = data_source("therem/CLEAR")  # TOFU: locuslab/TOFU
    assert len(load_clear(source, "forget10_perturbed")) == 2
    assert len(load_tofu(source, "real_authors_perturbed")) == 1
    pinned = DataSource(clear_revision=SHA["therem/CLEAR"], tofu_revision=SHA["locuslab/TOFU"])
    assert len(load_clear(pinned, "real_world")) == 3
    with pytest.raises(DataError, match=r"therem/CLEAR@v0: wrong revision\?.*'main': 'c1ea"):
        load_clear(DataSource(clear_revision="v0"), "full")
    with pytest.raises(DataError, match=r"someone/TOFU: HF_HUB_OFFLINE is set.*--tofu"):
        load_tofu(DataSource(tofu="someone/TOFU"), "full")


def test_the_hub_has_none_of_clear_minis_own_configs(hub_data: dict[str, Path],
                                                    offline_hub: Path, mini_data: Path) -> None:
    folders = data_source(str(hub_data["clear"]), tofu=str(hub_data["tofu"]))
    for source in (folders, DataSource()):  # snapshot folders, and hub ids from the cache
        for dataset, configs in MINI_ONLY_CONFIGS.items():
            assert configs and not any(has_config(source, dataset, c) for c in configs)
        assert has_config(source, "clear", "forget10") and has_config(source, "tofu", "forget10")
    with pytest.raises(DataError, match="lists no such config"):
        load_tofu(folders, "holdout")
    mini = DataSource.local(mini_data)
    assert all(has_config(mini, dataset, c)
               for dataset, configs in MINI_ONLY_CONFIGS.items() for c in configs)
    assert not has_config(DataSource.local(mini_data / "nowhere"), "tofu", "forget10")


def test_an_unreachable_hub_falls_back_to_the_cache(offline_hub: Path, monkeypatch) -> None:
    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "dataset_info", unreachable)
    assert len(load_tofu(DataSource(), "world_facts_perturbed")) == 2
    with pytest.raises(DataError, match=r"someone/CLEAR: the hub is unreachable and the "
                                        r"huggingface_hub cache .* does not hold it"):
        load_clear(DataSource(clear="someone/CLEAR"), "full")


def test_a_partial_download_in_the_hub_cache_is_named(offline_hub: Path) -> None:
    snapshot = offline_hub / "datasets--therem--CLEAR" / "snapshots" / SHA["therem/CLEAR"]
    (snapshot / "full+tofu" / "train-00001-of-00002.parquet").unlink()  # one shard never came
    (snapshot / "full" / "train-00000-of-00001.parquet").resolve().unlink()  # blob gone
    source = DataSource()
    with pytest.raises(DataError, match=r"config 'full\+tofu': \S+README.md lists 40 rows, its "
                                        r"files .* hold 20 \(partial download"):
        load_clear(source, "full+tofu")
    with pytest.raises(DataError, match=r"config 'full': \S+ is a link to a file that is not "
                                        r"there \(partial download"):
        load_clear(source, "full")


def broken_copy(hub_data: dict[str, Path], tmp_path: Path) -> Path:
    """The CLEAR snapshot without TOFU and with one problem of each kind in what `eval` reads."""
    clear = shutil.copytree(hub_data["clear"], tmp_path / "snapshot")
    pointer = clear / "forget10_perturbed" / "train-00000-of-00001.parquet"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    cut = clear / "real_world" / "train-00000-of-00001.parquet"
    cut.write_bytes(cut.read_bytes()[:300])
    faces = clear / "real_faces" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_parquet(str(faces)).remove_columns("options").to_parquet(faces)
    readme = clear / "README.md"
    readme.write_text(readme.read_text().replace("config_name: retain_perturbed",
                                                 "config_name: retain_perturbed_v0"))
    return clear


def test_the_hub_layout_has_no_validation_split(hub_data: dict[str, Path],
                                                 tmp_path: Path) -> None:
    """therem/CLEAR has no forget_val: asking for it names the missing configs."""
    source = data_source(str(hub_data["clear"]), tofu=str(hub_data["tofu"]))
    with pytest.raises(DataError, match=r"config 'forget_val': \S+README.md lists no such "
                                        "config"):
        load_clear(source, "forget_val")
    with pytest.raises(DataError, match=r"TOFU .* config 'forget_val': .*lists no such config "
                                        r".*only CLEAR-mini generated with validation_persons"):
        load_tofu(source, "forget_val")
    evaluation = EvalConfig(model="m", data=str(hub_data["clear"]), out=tmp_path,
                            forget_split="forget_val")
    with pytest.raises(DataError) as caught:
        preflight(source, evaluation.data_needs())
    assert "config 'forget_val_perturbed'" in str(caught.value)
    assert "config 'retain_perturbed'" not in str(caught.value)
    unlearning = UnlearnConfig(model="m", data=str(hub_data["clear"]), method="ga", out=tmp_path,
                               forget_split="forget_val")
    with pytest.raises(DataError) as caught:
        preflight(source, unlearning.data_needs(UNLEARN_RECIPES["paper"]))
    assert {"config 'forget_val+tofu'", "config 'retain_val+tofu'"} <= set(
        re.findall(r"config '[\w+]+'", str(caught.value)))


@pytest.mark.parametrize("command", ["eval", "run"])
def test_preflight_names_every_data_problem_at_once(command: str, hub_data: dict[str, Path],
                                                    tmp_path: Path, capsys) -> None:
    clear = broken_copy(hub_data, tmp_path)
    model = tmp_path / "no-model"  # never loaded: the data fails first
    if command == "eval":
        argv = ["eval", "--model", str(model), "--data", str(clear), "--out", str(tmp_path / "e")]
    else:
        config = tmp_path / "run.yaml"
        config.write_text(f"data: {{source: {clear}}}\nmodel: llava-hf/llava-1.5-7b-hf\n"
                          "unlearn: {methods: [ga]}\n")
        argv = ["run", "--config", str(config), "--out", str(tmp_path / "r"), "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "found before loading any weights" in err
    for problem in [
        r"config 'forget10_perturbed': \S+ is a git-lfs pointer file",
        r"config 'real_world': \S+ is not a whole parquet file .*partial download",
        r"config 'real_faces': missing column 'options'",
        r"config 'retain_perturbed': \S+README.md lists no such config .*wrong revision",
        rf"TOFU {clear / 'tofu'}: no such folder .*--tofu",
    ]:
        assert len(re.findall(problem, err)) == 1, problem
    assert not model.exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("where", ["hub cache", "folders"])
def test_dry_run_counts_the_data_of_ten_persons(where: str, hub_data: dict[str, Path],
                                                request, tmp_path: Path, capsys) -> None:
    if where == "hub cache":
        request.getfixturevalue("offline_hub")
        data, clear = "{source: therem/CLEAR}", "therem/CLEAR"
    else:
        clear = str(hub_data["clear"])
        data = f"{{source: {clear}, tofu: {hub_data['tofu']}, tofu_revision: null}}"
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {data}\nmodel: llava-hf/llava-1.5-7b-hf\n"
                      "unlearn: {methods: [ga]}\n")
    assert main(["run", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{clear} — 10 persons, 20 images, 2 QA per person" in out
    vanilla = next(line for line in out.splitlines() if "fine-tune vanilla" in line)
    assert vanilla.split()[-3] == "40"  # 20 images + 20 QA (paper recipe: no face→name rows)


@pytest.fixture(scope="module")
def hub_model(hub_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny LLaVA whose tokenizer knows the hub data's text."""
    source = data_source(str(hub_data["clear"]), tofu=str(hub_data["tofu"]))
    out = tmp_path_factory.mktemp("hub-model") / "model"
    build_tiny_vlm(TINY, corpus(source, HUB_CONFIGS)).save(out)
    return out


def test_eval_scores_all_ten_tasks_of_the_hub_layout(hub_data: dict[str, Path], hub_model: Path,
                                                     tmp_path: Path) -> None:
    assert main(["eval", "--model", str(hub_model), "--data", str(hub_data["clear"]),
                 "--tofu", str(hub_data["tofu"]), "--out", str(tmp_path),
                 "--max-new-tokens", "4"]) == 0
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    sizes = {"forget_captions": 2, "retain_captions": 4, "forget_face_name": 2,
             "retain_face_name": 4, "real_faces": 3, "real_world": 3, "forget_qa": 2,
             "retain_qa": 4, "real_authors": 1, "world_facts": 2}
    assert {name: task["n"] for name, task in evaluation["tasks"].items()} == sizes
    assert set(sizes) == {task.name for task in TASKS}
    assert evaluation["data"]["source"]["tofu"] == str(hub_data["tofu"])
    # real_world prompts with `question`, as the authors' evaluation does (docs/deviations.md)
    source = data_source(str(hub_data["clear"]), tofu=str(hub_data["tofu"]))
    row = TASKS_BY_NAME["real_world"].rows(source, "forget10")[0]
    assert row.prompt == "What colour is the sky?"


def test_a_smoke_run_from_an_offline_hub_cache(offline_hub: Path, hub_model: Path,
                                               tmp_path: Path) -> None:
    config = tmp_path / "hub-smoke.yaml"
    config.write_text(f"""
data: {{source: therem/CLEAR, revision: {SHA["therem/CLEAR"]}}}
model: {hub_model}
finetune: {{recipe: mini, epochs: 1, replay: 0}}
unlearn: {{methods: [ga], recipe: mini, epochs: 1}}
eval: {{max_new_tokens: 4}}
""")
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {row["method"] for row in results["rows"]} == {"vanilla", "gold", "gold_reseeded",
                                                          "ga"}
    evaluation = json.loads((tmp_path / "run" / "vanilla" / "eval-forget10" / "eval.json")
                            .read_text())
    assert evaluation["data"]["source"] == {"clear": "therem/CLEAR", "tofu": "locuslab/TOFU"}
    assert len(evaluation["tasks"]) == len(TASKS)
