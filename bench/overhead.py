"""Engine overhead against a bare diffusers pipeline, on the mid-size SDXL-shaped model (~36M UNet parameters).

1. The same txt2img task (20 steps, 512x512, CFG 6, Euler) through the engine (task JSON -> results, image encoded)
   and through StableDiffusionXLPipeline on the same modules; repeats interleaved; prints the ratio (target <= 1.03).
2. A warm re-run with only prompt and seed changed: no reload (the model cache's load count stays), and its time
   against the sampling alone (the bare pipeline call); target <= 1.05.

    python bench/overhead.py [--repeats 3] [--size 512] [--steps 20]
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

from _setup import generation_parser



def main() -> None:
    args = generation_parser().parse_args()

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

    cpu_times: dict[str, list[float]] = {"engine": [], "bare": [], "warm": [], "warm-up": []}

    def timed(kind: str, run) -> float:
        """Wall seconds; CPU seconds of the process are kept too (less hit by other load on a shared machine)."""
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        cpu_times[kind].append(time.process_time() - cpu)
        return time.perf_counter() - wall

    def bare(prompt: str, seed: int, kind: str = "bare") -> float:
        pipe.scheduler = make_scheduler("Euler", components.scheduler_config)
        return timed(kind, lambda: pipe(prompt, width=args.size, height=args.size, num_inference_steps=args.steps,
                                        guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(seed),
                                        output_type="pil"))

    def engine(prompt: str, seed: int, kind: str = "engine") -> float:
        return timed(kind, lambda: run_prepared(task(prompt, seed), options, cache))

    pipe.set_progress_bar_config(disable=True)
    engine(prompt, 0, "warm-up"), bare(prompt, 0, "warm-up")  # first-call allocations and kernels
    loads = cache.loads
    engine_times, bare_times, warm_times = [], [], []
    for r in range(args.repeats):  # interleaved, so drift of the machine's speed hits all three alike
        engine_times.append(engine(prompt, 100 + r))
        bare_times.append(bare(prompt, 100 + r))
        warm_times.append(engine(f"a red fox in the snow, variation {r}", 500 + r, "warm"))
        print(f"repeat {r}: engine {engine_times[-1]:.2f} s, bare diffusers {bare_times[-1]:.2f} s, "
              f"warm re-run with new prompt and seed {warm_times[-1]:.2f} s", flush=True)
    assert cache.loads == loads, "a run reloaded the model"

    def ratios(times, base):
        return statistics.median(times) / statistics.median(base), min(times) / min(base)

    for label, wall, cpu, target in (("engine / bare diffusers", engine_times, cpu_times["engine"], 1.03),
                                     ("warm re-run (new prompt and seed) / sampling alone", warm_times, cpu_times["warm"], 1.05)):
        print("{}: wall {:.3f} by median, {:.3f} by fastest; CPU time {:.3f} by median, {:.3f} by fastest "
              "({} interleaved repeats; target <= {})".format(label, *ratios(wall, bare_times),
                                                              *ratios(cpu, cpu_times["bare"]), args.repeats, target))
    print(f"warm re-runs reloaded nothing: model loads stayed {loads}")


if __name__ == "__main__":
    main()
