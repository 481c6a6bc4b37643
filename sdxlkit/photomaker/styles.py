"""PhotoMaker's 11 style templates, text for text from TencentARC/PhotoMaker gradio_demo/style_template.py, and its
`apply_style`: the template wraps the positive prompt; the template's negative goes before the user's, joined by a
space. The task's style names are the schema's; two differ from the reference's ("Disney Charactor",
"Photographic (Default)")."""

from __future__ import annotations

# schema name -> (reference name, positive template, negative text)
STYLES: dict[str, tuple[str, str, str]] = {
    "No style": ("(No style)", "{prompt}", ""),
    "Cinematic": (
        "Cinematic",
        "cinematic still {prompt} . emotional, harmonious, vignette, highly detailed, high budget, bokeh, "
        "cinemascope, moody, epic, gorgeous, film grain, grainy",
        "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, deformed, mutated, ugly, "
        "disfigured"),
    "Disney Character": (
        "Disney Charactor",
        "A Pixar animation character of {prompt} . pixar-style, studio anime, Disney, high-quality",
        "lowres, bad anatomy, bad hands, text, bad eyes, bad arms, bad legs, error, missing fingers, extra digit, "
        "fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, "
        "blurry, grayscale, noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo"),
    "Digital Art": (
        "Digital Art",
        "concept art {prompt} . digital artwork, illustrative, painterly, matte painting, highly detailed",
        "photo, photorealistic, realism, ugly"),
    "Photographic": (
        "Photographic (Default)",
        "cinematic photo {prompt} . 35mm photograph, film, bokeh, professional, 4k, highly detailed",
        "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, ugly"),
    "Fantasy art": (
        "Fantasy art",
        "ethereal fantasy concept art of  {prompt} . magnificent, celestial, ethereal, painterly, epic, majestic, "
        "magical, fantasy art, cover art, dreamy",
        "photographic, realistic, realism, 35mm film, dslr, cropped, frame, text, deformed, glitch, noise, noisy, "
        "off-center, deformed, cross-eyed, closed eyes, bad anatomy, ugly, disfigured, sloppy, duplicate, mutated, "
        "black and white"),
    "Neonpunk": (
        "Neonpunk",
        "neonpunk style {prompt} . cyberpunk, vaporwave, neon, vibes, vibrant, stunningly beautiful, crisp, "
        "detailed, sleek, ultramodern, magenta highlights, dark purple shadows, high contrast, cinematic, ultra "
        "detailed, intricate, professional",
        "painting, drawing, illustration, glitch, deformed, mutated, cross-eyed, ugly, disfigured"),
    "Enhance": (
        "Enhance",
        "breathtaking {prompt} . award-winning, professional, highly detailed",
        "ugly, deformed, noisy, blurry, distorted, grainy"),
    "Comic book": (
        "Comic book",
        "comic {prompt} . graphic illustration, comic art, graphic novel art, vibrant, highly detailed",
        "photograph, deformed, glitch, noisy, realistic, stock photo"),
    "Lowpoly": (
        "Lowpoly",
        "low-poly style {prompt} . low-poly game art, polygon mesh, jagged, blocky, wireframe edges, centered "
        "composition",
        "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo"),
    "Line art": (
        "Line art",
        "line art drawing {prompt} . professional, sleek, modern, minimalist, graphic, line art, vector graphics",
        "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, deformed, cross-eyed, "
        "closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, impressionism, expressionism, "
        "oil, acrylic"),
}


def apply_style(style: str, positive: str, negative: str | None) -> tuple[str, str | None]:
    """PhotoMaker's apply_style: (template with the prompt, template negative + " " + negative). A task without a
    negativePrompt keeps none when the style has no negative text ("No style"): SDXL's zeroed negative, as without
    PhotoMaker."""
    _, template, style_negative = STYLES[style]
    if negative is None and not style_negative:
        return template.replace("{prompt}", positive), None
    return template.replace("{prompt}", positive), style_negative + " " + (negative or "")
