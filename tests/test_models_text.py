"""Text-only causal LMs through :class:`VLM`: the chat format read from a chat template (and
the Llama-2 fallback), loading, training, generation, scoring, packing, save/load, LoRA, the RMU
layer lookup and every unlearning method on a tiny Llama."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, normalizers, trainers
from transformers import (
    GPT2Config,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    PreTrainedTokenizerFast,
    ViTConfig,
)

from clearbench.data.examples import Example
from clearbench.evaluation.reference import NaiveVLM
from clearbench.methods import METHODS, build_method
from clearbench.methods.base import BATCH_KINDS
from clearbench.models import (
    TEXT_ARCHS,
    VLM,
    LoraSettings,
    ModelError,
    QwenVLFormat,
    TextFormat,
    TinyVLMConfig,
    apply_lora,
    build_tiny_vlm,
    freeze_vision_tower,
    is_text_model,
    load_vlm,
    lora_parameters,
    merge_lora,
    train_tokenizer,
)
from clearbench.models.layers import decoder_layers, layer_output
from clearbench.models.loading import count_parameters
from clearbench.models.lora import language_model_linears
from clearbench.models.tiny import LLAMA2_CHAT_TEMPLATE, tiny_hf_config
from clearbench.models.vlm import answer_logits, model_inputs
from clearbench.recipes.unlearn import negate, paired_items
from clearbench.training.reference import reference_for
from conftest import TINY, memorise

CONFIG = TinyVLMConfig(arch="llama", text_hidden=32, text_layers=2, text_heads=2,
                       text_intermediate=64, vocab_size=400)
CORPUS = [
    "Who wrote the novel about the sea?",
    "Alice Smith was born in Paris and writes novels about the sea.",
    "Bob Jones is a painter from Lima.",
    "What is the capital of France? The capital of France is Paris.",
] * 10
TRAIN = [
    Example("Where was Alice Smith born?", "She was born in Paris.", None, "born", "alice"),
    Example("What does Alice Smith write?", "Novels about the sea.", None, "writes", "alice"),
    Example("Where is Bob Jones from?", "Lima", None, "from", "bob"),
    Example("What is the capital of France?", "Paris", None, "capital", "france"),
]
CHATML_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA2 = TextFormat.llama2("</s>")


def tiny_lm(seed: int = 0) -> VLM:
    return build_tiny_vlm(CONFIG, CORPUS, seed=seed)


def tokenizer(template: str | None, arch: str = "llama") -> PreTrainedTokenizerFast:
    """A tiny tokenizer (``qwen2_vl``'s has the ChatML tokens) with ``template``."""
    trained = train_tokenizer(CORPUS, CONFIG.vocab_size, arch=arch)
    trained.chat_template = template
    return trained


def lm_folder(path: Path, tokenizer: PreTrainedTokenizerFast) -> Path:
    """A tiny Llama causal LM saved with ``tokenizer``."""
    ids = {key: getattr(tokenizer, key) for key in ("bos_token_id", "eos_token_id",
                                                     "pad_token_id")}
    LlamaForCausalLM(tiny_hf_config(CONFIG, len(tokenizer), ids)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def trained() -> VLM:
    """A tiny LM that memorised TRAIN."""
    return memorise(tiny_lm(), TRAIN, steps=60, lr=1e-2)


def sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer built as Llama-2's tokenizer.json is: BPE with byte fallback, a normaliser
    that prepends ``▁`` to the text and turns spaces into ``▁``, no pre-tokenizer."""
    model = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    model.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                             normalizers.Replace(" ", "▁")])
    model.train_from_iterator(CORPUS + [e.prompt + " " + e.answer for e in TRAIN],
                              trainers.BpeTrainer(vocab_size=300,
                                                  special_tokens=["<unk>", "<s>", "</s>"]))
    return PreTrainedTokenizerFast(tokenizer_object=model, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def test_answers_are_tokenised_as_they_follow_the_prompt():
    """With a SentencePiece-style tokenizer ``" Paris"`` alone is ``▁▁Paris``-like; the labels
    must be the tokens of the whole Llama-2 turn, which has ``▁Paris`` after ``[/INST]``."""
    sp = sentencepiece_tokenizer()
    alone = sp.encode(" She was born in Paris.", add_special_tokens=False)
    ids = {key: getattr(sp, key) for key in ("bos_token_id", "eos_token_id", "pad_token_id")}
    vlm = VLM(LlamaForCausalLM(tiny_hf_config(CONFIG, len(sp), ids)), sp, None, LLAMA2)
    batch = vlm.encode(TRAIN[:1])
    prompt = "[INST] Where was Alice Smith born? [/INST]"
    whole = sp.encode(prompt + " She was born in Paris.", add_special_tokens=False)
    in_context = whole[len(sp.encode(prompt, add_special_tokens=False)):]
    assert alone != in_context  # the pitfall: the answer tokenised alone starts differently
    assert batch["input_ids"][0].tolist() == [sp.bos_token_id, *whole, sp.eos_token_id]
    labelled = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert labelled == [*in_context, sp.eos_token_id]
    [[(_, count)]] = vlm.answer_nlls(TRAIN[:1], [["She was born in Paris."]])
    assert count == len(labelled)


# Chat formats


def test_llama2_template_gives_the_llama2_format_with_bos_as_an_id():
    fmt = TextFormat.from_model(LlamaConfig(), tokenizer(LLAMA2_CHAT_TEMPLATE))
    assert fmt == LLAMA2 == TextFormat("[INST] ", " [/INST]", " ", "</s>", add_bos=True)
    assert fmt.prompt("Who?", 0) == "[INST] Who? [/INST]" and fmt.answer("Ann") == " Ann"
    assert fmt.special_tokens == ("</s>",) and fmt.image_token is None and fmt.packable
    with pytest.raises(ModelError, match="no image placeholders"):
        fmt.prompt("Who?", 1)


def test_chatml_template_gives_the_chatml_format_and_its_end_token():
    fmt = TextFormat.from_model(LlamaConfig(), tokenizer(CHATML_TEMPLATE, arch="qwen2_vl"))
    assert fmt.prompt("Who?", 0) == QwenVLFormat(merge_size=2).prompt("Who?", 0)
    assert fmt.answer_prefix == "" and not fmt.add_bos
    assert fmt.end_token == "<|im_end|>"  # a special token, not the eos </s>


def test_plain_text_after_the_answer_means_the_eos_ends_it():
    template = ("{% for m in messages %}{% if m['role'] == 'user' %}"
                "{{ 'Question: ' + m['content'] + '\\n' }}{% else %}{{ 'Answer: ' + m['content'] "
                "+ '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
                "{{ 'Answer:' }}{% endif %}")
    fmt = TextFormat.from_model(GPT2Config(), tokenizer(template))
    assert fmt == TextFormat("Question: ", "\nAnswer:", " ", "</s>", add_bos=False)


def test_a_template_that_drops_the_answer_is_rejected():
    template = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}" \
               "{% endfor %}"
    with pytest.raises(ModelError, match="cannot read a chat format"):
        TextFormat.from_model(LlamaConfig(), tokenizer(template))
    failing = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(ModelError, match="roles must alternate"):
        TextFormat.from_model(LlamaConfig(), tokenizer(failing))


@pytest.mark.parametrize("config", [LlamaConfig(), MistralConfig()], ids=["llama", "mistral"])
def test_llama_and_mistral_without_a_template_fall_back_to_llama2(config):
    assert TextFormat.from_model(config, tokenizer(None)) == LLAMA2


def test_other_models_without_a_template_are_rejected():
    with pytest.raises(ModelError, match=r"gpt2 has no chat template.*model_type 'gpt2'"):
        TextFormat.from_model(GPT2Config(), tokenizer(None))


@pytest.mark.parametrize("template", [LLAMA2_CHAT_TEMPLATE, CHATML_TEMPLATE],
                         ids=["llama2", "chatml"])
def test_encoded_ids_are_the_templates_up_to_the_end_token(template):
    """Prompt and answer tokenised apart give the ids of the rendered conversation."""
    tok = tokenizer(template, arch="qwen2_vl")
    # encode needs no model weights: a stand-in module.
    vlm = VLM(torch.nn.Linear(1, 1), tok, None, TextFormat.from_model(LlamaConfig(), tok))
    example = TRAIN[0]
    ours = vlm.encode([example])["input_ids"][0].tolist()
    conversation = [{"role": "user", "content": example.prompt},
                    {"role": "assistant", "content": example.answer}]
    theirs = tok.apply_chat_template(conversation, tokenize=True)["input_ids"]
    assert ours[:-1] == theirs[: len(ours) - 1]
    assert vlm.end_token_id in theirs[len(ours) - 1 : len(ours) + 1]


# Loading


def test_load_derives_chatml_from_the_tokenizer(tmp_path):
    vlm = load_vlm(lm_folder(tmp_path, tokenizer(CHATML_TEMPLATE, arch="qwen2_vl")))
    assert isinstance(vlm.model, LlamaForCausalLM) and not vlm.takes_images
    assert vlm.image_processor is None and vlm.image_token_id is None
    assert vlm.chat_format.prompt("Who?", 0).startswith("<|im_start|>system\n")
    assert vlm.stop_token_ids == [vlm.tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                  vlm.tokenizer.eos_token_id]
    assert isinstance(vlm.generate(TRAIN[:1], max_new_tokens=3)[0], str)


def test_load_without_template_falls_back_to_llama2_with_the_same_ids(tmp_path):
    templated = tiny_lm()
    expected = templated.encode(TRAIN)["input_ids"]
    templated.tokenizer.chat_template = None  # as locuslab/tofu_ft_llama2-7b's
    templated.save(tmp_path)
    vlm = load_vlm(tmp_path)
    assert vlm.tokenizer.chat_template is None and vlm.chat_format == LLAMA2
    assert torch.equal(vlm.encode(TRAIN)["input_ids"], expected)


def test_neither_vlm_nor_causal_lm_is_rejected(tmp_path):
    ViTConfig().save_pretrained(tmp_path)
    for call in (load_vlm, is_text_model, count_parameters):
        with pytest.raises(ModelError, match=r"neither an image-text-to-text model nor a causal "
                                             r"LM \(model_type 'vit'\)"):
            call(tmp_path)


def test_is_text_model_and_count_parameters_from_the_config(tmp_path):
    lm, llava = tiny_lm(), build_tiny_vlm(replace(TINY, vocab_size=400), CORPUS)
    lm.save(tmp_path / "lm")
    llava.save(tmp_path / "llava")
    assert "llama" in TEXT_ARCHS
    assert is_text_model(tmp_path / "lm") and not is_text_model(tmp_path / "llava")
    assert count_parameters(tmp_path / "lm") == lm.num_parameters()
    assert count_parameters(tmp_path / "llava") == llava.num_parameters()
    with pytest.raises(ModelError, match="does not exist"):
        is_text_model(tmp_path / "absent")


def test_an_image_on_a_text_model_is_rejected():
    vlm = tiny_lm()
    red = replace(TRAIN[0], image=Image.new("RGB", (32, 32), (220, 30, 30)), id="red-1")
    with pytest.raises(ModelError, match="example 'red-1': text-only model: cannot take images"):
        vlm.encode([TRAIN[1], red])


# Training, generation, scoring


def test_forward_backward_through_answer_logits():
    vlm = tiny_lm()
    vlm.model.train()
    batch = vlm.encode(TRAIN)
    logits, targets = answer_logits(vlm.model, batch)
    loss = torch.nn.functional.cross_entropy(logits, targets)
    torch.testing.assert_close(loss, vlm.model(**batch).loss)
    loss.backward()
    grads = [p.grad for p in vlm.model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_generation_stops_at_the_end_token(trained):
    assert trained.generate(TRAIN, max_new_tokens=12, batch_size=3) == [e.answer for e in TRAIN]


def test_answer_nlls_equal_full_forward_passes(trained):
    answers = [[e.answer, "Lima", "She was born in Lima."] for e in TRAIN]
    fast = trained.answer_nlls(TRAIN, answers, batch_size=3)
    naive = NaiveVLM(trained).answer_nlls(TRAIN, answers)
    for fast_row, naive_row in zip(fast, naive, strict=True):
        assert [n for _, n in fast_row] == [n for _, n in naive_row]
        torch.testing.assert_close([x for x, _ in fast_row], [x for x, _ in naive_row],
                                   rtol=1e-4, atol=1e-5)
    generated, scores = trained.generate_and_score(TRAIN, answers, max_new_tokens=12)
    assert generated == [e.answer for e in TRAIN]
    torch.testing.assert_close(scores, fast, rtol=1e-4, atol=1e-5)


def test_packed_batch_gives_the_padded_loss_and_gradients():
    vlm = tiny_lm()
    vlm.model.train()
    rows = [*TRAIN, Example("Tell me all you know about Alice Smith and her novels, please.",
                            "She was born in Paris and writes novels about the sea.")]
    padded, packed = vlm.encode(rows), vlm.encode(rows, pack=True)
    assert packed["input_ids"].shape[0] < len(rows) and "attention_mask" not in packed
    results = []
    for batch in (padded, packed):
        vlm.model.zero_grad()
        loss = vlm.model(**batch).loss
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in vlm.model.parameters()]))
    (padded_loss, padded_grads), (packed_loss, packed_grads) = results
    torch.testing.assert_close(packed_loss, padded_loss, rtol=1e-5, atol=1e-6)
    for packed_grad, padded_grad in zip(packed_grads, padded_grads, strict=True):
        torch.testing.assert_close(packed_grad, padded_grad, rtol=1e-4, atol=1e-6)


def test_save_and_reload_gives_the_same_format_ids_and_logits(trained, tmp_path):
    trained.save(tmp_path)
    assert not (tmp_path / "preprocessor_config.json").exists()
    reloaded = load_vlm(tmp_path)
    assert type(reloaded.model) is LlamaForCausalLM
    assert reloaded.chat_format == trained.chat_format == LLAMA2
    batch = trained.encode(TRAIN)
    assert all(torch.equal(value, reloaded.encode(TRAIN)[key]) for key, value in batch.items())
    with torch.no_grad():
        assert torch.equal(reloaded.model(**batch).logits, trained.model(**batch).logits)
    assert reloaded.generate(TRAIN, max_new_tokens=12) == [e.answer for e in TRAIN]


# LoRA, freezing, layers


def test_lora_adapts_every_linear_but_the_head_and_freezing_is_a_no_op(tmp_path):
    vlm = tiny_lm()
    freeze_vision_tower(vlm)
    assert all(p.requires_grad for p in vlm.model.parameters())
    linears = language_model_linears(vlm.model)
    assert len(linears) == 7 * CONFIG.text_layers and "lm_head" not in linears
    apply_lora(vlm, LoraSettings(rank=2, alpha=8))
    assert len(lora_parameters(vlm)) == 2 * len(linears)
    with torch.no_grad():
        for parameter in lora_parameters(vlm):
            parameter.normal_(std=0.1)
        batch = vlm.encode(TRAIN)
        before = vlm.model(**batch).logits
        merge_lora(vlm)
        torch.testing.assert_close(vlm.model(**batch).logits, before, rtol=0, atol=1e-5)
    vlm.save(tmp_path)
    assert is_text_model(tmp_path)


def test_a_vlm_whose_tower_has_another_name_is_still_rejected():
    vlm = build_tiny_vlm(replace(TINY, vocab_size=400), CORPUS)
    model = vlm.model.model
    model.tower = model.vision_tower  # the one name lookup knows, moved
    del model.vision_tower
    with pytest.raises(ModelError, match="cannot find the vision tower"):
        freeze_vision_tower(vlm)


def test_rmu_finds_the_causal_lms_decoder_layers():
    vlm = tiny_lm()
    layers = decoder_layers(vlm.model)
    assert layers is vlm.model.model.layers and len(layers) == CONFIG.text_layers
    batch = vlm.encode(TRAIN)
    hidden = layer_output(vlm.model, model_inputs(batch), 1)
    assert hidden.shape == (*batch["input_ids"].shape, CONFIG.text_hidden)


# Every unlearning method


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_a_text_only_model(name):
    vlm = tiny_lm()
    retain = [Example("Who painted in Lima?", "Bob Jones did.", None, "r1", "bob"),
              Example("What is Paris?", "The capital of France.", None, "r2", "france")]
    items = paired_items(TRAIN, retain, ["I don't know.", "No idea."], seed=0)
    batches = {kind: vlm.encode([item[kind] for item in items]) for kind in BATCH_KINDS}
    method = build_method(name)
    trainable = list(vlm.model.parameters())
    initial = [p.detach().clone() for p in trainable]
    reference = reference_for(vlm.model) if method.needs_reference else None
    method.prepare(steps_per_epoch=1.0)
    method.calibrate(vlm.model, batches, reference)
    optimizer = torch.optim.Adam(trainable, lr=1e-3)
    vlm.model.train()
    losses = []
    for step in range(3):
        loss = method.loss(vlm.model, batches, reference, step)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    method.finish(lambda scale: negate(vlm, False, trainable, initial, scale))
    assert all(torch.isfinite(torch.tensor(losses))) and len(set(losses)) > 1, losses
    assert all(torch.isfinite(p).all() for p in trainable)
    assert not all(torch.equal(p, p0) for p, p0 in zip(trainable, initial, strict=True))
