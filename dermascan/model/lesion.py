"""``LesionModel``: a loaded Keras model plus everything needed to use it correctly.

``load_model`` reads the file (Keras 3 or tf_keras), its card and any overrides, checks
them against each other, finds the Grad-CAM layer, compiles the probability + heatmap
pass and warms it up, so the first real request is as fast as every later one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..cam import METHODS, build_explain_model, find_target
from ..cam.target import single_io
from ..config import resolve_model_path
from ..errors import CardError, ModelLoadError
from ..gate import GateResult, judge
from ..gate.degenerate import degenerate_model
from ..gate.features import (
    NO_FEATURES,
    PENULTIMATE,
    FeatureLayout,
    default_taps,
    feature_split,
    forward_with_features,
    named_taps,
)
from ..gate.ood import GateStats, load_stats
from ..inference.analysis import Analysis
from ..inference.batch import DEFAULT_CHUNK
from ..inference.preprocessing import SCALINGS, prepare_batch
from ..inference.tta import explain_views, predict_views
from ..inference.views import check_views
from ..intake.images import read_image, sha256_hex
from ..render.numbers import percent
from . import introspect
from .card import HAM10000_LABELS, ModelCard, card_path_for, default_malignant, gate_file_for, read_card
from .loading import load_keras_file

log = logging.getLogger(__name__)

LOW_CONFIDENCE = 0.5


class LesionModel:
    """A skin-lesion classifier ready to predict and explain; share one per process."""

    def __init__(self, keras_model, card: ModelCard, *, loader: str, path: Path | None, card_file: Path | None,
                 cam_method: str | None = None):
        self.keras_model = keras_model
        self.loader = loader
        self.path = path
        self.card_file = card_file
        self.warnings: list[str] = []
        inp, out = single_io(keras_model)
        self.input_size = self._input_size(inp, card)
        self.card = self._complete_card(card.with_overrides(cam_method=cam_method), int(out.shape[-1]))
        self._check_tta()
        self.rescaling_layers = introspect.rescaling_layers(keras_model)
        self._check_preprocessing()
        self.target = find_target(keras_model, self.card.cam_layer)
        tensor, head, stripped = introspect.strip_final_softmax(keras_model, out)
        self.output_kind = "softmax" if stripped else None
        tensor, head, self.has_features = feature_split(keras_model, tensor, head, stripped)
        self.ood_stats, self.ood_threshold = self._read_gate()
        # The forward also hands out the gate's features (penultimate, then the taps' spatial means), so the
        # OOD score costs no extra pass. A format 3 sidecar names its taps; without one, the default layers are
        # tapped so that a gate can be fitted on them; a format 1 / 2 sidecar scores the penultimate ones only.
        taps = self._gate_taps()
        self.feature_layout = FeatureLayout(
            ((PENULTIMATE, int(tensor.shape[-1])), *((t.name, int(t.layer.output.shape[-1])) for t in taps))
            if self.has_features else ())
        forward = build_explain_model(keras_model, self.target, tensor, None, taps=tuple(taps))
        forward = forward_with_features(forward, head, self.has_features)
        self.degenerate: str | None = None
        if not stripped:
            self.output_kind = self._probe_output_kind(forward)
        logits = self.output_kind in ("softmax", "logits")
        self._cam = METHODS[self.card.cam_method](forward, self.input_size, logits, self.target is not None)
        # Other methods share the same forward pass; each is built (and traced) on first use, once per model.
        self._cams = {self.card.cam_method: self._cam}
        self._cam_args = (forward, self.input_size, logits, self.target is not None)
        self._cams_lock = threading.Lock()
        if self.target is None:
            self.warnings.append("No heatmap: the model has no layer with a spatial (4-D) output to explain.")
        self._warm_up()

    # -- construction helpers -------------------------------------------------------------
    def _input_size(self, inp, card: ModelCard) -> tuple[int, int]:
        shape = tuple(inp.shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise ModelLoadError(
                f"The model expects input of shape {shape[1:]}; only RGB images (H, W, 3) are supported."
            )
        model_hw = shape[1:3]
        if None not in model_hw:
            if card.input_size and tuple(card.input_size) != tuple(model_hw):
                raise CardError(f"The card says input size {card.input_size} but the model takes {list(model_hw)}.")
            return int(model_hw[0]), int(model_hw[1])
        if card.input_size:
            return int(card.input_size[0]), int(card.input_size[1])
        self.warnings.append("The model accepts any input size; 224x224 was assumed (set input_size in the card).")
        return 224, 224

    def _complete_card(self, card: ModelCard, n_outputs: int) -> ModelCard:
        labels = card.labels
        if labels is None:
            if n_outputs != len(HAM10000_LABELS):
                raise CardError(
                    f"The model has {n_outputs} outputs and no card names them; give its labels in output order "
                    "(card 'labels' or --labels)."
                )
            labels = list(HAM10000_LABELS)
            self.warnings.append(
                "Labels assumed: no model card, so the 7 outputs were taken as the HAM10000 classes in alphabetical "
                "order (akiec, bcc, bkl, df, mel, nv, vasc)."
            )
        if len(labels) != n_outputs:
            raise CardError(f"The model has {n_outputs} outputs but {len(labels)} labels were given.")
        malignant = card.malignant_labels
        if malignant is None:
            malignant = default_malignant(labels)
            if not malignant:
                self.warnings.append("No label counts as malignant, so the malignancy score is always 0.")
        return card.with_overrides(labels=list(labels), malignant_labels=list(malignant))

    def _check_tta(self) -> None:
        if self.card.tta:
            try:
                check_views(self.card.tta, self.input_size)
            except ValueError as exc:
                raise CardError(f"The card's tta cannot be used: {exc}") from None

    def _check_preprocessing(self) -> None:
        card = self.card
        if card.preprocessing is None:
            chosen = "raw" if self.rescaling_layers else "unit"
            self.card = card.with_overrides(preprocessing=chosen)
            why = "the model rescales inside" if self.rescaling_layers else "the most common choice"
            self.warnings.append(
                f"Preprocessing assumed: '{chosen}' ({why}); set it in the card if it was trained otherwise."
            )
        elif self.double_scales(card.preprocessing):
            self.warnings.append(
                f"Double scaling: preprocessing '{card.preprocessing}' rescales pixels, but the model already rescales "
                f"inside ({self.rescaling_layers[0]}); 'raw' is probably right."
            )

    def _probe_output_kind(self, forward) -> str:
        declared = self.card.output
        if declared != "auto":
            kind = declared
        else:
            out = np.asarray(forward(self.preprocess(self._probe_images()), training=False)[1], dtype=np.float64)
            sums_to_one = np.all(out >= -1e-6) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3)
            kind = "probabilities" if sums_to_one else "logits"
        if kind == "logits":
            self.warnings.append("The model's outputs are not probabilities (logits); softmax was applied.")
        return kind

    def _probe_images(self) -> list[np.ndarray]:
        """The load-time probe batch: black, mid-grey and noise (output kind, warm-up, degenerate check).

        No white frame: a model may legitimately fail on one image (that image's analysis is then an error), and
        only damage that shows on ordinary inputs should refuse the whole model at load.
        """
        rng = np.random.default_rng(0)
        return [np.zeros((*self.input_size, 3), np.uint8), np.full((*self.input_size, 3), 128, np.uint8),
                rng.integers(0, 256, size=(*self.input_size, 3), dtype=np.uint8)]

    def _read_gate(self) -> tuple[GateStats | None, float | None]:
        """The card's OOD statistics and threshold; a broken or hostile sidecar is a one-line ``CardError``."""
        path = gate_file_for(self.card, self.card_file)
        if path is None:
            self.warnings.append("Out-of-distribution detection is off for this model (no gate statistics; fit "
                                 "them with python -m dermascan fit-gate).")
            return None, None
        if not self.has_features:
            raise CardError(f"The card names gate statistics, but {NO_FEATURES}.")
        return load_stats(path), float(self.card.gate["threshold"])

    def _gate_taps(self) -> list:
        """The earlier layers whose activations the gate features carry (see ``__init__``)."""
        if not self.has_features:
            return []
        if self.ood_stats is None:
            return default_taps(self.keras_model, self.target)
        return named_taps(self.keras_model, self.target, self.ood_stats.taps)

    def _warm_up(self) -> None:
        """Trace both compiled functions (no user request pays for tracing) on the probe images, refuse a
        model whose numbers are already invalid there, and flag one whose outputs barely depend on them."""
        x = self.preprocess(self._probe_images())
        probs, features = self._cam.predict_with_features(x, 1.0)
        outputs = [probs, features]
        if self._cam.has_target:
            outputs.extend(self._cam.explain(x, np.full(len(x), -1, dtype=np.int32), 1.0)[:2])
        if not all(np.isfinite(out).all() for out in outputs):
            raise ModelLoadError(
                "The model produced invalid numbers (NaN or infinity) on test images when it was loaded; "
                "its weights may be damaged."
            )
        if self.ood_stats is not None and self.ood_stats.layout.widths != self.feature_layout.widths:
            raise CardError(f"The gate statistics describe {self.ood_stats.feature_dim} features but the model "
                            f"has {features.shape[1]}; fit them again for this model (python -m dermascan fit-gate).")
        self.degenerate = degenerate_model(probs)
        if self.degenerate:
            self.warnings.append(self.degenerate + " Its results are marked indeterminate.")

    # -- public API -----------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Class labels in output order."""
        return list(self.card.labels)

    @property
    def version(self) -> str:
        """The card's model version."""
        return self.card.version

    @property
    def cam_layer(self) -> str | None:
        """Dotted name of the Grad-CAM layer, or None when the model has none."""
        return self.target.name if self.target else None

    def describe(self) -> dict:
        """What the engine detected about the model (for the Model page and ``--json``)."""
        return {
            "name": self.card.name or (self.path.stem if self.path else "model"),
            "version": self.version,
            "loader": self.loader,
            "input_size": list(self.input_size),
            "n_outputs": len(self.labels),
            "output_kind": self.output_kind,
            "cam_layer": self.cam_layer,
            "cam_method": self.card.cam_method,
            "rescales_internally": bool(self.rescaling_layers),
            "rescaling_layers": list(self.rescaling_layers),
            "preprocessing": self.card.preprocessing,
            "resize": self.card.resize,
            "temperature": self.card.temperature,
            "tta": list(self.card.tta),
            "card_file": self.card_file.name if self.card_file else None,
            "degenerate": self.degenerate,
            "ood_detection": self.ood_stats is not None,
            "ood_threshold": self.ood_threshold,
            "ood_layers": [name for name, _ in self.feature_layout.segments] if self.ood_stats is not None else [],
            "warnings": list(self.warnings),
        }

    def double_scales(self, preprocessing: str) -> bool:
        """True when scaling ``preprocessing`` rescales pixels that the model also rescales inside."""
        return bool(self.rescaling_layers) and SCALINGS[preprocessing].rescales

    def preprocess(self, images: Sequence[np.ndarray], *, preprocessing: str | None = None,
                   resize: str | None = None) -> np.ndarray:
        """Resize and scale RGB uint8 images into a model-ready float32 batch."""
        return prepare_batch(images, self.input_size, preprocessing or self.card.preprocessing,
                             resize or self.card.resize)

    def views_for(self, tta: Sequence[str] | None) -> tuple[str, ...]:
        """The TTA views of a request: ``tta`` itself (``()``: none), or the card's when it is None."""
        return tuple(self.card.tta) if tta is None else tuple(tta)

    def _temperature(self, calibrated: bool) -> float:
        return float(self.card.temperature) if calibrated else 1.0

    def predict(self, images: Sequence[np.ndarray], *, calibrated: bool = True, batch_size: int = DEFAULT_CHUNK,
                preprocessing: str | None = None, resize: str | None = None,
                tta: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities (N, C) for RGB uint8 images; temperature-scaled unless ``calibrated=False``, averaged
        over the ``tta`` views (None: the card's)."""
        views = self.views_for(tta)
        out = np.empty((len(images), len(self.labels)), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = self.preprocess(chunk, preprocessing=preprocessing, resize=resize)
            if views:
                out[start : start + len(chunk)] = self.predict_prepared(x, calibrated=calibrated, views=views)
            else:
                out[start : start + len(chunk)] = self._cam.predict(x, self._temperature(calibrated))
        return out

    def predict_prepared(self, x: np.ndarray, *, calibrated: bool = True, with_features: bool = False,
                         views: Sequence[str] = ()):
        """Probabilities for an already preprocessed float32 batch; ``with_features``: ``(probs, features)``,
        the gate features (N, D) of the same compiled call. ``views`` (TTA) averages over them, all in
        one call; the default is the batch as it is, whatever the card says (callers pass ``views_for``)."""
        if views:
            probs, features = predict_views(self, x, views, calibrated=calibrated)
        else:
            probs, features = self._cam.predict_with_features(x, self._temperature(calibrated))
        return (probs, features) if with_features else probs

    def cam(self, method: str | None = None):
        """The compiled CAM pass of ``method`` (None: the card's), built and traced once per model."""
        method = method or self.card.cam_method
        if method not in self._cams:
            if method not in METHODS:
                raise CardError(f"Unknown CAM method '{method}'; choose one of: {', '.join(METHODS)}.")
            with self._cams_lock:  # sessions share the model: two first uses must not trace twice
                if method not in self._cams:
                    self._cams[method] = METHODS[method](*self._cam_args)
        return self._cams[method]

    def explain_prepared(self, x: np.ndarray, class_index: Sequence[int] | None = None, *, calibrated: bool = True,
                         with_features: bool = False, cam_method: str | None = None, views: Sequence[str] = ()):
        """``(probs, heatmaps, explained class index)`` for a preprocessed batch, in one compiled call of
        ``cam_method``'s pass (None: the card's); ``with_features`` adds the gate features (N, D) of the
        same call as a fourth item. ``views`` as in ``predict_prepared`` (heatmaps back in the batch's
        orientation)."""
        if views:
            out = explain_views(self, x, views, class_index, calibrated=calibrated, cam_method=cam_method)
        else:
            idx = np.full(len(x), -1, dtype=np.int32) if class_index is None else np.asarray(class_index, np.int32)
            out = self.cam(cam_method).explain_with_features(x, idx, self._temperature(calibrated))
        return out if with_features else out[:3]

    def infer_prepared(self, x: np.ndarray, class_index: Sequence[int] | None = None, *, with_cam: bool = True,
                       cam_method: str | None = None, views: Sequence[str] = ()):
        """``(probs, heatmaps or None, explained class index, features)`` for a preprocessed batch: the CAM pass
        when ``with_cam`` and the model has a layer to explain, else the prediction-only pass (the explained index
        is then the top class); ``views`` as in ``predict_prepared``."""
        if with_cam and self.target is not None:
            return self.explain_prepared(x, class_index, with_features=True, cam_method=cam_method, views=views)
        probs, features = self.predict_prepared(x, with_features=True, views=views)
        return probs, None, np.argmax(probs, axis=1), features

    def ood_scores(self, features: np.ndarray) -> np.ndarray | None:
        """OOD scores (N,) of gate features (``feature_layout``), or None when OOD detection is off for this model."""
        return None if self.ood_stats is None else self.ood_stats.scores(features)

    def gate(self, image: np.ndarray, probs: np.ndarray, features: np.ndarray | None = None, *,
             preprocessing: str | None = None, resize: str | None = None) -> GateResult:
        """The input gate's verdict for one image; without ``features`` they are computed (one extra pass)."""
        score = None
        if self.ood_stats is not None:
            if features is None or np.size(features) == 0:
                x = self.preprocess([image], preprocessing=preprocessing, resize=resize)
                features = self.predict_prepared(x, with_features=True)[1][0]
            score = float(self.ood_scores(np.asarray(features)[None, :])[0])
        return judge(image, probs, ood_score=score, ood_threshold=self.ood_threshold, degenerate=self.degenerate)

    def class_index(self, label: str | None) -> int:
        """Output index of ``label``; -1 (the top class) for None."""
        if label is None:
            return -1
        if label not in self.labels:
            raise CardError(f"Unknown class '{label}'; the model's classes are: {', '.join(self.labels)}.")
        return self.labels.index(label)

    def analyze(self, image: bytes | np.ndarray, *, class_label: str | None = None, name: str | None = None,
                preprocessing: str | None = None, resize: str | None = None, cam_method: str | None = None,
                tta: Sequence[str] | None = None) -> Analysis:
        """Full analysis of one image (bytes are decoded safely; arrays must be RGB uint8)."""
        return self.analyze_many([image], class_label=class_label, names=[name], preprocessing=preprocessing,
                                 resize=resize, cam_method=cam_method, tta=tta)[0]

    def analyze_many(self, images: Sequence[bytes | np.ndarray], *, class_label: str | None = None,
                     names: Sequence[str | None] | None = None, preprocessing: str | None = None,
                     resize: str | None = None, hashes: Sequence[str] | None = None,
                     cam_method: str | None = None, tta: Sequence[str] | None = None) -> list[Analysis]:
        """Analyses of several images in one compiled call (decoding errors raise ``InvalidImage``).

        ``hashes`` gives the SHA-256 of the uploaded bytes when ``images`` are already decoded arrays;
        without it an array is identified by the hash of its pixels. ``tta``: the views averaged over
        (None: the card's, ``()``: none).
        """
        start = time.perf_counter()
        decoded, computed = [], []
        for image in images:
            if isinstance(image, (bytes, bytearray, memoryview)):
                data = bytes(image)
                decoded.append(read_image(data))
                computed.append(sha256_hex(data) if hashes is None else None)
            else:
                array = np.ascontiguousarray(image, dtype=np.uint8)
                decoded.append(array)
                computed.append(sha256_hex(array.tobytes()) if hashes is None else None)
        hashes = computed if hashes is None else list(hashes)
        preprocessing = preprocessing or self.card.preprocessing
        resize = resize or self.card.resize
        x = self.preprocess(decoded, preprocessing=preprocessing, resize=resize)
        idx = [self.class_index(class_label)] * len(decoded)
        views = self.views_for(tta)
        probs, cams, chosen, features = self.explain_prepared(x, idx, with_features=True, cam_method=cam_method,
                                                              views=views)
        elapsed_ms = (time.perf_counter() - start) * 1000.0 / max(len(decoded), 1)
        names = list(names) if names is not None else [None] * len(decoded)
        return [
            self.make_analysis(decoded[i], probs[i], cams[i] if self.target else None, int(chosen[i]),
                               sha256=hashes[i], name=names[i], preprocessing=preprocessing, resize=resize,
                               processing_time_ms=elapsed_ms, features=features[i], cam_method=cam_method,
                               tta=views)
            for i in range(len(decoded))
        ]

    def make_analysis(self, image: np.ndarray, probs: np.ndarray, heatmap: np.ndarray | None, explained: int, *,
                      sha256: str, name: str | None, preprocessing: str | None = None, resize: str | None = None,
                      processing_time_ms: float = 0.0, heatmap_requested: bool = True,
                      features: np.ndarray | None = None, cam_method: str | None = None,
                      tta: Sequence[str] = ()) -> Analysis:
        """Wrap one image's raw outputs as an ``Analysis`` record with this model's context and gate verdict.

        ``features`` are the image's gate features from the same call; without them the gate
        computes them (one extra forward pass) when OOD detection is on. ``cam_method`` names the heatmap's
        method (None: the card's); ``tta`` the views the outputs were averaged over.
        """
        preprocessing = preprocessing or self.card.preprocessing
        resize = resize or self.card.resize
        warnings = list(self.warnings)
        if float(np.max(probs)) < LOW_CONFIDENCE:
            warnings.append(f"Low confidence: the top class has under {percent(LOW_CONFIDENCE, 0)} probability.")
        if preprocessing != self.card.preprocessing and self.double_scales(preprocessing):
            warnings.append(f"Double scaling: '{preprocessing}' rescales pixels the model also rescales inside.")
        return Analysis.build(
            image=image, probs=probs, heatmap=heatmap, explained_index=explained, card=self.card,
            sha256=sha256, name=name, preprocessing=preprocessing, resize=resize, cam_layer=self.cam_layer,
            warnings=warnings, processing_time_ms=processing_time_ms, heatmap_requested=heatmap_requested,
            gate=self.gate(image, probs, features, preprocessing=preprocessing, resize=resize),
            cam_method=(cam_method or self.card.cam_method) if heatmap is not None else None, tta=tuple(tta),
        )


def load_model(path: str | Path | None = None, *, card: str | Path | None = None, cam_method: str | None = None,
               trust_code: bool = False, **overrides) -> LesionModel:
    """Load a ``.keras`` / ``.h5`` model with its card (sidecar JSON or ``card=``) and overrides.

    ``path=None`` means ``$DERMASCAN_MODEL`` or the bundled model. Overrides are card
    fields (``labels=[...]``, ``preprocessing="tf"``, ``cam_layer="conv5"``...); ``cam_method``
    (one of ``cam.METHOD_NAMES``) overrides the card's too. A file whose
    layers carry code (``Lambda``, custom classes) is refused unless ``trust_code=True``.
    """
    model_path = resolve_model_path(path)
    keras_model, loader = load_keras_file(model_path, trust_code=trust_code)
    card_file = Path(card) if card is not None else card_path_for(model_path)
    base = read_card(card_file) if card_file is not None else ModelCard()
    merged = base.with_overrides(**overrides)
    log.info("Loaded model %s with %s", model_path.name, loader)
    return LesionModel(keras_model, merged, loader=loader, path=model_path, card_file=card_file,
                       cam_method=cam_method)
