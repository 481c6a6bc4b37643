"""Queueing a prompt in ComfyUI's own queue and learning how it ended, as POST /prompt and GET /history do.

ComfyUI tells the frontend about every queue change (the "status" event of PromptServer.queue_updated: a prompt
queued, started, finished, deleted from the queue, or the queue cleared) and about execution ("execution_success",
"execution_error", "execution_interrupted", ...) through PromptServer.send_sync. PROMPTS wraps send_sync once to hear
these events; on each one (and every few seconds as a safety net while anything is waited for) it settles every
waited-for prompt that is neither queued nor running: its /history entry if it ran, None if it left the queue
without running. One dispatcher serves all prompts and stops when none is waited for.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from ..sdxlkit.errors import SdxlKitError

EVENTS = frozenset({"status", "executing", "execution_success", "execution_error", "execution_interrupted"})
RECHECK_SECONDS = 2.0


def _server():
    import server

    return server.PromptServer.instance


async def validate(prompt: dict) -> tuple[str, list]:
    """(prompt id, outputs to execute) if ComfyUI's own checks pass; else an error naming the nodes."""
    import execution

    prompt_id = str(uuid.uuid4())
    valid = await execution.validate_prompt(prompt_id, prompt, None)
    if not valid[0]:
        details = dict.fromkeys(f"node {node}: {e['message']} {e.get('details', '')}".strip()
                                for node, errors in valid[3].items() for e in errors.get("errors", []))
        raise SdxlKitError(f"ComfyUI refused the prompt: {valid[1].get('message', valid[1])}"
                           + (f" ({'; '.join(details)})" if details else ""))
    return prompt_id, valid[2]


def enqueue(prompt_id: str, prompt: dict, outputs: list, extra_data: dict | None = None) -> None:
    instance = _server()
    number = instance.number
    instance.number += 1
    instance.prompt_queue.put((number, prompt_id, prompt, extra_data or {}, outputs))


class PromptEnds:
    def __init__(self):
        self._waiting: dict[str, asyncio.Future] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task | None = None

    def _hear(self, instance) -> None:
        """Wrap the server's send_sync (called from the worker thread too) once, to wake the dispatcher."""
        if getattr(instance.send_sync, "sdxlkit_prompt_ends", False):
            return
        original = instance.send_sync

        def send_sync(event, data, sid=None):
            original(event, data, sid)
            if event in EVENTS and self._loop is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

        send_sync.sdxlkit_prompt_ends = True
        instance.send_sync = send_sync

    async def wait(self, prompt_id: str) -> dict | None:
        """The /history entry of a queued prompt once it ran; None if it left the queue without running."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._wake = loop, asyncio.Event()
        self._hear(_server())
        future = self._waiting[prompt_id] = loop.create_future()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch())
        self._wake.set()
        try:
            return await future
        finally:
            self._waiting.pop(prompt_id, None)

    def waiting(self) -> int:
        return len(self._waiting)

    async def _dispatch(self) -> None:
        while self._waiting:
            self._wake.clear()
            self._settle()
            try:
                await asyncio.wait_for(self._wake.wait(), RECHECK_SECONDS)
            except asyncio.TimeoutError:
                pass

    def _settle(self) -> None:
        queue = _server().prompt_queue
        running, pending = queue.get_current_queue_volatile()
        live = {item[1] for item in running} | {item[1] for item in pending}
        for prompt_id, future in list(self._waiting.items()):
            if not future.done() and prompt_id not in live:
                future.set_result(queue.get_history(prompt_id=prompt_id).get(prompt_id))


PROMPTS = PromptEnds()


def outcome(entry: dict | None) -> tuple[str, str] | None:
    """None if the prompt succeeded; else (error code, message) of how it ended."""
    if entry is None:
        return "taskCancelled", ("the task was removed from ComfyUI's queue before it ran (POST /queue delete or "
                                 "clear); send it again to run it")
    status = entry.get("status") or {}
    if status.get("status_str") == "success":
        return None
    for name, message in status.get("messages", []):
        if name == "execution_interrupted":
            return "taskInterrupted", "the run was interrupted (POST /interrupt or the Cancel button) before it finished"
        if name == "execution_error":
            node = f"node {message.get('node_id')} ({message.get('node_type')})" if message.get("node_id") else "the run"
            return "taskFailed", f"{node} failed: {message.get('exception_message', name).strip()}"
    return "taskFailed", "the prompt did not finish"


def saved_images(entry: dict, node_id: str) -> list[tuple[Path, dict]]:
    """(file path, view parameters) of the images an output node saved."""
    import folder_paths

    out = []
    for image in entry.get("outputs", {}).get(node_id, {}).get("images", []):
        base = {"output": folder_paths.get_output_directory(), "temp": folder_paths.get_temp_directory()}[image["type"]]
        out.append((Path(base) / image.get("subfolder", "") / image["filename"], image))
    return out
