"""Compiled mode on a GPU: the UNet's forward replayed from a CUDA graph, step after step of a pass.

Eager SDXL on a fast GPU is launch-bound: the CPU takes longer to launch a forward's thousands of kernels than the
GPU takes to run them. A CUDA graph records the launches once and replays them in one call. The first step with a
given set of input shapes runs as usual (on a side stream: the warm-up CUDA graphs need), the next one is captured,
and every later step copies its inputs into the graph's own tensors and replays it; what it returns is copied out,
so a step's output outlives the next replay. The graphs live for one pass: their memory is freed when it ends.

What a graph replays is fixed at capture: the part is innermost, so parts outside it (ControlNet, the first-block
cache, PhotoMaker's identity switch) only change the forward's inputs. A part whose Python state changes what the
UNet computes (DeepCache's stand-ins on a cached step) names that state in `UNetCall.variant`, and each variant gets
its own graph. The graphs of a pass share one memory pool: they replay one at a time and their outputs are copied
out at once, so one graph's scratch memory may be another's.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable

import torch
from torch.utils import _pytree as pytree

from .unet import UNetCall, UNetPart

log = logging.getLogger(__name__)

# a ControlNet window gives a pass two input structures (with and without residuals), DeepCache two variants
SIGNATURES_PER_PASS = 4


def _inputs(call: UNetCall) -> tuple:
    """The forward's inputs, the timestep as a tensor on the sample's device (a copy from the CPU cannot be
    captured)."""
    timestep = torch.as_tensor(call.timestep).to(call.sample.device)
    return (call.sample, timestep, call.encoder_hidden_states, call.added_cond_kwargs, call.kwargs)


def signature(inputs: tuple, variant: tuple = ()) -> tuple:
    """What a graph is fixed to: the structure of the inputs, each tensor's shape, dtype and device, every other
    value (return_dict, ...) and the call's variant."""
    leaves, spec = pytree.tree_flatten(inputs)
    return (spec, tuple((tuple(x.shape), x.dtype, x.device) if torch.is_tensor(x) else ("value", x) for x in leaves),
            variant)


class CudaGraphRecorder:
    """Capture and replay with torch.cuda.CUDAGraph (the test suite gives the part a CPU stand-in)."""

    def __init__(self):
        self.side = None
        self.pool = None  # the memory pool of the part's graphs, made by the first capture

    def warm_up(self, run: Callable[[], Any]) -> Any:
        self.side = self.side or torch.cuda.Stream()
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            out = run()
        torch.cuda.current_stream().wait_stream(self.side)
        return out

    def capture(self, run: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        graph = torch.cuda.CUDAGraph()
        # thread_local: the host's other threads may use CUDA meanwhile
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            out = run()
        self.pool = self.pool or graph.pool()
        return graph.replay, out


class _Graph:
    def __init__(self, forward, inputs: tuple, recorder):
        self.static = pytree.tree_map(lambda x: x.clone() if torch.is_tensor(x) else x, inputs)
        sample, timestep, hidden, added, kwargs = self.static
        call = UNetCall(sample, timestep, hidden, added, dict(kwargs))
        self.replay, self.out = recorder.capture(lambda: forward(call))

    def __call__(self, inputs: tuple):
        for static, value in zip(pytree.tree_leaves(self.static), pytree.tree_leaves(inputs)):
            if torch.is_tensor(static):
                static.copy_(value)
        self.replay()
        return pytree.tree_map(lambda x: x.clone() if torch.is_tensor(x) else x, self.out)


class CudaGraphPart(UNetPart):
    def __init__(self, recorder=None):
        self.recorder = recorder or CudaGraphRecorder()
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.seen: set[tuple] = set()
        self.failed = False

    def attach(self, unet) -> None:
        self.graphs.clear()
        self.seen.clear()
        self.failed = False

    def detach(self, unet) -> None:
        self.graphs.clear()  # frees the graphs' memory
        self.seen.clear()

    def __call__(self, call: UNetCall, forward):
        if self.failed:
            return forward(call)
        inputs = _inputs(call)
        key = signature(inputs, call.variant)
        try:
            hash(key)
        except TypeError:  # an input no graph can be keyed by: this step runs as usual
            return forward(call)
        if key in self.graphs:
            self.graphs.move_to_end(key)
            return self.graphs[key](inputs)
        if key not in self.seen:
            self.seen.add(key)
            return self.recorder.warm_up(lambda: forward(call))
        try:
            graph = _Graph(forward, inputs, self.recorder)
        except Exception as exc:  # an op that cannot be captured: the pass goes on without graphs
            log.warning("CUDA graph capture failed, running this pass without: %s", str(exc).splitlines()[0][:200])
            self.failed = True
            return forward(call)
        self.graphs[key] = graph
        while len(self.graphs) > SIGNATURES_PER_PASS:
            self.graphs.popitem(last=False)
        return graph(inputs)
