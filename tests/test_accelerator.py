"""The accelerator cache: which steps run full and which cached (by step index), DeepCache and the first-block cache
against their definitions, the cache off = bit-identical, and output close to uncached on the tiny model."""

from types import SimpleNamespace

import pytest
import torch

from sdxlkit.accelerator import CacheSchedule, DeepCachePart, FirstBlockCachePart, accelerator_request
from sdxlkit.generate import Generation, generate
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.sampling import assembled_unet
from sdxlkit.sampling.window import step_window


@pytest.fixture(scope="module")
def components(tiny_checkpoint):
    return load_sdxl(ModelSpec(tiny_checkpoint))


def unet_inputs(unet, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    text = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
    return dict(sample=torch.randn(2, 4, size, size, generator=g),
                encoder_hidden_states=torch.randn(2, 77, unet.config.cross_attention_dim, generator=g),
                added_cond_kwargs={"text_embeds": torch.randn(2, text, generator=g),
                                   "time_ids": torch.tensor([[size * 8.0, size * 8, 0, 0, size * 8, size * 8]] * 2)})


def run_pass(unet, part, total, inputs, sample_at=lambda i, x: x):
    scheduler = SimpleNamespace(timesteps=list(range(total)), begin_index=None)
    with torch.inference_mode(), assembled_unet(unet, [part], scheduler) as pass_unet:
        return [pass_unet(sample_at(i, inputs["sample"]), torch.tensor(950 - 40 * i), inputs["encoder_hidden_states"],
                          added_cond_kwargs=inputs["added_cond_kwargs"], return_dict=False)[0] for i in range(total)]


def schedule(steps, max_consecutive=5, **window):
    return CacheSchedule(step_window(steps, **window), max_consecutive)


# Full steps by hand: DeepCache refreshes every `interval` steps (the helper's uniform mode: i % interval == 0 from
# the first step); only steps inside the window are cached, the first of them reusing the full step before it; a run
# of cached steps never exceeds cacheMaxConsecutiveSteps, and a forced refresh starts the interval again.
@pytest.mark.parametrize("total,interval,window,max_consecutive,full", [
    (10, 3, {}, 5, [0, 3, 6, 9]),
    (10, 2, {}, 5, [0, 2, 4, 6, 8]),
    (12, 5, {}, 3, [0, 4, 8]),
    (10, 3, {"start_step": 2, "end_step": 8}, 5, [0, 1, 4, 7, 8, 9]),
    (20, 3, {"start_percent": 25, "end_percent": 75}, 5, [0, 1, 2, 3, 4, 7, 10, 13, 15, 16, 17, 18, 19]),
    (10, 1, {}, 5, list(range(10))),
    (10, 4, {"end_step": 5}, 1, [0, 2, 4, 5, 6, 7, 8, 9]),
])
def test_deep_cache_full_and_cached_steps_by_index(tiny_components, total, interval, window, max_consecutive, full):
    unet = tiny_components["unet"]
    part = DeepCachePart(interval, 0, schedule(total, max_consecutive, **window))
    run_pass(unet, part, total, unet_inputs(unet))
    assert part.full_steps == full
    assert part.cached_steps == sorted(set(range(total)) - set(full))


def test_deep_cache_counts_modules_that_ran(tiny_components):
    """A recording UNet: on cached steps the middle block's layers never run and conv_in / conv_out always do (hooks
    on a skipped module itself would fire for the cached answer too)."""
    unet = tiny_components["unet"]
    modules = {"mid": unet.mid_block.resnets[0], "conv_in": unet.conv_in, "conv_out": unet.conv_out}
    runs = {name: [] for name in modules}
    step = [0]
    hooks = [module.register_forward_hook(lambda m, a, o, name=name: runs[name].append(step[0]))
             for name, module in modules.items()]
    part = DeepCachePart(3, 0, schedule(7))
    try:
        run_pass(unet, part, 7, unet_inputs(unet), sample_at=lambda i, x: (step.__setitem__(0, i), x)[1])
    finally:
        for hook in hooks:
            hook.remove()
    assert runs["mid"] == [0, 3, 6] and runs["conv_in"] == runs["conv_out"] == list(range(7))


@pytest.mark.parametrize("branch", [0, 1, 2])
def test_deep_cache_step_is_the_unet_with_deep_features_of_the_last_full_step(tiny_components, branch):
    """DeepCache's definition for a branch in the first block: a cached step computes the shallow path on today's
    input; the last up layer deeper than the branch hands over the output it had at the last full step."""
    unet = tiny_components["unet"]
    inputs = unet_inputs(unet)
    last_up, layer = unet.up_blocks[-1], branch % 3
    # up layers are numbered from the output side; past the last block's layers the handover is the block before it
    handover = last_up.resnets[len(last_up.resnets) - 2 - layer] if layer < len(last_up.resnets) - 1 else unet.up_blocks[-2]
    kept = {}
    hook = handover.register_forward_hook(lambda m, a, o: kept.__setitem__("out", o))

    def moved(i, x):
        return x + 0.05 * i

    part = DeepCachePart(3, branch, schedule(3))
    try:
        with torch.inference_mode():
            unet(moved(0, inputs["sample"]), torch.tensor(950), inputs["encoder_hidden_states"],
                 added_cond_kwargs=inputs["added_cond_kwargs"])
    finally:
        hook.remove()
    outs = run_pass(unet, part, 3, inputs, sample_at=moved)
    assert part.cached_steps == [1, 2]
    replace = handover.register_forward_hook(lambda m, a, o: kept["out"])
    try:
        with torch.inference_mode():
            expected = unet(moved(2, inputs["sample"]), torch.tensor(950 - 80), inputs["encoder_hidden_states"],
                            added_cond_kwargs=inputs["added_cond_kwargs"], return_dict=False)[0]
    finally:
        replace.remove()
    assert torch.allclose(outs[2], expected, atol=1e-5)
    assert "forward" not in handover.__dict__ and "forward" not in unet.mid_block.__dict__  # detached


def test_first_block_cache_serves_a_step_from_the_residual_of_the_last_full_step(tiny_components):
    """ParaAttention / WaveSpeed: served when mean|r - r_ref| / mean|r_ref| < threshold (r = first block's residual),
    with output = out(h1 + (h_final - h1) of the reference step)."""
    unet = tiny_components["unet"]
    inputs = unet_inputs(unet)
    seen = {}
    hooks = [unet.conv_in.register_forward_hook(lambda m, a, o: seen.__setitem__("h0", o)),
             unet.down_blocks[0].resnets[0].register_forward_hook(lambda m, a, o: seen.__setitem__("h1", o)),
             unet.conv_norm_out.register_forward_pre_hook(lambda m, a: seen.__setitem__("final", a[0]))]

    def full(i, x):
        with torch.inference_mode():
            out = unet(x, torch.tensor(950 - 40 * i), inputs["encoder_hidden_states"],
                       added_cond_kwargs=inputs["added_cond_kwargs"], return_dict=False)[0]
        return out, seen["h1"] - seen["h0"], seen["h1"], seen["final"]

    def moved(i, x):
        return x + [0, 0.01, 3.0][i] * torch.ones_like(x)

    try:
        out0, r0, h1_0, final0 = full(0, moved(0, inputs["sample"]))
        _, r1, h1_1, _ = full(1, moved(1, inputs["sample"]))
        _, r2, _, _ = full(2, moved(2, inputs["sample"]))
    finally:
        for hook in hooks:
            hook.remove()
    change = [((r0 - r).abs().mean() / r0.abs().mean()).item() for r in (r1, r2)]
    threshold = (change[0] + change[1]) / 2
    assert change[0] < threshold < change[1]
    part = FirstBlockCachePart(threshold, schedule(3))
    outs = run_pass(unet, part, 3, inputs, sample_at=moved)
    assert part.full_steps == [0, 2] and part.cached_steps == [1]
    assert part.changes == pytest.approx(change, rel=1e-4)
    assert torch.equal(outs[0], out0)
    expected = unet.conv_out(unet.conv_act(unet.conv_norm_out(h1_1 + (final0 - h1_0))))
    assert torch.allclose(outs[1], expected, atol=1e-5)


def test_first_block_cache_honours_the_window_and_the_run_limit(tiny_components):
    unet = tiny_components["unet"]
    part = FirstBlockCachePart(10.0, schedule(10, max_consecutive=2, start_step=3, end_step=9))  # every step similar
    run_pass(unet, part, 10, unet_inputs(unet))
    assert part.full_steps == [0, 1, 2, 5, 8, 9] and part.cached_steps == [3, 4, 6, 7]


def test_requests_from_task_options():
    assert accelerator_request(None, 20) is None and accelerator_request({"cacheStartStep": 3}, 20) is None
    request = accelerator_request({"deepCache": True, "cacheEndStepPercentage": 50}, 20)
    assert (request.interval, request.branch, request.schedule.max_consecutive) == (3, 0, 3)  # schema defaults
    assert request.schedule.window == step_window(20, end_percent=50)
    (part,) = request.parts()
    assert isinstance(part, DeepCachePart)
    first, deep = accelerator_request({"teaCache": True, "deepCache": True, "teaCacheDistance": 0.25}, 20).parts()
    assert isinstance(first, FirstBlockCachePart) and first.threshold == pytest.approx(0.06)
    assert accelerator_request({"deepCache": True, "deepCacheInterval": 1}, 20).parts() == []
    assert request.parts()[0] is not part  # fresh state for every pass


def gen(**overrides):
    base = dict(prompt="a harbor at dawn", negative_prompt=None, width=128, height=128, steps=20, cfg=5.0,
                scheduler="Default", seed=7)
    return Generation(**(base | overrides))


def options(**fields):
    return accelerator_request(fields, 20)


def test_cache_off_is_bit_identical_to_no_accelerator(components):
    (plain, _), = generate(components, gen(steps=6))
    for off in (options(deepCache=True, deepCacheInterval=1), options(teaCache=True, teaCacheDistance=0.0)):
        (same, _), = generate(components, gen(steps=6, accelerator=off))
        assert torch.equal(same, plain)


@pytest.mark.parametrize("fields,bound", [
    ({"deepCache": True}, 0.05), ({"deepCache": True, "deepCacheBranchId": 3}, 0.05),
    ({"teaCache": True, "teaCacheDistance": 1.0}, 0.05),
])
def test_cached_output_is_finite_and_close_to_uncached(components, fields, bound, capsys):
    (plain, _), = generate(components, gen())
    (cached, _), = generate(components, gen(accelerator=options(**fields)))
    difference = (cached - plain).abs()
    with capsys.disabled():
        print(f"\n{fields}: |cached - uncached| max {difference.max():.4f} mean {difference.mean():.4f}")  # noqa: T201 (the issue asks for the difference to be reported)
    assert torch.isfinite(cached).all() and difference.mean() < bound
    assert not torch.equal(cached, plain)  # the cache did act


def test_each_image_and_pass_starts_with_an_empty_cache(components):
    """numberResults: image 2 with the cache equals image 2 run alone with the cache (no features carried over)."""
    accel = options(deepCache=True)
    images = generate(components, gen(steps=6, count=2, accelerator=accel))
    (alone, _), = generate(components, gen(steps=6, seed=8, accelerator=accel))
    assert torch.equal(images[1][0], alone)
    unet = components.unet
    assert not any("forward" in m.__dict__ for m in unet.modules())  # every wrapper removed


def test_deep_cache_with_controlnet_keeps_the_shallow_residual(components, adapter_models):
    from PIL import Image

    from sdxlkit.generate import ControlRequest

    guide = Image.new("RGB", (128, 128), "white")
    results = []
    for weight in (0.0, 1.0):
        control = ControlRequest(adapter_models.controlnets["file"], guide, weight, "balanced", step_window(4))
        (image, _), = generate(components, gen(steps=4, controls=[control],
                                               accelerator=options(deepCache=True, deepCacheInterval=4)))
        results.append(image)
    assert torch.isfinite(results[1]).all() and not torch.equal(results[0], results[1])
