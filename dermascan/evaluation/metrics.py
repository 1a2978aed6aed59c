"""Evaluation metrics for probability outputs: calibration, triage thresholds and a JSON-ready report.

UI-free and scikit-learn based; shared by the training CLI, the evaluation report and the dashboard.
Every function takes class *indices* or label *names* explicitly, so no label order is assumed.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from ..inference.scoring import malignant_scores

__all__ = [
    "apply_temperature",
    "classification_report",
    "expected_calibration_error",
    "fit_temperature",
    "malignant_scores",
    "reliability_bins",
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
    # Balanced accuracy = mean recall over the classes actually present.
    balanced = float(np.mean([recall[i] for i in present])) if present else None
    return per_class, balanced


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
