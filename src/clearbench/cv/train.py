"""The vision-only track's two loops: supervised training (pretraining, vanilla, gold) and
unlearning (each forget batch paired with as many random retain images), plus embedding.

Both are seeded (initialisation, batch order, pairing) and show a tqdm progress bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from clearbench.cv.data import Faces
from clearbench.cv.methods import CVMethod, UnlearnBatch, ce
from clearbench.cv.model import FaceNet


@dataclass(frozen=True)
class Schedule:
    """Optimisation settings of one loop (AdamW, constant learning rate)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0


def fit(model: FaceNet, faces: Faces, schedule: Schedule, seed: int,
        description: str) -> list[float]:
    """Train ``model`` with the AM-Softmax loss on ``faces``; the loss of every step."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=schedule.lr,
                                  weight_decay=schedule.weight_decay)
    steps = schedule.epochs * math.ceil(len(faces) / schedule.batch_size)
    losses: list[float] = []
    model.train()
    with tqdm(total=steps, desc=description, leave=False) as bar:
        for _ in range(schedule.epochs):
            order = torch.randperm(len(faces), generator=generator)
            for batch in order.split(schedule.batch_size):
                loss = ce(model, faces.images[batch], faces.labels[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def unlearn(model: FaceNet, method: CVMethod, reference: FaceNet, forget: Faces,
            retain: Faces, schedule: Schedule, seed: int, description: str) -> list[float]:
    """Unlearn ``forget`` from ``model`` (a copy of ``reference``) for ``schedule.epochs``
    passes over the forget images; the loss of every step."""
    if len(forget) == 0 or len(retain) == 0:
        raise ValueError("unlearning needs forget and retain images")
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=schedule.lr,
                                  weight_decay=schedule.weight_decay)
    retain_identities = retain.labels.unique()
    reference.eval()
    losses: list[float] = []
    step = 0
    model.train()
    steps_per_epoch = math.ceil(len(forget) / schedule.batch_size)
    method.prepare(steps_per_epoch)
    total = schedule.epochs * steps_per_epoch
    with tqdm(total=total, desc=description, leave=False) as bar:
        for _ in range(schedule.epochs):
            order = torch.randperm(len(forget), generator=generator)
            for batch in order.split(schedule.batch_size):
                paired = torch.randint(len(retain), (len(batch),), generator=generator)
                other = retain_identities[
                    torch.randint(len(retain_identities), (len(batch),), generator=generator)]
                loss = method.loss(model, UnlearnBatch(
                    forget.images[batch], forget.labels[batch], retain.images[paired],
                    retain.labels[paired], other), reference, step)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                step += 1
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


@torch.no_grad()
def embed(model: FaceNet, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """``(n, dim)`` embeddings of ``images`` in eval mode."""
    model.eval()
    return torch.cat([model(chunk) for chunk in images.split(batch_size)])
