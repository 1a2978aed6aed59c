"""``explain-check``: do a model's heatmaps depend on the model, and does its prediction depend on them?

Two checks over a folder of images, per CAM method:

1. **Model randomisation** (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): the maps of a copy
   of the model whose weights are randomised must differ from the real model's maps, or the method shows
   the image's structure, not what the model learned. Measured as the mean absolute Spearman rank
   correlation between the two maps of each image (same input, same explained class); the check passes
   below ``SANITY_MAX_CORRELATION``.
   Images whose randomised map is constant are left out and counted: an all-zero map would "differ"
   trivially.
2. **Faithfulness** (``faithfulness.py``): mean deletion AUC, insertion AUC and drop, beside the same
   numbers for a seeded random map.

The randomised copy is a ``clone_model`` of the Keras model: its own variables (nested bases
included), re-initialised as when the model was first built, from a fixed seed so two runs give the
same copy (Adebayo's full re-initialisation). Shuffling the learned values instead was tried: on the
bundled MobileNetV2 the shuffled batch-norm statistics silence every activation, so every map is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DermascanError
from .faithfulness import RANDOM_SEED, faithfulness, random_baseline

SANITY_MAX_CORRELATION = 0.5  # mean |Spearman| between real and randomised maps below this: PASS
DEFAULT_LIMIT = 50  # images an explain-check reads at most
_CHUNK = 16  # images per compiled call in the randomisation check


@dataclass(frozen=True)
class RandomisationCheck:
    """Mean |rank correlation| between the maps of a model and of its randomised copy; passed when low."""

    correlation: float | None  # None when every randomised map was constant
    passed: bool
    n_images: int  # images compared
    empty_maps: int  # images left out: the randomised map was constant


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (1.0 for two constant maps, 0.0 for one)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    flat_a, flat_b = ra.std() == 0, rb.std() == 0
    if flat_a or flat_b:  # a constant map has no ranking: equal to another constant one, unrelated to the rest
        return 1.0 if flat_a and flat_b else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def randomised_copy(keras_model, loader: str, *, seed: int = RANDOM_SEED):
    """A clone of ``keras_model`` (``loader`` ``keras`` or ``tf_keras``) with freshly initialised weights."""
    if loader == "tf_keras":
        import tf_keras as lib
    else:
        from .._tf import keras as lib
    lib.utils.set_random_seed(seed)  # initialisers without a seed of their own draw from the global one
    clone = lib.models.clone_model(keras_model)
    # A nested model reused by reference would share variables: the check would then compare the
    # model with itself, and anything written into the copy would land in the real model.
    originals = {id(v) for v in keras_model.weights}
    if any(id(v) in originals for v in clone.weights):
        raise DermascanError("The model could not be copied for the randomisation check (it shares weights).")
    learned, fresh = keras_model.get_weights(), clone.get_weights()
    if [w.shape for w in fresh] != [w.shape for w in learned]:
        raise DermascanError("The model could not be copied for the randomisation check (its copy differs).")
    # A kernel the clone carried over instead of re-initialising (a layer rebuilt with its weights)
    # would keep what the model learned: its values are shuffled, so no learned kernel survives.
    rng = np.random.default_rng(seed)
    clone.set_weights([rng.permutation(w.ravel()).reshape(w.shape) if w.ndim >= 2 and np.array_equal(w, old) else w
                       for w, old in zip(fresh, learned)])
    return clone


def randomised_model(model, *, seed: int = RANDOM_SEED):
    """A ``LesionModel`` over a ``randomised_copy`` of ``model``'s network, with ``model``'s card and context."""
    from ..model.lesion import LesionModel

    return LesionModel(randomised_copy(model.keras_model, model.loader, seed=seed), model.card, loader=model.loader,
                       path=model.path, card_file=model.card_file)


def randomisation_check(model, randomised, images: Sequence[np.ndarray], method: str | None = None
                        ) -> RandomisationCheck:
    """Compare ``model``'s maps by ``method`` (None: the card's) with ``randomised``'s on ``images`` (each
    explaining ``model``'s top class).

    An image whose randomised map is constant (often all zero: random weights give no evidence) says
    nothing about the method and is left out; when every image is, the check does not pass.
    """
    if not images:
        raise DermascanError("No images to run the randomisation check on.")
    correlations = []
    for start in range(0, len(images), _CHUNK):
        x = model.preprocess(images[start : start + _CHUNK])
        _, maps, chosen = model.explain_prepared(x, cam_method=method)
        _, other, _ = randomised.explain_prepared(x, chosen, cam_method=method)
        if not (np.isfinite(maps).all() and np.isfinite(other).all()):
            raise DermascanError("The model produced invalid heatmaps (NaN or infinity) in the randomisation check.")
        correlations.extend(abs(rank_correlation(a, b)) for a, b in zip(maps, other) if np.ptp(b) > 0)
    mean = float(np.mean(correlations)) if correlations else None
    return RandomisationCheck(correlation=mean, passed=mean is not None and mean < SANITY_MAX_CORRELATION,
                              n_images=len(correlations), empty_maps=len(images) - len(correlations))


_MEASURES = ("deletion_auc", "insertion_auc", "drop")


def _means(results) -> dict:
    return {key: float(np.mean([getattr(r, key) for r in results])) for key in _MEASURES}


def explain_check(model, images: Sequence[np.ndarray], methods: Sequence[str], *, seed: int = RANDOM_SEED,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """The JSON-ready report of both checks for each method in ``methods`` over decoded RGB ``images``."""
    if not images:
        raise DermascanError("No readable images to check.")
    if model.target is None:
        raise DermascanError("The model has no layer to explain, so it has no heatmaps to check.")
    # One randomised model for every method: each method's pass is built on it (as on the model) once, on first use.
    shuffled = randomised_model(model, seed=seed)
    rows, random_results = [], None
    for done, method in enumerate(methods, start=1):
        sanity = randomisation_check(model, shuffled, images, method)
        # Single views (tta=()), whatever the card says: both checks perturb single views of the image.
        analyses = [a for start in range(0, len(images), _CHUNK)
                    for a in model.analyze_many(images[start : start + _CHUNK], cam_method=method, tta=())]
        if random_results is None:  # a random map does not depend on the method: measured once
            random_results = [random_baseline(model, a, seed=seed + i) for i, a in enumerate(analyses)]
        results = [faithfulness(model, a) for a in analyses]
        measured, baseline = _means(results), _means(random_results)
        rows.append({"method": method, "randomisation_correlation": sanity.correlation,
                     "randomisation_passed": sanity.passed, "randomisation_empty_maps": sanity.empty_maps, **measured,
                     "deletion_vs_random": measured["deletion_auc"] / baseline["deletion_auc"],
                     "by_class": _by_class([a.explained_label for a in analyses], results, random_results)})
        if progress is not None:
            progress(done, len(methods))
    return {"model": {"name": model.card.name, "version": model.version, "cam_layer": model.cam_layer},
            "n_images": len(images), "max_correlation": SANITY_MAX_CORRELATION, "methods": rows,
            "random_map": _means(random_results)}


def _by_class(labels: list[str], results, random_results) -> dict:
    """Deletion AUC against the random map's per explained class: a class the model also gives to an
    image with the lesion removed (plain skin) can hide a faithful map behind the average."""
    out = {}
    for label in sorted(set(labels)):
        chosen = [i for i, lab in enumerate(labels) if lab == label]
        ours = float(np.mean([results[i].deletion_auc for i in chosen]))
        rand = float(np.mean([random_results[i].deletion_auc for i in chosen]))
        out[label] = {"n": len(chosen), "deletion_auc": ours, "random_deletion_auc": rand,
                      "deletion_vs_random": ours / rand}
    return out


def read_images(images_dir: str | Path, labels_csv: str | Path | None, limit: int) -> tuple[list, list[str]]:
    """Up to ``limit`` decoded images of a folder (those the labels CSV lists, when given) and the unreadable names."""
    from ..intake.images import read_image_file
    from ..intake.labelsets import IMAGE_SUFFIXES, find_labeled_images, read_labels_csv

    folder = Path(images_dir)
    if labels_csv is not None:
        paths = find_labeled_images(folder, read_labels_csv(labels_csv)).paths
    elif folder.is_dir():
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        raise DermascanError(f"The images folder {folder.name} does not exist.")
    images, unreadable = [], []
    for path in paths:
        if len(images) >= limit:
            break
        try:
            images.append(read_image_file(path))
        except DermascanError:
            unreadable.append(path.name)
    return images, unreadable


def format_check(report: dict) -> str:
    """The report as a plain-text table."""
    lines = [f"{report['n_images']} images. Randomisation: maps of a re-initialised copy must differ "
             f"(PASS when the mean |Spearman| < {report['max_correlation']:.2f}). Deletion AUC: lower is better; "
             "insertion AUC: higher is better.",
             f"{'method':<12}{'rand. corr':>11}{'sanity':>8}{'deletion':>10}{'insertion':>11}{'drop':>7}"
             f"{'del/random':>12}"]
    for row in report["methods"]:
        corr = row["randomisation_correlation"]
        lines.append(f"{row['method']:<12}{'-' if corr is None else f'{corr:.2f}':>11}"
                     f"{'PASS' if row['randomisation_passed'] else 'FAIL':>8}{row['deletion_auc']:>10.3f}"
                     f"{row['insertion_auc']:>11.3f}{row['drop']:>7.0%}{row['deletion_vs_random']:>12.2f}")
    rnd = report["random_map"]
    lines.append(f"{'random map':<12}{'-':>11}{'-':>8}{rnd['deletion_auc']:>10.3f}{rnd['insertion_auc']:>11.3f}"
                 f"{rnd['drop']:>7.0%}{1.0:>12.2f}")
    for row in report["methods"]:
        classes = ", ".join(f"{label} {c['deletion_vs_random']:.2f} (n={c['n']})"
                            for label, c in row["by_class"].items())
        lines.append(f"{row['method']} deletion / random by explained class: {classes}")
    return "\n".join(lines)
