"""sdxlkit.prompts: parity with diffusers' SDXL encode_prompt, long prompts, A1111 parsing, weighting, compel.

Tiny random CLIP text encoders (built here) with the real CLIP tokenizers; no model files.
"""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from sdxlkit.errors import MissingDependency, SdxlKitError  # noqa: E402
from sdxlkit.loading.tokenizers import load_clip_tokenizers  # noqa: E402
from sdxlkit.prompts import (  # noqa: E402
    BREAK,
    clip_skip_from_comfy_layer,
    comfy_stop_at_clip_layer,
    encode_prompts,
    parse_a1111,
)
from sdxlkit.prompts.a1111 import has_weights  # noqa: E402
from sdxlkit.prompts.chunking import build_chunks  # noqa: E402

# single-token words, so "N words" is "N tokens"
WORDS = ["red", "green", "blue", "cat", "dog", "tree", "house", "sky", "car", "bird", "fish", "moon"]


def words(n: int, start: int = 0) -> str:
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(n))


def _text_config(**kw):
    from transformers import CLIPTextConfig

    base = dict(
        vocab_size=49408, max_position_embeddings=77, num_attention_heads=4, intermediate_size=37,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
    )
    base.update(kw)
    return CLIPTextConfig(**base)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny models on a shared 2-core machine: one intra-op thread is ~50x faster than two contended ones
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizers():
    return load_clip_tokenizers()


@pytest.fixture(scope="module")
def encoders():
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    te1 = CLIPTextModel(_text_config(hidden_size=32, num_hidden_layers=3, hidden_act="quick_gelu")).eval()
    torch.manual_seed(0)
    te2 = CLIPTextModelWithProjection(
        _text_config(hidden_size=64, num_hidden_layers=10, hidden_act="gelu", projection_dim=64)
    ).eval()
    return te1, te2


def _pipe(tokenizers, encoders, force_zeros: bool = True):
    from diffusers import StableDiffusionXLPipeline

    # encode_prompt needs only the tokenizers and text encoders; no UNet/VAE is built.
    return StableDiffusionXLPipeline(
        vae=None, text_encoder=encoders[0], text_encoder_2=encoders[1], tokenizer=tokenizers[0],
        tokenizer_2=tokenizers[1], unet=None, scheduler=None, force_zeros_for_empty_prompt=force_zeros,
    )


@pytest.fixture(scope="module")
def pipe(tokenizers, encoders):
    return _pipe(tokenizers, encoders)


def reference(pipe, prompt, negative=None, clip_skip=0, guidance=True):
    with torch.no_grad():
        return pipe.encode_prompt(
            prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=guidance,
            negative_prompt=negative, clip_skip=clip_skip or None,
        )


def ours(tokenizers, encoders, prompt, negative=None, **kw):
    out = encode_prompts(tokenizers, encoders, prompt, negative, **kw)
    return out.prompt_embeds, out.negative_prompt_embeds, out.pooled_prompt_embeds, out.negative_pooled_prompt_embeds


def assert_same(got, ref):
    for g, r in zip(got, ref):
        if r is None:
            assert g is None
        else:
            assert g.shape == r.shape and g.dtype == r.dtype
            assert torch.equal(g, r), float((g - r).abs().max())


# --------------------------------------------------------------------------------------- diffusers parity

@pytest.mark.parametrize("clip_skip", [0, 1, 2])
@pytest.mark.parametrize("negative", [None, "ugly, blurry, low quality"])
@pytest.mark.parametrize("guidance", [True, False])
def test_parity_with_diffusers(tokenizers, encoders, pipe, clip_skip, negative, guidance):
    prompt = "a photo of an astronaut (riding) a horse on the moon, 8k"
    ref = reference(pipe, prompt, negative, clip_skip, guidance)
    # diffusers 0.42 takes the negative from hidden_states[-2] whatever clip_skip is: negative_clip_skip=0
    got = ours(tokenizers, encoders, prompt, negative, clip_skip=clip_skip, guidance=guidance, negative_clip_skip=0)
    assert_same(got, ref)
    assert got[0].shape == (1, 77, 96) and got[2].shape == (1, 64)
    if guidance and negative is None:
        assert not got[1].any() and not got[3].any()  # force_zeros_for_empty_prompt


