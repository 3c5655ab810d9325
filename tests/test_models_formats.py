"""Chat formats: exact template text per family, and the unknown-family error."""

from __future__ import annotations

import pytest

from clearbench.models import LlavaFormat, ModelError, QwenVLFormat
from clearbench.models.formats import chat_format_class


def test_llava_template():
    fmt = LlavaFormat(end_token="</s>", patch_size=14)
    assert fmt.prompt("Who?", 2) == "USER: <image><image>\nWho? ASSISTANT:"
    assert fmt.prompt("Who?", 0) == "USER: Who? ASSISTANT:"
    assert fmt.answer("Ann") == " Ann"


def test_qwen_template():
    fmt = QwenVLFormat(merge_size=2)
    system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    assert fmt.prompt("Who?", 2) == (
        f"{system}<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>"
        "Who?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert (
        fmt.prompt("Who?", 0)
        == f"{system}<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert fmt.answer("Ann") == "Ann"
    assert fmt.end_token == "<|im_end|>"


@pytest.mark.parametrize("model_type", ["llava", "qwen2_vl", "qwen2_5_vl"])
def test_supported_families(model_type):
    assert model_type in chat_format_class(model_type).model_types


def test_unknown_model_type_names_it_and_the_supported_ones():
    with pytest.raises(ModelError, match=r"'blip-2'.*llava, qwen2_vl, qwen2_5_vl"):
        chat_format_class("blip-2")
