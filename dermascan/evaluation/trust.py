"""How far to trust an analysis: the faithfulness drop of its map and its stability under flips and rotations.

Both need forward passes over perturbed copies of the prepared image, and neither needs gradients, so
every copy of every analysis goes through ONE ``predict_prepared`` call (per ``MAX_VIEWS_PER_CALL``):

- **faithfulness**: the top ``TOP_FRACTION`` of the map removed and filled from the kept pixels
  (``faithfulness.impute``, the ROAD-style imputation), the share of the explained class's probability
  lost (``Analysis.faithfulness``) and ``faithfulness_sentence``; one copy per image;
- **stability**: the views of ``views.STABILITY_VIEWS`` besides the original (whose answer is the
  analysis itself), each view's own top class and malignancy score (``Analysis.stability``, the share of
  views that keep ``top_label``; ``stability_views``; ``stability_sentence``).

The deletion / insertion curves (``faithfulness.faithfulness``, 23 copies) stay with the benchmark and
``explain-check``: measured on the bundled model they cost 17 to 40 analyses' time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import INVALID_OUTPUT_MESSAGE, InvalidModelOutput
from ..inference.aligned import empty_aligned
from ..inference.analysis import Analysis
from ..inference.tta import stability, stability_views, view_results
from ..inference.views import MAX_VIEWS_PER_CALL, STABILITY_VIEWS, TRANSFORMS
from .faithfulness import _EMPTY_PIXEL, _relative_drop, faithfulness_sentence, impute, top_region


def check(model, analyses: Sequence[Analysis], x: np.ndarray | None = None, *, faithfulness: bool = True,
          views: Sequence[str] | None = STABILITY_VIEWS) -> list[Analysis]:
    """Fill the faithfulness and / or stability fields of ``analyses`` in place (and return them).

    ``x`` is their prepared batch when the caller still has it (else each image is prepared again as its
    analysis was); ``views=None`` or ``()`` skips stability, ``faithfulness=False`` the drop (also skipped
    for an analysis without a heatmap). Raises ``InvalidModelOutput`` on a non-finite probability.
    """
    if not analyses:
        return list(analyses)
    chosen_views = stability_views(views, model.input_size)[1:] if views else ()
    rows: list[np.ndarray] = []
    # Per analysis: (row of the image as it is, of its masked copy, first row of its views). The image's own row is
    # only needed when its analysis averaged TTA views: the copies are single views, so is what they compare with.
    plan: list[tuple[int | None, int | None, int]] = []
    for i, a in enumerate(analyses):
        xi = x[i] if x is not None else model.preprocess([a.image], preprocessing=a.preprocessing,
                                                         resize=a.resize)[0]
        itself = masked = None
        if a.tta:
            itself = len(rows)
            rows.append(xi)
        if faithfulness and a.heatmap is not None and np.any(a.heatmap > 0):
            masked = len(rows)
            rows.append(impute(xi, top_region(a.heatmap, xi.shape[:2]), _empty_pixel(model, a)))
        plan.append((itself, masked, len(rows)))
        rows.extend(TRANSFORMS[v].forward(xi) for v in chosen_views)
    probs = _predict(model, rows)
    for a, (itself, masked, first) in zip(analyses, plan):
        name = a.display_names.get(a.explained_label, a.explained_label)
        as_is = a.probabilities if itself is None else probs[itself]
        if masked is not None:
            explained = a.labels.index(a.explained_label)
            a.faithfulness = _relative_drop(float(as_is[explained]), float(probs[masked, explained]))
            a.faithfulness_sentence = faithfulness_sentence(a.faithfulness, name)
        elif faithfulness and a.heatmap is not None:
            a.faithfulness_sentence = faithfulness_sentence(0.0, name, has_evidence=False)
        if views:
            names = ("identity", *chosen_views)
            own = np.vstack([as_is[None], probs[first : first + len(chosen_views)]])
            a.stability_views = view_results(model, names, own)
            a.stability, a.stability_sentence = stability(a.top_label, a.stability_views)
    return list(analyses)


UNMEASURED = ("Stability and faithfulness were not measured: the model gave invalid numbers (NaN or infinity) "
              "for a flipped or masked copy of the image.")


def check_or_warn(model, analyses: Sequence[Analysis], x: np.ndarray | None = None, **kwargs) -> list[Analysis]:
    """``check``, but invalid numbers on a perturbed copy leave the analyses as they were (``check`` writes
    nothing before every probability is known to be finite), with ``UNMEASURED`` among their warnings: the
    analysis of the image itself still stands."""
    try:
        return check(model, analyses, x, **kwargs)
    except InvalidModelOutput:
        for a in analyses:
            a.warnings.append(UNMEASURED)
        return list(analyses)


def _empty_pixel(model, analysis: Analysis) -> np.ndarray:
    # A black image prepared as the analysis was: the colour of a pixel with nothing kept near it.
    blank = model.preprocess([np.full((*model.input_size, 3), _EMPTY_PIXEL, np.uint8)],
                             preprocessing=analysis.preprocessing, resize=analysis.resize)[0]
    return blank[0, 0]


def _predict(model, rows: list[np.ndarray]) -> np.ndarray:
    if not rows:
        return np.zeros((0, len(model.labels)))
    out = []
    for start in range(0, len(rows), MAX_VIEWS_PER_CALL):
        chunk = rows[start : start + MAX_VIEWS_PER_CALL]
        batch = np.stack(chunk, out=empty_aligned((len(chunk), *chunk[0].shape)))
        out.append(np.asarray(model.predict_prepared(batch), np.float64))
    probs = np.vstack(out)
    if not np.isfinite(probs).all():
        raise InvalidModelOutput(INVALID_OUTPUT_MESSAGE)
    return probs
