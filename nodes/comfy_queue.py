"""Queueing a prompt in ComfyUI's own queue and reading its outcome, as POST /prompt and GET /history do."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from ..sdxlkit.errors import SdxlKitError


def _server():
    import server

    return server.PromptServer.instance


async def validate(prompt: dict) -> tuple[str, list]:
    """(prompt id, outputs to execute) if ComfyUI's own checks pass; else an error naming the nodes."""
    import execution

    prompt_id = str(uuid.uuid4())
    valid = await execution.validate_prompt(prompt_id, prompt, None)
    if not valid[0]:
        details = "; ".join(f"node {node}: {e['message']} {e.get('details', '')}".strip()
                            for node, errors in valid[3].items() for e in errors.get("errors", []))
        raise SdxlKitError(f"ComfyUI refused the prompt: {valid[1].get('message', valid[1])}"
                           + (f" ({details})" if details else ""))
    return prompt_id, valid[2]


def enqueue(prompt_id: str, prompt: dict, outputs: list, extra_data: dict | None = None) -> None:
    instance = _server()
    number = instance.number
    instance.number += 1
    instance.prompt_queue.put((number, prompt_id, prompt, extra_data or {}, outputs))


async def wait_for(prompt_id: str, poll_seconds: float = 0.2) -> dict:
    """The /history entry of a finished prompt."""
    instance = _server()
    while True:
        history = instance.prompt_queue.get_history(prompt_id=prompt_id)
        entry = history.get(prompt_id) if history else None
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        await asyncio.sleep(poll_seconds)


def execution_error(entry: dict) -> str | None:
    status = entry.get("status", {})
    if status.get("status_str") == "success":
        return None
    for name, message in status.get("messages", []):
        if name in ("execution_error", "execution_interrupted"):
            node = f"node {message.get('node_id')} ({message.get('node_type')})" if message.get("node_id") else "the run"
            return f"{node} failed: {message.get('exception_message', name).strip()}"
    return "the prompt did not finish"


def saved_images(entry: dict, node_id: str) -> list[tuple[Path, dict]]:
    """(file path, view parameters) of the images an output node saved."""
    import folder_paths

    out = []
    for image in entry.get("outputs", {}).get(node_id, {}).get("images", []):
        base = {"output": folder_paths.get_output_directory(), "temp": folder_paths.get_temp_directory()}[image["type"]]
        out.append((Path(base) / image.get("subfolder", "") / image["filename"], image))
    return out
