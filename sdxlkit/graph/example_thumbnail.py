"""The card an example shows in ComfyUI's template browser: what the task does (title, its input images, the
prompt and settings), drawn from the task itself. The examples' models cannot be shipped, so no output is shown."""

from __future__ import annotations

import io
import textwrap

from PIL import Image, ImageDraw, ImageFont

from ..images import load_image, to_mask, to_rgb

SIZE = 512
BACKGROUND, TEXT, MUTED = (30, 31, 36), (236, 236, 240), (160, 162, 170)


def _font(size: int):
    return ImageFont.load_default(size)


def _images(task: dict) -> list[tuple[str, Image.Image]]:
    inputs = task.get("inputs", {})
    found = [(label, to_mask(load_image(inputs[key], key)) if key == "maskImage" else to_rgb(load_image(inputs[key], key)))
             for key, label in (("seedImage", "seed image"), ("maskImage", "mask")) if key in inputs]
    found += [(f"guide ({entry.get('controlMode', 'balanced')})", to_rgb(load_image(entry["guideImage"], "guideImage")))
              for entry in task.get("controlNet", [])]
    found += [(f"IP-Adapter ({entry.get('weightType', 'normal')})", to_rgb(load_image(ref, "guideImages")))
              for entry in task.get("ipAdapters", []) for ref in entry["guideImages"]]
    return found


def _settings(task: dict) -> list[str]:
    lines = [f"{task['width']}x{task['height']}, {task.get('steps', 30)} steps, {task.get('scheduler', 'Default')}, "
             f"CFG {task.get('CFGScale', 7)}"]
    if "strength" in task:
        lines.append(f"strength {task['strength']}" + (f", only masked +{task['maskMargin']} px" if "maskMargin" in task else ""))
    if "outpaint" in task:
        lines.append("outpaint " + ", ".join(f"{k} {v}" for k, v in task["outpaint"].items()))
    lines += [f"LoRA {entry['model']} x{entry.get('weight', 1)}" for entry in task.get("lora", [])]
    if "hiresFix" in task:
        fix = task["hiresFix"] if isinstance(task["hiresFix"], dict) else {}
        lines.append("hires fix " + ", ".join(f"{k} {v}" for k, v in fix.items()) if fix else "hires fix (defaults)")
    if "ultralytics" in task:
        lines.append("face detailer " + ", ".join(f"{k} {v}" for k, v in task["ultralytics"].items() if "Prompt" not in k))
    return lines


def thumbnail(task: dict, title: str) -> bytes:
    """A JPEG card for a task."""
    card = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(card)
    draw.text((24, 20), title.split(" - ", 1)[-1], font=_font(34), fill=TEXT)
    y = 76
    images = _images(task)
    if images:
        box = min(150, (SIZE - 48 - 16 * (len(images) - 1)) // len(images))
        for i, (label, image) in enumerate(images):
            image = image.copy()
            image.thumbnail((box, box))
            x = 24 + i * (box + 16)
            card.paste(image.convert("RGB"), (x, y))
            draw.text((x, y + image.height + 6), label, font=_font(15), fill=MUTED)
        y += box + 34
    for line in textwrap.wrap(f"\u201c{task['positivePrompt']}\u201d", width=34)[:4]:
        draw.text((24, y), line, font=_font(24), fill=TEXT)
        y += 30
    y += 10
    for line in _settings(task):
        draw.text((24, y), line, font=_font(17), fill=MUTED)
        y += 24
    draw.text((24, SIZE - 34), "sdxlkit example task (card, not an output)", font=_font(15), fill=MUTED)
    buffer = io.BytesIO()
    card.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
