"""SDXLKit_Loader: the task's `model` and `vae` (precision, memory and compile are how this machine runs it, not task
fields: their defaults when built from a task)."""

from __future__ import annotations

from ..mapping import ConvertOptions, ModelRefs, NodeMapping, Socket, Widget
from ..references import file_name_for, reference_for
from ..structure import Graph, Link

OWN_VAE = "(checkpoint's own)"  # vae_name meaning "no vae field"


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    vae = node.widgets["vae_name"]
    return (ModelRefs(reference_for(node.widgets["ckpt_name"], "checkpoints", options),
                      None if vae == OWN_VAE else reference_for(vae, "vae", options)),)


def build(task: dict, graph: Graph, options: ConvertOptions) -> Link:
    vae = task.get("vae")
    node = graph.add(MAPPING, {"ckpt_name": file_name_for(task["model"], "checkpoints", options),
                               "vae_name": OWN_VAE if vae is None else file_name_for(vae, "vae", options)})
    return node, 0


MAPPING = NodeMapping(
    class_type="SDXLKit_Loader", title="SDXL Loader (VAE fix)", column=0,
    inputs=(Widget("ckpt_name", "COMBO", None), Widget("vae_name", "COMBO", OWN_VAE), Widget("precision", "COMBO", "auto"),
            Widget("memory", "COMBO", "auto", optional=True), Widget("compile", "BOOLEAN", False, optional=True)),
    outputs=(Socket("model", "SDXLKIT_MODEL"),),
    evaluate=_evaluate, task_fields=("model", "vae"), width=340,
)
