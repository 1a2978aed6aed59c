"""The TTA views on plain arrays: each inverts itself, quarter turns only for square inputs, views in words."""

from __future__ import annotations

import numpy as np
import pytest

from dermascan.inference.views import TRANSFORMS, augment, available_transforms, views_in_words


def test_views_and_their_inverses_round_trip():
    a = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    views = augment(a, list(TRANSFORMS))
    assert views.shape == (2 * len(TRANSFORMS), 4, 4, 3)
    for j, t in enumerate(TRANSFORMS.values()):
        assert np.array_equal(t.inverse(views[j]), a[0])


def test_quarter_turns_are_only_offered_for_square_inputs():
    assert "rot90" in available_transforms((64, 64)) and "rot90" not in available_transforms((64, 48))
    with pytest.raises(ValueError, match="not usable"):
        augment(np.zeros((1, 64, 48, 3), np.float32), ["rot90"])
    with pytest.raises(ValueError, match="at least one"):
        augment(np.zeros((1, 8, 8, 3), np.float32), [])


def test_views_in_words():
    assert views_in_words(()) == "none"
    assert views_in_words(["identity", "hflip"]) == "2 views averaged: The image as it is; Mirrored left-right"
