"""Tiny LLaVA and Qwen2-VL end to end: batching, training step, generation, save/load, LoRA
(text-only causal LMs: test_models_text.py)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from clearbench.data.examples import Example
from clearbench.methods.losses import answer_rows, sequence_log_prob
from clearbench.models import (
    VLM,
    LoraSettings,
    ModelError,
    TinyVLMConfig,
    apply_lora,
    build_tiny_vlm,
    enable_gradient_checkpointing,
    freeze_vision_tower,
    load_vlm,
    lora_parameters,
    merge_lora,
)
from clearbench.models.vlm import answer_logits
from conftest import memorise

ARCHS = ["llava", "qwen2_vl"]
CORPUS = [
    "Who is the person in the image?",
    "Alice Smith was born in Paris and writes novels about the sea.",
    "Bob Jones is a painter from Lima.",
    "What is the capital of France? The capital of France is Paris.",
] * 10
IMAGE_TOKENS = {"llava": 16, "qwen2_vl": 4}
"""Placeholders of a 32×32 image: 4×4 patches (LLaVA), merged 2×2 (Qwen2-VL)."""


def image(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, color)


RED, BLUE = image((220, 30, 30)), image((30, 30, 220))
TRAIN = [
    Example("Who is the person in the image?", "Alice Smith", RED, "red"),
    Example("Who is the person in the image?", "Bob Jones", BLUE, "blue"),
    Example("What is the capital of France?", "Paris", None, "text"),
    Example("Where was Alice Smith born?", "She was born in Paris.", None, "born"),
]


def tiny(arch: str, seed: int = 0) -> VLM:
    return build_tiny_vlm(TinyVLMConfig(arch=arch, vocab_size=400), CORPUS, seed=seed)


@pytest.fixture(scope="module", params=ARCHS)
def trained(request) -> VLM:
    """A tiny VLM that memorised TRAIN (so its greedy answers are meaningful)."""
    return memorise(tiny(request.param), TRAIN, steps=60)


def answer_log_likelihood(vlm: VLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed log-likelihood of the labelled tokens, per row."""
    with torch.no_grad():
        logits = vlm.model(**batch).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    log_probs = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (log_probs * mask).sum(-1)


@pytest.mark.parametrize("arch", ARCHS)
def test_labels_are_exactly_answer_plus_end_token(arch):
    vlm = tiny(arch)
    examples = [Example("Who is this?", "Alice Smith", RED), Example("Capital?", "Paris")]
    batch = vlm.encode(examples)
    tok, fmt = vlm.tokenizer, vlm.chat_format
    bos = [tok.bos_token_id] if arch == "llava" else []
    end = tok.convert_tokens_to_ids("</s>" if arch == "llava" else "<|im_end|>")
    n = IMAGE_TOKENS[arch]
    for row, (example, n_image) in enumerate(zip(examples, [n, 0], strict=True)):
        if arch == "llava":
            image_text = "<image>" * n_image + "\n" if n_image else ""
            prompt = f"USER: {image_text}{example.prompt} ASSISTANT:"
            answer = f" {example.answer}"
        else:
            image_text = (
                f"<|vision_start|>{'<|image_pad|>' * n_image}<|vision_end|>" if n_image else ""
            )
            prompt = fmt.prompt("", 0).replace("user\n", f"user\n{image_text}{example.prompt}")
            answer = example.answer
        prompt_ids = bos + tok.encode(prompt, add_special_tokens=False)
        answer_ids = [*tok.encode(answer, add_special_tokens=False), end]
        length = len(prompt_ids) + len(answer_ids)
        assert batch["input_ids"][row, :length].tolist() == prompt_ids + answer_ids
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (
            batch["input_ids"].shape[1] - length
        )
        labels = batch["labels"][row].tolist()
        assert labels[len(prompt_ids) : length] == answer_ids
        assert set(labels[: len(prompt_ids)] + labels[length:]) == {-100}
        assert batch["input_ids"][row].tolist().count(vlm.image_token_id) == n_image


@pytest.mark.parametrize("arch", ARCHS)
def test_mixed_batch_image_inputs(arch):
    vlm = tiny(arch)
    wide = image((0, 200, 0), (64, 32))  # Qwen2-VL: 2×4 patches → 2 tokens; LLaVA crops it
    batch = vlm.encode([Example("a", "b", RED), Example("c", "d"), Example("e", "f", wide)])
    counts = (batch["input_ids"] == vlm.image_token_id).sum(-1).tolist()
    if arch == "llava":
        assert counts == [16, 0, 16]
        assert batch["pixel_values"].shape == (2, 3, 32, 32)
    else:
        assert counts == [4, 0, 2]
        assert batch["image_grid_thw"].tolist() == [[1, 4, 4], [1, 2, 4]]
        assert batch["pixel_values"].shape[0] == 16 + 8
        assert torch.equal(
            batch["mm_token_type_ids"], (batch["input_ids"] == vlm.image_token_id).int()
        )
    text_only = vlm.encode([Example("c", "d")])
    assert set(text_only) == {"input_ids", "attention_mask", "labels"}


