"""Where the model's parts live. No GPU is needed: the CPU stands in for it (an onloaded part holds a copy of its
weights, a parked one its CPU home), the GPU's free memory is faked, and a UNet streamed onto the CPU runs the real
hooks."""

import gc
import weakref

import pytest
import torch
from PIL import Image

from sdxlkit.accelerator import accelerator_request
from sdxlkit.controlnet import CONTROLNETS
from sdxlkit.generate import ControlRequest, Generation, generate
from sdxlkit.loading import residency
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.loading.parking import ParkedPart
from sdxlkit.loading.streaming import is_streamed, settle
from sdxlkit.sampling.window import step_window


def parts():
    torch.manual_seed(0)
    return {name: torch.nn.Linear(4, 4) for name in ("unet", "vae", "text_encoder", "text_encoder_2")}


class Held:
    def __init__(self, modules, r):
        self.residency = r
        for name, module in modules.items():
            setattr(self, name, module)


def managed(memory: str) -> Held:
    """The mode's arrangement with the CPU standing in for the GPU: an onloaded part holds a copy of its weights,
    a parked one its home copy."""
    modules = parts()
    return Held(modules, residency.managed_residency(modules, "cpu", memory))


def is_in(held: Held, name: str) -> bool:
    part = held.residency.parts[name]
    weight = getattr(held, name).weight
    return part.device is not None and weight.data_ptr() != part.home[weight].data_ptr()


def test_a_parked_part_comes_in_whole_and_leaves_without_a_copy():
    layer = torch.nn.Linear(4, 4)
    part = ParkedPart(layer)
    home = layer.weight.data_ptr()
    part.onload("cpu")
    assert layer.weight.data_ptr() != home and torch.equal(layer.weight, part.home[layer.weight]) and part.device == "cpu"
    part.park()
    assert layer.weight.data_ptr() == home and part.device is None


def test_parking_copies_nothing_back(monkeypatch):
    layer = torch.nn.Linear(4, 4)
    part = ParkedPart(layer)
    part.onload("cpu")
    copies = []
    original = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: copies.append(self) or original(self, *a, **k))
    part.park()
    assert copies == []


def test_weights_changed_while_parked_come_along_and_new_tensors_get_a_home():
    layer = torch.nn.Linear(4, 4)
    part = ParkedPart(layer)
    with torch.no_grad():
        layer.weight.add_(1.0)  # a LoRA merged in place while parked
    merged = layer.weight.detach().clone()
    layer.register_parameter("extra", torch.nn.Parameter(torch.ones(2)))  # an adapter loaded while parked
    part.onload("cpu")
    assert torch.equal(layer.weight, merged) and layer.extra.data_ptr() != part.home[layer.extra].data_ptr()
    part.park()
    assert layer.extra.data_ptr() == part.home[layer.extra].data_ptr() and torch.equal(layer.extra, torch.ones(2))


def test_auto_keeps_unet_and_vae_in_and_brings_the_text_encoders_only_to_encode():
    held = managed("auto")
    assert not is_streamed(held.unet) and "unet" not in held.residency.parts
    assert (is_in(held, "vae"), is_in(held, "text_encoder"), is_in(held, "text_encoder_2")) == (True, False, False)
    with residency.using(held, "text_encoder", "text_encoder_2"):
        assert is_in(held, "text_encoder") and is_in(held, "text_encoder_2")
    assert (is_in(held, "vae"), is_in(held, "text_encoder"), is_in(held, "text_encoder_2")) == (True, False, False)


def test_lowvram_streams_the_unet_and_has_another_part_in_only_while_it_runs():
    held = managed("lowvram")
    assert is_streamed(held.unet) and "unet" not in held.residency.parts
    assert not any(is_in(held, n) for n in residency.PARKABLE)
    with residency.using(held, "vae"):
        assert (is_in(held, "vae"), is_in(held, "text_encoder")) == (True, False)
    assert not is_in(held, "vae")


def test_lowvram_brings_an_encoder_in_while_it_encodes_and_forgets_it_with_its_cache():
    held = managed("lowvram")
    encoder = torch.nn.Linear(4, 4)
    with residency.bringing(held, encoder):
        part = held.residency.extras[encoder]
        assert part.device == "cpu" and encoder.weight.data_ptr() != part.home[encoder.weight].data_ptr()
    assert part.device is None and encoder.weight.data_ptr() == part.home[encoder.weight].data_ptr()
    gone = weakref.ref(encoder)
    del encoder, part
    gc.collect()
    assert gone() is None and not held.residency.extras


