"""Train the lesion classifier: benign against malignant, on a crop around the lesion.

Usage::

    python -m models.train_lesion --data ../shared/busi --out runs/les0 --split-seed 42
    python -m models.train_lesion --data ../shared/busi --out runs/les0 --split-seed 42 --resume
    python -m models.train_lesion --data ../shared/busi --out runs/lesA --val-fraction 0

Only lesion images train it (normal images have no lesion to crop). The split
is drawn over all images exactly as :mod:`models.train` draws it, so with the
same ``--split-seed`` the classifier and the U-Net hold out the same
duplicate groups and can be exported together. Training crops use the
ground-truth outline; at run time the crop follows the U-Net's outline or the
radiologist's (see :mod:`models.runtime`).

The recipe is fixed-length (cosine decay to ``lr / 50``) and keeps the last
epoch as ``OUT/final.keras``: on a few hundred lesions, picking an epoch on
the validation images would flatter the figures. ``--val-fraction 0`` refits
the recipe on every lesion; ``--patience N`` adds early stopping on
validation AUC. Each epoch is backed up to ``OUT/backup`` for ``--resume``.
"""

from __future__ import annotations

import numpy as np

from ._cli import bounded, cli_parser, progress_bar, reports_usage_errors


def parse_args(argv=None):
    from ._crop_training import add_run_args

    p = cli_parser(__spec__, __doc__)
    add_run_args(p, out="runs/lesion", epochs=40, batch_size=32, lr=1e-3,
                 crop_help="default: lesion_crop.CROP_SIZE", filters=(24, 48, 96, 160))
    p.add_argument("--patience", type=bounded(int, 0), default=0,
                   help="stop when validation AUC has not improved for N epochs (0 = off)")
    args = p.parse_args(argv)
    # Each block halves the crop (floored): below 2 ** blocks the last one has nothing to
    # pool, and Keras fails after the folder was made. Checked before the crops are cut.
    smallest = 2 ** len(args.filters)
    if args.crop_size is not None and args.crop_size < smallest:
        p.error(f"--crop-size: {args.crop_size} is too small for {len(args.filters)} blocks "
                f"(--filters), each halving it: at least {smallest}")
    if args.patience and args.val_fraction == 0:
        p.error("--patience needs validation images; --val-fraction 0 has none")
    return args


def load_crops(samples, size, margin, progress=False):
    """Lesion crops from the ground-truth outlines.

    Returns
    -------
    crops : numpy.ndarray
        ``(N, size, size, 1)`` float32 in [0, 1].
    malignant : numpy.ndarray
        ``(N,)`` float32, 1 for malignant.
    """
    from .data import read_image, read_mask
    from .lesion_crop import lesion_crop

    it = progress_bar(samples, "cropping") if progress else samples
    crops = []
    for s in it:
        grey = read_image(s.image_path)
        crops.append(lesion_crop(grey, read_mask(s.mask_paths, grey.shape), size, margin))
    y = np.array([s.class_name == "malignant" for s in samples], np.float32)
    return np.stack(crops)[..., None].astype(np.float32), y


