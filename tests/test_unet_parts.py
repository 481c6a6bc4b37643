"""The pass UNet: parts run outermost first with the step index of the pass (and of the full schedule), and are
always detached."""

from types import SimpleNamespace

import pytest
import torch

from sdxlkit.sampling import UNetPart, assembled_unet


class EchoUNet(torch.nn.Module):
    config = SimpleNamespace(in_channels=4)

    def forward(self, sample, timestep, encoder_hidden_states, added_cond_kwargs=None, **kwargs):
        return sample + encoder_hidden_states.sum(), kwargs


class Tagging(UNetPart):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def attach(self, unet):
        self.log.append(("attach", self.name))

    def detach(self, unet):
        self.log.append(("detach", self.name))

    def __call__(self, call, forward):
        self.log.append((self.name, call.step, call.total))
        call.encoder_hidden_states = call.encoder_hidden_states * 2 if self.name == "outer" else call.encoder_hidden_states + 1
        return forward(call)


def test_parts_run_outermost_first_with_step_indices_and_detach_in_reverse():
    log = []
    scheduler = SimpleNamespace(timesteps=list(range(5)), begin_index=2)  # an img2img pass: 3 of 5 steps run
    with assembled_unet(EchoUNet(), [Tagging("outer", log), Tagging("inner", log)], scheduler) as unet:
        assert unet.config.in_channels == 4  # the real UNet's attributes show through
        outs = [unet(torch.zeros(1), torch.tensor(1), torch.ones(1), added_cond_kwargs=None)[0] for _ in range(3)]
    # outer doubles, inner adds one: (1 * 2) + 1 = 3, not (1 + 1) * 2 = 4
    assert [o.item() for o in outs] == [3.0, 3.0, 3.0]
    calls = [entry for entry in log if entry[0] in ("outer", "inner")]
    assert calls == [(n, i, 3) for i in range(3) for n in ("outer", "inner")]
    assert log[:2] == [("attach", "outer"), ("attach", "inner")]
    assert log[-2:] == [("detach", "inner"), ("detach", "outer")]


class Positions(UNetPart):
    def __init__(self):
        self.seen = []

    def __call__(self, call, forward):
        self.seen.append((call.step, call.total, call.schedule_step))
        return forward(call)


@pytest.mark.parametrize("scheduler", [
    SimpleNamespace(timesteps=torch.tensor([900, 700, 500, 300, 100]), begin_index=2),  # set by diffusers' img2img
    SimpleNamespace(timesteps=torch.tensor([900, 700, 500, 300, 100])),  # DDIM keeps none: found by the timestep
])
def test_a_pass_that_starts_part_way_knows_where_in_the_schedule_it_is(scheduler):
    part = Positions()
    with assembled_unet(EchoUNet(), [part], scheduler) as unet:
        for t in (500, 300, 100):
            unet(torch.zeros(1), torch.tensor(t), torch.ones(1), added_cond_kwargs=None)
    assert part.seen == [(0, 3, 2), (1, 3, 3), (2, 3, 4)]


def test_parts_are_detached_after_an_interrupt():
    log = []
    with pytest.raises(KeyboardInterrupt):
        with assembled_unet(EchoUNet(), [Tagging("only", log)], SimpleNamespace(timesteps=[1], begin_index=None)):
            raise KeyboardInterrupt
    assert log == [("attach", "only"), ("detach", "only")]


def test_no_parts_is_the_real_unet():
    unet = EchoUNet()
    with assembled_unet(unet, [], None) as used:
        assert used is unet
