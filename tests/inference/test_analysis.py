"""The Analysis record: screen-sized copies for the dashboard, full size for exports."""

from __future__ import annotations

import numpy as np
import pytest

from dermascan.inference.analysis import Analysis, focus_description
from dermascan.model.card import DEFAULT_MALIGNANT, HAM10000_LABELS, ModelCard
from dermascan.render.overlay import colorize, fit_within


def _record(image: np.ndarray, heatmap: np.ndarray | None) -> Analysis:
    card = ModelCard(labels=list(HAM10000_LABELS), malignant_labels=list(DEFAULT_MALIGNANT))
    probs = np.array([0.05, 0.05, 0.1, 0.05, 0.6, 0.1, 0.05])
    return Analysis.build(image=image, probs=probs, heatmap=heatmap, explained_index=4, card=card, sha256="0" * 64,
                          name="lesion.jpg", preprocessing="tf", resize="squash", cam_layer="conv",
                          warnings=[], processing_time_ms=1.0)


@pytest.fixture
def wide():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1500, 3000, 3), dtype=np.uint8)
    heatmap = np.zeros((7, 7), np.float32)
    heatmap[1, 5] = 1.0
    return _record(image, heatmap)


def test_display_copies_are_screen_wide_with_the_same_aspect_and_computed_once(wide):
    shown = wide.display_image(1460)
    assert shown.shape == (730, 1460, 3)
    assert wide.display_image(1460) is shown
    overlay = wide.overlay(0.5, max_width=1460)
    assert overlay.shape == shown.shape
    np.testing.assert_array_equal(wide.overlay(0.0, max_width=1460), shown)
    np.testing.assert_array_equal(wide.overlay(1.0, max_width=1460), colorize(wide.heatmap, (730, 1460)))
    assert any(x is shown for x in wide.pixel_arrays)  # counted by the session cache's memory bound


def test_full_size_stays_the_default_for_exports(wide):
    assert wide.overlay(0.4).shape == wide.image.shape
    assert wide.display_image() is wide.image
    assert wide.to_dict()["grad_cam"].startswith("data:image/png;base64,")


def test_narrow_images_are_never_copied_or_enlarged():
    image = np.full((450, 600, 3), 90, np.uint8)
    record = _record(image, np.ones((7, 7), np.float32))
    assert record.display_image(1460) is image
    assert record.overlay(0.4, max_width=1460).shape == image.shape
    assert fit_within(image, 600) is image and fit_within(image, 300).shape == (225, 300, 3)
    assert fit_within(image, 600, 450) is image and fit_within(image, 64, 64).shape == (48, 64, 3)
    assert fit_within(image.transpose(1, 0, 2), 64, 64).shape == (64, 48, 3)  # the long side decides


def test_without_a_heatmap_the_overlay_is_the_shown_image(wide):
    record = _record(wide.image, None)
    assert record.overlay(0.7, max_width=1460) is record.display_image(1460)
    assert record.colored_heatmap() is None


def test_the_heatmap_focus_is_described_in_words(wide):
    assert focus_description(wide.heatmap) == "the upper-right of the image"
    assert focus_description(np.zeros((7, 7))) is None
    assert "upper-right" in wide.explanation


@pytest.mark.parametrize(("heatmap", "requested", "ending"), [
    (np.pad(np.ones((2, 2), np.float32), ((0, 5), (5, 0))), True, "The heatmap for Melanoma is focused on"),
    (np.zeros((7, 7), np.float32), True, "The heatmap shows no positive evidence for Melanoma."),
    (None, True, "No heatmap is available for this model."),
    (None, False, "at 60%."),
])
def test_the_explanation_says_what_the_heatmap_shows_only_when_one_was_asked_for(heatmap, requested, ending):
    card = ModelCard(labels=list(HAM10000_LABELS), malignant_labels=list(DEFAULT_MALIGNANT))
    probs = np.array([0.05, 0.05, 0.1, 0.05, 0.6, 0.1, 0.05])
    record = Analysis.build(image=np.zeros((8, 8, 3), np.uint8), probs=probs, heatmap=heatmap, explained_index=4,
                            card=card, sha256="0" * 64, name="x.png", preprocessing="tf", resize="squash",
                            cam_layer=None, warnings=[], processing_time_ms=1.0, heatmap_requested=requested)
    assert record.explanation.startswith("Top class: Melanoma [mel] at 60%.")
    assert ending in record.explanation
    assert record.explanation.count("heatmap") == (0 if not requested else 1)
