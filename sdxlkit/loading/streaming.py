"""The UNet streamed onto the GPU layer by layer (lowvram): diffusers' leaf-level group offloading.

Every layer's weights live in pinned CPU memory and come onto the GPU just before the layer runs, copied on a side
stream while the layer before it computes (the order is traced on the first forward), then are dropped again; the
GPU holds a few layers' weights and the activations, not the 4.8 GiB of SDXL's UNet. Diffusers' LoRA loading knows
these hooks (it takes them off and puts them back around a load), and layers a cached step skips are onloaded
when next used.
"""

from __future__ import annotations


def stream_weights(module, device) -> None:
    import torch
    from diffusers.hooks import apply_group_offloading

    device = torch.device(device)
    streams = device.type == "cuda"
    apply_group_offloading(module, onload_device=device, offload_device=torch.device("cpu"),
                           offload_type="leaf_level", use_stream=streams, record_stream=streams)


def is_streamed(module) -> bool:
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    return _is_group_offload_enabled(module)


def settle(module) -> None:
    """Every streamed layer of `module` back in CPU memory. With a side stream the layer after the one running is
    fetched ahead; when a cache then skips it, it stays on the GPU until it next runs, and a weight written
    meanwhile (a LoRA merged in place) would land in that GPU copy and be lost when the layer leaves."""
    from diffusers.hooks.group_offloading import _GROUP_OFFLOADING

    for layer in module.modules():
        registry = getattr(layer, "_diffusers_hook", None)
        hook = registry.get_hook(_GROUP_OFFLOADING) if registry is not None else None
        if hook is None or hook.group.offload_leader is not layer:
            continue
        group = hook.group
        tensors = [t for m in group.modules for t in (*m.parameters(), *m.buffers())] + [*group.parameters,
                                                                                         *group.buffers]
        if any(t.device != group.offload_device for t in tensors):
            group.offload_()
