"""SDXL textual inversions: the vectors reach both encoders at their token positions, times the weight, and
nothing of the tokenizers or encoders changes."""

import hashlib

import pytest
import torch

from sdxlkit.embeddings import PromptEmbeddings, load_textual_inversion
from sdxlkit.errors import ModelLoadError, SdxlKitError
from sdxlkit.prompts import encode_prompts
from sdxlkit.prompts.chunking import build_chunks


@pytest.fixture(scope="module")
def models(tiny_components):
    c = tiny_components
    return (c["tokenizer"], c["tokenizer_2"]), (c["text_encoder"], c["text_encoder_2"])


def embeddings(files, *entries):
    return PromptEmbeddings([(load_textual_inversion(files.paths[name]), weight) for name, weight in entries])


class TokenEmbeddings:
    """What the embedding layer of each encoder gives (token embeddings, position embeddings removed), per call."""

    def __init__(self, encoders):
        self.calls = {i: [] for i in range(len(encoders))}
        self.handles = []
        for i, encoder in enumerate(encoders):
            # CLIP's embedding module: token + position embeddings (its hook runs after the token layer's hooks)
            layer = next(m for m in encoder.modules() if hasattr(m, "token_embedding") and hasattr(m, "position_embedding"))

            def grab(module, inputs, output, i=i, module_=layer):
                positions = module_.position_embedding.weight[: output.shape[1]]
                self.calls[i].append(output[0] - positions)

            self.handles.append(layer.register_forward_hook(grab))

    def remove(self):
        for h in self.handles:
            h.remove()


def fingerprint(tokenizers, encoders) -> tuple:
    digest = hashlib.sha256()
    for encoder in encoders:
        for name, tensor in sorted(encoder.state_dict().items()):
            digest.update(name.encode() + tensor.numpy().tobytes())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for e in encoders for m in e.modules())
    return digest.hexdigest(), hooks, tuple(len(t) for t in tokenizers), tuple(len(t.get_vocab()) for t in tokenizers)


def test_vectors_times_weight_at_the_token_positions_of_both_encoders(models, embedding_files):
    tokenizers, encoders = models
    capture = TokenEmbeddings(encoders)
    try:
        encode_prompts(tokenizers, encoders, "a photo of myStyle harbor", guidance=False,
                       embeddings=embeddings(embedding_files, ("myStyle", 0.5)))
    finally:
        capture.remove()
    plain = tokenizers[0]("a photo of", add_special_tokens=False).input_ids
    at = 1 + len(plain)  # after BOS and the words before the name
    vectors = embedding_files.vectors["myStyle"]
    for i, key in enumerate(("clip_l", "clip_g")):
        (got,) = capture.calls[i]
        assert torch.allclose(got[at:at + 2], vectors[key] * 0.5, atol=1e-6)
        # the word after the embedding is the plain token "harbor", at the next position
        harbor = tokenizers[i]("harbor", add_special_tokens=False).input_ids[0]
        assert torch.allclose(got[at + 2], encoders[i].get_input_embeddings().weight[harbor], atol=1e-6)


def test_both_spellings_and_both_tokenizers_give_the_placeholders(models, embedding_files):
    tokenizers, encoders = models
    e = embeddings(embedding_files, ("myStyle", 1.0), ("badHands", -1.0))
    with e.applied(tokenizers, encoders) as wrapped:
        for tok in wrapped:
            first = len(tok)
            for text in ("myStyle", "embedding:myStyle", "MYSTYLE", "embedding:myStyle.safetensors"):
                assert tok.ids(text) == [first, first + 1]
            assert tok.ids("badHands, myStyle") == [first + 2, *tok._tokenizer(",", add_special_tokens=False).input_ids, first, first + 1]
            assert tok.ids("mystyles badhandsome") == tok._tokenizer("mystyles badhandsome", add_special_tokens=False).input_ids


