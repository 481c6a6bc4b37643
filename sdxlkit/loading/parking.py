"""A model part parked in CPU memory between uses, brought onto the GPU whole while it runs.

The part's weights live in one CPU copy (pinned when a GPU is there, so bringing them in is one fast asynchronous
copy). Parking frees the GPU copy by pointing each tensor back at its CPU copy: nothing is copied back, since
inference never changes weights on the GPU. Weights changed while parked (a LoRA merged in place) change the CPU
copy itself and come along on the next onload.
"""

from __future__ import annotations

import weakref


class ParkedPart:
    def __init__(self, module):
        import torch

        self.module = weakref.ref(module)  # whoever holds the module decides how long it lives
        self.device: str | None = None  # where the part is onloaded; None while parked
        pin = torch.cuda.is_available()
        self.home = {}
        for tensor in self._tensors():
            cpu = tensor.data.cpu()
            self.home[tensor] = cpu.pin_memory() if pin else cpu
            tensor.data = self.home[tensor]

    def _tensors(self):
        module = self.module()
        return [] if module is None else list(module.parameters()) + list(module.buffers())

    def _home(self, tensor):
        """The tensor's CPU copy; a tensor the part gained since (a LoRA adapter) makes its data its home."""
        if tensor not in self.home:
            self.home[tensor] = tensor.data.cpu()
        return self.home[tensor]

    def onload(self, device) -> None:
        for tensor in self._tensors():
            tensor.data = self._home(tensor).to(device, non_blocking=True, copy=True)
        self.device = str(device)

    def park(self) -> None:
        for tensor in self._tensors():
            tensor.data = self._home(tensor)
        self.device = None