def test_default_negative_uses_the_same_clip_skip(tokenizers, encoders, pipe):
    got = ours(tokenizers, encoders, "a cat", "a dog", clip_skip=1)
    ref_neg_as_prompt = reference(pipe, "a dog", clip_skip=1, guidance=False)
    assert torch.equal(got[1], ref_neg_as_prompt[0]) and torch.equal(got[3], ref_neg_as_prompt[2])
    assert not torch.equal(got[1], reference(pipe, "a cat", "a dog", clip_skip=1)[1])  # diffusers' quirk differs


def test_empty_negative(tokenizers, encoders, pipe):
    # an explicit "" is encoded (as diffusers does), not zeroed
    assert_same(ours(tokenizers, encoders, "a cat", ""), reference(pipe, "a cat", ""))
    # negative None without zeroing = the encoding of "" (diffusers with force_zeros_for_empty_prompt=False)
    got = ours(tokenizers, encoders, "a cat", None, zero_negative_when_empty=False)
    assert_same(got, reference(_pipe(tokenizers, encoders, force_zeros=False), "a cat"))
    assert got[1].abs().sum() > 0


def test_device_and_dtype_follow_the_second_encoder(tokenizers, encoders):
    out = encode_prompts(tokenizers, encoders, "a cat", None)
    assert out.prompt_embeds.dtype == encoders[1].dtype and out.prompt_embeds.device.type == "cpu"
    assert set(out.pipeline_kwargs()) == {
        "prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds"
    }
    assert set(encode_prompts(tokenizers, encoders, "a", None, guidance=False).pipeline_kwargs()) == {
        "prompt_embeds", "pooled_prompt_embeds"
    }


# --------------------------------------------------------------------------------------- long prompts

def test_long_prompt_is_chunked(tokenizers, encoders, pipe):
    prompt = words(200)
    assert len(tokenizers[0](prompt, add_special_tokens=False, verbose=False).input_ids) == 200
    emb, neg, pooled, neg_pooled = ours(tokenizers, encoders, prompt, "bad hands")
    assert emb.shape == (1, 231, 96) and neg.shape == (1, 231, 96)
    for i, (start, n) in enumerate([(0, 75), (75, 75), (150, 50)]):
        alone = reference(pipe, words(n, start), guidance=False)
        assert torch.equal(emb[:, 77 * i: 77 * (i + 1)], alone[0]), i
    # pooled from the first chunk
    assert torch.equal(pooled, reference(pipe, words(75), guidance=False)[2])
    # the negative: its one chunk repeated to the positive's three (ComfyUI's alignment, neutral for attention)
    alone = reference(pipe, "bad hands", guidance=False)[0]
    assert all(torch.equal(neg[:, 77 * i: 77 * (i + 1)], alone) for i in range(3))
    assert torch.equal(neg_pooled, reference(pipe, "bad hands", guidance=False)[2])


def test_chunk_boundaries_and_negative_longer(tokenizers, encoders):
    assert ours(tokenizers, encoders, words(75), None)[0].shape[1] == 77
    assert ours(tokenizers, encoders, words(76), None)[0].shape[1] == 154
    emb, neg, _, _ = ours(tokenizers, encoders, "a cat", words(100))  # the positive is repeated
    assert emb.shape[1] == neg.shape[1] == 154 and torch.equal(emb[:, 77:], emb[:, :77])
    # 3 and 2 chunks: both repeated to the least common multiple, 6 chunks
    emb, neg, _, _ = ours(tokenizers, encoders, words(200), words(100))
    assert emb.shape[1] == neg.shape[1] == 6 * 77
    assert torch.equal(emb[:, 3 * 77:], emb[:, :3 * 77])
    assert all(torch.equal(neg[:, 2 * 77 * i: 2 * 77 * (i + 1)], neg[:, :2 * 77]) for i in range(3))
    # zero negatives take the positive's length
    emb, neg, _, _ = ours(tokenizers, encoders, words(100), None)
    assert neg.shape == emb.shape == (1, 154, 96) and not neg.any()


def test_repeating_keys_is_neutral_for_cross_attention():
    """Why repeating is the neutral alignment: attention over [c, c] equals attention over c (softmax weights
    halve, each value counts twice); padding with another chunk does not."""
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    attention = Attention(query_dim=32, cross_attention_dim=48, heads=4, dim_head=8).eval()
    query, context, other = torch.randn(1, 16, 32), torch.randn(1, 77, 48), torch.randn(1, 77, 48)
    with torch.no_grad():
        once = attention(query, encoder_hidden_states=context)
        twice = attention(query, encoder_hidden_states=context.repeat(1, 2, 1))
        padded = attention(query, encoder_hidden_states=torch.cat([context, other], dim=1))
    assert (twice - once).abs().max() <= 1e-6 * once.abs().max()
    assert (padded - once).abs().max() > 1e-2 * once.abs().max()


