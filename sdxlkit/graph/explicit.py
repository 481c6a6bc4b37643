"""Which fields a task set explicitly: kept on its Inference node so that import then export gives the task back.

A graph writes what its widgets hold: defaults for what the task left out (steps, scheduler, CFGScale, a drawn
seed...), and nothing for values meaning "unset" (negativePrompt "", a LoRA's transformer "both"...). When a task
becomes a graph, the differences between the task and what the new graph writes are kept in the Inference node's
property (UI) / _meta key (API) "taskEdits", as [{"path": [...], "graph": value, "task": value}], a key left
out where the field is absent on that side. Graph -> task undoes each edit whose field still holds the value the
graph wrote at import: a widget the user changed is exported as it is; a graph built from scratch has no edits.
"""

from __future__ import annotations

import copy
import json
from typing import Any

PROPERTY = "taskEdits"
_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values of the same types (7 and 7.0 differ: the text would)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _diff(task: Any, graph: Any, path: list, out: list) -> None:
    if isinstance(task, dict) and isinstance(graph, dict):
        for key in (*task, *(k for k in graph if k not in task)):
            _diff(task.get(key, _ABSENT), graph.get(key, _ABSENT), [*path, key], out)
    elif isinstance(task, list) and isinstance(graph, list) and len(task) == len(graph):
        for i, (t, g) in enumerate(zip(task, graph)):
            _diff(t, g, [*path, i], out)
    elif task is _ABSENT or graph is _ABSENT or not _same(task, graph):
        edit: dict = {"path": path}
        if graph is not _ABSENT:
            edit["graph"] = graph
        if task is not _ABSENT:
            edit["task"] = task
        out.append(edit)


def edits(task: dict, graph_task: dict) -> list[dict]:
    """The edits that turn what a graph writes (`graph_task`) into `task`."""
    out: list[dict] = []
    _diff(task, graph_task, [], out)
    return sorted(out, key=lambda edit: json.dumps(edit["path"]))


def _parent(task: dict, path: list):
    node: Any = task
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
    return node if isinstance(node, dict) and isinstance(path[-1], str) else None


def apply(task: dict, kept: Any) -> dict:
    """`task` with each still-applicable edit undone (kept: the property's value; anything malformed is ignored)."""
    if not isinstance(kept, list):
        return task
    task = copy.deepcopy(task)
    for edit in kept:
        path = edit.get("path") if isinstance(edit, dict) else None
        if not isinstance(path, list) or not path:
            continue
        parent = _parent(task, path)
        if parent is None:
            continue
        key = path[-1]
        unchanged = (_same(parent[key], edit["graph"]) if key in parent else False) if "graph" in edit \
            else key not in parent
        if not unchanged:
            continue
        if "task" in edit:
            parent[key] = edit["task"]
        else:
            del parent[key]
    return task
