"""SDXL textual-inversion embeddings, injected at encode time: the tokenizers and text encoders are never changed."""

from .files import EMBEDDING_FILES, TextualInversion, load_textual_inversion
from .inject import PromptEmbeddings

__all__ = ["EMBEDDING_FILES", "PromptEmbeddings", "TextualInversion", "load_textual_inversion"]
