"""The one place where a pass's UNet is assembled from its parts.

Every feature that changes what the UNet computes during a denoising pass (ControlNet residuals, IP-Adapter
attention, a feature cache, identity embeddings...) is a `UNetPart`. A pass hands its parts to `assembled_unet`,
which yields a module that stands in for the UNet inside diffusers' SDXL pipelines: it counts denoising steps and
runs each call through the parts, outermost first, down to the real UNet.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch


@dataclass
class UNetCall:
    """One UNet call of a pass. Parts may replace any field before handing the call on."""

    sample: torch.Tensor
    timestep: torch.Tensor
    encoder_hidden_states: torch.Tensor
    added_cond_kwargs: dict | None
    kwargs: dict = field(default_factory=dict)  # down/mid residuals, cross_attention_kwargs, return_dict, ...
    step: int = 0  # index of this denoising step in the pass
    total: int = 1  # denoising steps the pass runs
    begin: int = 0  # steps of the scheduler's full schedule before the pass's first (img2img/inpaint start part-way)
    # what outer parts' Python state makes the UNet compute differently at this call, beyond its inputs (DeepCache's
    # cached steps): a CUDA graph replays only calls of the variant it was captured on (cuda_graph.py)
    variant: tuple = ()

    @property
    def schedule_step(self) -> int:
        """Index of this step in the full schedule, as a loop over all of the scheduler's timesteps counts it."""
        return self.begin + self.step


Forward = Callable[[UNetCall], Any]


class UNetPart:
    """A feature acting on the UNet for the length of one pass. Override what the feature needs."""

    def attach(self, unet: torch.nn.Module) -> None:
        """Called when the pass starts (install attention processors, reset per-generation state)."""

    def detach(self, unet: torch.nn.Module) -> None:
        """Called when the pass ends, also after an error or an interrupt: leave the UNet as it was."""

    def __call__(self, call: UNetCall, forward: Forward) -> Any:
        return forward(call)


class StandIn(torch.nn.Module):
    """A module standing in for `inner`: its own attributes first, then the inner module's (config, dtype,
    add_embedding, resnets ...), so code written for the inner module keeps working."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)


class PassUNet(StandIn):
    """Stands in for the UNet in a pipeline: call n of the pass is denoising step n (diffusers' loops call the UNet
    once per iteration, both CFG halves in one batch); where the pass starts in the scheduler's schedule, and so the
    steps it runs, is read off the scheduler at its first call."""

    def __init__(self, unet: torch.nn.Module, parts: Sequence[UNetPart], scheduler):
        super().__init__(unet)
        self.parts = list(parts)
        self.scheduler = scheduler
        self.calls = 0
        self.begin = 0

    def _begin(self, timestep: torch.Tensor) -> int:
        """The index of the pass's first step in the scheduler's timesteps: diffusers' img2img and inpaint slice the
        schedule and set its begin_index; DDIM, DDPM and PNDM keep none, so their first timestep is looked up (PNDM
        repeats its second timestep: a pass starting on the repeat is placed one step early)."""
        if hasattr(self.scheduler, "begin_index"):
            return self.scheduler.begin_index or 0
        return int((self.scheduler.timesteps == timestep).nonzero()[0])

    def _run_unet(self, call: UNetCall):
        return self.inner(call.sample, call.timestep, call.encoder_hidden_states,
                         added_cond_kwargs=call.added_cond_kwargs, **call.kwargs)

    def forward(self, sample, timestep, encoder_hidden_states, *, added_cond_kwargs=None, **kwargs):
        if self.calls == 0:
            self.begin = self._begin(timestep)
        call = UNetCall(sample, timestep, encoder_hidden_states, added_cond_kwargs, kwargs, step=self.calls,
                        total=len(self.scheduler.timesteps) - self.begin, begin=self.begin)
        self.calls += 1
        return self._through(0, call)

    def _through(self, index: int, call: UNetCall):
        if index == len(self.parts):
            return self._run_unet(call)
        return self.parts[index](call, lambda c: self._through(index + 1, c))


@contextmanager
def assembled_unet(unet: torch.nn.Module, parts: Sequence[UNetPart], scheduler) -> Iterator[torch.nn.Module]:
    """The UNet a pass samples with: the real one when no part acts, else a PassUNet running `parts` (first =
    outermost). Parts are attached for the pass and detached after it, whatever happens."""
    if not parts:
        yield unet
        return
    attached: list[UNetPart] = []
    try:
        for part in parts:
            part.attach(unet)
            attached.append(part)
        yield PassUNet(unet, parts, scheduler)
    finally:
        for part in reversed(attached):
            part.detach(unet)
