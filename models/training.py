"""Training pieces: augmentation, losses, validation scoring, learning curves.

Arrays are ``(N, S, S, 1)`` float32; images in [0, 1], masks in {0, 1}.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data import CLASS_NAMES
from .metrics import classification_report, overlap_scores, softmax

log = logging.getLogger(__name__)


def augment(image, mask, seed=None):
    """Ultrasound-plausible augmentation of a batch, applied jointly to image and mask.

    Left-right flips (laterality is arbitrary) but no up-down flips, because
    depth runs down the image; random zoom in/out, shift and mild aspect
    change; gain, contrast and gamma changes like those between scanners'
    presets; and speckle-like multiplicative noise.

    Parameters
    ----------
    image, mask : tf.Tensor
        ``(B, S, S, 1)`` float32.
    """
    b = tf.shape(image)[0]
    size = tf.shape(image)[1:3]
    both = tf.concat([image, mask], axis=-1)
    flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
    both = tf.where(flip, tf.reverse(both, axis=[2]), both)

    scale = tf.random.uniform([b], 0.75, 1.15)
    aspect = tf.exp(tf.random.uniform([b], -0.15, 0.15))
    h = scale * tf.sqrt(aspect)
    w = scale / tf.sqrt(aspect)
    y0 = tf.random.uniform([b]) * (1.0 - h)
    x0 = tf.random.uniform([b]) * (1.0 - w)
    boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
    both = tf.image.crop_and_resize(both, boxes, tf.range(b), size, extrapolation_value=0.0)

    img, msk = both[..., :1], both[..., 1:]
    msk = tf.cast(msk > 0.5, tf.float32)
    gain = tf.random.uniform([b, 1, 1, 1], -0.08, 0.08)
    contrast = tf.random.uniform([b, 1, 1, 1], 0.75, 1.3)
    gamma = tf.exp(tf.random.uniform([b, 1, 1, 1], -0.35, 0.35))
    mean = tf.reduce_mean(img, axis=[1, 2, 3], keepdims=True)
    img = (img - mean) * contrast + mean + gain
    img = tf.clip_by_value(img, 0.0, 1.0) ** gamma
    speckle = 1.0 + tf.random.normal(tf.shape(img)) * tf.random.uniform([b, 1, 1, 1], 0, 0.12)
    img = tf.clip_by_value(img * speckle, 0.0, 1.0)
    return img, msk


def make_dataset(images, masks, labels, batch_size, training, seed=0):
    """A ``tf.data`` pipeline giving ``({image, hint, use_hint}, {seg, cls})`` batches.

    In training, half the batch sees its true mask as the classification
    hint, so the classifier learns to use a radiologist's outline as well as
    its own.
    """
    ds = tf.data.Dataset.from_tensor_slices((images, masks, labels))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=training)

    def _to_inputs(img, msk, lab):
        if training:
            img, msk = augment(img, msk)
            use = tf.cast(tf.random.uniform([tf.shape(img)[0], 1]) < 0.5, tf.float32)
        else:
            use = tf.zeros([tf.shape(img)[0], 1])
        hint = msk * tf.reshape(use, [-1, 1, 1, 1])
        return {"image": img, "hint": hint, "use_hint": use}, {"seg": msk, "cls": lab}

    return ds.map(_to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def make_losses(class_weights, label_smoothing=0.0):
    """Return ``(seg_loss, cls_loss)``.

    Segmentation: binary cross-entropy plus a soft Dice over the whole batch
    (so images of normal breasts, with empty masks, still count). Classification:
    class-weighted softmax cross-entropy on logits, with optional label
    smoothing: the head memorises 495 training images within a few dozen
    epochs, and smoothed targets keep its logits from growing without bound.
    """
    cw = tf.constant(np.asarray(class_weights, np.float32))
    k = len(class_weights)

    def seg_loss(y_true, y_pred):
        y_pred = tf.clip_by_value(y_pred, 1e-6, 1 - 1e-6)
        bce = tf.reduce_mean(keras.losses.binary_crossentropy(y_true, y_pred))
        inter = tf.reduce_sum(y_true * y_pred)
        dice = 1.0 - (2.0 * inter + 1.0) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + 1.0)
        return bce + dice

    def cls_loss(y_true, y_pred):
        y = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        target = tf.one_hot(y, k) * (1.0 - label_smoothing) + label_smoothing / k
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=y_pred)
        return tf.reduce_mean(ce * tf.gather(cw, y))

    return seg_loss, cls_loss


def predict_arrays(model, images, batch_size=16):
    """Run the network on ``(N, S, S, 1)`` images with no hint.

    Returns ``(seg (N, S, S), logits (N, K))``.
    """
    n = len(images)
    out = model.predict(
        {"image": images, "hint": np.zeros_like(images), "use_hint": np.zeros((n, 1), np.float32)},
        batch_size=batch_size,
        verbose=0,
    )
    return out["seg"][..., 0], out["cls"]


def score_predictions(seg, logits, masks, labels, threshold=0.5):
    """Validation summary at network resolution: lesion Dice, normal-empty share, accuracy."""
    dice, empty = [], []
    for p, m, y in zip(seg, masks, labels, strict=True):
        pred = p >= threshold
        if y == 0:
            empty.append(not pred.any())
        else:
            dice.append(overlap_scores(pred, m[..., 0] > 0.5)["dice"])
    rep = classification_report(softmax(logits), labels, CLASS_NAMES)
    return {
        "dice": float(np.mean(dice)) if dice else float("nan"),
        "normal_empty": float(np.mean(empty)) if empty else float("nan"),
        "accuracy": rep["accuracy"],
        "malignant_recall": rep["recall"]["malignant"],
        "macro_f1": rep["macro_f1"],
    }


class ValidationScore(keras.callbacks.Callback):
    """Adds ``val_dice``, ``val_acc``, ``val_normal_empty`` and ``val_score`` to the logs.

    ``val_score = val_dice + val_macro_f1``: one number for checkpointing that
    rewards both heads. Place it first in the callback list so that the
    checkpoint and early stopping see these keys.
    """

    def __init__(self, images, masks, labels):
        super().__init__()
        self.images, self.masks, self.labels = images, masks, labels

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seg, logits = predict_arrays(self.model, self.images)
        s = score_predictions(seg, logits, self.masks, self.labels)
        logs.update({
            "val_dice": s["dice"], "val_acc": s["accuracy"], "val_macro_f1": s["macro_f1"],
            "val_normal_empty": s["normal_empty"], "val_malignant_recall": s["malignant_recall"],
            "val_score": np.nan_to_num(s["dice"]) + s["macro_f1"],
        })
        log.info("epoch %d: val dice %.3f acc %.3f f1 %.3f normal-empty %.2f",
                 epoch + 1, s["dice"], s["accuracy"], s["macro_f1"], s["normal_empty"])


def plot_learning_curves(history_csv, out_png):
    """Plot losses and validation scores from a Keras ``CSVLogger`` file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    ep = [int(r["epoch"]) + 1 for r in rows]

    def col(k):
        return [float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k in ("loss", "seg_loss", "cls_loss"):
        if k in rows[0]:
            a.plot(ep, col(k), label=f"train {k}")
    a.set_xlabel("epoch"), a.set_title("training loss"), a.legend()
    for k in ("val_dice", "val_acc", "val_macro_f1", "val_normal_empty"):
        if k in rows[0]:
            b.plot(ep, col(k), label=k)
    b.set_xlabel("epoch"), b.set_ylim(0, 1), b.set_title("validation"), b.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