@pytest.mark.parametrize("arch", ARCHS)
def test_prompt_only_rows_are_left_padded(arch):
    vlm = tiny(arch)
    examples = [Example("a much longer question than the other one", "x"), Example("q", "x", RED)]
    batch = vlm.encode(examples, with_answer=False)
    assert "labels" not in batch
    width = batch["input_ids"].shape[1]
    for row, example in enumerate(examples):
        ids = vlm.encode([example], with_answer=False)["input_ids"][0].tolist()
        prompt_length = int((vlm.encode([example])["labels"][0] == -100).sum())
        assert ids == vlm.encode([example])["input_ids"][0, :prompt_length].tolist()
        pad = width - len(ids)
        assert batch["input_ids"][row].tolist() == [vlm.pad_token_id] * pad + ids
        assert batch["attention_mask"][row].tolist() == [0] * pad + [1] * len(ids)
    assert batch["attention_mask"].min() == 0


@pytest.mark.parametrize("arch", ARCHS)
def test_max_length_cuts_the_answer_never_the_prompt(arch):
    vlm = tiny(arch)
    example = Example("Who?", "Alice Smith was born in Paris and writes novels", RED)
    full = vlm.encode([example])
    prompt_length = int((full["labels"][0] == -100).sum())
    cut = vlm.encode([example], max_length=prompt_length + 2)
    assert cut["input_ids"].tolist() == [full["input_ids"][0, : prompt_length + 2].tolist()]
    assert int((cut["labels"] != -100).sum()) == 2
    with pytest.raises(ModelError, match="prompt alone"):
        vlm.encode([example], max_length=prompt_length)


@pytest.mark.parametrize("arch", ARCHS)
def test_image_token_in_prompt_is_rejected(arch):
    vlm = tiny(arch)
    with pytest.raises(ValueError, match="must not contain the image token"):
        vlm.encode([Example(f"look {vlm.chat_format.image_token}", "x", RED)])


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_backward_after_freezing_the_vision_tower(arch):
    vlm = tiny(arch)
    freeze_vision_tower(vlm)
    tower = "vision_tower" if arch == "llava" else "visual.blocks"
    projector = "multi_modal_projector" if arch == "llava" else "visual.merger"
    names = {n for n, p in vlm.model.named_parameters() if p.requires_grad}
    assert not any(tower in n for n in names)
    assert any(projector in n for n in names)
    vlm.model.train()
    loss = vlm.model(**vlm.encode(TRAIN)).loss
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in vlm.model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
            if projector in name:
                assert parameter.grad.abs().sum() > 0, name


def gradients(vlm: VLM) -> dict[str, torch.Tensor]:
    vlm.model.train()
    vlm.model.zero_grad()
    vlm.model(**vlm.encode(TRAIN)).loss.backward()
    return {n: p.grad.clone() for n, p in vlm.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gradient_checkpointing_gives_the_same_gradients(arch, lora):
    vlm = tiny(arch)
    freeze_vision_tower(vlm)
    if lora:
        apply_lora(vlm, LoraSettings(rank=4, alpha=8))
    plain = gradients(vlm)
    enable_gradient_checkpointing(vlm)
    assert vlm.model.is_gradient_checkpointing
    checkpointed = gradients(vlm)
    assert plain.keys() == checkpointed.keys() and plain
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-4, atol=1e-6, msg=name)


PACKABLE = [
    *TRAIN,
    # Longest row, so packing (by decreasing length) moves its image before RED's.
    Example("Describe the person in the picture, please, in a few words.", "Bob Jones", BLUE, "b2"),
    Example("Capital of France?", "Paris", None, "short"),
]


def test_packing_puts_rows_side_by_side_with_restarting_positions():
    vlm = tiny("llava")
    padded, packed = vlm.encode(PACKABLE), vlm.encode(PACKABLE, pack=True)
    assert "attention_mask" not in packed and packed["use_cache"] is False
    assert packed["input_ids"].shape[0] < len(PACKABLE)  # some rows share a line
    assert packed["input_ids"].shape[1] == padded["input_ids"].shape[1]
    starts = (packed["position_ids"] == 0).sum().item()
    padding_segments = (packed["input_ids"][:, -1] == vlm.pad_token_id).sum().item()
    assert starts == len(PACKABLE) + padding_segments
    assert sorted(packed["labels"][packed["labels"] != -100].tolist()) == sorted(
        padded["labels"][padded["labels"] != -100].tolist()
    )
    # Images follow the placeholders: the longest (BLUE) row now comes first.
    torch.testing.assert_close(packed["pixel_values"], padded["pixel_values"][[2, 0, 1]])


