"""Images decoded once into memory, and the tf.data pipelines that feed them to the network."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from .architecture import INPUT_SIZE


def load_images(image_dir: Path, image_ids: list[str]) -> np.ndarray:
    """Decode ``<image_dir>/<id>.jpg`` into one uint8 RGB array (N, 224, 224, 3), squash-resizing if needed."""
    out = np.empty((len(image_ids), *INPUT_SIZE, 3), dtype=np.uint8)
    for i, image_id in enumerate(image_ids):
        bgr = cv2.imread(str(Path(image_dir) / f"{image_id}.jpg"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"Could not read image {image_id}.jpg in {image_dir}.")
        if bgr.shape[:2] != INPUT_SIZE:
            bgr = cv2.resize(bgr, INPUT_SIZE[::-1], interpolation=cv2.INTER_AREA)
        out[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return out


def scale_tf(images: tf.Tensor) -> tf.Tensor:
    """The card's "tf" preprocessing, x/127.5 - 1 (done outside the model)."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Dermoscopy-friendly augmentation of one uint8 image: orientation, small zoom, mild colour jitter.

    Lesions have no canonical orientation, so all 8 flips/rotations are valid; colour jitter is kept
    small because colour is diagnostic (blue-white veil, pigment network). Stateless random ops keyed
    by ``seed`` (shape [2]) make the augmentation reproducible whatever the thread scheduling.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=8)
    image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    image = tf.image.stateless_random_flip_up_down(image, seeds[1])
    image = tf.image.rot90(image, k=tf.random.stateless_uniform([], seeds[2], 0, 4, dtype=tf.int32))
    # Small zoom-in: crop 85-100% of the side, then resize back.
    side = tf.cast(tf.random.stateless_uniform([], seeds[3], 0.85, 1.0) * INPUT_SIZE[0], tf.int32)
    image = tf.image.stateless_random_crop(image, tf.stack([side, side, 3]), seeds[4])
    image = tf.image.resize(image, INPUT_SIZE, method="bilinear") / 255.0
    image = tf.image.stateless_random_brightness(image, 0.08, seeds[5])
    image = tf.image.stateless_random_contrast(image, 0.9, 1.1, seeds[6])
    image = tf.image.stateless_random_saturation(image, 0.9, 1.1, seeds[7])
    image = tf.image.stateless_random_hue(image, 0.02, tf.reverse(seeds[7], [0]))
    return tf.clip_by_value(image, 0.0, 1.0) * 2.0 - 1.0


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
        lambda i, pair: (augment(pair[0], tf.stack([tf.constant(seed, tf.int64), i])), pair[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)
    return ds, max(1, math.ceil(len(y) / batch_size))


def inference_dataset(images: np.ndarray, batch_size: int = 64) -> tf.data.Dataset:
    """Scaled, unaugmented batches in order (for validation and evaluation)."""
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(scale_tf).prefetch(2)
