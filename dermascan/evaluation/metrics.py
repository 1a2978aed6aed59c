"""Evaluation metrics for probability outputs: calibration, triage thresholds and a JSON-ready report.

UI-free and scikit-learn based; shared by the training CLI, the evaluation report and the dashboard.
Every function takes class *indices* or label *names* explicitly, so no label order is assumed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from ..inference.scoring import malignant_scores

__all__ = [
    "age_band",
    "apply_temperature",
    "balanced_accuracy",
    "bootstrap_intervals",
    "classification_report",
    "expected_calibration_error",
    "fit_temperature",
    "malignant_scores",
    "paired_bootstrap",
    "reliability_bins",
    "subgroup_report",
    "thresholds_for_sensitivity",
]

_EPS = 1e-12


def _as_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValueError(f"probs must be a 2-D array (N, C); got shape {probs.shape}.")
    return probs


def reliability_bins(y_true_idx: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Top-label reliability diagram data: per equal-width confidence bin, its bounds, mean confidence,
    accuracy and count (confidence/accuracy are None for empty bins)."""
    probs = _as_probs(probs)
    y_true_idx = np.asarray(y_true_idx, dtype=int)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true_idx
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lower, upper]; a confidence of exactly 0 goes into the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "confidence": float(confidence[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
                "count": count,
            }
        )
    return bins


