"""The face-ID network: shapes, presets, head swap, save and reload."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from clearbench.cv.model import PRESETS, FaceNet, FaceNetConfig, load_facenet

TINY = FaceNetConfig(hidden_sizes=(4, 8), depths=(1, 1), embedding_dim=6, classes=3,
                     image_size=16)


def test_forward_features_and_logits() -> None:
    model = FaceNet(TINY).eval()
    images = torch.rand(2, 3, 16, 16)
    embeddings = model(images)
    assert embeddings.shape == (2, 6)
    logits = model.logits(embeddings)
    assert logits.shape == (2, 3) and logits.abs().max() <= TINY.scale + 1e-5
    assert [model.features(images, s).shape[1] for s in range(model.stages)] == [4, 4, 8]
    with pytest.raises(ValueError, match=r"stage must be in 0\.\.2"):
        model.features(images, 3)


def test_resnet18_preset_is_the_papers_network() -> None:
    config = replace(PRESETS["resnet18"], classes=10)
    model = FaceNet(config).eval()
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert 11.0e6 < backbone < 11.3e6  # ResNet-18 without its classifier: 11.18 M
    assert model(torch.rand(1, 3, 112, 112)).shape == (1, 512)


def test_save_and_reload_give_the_same_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = FaceNet(TINY).eval()
    model.save(tmp_path / "net")
    again = load_facenet(tmp_path / "net").eval()
    assert again.config == TINY
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(again(images), model(images))
    with pytest.raises(FileNotFoundError, match="no face-ID network"):
        load_facenet(tmp_path / "missing")


def test_with_head_keeps_the_backbone_and_replaces_the_head() -> None:
    model = FaceNet(TINY).eval()
    other = model.with_head(7, seed=1).eval()
    assert other.head.shape == (7, 6)
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(other(images), model(images))
    torch.testing.assert_close(model.with_head(7, seed=1).head, other.head)
