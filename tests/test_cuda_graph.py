"""Compiled mode's CUDA graphs, with a CPU stand-in that keeps a graph's contract. A capture records the aten ops
the forward runs; a replay runs that record again: every decision Python made during the capture is fixed, the
tensors that existed before it (the graph's inputs, weights, a part's buffers) are read and written where they are,
and the outputs are rewritten in place. An op that makes the host wait for the device fails the capture, as it does
on a GPU. The part must give the images of plain sampling, warm up and capture once per input structure, and never
hand out a tensor a later replay overwrites."""

import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

from sdxlkit.accelerator import accelerator_request
from sdxlkit.generate import ControlRequest, Generation, generate, unet_parts
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.sampling import cuda_graph
from sdxlkit.sampling.cuda_graph import CudaGraphPart
from sdxlkit.sampling.unet import UNetCall
from sdxlkit.sampling.window import step_window

HOST_WAITS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default}


class Record(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in HOST_WAITS:
            raise RuntimeError(f"{func} makes the host wait: operation not permitted when stream is capturing")
        out = func(*args, **(kwargs or {}))
        self.ops.append((func, args, kwargs or {}, out))
        return out

    def replay(self, captured):
        """`captured` as the recorded ops compute it now."""
        made = {}

        def now(x):
            return made.get(id(x), x) if torch.is_tensor(x) else x

        for func, args, kwargs, out in self.ops:
            fresh = func(*tree_map(now, args), **tree_map(now, kwargs))
            made.update((id(old), new) for old, new in zip(tree_leaves(out), tree_leaves(fresh)) if torch.is_tensor(old))
        return tree_map(now, captured)


class ReplayOnCpu:
    made: list = []

    def __init__(self):
        self.warm_ups = self.captures = self.replays = 0
        ReplayOnCpu.made.append(self)

    def warm_up(self, run):
        self.warm_ups += 1
        return run()

    def capture(self, run):
        self.captures += 1
        record = Record()
        with record:
            out = run()

        def replay():
            self.replays += 1
            for static, fresh in zip(tree_leaves(out), tree_leaves(record.replay(out))):
                static.copy_(fresh)

        return replay, out


class FailingCapture(ReplayOnCpu):
    def capture(self, run):
        raise RuntimeError("operation not permitted when stream is capturing")


@pytest.fixture(scope="module")
def components(tiny_checkpoint):
    return load_sdxl(ModelSpec(tiny_checkpoint))


@pytest.fixture
def graphed(components, monkeypatch):
    """The components as compiled mode on a GPU uses them, with the CPU stand-in recording."""
    ReplayOnCpu.made = []
    monkeypatch.setattr(cuda_graph, "CudaGraphRecorder", ReplayOnCpu)
    monkeypatch.setattr(components, "replays_graphs", lambda: True)
    return components


def gen(**overrides):
    base = dict(prompt="a harbor at dawn", negative_prompt=None, width=128, height=128, steps=5, cfg=5.0,
                scheduler="Default", seed=7)
    return Generation(**(base | overrides))


def images(components, g):
    return [image for image, _ in generate(components, g)]


@pytest.mark.parametrize("case", [{}, {"count": 2}, {"scheduler": "DPM++ 2M Karras"},
                                  {"accelerator": accelerator_request({"teaCache": True, "teaCacheDistance": 1.0}, 5)}])
def test_replayed_steps_give_the_images_of_plain_sampling(tiny_checkpoint, graphed, case):
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    expected = images(plain, gen(**case))
    got = images(graphed, gen(**case))
    assert all(torch.equal(a, b) for a, b in zip(expected, got))
    recorder = ReplayOnCpu.made[0]
    assert recorder.warm_ups == 1 and recorder.captures == 1 and recorder.replays >= 1


def test_one_pass_warms_up_and_captures_once_per_step_count(graphed):
    images(graphed, gen(steps=6))
    recorder, = ReplayOnCpu.made
    assert (recorder.warm_ups, recorder.captures, recorder.replays) == (1, 1, 5)


@pytest.mark.parametrize(("accelerator", "counts"), [
    (None, (2, 2, 4)),  # 3 steps with residuals, 3 without: a warm-up and 2 replays each
    # DeepCache interval 3: full 0 3 | 6, cached 1 2 | 4 5 7 (with residuals | without)
    ({"deepCache": True}, (4, 3, 4))])
def test_a_controlnet_window_gives_a_graph_per_input_structure_and_the_same_images(tiny_checkpoint, graphed,
                                                                                   adapter_models, accelerator, counts):
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    steps = 8 if accelerator else 6
    guide = Image.new("RGB", (128, 128), "white")
    control = ControlRequest(adapter_models.controlnets["file"], guide, 0.8, "balanced",
                             step_window(steps, end_percent=50))
    g = gen(steps=steps, controls=[control], accelerator=accelerator and accelerator_request(accelerator, steps))
    assert torch.equal(images(graphed, g)[0], images(plain, g)[0])
    recorder, = ReplayOnCpu.made
    assert (recorder.warm_ups, recorder.captures, recorder.replays) == counts


@pytest.mark.parametrize(("interval", "counts"), [(3, (2, 2, 6)), (2, (2, 2, 6))])
def test_deep_cache_replays_a_graph_per_step_kind_and_gives_the_images_of_plain_sampling(tiny_checkpoint, graphed,
                                                                                         interval, counts):
    deep = gen(steps=8, accelerator=accelerator_request({"deepCache": True, "deepCacheInterval": interval}, 8))
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    assert torch.equal(images(graphed, deep)[0], images(plain, deep)[0])
    recorder, = ReplayOnCpu.made
    assert (recorder.warm_ups, recorder.captures, recorder.replays) == counts  # a full and a cached step each


def test_image_prompts_keep_the_graph_and_the_images_of_plain_sampling(tiny_checkpoint, graphed, image_prompt_cases):
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    # PhotoMaker at strength 50 over 6 steps: the text-only prompt up to step 3, the identity after it
    for case in image_prompt_cases:
        ReplayOnCpu.made = []
        assert torch.equal(images(graphed, gen(steps=6, **case))[0], images(plain, gen(steps=6, **case))[0]), case
        recorder, = ReplayOnCpu.made
        assert (recorder.warm_ups, recorder.captures, recorder.replays) == (1, 1, 5)


def test_every_pass_ends_with_the_graph_part(graphed):
    for accelerator in (None, {"deepCache": True}, {"teaCache": True}):
        request = accelerator and accelerator_request(accelerator, 5)
        assert isinstance(unet_parts(graphed, gen(accelerator=request), None)[-1], CudaGraphPart)


def test_outputs_are_copies_a_later_replay_does_not_overwrite(graphed):
    part = CudaGraphPart()
    part.attach(None)
    weight = torch.randn(4, 4)

    def forward(call):
        return (call.sample @ weight + call.timestep,)

    outputs, inputs = [], [torch.randn(2, 4) for _ in range(4)]
    for step, sample in enumerate(inputs):
        outputs.append(part(UNetCall(sample, torch.tensor(float(step)), None, None, {}), forward)[0])
    assert all(torch.equal(out, sample @ weight + step) for step, (out, sample) in enumerate(zip(outputs, inputs)))
    assert ReplayOnCpu.made[0].replays == 3  # warm-up, capture and replay, replay, replay
    part.detach(None)
    assert not part.graphs


def test_a_failed_capture_leaves_the_pass_to_plain_sampling(tiny_checkpoint, graphed, monkeypatch, caplog):
    monkeypatch.setattr(cuda_graph, "CudaGraphRecorder", FailingCapture)
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    assert torch.equal(images(graphed, gen())[0], images(plain, gen())[0])
    assert "CUDA graph capture failed" in caplog.text


def test_a_step_with_an_unhashable_input_runs_as_usual(graphed):
    part = CudaGraphPart()
    part.attach(None)
    call = UNetCall(torch.ones(1), torch.tensor(1.0), None, None, {"cross_attention_kwargs": {"odd": [1, {2}]}})
    assert part(call, lambda c: "plain") == "plain" and not part.graphs and not part.seen
