"""SDXLKit_Loader: an SDXL checkpoint (with its own or an external VAE) loaded by the engine and kept cached."""

from __future__ import annotations

from dataclasses import dataclass

from ..sdxlkit.graph.mappings.loader import OWN_VAE
from ..sdxlkit.graph.references import DIFFUSERS_PREFIX
from ..sdxlkit.loading.cache import MODEL_CACHE
from ..sdxlkit.loading.components import SDXLComponents
from ..sdxlkit.loading.loader import ModelSpec
from ..sdxlkit.loading.precision import PRECISIONS
from ..sdxlkit.loading.residency import MEMORY_MODES
from . import host
from ._api import io
from .input_checks import CheckedNode
from .model_names import ComfyModelNames
from .types import SdxlModel



@dataclass
class LoadedModel:
    """What flows along an SDXLKIT_MODEL link: the engine's components and how the task names the files."""

    components: SDXLComponents
    spec: ModelSpec
    model_ref: str
    vae_ref: str | None


def checkpoint_options() -> list[str]:
    """Checkpoint files, then diffusers folders as diffusers/<name>."""
    return [*host.file_list("checkpoints"), *(DIFFUSERS_PREFIX + name for name in sorted(host.diffusers_folders()))]


def checkpoint_path(ckpt_name: str):
    """The file or diffusers folder a checkpoint combo value names."""
    if ckpt_name.startswith(DIFFUSERS_PREFIX) and ckpt_name.removeprefix(DIFFUSERS_PREFIX) in host.diffusers_folders():
        return host.diffusers_folders()[ckpt_name.removeprefix(DIFFUSERS_PREFIX)]
    return host.full_path("checkpoints", ckpt_name)


class SDXLKitLoader(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SDXLKit_Loader",
            display_name="SDXL Loader (VAE fix)",
            category="sdxlkit",
            description="Loads an SDXL checkpoint (single file in Stability's layout). The VAE is the checkpoint's "
                        "own or a file from models/vae; any NaN decode is redone in float32.",
            inputs=[
                io.Combo.Input("ckpt_name", options=checkpoint_options(),
                               tooltip="SDXL checkpoint (.safetensors in models/checkpoints) or diffusers folder (models/diffusers)"),
                io.Combo.Input("vae_name", options=[OWN_VAE, *host.file_list("vae")], default=OWN_VAE,
                               tooltip="e.g. sdxl-vae-fp16-fix.safetensors; fp16 is used only for a VAE known to be fp16-safe"),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="auto: fp32 on CPU, bf16 on CUDA when supported, else fp32"),
                io.Combo.Input("memory", options=list(MEMORY_MODES), default="auto", optional=True,
                               tooltip="auto: UNet and VAE stay on the GPU, the text encoders come in only to "
                                       "encode (the VAE leaves too when a pass needs the room); lowvram: the UNet "
                                       "and ControlNets stream in layer by layer, the other parts come in only "
                                       "while they run"),
                io.Boolean.Input("compile", default=False, optional=True,
                                 tooltip="compile the UNet's transformer blocks (GPU; the first run per size compiles; "
                                         "not with lowvram)"),
            ],
            outputs=[SdxlModel.Output(display_name="model")],
        )

    @classmethod
    def validate_inputs(cls, **values) -> bool | str:
        checked = super().validate_inputs(**values)
        if values.get("compile") is True and values.get("memory") == "lowvram":
            refusal = "compile: not with memory lowvram (its streaming hooks sit inside the blocks compile traces)"
            return refusal if checked is True else f"{checked}; {refusal}"
        return checked

    @classmethod
    def execute(cls, ckpt_name: str, vae_name: str, precision: str, memory: str = "auto",
                compile: bool = False) -> io.NodeOutput:
        checkpoint = checkpoint_path(ckpt_name)
        vae = None if vae_name == OWN_VAE else host.full_path("vae", vae_name)
        spec = ModelSpec(checkpoint=checkpoint, vae=vae, precision=precision, device=host.torch_device(),
                         memory=memory, compile=compile)
        host.free_memory_for(spec)
        names = ComfyModelNames()
        loaded = LoadedModel(
            components=MODEL_CACHE.get(spec), spec=spec,
            model_ref=names.reference_for_path(checkpoint, ckpt_name.removeprefix(DIFFUSERS_PREFIX)),
            vae_ref=None if vae is None else names.reference_for_path(vae, vae_name),
        )
        return io.NodeOutput(loaded)
