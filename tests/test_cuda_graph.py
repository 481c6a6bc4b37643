"""Compiled mode's CUDA graphs, with a CPU stand-in that keeps a graph's contract: a capture fixes the input and
output tensors, a replay recomputes the outputs in place from the inputs' current values. The part must give the
images of plain sampling, warm up and capture once per input structure, and never hand out a tensor a later replay
overwrites."""

import pytest
import torch
from PIL import Image
from torch.utils._pytree import tree_leaves

from sdxlkit.accelerator import accelerator_request
from sdxlkit.generate import ControlRequest, Generation, generate, unet_parts
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.sampling import cuda_graph
from sdxlkit.sampling.cuda_graph import CudaGraphPart
from sdxlkit.sampling.unet import UNetCall
from sdxlkit.sampling.window import step_window


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
        out = run()

        def replay():
            self.replays += 1
            for static, fresh in zip(tree_leaves(out), tree_leaves(run())):
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


def test_a_controlnet_window_gives_two_graphs_and_the_same_images(tiny_checkpoint, graphed, adapter_models):
    plain = load_sdxl(ModelSpec(tiny_checkpoint))
    guide = Image.new("RGB", (128, 128), "white")
    window = step_window(6, end_percent=50)
    control = ControlRequest(adapter_models.controlnets["file"], guide, 0.8, "balanced", window)
    expected = images(plain, gen(steps=6, controls=[control]))
    assert torch.equal(images(graphed, gen(steps=6, controls=[control]))[0], expected[0])
    recorder, = ReplayOnCpu.made
    assert (recorder.warm_ups, recorder.captures, recorder.replays) == (2, 2, 4)  # 3 steps with residuals, 3 without: warm-up, 2 replays each


def test_deep_cache_rules_graphs_out(graphed):
    deep = gen(accelerator=accelerator_request({"deepCache": True}, 5))
    assert not any(isinstance(p, CudaGraphPart) for p in unet_parts(graphed, deep, None))
    assert isinstance(unet_parts(graphed, gen(), None)[-1], CudaGraphPart)


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
