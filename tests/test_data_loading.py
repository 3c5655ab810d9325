"""Loading CLEAR/TOFU configs: a hand-made folder in the exact hub schema, and every error."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import pytest
from PIL import Image

from clearbench.data.loading import DataSource, folder_hash, load_clear, load_tofu
from clearbench.data.schema import DataError
from hub_layout import SHA


def _png(colour: tuple[int, int, int]) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


IMAGE = datasets.Image()
TEXT = datasets.Value("string")
TEXTS = datasets.List(datasets.Value("string"))


def _write(root: Path, config: str, columns: dict[str, list], types: dict) -> None:
    """One config the way the hub stores it: ``config/train-00000-of-00001.parquet``."""
    dataset = datasets.Dataset.from_dict(columns, features=datasets.Features(types))
    (root / config).mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(root / config / "train-00000-of-00001.parquet")
    listed = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "tofu")
    header = "".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {name}/train-*\n"
        for name in listed
    )
    (root / "README.md").write_text(f"---\nconfigs:\n{header}---\n")


@pytest.fixture
def hub_folder(tmp_path: Path) -> Path:
    """Two rows of three configs in the hub's exact schema (with an extra column)."""
    root = tmp_path / "snapshot"
    _write(
        root,
        "full",
        {
            "image": [_png((255, 0, 0)), _png((0, 0, 255))],
            "caption": ["a", "b"],
            "name": ["A", "B"],
        },
        {"image": IMAGE, "caption": TEXT, "name": TEXT},
    )
    _write(
        root,
        "full+tofu",
        {
            "image": [_png((255, 0, 0)), None],
            "caption": ["A on a beach.", ""],
            "question": ["", "Where was A born?"],
            "answer": ["", "A was born in X."],
        },
        {"image": IMAGE, "caption": TEXT, "question": TEXT, "answer": TEXT},
    )
    _write(
        root,
        "forget10_perturbed",
        {
            "image": [_png((255, 0, 0))],
            "caption": ["A on a beach."],
            "name": ["A"],
            "perturbed_captions": [["A in a park.", "A in an office.", "A on a street."]],
            "paraphrased_caption": ["This is A on a beach."],
            "perturbed_names": [["B", "C", "D"]],
            "extra": ["allowed"],
        },
        {
            "image": IMAGE,
            "caption": TEXT,
            "name": TEXT,
            "perturbed_captions": TEXTS,
            "paraphrased_caption": TEXT,
            "perturbed_names": TEXTS,
            "extra": TEXT,
        },
    )
    _write(
        root / "tofu",
        "forget10",
        {"question": ["Where was A born?"], "answer": ["A was born in X."]},
        {"question": TEXT, "answer": TEXT},
    )
    return root


def test_a_hub_schema_folder_loads(hub_folder: Path) -> None:
    source = DataSource.local(hub_folder)
    full = load_clear(source, "full")
    assert full["caption"] == ["a", "b"] and full[0]["image"].size == (8, 8)
    mixed = load_clear(source, "full+tofu")
    assert mixed[1]["image"] is None and mixed[1]["question"] == "Where was A born?"
    evaluation = load_clear(source, "forget10_perturbed")
    assert (
        evaluation[0]["perturbed_names"] == ["B", "C", "D"] and "extra" in evaluation.column_names
    )
    assert load_tofu(source, "forget10")[0]["answer"] == "A was born in X."


def test_loads_are_cached_until_the_folder_changes(hub_folder: Path) -> None:
    source = DataSource.local(hub_folder)
    assert load_clear(source, "full") is load_clear(source, "full")
    first = load_clear(source, "full")
    _write(
        hub_folder,
        "full",
        {"image": [_png((0, 255, 0))], "caption": ["c"], "name": ["C"]},
        {"image": IMAGE, "caption": TEXT, "name": TEXT},
    )
    assert load_clear(source, "full") is not first
    assert load_clear(source, "full")["caption"] == ["c"]


def test_fingerprint_names_hub_ids_and_hashes_folders(hub_folder: Path,
                                                      offline_hub: Path) -> None:
    """A hub id is fingerprinted by the commit its revision resolves to (None where it does
    not resolve: the preflight then says why), a folder by its files' content."""
    hub = DataSource(clear_revision="abc123")
    assert hub.fingerprint() == {
        "clear": {"hub_id": "therem/CLEAR", "revision": "abc123", "commit": None},
        "tofu": {"hub_id": "locuslab/TOFU", "revision": None, "commit": SHA["locuslab/TOFU"]},
    }
    assert DataSource().fingerprint()["clear"]["commit"] == SHA["therem/CLEAR"]
    local = DataSource.local(hub_folder)
    assert local.tofu == str(hub_folder / "tofu")
    assert local.fingerprint()["clear"] == {"content_hash": folder_hash(hub_folder)}
    assert local.fingerprint()["tofu"] == {"content_hash": folder_hash(hub_folder / "tofu")}


