"""The face-identification network: a ResNet (``transformers``' ``ResNetModel``), a linear
projection to the embedding and an AM-Softmax head (Wang et al., 2018).

``resnet18`` is the paper's network (basic blocks, depths 2-2-2-2, 512-d embeddings, 112 px
faces); ``mini`` is a small ResNet for CLEAR-mini's 64 px faces on a CPU. The head holds one
weight vector per identity; the logits are s·cos(embedding, weight), and training subtracts
the margin m from the true identity's cosine (:func:`clearbench.cv.losses.am_softmax_loss`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import ResNetConfig, ResNetModel

from clearbench.io import write_json_atomic
from clearbench.models.errors import REDO, ModelError

WEIGHTS = "model.safetensors"
CONFIG = "facenet.json"


@dataclass(frozen=True)
class FaceNetConfig:
    hidden_sizes: tuple[int, ...] = (16, 32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    embedding_dim: int = 64
    classes: int = 2
    """Identities of the head (the pretraining pool, then the CLEAR persons)."""
    scale: float = 30.0
    """AM-Softmax s (the AM-Softmax paper's value)."""
    margin: float = 0.35
    """AM-Softmax m (the AM-Softmax paper's value)."""
    image_size: int = 64

    def __post_init__(self) -> None:
        if len(self.hidden_sizes) != len(self.depths):
            raise ValueError(f"hidden_sizes {self.hidden_sizes} and depths {self.depths} differ "
                             "in length")
        if self.classes < 1 or self.embedding_dim < 1:
            raise ValueError("classes and embedding_dim must be positive")


PRESETS = {
    "mini": FaceNetConfig(),
    "resnet18": FaceNetConfig(hidden_sizes=(64, 128, 256, 512), depths=(2, 2, 2, 2),
                              embedding_dim=512, image_size=112),
}


class FaceNet(nn.Module):
    """ResNet backbone → embedding; :meth:`logits` = s·cos(embedding, head weights)."""

    def __init__(self, config: FaceNetConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNetModel(ResNetConfig(
            num_channels=3, embedding_size=config.hidden_sizes[0],
            hidden_sizes=list(config.hidden_sizes), depths=list(config.depths),
            layer_type="basic", hidden_act="relu", downsample_in_first_stage=False,
        ))
        self.embed = nn.Linear(config.hidden_sizes[-1], config.embedding_dim)
        self.head = nn.Parameter(torch.randn(config.classes, config.embedding_dim) * 0.01)

    @property
    def stages(self) -> int:
        """Feature maps :meth:`features` can return: the stem (0) and each ResNet stage."""
        return len(self.config.depths) + 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(batch, embedding_dim)`` embeddings (not normalised)."""
        return self.embed(self.backbone(pixel_values=images).pooler_output.flatten(1))

    def features(self, images: torch.Tensor, stage: int) -> torch.Tensor:
        """The ``(batch, channels, h, w)`` output of ``stage`` (0 = stem)."""
        if not 0 <= stage < self.stages:
            raise ValueError(f"stage must be in 0..{self.stages - 1}, got {stage}")
        return self.backbone(pixel_values=images, output_hidden_states=True).hidden_states[stage]

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(batch, classes)`` cos(embedding, head weight of each identity)."""
        return F.normalize(embeddings, dim=-1) @ F.normalize(self.head, dim=-1).T

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """s·cos: the identity logits (no margin; the margin is a training-time term)."""
        return self.config.scale * self.cosines(embeddings)

    def with_head(self, classes: int, seed: int) -> FaceNet:
        """A copy of this network with a new, randomly initialised head of ``classes``."""
        model = FaceNet(replace(self.config, classes=classes))
        state = {k: v for k, v in self.state_dict().items() if k != "head"}
        model.load_state_dict(state, strict=False)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            model.head.copy_(torch.randn(model.head.shape, generator=generator) * 0.01)
        return model

    def save(self, folder: Path) -> None:
        """``model.safetensors`` and ``facenet.json`` (the config) in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        write_json_atomic(folder / CONFIG, asdict(self.config))


def load_facenet(folder: Path) -> FaceNet:
    """The network saved by :meth:`FaceNet.save` in ``folder``."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no face-ID network in {folder} (missing {CONFIG})")
    raw: dict[str, Any] = json.loads(path.read_text())
    config = FaceNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    model = FaceNet(config)
    weights = Path(folder) / WEIGHTS
    try:
        model.load_state_dict(load_file(str(weights)))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"{weights} cannot be read ({type(err).__name__}: {err}); {REDO}") from err
    return model
