"""Switching LoRA sets on the mid-size SDXL-shaped model, against one generation.

Two sets of three LoRAs (kohya files, UNet and both text encoders) are switched back and forth. Measured in one run:
- a warm switch (both sets resident: only adapter weights change) as a fraction of one generation with the default
  shape of 20 steps at 512x512 (target <= 5%);
- the first switch to a set whose files were parsed before but whose adapters are not in the model yet;
- a generation with a set of three applied against the base model (merged weights: expected about 1.0).
After all switches the base output is compared with a freshly loaded model (bit-identical expected).

    python bench/lora_switch.py [--size 512] [--steps 20] [--switches 20] [--rank 16] [--preset mid|full] [--device cuda]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _setup import generation_parser



def main() -> None:
    parser = generation_parser(repeats=False)
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--preset", default="mid", help="mid (CPU) or full (SDXL's own sizes, for a GPU)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from sdxlkit.generate import Generation, generate
    from sdxlkit.loading.loader import ModelSpec, load_sdxl
    from sdxlkit.lora import LoraFileCache, apply_loras
    from sdxlkit.tiny import build_tiny_components, write_single_file
    from sdxlkit.tiny_lora import kohya_state_dict, random_lora, write_lora

    work = Path(tempfile.mkdtemp(prefix="sdxlkit-bench-lora-"))
    source = build_tiny_components(args.preset, seed=0)
    checkpoint = write_single_file(source, work / "checkpoints" / f"{args.preset}.safetensors",
                                   torch.float32 if args.device == "cpu" else torch.bfloat16)
    paths = [write_lora(kohya_state_dict(random_lora(source, seed, rank=args.rank, scale=0.02), source),
                        work / "loras" / f"lora{seed}.safetensors") for seed in range(6)]
    del source
    set_a = [(paths[0], 0.8), (paths[1], -0.5), (paths[2], 1.1)]
    set_b = [(paths[3], 0.6), (paths[4], 0.9), (paths[5], -0.3)]
    files = LoraFileCache()
    components = load_sdxl(ModelSpec(checkpoint, device=args.device))

    def timed(run) -> float:
        if args.device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if args.device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    gen = dict(prompt="a lighthouse on a cliff at sunset", negative_prompt=None, width=args.size, height=args.size,
               steps=args.steps, cfg=6.0, scheduler="Euler", seed=1)

    def generation(loras) -> tuple[float, torch.Tensor]:
        out = {}
        seconds = timed(lambda: out.setdefault("image", generate(components, Generation(**gen, loras=loras), None)[0][0]))
        return seconds, out["image"]

    for path in paths:  # parse every file once, so the switches below read nothing
        files.get(path, components.unet.config)
    first_load = [timed(lambda: apply_loras(components, set_a, files)),
                  timed(lambda: apply_loras(components, set_b, files))]
    warm = []
    for _ in range(args.switches):
        warm.append(timed(lambda: apply_loras(components, set_a, files)))
        warm.append(timed(lambda: apply_loras(components, set_b, files)))
    assert files.reads == len(paths), "a switch read a LoRA file again"

    base_times, lora_times = [], []
    for _ in range(2):  # interleaved, so drift of the machine's speed hits both alike
        base_time, base_image = generation([])
        base_times.append(base_time)
        lora_times.append(generation(set_a)[0])
    base_again_time, base_again = generation([])
    base_times.append(base_again_time)
    components_dtype = str(components.dtype).removeprefix("torch.")
    fresh = load_sdxl(ModelSpec(checkpoint, device=args.device))
    fresh_image = generate(fresh, Generation(**gen), None)[0][0]

    generation_time, lora_time = statistics.median(base_times), statistics.median(lora_times)
    switch = statistics.median(warm)
    print(f"{args.preset} model on {args.device} ({components_dtype}); LoRAs of rank {args.rank}")
    print(f"one generation ({args.steps} steps, {args.size}x{args.size}, base model): {generation_time:.2f} s")
    print(f"warm switch between two sets of three LoRAs: median {switch * 1000:.1f} ms, max {max(warm) * 1000:.1f} ms "
          f"over {len(warm)} switches = {switch / generation_time:.2%} of a generation (target <= 5%)")
    print(f"first switch to a set (files parsed, adapters not yet in the model): "
          f"{', '.join(f'{t * 1000:.0f} ms' for t in first_load)} = {max(first_load) / generation_time:.2%} of a generation")
    print(f"generation with three LoRAs applied: {lora_time:.2f} s = {lora_time / generation_time:.3f}x the base model")
    print(f"base output after {len(warm) + 2} switches equals a fresh load bit for bit: "
          f"{torch.equal(base_again, fresh_image) and torch.equal(base_image, fresh_image)}")


if __name__ == "__main__":
    main()
