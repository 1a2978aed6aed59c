"""Outputs that barely depend on the image: for the whole model at load time, and for one image.

A model with random or collapsed weights gives every class about 1/C, or the same answer for a black, a
grey, a white and a noise image; its triage would be noise dressed as a band.
"""

from __future__ import annotations

import numpy as np

MODEL_REASON = "the model's outputs barely depend on the image"
UNIFORM_FACTOR = 1.5  # a top probability under 1.5 / C is "near-uniform"
SAME_OUTPUT = 0.01  # probabilities that move by less than this across the probe images are "identical"


def near_uniform(probs: np.ndarray) -> bool:
    """True when the top probability of one image is under ``UNIFORM_FACTOR / C``."""
    probs = np.asarray(probs, np.float64)
    return bool(probs.max() < UNIFORM_FACTOR / probs.shape[-1])


def degenerate_model(probe_probs: np.ndarray) -> str | None:
    """A sentence when the probabilities (N, C) on N different probe images show a degenerate model, else None."""
    probs = np.asarray(probe_probs, np.float64)
    spread = float((probs.max(axis=0) - probs.min(axis=0)).max())
    if all(near_uniform(p) for p in probs):
        return (f"Degenerate model: {MODEL_REASON} (near-uniform probabilities, top class under "
                f"{UNIFORM_FACTOR / probs.shape[1]:.0%}, on every test image at load).")
    if spread < SAME_OUTPUT:
        return (f"Degenerate model: {MODEL_REASON} (the same probabilities, within {SAME_OUTPUT:.0%}, for a "
                "black, a grey, a white and a noise test image at load).")
    return None