def assert_same_loss_and_gradients(vlm: VLM, *losses) -> None:
    """Each of ``losses`` (callables) gives the same loss and gradients on ``vlm.model``."""
    vlm.model.train()
    results = []
    for loss_of in losses:
        vlm.model.zero_grad()
        loss = loss_of()
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in
                                        vlm.model.named_parameters() if p.grad is not None}))
    (expected_loss, expected_grads), *others = results
    for loss, grads in others:
        torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
        assert grads.keys() == expected_grads.keys()
        for name, grad in expected_grads.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def tiny_llava(lora: bool) -> VLM:
    vlm = tiny("llava")
    if lora:
        apply_lora(vlm, LoraSettings(rank=4, alpha=8))
    return vlm


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_packed_batch_gives_the_padded_loss_and_gradients(lora):
    vlm = tiny_llava(lora)
    padded, packed = vlm.encode(PACKABLE), vlm.encode(PACKABLE, pack=True)
    assert_same_loss_and_gradients(
        vlm, lambda: vlm.model(**padded).loss, lambda: vlm.model(**packed).loss
    )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pack", [False, True], ids=["padded", "packed"])
def test_answer_logits_are_the_full_logits_at_the_answer_positions(arch, pack):
    vlm = tiny(arch)
    batch = vlm.encode(PACKABLE, pack=pack)
    with torch.no_grad():
        full = vlm.model(**batch).logits
        logits, targets = answer_logits(vlm.model, batch)
    follows_answer = batch["labels"][:, 1:] != -100
    assert logits.shape == (follows_answer.sum(), full.shape[-1]) and targets.ndim == 1
    torch.testing.assert_close(logits, full[:, :-1][follows_answer], rtol=1e-5, atol=1e-6)
    assert targets.tolist() == batch["labels"][:, 1:][follows_answer].tolist()
    with torch.no_grad():  # the hook is gone: the head sees every position again
        assert vlm.model(**batch).logits.shape == full.shape


@pytest.mark.parametrize("arch", ARCHS)
def test_sequence_log_prob_from_answer_logits_is_the_full_forward_s(arch):
    vlm = tiny(arch)
    batch = vlm.encode(TRAIN)
    with torch.no_grad():
        logits, targets = answer_logits(vlm.model, batch)
    rows = answer_rows(batch["labels"])
    torch.testing.assert_close(sequence_log_prob(logits, targets, rows, len(TRAIN)),
                               answer_log_likelihood(vlm, batch), rtol=1e-5, atol=1e-5)


def test_answer_logits_remove_their_hook_when_the_forward_fails():
    vlm = tiny("llava")
    batch = vlm.encode(TRAIN)
    with pytest.raises(ValueError):
        answer_logits(vlm.model, {**batch, "pixel_values": batch["pixel_values"][:1]})
    assert not vlm.model.get_output_embeddings()._forward_pre_hooks


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_answer_logits_give_the_model_loss_and_gradients(lora):
    vlm = tiny_llava(lora)
    batch = vlm.encode(PACKABLE, pack=True)
    assert_same_loss_and_gradients(
        vlm,
        lambda: vlm.model(**batch).loss,
        lambda: torch.nn.functional.cross_entropy(*answer_logits(vlm.model, batch)),
    )


def test_formats_that_cannot_pack_are_padded():
    vlm = tiny("qwen2_vl")
    padded, packed = vlm.encode(PACKABLE), vlm.encode(PACKABLE, pack=True)
    assert packed.keys() == padded.keys()
    for key, value in padded.items():
        torch.testing.assert_close(packed[key], value, msg=key)
    with pytest.raises(ValueError, match="training batches"):
        vlm.encode(PACKABLE, with_answer=False, pack=True)


def test_build_is_deterministic_for_a_seed():
    a, b, c = tiny("llava"), tiny("llava"), tiny("llava", seed=1)
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    state_a, state_b, state_c = (v.model.state_dict() for v in (a, b, c))
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)


def test_generation_is_conditioned_on_the_image(trained):
    assert trained.generate(TRAIN, max_new_tokens=12) == [e.answer for e in TRAIN]


def test_generation_does_not_depend_on_batch_size(trained):
    examples = [
        *TRAIN,
        Example("Who is the person?", "", image((120, 30, 200))),
        Example("Tell me about Bob Jones.", ""),
    ]
    one = trained.generate(examples, max_new_tokens=10, batch_size=1)
    assert trained.generate(examples, max_new_tokens=10, batch_size=4) == one
    assert trained.model.training is False


