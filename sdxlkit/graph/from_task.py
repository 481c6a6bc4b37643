"""imageInference tasks -> the graph of nodes that holds them (one row of nodes per task).

Every task field must be held by a node (each mapping lists its `task_fields`). A field no node holds is refused
with its name, except where it asks for what the graph does anyway; such a field is not written back:
outputType "URL" (the Save node writes files), includeCost false, deliveryMethod "sync", safety without a check.
"""

from __future__ import annotations

from ..task.model import parse_tasks
from .mapping import ConvertOptions, GraphConversionError
from .mappings import MAPPINGS, inference, save
from .structure import Graph

GRAPH_BEHAVIOUR = {
    "outputType": lambda v: v == "URL",
    "includeCost": lambda v: v is False,
    "deliveryMethod": lambda v: v == "sync",
    "safety": lambda v: not v.get("checkContent", False) and v.get("mode", "none") == "none",
}


def unheld_fields(task: dict) -> list[str]:
    """The fields of a task that no node can hold."""
    held = {f for m in MAPPINGS.values() for f in m.task_fields}
    return [name for name, value in task.items()
            if name not in held and not (name in GRAPH_BEHAVIOUR and GRAPH_BEHAVIOUR[name](value))]


def graph_from_tasks(data: dict | list, options: ConvertOptions) -> Graph:
    """The graph for one task or an array of tasks (validated first)."""
    tasks = [t.data for t in parse_tasks(data)]
    problems = [f"task {i} ({task['taskUUID']}): {', '.join(fields)}"
                for i, task in enumerate(tasks) if (fields := unheld_fields(task))]
    if problems:
        raise GraphConversionError("no node holds these task fields yet, so the graph would drop them: "
                                   + "; ".join(problems) + ". Remove them to convert the task.")
    graph = Graph()
    for band, task in enumerate(tasks):
        graph.band = band
        save.build(task, graph, options, inference.build(task, graph, options))
    return graph
