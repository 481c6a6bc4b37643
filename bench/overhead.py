"""Engine overhead against a bare diffusers pipeline, on the mid-size SDXL-shaped model (~36M UNet parameters).

1. The same txt2img task (20 steps, 512x512, CFG 6, Euler) through the engine (task JSON -> results, image encoded)
   and through StableDiffusionXLPipeline on the same modules; repeats interleaved; prints the ratio (target <= 1.03).
2. A warm re-run with only prompt and seed changed: no reload (the model cache's load count stays), and its time
   against the sampling alone (the bare pipeline call); target <= 1.05.

    python bench/overhead.py [--repeats 3] [--size 512] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionXLPipeline

    from sdxlkit.loading.cache import ModelCache
    from sdxlkit.runner import RunOptions, prepare, run_prepared
    from sdxlkit.task.model import parse_tasks
    from sdxlkit.tiny import build_tiny_components, write_single_file

    work = Path(tempfile.mkdtemp(prefix="sdxlkit-bench-"))
    checkpoint = write_single_file(build_tiny_components("mid", seed=0), work / "models" / "checkpoints" / "mid.safetensors")
    options = RunOptions(models_dir=work / "models", out_dir=work / "out", device="cpu")
    cache = ModelCache()

    def task(prompt: str, seed: int):
        data = {"taskType": "imageInference", "taskUUID": str(uuid.uuid4()), "model": checkpoint.name,
                "positivePrompt": prompt, "width": args.size, "height": args.size, "steps": args.steps,
                "CFGScale": 6.0, "seed": seed, "scheduler": "Euler", "outputFormat": "PNG", "outputType": "URL"}
        return prepare(parse_tasks(data)[0], options)

    prompt = "a lighthouse on a cliff at sunset"
    components = cache.get(task(prompt, 1).spec)
    pipe = StableDiffusionXLPipeline(**components.modules(), scheduler=None, add_watermarker=False)
    from sdxlkit.schedulers import make_scheduler

    def bare(prompt: str, seed: int) -> float:
        pipe.scheduler = make_scheduler("Euler", components.scheduler_config)
        start = time.perf_counter()
        pipe(prompt, width=args.size, height=args.size, num_inference_steps=args.steps, guidance_scale=6.0,
             generator=torch.Generator("cpu").manual_seed(seed), output_type="pil")
        return time.perf_counter() - start

    def engine(prompt: str, seed: int) -> float:
        start = time.perf_counter()
        run_prepared(task(prompt, seed), options, cache)
        return time.perf_counter() - start

    pipe.set_progress_bar_config(disable=True)
    engine(prompt, 0), bare(prompt, 0)  # warm-up: first-call allocations and kernels
    engine_times, bare_times = [], []
    for r in range(args.repeats):
        engine_times.append(engine(prompt, 100 + r))
        bare_times.append(bare(prompt, 100 + r))
        print(f"repeat {r}: engine {engine_times[-1]:.2f} s, bare diffusers {bare_times[-1]:.2f} s", flush=True)
    ratio = statistics.median(engine_times) / statistics.median(bare_times)
    print(f"overhead: engine / bare diffusers = {ratio:.3f} (median of {args.repeats}; target <= 1.03)")

    loads = cache.loads
    warm = [engine(f"a red fox in the snow, variation {r}", 500 + r) for r in range(args.repeats)]
    assert cache.loads == loads, "a warm re-run reloaded the model"
    warm_ratio = statistics.median(warm) / statistics.median(bare_times)
    print(f"warm re-run (new prompt and seed): no reload (loads stayed {loads}); "
          f"time / sampling alone = {warm_ratio:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
