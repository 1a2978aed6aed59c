"""Out of distribution: class-conditional Mahalanobis distance on the model's features, layer by layer.

Lee et al. 2018 ("A simple unified framework for detecting out-of-distribution samples"): one Gaussian
per class with a shared covariance, the score is the distance to the nearest class mean. To keep the
statistics small (a 1280-wide MobileNetV2 feature would need a 6.5 MB precision matrix) they live in a
PCA subspace of ``k`` components, with a Ledoit-Wolf shrunk covariance there (scikit-learn); what the
subspace leaves out is scored too, as the residual energy relative to the training images', because
an image unlike every training image is often unlike them *outside* their main directions.

    score = min_c (z - mu_c)' P (z - mu_c) / k  +  |f - mean - W z|^2 / residual_scale,   z = W'(f - mean)

Both terms are about 1 for a typical training image. The features are L2-normalised first (``feature_norm``
"l2", the default of new fits): a ReLU network's pooled features are small for a near-blank page or a screenshot,
which puts them *near* the training mean by distance. On MobileNetV2-1.0 model 2.0.0, with the same
97th-percentile threshold on validation, raw features flagged 33% of the synthetic OOD set and normalised ones
100% (4.4% of the test split either way; ``benchmarks/ood_gate.py``). Format 1 sidecars (no ``feature_norm``)
keep raw features.

Format 3 scores several layers (``GateStats``): the penultimate features and the spatial means of earlier layers
(``features.FeatureLayout``), one set of statistics each; the image's score is the sum of the layers' scores,
each divided by its median on the held-out images, so that every layer counts about equally. A page of text
that the last layer of a fine-tuned model maps among the lesions is still far from them in the layer before: the
logit-adjusted MobileNetV2 (TRAINING_LOG run 7) flagged 80% of ``benchmarks/ood_set.py``'s images and of
``ood_holdout_set.py``'s with its last layer alone (documents 30%), 100% of both with the penultimate features
and ``features.default_taps``'s layer, while flagging 3.3% of the test split instead of 4.2%. Format 1 and 2
sidecars are one segment with scale 1.

The statistics are a sidecar ``.npz`` read as data only (``allow_pickle=False``), every array checked for shape
and finiteness; the threshold lives in the model card's ``gate`` entry.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CardError
from .features import PENULTIMATE, FeatureLayout

FORMAT = "dermascan-gate-3"
# format 1: written before feature_norm existed (raw features); format 2: one segment (the penultimate features)
FORMATS = ("dermascan-gate-1", "dermascan-gate-2", FORMAT)
MAX_SEGMENTS = 8
MAX_TAP_NAME = 200
FEATURE_NORMS = ("none", "l2")
DEFAULT_FEATURE_NORM = "l2"
DEFAULT_COMPONENTS = 64
DEFAULT_PERCENTILE = 97.0
MAX_SIDECAR_BYTES = 8_000_000
_NUMBERS = ("mean", "components", "class_means", "precision", "residual_scale")
_ARRAYS = {"dermascan-gate-1": ("format", *_NUMBERS), "dermascan-gate-2": ("format", "feature_norm", *_NUMBERS)}


def _segment_keys(i: int) -> tuple[str, ...]:
    return tuple(f"s{i}_{key}" for key in _NUMBERS)


def normalise(features: np.ndarray, feature_norm: str) -> np.ndarray:
    """Features (N, D) as float64, each row scaled to unit length for ``"l2"`` (a zero row stays zero)."""
    f = np.atleast_2d(np.asarray(features, np.float64))
    if feature_norm == "l2":
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return f


@dataclass(frozen=True)
class OODStats:
    """Fitted feature statistics: ``mean`` (D,), ``components`` (D, k), ``class_means`` (C, k), ``precision`` (k, k)."""

    mean: np.ndarray
    components: np.ndarray
    class_means: np.ndarray
    precision: np.ndarray
    residual_scale: float
    feature_norm: str = "none"

    @property
    def feature_dim(self) -> int:
        """Width D of the features these statistics describe."""
        return int(self.mean.shape[0])

    def scores(self, features: np.ndarray) -> np.ndarray:
        """OOD scores (N,) of features (N, D): higher is further from the training images."""
        f = normalise(features, self.feature_norm) - self.mean
        z = f @ self.components
        diff = z[:, None, :] - self.class_means[None, :, :]  # (N, C, k)
        maha = np.einsum("nck,kl,ncl->nc", diff, self.precision, diff).min(axis=1) / self.components.shape[1]
        residual = np.sum((f - z @ self.components.T) ** 2, axis=1) / self.residual_scale
        return maha + residual


@dataclass(frozen=True)
class GateStats:
    """The gate's statistics: one ``OODStats`` per feature segment (the penultimate features, then each tap).

    ``taps`` names the earlier layers (in column order) and ``scales`` divides each segment's score (its median on
    held-out images); a format 1 or 2 sidecar is one segment with scale 1 and no taps.
    """

    segments: tuple[OODStats, ...]
    taps: tuple[str, ...] = ()
    scales: tuple[float, ...] = (1.0,)

    @property
    def feature_dim(self) -> int:
        """Total width of the features these statistics describe (every segment's)."""
        return sum(segment.feature_dim for segment in self.segments)

    @property
    def feature_norm(self) -> str:
        """The features' normalisation (the same for every segment)."""
        return self.segments[0].feature_norm

    @property
    def layout(self) -> FeatureLayout:
        """The feature columns these statistics read: the penultimate segment, then each tap."""
        names = (PENULTIMATE, *self.taps)
        return FeatureLayout(tuple(zip(names, (s.feature_dim for s in self.segments), strict=True)))

    def segment_scores(self, features: np.ndarray) -> np.ndarray:
        """Each segment's scaled score (N, S) of features (N, feature_dim)."""
        parts = self.layout.split(np.atleast_2d(np.asarray(features, np.float64)))
        return np.stack([segment.scores(part) / scale
                         for segment, scale, part in zip(self.segments, self.scales, parts, strict=True)], axis=1)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """OOD scores (N,): the sum of the segments' scaled scores; higher is further from the training images."""
        return self.segment_scores(features).sum(axis=1)

    def save(self, path: Path) -> None:
        """Write the statistics as an uncompressed format 3 ``.npz`` of plain arrays (no pickles)."""
        arrays = {"format": np.array(FORMAT), "feature_norm": np.array(self.feature_norm),
                  "taps": np.array(list(self.taps), dtype=str), "scales": np.array(self.scales, np.float64)}
        for i, segment in enumerate(self.segments):
            keys = _segment_keys(i)
            arrays.update({keys[0]: segment.mean.astype(np.float32), keys[1]: segment.components.astype(np.float32),
                           keys[2]: segment.class_means.astype(np.float32),
                           keys[3]: segment.precision.astype(np.float32),
                           keys[4]: np.array(segment.residual_scale, np.float64)})
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)