def test_right_padding_does_not_change_answer_likelihood(trained):
    alone = torch.cat([answer_log_likelihood(trained, trained.encode([e])) for e in TRAIN])
    batched = answer_log_likelihood(trained, trained.encode(TRAIN))
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-4)


def test_left_padding_does_not_change_next_token_logits(trained):
    def last_logits(examples):
        with torch.no_grad():
            return trained.model(**trained.encode(examples, with_answer=False)).logits[:, -1]

    alone = torch.cat([last_logits([e]) for e in TRAIN])
    torch.testing.assert_close(last_logits(TRAIN), alone, rtol=0, atol=1e-4)


def test_save_and_reload_gives_identical_logits(trained, tmp_path):
    trained.save(tmp_path)
    reloaded = load_vlm(tmp_path)
    assert type(reloaded.model) is type(trained.model)
    assert type(reloaded.chat_format) is type(trained.chat_format)
    batch = trained.encode(TRAIN)
    assert all(torch.equal(v, reloaded.encode(TRAIN)[k]) for k, v in batch.items())
    with torch.no_grad():
        assert torch.equal(reloaded.model(**batch).logits, trained.model(**batch).logits)
    assert reloaded.generate(TRAIN[:2]) == ["Alice Smith", "Bob Jones"]


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_targets_only_language_model_linears(arch):
    vlm = tiny(arch)
    total = vlm.num_parameters()
    apply_lora(vlm, LoraSettings())
    adapted = {
        n.rsplit(".lora_A", 1)[0] for n, _ in vlm.model.named_parameters() if ".lora_A." in n
    }
    assert adapted and all(".language_model." in n for n in adapted)
    leaves = {n.rsplit(".", 1)[-1] for n in adapted}
    assert leaves == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert len(adapted) == 7 * 4
    trainable = [n for n, p in vlm.model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert len(lora_parameters(vlm)) == len(trainable) == 2 * len(adapted)
    # rank 8 × (in + out) per layer: 4 attention 128→128, gate/up 128→512, down 512→128; 4 layers
    assert vlm.num_parameters(trainable_only=True) == 4 * 8 * (4 * 256 + 3 * 640)
    assert vlm.num_parameters() == total + vlm.num_parameters(trainable_only=True)


def test_lora_target_subset_and_unknown_target():
    vlm = tiny("llava")
    apply_lora(vlm, LoraSettings(target_modules=["q_proj", "v_proj"]))
    assert len(lora_parameters(vlm)) == 2 * 2 * 4
    with pytest.raises(ModelError, match="already has LoRA"):
        apply_lora(vlm, LoraSettings())
    with pytest.raises(ModelError, match="no linear layer"):
        apply_lora(tiny("llava"), LoraSettings(target_modules=["nope"]))


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_merge_is_exact_and_saves_a_plain_model(arch, tmp_path):
    vlm = tiny(arch)
    apply_lora(vlm, LoraSettings(rank=4, alpha=16))
    optimizer = torch.optim.AdamW(lora_parameters(vlm), lr=1e-2)
    batch = vlm.encode(TRAIN)
    vlm.model.train()
    for _ in range(3):
        vlm.model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(p.abs().sum() > 0 for n, p in vlm.model.named_parameters() if ".lora_B." in n)
    vlm.model.eval()
    answers = vlm.generate(TRAIN, max_new_tokens=6)
    with torch.no_grad():
        before = vlm.model(**batch).logits
        merge_lora(vlm)
        assert not lora_parameters(vlm)
        torch.testing.assert_close(vlm.model(**batch).logits, before, rtol=0, atol=1e-5)
    assert vlm.generate(TRAIN, max_new_tokens=6) == answers
    vlm.save(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    with torch.no_grad():
        reloaded = load_vlm(tmp_path).model(**batch).logits
    torch.testing.assert_close(reloaded, before, rtol=0, atol=1e-5)


def test_missing_local_path(tmp_path):
    for path in (tmp_path / "absent", "./absent-model"):
        with pytest.raises(ModelError, match="does not exist"):
            load_vlm(path)


def test_unsupported_family_is_rejected_before_loading_weights(tmp_path):
    tiny("llava").save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "llava_next"}))
    with pytest.raises(ModelError, match="no chat format for model_type 'llava_next'"):
        load_vlm(tmp_path)


def test_tokenizer_without_image_token_is_rejected(tmp_path):
    tiny("llava").save(tmp_path)
    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", "a"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    plain = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    plain.save_pretrained(tmp_path)  # replaces the tiny tokenizer, which has <image>
    with pytest.raises(ModelError, match=r"no single token '<image>'") as info:
        load_vlm(tmp_path)
    assert str(tmp_path) in str(info.value)
