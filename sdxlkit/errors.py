"""Errors the engine raises. Each message says what was wrong and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


class SdxlKitError(ValueError):
    """Base class: a problem the user can fix (bad input, missing file, unsupported option)."""


def out_of_memory(exc: BaseException) -> bool:
    """torch's out-of-memory errors: CUDA's OutOfMemoryError and the allocators' RuntimeErrors (CPU included)."""
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text or "can't allocate memory" in text


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is (a JSON path like ``$.width``) and what is allowed. ``code`` is the
    cloud API's error code for it (the task route answers with it)."""

    path: str
    message: str
    code: str = "invalidParameter"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class TaskValidationError(SdxlKitError):
    """A task (or array of tasks) breaks the imageInference format; lists every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid imageInference task ({len(self.problems)} problem(s)):\n{lines}")


class UnsupportedScheduler(SdxlKitError):
    """A scheduler name of the schema that has no faithful diffusers mapping."""

    def __init__(self, name: str, reason: str):
        self.name = name
        super().__init__(f"scheduler {name!r} cannot be used with SDXL here: {reason}. Pick another scheduler.")


class ModelNotFound(SdxlKitError):
    """A model reference that resolves to no local file."""


class ModelLoadError(SdxlKitError):
    """A model file that exists but cannot be loaded (wrong architecture, truncated, wrong format)."""


class ImageInputError(SdxlKitError):
    """An image input (data URI, base64, path or URL) that cannot be read."""


class MissingDependency(SdxlKitError, ImportError):
    """An optional library is not installed."""

    def __init__(self, package: str, feature: str):
        super().__init__(f"{feature} needs the Python package {package!r}: pip install {package}")