def test_a_second_negative_chunk_of_the_same_text_changes_nothing(tiny_checkpoint):
    """A one-chunk prompt with negative "X" runs unaligned; with "X BREAK X" both sides become two chunks (the
    positive repeated): the UNet's result must not change."""
    from sdxlkit.generate import Generation, generate
    from sdxlkit.loading.loader import ModelSpec, load_sdxl

    components = load_sdxl(ModelSpec(tiny_checkpoint))

    def image(negative):
        run = Generation(prompt="a harbor at dawn", negative_prompt=negative, width=64, height=64, steps=3, cfg=6.0,
                         scheduler="Euler", seed=5, weighting="sdEmbeds")
        return generate(components, run)[0][0]

    one, two = image("blurry, dark"), image("blurry, dark BREAK blurry, dark")
    assert (one - two).abs().max().item() <= 1e-5
    assert (one - image("blurry, dark BREAK")).abs().max().item() == 0.0  # a trailing BREAK adds no chunk
    assert (one - image("blurry, dark BREAK sunny")).abs().max().item() > 1e-3  # a different chunk does change it


# --------------------------------------------------------------------------------------- A1111 parser

def test_parser_basic_forms():
    assert parse_a1111("normal text") == [("normal text", 1.0)]
    assert parse_a1111("an (important) word") == [("an ", 1.0), ("important", 1.1), (" word", 1.0)]
    assert parse_a1111("((word))") == [("word", 1.1 * 1.1)]
    assert parse_a1111("[word]") == [("word", 1 / 1.1)]
    assert parse_a1111("(word:1.5)") == [("word", 1.5)]
    assert parse_a1111("(a phrase:0.8) here") == [("a phrase", 0.8), (" here", 1.0)]
    assert parse_a1111("(x: 0.8 )") == [("x", 0.8)]
    assert parse_a1111("") == [("", 1.0)]


def test_parser_nesting_like_a1111():
    assert parse_a1111("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).") == [
        ("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
        ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1),
    ]
    assert parse_a1111("(unnecessary)(parens)") == [("unnecessaryparens", 1.1)]
    (a, wa), b = parse_a1111("([a] b)")
    assert a == "a" and wa == pytest.approx(1.0) and b == (" b", 1.1)
    assert parse_a1111("((a:2) b:0.5)") == [("a", 1.0), (" b", 0.5)]


def test_parser_escapes():
    assert parse_a1111(r"\(literal\]") == [("(literal]", 1.0)]
    assert parse_a1111(r"\[x\) \\ y") == [(r"[x) \ y", 1.0)]
    assert parse_a1111(r"a\b") == [("ab", 1.0)]  # a lone backslash is dropped, as in A1111
    assert parse_a1111(r"(\(x\):1.2)") == [("(x)", 1.2)]


def test_parser_unbalanced_like_a1111():
    assert parse_a1111("(unbalanced") == [("unbalanced", 1.1)]
    assert parse_a1111("[open") == [("open", 1 / 1.1)]
    assert parse_a1111("a) b] c") == [("a) b] c", 1.0)]
    assert parse_a1111("a:1.5) b") == [("a:1.5) b", 1.0)]
    assert parse_a1111("(a:1.5") == [("a:1.5", 1.1)]
    assert parse_a1111("time: 12:30") == [("time: 12:30", 1.0)]
    with pytest.raises(SdxlKitError, match="not a number"):
        parse_a1111("(a:1.2.3)")


def test_parser_break():
    assert parse_a1111("a cat BREAK a dog") == [("a cat", 1.0), BREAK, ("a dog", 1.0)]
    assert parse_a1111("(a BREAK b)") == [("a", 1.1), BREAK, ("b", 1.1)]
    assert parse_a1111("BREAKFAST break") == [("BREAKFAST break", 1.0)]
    assert has_weights(parse_a1111("(a) BREAK b")) and not has_weights(parse_a1111("a BREAK b"))


