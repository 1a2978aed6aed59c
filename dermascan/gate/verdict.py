"""The gate's verdict for one image: ``ok`` or ``indeterminate``, with every reason as a plain sentence."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .degenerate import MODEL_REASON, near_uniform
from .quality import check_quality

GATE_OK = "ok"
GATE_INDETERMINATE = "indeterminate"
OOD_OFF = "Out-of-distribution detection is off for this model (no gate statistics were fitted for it)."
OOD_REASON = "The image does not look like the images the model was trained on (out of distribution)."
UNIFORM_REASON = "The model is unsure between almost all classes (near-uniform probabilities)."
DEGENERATE_REASON = MODEL_REASON[0].upper() + MODEL_REASON[1:] + " (degenerate model)."


@dataclass(frozen=True)
class GateResult:
    """``status`` (ok / indeterminate), ``reasons`` (sentences), the OOD score (None: off) and quality measures."""

    status: str
    reasons: tuple[str, ...] = ()
    ood_score: float | None = None
    ood_threshold: float | None = None
    quality: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # e.g. OOD detection off: said, but not a failure

    @property
    def ok(self) -> bool:
        """True when the model may judge the image."""
        return self.status == GATE_OK

    @property
    def reasons_text(self) -> str:
        """The reasons joined with ``" | "`` (the review log's ``gate_reasons`` column)."""
        return " | ".join(self.reasons)

    def to_dict(self) -> dict:
        """JSON-ready ``{status, reasons, ood_score, ood_threshold, quality, notes}``."""
        return {"status": self.status, "reasons": list(self.reasons), "ood_score": self.ood_score,
                "ood_threshold": self.ood_threshold, "quality": dict(self.quality), "notes": list(self.notes)}


def judge(image: np.ndarray, probs: np.ndarray, *, ood_score: float | None, ood_threshold: float | None,
          degenerate: str | None = None) -> GateResult:
    """The verdict for an RGB uint8 image and its probabilities; ``ood_score=None`` means OOD detection is off.

    A non-finite OOD score is a failure (indeterminate), never a pass.
    """
    quality, reasons = check_quality(image)
    notes = []
    if degenerate is not None:
        reasons.append(DEGENERATE_REASON)
    elif near_uniform(probs):
        reasons.append(UNIFORM_REASON)
    if ood_score is None or ood_threshold is None:
        notes.append(OOD_OFF)
        score = None
    else:
        score = float(ood_score)
        if not np.isfinite(score) or score > ood_threshold:
            reasons.append(OOD_REASON)
        score = score if np.isfinite(score) else None
    status = GATE_INDETERMINATE if reasons else GATE_OK
    return GateResult(status, tuple(reasons), None if score is None else round(score, 4),
                      ood_threshold, quality, tuple(notes))
