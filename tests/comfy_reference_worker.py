"""Runs in ComfyUI's own interpreter (never imported by the pack's tests): computes sigmas, SDXL conditioning and
LoRA-patched weights with ComfyUI's functions for tests/test_comfy_reference.py.

Usage: python comfy_reference_worker.py COMFYUI_PATH REQUEST.json OUT_DIR. The request holds "sigmas" (scheduler
names and step counts), "conditioning" (HF-format state dicts of the two text encoders and the cases to encode)
"lora" (base parameters by kohya layer name, and a set of (file, strength)) and/or "ipndm" (sigmas and a start
latent, sampled over a fixed stand-in denoiser). Writes OUT_DIR/sigmas.json, OUT_DIR/conditioning.safetensors,
OUT_DIR/lora.safetensors and OUT_DIR/ipndm.safetensors.
"""

import json
import sys
from pathlib import Path


def comfy_imports(comfy_path: str):
    sys.path.insert(0, comfy_path)
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.conds
    import comfy.k_diffusion.sampling
    import comfy.lora
    import comfy.model_sampling
    import comfy.samplers
    import comfy.sdxl_clip

    return comfy


def sigmas(comfy, request: dict) -> dict:
    sampling = comfy.model_sampling.ModelSamplingDiscrete()  # defaults = SDXL: "linear" 0.00085 .. 0.012, 1000 steps
    return {name: {str(steps): comfy.samplers.calculate_sigmas(sampling, name, steps).tolist()
                   for steps in request["steps"]} for name in request["schedulers"]}


def conditioning(comfy, request: dict) -> dict:
    import torch
    from safetensors.torch import load_file

    model = comfy.sdxl_clip.SDXLClipModel(device="cpu", dtype=torch.float32)
    for path in request["weights"]:
        missing, unexpected = model.load_sd(load_file(path))
        missing = [k for k in missing if k != "text_projection.weight"]  # CLIP-L has none
        assert not missing and not unexpected, (path, missing, unexpected)
    tokenizer = comfy.sdxl_clip.SDXLTokenizer()
    out = {}

    def encode(text: str, clip_skip: int):
        # what comfy.sd.CLIP.encode_from_tokens does after CLIPSetLastLayer(-(clip_skip + 2)); 0 keeps the default
        model.reset_clip_options()
        if clip_skip:
            model.set_clip_options({"layer": -(clip_skip + 2)})
        with torch.no_grad():
            return model.encode_token_weights(tokenizer.tokenize_with_weights(text))

    for case in request["cases"]:
        cond, pooled = encode(case["prompt"], case["clip_skip"])
        out[f"{case['name']}.pooled"] = pooled
        if case.get("negative") is None:
            out[f"{case['name']}.cond"] = cond
            continue
        neg, neg_pooled = encode(case["negative"], case["clip_skip"])
        both = comfy.conds.CONDCrossAttn(cond).concat([comfy.conds.CONDCrossAttn(neg)])  # ComfyUI's batching
        out[f"{case['name']}.cond"], out[f"{case['name']}.negative"] = both[:1], both[1:]
        out[f"{case['name']}.negative_pooled"] = neg_pooled
    return {k: v.contiguous() for k, v in out.items()}


def lora(comfy, request: dict) -> dict:
    """Each base parameter ("<layer>.weight" / "<layer>.bias") patched by the set's files in order, as ComfyUI's
    ModelPatcher does: float32 copy, then comfy.lora.calculate_weight over the patches of every file."""
    import torch
    from safetensors.torch import load_file

    base = load_file(request["base"])
    patches: dict[str, list] = {}
    for path, strength in request["set"]:
        tensors = load_file(path)
        layers = {key.split(".", 1)[0] for key in tensors}
        for key, patch in comfy.lora.load_lora(tensors, {layer: f"{layer}.weight" for layer in layers}).items():
            patches.setdefault(key, []).append((strength, patch, 1.0, None, None))
    return {key: comfy.lora.calculate_weight(found, base[key].to(torch.float32, copy=True), key).contiguous()
            for key, found in patches.items()}


def ipndm(comfy, request: dict) -> dict:
    """comfy's sample_ipndm over the denoiser tests/test_comfy_reference.py gives the engine's IPNDM."""
    import torch
    from safetensors.torch import load_file

    def denoise(x, sigma):
        return torch.tanh(x) * 0.8 / (1 + 0.05 * sigma.view(-1, 1, 1, 1))

    x = load_file(request["start"])["x"]
    sigmas = torch.tensor(request["sigmas"], dtype=torch.float32)
    return {"x": comfy.k_diffusion.sampling.sample_ipndm(denoise, x, sigmas, disable=True).contiguous()}


def main() -> None:
    comfy_path, request_path, out_dir = sys.argv[1:4]
    request = json.loads(Path(request_path).read_text())
    comfy = comfy_imports(comfy_path)
    out = Path(out_dir)
    if "sigmas" in request:
        (out / "sigmas.json").write_text(json.dumps(sigmas(comfy, request["sigmas"])))
    if "conditioning" in request:
        from safetensors.torch import save_file

        save_file(conditioning(comfy, request["conditioning"]), str(out / "conditioning.safetensors"))
    if "lora" in request:
        from safetensors.torch import save_file

        save_file(lora(comfy, request["lora"]), str(out / "lora.safetensors"))
    if "ipndm" in request:
        from safetensors.torch import save_file

        save_file(ipndm(comfy, request["ipndm"]), str(out / "ipndm.safetensors"))


if __name__ == "__main__":
    main()
