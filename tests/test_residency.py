"""Where the model's parts live: lowvram keeps each part on the GPU only while it runs; auto moves the idle parts off
a GPU short of a pass's working memory (the GPU's free memory is faked: no GPU is needed)."""

from types import SimpleNamespace

import pytest

from sdxlkit.loading import residency


class Part:
    """A model part that records where it is moved."""

    def __init__(self, device: str):
        self.device, self.moves = device, []

    def parameters(self):
        return iter([SimpleNamespace(device=self.device)])

    def to(self, device):
        self.device = str(device)
        self.moves.append(self.device)
        return self


def components(memory: str, where: str):
    return SimpleNamespace(device="cuda:0", memory=memory, unet=Part(where), vae=Part(where),
                           text_encoder=Part(where), text_encoder_2=Part(where))


def test_lowvram_has_a_part_on_the_gpu_only_while_it_runs():
    c = components("lowvram", "cpu")
    with residency.using(c, "text_encoder", "text_encoder_2"):
        assert (c.text_encoder.device, c.text_encoder_2.device, c.unet.device) == ("cuda:0", "cuda:0", "cpu")
    assert c.text_encoder.moves == ["cuda:0", "cpu"] and c.unet.moves == []


def test_auto_brings_a_part_back_and_leaves_it_there():
    c = components("auto", "cpu")
    with residency.using(c, "vae"):
        pass
    with residency.using(c, "vae"):
        pass
    assert c.vae.moves == ["cuda:0"]


@pytest.mark.parametrize("free,moved", [(10 * 2**30, False), (2**30, True)])
def test_auto_moves_the_idle_parts_off_a_gpu_short_of_a_pass(monkeypatch, free, moved):
    c = components("auto", "cuda:0")
    monkeypatch.setattr("torch.cuda.mem_get_info", lambda device: (free, 80 * 2**30))
    monkeypatch.setattr("torch.cuda.empty_cache", lambda: None)
    residency.make_room(c, residency.working_bytes(1024, 1024, 2) * 2)  # 3 GiB
    idle = (c.text_encoder.device, c.text_encoder_2.device, c.vae.device)
    assert idle == (("cpu",) * 3 if moved else ("cuda:0",) * 3) and c.unet.moves == []