def test_several_embeddings_and_negative_weights(models, embedding_files):
    tokenizers, encoders = models
    capture = TokenEmbeddings(encoders)
    try:
        encode_prompts(tokenizers, encoders, "badHands myStyle", guidance=False,
                       embeddings=embeddings(embedding_files, ("myStyle", 2.0), ("badHands", -1.5)))
    finally:
        capture.remove()
    for i, key in enumerate(("clip_l", "clip_g")):
        (got,) = capture.calls[i]
        assert torch.allclose(got[1], embedding_files.vectors["badHands"][key][0] * -1.5, atol=1e-6)
        assert torch.allclose(got[2:4], embedding_files.vectors["myStyle"][key] * 2.0, atol=1e-6)


def test_encoders_and_tokenizers_are_bit_identical_after_use(models, embedding_files):
    tokenizers, encoders = models
    before = fingerprint(tokenizers, encoders)
    reference = encode_prompts(tokenizers, encoders, "a photo of myStyle", negative_prompt="badHands")
    for weighting in (None, "sdEmbeds", "compel"):
        encode_prompts(tokenizers, encoders, "a photo of (myStyle:1.2)", negative_prompt="badHands", weighting=weighting,
                       embeddings=embeddings(embedding_files, ("myStyle", 1.0), ("badHands", 0.7)))
    assert fingerprint(tokenizers, encoders) == before
    again = encode_prompts(tokenizers, encoders, "a photo of myStyle", negative_prompt="badHands")
    assert torch.equal(reference.prompt_embeds, again.prompt_embeds)
    assert torch.equal(reference.negative_pooled_prompt_embeds, again.negative_pooled_prompt_embeds)


@pytest.mark.parametrize("backtrack", [0, 20])
def test_an_embedding_does_not_cross_a_chunk_boundary(models, embedding_files, backtrack):
    tokenizers, encoders = models
    with embeddings(embedding_files, ("myStyle", 1.0)).applied(tokenizers, encoders) as wrapped:
        tok = wrapped[0]
        # 74 tokens: the 2 vectors do not fit in the first chunk; as in A1111, an embedding that does not fit starts
        # the next chunk without comma back-tracking (which moves plain tokens only)
        words = " ".join(["cat"] * 60) + ", " + " ".join(["cat"] * 13)
        chunks = build_chunks(tok, [(words + " myStyle", 1.0)], comma_backtrack=backtrack)
        first = len(tok)
        assert len(chunks) == 2 and chunks[0].ids[74] != tok.pad_token_id
        assert chunks[0].ids[75] == tok.pad_token_id or chunks[0].ids[75] == tok.eos_token_id
        assert first not in chunks[0].ids and chunks[1].ids[1:3] == (first, first + 1)


def test_sdembeds_weights_scale_the_embedding_like_any_token(models, embedding_files):
    tokenizers, encoders = models
    with embeddings(embedding_files, ("myStyle", 1.0)).applied(tokenizers, encoders) as wrapped:
        from sdxlkit.prompts import parse_a1111

        (chunk,) = build_chunks(wrapped[1], parse_a1111("a (myStyle:1.3) cat"))
        first = len(wrapped[1])
        at = chunk.ids.index(first)
        assert chunk.ids[at:at + 2] == (first, first + 1) and chunk.weights[at:at + 2] == (1.3, 1.3)


def test_compel_path_injects_the_vectors(models, embedding_files):
    tokenizers, encoders = models
    capture = TokenEmbeddings(encoders)
    try:
        encode_prompts(tokenizers, encoders, "a myStyle cat", guidance=False, weighting="compel",
                       embeddings=embeddings(embedding_files, ("myStyle", 0.25)))
    finally:
        capture.remove()
    for i, key in enumerate(("clip_l", "clip_g")):
        expected = embedding_files.vectors["myStyle"][key] * 0.25
        assert any(torch.allclose(call[2:4], expected, atol=1e-6) for call in capture.calls[i])


