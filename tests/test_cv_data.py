"""Face-identification data from CLEAR-mini and from a hub-layout folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from clearbench.cv.data import load_faces, mini_looks, render_faces
from clearbench.data.loading import DATACARD, DataSource
from clearbench.data.schema import DataError


def test_mini_faces(mini_data: Path) -> None:
    source = DataSource.local(mini_data)
    faces = load_faces(source, "forget10", image_size=32, pretrain_renders=2)
    card = json.loads((mini_data / DATACARD).read_text())
    persons = card["persons"]
    assert faces.identities == (*persons["fictitious"], *persons["holdout"])
    assert faces.classes == len(persons["fictitious"])
    assert {faces.identities[i] for i in faces.forget} == set(persons["forget10"])
    assert len(faces.retain) + len(faces.forget) == faces.classes
    per_person = card["arguments"]["images_per_person"]
    assert len(faces.queries) == len(faces.identities) * per_person  # every data-set image
    assert len(faces.enrolment) == len(faces.identities) * 5
    assert faces.queries.images.shape[1:] == (3, 32, 32)
    celebrities = card["arguments"]["images_per_celebrity"] + 2
    assert len(faces.pretrain) == len(persons["celebrities"]) * celebrities
    assert len(faces.training(faces.forget)) == len(faces.forget) * per_person
    with pytest.raises(ValueError, match="holdout persons are never trained on"):
        faces.training(faces.holdout)
    # enrolment renders are new images, not copies of the data set's
    distance = torch.cdist(faces.enrolment.images.flatten(1), faces.queries.images.flatten(1))
    assert distance.min() > 1.0


def test_renders_are_deterministic_and_keep_the_look(mini_data: Path) -> None:
    looks, _ = mini_looks(DataSource.local(mini_data))
    name, look = next(iter(looks.items()))
    first, again = render_faces(look, name, 2, "enrol"), render_faces(look, name, 2, "enrol")
    assert [im.tobytes() for im in first] == [im.tobytes() for im in again]
    other = render_faces(look, name, 2, "pretrain")
    assert first[0].tobytes() != other[0].tobytes()


def test_a_changed_look_is_caught(mini_data: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(mini_data, tmp_path / "data")
    card = json.loads((copy / DATACARD).read_text())
    card["arguments"]["seed"] = 1  # the looks recomputed from it are not the data set's
    (copy / DATACARD).write_text(json.dumps(card))
    with pytest.raises(DataError, match="cannot re-render"):
        load_faces(DataSource.local(copy))


def test_hub_layout_enrols_from_own_images_and_holds_out_retain_persons(
        mini_data: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(mini_data, tmp_path / "hub")
    (copy / DATACARD).unlink()  # no data card: treated like the hub data set
    with pytest.raises(DataError, match=r"'full'.*has 5 images; enrolment needs more than 5"):
        load_faces(DataSource.local(copy), holdout_persons=3)
    with pytest.raises(ValueError, match="holdout_persons=9 leaves no retain person"):
        load_faces(DataSource.local(copy), holdout_persons=9)
    with pytest.raises(ValueError, match="pretrain_renders needs a CLEAR-mini folder"):
        load_faces(DataSource.local(copy), pretrain_renders=1)
    faces = load_faces(DataSource.local(copy), enrol_images=2, holdout_persons=3)
    assert len(faces.holdout) == 3 and faces.classes == len(faces.identities) - 3
    assert len(faces.enrolment) == 2 * len(faces.identities)
    assert len(faces.queries) == 3 * len(faces.identities)
    with pytest.raises(ValueError, match="unknown forget split 'forget50'"):
        load_faces(DataSource.local(copy), "forget50")
