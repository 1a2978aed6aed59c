"""Helpers of the backbone ports' parity tests: the same inputs and statistics for torch and Keras."""

from __future__ import annotations

import re

import numpy as np

TOLERANCE = 1e-4  # the largest pooled-feature difference a port may have from its PyTorch original


def random_images(seed: int, n: int = 2, size: int = 224) -> np.ndarray:
    """``n`` seeded uint8 RGB images (NHWC)."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def keras_features(model, images: np.ndarray) -> np.ndarray:
    """Global-average-pooled features of a Keras backbone for uint8 NHWC images."""
    return np.asarray(model.predict(images.astype(np.float32), verbose=0)).mean(axis=(1, 2))


def randomise_batchnorm(net, seed: int = 1) -> None:
    """Random BatchNorm scale, shift and statistics in a torch network, so a port that swaps mean and variance
    or gamma and beta cannot pass on freshly initialised (0 / 1) values."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = torch.rand(c, generator=generator) + 0.5
            module.bias.data = torch.randn(c, generator=generator) * 0.1
            module.running_mean.data = torch.randn(c, generator=generator) * 0.1
            module.running_var.data = torch.rand(c, generator=generator) + 0.5


def assert_refuses_partial_ports(port, fresh_state, missing: str, extra: str) -> None:
    """``port(state)`` must name a tensor the port needs and the state lacks (``missing`` removed), and refuse
    a tensor no Keras layer uses (``extra`` added): a half-ported backbone would still run."""
    import pytest
    import torch

    state = fresh_state()
    state.pop(missing)
    with pytest.raises(ValueError, match=re.escape(missing)):
        port(state)
    state = fresh_state()
    state[extra] = torch.zeros(1)
    with pytest.raises(ValueError, match="no Keras layer"):
        port(state)
