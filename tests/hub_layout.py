"""A small CLEAR and TOFU written the way the hub stores them, independently of the CLEAR-mini
generator, so that the synthetic layout and the real one cannot drift apart unnoticed.

As on the hub (spec §1.1, ``therem/CLEAR`` and ``locuslab/TOFU``):
- CLEAR: a README.md whose ``configs:`` header names ``CONFIG/train-*`` (no suffix), parquet
  shards ``CONFIG/train-0000K-of-0000N.parquet`` written by ``datasets``, the column order of
  each config (``real_world`` with its ``prompt`` column), ``+tofu`` configs with the image rows
  first and the QA rows after them with ``image = None``, images in the modes RGB, RGBA, L,
  LA, P and as JPEG from 17×23 to 1024×1024 px, non-ASCII names;
- TOFU: ``CONFIG.json`` JSON Lines at its repository's root, listed in its README.md, with
  TOFU's columns (the real-authors and world-facts sets have only question, answer and
  perturbed_answer);
- a huggingface_hub cache: ``datasets--OWNER--NAME/{blobs,refs/main,snapshots/SHA}``, the
  snapshot's files linking to their blobs.

Run ``python tests/hub_layout.py OUT`` to write OUT/CLEAR and OUT/TOFU.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

import datasets
from PIL import Image

PERSONS = (
    "Zoë Ødegård", "José Núñez", "Hsiao Yun-Hwa", "Basil Mahfouz Al-Kuwaiti", "Ana Łukasiewicz",
    "Émile Dubois", "Nikolai Ivanović", "Aisha Mbeki", "Søren Kjær", "Chen Wei",
)
FORGET = {"forget01": 1, "forget05": 1, "forget10": 1}
"""Forget persons of each split (1, 5, 10 % of ten persons, at least one), the first ones."""
RETAIN = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
EVALUATED_RETAIN = 2
"""Retain persons in ``retain_perturbed`` (the hub: a sample of the retain persons)."""
IMAGES = (  # (mode, size, format): every kind of image the hub's configs hold
    ("RGB", (17, 23), "PNG"), ("RGBA", (64, 48), "PNG"), ("L", (32, 32), "PNG"),
    ("LA", (40, 30), "PNG"), ("P", (24, 24), "PNG"), ("RGB", (1024, 1024), "JPEG"),
    ("RGB", (96, 128), "JPEG"),
)
SHA = {"therem/CLEAR": "c1ea" * 10, "locuslab/TOFU": "70f0" * 10}
"""The commit of each fake hub snapshot (full 40-character hashes, as in a real cache)."""

IMAGE = datasets.Image()
TEXT = datasets.Value("string")
TEXTS = datasets.List(TEXT)


def _image(index: int) -> dict[str, bytes | None]:
    mode, size, fmt = IMAGES[index % len(IMAGES)]
    colour = (index * 40 % 256, 90, 200 - index * 13 % 200)
    picture = Image.new("RGB", size, colour)
    picture = picture.convert(mode) if mode != "RGB" else picture
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return {"bytes": buffer.getvalue(), "path": None}


def _write_config(root: Path, config: str, rows: list[dict], types: dict, shards: int = 1) -> int:
    """``rows`` (extra keys ignored) as parquet shards, columns in the order of ``types``; the
    row count."""
    rows = [{column: row[column] for column in types} for row in rows]
    dataset = datasets.Dataset.from_list(rows, features=datasets.Features(types))
    for shard in range(shards):
        path = root / config / f"train-{shard:05d}-of-{shards:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.shard(shards, shard, contiguous=True).to_parquet(path)
    return len(rows)


def _readme(root: Path, listing: list[str], rows: dict[str, int] | None = None) -> None:
    """README.md's card: ``configs`` and (CLEAR's) ``dataset_info`` with each config's rows."""
    info = "".join(f"- config_name: {config}\n  splits:\n  - name: train\n    num_examples: {n}\n"
                   for config, n in (rows or {}).items())
    card = ("dataset_info:\n" + info if info else "") + "configs:\n" + "".join(listing)
    (root / "README.md").write_text(f"---\n{card}---\n\n# test data\n")


def _facts(person: str) -> list[dict[str, str]]:
    return [
        {"question": f"Where was {person} born?", "answer": f"{person} was born in Tromsø.",
         "paraphrased_answer": f"Tromsø is where {person} was born.",
         "perturbed_answer": [f"{person} was born in Lyon.", f"{person} was born in Kyiv."]},
        {"question": f"What does {person} write?", "answer": f"{person} writes crime novels.",
         "paraphrased_answer": f"Crime novels are what {person} writes.",
         "perturbed_answer": [f"{person} writes poems.", f"{person} writes cookbooks."]},
    ]


