"""A model does not encode the same prompts twice, and anything that changes the embeddings makes it encode again."""

import pytest
import torch

from sdxlkit.generate import Generation, prompt_embeds
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.lora import apply_loras

GEN = dict(prompt="a lighthouse on a cliff", negative_prompt="fog", width=64, height=64, steps=3, cfg=5.0,
           scheduler="Euler", seed=5)


@pytest.fixture(scope="module")
def model(adapter_models):
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


class Counted:
    def __init__(self, encoder):
        self.calls = 0
        encoder.register_forward_pre_hook(self.count)

    def count(self, module, args):
        self.calls += 1


@pytest.fixture(scope="module")
def encoder_calls(model):
    return Counted(model.text_encoder_2)


def embeds(model, prompt="a lighthouse on a cliff", **overrides):
    gen = Generation(**(GEN | {"prompt": prompt} | overrides))
    with torch.inference_mode():
        apply_loras(model, gen.loras)
        return prompt_embeds(model, gen, gen.prompt, gen.negative_prompt, gen.cfg)


def test_the_same_prompts_are_encoded_once(model, encoder_calls):
    first = embeds(model, "a quiet harbor")
    calls = encoder_calls.calls
    again = embeds(model, "a quiet harbor", seed=99, steps=7)  # what does not reach the text encoders
    assert encoder_calls.calls == calls and again is first


@pytest.mark.parametrize("change", [
    {"prompt": "a stormy harbor"}, {"negative_prompt": "rain"}, {"clip_skip": 1}, {"weighting": "compel"},
    {"cfg": 1.0},
])
def test_a_change_that_reaches_the_encoders_encodes_again(model, encoder_calls, change):
    base = embeds(model, "a quiet harbor")
    calls = encoder_calls.calls
    changed = embeds(model, **({"prompt": "a quiet harbor"} | change))
    assert encoder_calls.calls > calls and changed is not base


def test_a_new_lora_set_encodes_again_with_the_merged_text_encoders(model, adapter_models, encoder_calls):
    style = adapter_models.loras["style_kohya"]
    plain = embeds(model, "a quiet harbor")
    with_lora = embeds(model, "a quiet harbor", loras=[(style, 0.8)])
    other_weight = embeds(model, "a quiet harbor", loras=[(style, -0.8)])
    assert not torch.equal(with_lora.prompt_embeds, plain.prompt_embeds)
    assert not torch.equal(other_weight.prompt_embeds, with_lora.prompt_embeds)
    back = embeds(model, "a quiet harbor")
    assert back is plain and torch.equal(embeds(model, "a quiet harbor", loras=[(style, 0.8)]).prompt_embeds,
                                         with_lora.prompt_embeds)
