"""The model side of the membership audit: what a model says about each answer, token by token.

The scored tokens are the training labels (the answer's tokens and the end token), computed
by :func:`~clearbench.models.vlm.answer_logits` on :meth:`~clearbench.models.vlm.VLM.encode`'s
batches, the path the training losses use: the same tokens whose mean NLL the evaluation
reports. Everything derived from these numbers lives in :mod:`.membership`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from clearbench.data.examples import Example
from clearbench.evaluation.membership import TokenScores
from clearbench.models.vlm import IGNORE_INDEX, VLM, answer_logits


@torch.inference_mode()
def token_scores(vlm: VLM, examples: Sequence[Example], *, batch_size: int = 16
                 ) -> list[TokenScores]:
    """Per example (image + prompt → answer): log p of every answer token, and at each of those
    positions the mean μ and standard deviation σ of log p(z) over the vocabulary under the
    model's next-token distribution p (μ = Σ p log p, σ² = Σ p (log p − μ)²), which Min-K %++
    needs. Batched, in eval mode, without gradients; float32 log-softmax."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    was_training = vlm.model.training
    vlm.model.eval()
    out: list[TokenScores] = []
    try:
        for start in range(0, len(examples), batch_size):
            batch = vlm.encode(examples[start : start + batch_size])
            batch = {key: value.to(vlm.device) for key, value in batch.items()}
            logits, targets = answer_logits(vlm.model, batch)
            log_p = logits.float().log_softmax(-1)
            chosen = log_p.gather(-1, targets[:, None])[:, 0]
            p = log_p.exp()
            seen = p > 0  # a token of probability 0 (log p = −inf) adds nothing, not NaN
            mean = torch.where(seen, p * log_p, 0).sum(-1)
            spread = torch.where(seen, p * (log_p - mean[:, None]) ** 2, 0)
            std = spread.sum(-1).sqrt()
            counts = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(1).tolist()
            for row_log_p, row_mean, row_std in zip(chosen.split(counts), mean.split(counts),
                                                    std.split(counts), strict=True):
                out.append(TokenScores(row_log_p.tolist(), row_mean.tolist(), row_std.tolist()))
    finally:
        vlm.model.train(was_training)
    return out
