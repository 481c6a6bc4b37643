"""prompts.token_prompt: a prompt handed to encode_prompts as tokenized items encodes exactly as its text does
(chunking, comma back-tracking, weights, BREAK), so a feature may edit it token by token (PhotoMaker)."""

import pytest
import torch

from sdxlkit.prompts import encode_prompts
from sdxlkit.prompts.encode import parser
from sdxlkit.prompts.token_prompt import TokenPrompt, tokenized


@pytest.mark.parametrize("weighting,prompt", [
    (None, "a lighthouse at dusk, (stormy:1.3) sea"),
    ("sdEmbeds", "word " * 70 + ", a (lighthouse:1.4) at [dusk] BREAK stormy sea" + " word" * 10),
])
def test_tokenized_items_encode_as_the_text(tiny_components, weighting, prompt):
    tokenizers = (tiny_components["tokenizer"], tiny_components["tokenizer_2"])
    encoders = (tiny_components["text_encoder"], tiny_components["text_encoder_2"])
    items = [tokenized(tok, parser(weighting)(prompt)) for tok in tokenizers]
    assert all(isinstance(item[0], tuple) for item in items[0] if isinstance(item, tuple))
    text = encode_prompts(tokenizers, encoders, prompt, "blurry", weighting=weighting)
    tokens = encode_prompts(tokenizers, encoders, TokenPrompt(prompt, items), "blurry", weighting=weighting)
    for field in ("prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds"):
        assert torch.equal(getattr(text, field), getattr(tokens, field))


def test_the_encoding_reads_the_items_not_the_text(tiny_components):
    tokenizers = (tiny_components["tokenizer"], tiny_components["tokenizer_2"])
    encoders = (tiny_components["text_encoder"], tiny_components["text_encoder_2"])
    other = [tokenized(tok, [("a red car", 1.0)]) for tok in tokenizers]
    embeds = encode_prompts(tokenizers, encoders, TokenPrompt("a lighthouse", other), None, guidance=False)
    assert torch.equal(embeds.prompt_embeds, encode_prompts(tokenizers, encoders, "a red car", None,
                                                            guidance=False).prompt_embeds)
