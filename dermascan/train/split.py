"""The fixed train/validation/test split, stored as ``split.csv`` so every number reproduces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


def make_split(labels: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Stratified 70/15/15 split of ``labels`` (image_id, dx) into a frame with a ``split`` column."""
    frame = labels[["image_id", "dx"]].sort_values("image_id").reset_index(drop=True)
    holdout = SPLIT_FRACTIONS["val"] + SPLIT_FRACTIONS["test"]
    # Tiny subsets (tests) may have classes with a single image: stratify only when it is possible.
    stratify = frame["dx"] if frame["dx"].value_counts().min() >= 4 else None
    train, rest = train_test_split(frame, test_size=holdout, random_state=seed, stratify=stratify)
    rest_stratify = rest["dx"] if stratify is not None else None
    val, test = train_test_split(
        rest, test_size=SPLIT_FRACTIONS["test"] / holdout, random_state=seed, stratify=rest_stratify
    )
    parts = [train.assign(split="train"), val.assign(split="val"), test.assign(split="test")]
    return pd.concat(parts).sort_values("image_id").reset_index(drop=True)


def load_or_make_split(labels: pd.DataFrame, path: Path, seed: int) -> pd.DataFrame:
    """Read the split at ``path`` when it covers ``labels``; otherwise create it and save it there."""
    path = Path(path)
    if path.is_file():
        split = pd.read_csv(path, dtype=str)
        missing = set(labels["image_id"]) - set(split["image_id"])
        if not missing:
            return split[split["image_id"].isin(set(labels["image_id"]))].reset_index(drop=True)
    split = make_split(labels, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(path, index=False)
    return split


def split_sizes(split: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Image counts per split and class: ``{split: {"total": n, dx: n, ...}}``."""
    sizes: dict[str, dict[str, int]] = {}
    for name in SPLIT_FRACTIONS:
        part = split[split["split"] == name]
        sizes[name] = {"total": len(part), **{k: int(v) for k, v in sorted(part["dx"].value_counts().items())}}
    return sizes
