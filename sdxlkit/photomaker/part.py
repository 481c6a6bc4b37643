"""PhotoMaker's delayed identity as a UNet part: at denoising steps i <= start_merge_step the UNet sees the
text-only prompt, afterwards the identity prompt (embeddings and pooled embedding), as PhotoMaker's pipeline loop
does; the negative half of a guided batch is left alone.

i indexes the pass's full schedule, as the reference's loop over the scheduler's timesteps does, and
start_merge_step is computed on that schedule's num_inference_steps: an img2img or inpaint pass (the hires refine
and face passes too) starts part-way into its schedule, so its first step is not i = 0 and the identity comes in
where the schedule says, not after start_merge_step steps of the pass."""

from __future__ import annotations

from ..sampling.unet import UNetCall, UNetPart

MAX_START_STEP = 30  # the reference demo caps start_merge_step at 30


def start_merge_step(strength: int, steps: int) -> int:
    """The demo's style_strength_ratio -> start_merge_step: int(ratio / 100 * steps), at most 30."""
    return min(int(float(strength) / 100 * steps), MAX_START_STEP)


class IdentityPart(UNetPart):
    def __init__(self, embeds, start_step: int, guidance: bool):
        self.text_only, self.identity = embeds, embeds.identity  # an IdentityEmbeds (photomaker.prompt)
        self.start_step = start_step
        self.guidance = guidance

    def __call__(self, call: UNetCall, forward):
        embeds = self.identity if call.schedule_step > self.start_step else self.text_only
        rows = call.encoder_hidden_states.shape[0]
        first = rows // 2 if self.guidance else 0  # [uncond, cond] under classifier-free guidance
        states = call.encoder_hidden_states.clone()
        states[first:] = embeds.prompt_embeds.to(states.dtype)
        added = dict(call.added_cond_kwargs)
        added["text_embeds"] = added["text_embeds"].clone()
        added["text_embeds"][first:] = embeds.pooled_prompt_embeds.to(added["text_embeds"].dtype)
        call.encoder_hidden_states, call.added_cond_kwargs = states, added
        return forward(call)
