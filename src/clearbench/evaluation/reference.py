"""The naive reference evaluator: what the authors' code does, kept as an oracle and a baseline.

Every candidate answer is scored by its own full forward pass over image + prompt + answer, one
row at a time, and every row is generated alone. It shares no code path with the fast
evaluator's scoring (no KV cache, no left padding, labels from :meth:`VLM.encode`), so tests
use it to check :meth:`VLM.answer_nlls` and ``benchmarks/evaluation.py`` to measure the
speed-up.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from clearbench.data.examples import Example
from clearbench.models.vlm import IGNORE_INDEX, VLM


class NaiveVLM:
    """A :class:`VLM` whose generation and scoring work one row and one candidate at a time.

    It has the method :func:`~clearbench.evaluation.evaluate.evaluate_task` calls, so the same
    task code runs on either; batch sizes are accepted and ignored.
    """

    def __init__(self, vlm: VLM) -> None:
        self.vlm = vlm

    def generate_and_score(
        self,
        examples: Sequence[Example],
        answers: Sequence[Sequence[str]],
        *,
        max_new_tokens: int = 32,
        batch_size: int = 1,
    ) -> tuple[list[str], list[list[tuple[float, int]]]]:
        """Greedy answers generated one row at a time, then :meth:`answer_nlls`."""
        generated = [
            text
            for example in examples
            for text in self.vlm.generate([example], max_new_tokens=max_new_tokens)
        ]
        return generated, self.answer_nlls(examples, answers)

    @torch.inference_mode()
    def answer_nlls(
        self,
        examples: Sequence[Example],
        answers: Sequence[Sequence[str]],
        *,
        batch_size: int = 1,
    ) -> list[list[tuple[float, int]]]:
        """Per-token mean NLL and token count of each candidate, one full forward pass each."""
        vlm = self.vlm
        vlm.model.eval()
        scores = []
        for example, candidates in zip(examples, answers, strict=True):
            row = []
            for candidate in candidates:
                batch = vlm.encode([Example(example.prompt, candidate, example.image, example.id)])
                batch = {key: value.to(vlm.device) for key, value in batch.items()}
                labels = batch.pop("labels")[0, 1:]
                logits = vlm.model(**batch).logits[0, :-1].float()
                scored = labels != IGNORE_INDEX
                nll = F.cross_entropy(logits[scored], labels[scored], reduction="sum")
                row.append((nll.item() / int(scored.sum()), int(scored.sum())))
            scores.append(row)
        return scores
