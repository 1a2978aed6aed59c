"""Out of distribution: class-conditional Mahalanobis distance on the model's penultimate features.

Lee et al. 2018 ("A simple unified framework for detecting out-of-distribution samples"): one Gaussian
per class with a shared covariance, the score is the distance to the nearest class mean. To keep the
statistics small (a 1280-wide MobileNetV2 feature would need a 6.5 MB precision matrix) they live in a
PCA subspace of ``k`` components, with a Ledoit-Wolf shrunk covariance there (scikit-learn); what the
subspace leaves out is scored too, as the residual energy relative to the training images', because
an image unlike every training image is often unlike them *outside* their main directions.

    score = min_c (z - mu_c)' P (z - mu_c) / k  +  |f - mean - W z|^2 / residual_scale,   z = W'(f - mean)

Both terms are about 1 for a typical training image. The features are L2-normalised first (``feature_norm``
"l2", the default of new fits): a ReLU network's pooled features are small for a near-blank page or a screenshot,
which puts them *near* the training mean by distance. On the bundled MobileNetV2-1.0, with the same
97th-percentile threshold on validation, raw features flagged 33% of the synthetic OOD set and normalised ones
100% (4.4% of the test split either way; ``benchmarks/ood_gate.py``). Format 1 sidecars (no ``feature_norm``)
keep raw features. The statistics are a sidecar ``.npz`` read as data only (``allow_pickle=False``), every
array checked for shape and finiteness; the threshold lives in the
model card's ``gate`` entry.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CardError

FORMAT = "dermascan-gate-2"
FORMATS = ("dermascan-gate-1", FORMAT)  # format 1: written before feature_norm existed (raw features)
FEATURE_NORMS = ("none", "l2")
DEFAULT_FEATURE_NORM = "l2"
DEFAULT_COMPONENTS = 64
DEFAULT_PERCENTILE = 97.0
MAX_SIDECAR_BYTES = 8_000_000
_NUMBERS = ("mean", "components", "class_means", "precision", "residual_scale")
_ARRAYS = {"dermascan-gate-1": ("format", *_NUMBERS), FORMAT: ("format", "feature_norm", *_NUMBERS)}


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

    def save(self, path: Path) -> None:
        """Write the statistics as an uncompressed ``.npz`` of plain float32 arrays (no pickles)."""
        with open(path, "wb") as fh:
            np.savez(fh, format=np.array(FORMAT), feature_norm=np.array(self.feature_norm),
                     mean=self.mean.astype(np.float32),
                     components=self.components.astype(np.float32),
                     class_means=self.class_means.astype(np.float32), precision=self.precision.astype(np.float32),
                     residual_scale=np.array(self.residual_scale, np.float64))


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


def load_stats(path: Path, feature_dim: int | None = None) -> OODStats:
    """Read a sidecar written by ``OODStats.save``; anything else (a pickle, wrong shapes, NaN) is a ``CardError``."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise _refuse(name, "it cannot be read") from None
    if size > MAX_SIDECAR_BYTES:
        raise _refuse(name, f"it is larger than {MAX_SIDECAR_BYTES // 1_000_000} MB")
    try:
        with np.load(path, allow_pickle=False) as data:
            fmt = data["format"] if "format" in data.files else None
            expected = _ARRAYS.get(str(fmt)) if fmt is not None and fmt.dtype.kind == "U" else None
            if expected is None:
                raise _refuse(name, f"it is not in a {' or '.join(FORMATS)} format")
            if set(data.files) != set(expected):
                raise _refuse(name, "it does not hold exactly the expected arrays")
            arrays = {key: data[key] for key in expected}
    except CardError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):  # allow_pickle=False refuses object arrays here
        raise _refuse(name, "it is not a plain-number .npz file") from None
    feature_norm = "none"
    if "feature_norm" in arrays:
        norm = arrays["feature_norm"]
        if norm.dtype.kind != "U" or norm.shape != () or str(norm) not in FEATURE_NORMS:
            raise _refuse(name, f"'feature_norm' must be one of {', '.join(FEATURE_NORMS)}")
        feature_norm = str(norm)
    numbers = {key: arrays[key] for key in _NUMBERS}
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
    if feature_dim is not None and mean.shape[0] != feature_dim:
        raise _refuse(name, f"it describes {mean.shape[0]} features but the model has {feature_dim}")
    return OODStats(mean, comp, means, prec, float(scale), feature_norm)
