"""The ``Analysis`` record: one image's differential, score, triage and heatmap.

``to_dict()`` keeps the original backend's response fields with the same names and
meaning (model_version, predictions, malignant_score, grad_cam, explanation,
processing_time_ms) and adds what a reviewer needs to trust and reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import INVALID_OUTPUT_MESSAGE, InvalidModelOutput
from ..model.card import ModelCard
from ..render.numbers import percent
from ..render.overlay import DEFAULT_ALPHA, DEFAULT_COLORMAP, blend, colorize, fit_within
from ..render.png import png_data_uri
from .scoring import INDETERMINATE, malignant_score, triage_band

if TYPE_CHECKING:  # the gate's record type only; the gate itself is run by the model
    from ..gate import GateResult

UNRELIABLE_SCORE = "Malignancy score unreliable: the input gate failed, so no triage band is given (retake or refer)."

_ROWS = ("upper", "middle", "lower")
_COLS = ("left", "centre", "right")


def _heatmap_sentence(heatmap: np.ndarray | None, explained: str) -> str:
    # Starts with a space: it follows the "Top class" sentence.
    if heatmap is None:
        return " No heatmap is available for this model."
    focus = focus_description(heatmap)
    if focus is None:
        return f" The heatmap shows no positive evidence for {explained}."
    return f" The heatmap for {explained} is focused on {focus}."


def focus_description(heatmap: np.ndarray | None) -> str | None:
    """Where a [0, 1] heatmap is focused, in words (``"the upper-left of the image"``); None if all zero."""
    if heatmap is None or not np.any(heatmap > 0):
        return None
    hot = heatmap >= 0.5
    if hot.mean() > 0.5:
        return "most of the image"
    ys, xs = np.nonzero(hot)
    weights = heatmap[ys, xs]
    cy = float(np.average(ys + 0.5, weights=weights)) / heatmap.shape[0]
    cx = float(np.average(xs + 0.5, weights=weights)) / heatmap.shape[1]
    row, col = _ROWS[min(int(cy * 3), 2)], _COLS[min(int(cx * 3), 2)]
    if (row, col) == ("middle", "centre"):
        return "the centre of the image"
    if row == "middle":
        return f"the {col} side of the image"
    if col == "centre":
        return f"the {row} part of the image"
    return f"the {row}-{col} of the image"


@dataclass
class Analysis:
    """Everything the engine says about one image. ``image`` stays in memory only."""

    sha256: str
    name: str | None
    labels: list[str]
    display_names: dict[str, str]
    probabilities: np.ndarray
    explained_label: str
    heatmap: np.ndarray | None
    image: np.ndarray = field(repr=False)
    malignant_score: float
    triage: str
    model_name: str | None
    model_version: str
    preprocessing: str
    resize: str
    cam_layer: str | None
    warnings: list[str]
    processing_time_ms: float
    explanation: str
    cam_method: str | None = None  # the CAM method of ``heatmap`` (None without a heatmap)
    tta: tuple[str, ...] = ()  # the test-time augmentation views averaged over (empty: the image as it is)
    # Filled by ``dermascan.evaluation.trust.check`` (None: not measured for this analysis).
    faithfulness: float | None = None  # share of the explained class's probability lost without the top region
    faithfulness_sentence: str | None = None
    stability: float | None = None  # share of the TTA views whose top class is ``top_label``
    stability_views: tuple = ()  # one ``tta.ViewResult`` per view, the original first
    stability_sentence: str | None = None
    gate: GateResult | None = None  # None: not checked (records built outside the model)
    _colored: dict = field(default_factory=dict, repr=False)  # (colormap, max_width) -> coloured heatmap
    _displayed: dict = field(default_factory=dict, repr=False)  # max_width -> downscaled image

    @classmethod
    def build(cls, *, image, probs, heatmap, explained_index, card: ModelCard, sha256, name, preprocessing, resize,
              cam_layer, warnings, processing_time_ms, heatmap_requested: bool = True,
              gate: GateResult | None = None, cam_method: str | None = None, tta: tuple[str, ...] = ()) -> Analysis:
        """Assemble a record, deriving score, triage and explanation from the card.

        When ``gate`` failed, ``triage`` is ``"indeterminate"`` (never a band) and the score, still
        computed, is marked unreliable (``score_reliable`` False, a warning).

        ``heatmap_requested=False`` marks a prediction-only run (fast batch scoring). Non-finite
        probabilities or heatmap values raise ``InvalidModelOutput``: such a record never exists,
        so it can never be triaged, shown or stored.
        """
        labels = list(card.labels)
        probs = np.asarray(probs, dtype=np.float64)
        if not np.isfinite(probs).all() or (heatmap is not None and not np.isfinite(heatmap).all()):
            raise InvalidModelOutput(INVALID_OUTPUT_MESSAGE)
        score = malignant_score(probs, labels, card.malignant_labels)
        top = int(np.argmax(probs))
        explained = labels[explained_index]
        display = {label: card.display_name(label) for label in labels}
        sentence = f"Top class: {display[labels[top]]} [{labels[top]}] at {percent(probs[top], 0)}."
        if heatmap_requested:  # prediction-only runs say nothing about a heatmap
            sentence += _heatmap_sentence(heatmap, display[explained])
        band = triage_band(score, card.thresholds)  # a non-finite score raises, gated or not
        warnings = list(warnings)
        if gate is not None and not gate.ok:
            band = INDETERMINATE
            warnings.append(UNRELIABLE_SCORE)
        return cls(
            sha256=sha256, name=name, labels=labels, display_names=display, probabilities=probs,
            explained_label=explained, heatmap=heatmap, image=image, malignant_score=score,
            triage=band, model_name=card.name, model_version=card.version,
            preprocessing=preprocessing, resize=resize, cam_layer=cam_layer, warnings=warnings,
            processing_time_ms=float(processing_time_ms), explanation=sentence, gate=gate, cam_method=cam_method,
            tta=tuple(tta),
        )

    @property
    def score_reliable(self) -> bool:
        """False when the input gate failed: the malignancy score is shown, but must not be relied on."""
        return self.triage != INDETERMINATE

    @property
    def gate_status(self) -> str | None:
        """``"ok"`` / ``"indeterminate"``, or None when the gate was not checked."""
        return None if self.gate is None else self.gate.status

    @property
    def gate_reasons(self) -> str | None:
        """The gate's reasons as one ``" | "``-separated text (None when not checked)."""
        return None if self.gate is None else self.gate.reasons_text

    @property
    def predictions(self) -> list[dict]:
        """``[{label, display_name, probability}]`` sorted from most to least likely."""
        order = np.argsort(-self.probabilities, kind="stable")
        return [
            {"label": self.labels[i], "display_name": self.display_names[self.labels[i]],
             "probability": float(self.probabilities[i])}
            for i in order
        ]

    @property
    def top_label(self) -> str:
        """The most probable label."""
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def pixel_arrays(self) -> list[np.ndarray]:
        """The pixel arrays this record holds (image, coloured heatmaps), for memory accounting."""
        return [self.image, *self._colored.values(), *self._displayed.values()]

    def display_image(self, max_width: int | None = None) -> np.ndarray:
        """The image, area-averaged down to ``max_width`` pixels wide when it is wider; computed once per width.

        A screen shows no more than its width: a 12-megapixel upload blended and encoded at full size on
        every slider move costs about half a second, at screen width a few milliseconds.
        """
        if max_width is None or self.image.shape[1] <= max_width:
            return self.image
        if max_width not in self._displayed:
            self._displayed[max_width] = fit_within(self.image, max_width)
        return self._displayed[max_width]

    def colored_heatmap(self, colormap: str = DEFAULT_COLORMAP, max_width: int | None = None) -> np.ndarray | None:
        """The heatmap resized to ``display_image(max_width)`` and coloured; computed once per colormap and width."""
        if self.heatmap is None:
            return None
        image = self.display_image(max_width)
        key = (colormap, image.shape[1])
        if key not in self._colored:
            self._colored[key] = colorize(self.heatmap, image.shape[:2], colormap)
        return self._colored[key]

    def overlay(self, alpha: float = DEFAULT_ALPHA, colormap: str = DEFAULT_COLORMAP, *,
                max_width: int | None = None) -> np.ndarray:
        """The heatmap blended over the image (the image itself without a heatmap), at most ``max_width`` wide."""
        image = self.display_image(max_width)
        colored = self.colored_heatmap(colormap, max_width)
        return image if colored is None else blend(image, colored, alpha)

    def to_dict(self, alpha: float = DEFAULT_ALPHA, *, include_overlay: bool = True) -> dict:
        """JSON-ready record (the original backend's fields plus ours)."""
        return {
            "model_version": self.model_version,
            "model_name": self.model_name,
            "predictions": [{"label": p["label"], "probability": p["probability"]} for p in self.predictions],
            "malignant_score": self.malignant_score,
            "grad_cam": png_data_uri(self.overlay(alpha)) if include_overlay and self.heatmap is not None else None,
            "explanation": self.explanation,
            "processing_time_ms": round(self.processing_time_ms, 2),
            "image_sha256": self.sha256,
            "file": self.name,
            "top_label": self.top_label,
            "display_names": dict(self.display_names),
            "triage": self.triage,
            "explained_label": self.explained_label,
            "preprocessing": self.preprocessing,
            "resize": self.resize,
            "cam_layer": self.cam_layer,
            "warnings": list(self.warnings),
            "cam_method": self.cam_method,
            "tta": list(self.tta),
            "faithfulness": self.faithfulness,
            "faithfulness_sentence": self.faithfulness_sentence,
            "stability": self.stability,
            "stability_views": [v.to_dict() for v in self.stability_views],
            "stability_sentence": self.stability_sentence,
            "malignant_score_reliable": self.score_reliable,
            "gate": None if self.gate is None else self.gate.to_dict(),
        }
