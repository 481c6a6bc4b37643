"""IP-Adapter cost on the mid-size SDXL-shaped model (~36M UNet parameters), through the engine (task JSON -> image).

1. The same txt2img task (20 steps, 512x512, CFG 6, Euler) without an adapter, with one base IP-Adapter (runware:55@1,
   4 tokens) and with one Plus IP-Adapter (runware:55@2, resampler, 16 tokens); repeats interleaved; prints the
   ratios to the run without (target <= 1.15). Random adapters in h94's layout and a mid-size CLIP vision encoder
   (128 wide, 6 layers) stand in for the real files.
2. Switching the guide image: each repeat runs the Plus adapter with a guide image it has not seen; the loaded
   adapters and encoders are reused (their load counts stay) and only the new image is encoded.

    python bench/ip_adapter.py [--repeats 3] [--size 512] [--steps 20]
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

    import numpy as np
    from PIL import Image

    from sdxlkit.ipadapter import ADAPTERS, ENCODERS, ENCODINGS
    from sdxlkit.loading.cache import ModelCache
    from sdxlkit.registry import DEFAULT_IDS, IMAGE_ENCODERS
    from sdxlkit.runner import RunOptions, prepare, run_prepared
    from sdxlkit.task.model import parse_tasks
    from sdxlkit.tiny import build_tiny_components, write_single_file
    from sdxlkit.tiny_ipadapter import build_clip_vision, random_ip_adapter, write_clip_vision, write_ip_adapter

    work = Path(tempfile.mkdtemp(prefix="sdxlkit-bench-"))
    models = work / "models"
    components = build_tiny_components("mid", seed=0)
    checkpoint = write_single_file(components, models / "checkpoints" / "mid.safetensors")
    encoder = build_clip_vision("mid", seed=1)
    for model_id, plus in (("runware:55@1", False), ("runware:55@2", True)):
        write_clip_vision(encoder, models / "clip_vision" / IMAGE_ENCODERS[model_id])
        write_ip_adapter(random_ip_adapter(components["unet"], encoder, plus=plus, seed=2), models / DEFAULT_IDS[model_id])
    guides = []
    for seed in range(args.repeats + 2):
        guides.append(work / f"guide{seed}.png")
        Image.fromarray((np.random.RandomState(seed).rand(320, 480, 3) * 255).astype(np.uint8)).save(guides[-1])
    options = RunOptions(models_dir=models, out_dir=work / "out", device="cpu")
    cache = ModelCache()

    def run(adapter: str | None, seed: int, guide: Path) -> float:
        data = {"taskType": "imageInference", "taskUUID": str(uuid.uuid4()), "model": checkpoint.name,
                "positivePrompt": "a lighthouse on a cliff at sunset", "width": args.size, "height": args.size,
                "steps": args.steps, "CFGScale": 6.0, "seed": seed, "scheduler": "Euler", "outputFormat": "PNG",
                "outputType": "URL"}
        if adapter is not None:
            data["ipAdapters"] = [{"model": adapter, "guideImages": [str(guide)]}]
        start = time.perf_counter()
        run_prepared(prepare(parse_tasks(data)[0], options), options, cache)
        return time.perf_counter() - start

    for adapter in (None, "runware:55@1", "runware:55@2"):  # warm-up: loads, first-call allocations
        run(adapter, 0, guides[0])
    loads = (cache.loads, ADAPTERS.made, ENCODERS.made)
    encoded = ENCODINGS.made
    times: dict[str, list[float]] = {"none": [], "base": [], "plus": [], "switch": []}
    for r in range(args.repeats):  # interleaved, so drift of the machine's speed hits all alike
        times["none"].append(run(None, 100 + r, guides[0]))
        times["base"].append(run("runware:55@1", 100 + r, guides[0]))
        times["plus"].append(run("runware:55@2", 100 + r, guides[0]))
        times["switch"].append(run("runware:55@2", 100 + r, guides[r + 1]))
        print("repeat {}: no adapter {:.2f} s, base {:.2f} s, Plus {:.2f} s, Plus with a new guide image {:.2f} s".format(
            r, *(times[k][-1] for k in ("none", "base", "plus", "switch"))), flush=True)
    assert (cache.loads, ADAPTERS.made, ENCODERS.made) == loads, "a run reloaded a model"
    assert ENCODINGS.made == encoded + args.repeats, "only the new guide images are encoded"

    def ratio(kind: str, base: str = "none") -> str:
        return (f"{statistics.median(times[kind]) / statistics.median(times[base]):.3f} by median, "
                f"{min(times[kind]) / min(times[base]):.3f} by fastest")

    print(f"one base IP-Adapter / none: {ratio('base')} ({args.repeats} interleaved repeats; target <= 1.15)")
    print(f"one Plus IP-Adapter / none: {ratio('plus')} (target <= 1.15)")
    print(f"Plus with a new guide image / Plus with the same image: {ratio('switch', 'plus')}")
    print(f"switching guide images reloaded nothing: model loads {loads[0]}, adapters loaded {loads[1]}, "
          f"encoders loaded {loads[2]}; {args.repeats} new images encoded once each")


if __name__ == "__main__":
    main()
