"""How many of a task's images share one denoising pass.

On a GPU, as many as fit in the free memory (loading.residency.working_bytes per image); on the CPU one at a time,
since a batch is not faster there. A batch gives each image exactly the noise of its own seed, so its images are
the ones a run of one image per seed gives, except where noise is drawn for the whole batch at once (the
Brownian-tree SDE schedulers) or a decision is taken for the whole batch (the first-block cache): those run one by
one.
"""

from __future__ import annotations

from .loading.residency import working_bytes
from .schedulers import batchable


def shares_a_pass(gen) -> bool:
    return batchable(gen.scheduler) and not (gen.accelerator and gen.accelerator.first_block)


def batch_size(components, gen) -> int:
    import torch

    if gen.count == 1 or not shares_a_pass(gen) or not str(components.device).startswith("cuda"):
        return 1
    free, _ = torch.cuda.mem_get_info(components.device)
    per_image = working_bytes(gen.width, gen.height, components.dtype.itemsize)
    return max(1, min(gen.count, int(free // per_image)))
