"""The fixed train/validation/test splits, stored as CSV files so every number reproduces.

``split.csv`` (v1): the 5,984 one-image-per-lesion images of ``ham10000_224/``, stratified 70/15/15.
``split_v2.csv``: all 10,015 images of ``ham10000_full_200x150/``, grouped by lesion (every image of a
lesion in one split). A lesion that v1 placed keeps v1's split, so the bundled model can be measured on
the v2 test split without having trained on any of its lesions; the 1,486 lesions new to v2 are split
70/15/15 stratified by the lesion's class. Each row names the folder to read: ``ham10000_224`` when that
set has the image (sharper), else ``ham10000_full_200x150``. Both are whole 600x450 frames (squashed to
224x224, or kept 4:3 at 200x150), so squash-resizing either to the model input gives the same geometry:
the card's ``resize: squash`` holds for both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


def image_paths(rows: pd.DataFrame, data_dir: Path) -> list[Path]:
    """Image files of split rows: ``<data_dir>/images`` (v1), or each row's ``source`` folder beside it (v2)."""
    if "source" in rows.columns:
        return [Path(data_dir).parent / src / "images" / f"{i}.jpg" for src, i in zip(rows["source"], rows["image_id"])]
    return [Path(data_dir) / "images" / f"{i}.jpg" for i in rows["image_id"]]


def model_split_file(card, model_path: Path, repo_root: Path) -> Path:
    """The split file a model was trained and evaluated on: the card's ``provenance.split_file`` (relative to
    the repository; when that file is not there, e.g. the run was made in another checkout, the copy of the same
    name its run wrote beside the model), else ``split.csv`` beside the model."""
    named = (getattr(card, "provenance", None) or {}).get("split_file")
    if isinstance(named, str) and named:
        path = Path(named)
        if path.is_absolute():
            return path
        here, beside = Path(repo_root) / path, Path(model_path).parent / path.name
        return beside if not here.is_file() and beside.is_file() else here
    return Path(model_path).parent / "split.csv"


def split_part(split_path: Path, part: str, data_dir: Path) -> tuple[list[Path], pd.DataFrame]:
    """``(image paths, rows)`` of one part ("train", "val" or "test") of a split file, in file order."""
    rows = pd.read_csv(split_path, dtype=str)
    rows = rows[rows["split"] == part].reset_index(drop=True)
    return image_paths(rows, data_dir), rows


def model_split_images(model, part: str, data_dir: Path | None = None) -> tuple[list[Path], pd.DataFrame]:
    """``(image paths, rows)`` of one part of the split a loaded ``LesionModel`` was trained and evaluated on."""
    from ..config import REPO_ROOT, TRAINING_DATA

    split = model_split_file(model.card, model.path, REPO_ROOT)
    return split_part(split, part, data_dir or TRAINING_DATA)


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


SOURCE_224 = "ham10000_224"
SOURCE_FULL = "ham10000_full_200x150"
V2_COLUMNS = ["image_id", "dx", "lesion_id", "split", "source"]


def make_lesion_split(full: pd.DataFrame, keep: pd.DataFrame | None, in_224: set[str], seed: int) -> pd.DataFrame:
    """Lesion-grouped split of ``full`` (image_id, dx, lesion_id); ``keep`` (image_id, split) fixes lesions it has.

    Lesions not fixed by ``keep`` are split 70/15/15 stratified by the lesion's class (seeded). Returns
    ``V2_COLUMNS`` sorted by image_id; ``source`` is ``SOURCE_224`` for ids in ``in_224``, else ``SOURCE_FULL``.
    """
    frame = full[["image_id", "dx", "lesion_id"]].sort_values("image_id").reset_index(drop=True)
    lesion_dx = frame.groupby("lesion_id")["dx"].first()
    fixed: dict[str, str] = {}
    if keep is not None:
        by_image = frame.set_index("image_id")["lesion_id"]
        for image_id, part in zip(keep["image_id"], keep["split"]):
            lesion = by_image.get(image_id)
            if lesion is not None and fixed.setdefault(lesion, part) != part:
                raise ValueError(f"lesion {lesion} is in two splits of the kept split")
    new = lesion_dx[~lesion_dx.index.isin(list(fixed))].sort_index()
    if len(new):
        fixed.update(make_split(pd.DataFrame({"image_id": new.index, "dx": new.values}), seed)
                     .set_index("image_id")["split"].to_dict())
    frame["split"] = frame["lesion_id"].map(fixed)
    frame["source"] = [SOURCE_224 if i in in_224 else SOURCE_FULL for i in frame["image_id"]]
    return frame[V2_COLUMNS]


def split_v2_from_data(data_root: Path, v1_split: Path | None, seed: int) -> pd.DataFrame:
    """``make_lesion_split`` over ``<data_root>/ham10000_full_200x150/labels.csv``, keeping ``v1_split``'s lesions."""
    full = pd.read_csv(Path(data_root) / SOURCE_FULL / "labels.csv", dtype=str)
    in_224 = set(pd.read_csv(Path(data_root) / SOURCE_224 / "labels.csv", dtype=str)["image_id"])
    keep = pd.read_csv(v1_split, dtype=str) if v1_split else None
    return make_lesion_split(full, keep, in_224, seed)


def main(argv: list[str] | None = None) -> int:
    """Write the v2 split (``python -m dermascan.train.split --out model/split_v2.csv``)."""
    from ..config import REPO_ROOT, TRAINING_DATA

    p = argparse.ArgumentParser(prog="python -m dermascan.train.split", description=main.__doc__)
    p.add_argument("--data-root", type=Path, default=TRAINING_DATA.parent)
    p.add_argument("--keep", type=Path, default=REPO_ROOT / "model" / "split.csv", help="v1 split to keep")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "model" / "split_v2.csv")
    args = p.parse_args(argv)
    split = split_v2_from_data(args.data_root, args.keep, args.seed)
    split.to_csv(args.out, index=False)
    print(", ".join(f"{k} {v['total']}" for k, v in split_sizes(split).items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
