"""Builder of the out-of-distribution (OOD) set: images that are not dermoscopic lesion photographs.

    .venv/bin/python benchmarks/ood_set.py [--out DIR]     # writes the PNGs and prints the counts per kind

Everything comes from what is installed: scikit-learn's two sample photographs and images generated
here, deterministically (seeded), at 224 x 224 RGB. Each kind below is a family of *distinct* images
(different content, colours, layout), not crops or flips of one image:

| kind | n | what |
|---|---|---|
| photo | 2 | scikit-learn's ``load_sample_images`` (a temple, a flower), squashed to 224 px |
| solid | 24 | one colour over the whole frame (black, white, greys, skin tones, saturated colours) |
| gradient | 24 | linear and radial two-colour gradients |
| pattern | 24 | checkerboards and stripes of several periods, angles and colours |
| noise | 24 | uniform, Gaussian and salt-and-pepper noise, grey and colour |
| texture | 24 | natural-ish textures: smoothed noise at several scales, marble / wood-like sine patterns |
| text | 30 | rendered text lines (dark on light, light on dark, several sizes) |
| chart | 30 | matplotlib line, bar, scatter, pie and histogram charts |
| screenshot | 30 | UI-like screens drawn with PIL: title bar, menus, buttons, text fields, tables |
| shapes | 20 | coloured geometric shapes on plain backgrounds |

Total: 232 images. ``benchmarks/ood_gate.py`` scores them; the README's benchmark section has the numbers.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 224
KINDS = ("photo", "solid", "gradient", "pattern", "noise", "texture", "text", "chart", "screenshot", "shapes")

_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
          "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "invoice",
          "total", "patient", "report", "settings", "export", "upload", "cancel", "save", "open", "file",
          "edit", "view", "help", "window", "2024", "page", "1", "of", "3", "results", "error", "ok")


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def _rgb(rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _photos() -> Iterator[np.ndarray]:
    from sklearn.datasets import load_sample_images

    for image in load_sample_images().images:
        yield np.asarray(Image.fromarray(image).resize((SIZE, SIZE), Image.BILINEAR))


def _solids(rng, n: int) -> Iterator[np.ndarray]:
    fixed = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (64, 64, 64), (192, 192, 192), (224, 172, 140),
             (198, 134, 100), (141, 85, 60), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    for i in range(n):
        colour = fixed[i] if i < len(fixed) else _rgb(rng)
        yield np.full((SIZE, SIZE, 3), colour, np.uint8)


def _gradients(rng, n: int) -> Iterator[np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    for i in range(n):
        a, b = np.array(_rgb(rng), float), np.array(_rgb(rng), float)
        if i % 2:
            t = np.hypot(yy - rng.random(), xx - rng.random())
            t = t / t.max()
        else:
            angle = rng.random() * np.pi
            t = xx * np.cos(angle) + yy * np.sin(angle)
            t = (t - t.min()) / (t.max() - t.min())
        yield (a + (b - a) * t[..., None]).astype(np.uint8)


def _patterns(rng, n: int) -> Iterator[np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(n):
        period = int(rng.integers(4, 56))
        a, b = np.array(_rgb(rng)), np.array(_rgb(rng))
        if i % 2:
            on = ((yy // period) + (xx // period)) % 2 == 0
        else:
            angle = rng.random() * np.pi
            on = ((xx * np.cos(angle) + yy * np.sin(angle)) // period) % 2 == 0
        yield np.where(on[..., None], a, b).astype(np.uint8)


def _noises(rng, n: int) -> Iterator[np.ndarray]:
    for i in range(n):
        channels = 3 if i % 2 else 1
        kind = (i // 2) % 3
        if kind == 0:
            x = rng.integers(0, 256, (SIZE, SIZE, channels))
        elif kind == 1:
            x = rng.normal(128, 20 + 10 * (i % 5), (SIZE, SIZE, channels))
        else:
            x = np.full((SIZE, SIZE, channels), 128.0)
            r = rng.random((SIZE, SIZE))
            share = 0.02 + 0.05 * (i % 4)
            x[r < share / 2] = 0
            x[r > 1 - share / 2] = 255
        yield np.broadcast_to(np.clip(x, 0, 255).astype(np.uint8), (SIZE, SIZE, 3)).copy()


def _textures(rng, n: int) -> Iterator[np.ndarray]:
    import cv2

    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    for i in range(n):
        if i % 2:
            sigma = 1.5 + 2.5 * (i % 6)
            x = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE, 3)), (0, 0), sigma)
            x = (x - x.min()) / (x.max() - x.min() + 1e-9)
        else:
            turbulence = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)), (0, 0), 6)
            freq = 3 + 10 * rng.random()
            base = (xx if i % 4 else np.hypot(xx - 0.5, yy - 0.5)) * freq + 4 * turbulence
            x = (0.5 + 0.5 * np.sin(2 * np.pi * base))[..., None]
            a, b = np.array(_rgb(rng), float) / 255, np.array(_rgb(rng), float) / 255
            x = a + (b - a) * x
        yield (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _texts(rng, n: int) -> Iterator[np.ndarray]:
    for i in range(n):
        dark_on_light = i % 3 != 0
        bg = tuple(int(v) for v in (rng.integers(200, 256, 3) if dark_on_light else rng.integers(0, 60, 3)))
        fg = (20, 20, 20) if dark_on_light else (235, 235, 235)
        canvas = Image.new("RGB", (SIZE, SIZE), bg)
        draw = ImageDraw.Draw(canvas)
        size = int(rng.integers(10, 28))
        font = _font(size)
        y = int(rng.integers(2, 12))
        while y < SIZE - size:
            line = " ".join(rng.choice(_WORDS, int(rng.integers(2, 7))))
            draw.text((int(rng.integers(2, 20)), y), line, fill=fg, font=font)
            y += int(size * 1.4)
        yield np.asarray(canvas)


def _charts(rng, n: int) -> Iterator[np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for i in range(n):
        fig, ax = plt.subplots(figsize=(2.24, 2.24), dpi=100)
        kind = i % 5
        x = np.arange(int(rng.integers(5, 30)))
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                ax.plot(x, np.cumsum(rng.normal(size=len(x))))
        elif kind == 1:
            ax.bar(x[:10], rng.random(min(10, len(x))))
        elif kind == 2:
            ax.scatter(rng.random(60), rng.random(60), s=8)
        elif kind == 3:
            ax.pie(rng.random(int(rng.integers(3, 7))))
        else:
            ax.hist(rng.normal(size=300), bins=int(rng.integers(8, 30)))
        ax.set_title(" ".join(rng.choice(_WORDS, 2)), fontsize=8)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
        yield np.asarray(image)


def _screenshots(rng, n: int) -> Iterator[np.ndarray]:
    font = _font(11)
    for i in range(n):
        dark = i % 4 == 0
        canvas = Image.new("RGB", (SIZE, SIZE), (40, 42, 48) if dark else (245, 246, 248))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle([0, 0, SIZE, 22], fill=_rgb(rng))
        draw.text((6, 5), " ".join(rng.choice(_WORDS, 3)), fill=(255, 255, 255), font=font)
        if i % 2:  # a sidebar menu
            draw.rectangle([0, 22, 60, SIZE], fill=(60, 64, 72) if dark else (225, 228, 232))
            for row in range(6):
                draw.text((6, 30 + 20 * row), str(rng.choice(_WORDS)), fill=(200, 200, 200) if dark else (40, 40, 40),
                          font=font)
        left = 70 if i % 2 else 8
        y = 32
        while y < SIZE - 24:
            widget = int(rng.integers(0, 3))
            if widget == 0:  # a button
                draw.rounded_rectangle([left, y, left + 70, y + 18], 4, fill=_rgb(rng))
                draw.text((left + 8, y + 3), str(rng.choice(_WORDS)), fill=(255, 255, 255), font=font)
            elif widget == 1:  # a text field
                draw.rectangle([left, y, SIZE - 10, y + 18], outline=(150, 150, 150), fill=(255, 255, 255))
                draw.text((left + 4, y + 3), " ".join(rng.choice(_WORDS, 2)), fill=(60, 60, 60), font=font)
            else:  # a table row
                for col in range(3):
                    x0 = left + col * (SIZE - left) // 3
                    draw.text((x0, y + 3), str(rng.choice(_WORDS)), fill=(220, 220, 220) if dark else (30, 30, 30),
                              font=font)
                draw.line([left, y + 18, SIZE - 6, y + 18], fill=(180, 180, 180))
            y += 26
        yield np.asarray(canvas)


def _shapes(rng, n: int) -> Iterator[np.ndarray]:
    for _ in range(n):
        canvas = Image.new("RGB", (SIZE, SIZE), _rgb(rng))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(2, 8))):
            x0, y0 = (int(v) for v in rng.integers(0, SIZE - 30, 2))
            x1, y1 = x0 + int(rng.integers(15, 120)), y0 + int(rng.integers(15, 120))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                draw.rectangle([x0, y0, x1, y1], fill=_rgb(rng))
            elif shape == 1:
                draw.ellipse([x0, y0, x1, y1], fill=_rgb(rng))
            else:
                draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=_rgb(rng))
        yield np.asarray(canvas)


def build_ood_set(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``[(kind, image)]``: the 232 OOD images (224 x 224 RGB uint8), the same on every call with ``seed``."""
    rng = np.random.default_rng(seed)
    families = [("photo", _photos()), ("solid", _solids(rng, 24)), ("gradient", _gradients(rng, 24)),
                ("pattern", _patterns(rng, 24)), ("noise", _noises(rng, 24)), ("texture", _textures(rng, 24)),
                ("text", _texts(rng, 30)), ("chart", _charts(rng, 30)), ("screenshot", _screenshots(rng, 30)),
                ("shapes", _shapes(rng, 20))]
    return [(kind, np.ascontiguousarray(image, np.uint8)) for kind, images in families for image in images]


def write_set(build, description: str, argv: list[str] | None = None) -> int:
    """The command line of an OOD set builder: write ``build()``'s images as PNGs (optional), print the counts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", help="write <kind>_<n>.png files here")
    args = parser.parse_args(argv)
    images = build()
    counts: dict[str, int] = {}
    for kind, image in images:
        counts[kind] = counts.get(kind, 0) + 1
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(Path(args.out) / f"{kind}_{counts[kind]:03d}.png")
    print(", ".join(f"{k} {v}" for k, v in counts.items()), f"| total {len(images)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Write the set as PNGs (optional) and print how many images of each kind it holds."""
    return write_set(build_ood_set, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