def test_chunks_and_break(tokenizers):
    tok1, tok2 = tokenizers
    chunks = build_chunks(tok1, parse_a1111("a (cat:1.5) BREAK dog"))
    assert len(chunks) == 2
    a, cat, dog = (tok1(w, add_special_tokens=False).input_ids[0] for w in ("a", "cat", "dog"))
    assert chunks[0].ids[:4] == (49406, a, cat, 49407) and chunks[0].ids[4:] == (49407,) * 73
    assert chunks[0].weights[:4] == (1.0, 1.0, 1.5, 1.0) and len(chunks[0].weights) == 77
    assert chunks[1].ids[:3] == (49406, dog, 49407)
    assert build_chunks(tok2, parse_a1111("dog"))[0].ids[3:] == (0,) * 74  # bigG pads with "!"
    assert len(build_chunks(tok1, parse_a1111("BREAK a"))) == 2  # leading BREAK: empty first chunk (A1111)
    assert len(build_chunks(tok1, parse_a1111("a BREAK"))) == 1  # trailing BREAK adds nothing
    assert len(build_chunks(tok1, parse_a1111(words(75) + " BREAK x"))) == 2


def chunk_words(tokenizer, chunk) -> list[str]:
    """The prompt tokens of a chunk as text pieces (BOS, EOS and padding stripped)."""
    ids = list(chunk.ids[1:])
    ids = ids[:ids.index(tokenizer.eos_token_id)]
    return [tokenizer.convert_ids_to_tokens(i).replace("</w>", "") for i in ids]


def test_comma_backtrack_like_a1111(tokenizers):
    """A1111's rule (sd_hijack_clip.tokenize_line, comma_padding_backtrack = 20): when the 76th token arrives and
    is not a comma, the tokens after the chunk's last comma move to the next chunk if that comma is at most 20
    tokens back."""
    tok = tokenizers[0]
    head, tail = words(70), words(10, 70)

    def cut(prompt, backtrack=20):
        return [chunk_words(tok, c) for c in build_chunks(tok, parse_a1111(prompt), comma_backtrack=backtrack)]

    # comma 5 tokens back: the 4 words after it move on
    chunks = cut(f"{head}, {tail}")
    assert chunks == [head.split() + [","], tail.split()]
    assert cut(f"{head}, {tail}", backtrack=0) == [head.split() + [","] + tail.split()[:4], tail.split()[4:]]
    # exactly 20 back (comma at index 55 of 75) still moves; 21 back does not
    assert [len(c) for c in cut(f"{words(55)}, {words(30, 55)}")] == [56, 30]
    assert [len(c) for c in cut(f"{words(54)}, {words(30, 54)}")] == [75, 10]
    # a comma arriving as the 76th token simply opens the next chunk
    assert cut(f"{words(75)}, {words(3, 75)}") == [words(75).split(), [","] + words(3, 75).split()]
    # weights move with their tokens: a weighted fragment straddling token 75 stays whole
    weighted = build_chunks(tok, parse_a1111(f"{head}, (sea ship:1.3) {words(8, 70)}"), comma_backtrack=20)
    assert chunk_words(tok, weighted[1])[:2] == ["sea", "ship"] and weighted[1].weights[1:3] == (1.3, 1.3)
    assert weighted[0].weights[1:73] == (1.0,) * 72


def test_sdembeds_uses_the_comma_backtrack_and_plain_cuts_at_75(tokenizers, encoders, pipe):
    prompt = f"{words(70)}, {words(10, 70)}"
    a1111 = ours(tokenizers, encoders, prompt, None, weighting="sdEmbeds", guidance=False)[0]
    assert torch.equal(a1111[:, :77], reference(pipe, words(70) + ",", guidance=False)[0])
    assert torch.equal(a1111[:, 77:], reference(pipe, words(10, 70), guidance=False)[0])
    plain = ours(tokenizers, encoders, prompt, None, guidance=False)[0]
    assert torch.equal(plain[:, 77:], reference(pipe, words(6, 74), guidance=False)[0])


def test_break_encodes_as_separate_chunks(tokenizers, encoders, pipe):
    emb = ours(tokenizers, encoders, "a cat BREAK a dog", None, weighting="sdEmbeds", guidance=False)[0]
    assert emb.shape[1] == 154
    assert torch.equal(emb[:, :77], reference(pipe, "a cat", guidance=False)[0])
    assert torch.equal(emb[:, 77:], reference(pipe, "a dog", guidance=False)[0])
    # without weighting, BREAK is just a word
    assert ours(tokenizers, encoders, "a cat BREAK a dog", None, guidance=False)[0].shape[1] == 77


# --------------------------------------------------------------------------------------- sdEmbeds weighting