def test_unknown_config_lists_the_valid_ones(hub_folder: Path) -> None:
    with pytest.raises(DataError, match=r"unknown CLEAR config 'forget20'.*forget10"):
        load_clear(DataSource.local(hub_folder), "forget20")
    with pytest.raises(DataError, match=r"unknown TOFU config 'real_faces'"):
        load_tofu(DataSource.local(hub_folder), "real_faces")


def test_a_config_missing_from_the_folder_is_named(hub_folder: Path) -> None:
    with pytest.raises(DataError, match=r"snapshot config 'retain90'"):
        load_clear(DataSource.local(hub_folder), "retain90")


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"{missing}.*no such folder"):
        load_clear(DataSource.local(missing), "full")


def test_missing_column_is_named(hub_folder: Path) -> None:
    _write(
        hub_folder,
        "full",
        {"image": [_png((1, 2, 3))], "caption": ["a"]},
        {"image": IMAGE, "caption": TEXT},
    )
    with pytest.raises(DataError, match=r"config 'full'.*missing column 'name'"):
        load_clear(DataSource.local(hub_folder), "full")


def test_wrong_column_type_is_named(hub_folder: Path) -> None:
    _write(
        hub_folder / "tofu",
        "forget10",
        {"question": ["q"], "answer": [["not", "a", "string"]]},
        {"question": TEXT, "answer": TEXTS},
    )
    with pytest.raises(DataError, match=r"column 'answer' is .*expected string"):
        load_tofu(DataSource.local(hub_folder), "forget10")


def test_undecodable_image_names_config_and_row(hub_folder: Path) -> None:
    _write(
        hub_folder,
        "full",
        {
            "image": [_png((1, 2, 3)), {"bytes": b"not an image", "path": None}],
            "caption": ["a", "b"],
            "name": ["A", "B"],
        },
        {"image": IMAGE, "caption": TEXT, "name": TEXT},
    )
    with pytest.raises(DataError, match=r"config 'full': row 1: column 'image' does not decode"):
        load_clear(DataSource.local(hub_folder), "full")


def test_missing_image_is_refused_where_required(hub_folder: Path) -> None:
    _write(
        hub_folder,
        "full",
        {"image": [_png((1, 2, 3)), None], "caption": ["a", "b"], "name": ["A", "B"]},
        {"image": IMAGE, "caption": TEXT, "name": TEXT},
    )
    with pytest.raises(DataError, match=r"row 1 has no 'image'"):
        load_clear(DataSource.local(hub_folder), "full")


def test_empty_split_is_refused(hub_folder: Path) -> None:
    _write(
        hub_folder,
        "full",
        {"image": [], "caption": [], "name": []},
        {"image": IMAGE, "caption": TEXT, "name": TEXT},
    )
    with pytest.raises(DataError, match=r"config 'full': the train split is empty"):
        load_clear(DataSource.local(hub_folder), "full")


def test_a_tofu_json_snapshot_loads(tmp_path: Path) -> None:
    """locuslab/TOFU stores each config as one JSON-lines file named in its README."""
    root = tmp_path / "TOFU"
    root.mkdir()
    row = '{"question": "Q?", "answer": "A.", "paraphrased_answer": "P.", '
    row += '"paraphrased_question": "PQ?", "perturbed_answer": ["X.", "Y.", "Z."]}\n'
    (root / "forget10_perturbed.json").write_text(row * 2)
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: forget10_perturbed\n  data_files: forget10_perturbed.json\n"
        "---\n"
    )
    source = DataSource(tofu=str(root))
    rows = load_tofu(source, "forget10_perturbed")
    assert len(rows) == 2 and rows[0]["perturbed_answer"] == ["X.", "Y.", "Z."]
    assert source.fingerprint()["tofu"] == {"content_hash": folder_hash(root)}
    assert folder_hash(root) != folder_hash(tmp_path / "nothing")


@pytest.mark.parametrize("config", ["real_authors_perturbed", "world_facts_perturbed"])
def test_tofu_real_sets_load_without_a_paraphrase(tmp_path: Path, config: str) -> None:
    """On the hub these two sets have only question, answer and perturbed_answer (spec §4)."""
    root = tmp_path / "TOFU"
    root.mkdir()
    row = '{"question": "Who wrote X?", "answer": "X was written by A.", '
    row += '"perturbed_answer": ["X was written by B.", "X was written by C."]}\n'
    (root / f"{config}.json").write_text(row * 3)
    (root / "README.md").write_text(
        f"---\nconfigs:\n- config_name: {config}\n  data_files: {config}.json\n---\n"
    )
    rows = load_tofu(DataSource(tofu=str(root)), config)
    assert len(rows) == 3 and "paraphrased_answer" not in rows.column_names
    # the biography sets still need their paraphrase
    (root / "retain_perturbed.json").write_text(row)
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: retain_perturbed\n  data_files: retain_perturbed.json\n---\n"
    )
    with pytest.raises(DataError, match="missing column 'paraphrased_answer'"):
        load_tofu(DataSource(tofu=str(root)), "retain_perturbed")
