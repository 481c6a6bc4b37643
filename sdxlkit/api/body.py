"""Reading a route's request body: size limit, JSON that is strict about numbers, text and nesting."""

from __future__ import annotations

import json
from typing import Any

from ..errors import Problem, SdxlKitError, TaskValidationError
from ..task.finite import finite_message, non_finite

MAX_DEPTH = 64


class RequestTooLarge(SdxlKitError):
    """A request over one of the server's limits (body size, tasks per request): HTTP 413."""


def too_large(size: int, limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is {size} bytes; this server takes at most {limit // 2**20} MiB per request "
                           "(SDXLKIT_MAX_BODY_MB); send fewer tasks or smaller images per request")


def _shape_problems(value: Any) -> list[Problem]:
    """Nesting deeper than MAX_DEPTH and text that is not valid Unicode (lone surrogates), by path."""
    problems, stack = [], [("$", value, 0)]
    while stack and not problems:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            problems.append(Problem(path, f"nested deeper than {MAX_DEPTH} levels"))
        elif isinstance(item, str) or isinstance(item, dict):
            for text in [item] if isinstance(item, str) else item:
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    problems.append(Problem(path, "holds text that is not valid Unicode (a lone surrogate \\ud800-\\udfff)"))
            if isinstance(item, dict):
                stack += [(f"{path}.{k}", v, depth + 1) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(f"{path}[{i}]", v, depth + 1) for i, v in enumerate(item)]
    return problems


def parse_json(data: bytes) -> Any:
    """The decoded body; NaN, Infinity, numbers too large for a float, deep nesting and broken Unicode are errors
    naming where they are."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TaskValidationError([Problem("$", f"nested deeper than {MAX_DEPTH} levels")]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SdxlKitError(f"the request body is not valid JSON ({str(exc)[:200]})") from None
    problems = _shape_problems(value)
    problems += [Problem(path, finite_message(number)) for path, number in non_finite(value)]
    if problems:
        raise TaskValidationError(problems)
    return value


async def read_body(request, limit: int) -> Any:
    """The JSON body of an aiohttp request, refused with RequestTooLarge past `limit` bytes (before reading it when
    the client says its length)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(request.content_length, limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return parse_json(b"".join(chunks))