def expected_calibration_error(y_true_idx: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    bins = reliability_bins(y_true_idx, probs, n_bins)
    total = sum(b["count"] for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]) / total)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): temperature scaling applied to probabilities; rows sum to 1, safe for p == 0."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number; got {temperature}.")
    logits = np.log(np.clip(_as_probs(probs), _EPS, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _nll(probs: np.ndarray, y_true_idx: np.ndarray, temperature: float) -> float:
    scaled = apply_temperature(probs, temperature)
    return float(-np.mean(np.log(np.clip(scaled[np.arange(len(y_true_idx)), y_true_idx], _EPS, None))))


def fit_temperature(probs: np.ndarray, y_true_idx: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising the NLL of softmax(log(p)/T) on held-out data (golden-section on log T)."""
    probs = _as_probs(probs)
    y_true_idx = np.asarray(y_true_idx, dtype=int)
    if len(y_true_idx) == 0:
        return 1.0
    # NLL is unimodal in log T for temperature scaling, so a bounded golden-section search is enough.
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(probs, y_true_idx, math.exp(a)), _nll(probs, y_true_idx, math.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(probs, y_true_idx, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(probs, y_true_idx, math.exp(b))
    return float(math.exp((lo + hi) / 2.0))


def thresholds_for_sensitivity(scores: np.ndarray, is_malignant: np.ndarray, sensitivity: float) -> float:
    """The largest threshold t such that flagging ``scores >= t`` keeps sensitivity >= ``sensitivity``.

    With no malignant cases the requirement is vacuous and 1.0 is returned.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.sort(scores[np.asarray(is_malignant, dtype=bool)])[::-1]
    if len(positives) == 0:
        return 1.0
    # Flagging the k highest-scoring positives needs t <= the k-th highest score.
    k = max(1, math.ceil(sensitivity * len(positives) - 1e-9))
    return float(positives[k - 1])


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    if y.min() == y.max():
        return None
    return float(roc_auc_score(y, score))


def classification_report(
    y_true: list[str],
    probs: np.ndarray,
    labels: list[str],
    malignant_labels: list[str],
    thresholds: dict[str, float],
) -> dict:
    """A JSON-ready evaluation of ``probs`` (N, C, columns in ``labels`` order) against true label names.

    Metrics undefined for the data (e.g. an AUC with one class present) are None, never NaN.
    """
    probs = _as_probs(probs)
    labels = list(labels)
    y_idx = _label_indices(y_true, probs, labels)
    n = len(y_true)
    pred = probs.argmax(axis=1) if n else np.zeros(0, dtype=int)
    all_idx = list(range(len(labels)))
    present = sorted(set(y_idx.tolist()))

    per_class, balanced = _per_class(y_idx, pred, labels, present)
    aucs = [_binary_auc((y_idx == i).astype(int), probs[:, i]) for i in present] if n else []
    aucs = [a for a in aucs if a is not None]
    macro_auc = float(np.mean(aucs)) if aucs else None
    mel_auc = _binary_auc((y_idx == labels.index("mel")).astype(int), probs[:, labels.index("mel")]) if (
        "mel" in labels and n
    ) else None
    malignant, mel_sens_high = _malignant_report(probs, y_idx, labels, malignant_labels, thresholds)

    matrix = confusion_matrix(y_idx, pred, labels=all_idx).tolist() if n else [[0] * len(labels)] * len(labels)
    return {
        "n": int(n),
        "labels": labels,
        "accuracy": float((pred == y_idx).mean()) if n else None,
        "balanced_accuracy": balanced,
        "per_class": per_class,
        "macro_auc": _none_if_nan(macro_auc),
        "melanoma_auc": _none_if_nan(mel_auc),
        "ece": expected_calibration_error(y_idx, probs) if n else None,
        "confusion_matrix": {
            "labels": labels,
            "matrix": matrix,
        },
        "malignant": malignant,
        "mel_sensitivity_high": mel_sens_high,
        "reliability": reliability_bins(y_idx, probs) if n else [],
    }


def _label_indices(y_true: list[str], probs: np.ndarray, labels: list[str]) -> np.ndarray:
    """Indices of the true label names in ``labels``, after checking that they fit ``probs``."""
    if probs.shape[1] != len(labels):
        raise ValueError(f"probs has {probs.shape[1]} columns but {len(labels)} labels were given.")
    if len(y_true) != len(probs):
        raise ValueError(f"{len(y_true)} true labels but {len(probs)} rows of probabilities.")
    unknown = sorted({y for y in y_true} - set(labels))
    if unknown:
        raise ValueError(f"True label(s) not among the model's labels {labels}: {', '.join(map(str, unknown))}.")
    return np.array([labels.index(y) for y in y_true], dtype=int)


def balanced_accuracy(y_idx: np.ndarray, pred_idx: np.ndarray) -> float | None:
    """Mean recall over the classes present in ``y_idx`` (class indices; None when there are none).

    Plain numpy, so a search that scores thousands of candidate decisions (``train.posthoc``) can call it.
    """
    y_idx, pred_idx = np.asarray(y_idx), np.asarray(pred_idx)
    present = np.unique(y_idx)
    if present.size == 0:
        return None
    return float(np.mean([np.mean(pred_idx[y_idx == k] == k) for k in present]))


def _per_class(y_idx: np.ndarray, pred: np.ndarray, labels: list[str], present: list[int]) -> tuple[dict, float | None]:
    """Precision, recall, F1 and support per label, and the balanced accuracy."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_idx, pred, labels=list(range(len(labels))), zero_division=0
    )
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]) if support[i] else None,
            "f1": float(f1[i]) if support[i] else None,
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    return per_class, balanced_accuracy(y_idx, pred) if present else None


def _malignant_report(probs: np.ndarray, y_idx: np.ndarray, labels: list[str], malignant_labels: list[str],
                      thresholds: dict[str, float]) -> tuple[dict, float | None]:
    """The malignancy score's AUC and sensitivity / specificity per triage threshold, and melanoma's
    sensitivity at the high threshold."""
    n = len(y_idx)
    malignant: dict = {"auc": None, "at_thresholds": {}}
    mel_sens_high = None
    if malignant_labels:
        scores = malignant_scores(probs, labels, malignant_labels)
        is_mal = np.isin(y_idx, [labels.index(m) for m in malignant_labels])
        malignant["auc"] = _binary_auc(is_mal.astype(int), scores) if n else None
        for band, t in sorted(thresholds.items(), key=lambda kv: kv[1]):
            flagged = scores >= t
            sens = float(flagged[is_mal].mean()) if is_mal.any() else None
            spec = float((~flagged[~is_mal]).mean()) if (~is_mal).any() else None
            malignant["at_thresholds"][band] = {"threshold": float(t), "sensitivity": sens, "specificity": spec}
        if "mel" in labels and "high" in thresholds:
            is_mel = y_idx == labels.index("mel")
            if is_mel.any():
                mel_sens_high = float((scores[is_mel] >= thresholds["high"]).mean())
    return malignant, mel_sens_high


# --- Bootstrap confidence intervals and subgroup results (model evaluation reports) ---

BOOTSTRAP_RESAMPLES = 1000
_BOOTSTRAP_CHUNK = 200  # resamples per vectorised block: bounds memory at chunk x n weights


def _weighted_auc(order: np.ndarray, starts: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per row of ``weights`` (B, n): ties count one half, as in ``roc_auc_score``.

    ``order`` sorts the scores ascending and ``starts`` marks the first index of each run of equal
    scores in that order; a bootstrap resample is a row of multiplicities, so no data is copied.
    """
    w = weights[:, order]
    pos = positive[order]
    pos_group = np.add.reduceat(w * pos, starts, axis=1)
    neg_group = np.add.reduceat(w * ~pos, starts, axis=1)
    neg_below = np.cumsum(neg_group, axis=1) - neg_group
    total_pos, total_neg = pos_group.sum(axis=1), neg_group.sum(axis=1)
    wins = (pos_group * (neg_below + 0.5 * neg_group)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total_pos > 0) & (total_neg > 0), wins / (total_pos * total_neg), np.nan)


def _auc_setup(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    return order, starts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _bootstrap_metrics(weights: np.ndarray, y_idx: np.ndarray, probs: np.ndarray, labels: list[str],
                       malignant_labels: list[str], thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """Each metric for every row of multiplicities ``weights`` (B, n); rows of all ones give the plain metric."""
    n_classes = probs.shape[1]
    onehot = np.eye(n_classes, dtype=bool)[y_idx]
    correct = probs.argmax(axis=1) == y_idx
    per_class = _ratio(weights @ (onehot & correct[:, None]), weights @ onehot)
    with warnings.catch_warnings():  # classes a resample lacks are NaN: skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {"balanced_accuracy": np.nanmean(per_class, axis=1)}
    aucs = []
    for c in sorted(set(y_idx.tolist())):
        if onehot[:, c].all():
            continue
        order, starts = _auc_setup(probs[:, c])
        aucs.append(_weighted_auc(order, starts, onehot[:, c], weights))
        if labels[c] == "mel":
            out["melanoma_auc"] = aucs[-1]
    if aucs:
        with warnings.catch_warnings():  # a resample with no class pair defined is NaN, on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            out["macro_auc"] = np.nanmean(np.vstack(aucs), axis=0)
    if malignant_labels:
        scores = malignant_scores(probs, labels, malignant_labels)
        is_mal = np.isin(y_idx, [labels.index(m) for m in malignant_labels])
        if is_mal.any() and not is_mal.all():
            order, starts = _auc_setup(scores)
            out["malignant_auc"] = _weighted_auc(order, starts, is_mal, weights)
        for band, t in sorted(thresholds.items(), key=lambda kv: kv[1]):
            flagged = scores >= t
            out[f"malignant_sensitivity_{band}"] = _ratio(weights @ (flagged & is_mal), weights @ is_mal)
            out[f"malignant_specificity_{band}"] = _ratio(weights @ (~flagged & ~is_mal), weights @ ~is_mal)
    return out


def _resamples(n: int, n_resamples: int, seed: int, groups: np.ndarray | None = None):
    """Bootstrap multiplicity rows (B, n) in chunks, seeded; with ``groups`` whole groups are drawn.

    Drawing groups (lesions) rather than images keeps the images of one lesion together, as a new sample
    of lesions would: they are not independent, and drawing them one by one makes intervals too narrow.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, n_units = np.arange(n), n
    else:
        units_seen, codes = np.unique(np.asarray(groups), return_inverse=True)
        n_units = len(units_seen)
    for start in range(0, n_resamples, _BOOTSTRAP_CHUNK):
        size = min(_BOOTSTRAP_CHUNK, n_resamples - start)
        units = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=size).astype(np.float64)
        yield units[:, codes]


def paired_bootstrap(
    y_true: list[str],
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    labels: list[str],
    malignant_labels: list[str],
    thresholds: dict[str, float],
    *,
    groups: list | np.ndarray | None = None,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """How much better B is than A on the same images: each headline metric's difference B - A with a
    percentile interval, both models scored on the same resamples (paired), and the share of resamples
    where B is ahead.

    ``groups`` (one id per image, e.g. the lesion) resamples whole groups. Returns ``{metric: {"a", "b",
    "difference", "low", "high", "b_ahead"}}``; a metric undefined on the images is left out.
    """
    if not (0.0 < level < 1.0) or n_resamples < 1:
        raise ValueError("level must be in (0, 1) and n_resamples at least 1")
    probs_a, probs_b = _as_probs(probs_a), _as_probs(probs_b)
    if probs_a.shape != probs_b.shape:
        raise ValueError(f"the two models' probabilities differ in shape: {probs_a.shape} vs {probs_b.shape}")
    y_idx = _label_indices(y_true, probs_a, list(labels))
    n = len(y_idx)
    if groups is not None and len(groups) != n:
        raise ValueError("groups must name one group per image")
    if n == 0:
        return {}

    def metrics(weights: np.ndarray) -> tuple[dict, dict]:
        return tuple(_bootstrap_metrics(weights, y_idx, p, list(labels), malignant_labels, thresholds)
                     for p in (probs_a, probs_b))

    point_a, point_b = metrics(np.ones((1, n)))
    diffs: dict[str, list[np.ndarray]] = {k: [] for k in point_a if k in point_b}
    for weights in _resamples(n, n_resamples, seed, None if groups is None else np.asarray(groups)):
        a, b = metrics(weights)
        for k in diffs:
            diffs[k].append(b[k] - a[k])
    tail = (1.0 - level) / 2.0 * 100.0
    result = {}
    for name, parts in diffs.items():
        values = np.concatenate(parts)
        values = values[np.isfinite(values)]
        a, b = _none_if_nan(float(point_a[name][0])), _none_if_nan(float(point_b[name][0]))
        if a is None or b is None or not len(values):
            continue
        low, high = np.percentile(values, [tail, 100.0 - tail])
        result[name] = {"a": a, "b": b, "difference": b - a, "low": float(low), "high": float(high),
                        "b_ahead": float(np.mean(values > 0))}
    return result


def bootstrap_intervals(
    y_true: list[str],
    probs: np.ndarray,
    labels: list[str],
    malignant_labels: list[str],
    thresholds: dict[str, float],
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Percentile bootstrap intervals (images resampled with replacement, seeded) for the headline metrics.

    Balanced accuracy, melanoma / macro / malignant AUC and malignant sensitivity / specificity per
    triage threshold. Resamples are vectorised as multiplicity rows over the fixed predictions, never
    re-predicted. A resample where a metric is undefined (no melanoma drawn) is left out of that
    metric's interval. Returns ``{"level", "n_resamples", "seed", "metrics": {name: {estimate, low, high}}}``
    with None for an undefined metric.
    """
    if not (0.0 < level < 1.0) or n_resamples < 1:
        raise ValueError("level must be in (0, 1) and n_resamples at least 1")
    probs = _as_probs(probs)
    y_idx = _label_indices(y_true, probs, list(labels))
    n = len(y_idx)
    result: dict = {"level": level, "n_resamples": int(n_resamples), "seed": int(seed), "metrics": {}}
    if n == 0:
        return result
    point = _bootstrap_metrics(np.ones((1, n)), y_idx, probs, list(labels), malignant_labels, thresholds)
    draws: dict[str, list[np.ndarray]] = {k: [] for k in point}
    for weights in _resamples(n, n_resamples, seed):
        for k, v in _bootstrap_metrics(weights, y_idx, probs, list(labels), malignant_labels, thresholds).items():
            draws[k].append(v)
    tail = (1.0 - level) / 2.0 * 100.0
    for name, estimate in point.items():
        values = np.concatenate(draws[name])
        values = values[np.isfinite(values)]
        est = _none_if_nan(float(estimate[0]))
        if est is None or not len(values):
            result["metrics"][name] = {"estimate": est, "low": None, "high": None}
            continue
        low, high = np.percentile(values, [tail, 100.0 - tail])
        result["metrics"][name] = {"estimate": est, "low": float(low), "high": float(high)}
    return result


AGE_BANDS = ((0, 30, "<30"), (30, 50, "30-49"), (50, 70, "50-69"), (70, math.inf, ">=70"))
UNKNOWN_GROUP = "unknown"


def age_band(age: object) -> str:
    """``<30``, ``30-49``, ``50-69``, ``>=70``, or ``unknown`` (missing, not a number, negative, non-finite)."""
    try:
        value = float(age)
    except (TypeError, ValueError):
        return UNKNOWN_GROUP
    if not math.isfinite(value) or value < 0:
        return UNKNOWN_GROUP
    return next(name for low, high, name in AGE_BANDS if low <= value < high)


def subgroup_report(
    y_true: list[str],
    probs: np.ndarray,
    groups: list[str],
    labels: list[str],
    malignant_labels: list[str],
    thresholds: dict[str, float],
    band: str = "high",
) -> list[dict]:
    """One row per group value (sorted, ``unknown`` last): images, classes present, balanced accuracy
    (None with fewer than 2 classes: a mean recall over one class is just that class's recall) and the
    malignant count and sensitivity at the ``band`` threshold (None without malignant images)."""
    probs = _as_probs(probs)
    y_idx = _label_indices(y_true, probs, list(labels))
    if len(groups) != len(y_idx):
        raise ValueError(f"{len(groups)} group values for {len(y_idx)} images")
    groups_arr = np.asarray([str(g) for g in groups], dtype=object)
    pred = probs.argmax(axis=1)
    mal_idx = [labels.index(m) for m in malignant_labels]
    scores = malignant_scores(probs, list(labels), malignant_labels) if malignant_labels else np.zeros(len(y_idx))
    threshold = thresholds.get(band)
    rows = []
    for value in sorted(set(groups_arr), key=lambda g: (g == UNKNOWN_GROUP, g)):
        mask = groups_arr == value
        y, p = y_idx[mask], pred[mask]
        present = sorted(set(y.tolist()))
        balanced = float(np.mean([(p[y == c] == c).mean() for c in present])) if len(present) >= 2 else None
        is_mal = np.isin(y, mal_idx)
        sens = (float((scores[mask][is_mal] >= threshold).mean())
                if is_mal.any() and threshold is not None else None)
        rows.append({"group": value, "n": int(mask.sum()), "classes": len(present), "balanced_accuracy": balanced,
                     "malignant": int(is_mal.sum()), f"malignant_sensitivity_{band}": sens})
    return rows
