"""A vision-language model (or a text-only causal LM) with everything needed to feed it:
:class:`VLM`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import extract_model_from_parallel

from clearbench.data.examples import Example
from clearbench.models import lora
from clearbench.models.errors import ModelError
from clearbench.models.formats import ChatFormat

IGNORE_INDEX = -100
"""Label of positions that carry no loss (prompt, image placeholders, padding)."""


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch from :meth:`VLM.encode` without its labels, for losses computed outside the model."""
    return {key: value for key, value in batch.items() if key != "labels"}


def answer_logits(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, vocab)`` next-token logits at the ``n`` positions followed by an answer token, and
    those ``(n,)`` tokens, in row-major order.

    The output head sees only these positions (a forward pre-hook hands it their hidden
    states), so image, prompt and padding positions get no logits: a fifth of the tiny model's
    compute, and on a 150k-token vocabulary the largest activation of the step. The model is
    still called whole, so data-parallel wrappers see an ordinary forward.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]
    before_answer = torch.zeros_like(labels, dtype=torch.bool)
    before_answer[:, :-1] = targets != IGNORE_INDEX
    head = extract_model_from_parallel(model).get_output_embeddings()
    hook = head.register_forward_pre_hook(lambda _head, args: (args[0][before_answer],))
    try:
        logits = model(**model_inputs(batch)).logits
    finally:
        hook.remove()
    return logits, targets[targets != IGNORE_INDEX]


