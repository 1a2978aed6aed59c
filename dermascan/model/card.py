"""The model card: what a model's outputs mean and how to feed it.

A card is a JSON sidecar next to the model file (``<model stem>.card.json``, or
``card.json`` in the same folder). Every field is optional except where a model's
output size makes the HAM10000 default impossible; every field can also be overridden
by an argument (``load_model(path, labels=[...], preprocessing="tf", ...)``) or a CLI flag.
The schema is documented in the README ("Model card").
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cam import DEFAULT_METHOD, METHOD_NAMES
from ..errors import CardError
from ..inference.preprocessing import RESIZE_POLICIES, SCALINGS
from ..inference.views import TRANSFORMS

SCHEMA_VERSION = 1

HAM10000_LABELS = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
HAM10000_DISPLAY_NAMES = {
    "akiec": "Actinic keratosis / Bowen's disease (intraepithelial carcinoma)",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis (seborrhoeic keratosis, solar lentigo, LPLK)",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevus (mole)",
    "vasc": "Vascular lesion (angioma, angiokeratoma, pyogenic granuloma)",
}
DEFAULT_MALIGNANT = ("mel", "bcc", "akiec")
"""The HAM10000 labels that count as malignant unless a card or the user says otherwise."""
DEFAULT_THRESHOLDS = {"medium": 0.2, "high": 0.5}
OUTPUT_KINDS = ("auto", "probabilities", "logits")


def default_malignant(labels: list[str] | tuple[str, ...]) -> list[str]:
    """The ``DEFAULT_MALIGNANT`` labels that exist in ``labels`` (a custom label set may lack some)."""
    return [label for label in DEFAULT_MALIGNANT if label in labels]


@dataclass
class ModelCard:
    """Everything the engine needs to know about a model beyond its weights."""

    labels: list[str] | None = None
    display_names: dict[str, str] = field(default_factory=dict)
    malignant_labels: list[str] | None = None
    preprocessing: str | None = None  # None: decided from the model (raw if it rescales inside)
    resize: str = "squash"
    input_size: list[int] | None = None  # [height, width]; read from the model when absent
    temperature: float = 1.0
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    thresholds_note: str = ""  # the thresholds in words: how they were set and what they flag
    output: str = "auto"  # "probabilities", "logits" or "auto" (inspect the model)
    cam_layer: str | None = None
    cam_method: str = DEFAULT_METHOD  # one of cam.METHOD_NAMES
    # Test-time augmentation the engine averages over in every analysis (names of inference.views.TRANSFORMS,
    # e.g. ["identity", "hflip"]); [] none. Part of the model's validated behaviour, like its preprocessing.
    tta: list[str] = field(default_factory=list)
    name: str | None = None
    version: str = "unversioned"
    description: str = ""
    backbone: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    intended_use: str = ""
    limitations: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)  # {"file": "<stem>.gate.npz", "threshold": t, ...}; {}: off
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept for round trips

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from parsed JSON, keeping unknown keys in ``extra``."""
        if not isinstance(data, dict):
            raise CardError("The model card must be a JSON object.")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        if isinstance(kwargs.get("version"), (int, float)) and not isinstance(kwargs["version"], bool):
            kwargs["version"] = str(kwargs["version"])  # "version": 2 is a common way to write it
        extra = {k: v for k, v in data.items() if k not in known}
        # Only known field names reach the constructor, and wrong value types are CardErrors from validate().
        card = cls(**kwargs, extra=extra)
        card.validate()
        return card

    def to_dict(self) -> dict[str, Any]:
        """The card as a JSON-ready dict (unknown keys from the source file included)."""
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return data

    def with_overrides(self, **overrides: Any) -> ModelCard:
        """A copy with the given non-None fields replaced (argument and CLI overrides)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise CardError(f"Unknown model option(s): {', '.join(unknown)}.")
        changes = {k: v for k, v in overrides.items() if v is not None}
        card = dataclasses.replace(self, **changes)
        card.validate()
        return card

    def display_name(self, label: str) -> str:
        """Plain-language name of ``label`` (the label itself when the card has none)."""
        return self.display_names.get(label) or HAM10000_DISPLAY_NAMES.get(label, label)

    def validate(self) -> None:
        """Raise ``CardError`` with a one-line reason when a field has the wrong type or is out of range."""
        self._check_types()
        if self.labels is not None:
            if not self.labels or not all(isinstance(x, str) and x for x in self.labels):
                raise CardError("Labels must be a non-empty list of names.")
            if len(set(self.labels)) != len(self.labels):
                raise CardError("Labels must be unique.")
            if self.malignant_labels is not None:
                missing = [m for m in self.malignant_labels if m not in self.labels]
                if missing:
                    raise CardError(f"Malignant label(s) not among the labels: {', '.join(missing)}.")
        if self.preprocessing is not None and self.preprocessing not in SCALINGS:
            raise CardError(
                f"Unknown preprocessing '{self.preprocessing}'; choose one of: {', '.join(SCALINGS)}."
            )
        if self.resize not in RESIZE_POLICIES:
            raise CardError(f"Unknown resize policy '{self.resize}'; choose one of: {', '.join(RESIZE_POLICIES)}.")
        if self.output not in OUTPUT_KINDS:
            raise CardError(f"Unknown output kind '{self.output}'; choose one of: {', '.join(OUTPUT_KINDS)}.")
        if self.cam_method not in METHOD_NAMES:
            raise CardError(f"Unknown CAM method '{self.cam_method}'; choose one of: {', '.join(METHOD_NAMES)}.")
        _check_tta(self.tta)
        t = self.temperature
        if not (isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0):
            raise CardError("The calibration temperature must be a positive number.")
        medium, high = self.thresholds.get("medium"), self.thresholds.get("high")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (medium, high))
        if set(self.thresholds) != {"medium", "high"} or not numbers or not (0.0 <= medium <= high <= 1.0):
            raise CardError("Triage thresholds must be {'medium': m, 'high': h} with 0 <= m <= h <= 1.")
        _check_gate(self.gate)
        if self.input_size is not None and (
            len(self.input_size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.input_size)
        ):
            raise CardError("input_size must be [height, width] in pixels.")

    def _check_types(self) -> None:
        # A card comes from a user's file: a string where a list belongs must be a one-line error,
        # not a TypeError deep in the engine. The expected types are read from the annotations above.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, _field_types(f.name)) or isinstance(value, bool):
                raise CardError(f"The model card field '{f.name}' has the wrong type ({type(value).__name__}).")
        texts = [*(self.labels or []), *(self.malignant_labels or []), *self.display_names.values()]
        if not all(isinstance(text, str) for text in texts):
            raise CardError("Labels and display names in the model card must be text.")


def _check_tta(views: list) -> None:
    unknown = [v for v in views if not isinstance(v, str) or v not in TRANSFORMS]
    if unknown or len(set(views)) != len(views):
        raise CardError(f"The card's tta must be distinct view names, each one of: {', '.join(TRANSFORMS)}.")


def _check_gate(gate: dict[str, Any]) -> None:
    # The file name comes from a user's card: a plain name in the card's own folder, nothing that walks out of it.
    if not gate:
        return
    name, threshold = gate.get("file"), gate.get("threshold")
    if not isinstance(name, str) or not name.endswith(".npz") or Path(name).name != name or name.startswith("."):
        raise CardError("The card's gate 'file' must be the plain name of a .npz file beside the card.")
    if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold)
            and threshold > 0):
        raise CardError("The card's gate 'threshold' must be a positive number.")


def gate_file_for(card: ModelCard, card_file: Path | None) -> Path | None:
    """The gate statistics sidecar the card names (beside the card file), or None when the card has none."""
    if not card.gate or card_file is None:
        return None
    return Path(card_file).parent / card.gate["file"]


def _field_types(name: str) -> tuple[type, ...]:
    hint = typing.get_type_hints(ModelCard)[name]
    parts = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    found = tuple(typing.get_origin(part) or part for part in parts)
    return (*found, int) if float in found else found  # JSON writes 1.0 as 1


def card_path_for(model_path: Path) -> Path | None:
    """The sidecar card for ``model_path``: ``<stem>.card.json``, else ``card.json`` beside it."""
    for candidate in (model_path.with_name(model_path.stem + ".card.json"), model_path.parent / "card.json"):
        if candidate.is_file():
            return candidate
    return None


def read_card(path: Path) -> ModelCard:
    """Parse a card file; any problem becomes a ``CardError`` naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"The model card {Path(path).name} could not be read ({type(exc).__name__}).") from None
    return ModelCard.from_dict(data)


def write_card(card: ModelCard, path: Path) -> None:
    """Write ``card`` as pretty JSON (stable key order, UTF-8)."""
    Path(path).write_text(json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
