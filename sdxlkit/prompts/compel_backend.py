"""promptWeighting "compel": compel's syntax and weighting, one ``Compel`` per text encoder.

compel (imported lazily; an optional dependency) parses ``word+`` (x1.1), ``word++`` (x1.1²), ``word-`` (x0.9),
``(several words)1.3``, ``("a", "b").blend(1, 0.8)``, ``("a", "b").and()``. Up-weighting is
``z_empty + (z - z_empty) * w``; down-weighting blends towards the prompt with the fragment masked out.

How it is used here, and why:

- One ``Compel`` per encoder (what compel's own ``CompelForSDXL`` does) rather than the legacy two-encoder
  ``Compel``: with ``truncate_long_prompts=False`` the legacy class fails to pad (no ``empty_z`` on
  ``EmbeddingsProviderMulti``).
- Long prompts are not truncated: compel splits them into 77-token chunks itself (at sentence ends where it
  can, compel's default), so chunk boundaries can differ from the sdEmbeds/plain path.
- Clip skip: compel only knows ``hidden_states[-2]``. For ``clip_skip = n > 0`` each encoder is wrapped so its
  output's ``hidden_states`` tuple ends ``n`` layers early; compel's ``[-2]`` is then ``hidden_states[-(n + 2)]``,
  the same layer as diffusers' ``clip_skip=n``. The pooled embedding (``text_embeds``) is unaffected, as in
  diffusers.
- Pooled embedding: compel's own, from the second encoder, of the prompt text truncated to one chunk -- the raw
  text, compel syntax included (compel does not strip ``+``/``(...)1.3`` before pooling).
"""

from __future__ import annotations

import importlib.util

from ..errors import MissingDependency, SdxlKitError

FEATURE = "promptWeighting 'compel'"


def compel_syntax_error(text: str) -> str | None:
    """Why compel cannot parse `text` (e.g. a blend with fewer weights than prompts), or None; None as well when
    compel is not installed (running says what to install)."""
    if importlib.util.find_spec("compel") is None:
        return None
    from compel.prompt_parser import PromptParser

    try:
        PromptParser().parse_conjunction(text)
    except PromptParser.ParsingException as exc:
        return f"compel cannot parse it: {exc}"
    return None


def _import_compel():
    if importlib.util.find_spec("compel") is None:
        raise MissingDependency("compel", FEATURE)
    try:
        from compel import Compel, ReturnedEmbeddingsType
    except ImportError as exc:
        raise SdxlKitError(f"{FEATURE}: the compel package is installed but cannot be imported: {exc}") from exc
    return Compel, ReturnedEmbeddingsType


class SkipLayersEncoder:
    """A text encoder whose output ``hidden_states`` lack the last ``skip`` layers.

    Everything else (``device``, ``dtype``, ``config``, ...) is the wrapped encoder's.
    """

    def __init__(self, encoder, skip: int):
        self._encoder = encoder
        self._skip = skip

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def __call__(self, *args, **kwargs):
        out = self._encoder(*args, **kwargs)
        hidden_states = getattr(out, "hidden_states", None)
        if self._skip and hidden_states is not None:
            out["hidden_states"] = hidden_states[: len(hidden_states) - self._skip]
        return out


def pad_to_length(tensor, length: int, empty):
    import torch

    while tensor.shape[1] < length:
        tensor = torch.cat([tensor, empty.to(tensor.dtype)], dim=1)
    return tensor


def encode_compel(tokenizers, text_encoders, text: str, clip_skip: int):
    """Encode ``text`` with compel: ``(embeds [1, T, sum D], pooled [1, P])``.

    The two encoders' states are padded to one length with compel's encoding of the empty prompt (a guard: both
    tokenizers cut the same text into the same chunks).
    """
    import torch

    Compel, ReturnedEmbeddingsType = _import_compel()
    states, empties = [], []
    pooled = None
    last = len(text_encoders) - 1
    for index, (tokenizer, encoder) in enumerate(zip(tokenizers, text_encoders)):
        wrapped = encoder if clip_skip == 0 else SkipLayersEncoder(encoder, clip_skip)
        compel = Compel(
            tokenizer=tokenizer,
            text_encoder=wrapped,
            returned_embeddings_type=ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED,
            truncate_long_prompts=False,
            requires_pooled=index == last,
        )
        from compel.prompt_parser import PromptParser

        try:
            out = compel(text)
        except (ValueError, RuntimeError, IndexError, PromptParser.ParsingException) as exc:
            raise SdxlKitError(f"{FEATURE}: compel cannot encode the prompt {text!r}: {exc}") from exc
        if index == last:
            out, pooled = out
        states.append(out)
        empties.append(compel.conditioning_provider.empty_z.to(out.device, out.dtype))
    length = max(s.shape[1] for s in states)
    states = [pad_to_length(s, length, e) for s, e in zip(states, empties)]
    return torch.cat(states, dim=-1), pooled
