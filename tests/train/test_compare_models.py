"""python -m dermascan.train.compare_models: real tiny models through the engine, real JPEG files, a split CSV."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
from shared_data import HAM_LABELS
from tiny_models import save_tiny_lesion_model

from dermascan.train.compare_models import main


def _dataset(root, n: int = 28):
    """``root/images/*.jpg`` and a split CSV (val and test parts, two images per lesion)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        image_id = f"ISIC_{i:07d}"
        cv2.imwrite(str(root / "images" / f"{image_id}.jpg"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        rows.append({"image_id": image_id, "lesion_id": f"HAM_{i // 2:07d}", "dx": HAM_LABELS[i % 7],
                     "split": "val" if i < n - 6 else "test"})
    split = root / "split.csv"
    pd.DataFrame(rows).to_csv(split, index=False)
    return split


def test_compares_each_model_with_the_first_on_validation(tmp_path, capsys):
    split = _dataset(tmp_path / "data")
    first = save_tiny_lesion_model(tmp_path / "a")
    second = save_tiny_lesion_model(tmp_path / "b", rescaling=True)
    out = tmp_path / "result.json"
    code = main(["--models", str(first), str(first), str(second), "--split", str(split), "--data",
                 str(tmp_path / "data"), "--resamples", "50", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "(val, n = 22)" in printed and "mean of all" in printed and "paired, lesion-grouped" in printed
    result = json.loads(out.read_text())
    assert [r["model"] for r in result["models"]] == [str(first), str(first), str(second), "mean of all"]
    same = result["paired"][str(first)]["balanced_accuracy"]
    assert same["difference"] == same["low"] == same["high"] == 0.0  # a model against itself
    other = result["paired"][str(second)]["balanced_accuracy"]
    assert other["a"] == result["models"][0]["balanced_accuracy"]
    assert other["b"] == result["models"][2]["balanced_accuracy"]


def test_models_with_different_labels_are_refused_in_one_line(tmp_path, capsys):
    split = _dataset(tmp_path / "data")
    first = save_tiny_lesion_model(tmp_path / "a")
    renamed = save_tiny_lesion_model(tmp_path / "b", card={"labels": [f"c{i}" for i in range(7)]})
    code = main(["--models", str(first), str(renamed), "--split", str(split), "--data", str(tmp_path / "data")])
    assert code == 2
    assert capsys.readouterr().out.strip().count("\n") == 0
