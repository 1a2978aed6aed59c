"""Compare preprocessing options on the same images: results, agreement, metrics, the best option.

An option (``inference.options.PreprocessingOption``) is a pixel scaling, a resize policy and
optionally a set of test-time augmentation transforms. Running an option is one compiled call per
chunk of images (``analyze_many``, its views included); metrics per option come from ``evaluate.metrics_for``,
so the numbers are the CLI's numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..inference.analysis import Analysis
from ..inference.batch import DEFAULT_CHUNK
from ..inference.options import PreprocessingOption

# Ranking keys, most important first; a missing (None) value ranks below any number.
RANK_KEYS = ("balanced_accuracy", "macro_auc", "accuracy")
METRIC_NAMES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_auc": "Macro AUC"}


def build_options(scalings: Sequence[str], resizes: Sequence[str], tta_choices: Sequence[tuple[str, ...]] = ((),)
                  ) -> list[PreprocessingOption]:
    """Every combination of the chosen scalings, resize policies and TTA settings, in the order given."""
    return [PreprocessingOption(s, r, t) for s, r, t in itertools.product(scalings, resizes, tta_choices)]


def double_scales(model, option: PreprocessingOption) -> bool:
    """True when ``option`` rescales pixels that the model also rescales inside (a Rescaling layer)."""
    return model.double_scales(option.preprocessing)


def run_option(model, images: Sequence[np.ndarray], option: PreprocessingOption, *, hashes: Sequence[str],
               names: Sequence[str | None], cam_method: str | None = None) -> list[Analysis]:
    """Full analyses (differential, score, heatmap by ``cam_method``, None: the card's) of decoded RGB images
    under ``option``; one call per chunk."""
    out: list[Analysis] = []
    for start in range(0, len(images), DEFAULT_CHUNK):
        chunk = slice(start, start + DEFAULT_CHUNK)
        out.extend(model.analyze_many(list(images[chunk]), names=list(names[chunk]), hashes=list(hashes[chunk]),
                                      preprocessing=option.preprocessing, resize=option.resize,
                                      cam_method=cam_method, tta=option.tta))
    return out


def option_probabilities(model, images: Sequence[np.ndarray], option: PreprocessingOption) -> np.ndarray:
    """Probabilities (N, C) of decoded RGB images under ``option`` (no heatmaps: metrics only)."""
    out = np.empty((len(images), len(model.labels)), dtype=np.float64)
    for start in range(0, len(images), DEFAULT_CHUNK):
        chunk = list(images[start : start + DEFAULT_CHUNK])
        x = model.preprocess(chunk, preprocessing=option.preprocessing, resize=option.resize)
        out[start : start + len(chunk)] = model.predict_prepared(x, views=model.views_for(option.tta))
    return out


@dataclass(frozen=True)
class Agreement:
    """How much the options agree on one image."""

    top_labels: dict[PreprocessingOption, str]
    same_top: bool
    max_shift: float  # largest |p_a(c) - p_b(c)| over classes c and option pairs (a, b)
    shift_label: str | None  # the class c of that largest shift
    shift_options: tuple[PreprocessingOption, PreprocessingOption] | None


def agreement(results: dict[PreprocessingOption, Analysis]) -> Agreement:
    """Top class per option, whether they all agree, and the largest probability shift between two options."""
    tops = {opt: a.top_label for opt, a in results.items()}
    best = (0.0, None, None)
    for (oa, a), (ob, b) in itertools.combinations(results.items(), 2):
        diff = np.abs(np.asarray(a.probabilities) - np.asarray(b.probabilities))
        c = int(np.argmax(diff))
        if diff[c] > best[0]:
            best = (float(diff[c]), a.labels[c], (oa, ob))
    return Agreement(tops, len(set(tops.values())) <= 1, *best)


def metrics_table(reports: dict[PreprocessingOption, dict], declared: PreprocessingOption | None = None) -> list[dict]:
    """One row per option: accuracy, balanced accuracy, macro AUC, n, and whether it is the declared / best one."""
    winner = best_option(reports)
    return [
        {
            "option": opt.label,
            "preprocessing": opt.preprocessing,
            "resize": opt.resize,
            "tta": len(opt.tta or ()),
            **{key: report.get(key) for key in METRIC_NAMES},
            "n": report.get("n"),
            "model_card": opt == declared,
            "best": opt == winner,
        }
        for opt, report in reports.items()
    ]


def _rank(report: dict) -> tuple:
    return tuple((-1.0 if report.get(k) is None else float(report[k])) for k in RANK_KEYS)


def best_option(reports: dict[PreprocessingOption, dict]) -> PreprocessingOption | None:
    """The option with the highest balanced accuracy (ties: macro AUC, then accuracy, then first given)."""
    if not reports:
        return None
    return max(reports, key=lambda opt: _rank(reports[opt]))


def notes(model, options: Sequence[PreprocessingOption], reports: dict[PreprocessingOption, dict] | None = None
          ) -> list[str]:
    """Plain-language cautions: double scaling, and the model card's option not being the best one."""
    out = [
        f"Option {opt.label} double-scales: '{opt.preprocessing}' rescales pixels, but the model already rescales "
        f"inside ({model.rescaling_layers[0]})."
        for opt in options
        if double_scales(model, opt)
    ]
    if reports:
        declared = PreprocessingOption.for_card(model.card)
        winner = best_option(reports)
        if declared not in reports:
            out.append(f"The model card's option ({declared.label}) is not among the options compared.")
        elif winner != declared and _rank(reports[winner]) > _rank(reports[declared]):
            out.append(
                f"The model card declares {declared.label}, but {winner.label} scores better on these images "
                f"(balanced accuracy {_fmt(reports[winner].get('balanced_accuracy'))} vs "
                f"{_fmt(reports[declared].get('balanced_accuracy'))}). Check the card before trusting either."
            )
    return out


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


SMALL_N = 30
"""Below this many labelled images of a class, per-class (and overall) numbers are noisy."""


def aligned_rows(results: dict[PreprocessingOption, Analysis], display_name) -> list[dict]:
    """One row per class (the model's label order) with its full name and its probability under each option.

    Keys: ``label``, ``name`` (``display_name(label)``, the card's plain-language name) and each option's
    ``label`` (its column title); every option's analysis has the same labels.
    """
    if not results:
        return []
    labels = list(next(iter(results.values())).labels)
    return [
        {"label": label, "name": display_name(label),
         **{option.label: float(analysis.probabilities[i]) for option, analysis in results.items()}}
        for i, label in enumerate(labels)
    ]


def identical_inputs(model, image: np.ndarray, options: Sequence[PreprocessingOption]
                     ) -> list[tuple[PreprocessingOption, PreprocessingOption]]:
    """Pairs of options that feed the model exactly the same array for ``image`` (same preprocessed pixels and the
    same augmentations), e.g. ``squash`` and ``pad`` on a square image: their columns cannot differ."""
    arrays = [model.preprocess([image], preprocessing=o.preprocessing, resize=o.resize) for o in options]
    return [
        (options[i], options[j])
        for i, j in itertools.combinations(range(len(options)), 2)
        if options[i].tta == options[j].tta and arrays[i].shape == arrays[j].shape
        and np.array_equal(arrays[i], arrays[j])
    ]


def small_classes(y_true: Sequence[str], min_n: int = SMALL_N) -> dict[str, int]:
    """The classes with fewer than ``min_n`` labelled images, with their counts (absent classes are not listed)."""
    counts: dict[str, int] = {}
    for label in y_true:
        counts[label] = counts.get(label, 0) + 1
    return {label: n for label, n in sorted(counts.items()) if n < min_n}
