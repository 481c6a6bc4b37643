"""Hires fix on the mid-size SDXL-shaped model (~36M UNet parameters) with a mid-size ESRGAN (x4, 6 RRDB blocks,
64 filters: RealESRGAN_x4plus_anime_6B's size), random weights.

1. Peak memory (RSS above the level before the call, sampled every 5 ms) of the final VAE decode and of the refine
   pass's VAE encode at 1024x1024 and at 2048x2048 (tiled above 2 MP), and of an untiled 2048 decode for comparison.
2. 512 -> 1024 (--size 512): first pass 512x512 (txt2img), upscale x4 in tiles, resize to 1024, refine at 1024 (img2img of
   exactly --refine-steps UNet evaluations at --strength), decode. Prints the time split, and the refine pass against
   a txt2img pass of the same number of steps at 1024x1024 (the refine should cost about that: ratio ~1).

    python bench/hires.py [--size 512] [--steps 20] [--refine-steps 10] [--strength 0.5] [--repeats 1]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from _setup import generation_parser

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak_rss_during(run) -> int:
    """Bytes of resident memory above the level before `run`, at its highest."""
    before, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        run()
    finally:
        done.set()
        thread.join()
    return max(peak[0], rss()) - before


def main() -> None:
    parser = generation_parser(repeats=False)  # --size is the first pass's side; the result is twice that
    parser.add_argument("--refine-steps", type=int, default=10)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import torch

    from sdxlkit import generate as generate_module
    from sdxlkit import hires as hires_module
    from sdxlkit import vae
    from sdxlkit.generate import Generation, generate, prompt_embeds, txt2img
    from sdxlkit.hires import HiresFix
    from sdxlkit.loading.loader import ModelSpec, load_sdxl
    from sdxlkit.tiny import build_tiny_components, write_single_file
    from sdxlkit.tiny_upscaler import tiny_esrgan_state_dict, write_upscaler

    torch.set_grad_enabled(False)
    work = Path(tempfile.mkdtemp(prefix="sdxlkit-bench-"))
    checkpoint = write_single_file(build_tiny_components("mid", seed=0), work / "checkpoints" / "mid.safetensors")
    components = load_sdxl(ModelSpec(checkpoint, device="cpu"))
    upscaler = write_upscaler(tiny_esrgan_state_dict(seed=1, filters=64, blocks=6), work / "upscale_models" / "mid-esrgan.pth")

    print("peak RSS above the level before the call (MiB):")
    for size in (1024, 2048):
        latents = torch.randn(1, 4, size // 8, size // 8)
        pixels = torch.rand(1, 3, size, size)
        decode = peak_rss_during(lambda: vae.decode(components, latents))
        encode = peak_rss_during(lambda: vae.encode(components, pixels))
        print(f"  {size}x{size}: decode {decode / 2**20:8.1f}   encode {encode / 2**20:8.1f}")
    tile_above = vae.TILE_ABOVE_PIXELS
    vae.TILE_ABOVE_PIXELS = 10**9
    latents = torch.randn(1, 4, 256, 256)
    print(f"  2048x2048 untiled decode: {peak_rss_during(lambda: vae.decode(components, latents)) / 2**20:8.1f}")
    vae.TILE_ABOVE_PIXELS = tile_above

    timings: dict[str, list[float]] = defaultdict(list)
    stage = {"denoise": 0, "decode": 0}

    def timed(name, fn):
        def wrapper(*a, **k):
            kind = name
            if name in stage:
                kind = f"{name} {('first pass', 'refine')[min(stage[name], 1)]}"
                stage[name] += 1
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timings[kind].append(time.perf_counter() - start)
        return wrapper

    generate_module.denoise = timed("denoise", generate_module.denoise)
    vae.decode = timed("decode", vae.decode)
    generate_module._source_latents = timed("encode (refine source)", generate_module._source_latents)
    hires_module.upscaled = timed("upscale x4 + resize", hires_module.upscaled)

    final = 2 * args.size
    gen = Generation(prompt="a lighthouse on a cliff at sunset", negative_prompt=None, width=final, height=final,
                     steps=args.steps, cfg=6.0, scheduler="Euler", seed=1,
                     hires=HiresFix(upscaler, args.refine_steps, args.strength, first_pass_area=args.size ** 2))
    plain_refine = []
    for _ in range(args.repeats):
        for key in stage:
            stage[key] = 0
        start = time.perf_counter()
        generate(components, gen)
        timings["total"].append(time.perf_counter() - start)
        embeds = prompt_embeds(components, gen, gen.prompt, None, gen.cfg)
        start = time.perf_counter()
        for key in stage:
            stage[key] = 2  # not the hires run's stages
        txt2img(components, replace(gen, steps=args.refine_steps, hires=None), [1], embeds, None)
        plain_refine.append(timings["denoise refine"].pop())
        timings["decode refine"].pop()
    print(f"hires {args.size} -> {final}, mid model, {args.steps} + {args.refine_steps} steps at strength {args.strength} "
          f"(median of {args.repeats}):")
    for name, values in timings.items():
        print(f"  {name:28s} {statistics.median(values):7.2f} s")
    refine = statistics.median(timings["denoise refine"])
    print(f"  refine / txt2img of {args.refine_steps} steps at {final}: {refine / statistics.median(plain_refine):.3f}")



if __name__ == "__main__":
    main()
