"""A training run's output folder, read back: its Keras model, card, recipe, command, minutes and split file."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from ..config import REPO_ROOT
from ..errors import DermascanError
from ..model.card import ModelCard, read_card
from .export import MODEL_NAME
from .fitting import FitConfig
from .split import model_split_file

_TOTAL_LINE = re.compile(r"total wall time ([0-9.]+) min")


class TrainedRun:
    """One trained run: its Keras model, card and minutes (from its log's last line when there, else its card)."""

    def __init__(self, folder: Path):
        from ..model.loading import load_keras_file

        self.folder = Path(folder)
        model_path = self.folder / f"{MODEL_NAME}.keras"
        self.card: ModelCard = read_card(model_path.with_name(f"{MODEL_NAME}.card.json"))
        self.model, _ = load_keras_file(model_path)
        provenance = self.card.provenance or {}
        if not isinstance(provenance.get("recipe"), dict):
            raise DermascanError(f"{self.folder.name}: the card has no training recipe; train it with dermascan.train.")
        self.recipe: dict = provenance["recipe"]
        self.command = str(provenance.get("command", ""))
        self.training_minutes = float(provenance.get("training_minutes") or 0.0)
        self.total_minutes = float(provenance.get("total_minutes_incl_evaluation") or self.training_minutes)
        logs = [self.folder / name for name in ("train_log.txt", "probe_log.txt") if (self.folder / name).is_file()]
        totals = _TOTAL_LINE.findall(logs[0].read_text(encoding="utf-8")) if logs else []
        if totals:
            self.total_minutes = float(totals[-1])  # the card's figure stops before the member's own gate fit
        self.split_file = model_split_file(self.card, model_path, REPO_ROOT)

    def fit_config(self) -> FitConfig:
        """The run's recipe as a ``FitConfig`` (fields the card does not name keep their defaults)."""
        return FitConfig(**{f.name: self.recipe[f.name] for f in fields(FitConfig) if f.name in self.recipe})
