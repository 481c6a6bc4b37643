"""The engine against a bare diffusers pipeline and ComfyUI's own sampling, on one GPU, on a random full-size SDXL
single file (Stability's layout, written by sdxlkit.tiny), in one dtype, interleaved.

Paths, each from prompt to PNG file: engine eager, engine compiled (--compile: compiled transformer blocks, each
pass's UNet forward replayed from a CUDA graph), both with DeepCache interval 3 (in compiled mode a graph for its
full steps and one for its cached steps), a bare StableDiffusionXLPipeline on the eager engine's modules, the
eager engine with a new prompt every run (its parked text encoders come in each time), and, with COMFYUI_PATH set,
ComfyUI's own path (load_checkpoint_guess_config, CLIP encode, comfy.sample.sample euler/normal, VAE decode, PNG).
Prints end-to-end medians and ratios over a seed sweep (the prompt's conditioning is reused by the engine and by
ComfyUI, whose cache skips an unchanged CLIPTextEncode; the bare pipeline encodes every run), UNet milliseconds per
forward (CFG batch of 2; also replayed from a CUDA graph, to show what launching kernels costs), the engine's CUDA
graphs checked against the direct forward and its images with graphs against those without, graphs compiled when
only prompt/seed/steps change, compile time cold and warm (a second process on the same disk cache), and peak GPU
memory of a fresh process in the default and the lowvram mode.

    COMFYUI_PATH=/path/to/ComfyUI python bench/gpu_peer.py [--size 1024] [--steps 20] [--repeats 5] [--out DIR]

Every line is also appended to DIR/gpu_peer.txt as it is measured, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from _setup import ROOT, generation_parser

PROMPTS = ("a lighthouse on a cliff at sunset, dramatic sky", "a red fox in a snowy birch forest")
NEGATIVE = "blurry, low quality"
CFG = 7.0


def report(out: Path, line: str) -> None:
    print(line, flush=True)  # noqa: T201
    with open(out / "gpu_peer.txt", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def write_checkpoint(path: Path, preset: str, device: str) -> Path:
    import torch

    from sdxlkit.tiny import MODELS, build_tiny_components, write_single_file

    with torch.device(device):
        components = build_tiny_components(preset, seed=0)
    for name in MODELS:
        components[name].to("cpu", torch.bfloat16)
    return write_single_file(components, path, dtype=torch.bfloat16)


def task(checkpoint: Path, args, seed: int, prompt: str, accelerate: bool = False, steps: int | None = None) -> dict:
    data = {"taskType": "imageInference", "taskUUID": str(uuid.uuid4()), "model": checkpoint.name,
            "positivePrompt": prompt, "negativePrompt": NEGATIVE, "width": args.size, "height": args.size,
            "steps": steps or args.steps, "CFGScale": CFG, "seed": seed, "scheduler": "Euler",
            "outputFormat": "PNG", "outputType": "URL"}
    if accelerate:
        data["acceleratorOptions"] = {"deepCache": True, "deepCacheInterval": 3}
    return data


class Engine:
    def __init__(self, checkpoint: Path, out: Path, args, compile: bool = False, memory: str = "auto"):
        from sdxlkit.loading.cache import ModelCache
        from sdxlkit.runner import RunOptions

        self.checkpoint, self.args = checkpoint, args
        self.options = RunOptions(models_dir=checkpoint.parent.parent, out_dir=out, device=args.device,
                                  precision=args.precision, compile=compile, memory=memory)
        self.cache = ModelCache()

    def run(self, seed: int, prompt: str, accelerate: bool = False, steps: int | None = None) -> None:
        from sdxlkit.runner import prepare, run_prepared
        from sdxlkit.task.model import parse_tasks

        prepared = prepare(parse_tasks(task(self.checkpoint, self.args, seed, prompt, accelerate, steps))[0], self.options)
        run_prepared(prepared, self.options, self.cache)

    def load(self) -> None:
        self.components  # noqa: B018 (the cache loads on first access)

    @property
    def components(self):
        from sdxlkit.runner import prepare
        from sdxlkit.task.model import parse_tasks

        return self.cache.get(prepare(parse_tasks(task(self.checkpoint, self.args, 0, PROMPTS[0]))[0], self.options).spec)


def with_new_prompts(run):
    """`run` on a prompt it has not seen every time: what parking the text encoders costs."""
    return lambda seed, prompt: run(seed, f"{prompt}, variation {seed}")


def bare_pipeline(components, out: Path, args):
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**components.modules(), add_watermarker=False,
                                     scheduler=EulerDiscreteScheduler.from_config(components.scheduler_config))
    pipe.set_progress_bar_config(disable=True)

    def run(seed: int, prompt: str) -> None:
        image = pipe(prompt, negative_prompt=NEGATIVE, width=args.size, height=args.size, num_inference_steps=args.steps,
                     guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        image.save(out / f"bare_{seed}.png")

    return run


def comfy_path(checkpoint: Path, out: Path, args):
    """ComfyUI's own functions, as its default txt2img workflow runs them; None without COMFYUI_PATH."""
    comfy_root = os.environ.get("COMFYUI_PATH")
    if not comfy_root:
        return None, None
    sys.path.insert(0, comfy_root)
    import numpy as np
    import torch
    from PIL import Image

    import comfy.model_management
    import comfy.sample
    import comfy.sd

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.precision]
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        str(checkpoint), output_vae=True, output_clip=True, model_options={"dtype": dtype})

    encoded: dict[str, list] = {}

    def encode(text: str):
        """A prompt encoded once, as ComfyUI's cache skips an unchanged CLIPTextEncode node (the engine keeps its
        last prompts' embeddings too)."""
        if text not in encoded:
            tokens = clip.tokenize(text)
            cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
            encoded[text] = [[cond, {"pooled_output": pooled}]]
        return encoded[text]

    @torch.inference_mode()
    def run(seed: int, prompt: str) -> None:
        latent = torch.zeros([1, 4, args.size // 8, args.size // 8])
        noise = comfy.sample.prepare_noise(latent, seed)
        samples = comfy.sample.sample(model, noise, args.steps, CFG, "euler", "normal", encode(prompt), encode(NEGATIVE),
                                      latent, denoise=1.0, disable_pbar=True, seed=seed)
        pixels = vae.decode(samples)
        Image.fromarray((pixels[0].cpu().float().numpy() * 255).round().astype(np.uint8)).save(out / f"comfy_{seed}.png")

    def unet_forward():
        comfy.model_management.load_models_gpu([model])
        diffusion = model.model.diffusion_model
        device = comfy.model_management.get_torch_device()
        x = torch.randn(2, 4, args.size // 8, args.size // 8, device=device, dtype=dtype)
        context = torch.randn(2, 77, 2048, device=device, dtype=dtype)
        y = torch.randn(2, diffusion.label_emb[0][0].in_features, device=device, dtype=dtype)  # SDXL's ADM vector
        t = torch.full((2,), 500.0, device=device)
        return lambda: diffusion(x, t, context=context, y=y)

    return run, unet_forward


def engine_unet_forward(unet, args):
    """A forward on random inputs. They are inference tensors, as the engine's are: dynamo compiles another graph
    for ordinary tensors, and a graph compiled apart may autotune its kernels apart, a few bf16 ulps off."""
    import torch

    device, dtype = unet.device, unet.dtype
    text = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
    with torch.inference_mode():
        x = torch.randn(2, 4, args.size // 8, args.size // 8, device=device, dtype=dtype)
        ehs = torch.randn(2, 77, unet.config.cross_attention_dim, device=device, dtype=dtype)
        added = {"text_embeds": torch.randn(2, text, device=device, dtype=dtype),
                 "time_ids": torch.tensor([[args.size, args.size, 0, 0, args.size, args.size]] * 2, device=device,
                                          dtype=dtype)}
        t = torch.tensor(500.0, device=device)

    def forward():
        return unet(x, t, ehs, added_cond_kwargs=added, return_dict=False)

    forward.inputs = (x, ehs, added)
    return forward


def cuda_graphed(forward):
    """`forward` captured once in a CUDA graph and replayed (its inputs are fixed tensors): what a forward costs
    without the CPU launching each kernel."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.cuda.stream(side):
        for _ in range(3):
            forward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        forward()
    return graph.replay


def graph_part_difference(unet, args, steps: int = 4) -> float:
    """The largest difference between the compiled UNet called directly and through the CudaGraphPart the engine's
    compiled mode uses (warm-up, capture, replays), over steps with new inputs each: 0 when replays are right."""
    import torch

    from sdxlkit.sampling import assembled_unet
    from sdxlkit.sampling.cuda_graph import CudaGraphPart

    forward = engine_unet_forward(unet, args)
    sample, ehs, added = forward.inputs
    scheduler = type("Steps", (), {"timesteps": list(range(steps)), "begin_index": None})()
    worst = 0.0
    with torch.inference_mode(), assembled_unet(unet, [CudaGraphPart()], scheduler) as graphed:
        for step in range(steps):
            x, t = torch.randn_like(sample), torch.tensor(900.0 - 200 * step, device=sample.device)
            direct = unet(x, t, ehs, added_cond_kwargs=added, return_dict=False)[0]
            replayed = graphed(x, t, ehs, added_cond_kwargs=added, return_dict=False)[0]
            worst = max(worst, (direct.float() - replayed.float()).abs().max().item())
    return worst


def graph_image_difference(components, args) -> dict[str, float]:
    """The largest pixel difference between compiled mode's images with its CUDA graphs and without them (the same
    compiled kernels, launched one by one), plain and with DeepCache interval 3: 0 when replays are right."""
    from sdxlkit.accelerator import accelerator_request
    from sdxlkit.generate import Generation, generate

    def image(accelerator: dict | None):
        request = accelerator and accelerator_request(accelerator, args.steps)
        g = Generation(prompt=PROMPTS[0], negative_prompt=NEGATIVE, width=args.size, height=args.size,
                       steps=args.steps, cfg=CFG, scheduler="Euler", seed=3, accelerator=request)
        return generate(components, g)[0][0]

    differences = {}
    for name, accelerator in (("plain", None), ("DeepCache", {"deepCache": True, "deepCacheInterval": 3})):
        graphed = image(accelerator)
        components.replays_graphs = lambda: False
        try:
            launched = image(accelerator)
        finally:
            del components.replays_graphs
        differences[name] = (graphed - launched).abs().max().item()
    return differences


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():  # the CPU runs only as a smoke test of this script
        torch.cuda.synchronize()


def ms_per_forward(forward, repeats: int = 30) -> float:
    import torch

    with torch.inference_mode():
        for _ in range(5):
            forward()
        times = []
        for _ in range(repeats):
            synchronize()
            start = time.perf_counter()
            forward()
            synchronize()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def timed(run, *args, **kwargs) -> float:
    synchronize()
    start = time.perf_counter()
    run(*args, **kwargs)
    synchronize()
    return time.perf_counter() - start


def peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")


def child(args) -> None:
    """One fresh process: --child memory (peak GPU memory of one run in args.memory mode) or --child warm (the first
    compiled run on a disk cache filled by the parent)."""
    import torch

    out = Path(args.out)
    checkpoint = Path(args.checkpoint)
    engine = Engine(checkpoint, out, args, compile=args.child == "warm", memory=args.memory)
    load = timed(engine.load)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(engine.run, 1, PROMPTS[0])
    print(json.dumps({"load": load, "seconds": seconds, "peak_gib": peak_gib()}))  # noqa: T201


def in_child(args, kind: str, memory: str = "auto") -> dict:
    command = [sys.executable, __file__, "--child", kind, "--memory", memory, "--checkpoint", str(args.checkpoint),
               "--out", str(args.out), "--size", str(args.size), "--steps", str(args.steps),
               "--precision", args.precision, "--device", args.device]
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": path})
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = generation_parser()
    parser.set_defaults(size=1024, repeats=5)
    parser.add_argument("--preset", default="full", help="model size (sdxlkit.tiny presets; full = SDXL's)")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--child", choices=["memory", "warm"], default=None)
    parser.add_argument("--memory", default="auto")
    parser.add_argument("--repeats-e2e", type=int, default=None, help="end-to-end repeats (0: UNet, compile and "
                                                                         "memory numbers only); default --repeats")
    args = parser.parse_args()
    if args.child:
        return child(args)

    import torch

    out = Path(args.out or tempfile.mkdtemp(prefix="sdxlkit-gpu-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SDXLKIT_COMPILE_CACHE", str(out / "compile-cache"))
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (smoke test)"
    report(out, f"{card} | torch {torch.__version__} | {args.size}x{args.size}, "
                f"{args.steps} steps, CFG {CFG}, {args.precision}, {args.repeats} interleaved repeats")
    start = time.perf_counter()
    args.checkpoint = write_checkpoint(out / "models" / "checkpoints" / f"random-sdxl-{args.preset}.safetensors",
                                       args.preset, args.device)
    report(out, f"random {args.preset} checkpoint written in {time.perf_counter() - start:.1f} s")

    eager, compiled = Engine(args.checkpoint, out, args), Engine(args.checkpoint, out, args, compile=True)
    load = timed(Engine.load, eager) + timed(Engine.load, compiled)
    warm_eager = timed(eager.run, 0, PROMPTS[0])
    cold = timed(compiled.run, 0, PROMPTS[0])
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    timed(compiled.run, 5, PROMPTS[1], steps=args.steps + 5)  # another prompt, seed and step count
    report(out, f"two loads {load:.1f} s; compiled first run {cold:.1f} s (eager first run {warm_eager:.1f} s); "
                f"graphs compiled by a new "
                f"prompt, seed and step count: {torch._dynamo.utils.counters['stats']['unique_graphs'] - graphs}")

    paths = {"engine eager": eager.run, "engine compiled": compiled.run,
             "engine eager + DeepCache": partial(eager.run, accelerate=True),
             "engine compiled + DeepCache": partial(compiled.run, accelerate=True),
             "engine eager, new prompt": with_new_prompts(eager.run)}
    paths["bare diffusers"] = bare_pipeline(eager.components, out, args)
    try:
        comfy_run, comfy_forward = comfy_path(args.checkpoint, out, args)
        if comfy_run is not None:
            timed(comfy_run, 0, PROMPTS[0])
            paths["ComfyUI"] = comfy_run
    except Exception as exc:  # the engine's numbers still count without ComfyUI's
        comfy_forward = None
        report(out, f"ComfyUI path failed: {type(exc).__name__}: {exc}")
    for name, run in paths.items():  # warm-up
        timed(run, 0, PROMPTS[0])
    times: dict[str, list[float]] = {name: [] for name in paths}
    for repeat in range(args.repeats if args.repeats_e2e is None else args.repeats_e2e):
        for name, run in paths.items():  # a seed sweep: every path has encoded the prompt in its warm-up
            times[name].append(timed(run, 100 + repeat, PROMPTS[0]))
    reference = "ComfyUI" if "ComfyUI" in paths else "bare diffusers"
    base = statistics.median(times[reference] or [float("nan")])
    ratios = {}
    for name, values in (times.items() if base == base else ()):
        median = statistics.median(values)
        ratios[name] = median / base
        report(out, f"{name:28s} median {median:6.2f} s  (min {min(values):5.2f}, max {max(values):5.2f})  "
                    f"{median / base:5.2f}x {reference}")

    forwards = {"diffusers UNet (eager)": engine_unet_forward(eager.components.unet, args),
                "engine UNet (compiled)": engine_unet_forward(compiled.components.unet, args)}
    if comfy_forward is not None:
        forwards["ComfyUI UNet"] = comfy_forward()
    for name, forward in list(forwards.items())[:2]:
        try:
            forwards[f"{name}, CUDA graph"] = cuda_graphed(forward)
        except Exception as exc:  # a measurement for the next step, not a path the engine takes
            report(out, f"{name}: no CUDA graph ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    ms = {name: ms_per_forward(forward) for name, forward in forwards.items()}
    for name, value in ms.items():
        report(out, f"{name:40s} {value:6.1f} ms per forward (batch 2)")
    try:
        report(out, f"compiled UNet through the engine's CUDA graph part: max |replayed - direct| "
                    f"{graph_part_difference(compiled.components.unet, args):.3g}")
    except Exception as exc:
        report(out, f"CUDA graph part check failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    try:
        for name, difference in graph_image_difference(compiled.components, args).items():
            report(out, f"compiled mode, {name}: max |pixel with CUDA graphs - without| {difference:.3g}")
    except Exception as exc:
        report(out, f"CUDA graph image check failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    del eager, compiled, paths, forwards
    gc.collect()
    torch.cuda.empty_cache()
    warm = in_child(args, "warm")
    report(out, f"compiled first run in a second process (disk cache warm): {warm.get('seconds', float('nan')):.1f} s "
                f"after a {warm.get('load', float('nan')):.1f} s load {warm.get('error', '')}")
    peaks = {}
    for mode in ("auto", "lowvram"):
        result = in_child(args, "memory", mode)
        peaks[mode] = result.get("peak_gib", float("nan"))
        report(out, f"fresh process, memory={mode}: peak GPU memory {peaks[mode]:.2f} GiB, "
                    f"first run {result.get('seconds', float('nan')):.2f} s {result.get('error', '')}")
    nan = float("nan")
    against_comfy = reference == "ComfyUI"
    report_targets(out, [
        ("compiled UNet forward (CUDA graph), ms", ms.get("engine UNet (compiled), CUDA graph", nan), 40),
        ("engine compiled end to end, x ComfyUI", ratios.get("engine compiled", nan) if against_comfy else nan, 0.7),
        ("engine compiled + DeepCache end to end, x ComfyUI",
         ratios.get("engine compiled + DeepCache", nan) if against_comfy else nan, 0.4),
        ("peak GPU memory by default, GiB", peaks["auto"], 8),
        ("peak GPU memory in lowvram, GiB", peaks["lowvram"], 4)])


def report_targets(out: Path, rows: list[tuple[str, float, float]]) -> None:
    """The issue's targets (on an H100 at 1024x1024, 20 steps, bf16) beside what this run measured."""
    report(out, "targets:")
    for name, value, limit in rows:
        verdict = "not measured" if value != value else ("met" if value <= limit else "not met")
        report(out, f"  {name:52s} {value:7.2f}  target <= {limit:<5g} {verdict}")


if __name__ == "__main__":
    main()