def test_sdembeds_weights_only_weighted_tokens(tokenizers, encoders):
    plain = ours(tokenizers, encoders, "a photo of a cat", "ugly dog")
    weighted = ours(tokenizers, encoders, "a photo of a (cat:1.5)", "ugly [dog]", weighting="sdEmbeds")
    cat_pos = 5  # BOS a photo of a cat
    changed = (weighted[0] != plain[0]).any(dim=-1)[0].nonzero().flatten().tolist()
    assert changed == [cat_pos]
    assert torch.allclose(weighted[0][0, cat_pos], plain[0][0, cat_pos] * 1.5, atol=1e-6)
    neg_changed = (weighted[1] != plain[1]).any(dim=-1)[0].nonzero().flatten().tolist()
    assert neg_changed == [2]
    assert torch.allclose(weighted[1][0, 2], plain[1][0, 2] / 1.1, atol=1e-6)
    # pooled is not weighted (weights act on the hidden states after the encoder)
    assert torch.equal(weighted[2], plain[2]) and torch.equal(weighted[3], plain[3])


def test_sdembeds_without_weights_equals_plain(tokenizers, encoders):
    for prompt in ("a photo of a cat", "a photo of a (cat:1.0)", words(160)):
        a = ours(tokenizers, encoders, prompt, "bad", weighting="sdEmbeds", clip_skip=1)
        b = ours(tokenizers, encoders, prompt.replace("(cat:1.0)", "cat"), "bad", clip_skip=1)
        assert_same(a, b)


# --------------------------------------------------------------------------------------- compel

needs_compel = pytest.mark.skipif(importlib.util.find_spec("compel") is None, reason="compel not installed")


@needs_compel
@pytest.mark.parametrize("clip_skip", [0, 1])
def test_compel_plain_equals_unweighted(tokenizers, encoders, clip_skip):
    a = ours(tokenizers, encoders, "a photo of a cat", "ugly", weighting="compel", clip_skip=clip_skip)
    b = ours(tokenizers, encoders, "a photo of a cat", "ugly", clip_skip=clip_skip)
    for x, y in zip(a, b):
        assert x.shape == y.shape and (x - y).abs().max() <= 1e-5


@needs_compel
def test_compel_weighting_long_prompts_and_negative(tokenizers, encoders):
    plain = ours(tokenizers, encoders, "a photo of a cat", None, weighting="compel")
    up = ours(tokenizers, encoders, "a photo of a cat++", None, weighting="compel")
    changed = (up[0] != plain[0]).any(dim=-1)[0].nonzero().flatten().tolist()
    assert changed == [5]
    assert ours(tokenizers, encoders, "a photo of a (cat)1.3", None, weighting="compel")[0].shape == (1, 77, 96)
    blend = ours(tokenizers, encoders, '("a cat", "a dog").blend(1, 0.8)', None, weighting="compel")[0]
    assert blend.shape == (1, 77, 96) and not torch.equal(blend, plain[0])
    # long prompts are not truncated; the negative is padded to the same length
    emb, neg, _, _ = ours(tokenizers, encoders, words(200), "bad", weighting="compel")
    assert emb.shape[1] > 77 and emb.shape[1] % 77 == 0 and neg.shape == emb.shape


def test_compel_missing_is_a_clear_error(tokenizers, encoders, monkeypatch):
    from sdxlkit.prompts import compel_backend

    real = importlib.util.find_spec
    monkeypatch.setattr(compel_backend.importlib.util, "find_spec", lambda n, *a: None if n == "compel" else real(n, *a))
    with pytest.raises(MissingDependency, match="compel"):
        encode_prompts(tokenizers, encoders, "a cat+", None, weighting="compel")


# --------------------------------------------------------------------------------------- errors, helpers

def test_bad_arguments(tokenizers, encoders):
    with pytest.raises(SdxlKitError, match="weighting"):
        encode_prompts(tokenizers, encoders, "a", None, weighting="a1111")
    with pytest.raises(SdxlKitError, match="too large"):
        encode_prompts(tokenizers, encoders, "a", None, clip_skip=3)  # CLIP-L here has 3 layers
    with pytest.raises(SdxlKitError, match="clip_skip"):
        encode_prompts(tokenizers, encoders, "a", None, clip_skip=-1)
    with pytest.raises(SdxlKitError, match="prompt"):
        encode_prompts(tokenizers, encoders, None, None)


def test_comfy_clip_layer_mapping():
    assert [comfy_stop_at_clip_layer(n) for n in (0, 1, 2)] == [-2, -3, -4]
    assert clip_skip_from_comfy_layer(-3) == 1
    with pytest.raises(SdxlKitError):
        clip_skip_from_comfy_layer(-1)