def fit_stats(features: np.ndarray, classes: np.ndarray, n_components: int = DEFAULT_COMPONENTS,
              feature_norm: str = DEFAULT_FEATURE_NORM) -> OODStats:
    """Fit the statistics on in-distribution features (N, D) with their class indices (N,)."""
    from sklearn.covariance import LedoitWolf

    f = np.asarray(features, np.float64)
    classes = np.asarray(classes)
    if f.ndim != 2 or len(f) != len(classes) or len(f) < 3:
        raise ValueError("Fitting the gate needs at least 3 feature rows, one class per row.")
    if not np.isfinite(f).all():
        raise ValueError("The model's features are not finite numbers.")
    if feature_norm not in FEATURE_NORMS:
        raise ValueError(f"Unknown feature normalisation '{feature_norm}'.")
    f = normalise(f, feature_norm)
    mean = f.mean(axis=0)
    centred = f - mean
    k = max(1, min(n_components, f.shape[1], len(f) - 1))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:k].T
    z = centred @ components
    present = np.unique(classes)
    class_means = np.stack([z[classes == c].mean(axis=0) for c in present])
    within = z - class_means[np.searchsorted(present, classes)]
    precision = LedoitWolf(assume_centered=True).fit(within).precision_
    residual = np.sum((centred - z @ components.T) ** 2, axis=1)
    residual_scale = float(max(residual.mean(), 1e-12))
    return OODStats(mean, components, class_means, precision, residual_scale, feature_norm)


def _refuse(name: str, why: str) -> CardError:
    return CardError(f"The gate statistics file {name} was refused: {why}.")