def test_the_refiner_gets_the_clip_g_vectors(models, embedding_files):
    tokenizers, encoders = models
    capture = TokenEmbeddings(encoders[1:])
    try:
        out = encode_prompts(tokenizers[1:], encoders[1:], "myStyle", guidance=False,
                             embeddings=embeddings(embedding_files, ("myStyle", 1.0)))
    finally:
        capture.remove()
    assert out.prompt_embeds.shape[-1] == encoders[1].config.hidden_size
    assert torch.allclose(capture.calls[0][0][1:3], embedding_files.vectors["myStyle"]["clip_g"], atol=1e-6)


def test_sd15_embeddings_are_refused_by_name(embedding_files, tmp_path):
    with pytest.raises(ModelLoadError, match=r"embedding oldStyle\.safetensors: this is an SD 1\.x textual inversion"):
        load_textual_inversion(embedding_files.paths["oldStyle"])
    pt = tmp_path / "x.pt"
    pt.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="are .safetensors files"):
        load_textual_inversion(pt)


def test_repeated_tokens_and_foreign_widths_are_refused(models, embedding_files):
    tokenizers, encoders = models
    one = load_textual_inversion(embedding_files.paths["myStyle"])
    with pytest.raises(SdxlKitError, match="given twice"):
        PromptEmbeddings([(one, 1.0), (one, 0.5)])
    wide = type(one)("wide", torch.zeros(1, 768), torch.zeros(1, 1280))
    before = fingerprint(tokenizers, encoders)
    with pytest.raises(SdxlKitError, match="embedding wide: its clip_l vectors are 768 wide but this model's CLIP-L takes 32"):
        encode_prompts(tokenizers, encoders, "wide", guidance=False, embeddings=PromptEmbeddings([(wide, 1.0)]))
    assert fingerprint(tokenizers, encoders) == before  # no hook left behind after the error


def _prepare_with_embeddings(embedding_files, tmp_path, prompt: str, embeddings: list):
    """prepare() of a task with these embeddings, in a models folder with an unloadable checkpoint (nothing loads)."""
    from sdxlkit.runner import RunOptions, prepare
    from sdxlkit.task.model import parse_tasks

    if not (tmp_path / "checkpoints").exists():
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "m.safetensors").write_bytes(b"not loaded")
        (tmp_path / "embeddings").symlink_to(embedding_files.folder)
    task = {"taskType": "imageInference", "taskUUID": "0b7e4cd6-5b8e-4f57-9d5c-2f4c6f3d1a11", "model": "m",
            "positivePrompt": prompt, "width": 128, "height": 128, "embeddings": embeddings}
    return prepare(parse_tasks(task)[0], RunOptions(models_dir=tmp_path, device="cpu"))


def test_a_task_refuses_an_sd15_embedding_before_loading_a_model(embedding_files, tmp_path):
    with pytest.raises(ModelLoadError, match="oldStyle.safetensors: this is an SD 1.x"):
        _prepare_with_embeddings(embedding_files, tmp_path, "oldStyle",
                                 [{"model": "myStyle"}, {"model": "oldStyle", "weight": 0.5}])
    prepared = _prepare_with_embeddings(embedding_files, tmp_path, "oldStyle", [{"model": "myStyle", "weight": -2}])
    assert prepared.generation.embeddings == [(tmp_path / "embeddings" / "myStyle.safetensors", -2.0)]


def test_a_task_naming_one_embedding_file_twice_is_refused_with_its_path(embedding_files, tmp_path):
    from sdxlkit.errors import TaskValidationError

    with pytest.raises(TaskValidationError) as info:
        _prepare_with_embeddings(embedding_files, tmp_path, "myStyle",
                                 [{"model": "myStyle"}, {"model": "myStyle.safetensors", "weight": 0.5}])
    (problem,) = info.value.problems
    assert problem.path == "$.embeddings[1].model" and "'myStyle' is embeddings[0]'s too" in problem.message