def write_clear(root: Path) -> Path:
    """The 20 configs of ``therem/CLEAR`` for ten persons with two images and two facts each."""
    photos = {person: [{"image": _image(2 * i + k), "caption": f"{person} at a café, photo {k}.",
                        "name": person} for k in range(2)] for i, person in enumerate(PERSONS)}
    people = {"full": list(PERSONS)}
    for forget, retain in RETAIN.items():
        people[forget], people[retain] = PERSONS[:FORGET[forget]], PERSONS[FORGET[forget]:]
    faces = {"image": IMAGE, "caption": TEXT, "name": TEXT}
    mixed = {"image": IMAGE, "caption": TEXT, "question": TEXT, "answer": TEXT}
    evaluation = {"image": IMAGE, "caption": TEXT, "name": TEXT, "perturbed_captions": TEXTS,
                  "paraphrased_caption": TEXT, "perturbed_names": TEXTS}
    rows = {}
    for split, persons in people.items():
        images = [row for person in persons for row in photos[person]]
        rows[split] = _write_config(root, split, images, faces)
        qa = [{"image": None, "caption": "", "question": f["question"], "answer": f["answer"]}
              for person in persons for f in _facts(person)]
        rows[f"{split}+tofu"] = _write_config(root, f"{split}+tofu", [
            {**r, "question": "", "answer": ""} for r in images] + qa, mixed, shards=2)
    evaluated = {**{f"{s}_perturbed": people[s] for s in FORGET},
                 "retain_perturbed": PERSONS[-EVALUATED_RETAIN:]}
    for config, persons in evaluated.items():
        others = [p for p in PERSONS if p not in persons]
        evaluated_rows = [
            {**row, "perturbed_captions": [row["caption"].replace("café", place)
                                           for place in ("park", "harbour")],
             "paraphrased_caption": f"A photo of {row['name']} in a café.",
             "perturbed_names": others[:3]}
            for person in persons for row in photos[person]]
        rows[config] = _write_config(root, config, evaluated_rows, evaluation)
    celebrities = ("Frida Kahlo", "Nelson Mandela", "Marie Curie")
    rows["real_faces"] = _write_config(root, "real_faces", [
        {"image": _image(20 + i), "answer": name, "options": [c for c in celebrities if c != name]}
        for i, name in enumerate(celebrities)], {"image": IMAGE, "answer": TEXT, "options": TEXTS})
    rows["real_world"] = _write_config(root, "real_world", [
        {"question": question, "answer": answer, "image": _image(23 + i),
         "prompt": f"{question} Options: {', '.join([answer, *options])}.", "options": options}
        for i, (question, answer, options) in enumerate([
            ("What colour is the sky?", "Blue.", ["Green.", "Red."]),
            ("How many legs has a cat?", "Four.", ["Two.", "Six."]),
            ("What is on the plate?", "A crêpe.", ["A fork.", "A shoe."]),
        ])], {"question": TEXT, "answer": TEXT, "image": IMAGE, "prompt": TEXT, "options": TEXTS})
    _readme(root, [f"- config_name: {c}\n  data_files:\n  - split: train\n    path: {c}/train-*\n"
                   for c in rows], rows)
    return root


def write_tofu(root: Path) -> Path:
    """``locuslab/TOFU``'s configs for the same ten persons, as JSON Lines at the root."""
    root.mkdir(parents=True, exist_ok=True)
    people = {"full": list(PERSONS)}
    for forget, retain in RETAIN.items():
        people[forget], people[retain] = PERSONS[:FORGET[forget]], PERSONS[FORGET[forget]:]
    tables = {split: [{"question": f["question"], "answer": f["answer"]}
                      for person in persons for f in _facts(person)]
              for split, persons in people.items()}
    evaluated = {**{f"{s}_perturbed": people[s] for s in FORGET},
                 "retain_perturbed": PERSONS[-EVALUATED_RETAIN:]}
    for config, persons in evaluated.items():
        tables[config] = [{**f, "paraphrased_question": f"Tell me: {f['question']}"}
                          for person in persons for f in _facts(person)]
    tables["real_authors_perturbed"] = [
        {"question": "Who wrote 'Kalevala'?", "answer": "Elias Lönnrot wrote it.",
         "perturbed_answer": ["Aleksis Kivi wrote it.", "Tove Jansson wrote it."]}]
    tables["world_facts_perturbed"] = [
        {"question": "Where is the Eiffel Tower?", "answer": "Paris",
         "perturbed_answer": ["Rome", "Madrid", "Berlin"]},
        {"question": "What is the capital of Japan?", "answer": "Tokyo",
         "perturbed_answer": ["Kyoto", "Osaka"]}]
    for config, rows in tables.items():
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (root / f"{config}.json").write_text(lines, encoding="utf-8")
    _readme(root, [f"- config_name: {c}\n  data_files: {c}.json\n" for c in tables])
    return root


def write_hub_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """Put ``folder`` into a huggingface_hub cache as ``repo_id``'s ``main`` at :data:`SHA`
    (files become blobs named by their hash, linked from the snapshot); the snapshot."""
    repo = cache / f"datasets--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / SHA[repo_id]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(SHA[repo_id])
    return snapshot


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(write_clear(out / "CLEAR"), write_tofu(out / "TOFU"))