def augment_crops(context, size, zoom):
    """Random crops of the wider context crops, as outlines and framing vary.

    Parameters
    ----------
    context : tf.Tensor
        ``(B, C, C, 1)`` crops cut with ``CONTEXT_MARGIN``.
    size : int
        Output side.
    zoom : float
        Side of the served crop as a fraction of the context crop; jittered by
        +-15 % in scale and +-6 % in position, so the box drawn around a
        slightly different outline is covered.
    """
    import tensorflow as tf

    b = tf.shape(context)[0]
    s = zoom * tf.random.uniform([b], 0.85, 1.15)
    aspect = tf.exp(tf.random.uniform([b], -0.1, 0.1))
    hh, ww = s * tf.sqrt(aspect), s / tf.sqrt(aspect)
    cy = 0.5 + tf.random.uniform([b], -0.06, 0.06)
    cx = 0.5 + tf.random.uniform([b], -0.06, 0.06)
    boxes = tf.stack([cy - hh / 2, cx - ww / 2, cy + hh / 2, cx + ww / 2], axis=1)
    img = tf.image.crop_and_resize(context, boxes, tf.range(b), (size, size))
    # Left-right only: depth runs down the image and posterior shadowing with it.
    flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
    img = tf.where(flip, tf.reverse(img, axis=[2]), img)
    mean = tf.reduce_mean(img, axis=[1, 2, 3], keepdims=True)
    img = (img - mean) * tf.random.uniform([b, 1, 1, 1], 0.75, 1.3) + mean
    img = img + tf.random.uniform([b, 1, 1, 1], -0.08, 0.08)
    img = tf.clip_by_value(img, 0.0, 1.0) ** tf.exp(tf.random.uniform([b, 1, 1, 1], -0.3, 0.3))
    return img


@reports_usage_errors
def main(argv=None):
    args = parse_args(argv)

    import keras
    import tensorflow as tf

    from ._crop_training import fit_and_save, start_run, warmup_cosine
    from .lesion_crop import CONTEXT_MARGIN, CONTEXT_SIZE, CROP_SIZE, MARGIN
    from .metrics import roc_auc
    from .networks import get_lesion_classifier

    size = args.crop_size or CROP_SIZE
    out, train_s, val_s = start_run(args, size)
    if args.patience and args.resume:
        from .training import patience_spent

        # Before the crops are cut: early stopping would end the run after one more epoch.
        if patience_spent(out, "val_auc", args.patience, True):
            return 0
    ctx, ytr = load_crops(train_s, CONTEXT_SIZE, CONTEXT_MARGIN, progress=args.verbose > 0)
    validate = len(val_s) > 0
    if validate:
        xva, yva = load_crops(val_s, size, MARGIN, progress=args.verbose > 0)
    positive = float(ytr.mean()) if len(ytr) else 0.0
    # Balanced weights: the log-odds come out prior-neutral, like the U-Net head's.
    pos_weight = (1.0 - positive) / positive if 0 < positive < 1 else 1.0
    zoom = (1.0 + 2.0 * MARGIN) / (1.0 + 2.0 * CONTEXT_MARGIN)

    def to_batch(x, y):
        w = tf.where(y > 0, tf.constant(pos_weight, tf.float32), 1.0)
        return augment_crops(x, size, zoom), y, w

    train_ds = (tf.data.Dataset.from_tensor_slices((ctx, ytr))
                .shuffle(len(ctx), seed=args.seed, reshuffle_each_iteration=True).repeat()
                .batch(args.batch_size, drop_remainder=len(ctx) >= args.batch_size)
                .map(to_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))
    steps = args.steps_per_epoch or max(1, int(np.ceil(len(ctx) / args.batch_size)))
    model = get_lesion_classifier(size, tuple(args.filters))
    model.compile(
        optimizer=keras.optimizers.AdamW(warmup_cosine(args.lr, args.epochs, steps),
                                         weight_decay=1e-3),
        # Smoothing keeps the log-odds of a few hundred memorised crops from growing unbounded.
        loss=keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    )

    class Score(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is None or not validate:
                return
            z = self.model.predict(xva, verbose=0).ravel()
            logs["val_auc"] = roc_auc(z, yva > 0)
            logs["val_acc"] = float(np.mean((z > 0) == (yva > 0)))

    callbacks = [Score()]
    if args.patience:
        from .training import ResumedEarlyStopping, resumed_best

        callbacks.append(ResumedEarlyStopping(*resumed_best(out, "val_auc", args.resume),
                                              monitor="val_auc", patience=args.patience))
    fit_and_save(model, train_ds, args, out, steps, (xva, yva) if validate else None,
                 callbacks, ("val_auc", "val_acc"),
                 {"crop_size": size, "train_images": len(train_s), "val_images": len(val_s),
                  "pos_weight": pos_weight})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
