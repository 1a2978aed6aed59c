"""Head-to-head of backbones by a linear probe: frozen ImageNet features, one class-balanced linear head.

``python -m dermascan.train.linear_probe`` extracts global-average-pooled features once per backbone for
(a seeded, class-stratified subsample of) the train split and the whole validation split of
``model/split_v2.csv``, fits a class-balanced logistic regression on standardised features and reports
validation balanced accuracy, melanoma AUC and macro AUC. The test split is never read. It is the
cheapest fair comparison: same images, same head, no fine-tuning noise. It also times the forward pass
and a few fine-tuning steps of each backbone, to estimate what a full training run costs on this machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..config import TRAINING_DATA
from ..evaluation.metrics import classification_report
from ..model.card import HAM10000_LABELS, default_malignant
from .__main__ import default_weights
from .architecture import build_backbone, build_model, set_trainable
from .backbones import BACKBONES
from .data import inference_dataset, load_image_files
from .pipeline import SPLIT_V2


def _subsample(rows: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, the same fraction of every class (seeded); all rows when ``limit`` is None."""
    if limit is None or limit >= len(rows):
        return rows
    frac = limit / len(rows)
    parts = [g.sample(n=max(1, round(len(g) * frac)), random_state=seed) for _, g in rows.groupby("dx")]
    return pd.concat(parts).sort_values("image_id").reset_index(drop=True)


def extract_features(name: str, weights: Path | None, images: np.ndarray,
                     batch_size: int = 32) -> tuple[np.ndarray, float]:
    """Pooled features of ``images`` (uint8) through backbone ``name``, and images per second of the pass."""
    backbone = build_backbone(name, weights, images.shape[1:3])
    pooled = keras.Model(backbone.input, keras.layers.GlobalAveragePooling2D()(backbone.output))
    data = inference_dataset(images, batch_size, BACKBONES[name].scaling)
    pooled.predict(data.take(1), verbose=0)  # build and trace once, outside the timing
    start = time.perf_counter()
    features = pooled.predict(data, verbose=0)
    return np.asarray(features, dtype=np.float64), len(images) / (time.perf_counter() - start)


def finetune_rate(name: str, images: np.ndarray, steps: int = 8, batch_size: int = 32) -> float:
    """Images per second of fine-tuning steps (whole backbone trainable, BatchNorm frozen), as the recipe trains."""
    model = build_model(len(HAM10000_LABELS), None, 0.3, name, images.shape[1:3])
    set_trainable(model, backbone=True)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="sparse_categorical_crossentropy")
    x = np.asarray(inference_dataset(images[:batch_size], batch_size, BACKBONES[name].scaling).get_single_element())
    y = np.zeros(len(x), dtype=np.int64)
    model.train_on_batch(x, y)  # compile the step outside the timing
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def probe(train_x, train_y, val_x, val_y, c: float, seed: int) -> np.ndarray:
    """Validation probabilities of a class-balanced logistic regression on standardised features."""
    scaler = StandardScaler().fit(train_x)
    head = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    head.fit(scaler.transform(train_x), train_y)
    probs = np.zeros((len(val_x), len(HAM10000_LABELS)))
    probs[:, head.classes_] = head.predict_proba(scaler.transform(val_x))
    return probs


def main(argv: list[str] | None = None) -> int:
    """Run the linear-probe head-to-head and print one JSON line per backbone and C."""
    p = argparse.ArgumentParser(prog="python -m dermascan.train.linear_probe", description=__doc__)
    p.add_argument("--data", type=Path, default=TRAINING_DATA, help="ham10000_224/ (its parent holds both folders)")
    p.add_argument("--split", type=Path, default=SPLIT_V2)
    p.add_argument("--backbones", nargs="+", choices=sorted(BACKBONES), default=sorted(BACKBONES))
    p.add_argument("--train-limit", type=int, default=3000, help="class-stratified train subsample (None: all)")
    p.add_argument("--val-limit", type=int, default=None, help="class-stratified val subsample (smoke runs only)")
    p.add_argument("--c", type=float, nargs="+", default=[0.1, 1.0], help="inverse L2 strengths to report")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)

    split = pd.read_csv(args.split, dtype=str)
    train = _subsample(split[split["split"] == "train"], args.train_limit, args.seed)
    val = _subsample(split[split["split"] == "val"], args.val_limit, args.seed).reset_index(drop=True)
    root, size = args.data.parent, (args.input_size, args.input_size)
    t0 = time.perf_counter()
    images = {k: load_image_files([root / s / "images" / f"{i}.jpg" for s, i in zip(v["source"], v["image_id"])], size)
              for k, v in (("train", train), ("val", val))}
    print(f"decoded train {len(train)} / val {len(val)} images in {time.perf_counter() - t0:.0f}s", flush=True)
    labels = list(HAM10000_LABELS)
    y = {k: np.array([labels.index(d) for d in v["dx"]]) for k, v in (("train", train), ("val", val))}
    results = []
    for name in args.backbones:
        weights = default_weights(name, args.data)
        feats, rate = {}, []
        for part in ("train", "val"):
            feats[part], r = extract_features(name, weights, images[part])
            rate.append(r)
        train_rate = finetune_rate(name, images["val"])
        for c in args.c:
            probs = probe(feats["train"], y["train"], feats["val"], y["val"], c, args.seed)
            report = classification_report(list(val["dx"]), probs, labels, default_malignant(labels), {})
            row = {"backbone": name, "weights": weights.name, "C": c, "train_images": len(train),
                   "val_images": len(val), "val_balanced_accuracy": round(report["balanced_accuracy"], 4),
                   "val_melanoma_auc": round(report["melanoma_auc"], 4), "val_macro_auc": round(report["macro_auc"], 4),
                   "val_malignant_auc": round(report["malignant"]["auc"], 4),
                   "val_recall": {k: round(v["recall"], 3) for k, v in report["per_class"].items()},
                   "forward_images_per_s": round(float(np.mean(rate)), 1),
                   "finetune_images_per_s": round(train_rate, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
