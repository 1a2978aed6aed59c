"""Images decoded once into memory, and the tf.data pipelines that feed them to the network."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from ..inference.preprocessing import RESIZE_POLICIES
from .architecture import INPUT_SIZE

SOG_POWER = 6  # Shades of Gray norm (Finlayson & Trezzi 2004); p = 6 is the usual choice in ISIC entries


@dataclass(frozen=True)
class Augmentation:
    """How training images are augmented and scaled (each field is a recipe flag, logged with the run).

    ``rrc_min_area`` None keeps the mild square zoom (85-100% of the side); a value turns on
    random-resized-crop (area fraction in [rrc_min_area, 1], aspect 3:4 to 4:3). ``sog_prob`` is the
    chance an image is colour-normalised by Shades of Gray, so the model sees both illuminants.
    """

    input_size: tuple[int, int] = INPUT_SIZE
    scaling: str = "tf"
    rrc_min_area: float | None = None
    sog_prob: float = 0.0


def load_image_files(paths: list[Path], size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """Decode JPEG files into one uint8 RGB array (N, H, W, 3), squash-resized by the engine's own ``squash``."""
    squash = RESIZE_POLICIES["squash"].fn
    out = np.empty((len(paths), *size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"Could not read image {Path(path).name} in {Path(path).parent}.")
        out[i] = squash(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
    return out


def load_images(image_dir: Path, image_ids: list[str], size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """Decode ``<image_dir>/<id>.jpg`` into one uint8 RGB array (N, H, W, 3), squash-resizing if needed."""
    return load_image_files([Path(image_dir) / f"{image_id}.jpg" for image_id in image_ids], size)


def scale(images: tf.Tensor, scaling: str) -> tf.Tensor:
    """0-255 pixels scaled as the card's ``scaling`` says: "tf" x/127.5 - 1, "raw" unchanged (the model normalises)."""
    images = tf.cast(images, tf.float32)
    if scaling == "tf":
        return images / 127.5 - 1.0
    if scaling == "raw":
        return images
    raise ValueError(f"training supports the scalings 'tf' and 'raw', not {scaling!r}")


def scale_tf(images: tf.Tensor) -> tf.Tensor:
    """The card's "tf" preprocessing, x/127.5 - 1 (done outside the model)."""
    return scale(images, "tf")


def shades_of_gray(image: tf.Tensor, power: int = SOG_POWER) -> tf.Tensor:
    """Colour constancy of one [0, 1] image: each channel divided by its Minkowski p-norm mean, grey kept."""
    illuminant = tf.reduce_mean(tf.pow(image + 1e-6, float(power)), axis=[0, 1]) ** (1.0 / power)
    gain = tf.reduce_mean(illuminant) / tf.maximum(illuminant, 1e-6)
    return tf.clip_by_value(image * gain, 0.0, 1.0)


def _crop(image: tf.Tensor, seeds, aug: Augmentation) -> tf.Tensor:
    if aug.rrc_min_area is None:
        # Small zoom-in: crop 85-100% of the side, then resize back.
        side = tf.cast(tf.random.stateless_uniform([], seeds[3], 0.85, 1.0) * aug.input_size[0], tf.int32)
        return tf.image.stateless_random_crop(image, tf.stack([side, side, 3]), seeds[4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[3], min_object_covered=0.0,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=(aug.rrc_min_area, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.slice(image, begin, size)


def augment(image: tf.Tensor, seed: tf.Tensor, aug: Augmentation = Augmentation()) -> tf.Tensor:
    """Dermoscopy-friendly augmentation of one uint8 image: orientation, zoom or crop, colour, then scaling.

    Lesions have no canonical orientation, so all 8 flips/rotations are valid; colour jitter is kept
    small because colour is diagnostic (blue-white veil, pigment network). Stateless random ops keyed
    by ``seed`` (shape [2]) make the augmentation reproducible whatever the thread scheduling.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=9)
    image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    image = tf.image.stateless_random_flip_up_down(image, seeds[1])
    image = tf.image.rot90(image, k=tf.random.stateless_uniform([], seeds[2], 0, 4, dtype=tf.int32))
    image = tf.image.resize(_crop(image, seeds, aug), aug.input_size, method="bilinear") / 255.0
    if aug.sog_prob > 0:
        apply = tf.random.stateless_uniform([], seeds[8]) < aug.sog_prob
        image = tf.cond(apply, lambda: shades_of_gray(image), lambda: image)
    image = tf.image.stateless_random_brightness(image, 0.08, seeds[5])
    image = tf.image.stateless_random_contrast(image, 0.9, 1.1, seeds[6])
    image = tf.image.stateless_random_saturation(image, 0.9, 1.1, seeds[7])
    image = tf.image.stateless_random_hue(image, 0.02, tf.reverse(seeds[7], [0]))
    return scale(tf.clip_by_value(image, 0.0, 1.0) * 255.0, aug.scaling)


def class_weights(y: np.ndarray, n_classes: int, power: float) -> dict[int, float]:
    """Inverse-frequency weights raised to ``power`` (0: none, 1: fully balanced), mean weight 1 per sample."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    raw = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    raw /= (raw * counts).sum() / counts.sum()
    return {i: float(w) for i, w in enumerate(raw)}


def training_dataset(
    images: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    batch_size: int,
    seed: int,
    sampling_power: float = 0.0,
    aug: Augmentation = Augmentation(),
) -> tuple[tf.data.Dataset, int]:
    """An endless, augmented, shuffled dataset and the steps that make one epoch (one pass over the data).

    ``sampling_power`` > 0 draws classes with probability proportional to count**(1 - power), i.e.
    1.0 samples every class equally often (balanced sampling); 0 keeps the natural frequencies.
    """
    n_classes_present = np.unique(y)
    options = tf.data.Options()
    options.deterministic = True
    if sampling_power <= 0:
        ds = tf.data.Dataset.from_tensor_slices((images, y)).shuffle(len(y), seed=seed).repeat()
    else:
        counts = np.bincount(y, minlength=n_classes)
        parts, weights = [], []
        for k, c in enumerate(n_classes_present):
            idx = np.flatnonzero(y == c)
            part = tf.data.Dataset.from_tensor_slices((images[idx], y[idx]))
            parts.append(part.shuffle(len(idx), seed=seed + k).repeat())
            weights.append(float(counts[c]) ** (1.0 - sampling_power))
        total = sum(weights)
        ds = tf.data.Dataset.sample_from_datasets(parts, [w / total for w in weights], seed=seed)
    # Number every draw so each gets its own augmentation seed (seed, draw index).
    ds = ds.enumerate().map(
        lambda i, pair: (augment(pair[0], tf.stack([tf.constant(seed, tf.int64), i]), aug), pair[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)
    return ds, max(1, math.ceil(len(y) / batch_size))


def inference_dataset(images: np.ndarray, batch_size: int = 64, scaling: str = "tf") -> tf.data.Dataset:
    """Scaled, unaugmented batches in order (for validation and evaluation)."""
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(lambda x: scale(x, scaling)).prefetch(2)
