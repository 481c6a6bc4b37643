"""What task -> graph conversion keeps in a prompt's `_meta` (ComfyUI ignores it): the taskUUID of an Inference node."""

from __future__ import annotations


def kept_task_uuid(prompt: dict | None, node_id) -> str | None:
    """The taskUUID kept in a node's _meta, or None."""
    kept = ((prompt or {}).get(str(node_id)) or {}).get("_meta", {}).get("taskUUID")
    return kept if isinstance(kept, str) and kept else None


def source_task_uuid(prompt: dict | None, node_id, input_name: str) -> str | None:
    """The taskUUID kept by the node whose output feeds `input_name` of node `node_id`."""
    link = ((prompt or {}).get(str(node_id)) or {}).get("inputs", {}).get(input_name)
    return kept_task_uuid(prompt, link[0]) if isinstance(link, list) and link else None