class VLM:
    """A vision-language model, or a text-only causal LM when its chat format has no image
    token, with its tokenizer, image processor (None for a text-only model) and chat format.

    Training and evaluation code treat both alike; :meth:`encode` refuses images on a
    text-only model (:attr:`takes_images`). ``model`` may be a PEFT model once LoRA is applied
    (:func:`~clearbench.models.lora.apply_lora`).
    ``processor`` is the Hugging Face processor when one could be built; it is only saved, since
    batches are made here from the tokenizer and image processor directly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        image_processor: Any | None,
        chat_format: ChatFormat,
        processor: Any | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_format = chat_format
        self.processor = processor
        name = getattr(model, "name_or_path", "") or type(model).__name__
        for token in chat_format.special_tokens:
            ids = tokenizer.encode(token, add_special_tokens=False) if token else []
            if len(ids) != 1 or tokenizer.convert_ids_to_tokens(ids[0]) != token:
                raise ModelError(
                    f"{name}: the tokenizer has no single token {token!r}, which the "
                    f"{type(chat_format).__name__} chat format needs"
                )
        self.image_token_id: int | None = None
        """The image placeholder's id; None for a text-only model."""
        if chat_format.image_token is not None:
            self.image_token_id = tokenizer.convert_tokens_to_ids(chat_format.image_token)
            model_image_token_id = getattr(model.config, "image_token_id", None)
            if model_image_token_id != self.image_token_id:
                raise ModelError(
                    f"{name}: the model's image token id {model_image_token_id} is not the "
                    f"tokenizer's id {self.image_token_id} of {chat_format.image_token!r}"
                )
        self.end_token_id: int = tokenizer.convert_tokens_to_ids(chat_format.end_token)
        self.stop_token_ids: list[int] = list(
            dict.fromkeys([self.end_token_id, tokenizer.eos_token_id])
        )
        """Generation stops at the format's end token and at the tokenizer's eos."""
        self.pad_token_id: int = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_token_id
        )
        self._name = name
        self._answer_context = chat_format.prompt("", 0)
        """The text an answer follows (an empty turn's prompt), to tokenise answers in
        context: a SentencePiece tokenizer tokenises ``" Paris"`` alone as ``▁▁Paris`` or
        ``▁ Paris`` but after ``[/INST]`` as ``▁Paris``."""
        self._answer_context_ids: list[int] = tokenizer.encode(
            self._answer_context, add_special_tokens=False
        )

    @property
    def takes_images(self) -> bool:
        """Whether the model sees images (False: a text-only causal LM)."""
        return self.chat_format.image_token is not None

    @property
    def device(self) -> torch.device:
        """Where the model's (first) parameters live."""
        return next(self.model.parameters()).device

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameter count (shared weights once), or only those with ``requires_grad``."""
        return sum(
            p.numel() for p in self.model.parameters() if p.requires_grad or not trainable_only
        )

    def encode(
        self,
        examples: Sequence[Example],
        *,
        with_answer: bool = True,
        max_length: int | None = None,
        pack: bool = False,
    ) -> dict[str, Any]:
        """Tokenise a batch (CPU tensors).

        ``with_answer=True``: prompt + answer + end token, right-padded, with ``labels`` equal
        to the ids on the answer and end tokens and −100 elsewhere. ``with_answer=False``: the
        prompts alone, left-padded for generation, without labels. ``pixel_values`` (Qwen:
        also ``image_grid_thw`` and ``mm_token_type_ids``) appear only when some example has
        an image; rows with and without images may be mixed (a text-only model takes none:
        :class:`ModelError`). ``max_length`` truncates the answer, never the prompt (whose
        image placeholders must stay whole): a prompt that leaves no room raises
        :class:`ModelError`.

        ``pack=True`` (training batches of a :attr:`~ChatFormat.packable` format; others are
        padded as usual) puts several rows side by side in lines as wide as the longest row,
        without ``attention_mask``: ``position_ids`` restart at 0 on every row, from which
        transformers builds a block-diagonal causal mask, so each row attends to itself only
        and the loss equals the padded batch's on fewer (padding) positions.
        """
        if pack and not with_answer:
            raise ValueError("pack=True is for training batches (with_answer=True)")
        if not examples:
            raise ValueError("encode needs at least one example")
        with_image = [example for example in examples if example.image is not None]
        if with_image and not self.takes_images:
            raise ModelError(
                f"example {with_image[0].id!r}: text-only model: cannot take images"
            )
        images = [example.image for example in with_image]
        image_inputs = (
            dict(self.image_processor(images=images, return_tensors="pt")) if images else {}
        )
        image_counts = iter(self.chat_format.image_token_counts(image_inputs) if images else [])
        rows = []
        for example in examples:
            n_image_tokens = next(image_counts) if example.image is not None else 0
            prompt_ids = self._prompt_ids(example, n_image_tokens)
            answer_ids = self._answer_ids(example.answer) if with_answer else []
            if max_length is not None:
                room = max_length - len(prompt_ids)
                if room < int(with_answer):
                    raise ModelError(
                        f"example {example.id!r}: its prompt alone has {len(prompt_ids)} tokens "
                        f"({n_image_tokens} for the image), max_length is {max_length}"
                    )
                answer_ids = answer_ids[:room]
            rows.append((prompt_ids, answer_ids))

        if pack and self.chat_format.packable:
            return self._packed(rows, [example.image is not None for example in examples],
                                image_inputs)
        width = max(len(prompt) + len(answer) for prompt, answer in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, (prompt, answer) in enumerate(rows):
            ids = torch.tensor(prompt + answer, dtype=torch.long)
            start = 0 if with_answer else width - len(ids)
            input_ids[i, start : start + len(ids)] = ids
            attention_mask[i, start : start + len(ids)] = 1
            labels[i, start + len(prompt) : start + len(ids)] = ids[len(prompt) :]

        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if with_answer:
            batch["labels"] = labels
        if images:
            batch |= image_inputs
            batch |= self.chat_format.extra_inputs(input_ids, self.image_token_id)
        return batch

    def _packed(
        self,
        rows: list[tuple[list[int], list[int]]],
        has_image: list[bool],
        image_inputs: dict[str, torch.Tensor],
    ) -> dict[str, Any]:
        """Rows packed first-fit by decreasing length (see :meth:`encode`); the per-image
        tensors are reordered to follow the image placeholders' new order."""
        lengths = [len(prompt) + len(answer) for prompt, answer in rows]
        width = max(lengths)
        lines: list[list[int]] = []
        room: list[int] = []
        for i in sorted(range(len(rows)), key=lambda i: -lengths[i]):
            line = next((j for j, free in enumerate(room) if free >= lengths[i]), len(lines))
            if line == len(lines):
                lines.append([])
                room.append(width)
            lines[line].append(i)
            room[line] -= lengths[i]

        input_ids = torch.full((len(lines), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(lines), width), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((len(lines), width), dtype=torch.long)
        for j, members in enumerate(lines):
            start = 0
            for i in members:
                prompt, answer = rows[i]
                end = start + lengths[i]
                input_ids[j, start:end] = torch.tensor(prompt + answer)
                labels[j, start + len(prompt) : end] = torch.tensor(answer)
                position_ids[j, start:end] = torch.arange(lengths[i])
                start = end
            position_ids[j, start:] = torch.arange(width - start)  # padding: a row of its own

        # A KV cache would make transformers skip the packed-sequence mask (every row would
        # attend to the rows before it in its line), so none is made.
        batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids,
                 "use_cache": False}
        if image_inputs:
            image_of_row = {row: n for n, row in enumerate(np.flatnonzero(has_image))}
            order = [image_of_row[i] for line in lines for i in line if has_image[i]]
            batch |= {key: value[order] for key, value in image_inputs.items()}
        return batch

    def _prompt_ids(self, example: Example, n_image_tokens: int) -> list[int]:
        text = self.chat_format.prompt(example.prompt, n_image_tokens)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if self.chat_format.add_bos:
            ids = [self.tokenizer.bos_token_id, *ids]
        if ids.count(self.image_token_id) != n_image_tokens:
            raise ValueError(
                f"example {example.id!r}: its prompt must not contain the image token "
                f"{self.chat_format.image_token!r}; the chat format inserts it"
            )
        return ids

    def _answer_ids(self, answer: str) -> list[int]:
        """The answer's ids as they follow the prompt (tokenised after the prompt text and
        cut there), then the end token."""
        text = self.chat_format.answer(answer)
        ids = self.tokenizer.encode(self._answer_context + text, add_special_tokens=False)
        cut = len(self._answer_context_ids)
        if ids[:cut] != self._answer_context_ids:
            raise ModelError(
                f"{self._name}: the tokenizer merges the end of the prompt "
                f"{self._answer_context[-16:]!r} with the answer {text!r}, so the answer's "
                "tokens cannot be told from the prompt's"
            )
        return [*ids[cut:], self.end_token_id]

    def generate(
        self, examples: Sequence[Example], *, max_new_tokens: int = 32, batch_size: int = 16
    ) -> list[str]:
        """Greedy answers conditioned on each example's image (its ``answer`` is ignored).

        Batches are left-padded and decoded with the KV cache; only the new tokens up to the
        first end token are decoded, stripped.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        generated, _ = self._run(examples, None, max_new_tokens, batch_size)
        return generated

    def answer_nlls(
        self,
        examples: Sequence[Example],
        answers: Sequence[Sequence[str]],
        *,
        batch_size: int = 16,
    ) -> list[list[tuple[float, int]]]:
        """Per-token mean NLL and token count of every candidate answer of every example.

        ``answers[i]`` are the candidates for ``examples[i]`` (whose own ``answer`` is
        ignored). The scored tokens are exactly the training labels: the answer's tokens and
        the end token. Each example's prompt and image are encoded once: one forward pass over
        the left-padded prompts fills the KV cache, then candidate *j* of every example in the
        batch continues from that cache, which is cropped back before candidate *j* + 1. This
        equals scoring every candidate with its own full forward pass (the naive way, see
        :mod:`clearbench.evaluation.reference`), at a fraction of the cost.
        """
        _, scores = self._run(examples, answers, 0, batch_size)
        return scores

    def generate_and_score(
        self,
        examples: Sequence[Example],
        answers: Sequence[Sequence[str]],
        *,
        max_new_tokens: int = 32,
        batch_size: int = 16,
    ) -> tuple[list[str], list[list[tuple[float, int]]]]:
        """:meth:`generate` and :meth:`answer_nlls` at once, sharing each batch's prompt
        encoding: the candidates continue from the KV cache that generation's prefill filled
        (cropped back to the prompt), so image and prompt go through the model once."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        return self._run(examples, answers, max_new_tokens, batch_size)

    @torch.inference_mode()
    def _run(
        self,
        examples: Sequence[Example],
        answers: Sequence[Sequence[str]] | None,
        max_new_tokens: int,
        batch_size: int,
    ) -> tuple[list[str], list[list[tuple[float, int]]]]:
        if answers is not None and len(answers) != len(examples):
            raise ValueError(f"{len(examples)} examples but {len(answers)} answer lists")
        was_training = self.model.training
        self.model.eval()
        generated: list[str] = []
        scores: list[list[tuple[float, int]]] = []
        try:
            for start in range(0, len(examples), batch_size):
                batch = self.encode(examples[start : start + batch_size], with_answer=False)
                batch = {key: value.to(self.device) for key, value in batch.items()}
                prompt_length = batch["input_ids"].shape[1]
                cache = first_logits = None
                if max_new_tokens:
                    output = self.model.generate(
                        **batch,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        num_beams=1,
                        eos_token_id=self.stop_token_ids,
                        pad_token_id=self.pad_token_id,
                        return_dict_in_generate=True,
                        output_logits=answers is not None,
                    )
                    generated += [self._decode(row) for row in output.sequences[:, prompt_length:]]
                    if answers is not None:  # the prefill's cache and first-token logits
                        cache, first_logits = output.cache, output.logits[0]
                        cache.crop(prompt_length - cache.get_seq_length())
                if answers is not None:
                    scores += self._score_batch(
                        batch, answers[start : start + batch_size], cache, first_logits
                    )
        finally:
            self.model.train(was_training)
        return generated, scores

    def _score_batch(
        self,
        batch: dict[str, torch.Tensor],
        answers: Sequence[Sequence[str]],
        cache: Any | None,
        first_logits: torch.Tensor | None,
    ) -> list[list[tuple[float, int]]]:
        """Score candidates continuing from the prompts' KV cache (filled here if ``None``)."""
        positions = self.chat_format.position_ids(self.model, batch)
        if cache is None:
            prefix = self.model(**batch, position_ids=positions, use_cache=True, logits_to_keep=1)
            cache, first_logits = prefix.cache, prefix.logits[:, -1]
        # The prompt's last position predicts every candidate's first token.
        first = first_logits.float().log_softmax(-1)
        next_position = (positions if positions.dim() == 2 else positions.amax(0)).amax(-1) + 1
        prefix_mask = batch["attention_mask"]

        scores: list[list[tuple[float, int]]] = [[] for _ in answers]
        for j in range(max(len(candidates) for candidates in answers)):
            rows = [i for i, candidates in enumerate(answers) if j < len(candidates)]
            ids = {i: self._answer_ids(answers[i][j]) for i in rows}
            width = max(len(row_ids) for row_ids in ids.values())
            input_ids = torch.full((len(answers), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for i, row_ids in ids.items():
                input_ids[i, : len(row_ids)] = torch.tensor(row_ids)
                mask[i, : len(row_ids)] = 1
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            output = self.model(
                input_ids=input_ids,
                attention_mask=torch.cat([prefix_mask, mask], dim=1),
                position_ids=next_position[:, None] + torch.arange(width, device=self.device),
                cache=cache,
                use_cache=True,
            )
            cache.crop(-width)
            rest = output.logits[:, :-1].float().log_softmax(-1)
            log_probs = torch.cat([first[:, None], rest], dim=1)
            token_log_probs = log_probs.gather(-1, input_ids[..., None])[..., 0] * mask
            for i, row_ids in ids.items():
                nll = -token_log_probs[i].sum().item()
                scores[i].append((nll / len(row_ids), len(row_ids)))
        return scores

    def _decode(self, new_tokens: torch.Tensor) -> str:
        ids = new_tokens.tolist()
        stops = [i for i, token in enumerate(ids) if token in self.stop_token_ids]
        ids = ids[: stops[0]] if stops else ids
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def save(self, out_dir: str | Path, *, merge_lora: bool = True) -> None:
        """Save model (safetensors), tokenizer, image processor and processor (those a model
        has) to ``out_dir``.

        With ``merge_lora`` a LoRA model is merged first (in place), so the folder is a plain
        model that :func:`~clearbench.models.loading.load_vlm` reloads. Without it, a LoRA model
        is saved as a PEFT adapter only.
        """
        if merge_lora:
            lora.merge_lora(self)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        if self.image_processor is not None:
            self.image_processor.save_pretrained(out_dir)
        if self.processor is not None:
            self.processor.save_pretrained(out_dir)
