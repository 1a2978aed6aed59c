"""The two training phases (frozen-backbone head warm-up, then fine-tuning) under a wall-clock budget."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import balanced_accuracy_score

from .architecture import set_trainable
from .data import inference_dataset


@dataclass
class PhaseResult:
    """What one phase did: epochs run, seconds, the per-epoch validation history and throughput."""

    name: str
    epochs: int = 0
    seconds: float = 0.0
    images_per_second: float | None = None
    history: list[dict] = field(default_factory=list)


def predict_probs(model: keras.Model, images: np.ndarray, batch_size: int = 64, scaling: str = "tf") -> np.ndarray:
    """Softmax probabilities for uint8 images, scaled by ``scaling`` outside the model (float64, (N, C))."""
    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]))
    return np.asarray(model.predict(inference_dataset(images, batch_size, scaling), verbose=0), dtype=np.float64)


class LogitAdjustedLoss(keras.losses.Loss):
    """Logit-adjusted softmax cross-entropy (Menon et al., ICLR 2021) on a softmax-output model.

    The loss adds ``tau * log(prior)`` to the logits (log of the predicted probabilities) before the
    cross-entropy, so the unadjusted output the model ships is fitted to a class-balanced posterior:
    rare classes are not drowned by nv, without re-weighting or re-sampling (balanced sampling memorised
    df in our probes). ``tau`` 0 is plain cross-entropy.
    """

    def __init__(self, prior: np.ndarray, tau: float, name: str = "logit_adjusted_ce"):
        super().__init__(name=name)
        prior = np.asarray(prior, dtype=np.float64)
        if not np.all(np.isfinite(prior)) or np.any(prior <= 0) or not np.isfinite(tau):
            raise ValueError("logit adjustment needs a finite, positive class prior and a finite tau")
        self.offset = tf.constant(tau * np.log(prior / prior.sum()), dtype=tf.float32)

    def call(self, y_true, y_pred):
        logits = tf.math.log(tf.clip_by_value(tf.cast(y_pred, tf.float32), 1e-7, 1.0)) + self.offset
        return keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)


class ValidationTracker(keras.callbacks.Callback):
    """Scores validation balanced accuracy after every epoch and remembers the best weights."""

    def __init__(self, images: np.ndarray, y: np.ndarray, phase: PhaseResult, log: Callable[[str], None],
                 scaling: str = "tf"):
        super().__init__()
        self.images, self.y, self.phase, self.log, self.scaling = images, y, phase, log, scaling
        self.best_score, self.best_weights = -1.0, None
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = time.perf_counter() - self._epoch_start
        probs = predict_probs(self.model, self.images, scaling=self.scaling)
        score = float(balanced_accuracy_score(self.y, probs.argmax(axis=1)))
        nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(self.y)), self.y], 1e-12, None))))
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", math.nan)),
            "val_balanced_accuracy": score,
            "val_nll": nll,
            "lr": lr,
            "seconds": time.perf_counter() - self._epoch_start,
            "train_seconds": train_seconds,
        }
        self.phase.history.append(row)
        self.log(
            f"  {self.phase.name} epoch {epoch + 1}: loss {row['loss']:.4f}  val bal.acc {score:.4f}  "
            f"val NLL {nll:.4f}  lr {lr:.2e}  {row['seconds']:.0f}s"
        )
        if score >= self.best_score:  # ties go to the later, longer-trained epoch
            self.best_score, self.best_weights = score, self.model.get_weights()


class BudgetedCosine(keras.callbacks.Callback):
    """Cosine learning-rate decay over as many epochs as fit before ``deadline`` (a perf_counter time).

    The epoch count is unknown until one epoch has been timed, so the schedule is per epoch and the
    plan is re-sized after every epoch (the machine is shared, so throughput drifts).
    """

    def __init__(self, base_lr: float, max_epochs: int, deadline: float, log: Callable[[str], None]):
        super().__init__()
        self.base_lr, self.max_epochs, self.deadline, self.log = base_lr, max_epochs, deadline, log
        self.planned = max_epochs
        self._durations: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        progress = min(epoch / max(self.planned, 1), 1.0)
        self.model.optimizer.learning_rate.assign(self.base_lr * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def on_epoch_end(self, epoch, logs=None):
        self._durations.append(time.perf_counter() - self._start)
        # Use the slower of the last epoch and the mean so a burst of free CPU does not over-commit.
        per_epoch = max(self._durations[-1], float(np.mean(self._durations)))
        fit = epoch + 1 + int(max(0.0, self.deadline - time.perf_counter()) // per_epoch)
        new_plan = min(self.planned, fit)
        if new_plan != self.planned:
            self.log(f"  time budget: fine-tuning resized from {self.planned} to {new_plan} epochs "
                     f"({per_epoch:.0f}s/epoch)")
            self.planned = new_plan
        if epoch + 1 >= self.planned:
            self.model.stop_training = True


@dataclass
class FitConfig:
    """Hyper-parameters of one training recipe."""

    epochs_head: int = 2
    epochs_finetune: int = 30
    batch_size: int = 32
    head_lr: float = 1e-3
    finetune_lr: float = 3e-4
    finetune_from: str | None = None  # first backbone layer to unfreeze; None = the whole backbone
    train_bn: bool = False  # fine-tune the unfrozen backbone's BatchNorm layers too (batch statistics)
    class_weight_power: float = 0.5
    sampling_power: float = 0.0
    weight_decay: float = 1e-4
    backbone: str = "mnv2-0.35"  # a key of backbones.BACKBONES
    input_size: int = 224
    logit_adjust: float = 0.0  # tau of the logit-adjusted loss; 0 = plain cross-entropy
    ema: float | None = None  # EMA decay of the fine-tuned weights (validated and kept as EMA); None = off
    rrc_min_area: float | None = None  # random-resized-crop smallest area fraction; None = mild square zoom
    sog_prob: float = 0.0  # probability of Shades-of-Gray colour constancy as augmentation


def run_phase(
    model: keras.Model,
    name: str,
    train_ds: tf.data.Dataset,
    steps: int,
    epochs: int,
    optimizer: keras.optimizers.Optimizer,
    class_weight: dict[int, float] | None,
    val: tuple[np.ndarray, np.ndarray],
    log: Callable[[str], None],
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    loss: keras.losses.Loss | str = "sparse_categorical_crossentropy",
    scaling: str = "tf",
) -> PhaseResult:
    """Compile and fit one phase, keep its best-validation weights, and time it.

    With an EMA optimizer the EMA weights are swapped in before validation (so the tracker scores and
    keeps them) and swapped out again for the next epoch's training.
    """
    phase = PhaseResult(name)
    if epochs <= 0:
        return phase
    model.compile(optimizer=optimizer, loss=loss)
    tracker = ValidationTracker(val[0], val[1], phase, log, scaling)
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if getattr(optimizer, "use_ema", False) else []
    start = time.perf_counter()
    model.fit(
        train_ds,
        steps_per_epoch=steps,
        epochs=epochs,
        class_weight=class_weight,
        callbacks=[*ema, tracker, *(extra_callbacks or [])],
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
        verbose=0,
    )
    phase.seconds = time.perf_counter() - start
    phase.epochs = len(phase.history)
    train_time = sum(r["train_seconds"] for r in phase.history)
    phase.images_per_second = steps * phase.epochs * _batch_size(train_ds) / train_time if train_time else None
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
        best = max(phase.history, key=lambda r: (r["val_balanced_accuracy"], r["epoch"]))
        log(f"  {name}: kept epoch {best['epoch']} (val bal.acc {best['val_balanced_accuracy']:.4f})")
    return phase


def _batch_size(ds: tf.data.Dataset) -> int:
    return int(ds.element_spec[0].shape[0])


def train_two_phases(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    steps: int,
    class_weight: dict[int, float] | None,
    val: tuple[np.ndarray, np.ndarray],
    config: FitConfig,
    deadline: float,
    log: Callable[[str], None],
    loss: keras.losses.Loss | str = "sparse_categorical_crossentropy",
    scaling: str = "tf",
) -> list[PhaseResult]:
    """Warm up the head on a frozen backbone, then fine-tune the backbone until ``deadline``.

    BatchNorm stays frozen unless ``config.train_bn``.

    EMA (``config.ema``) applies to fine-tuning only: the head phase is too short for an average to help.
    """
    set_trainable(model, backbone=False)
    head = run_phase(
        model, "head", train_ds, steps, config.epochs_head,
        keras.optimizers.Adam(config.head_lr), class_weight, val, log, loss=loss, scaling=scaling,
    )
    set_trainable(model, backbone=True, from_layer=config.finetune_from, batch_norm=config.train_bn)
    schedule = BudgetedCosine(config.finetune_lr, config.epochs_finetune, deadline, log)
    ema = {"use_ema": True, "ema_momentum": config.ema} if config.ema else {}
    finetune = run_phase(
        model, "finetune", train_ds, steps, config.epochs_finetune,
        keras.optimizers.AdamW(config.finetune_lr, weight_decay=config.weight_decay, **ema), class_weight, val, log,
        extra_callbacks=[schedule], loss=loss, scaling=scaling,
    )
    return [head, finetune]