def test_settling_sends_back_a_layer_fetched_ahead_that_did_not_run():
    """Meta stands in for the CPU home and the CPU for the GPU: a layer left "on the GPU" goes home."""
    from diffusers.hooks import apply_group_offloading

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    apply_group_offloading(model, onload_device="cpu", offload_device="meta", offload_type="leaf_level")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    model[1].to_empty(device="cpu")  # fetched ahead for a step a cache then skipped
    settle(model)
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_lowvram_settles_the_unet_after_each_use(monkeypatch):
    held, settled = managed("lowvram"), []
    monkeypatch.setattr(residency, "settle", settled.append)
    with residency.using(held, "unet"):
        assert settled == []
    with residency.using(held, "vae"):
        pass
    assert settled == [held.unet]


def test_on_the_cpu_nothing_moves():
    modules = parts()
    held = Held(modules, residency.place_parts(modules, "cpu", "lowvram"))
    assert not held.residency.parts and not is_streamed(held.unet)
    weight = held.vae.weight.data_ptr()
    with residency.using(held, "vae"):
        assert held.vae.weight.data_ptr() == weight


@pytest.mark.parametrize("free,parked", [(10 * 2**30, False), (2**30, True)])
def test_auto_parks_the_vae_on_a_gpu_short_of_a_pass(monkeypatch, free, parked):
    held = managed("auto")
    held.residency.device = "cuda:0"  # the room is measured on the (faked) GPU
    monkeypatch.setattr("torch.cuda.mem_get_info", lambda device: (free, 80 * 2**30))
    monkeypatch.setattr("torch.cuda.empty_cache", lambda: None)
    residency.make_room(held, residency.working_bytes(1024, 1024, 2) * 2)  # 3 GiB
    assert is_in(held, "vae") != parked


def test_compile_and_lowvram_are_refused_together(tiny_checkpoint):
    with pytest.raises(ValueError, match="compile and lowvram cannot be combined"):
        ModelSpec(tiny_checkpoint, memory="lowvram", compile=True)
    with pytest.raises(ValueError, match="memory mode 'tiny'; allowed: auto, lowvram"):
        ModelSpec(tiny_checkpoint, memory="tiny")


def gen(**overrides):
    base = dict(prompt="a harbor at dawn", negative_prompt=None, width=128, height=128, steps=5, cfg=5.0,
                scheduler="Default", seed=7)
    return Generation(**(base | overrides))


@pytest.fixture(scope="module")
def streamed(tiny_checkpoint):
    """lowvram's arrangement with the CPU as the compute device: the UNet behind the real streaming hooks, the
    other parts parked."""
    components = load_sdxl(ModelSpec(tiny_checkpoint))
    modules = {name: getattr(components, name) for name in ("unet", *residency.PARKABLE)}
    components.residency = residency.managed_residency(modules, "cpu", "lowvram")
    return components


def test_a_streamed_unet_gives_the_same_images_with_every_part(tiny_checkpoint, streamed, adapter_models):
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    guide = Image.new("RGB", (128, 128), "white")
    control = ControlRequest(adapter_models.controlnets["file"], guide, 0.8, "balanced", step_window(5))
    style, detail = adapter_models.loras["style_kohya"], adapter_models.loras["detail_kohya"]
    cases = [
        {}, {"loras": [(style, 0.8)]}, {"loras": [(detail, -0.5)]}, {"controls": [control]},
        {"accelerator": accelerator_request({"deepCache": True, "deepCacheInterval": 2}, 5)},
        {"accelerator": accelerator_request({"teaCache": True, "teaCacheDistance": 1.0}, 5)},
        {"count": 2},
    ]
    for case in cases:
        expected = generate(plain, gen(**case))
        got = generate(streamed, gen(**case))
        assert all(torch.equal(a, b) for (a, _), (b, _) in zip(expected, got)), case
    assert is_streamed(streamed.unet)  # loading LoRAs took the hooks off and put them back
    assert all(part.device is None for part in streamed.residency.parts.values())
    made = CONTROLNETS.made
    used = CONTROLNETS.get(control.path, streamed)
    assert is_streamed(used) and CONTROLNETS.made == made  # the run made it so, not this line



def test_the_refiner_takes_the_base_models_memory_mode(refiner_models):
    from sdxlkit.refiner import RefinerRequest
    from sdxlkit.refiner.handoff import load_refiner

    base = load_sdxl(ModelSpec(refiner_models.checkpoint, memory="lowvram"))
    assert load_refiner(base, RefinerRequest(refiner_models.single, 3)).residency.memory == "lowvram"


def test_lowvram_brings_the_image_encoders_in_only_to_encode(tiny_checkpoint, streamed, image_prompt_cases):
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    for case in image_prompt_cases:
        (expected, _), = generate(plain, gen(**case))
        (got, _), = generate(streamed, gen(**case))
        assert torch.equal(expected, got), case
    extras = list(streamed.residency.extras.values())
    assert len(extras) == 2 and all(part.device is None for part in extras)  # CLIP vision, ID encoder: parked
