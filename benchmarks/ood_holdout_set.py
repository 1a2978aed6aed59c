"""A second out-of-distribution set, built after the gate's layers were chosen on ``ood_set.py``'s images.

    .venv/bin/python benchmarks/ood_holdout_set.py [--out DIR]

The multi-layer gate (TRAINING_LOG run 7, ``dermascan/gate/features.py``) picked its earlier layer by what flagged
``ood_set.py``'s images; this set checks that choice on images it never saw, of kinds that set does not have.
Everything comes from what is installed or in the repository, deterministically (seeded), at 224 x 224 RGB:

| kind | n | what |
|---|---|---|
| photo-crop | 24 | random crops (15-50% of the side) of scikit-learn's two photographs and matplotlib's Grace Hopper |
| app-screen | 16 | random crops of this app's own screenshots (``docs/screenshots``) |
| document | 20 | pages of text in matplotlib's DejaVu / STIX fonts, with headings, rules and tables |
| plot | 16 | matplotlib heatmaps, contour, polar and stem plots |
| skin | 16 | skin-coloured surfaces with shading, pores and hairs but no lesion |
| artwork | 8 | crops of matplotlib's sample logo and icon images |

Total: 100 images. ``benchmarks/ood_gate.py --set holdout`` scores them.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
SIZE = 224
_WORDS = ("clinic", "referral", "summary", "diagnosis", "follow-up", "appointment", "history", "notes", "date",
          "signature", "department", "dermatology", "ward", "room", "phone", "address", "table", "figure", "method",
          "result", "discussion", "2025", "12", "mg", "daily", "review", "letter", "dear", "colleague", "regards")


def _mpl_data(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / name


def _square(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))


def _crops(rng, sources: list[np.ndarray], n: int, low: float, high: float) -> Iterator[np.ndarray]:
    for i in range(n):
        source = sources[i % len(sources)]
        h, w = source.shape[:2]
        side = int(min(h, w) * rng.uniform(low, high))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        yield _square(Image.fromarray(source[y : y + side, x : x + side]))


def _photo_crops(rng, n: int) -> Iterator[np.ndarray]:
    from sklearn.datasets import load_sample_images

    sources = [*load_sample_images().images, np.asarray(Image.open(_mpl_data("sample_data/grace_hopper.jpg")))]
    yield from _crops(rng, [np.asarray(s)[..., :3] for s in sources], n, 0.15, 0.5)


def _app_screens(rng, n: int) -> Iterator[np.ndarray]:
    sources = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((REPO / "docs" / "screenshots").glob("*.png"))]
    yield from _crops(rng, sources, n, 0.2, 0.6)


def _artwork(rng, n: int) -> Iterator[np.ndarray]:
    sources = [np.asarray(Image.open(_mpl_data(f"sample_data/{name}")).convert("RGB"))
               for name in ("logo2.png", "Minduka_Present_Blue_Pack.png")]
    yield from _crops(rng, sources, n, 0.4, 1.0)


def _documents(rng, n: int) -> Iterator[np.ndarray]:
    fonts = sorted(_mpl_data("fonts/ttf").glob("*.ttf"))
    fonts = [f for f in fonts if f.name.startswith(("DejaVuSans", "DejaVuSerif", "STIXGeneral"))]
    for i in range(n):
        scale = 2  # drawn at twice the size, then reduced like a photographed page
        page = Image.new("RGB", (SIZE * scale, SIZE * scale), tuple(int(v) for v in rng.integers(225, 256, 3)))
        draw = ImageDraw.Draw(page)
        ink = tuple(int(v) for v in rng.integers(0, 70, 3))
        size = int(rng.integers(14, 30))
        font = ImageFont.truetype(str(fonts[i % len(fonts)]), size)
        heading = ImageFont.truetype(str(fonts[(i + 3) % len(fonts)]), int(size * 1.6))
        y = int(rng.integers(8, 30))
        draw.text((16, y), " ".join(rng.choice(_WORDS, 3)).title(), fill=ink, font=heading)
        y += int(size * 2.4)
        while y < SIZE * scale - size:
            if rng.random() < 0.25:  # a table row with rules
                for col in range(3):
                    draw.text((16 + col * 140, y), str(rng.choice(_WORDS)), fill=ink, font=font)
                draw.line([12, y + size + 4, SIZE * scale - 12, y + size + 4], fill=ink, width=1)
            else:
                draw.text((16, y), " ".join(rng.choice(_WORDS, int(rng.integers(3, 8)))), fill=ink, font=font)
            y += int(size * 1.5)
        yield _square(page)


def _plots(rng, n: int) -> Iterator[np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for i in range(n):
        kind = i % 4
        fig = plt.figure(figsize=(2.24, 2.24), dpi=100)
        ax = fig.add_subplot(projection="polar" if kind == 2 else None)
        if kind == 0:
            cmap = str(rng.choice(["viridis", "magma", "coolwarm"]))
            ax.imshow(rng.random((int(rng.integers(4, 16)),) * 2), cmap=cmap)
        elif kind == 1:
            yy, xx = np.mgrid[-2:2:60j, -2:2:60j]
            ax.contourf(xx, yy, np.sin(xx * rng.uniform(1, 3)) * np.cos(yy * rng.uniform(1, 3)), levels=8)
        elif kind == 2:
            theta = np.linspace(0, 2 * np.pi, 200)
            ax.plot(theta, 1 + 0.5 * np.sin(int(rng.integers(2, 8)) * theta))
        else:
            ax.stem(rng.normal(size=int(rng.integers(8, 25))))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        yield _square(Image.open(io.BytesIO(buffer.getvalue())))


def _skin(rng, n: int) -> Iterator[np.ndarray]:
    import cv2

    tones = np.array([(236, 188, 160), (224, 172, 140), (198, 134, 100), (170, 112, 82), (141, 85, 60),
                      (110, 70, 50)], float)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    for i in range(n):
        tone = tones[i % len(tones)] * rng.uniform(0.9, 1.1)
        shade = 0.85 + 0.3 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) / 2
        pores = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)), (0, 0), 1.2) * 6
        image = np.clip(tone * shade[..., None] + pores[..., None], 0, 255).astype(np.uint8)
        canvas = Image.fromarray(image)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(0, 12))):  # hairs
            points = np.cumsum(rng.normal(0, 12, (6, 2)), axis=0) + rng.integers(0, SIZE, 2)
            draw.line([tuple(p) for p in points.tolist()], fill=(40, 30, 25), width=int(rng.integers(1, 3)))
        yield np.asarray(canvas)


def build_holdout_set(seed: int = 1) -> list[tuple[str, np.ndarray]]:
    """``[(kind, image)]``: the 100 held-out OOD images (224 x 224 RGB uint8), the same on every call."""
    rng = np.random.default_rng(seed)
    families = [("photo-crop", _photo_crops(rng, 24)), ("app-screen", _app_screens(rng, 16)),
                ("document", _documents(rng, 20)), ("plot", _plots(rng, 16)), ("skin", _skin(rng, 16)),
                ("artwork", _artwork(rng, 8))]
    return [(kind, np.ascontiguousarray(image, np.uint8)) for kind, images in families for image in images]


def main(argv: list[str] | None = None) -> int:
    """Write the set as PNGs (optional) and print how many images of each kind it holds."""
    from ood_set import write_set

    return write_set(build_holdout_set, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