def _check_segment(name: str, numbers: dict, feature_norm: str) -> OODStats:
    """One segment's arrays (keys as in ``_NUMBERS``) checked for kind, finiteness and shapes."""
    for key, value in numbers.items():
        if value.dtype.kind != "f":
            raise _refuse(name, f"'{key}' is not an array of floating-point numbers")
        if not np.isfinite(value).all():
            raise _refuse(name, f"'{key}' holds NaN or infinite numbers")
    mean, comp, means, prec = (numbers[k].astype(np.float64) for k in ("mean", "components", "class_means",
                                                                       "precision"))
    scale = numbers["residual_scale"]
    if mean.ndim != 1 or comp.ndim != 2 or comp.shape[0] != mean.shape[0] or comp.shape[1] < 1:
        raise _refuse(name, "'mean' and 'components' have inconsistent shapes")
    k = comp.shape[1]
    if means.ndim != 2 or means.shape[1] != k or means.shape[0] < 1 or prec.shape != (k, k):
        raise _refuse(name, "'class_means' or 'precision' do not match the components")
    if scale.shape != () or not float(scale) > 0:
        raise _refuse(name, "'residual_scale' must be one positive number")
    return OODStats(mean, comp, means, prec, float(scale), feature_norm)


def _format_3_layout(name: str, data) -> tuple[tuple[str, ...], np.ndarray]:
    """``(taps, scales)`` of a format 3 file, checked before any segment is read."""
    if "taps" not in data.files or "scales" not in data.files:
        raise _refuse(name, "it does not hold exactly the expected arrays")
    taps, scales = data["taps"], data["scales"]
    if taps.dtype.kind != "U" or taps.ndim != 1 or any(not t or len(t) > MAX_TAP_NAME for t in taps.tolist()):
        raise _refuse(name, "'taps' must be a list of layer names")
    if (scales.dtype.kind != "f" or scales.shape != (len(taps) + 1,) or len(scales) > MAX_SEGMENTS
            or not np.isfinite(scales).all() or not (scales > 0).all()):
        raise _refuse(name, f"'scales' must be one positive number per segment (at most {MAX_SEGMENTS})")
    return tuple(taps.tolist()), scales.astype(np.float64)


def load_stats(path: Path, feature_dim: int | None = None) -> GateStats:
    """Read a sidecar written by ``GateStats.save`` (or a format 1 / 2 one); anything else (a pickle, wrong shapes,
    NaN) is a ``CardError``."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise _refuse(name, "it cannot be read") from None
    if size > MAX_SIDECAR_BYTES:
        raise _refuse(name, f"it is larger than {MAX_SIDECAR_BYTES // 1_000_000} MB")
    taps, scales = (), np.ones(1)
    try:
        with np.load(path, allow_pickle=False) as data:
            fmt = data["format"] if "format" in data.files else None
            fmt = str(fmt) if fmt is not None and fmt.dtype.kind == "U" and fmt.shape == () else None
            if fmt not in FORMATS:
                raise _refuse(name, f"it is not in a {' or '.join(FORMATS)} format")
            if fmt == FORMAT:
                taps, scales = _format_3_layout(name, data)
                keys = [_segment_keys(i) for i in range(len(scales))]
                expected = {"format", "feature_norm", "taps", "scales", *(k for seg in keys for k in seg)}
            else:
                keys = [_NUMBERS]
                expected = set(_ARRAYS[fmt])
            if set(data.files) != expected:
                raise _refuse(name, "it does not hold exactly the expected arrays")
            norm = data["feature_norm"] if "feature_norm" in expected else None
            segments_raw = [dict(zip(_NUMBERS, (data[k] for k in seg), strict=True)) for seg in keys]
    except CardError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):  # allow_pickle=False refuses object arrays here
        raise _refuse(name, "it is not a plain-number .npz file") from None
    feature_norm = "none"
    if norm is not None:
        if norm.dtype.kind != "U" or norm.shape != () or str(norm) not in FEATURE_NORMS:
            raise _refuse(name, f"'feature_norm' must be one of {', '.join(FEATURE_NORMS)}")
        feature_norm = str(norm)
    stats = GateStats(tuple(_check_segment(name, raw, feature_norm) for raw in segments_raw), taps,
                      tuple(float(s) for s in scales))
    if feature_dim is not None and stats.feature_dim != feature_dim:
        raise _refuse(name, f"it describes {stats.feature_dim} features but the model has {feature_dim}")
    return stats
