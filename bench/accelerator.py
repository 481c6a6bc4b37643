"""The accelerator cache against no cache, on the mid-size SDXL-shaped model, in one run (interleaved repeats).

DeepCache interval 3 (branch 0) at 20 and 50 steps, and the first-block cache (teaCache) at two distances, each
against the uncached run at the same step count; prints the speed-up and how far the image moved (mean / max
absolute difference, 0..1 pixels). Target: DeepCache interval 3 >= 2.0x.

    python bench/accelerator.py [--repeats 2] [--size 512]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _setup import generation_parser

CASES = (  # (label, steps, acceleratorOptions)
    ("no cache", 20, None),
    ("DeepCache interval 3", 20, {"deepCache": True, "deepCacheInterval": 3}),
    ("first-block distance 0.5", 20, {"teaCache": True, "teaCacheDistance": 0.5}),
    ("first-block distance 1.0", 20, {"teaCache": True, "teaCacheDistance": 1.0}),
    ("no cache", 50, None),
    ("DeepCache interval 3", 50, {"deepCache": True, "deepCacheInterval": 3}),
)


def main() -> None:
    parser = generation_parser()
    parser.set_defaults(repeats=2)
    args = parser.parse_args()

    import torch

    from sdxlkit.accelerator import accelerator_request
    from sdxlkit.generate import Generation, generate
    from sdxlkit.loading.loader import ModelSpec, load_sdxl
    from sdxlkit.tiny import build_tiny_components, write_single_file

    torch.set_grad_enabled(False)
    work = Path(tempfile.mkdtemp(prefix="sdxlkit-bench-"))
    components = load_sdxl(ModelSpec(write_single_file(build_tiny_components("mid", seed=0), work / "mid.safetensors")))

    def gen(steps, options):
        return Generation(prompt="a lighthouse on a cliff at sunset", negative_prompt=None, width=args.size,
                          height=args.size, steps=steps, cfg=5.0, scheduler="Euler", seed=1,
                          accelerator=accelerator_request(options, steps))

    times: dict[int, list[float]] = {i: [] for i in range(len(CASES))}
    images = {}
    generate(components, gen(2, None))  # warm-up
    for _ in range(args.repeats):
        for i, (_, steps, options) in enumerate(CASES):
            start = time.perf_counter()
            ((images[i], _),) = generate(components, gen(steps, options))
            times[i].append(time.perf_counter() - start)

    baseline = {steps: i for i, (_, steps, options) in enumerate(CASES) if options is None}
    print(f"mid model, {args.size}x{args.size}, CFG 5, Euler, {args.repeats} interleaved repeats, "  # noqa: T201
          f"{torch.get_num_threads()} threads")
    for i, (label, steps, options) in enumerate(CASES):
        median = statistics.median(times[i])
        ratio = statistics.median(times[baseline[steps]]) / median
        difference = (images[i] - images[baseline[steps]]).abs()
        print(f"{label:26s} {steps:3d} steps  {median:7.2f} s  {ratio:5.2f}x  "  # noqa: T201
              f"|diff| mean {difference.mean():.4f} max {difference.max():.4f}")


if __name__ == "__main__":
    main()
