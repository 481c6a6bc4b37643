"""imageInference tasks -> the graph of nodes that holds them (one row of nodes per task).

Every task field must be held by a node (each mapping lists its `task_fields`); a field no node holds (a feature
that does not exist yet) is refused with its name. What the task set explicitly is kept on each Inference node
(explicit.py), so the graph converts back to the same task.
"""

from __future__ import annotations

import dataclasses

from ..task.model import parse_tasks
from . import explicit
from .mapping import ConvertOptions, GraphConversionError
from .mappings import MAPPINGS, inference, save
from .structure import Graph
from .to_task import tasks_from_graph


def unheld_fields(task: dict) -> list[str]:
    """The fields of a task that no node can hold."""
    held = {f for m in MAPPINGS.values() for f in m.task_fields}
    return [name for name in task if name not in held]


def graph_from_tasks(data: dict | list, options: ConvertOptions) -> Graph:
    """The graph for one task or an array of tasks (validated first)."""
    tasks = [t.data for t in parse_tasks(data)]
    problems = [f"task {i} ({task['taskUUID']}): {', '.join(fields)}"
                for i, task in enumerate(tasks) if (fields := unheld_fields(task))]
    if problems:
        raise GraphConversionError("no node holds these task fields yet, so the graph would drop them: "
                                   + "; ".join(problems) + ". Remove them to convert the task.")
    graph = Graph()
    nodes = []
    for band, task in enumerate(tasks):
        graph.band = band
        nodes.append(inference.build(task, graph, options))
        save.build(task, graph, options, nodes[-1])
    written = tasks_from_graph(graph, dataclasses.replace(options, images="data_uri"), as_written=True)
    for node_id, task, graph_task in zip(nodes, tasks, written):
        kept = explicit.edits(task, graph_task)
        if kept:
            graph.nodes[node_id].properties[explicit.PROPERTY] = kept
    return graph
