"""Train the outline refiner: segment the lesion in a square around a first outline.

Usage::

    python -m models.train_refine --data ../shared/busi --out runs/ref0 --split-seed 42
    python -m models.train_refine --data ../shared/busi --out runs/ref0 --split-seed 42 --resume
    python -m models.train_refine --data ../shared/busi --out runs/refA --val-fraction 0

Only lesion images train it. The split is drawn over all images as
:mod:`models.train` draws it, so with the same ``--split-seed`` the refiner
and the U-Net hold out the same duplicate groups. At run time the square
follows the U-Net's first outline, which is often too small or off-centre;
training imitates that by cutting squares around the *true* outline whose
size is 0.6 to 1.15 times the served one and whose centre moves by up to 6 %
(see :func:`augment_squares`).

The recipe is fixed-length (cosine decay) and keeps the last epoch as
``OUT/final.keras``. Each epoch is backed up to ``OUT/backup`` for ``--resume``.
"""

from __future__ import annotations

import numpy as np

from ._cli import cli_parser, progress_bar, reports_usage_errors


def parse_args(argv=None):
    from ._crop_training import add_run_args

    p = cli_parser(__spec__, __doc__)
    add_run_args(p, out="runs/refine", epochs=50, batch_size=16, lr=2e-3,
                 crop_help="default: lesion_refine.REFINE_SIZE", filters=(12, 24, 48, 64))
    args = p.parse_args(argv)
    if args.crop_size is not None:
        from .networks import check_side

        try:  # before the crops are cut, not at the network after it
            check_side("--crop-size", args.crop_size, levels=len(args.filters) - 1)
        except ValueError as exc:
            p.error(str(exc))
    return args


def load_squares(samples, size, margin, progress=False):
    """Squares around the true outlines, image and mask alike.

    Returns
    -------
    numpy.ndarray
        ``(N, size, size, 2)`` float32: channel 0 the image in [0, 1],
        channel 1 the mask (soft at the edges after resizing).
    """
    from .data import read_image, read_mask
    from .lesion_crop import lesion_box
    from .lesion_refine import crop_square

    it = progress_bar(samples, "cropping") if progress else samples
    out = []
    for s in it:
        grey = read_image(s.image_path)
        mask = read_mask(s.mask_paths, grey.shape)
        box = lesion_box(mask, margin)
        out.append(np.stack([crop_square(grey, box, size),
                             crop_square(mask.astype(np.float32), box, size)], axis=-1))
    return np.stack(out).astype(np.float32)


def augment_squares(context, size, zoom):
    """Random served squares from the wider context squares, with intensity changes.

    Parameters
    ----------
    context : tf.Tensor
        ``(B, C, C, 2)`` image and mask cut with ``REFINE_CONTEXT_MARGIN``.
    size : int
        Output side.
    zoom : float
        Side of the square served around the *true* outline, as a fraction
        of the context square. The side drawn is 0.6-1.15 times that (first
        outlines are more often too small than too large), the centre moves
        by up to +-6 % of the context side, the aspect by up to +-10 %.

    Returns
    -------
    image, mask : tf.Tensor
        ``(B, size, size, 1)`` each; the mask in {0, 1}.
    """
    import tensorflow as tf

    b = tf.shape(context)[0]
    s = zoom * tf.random.uniform([b], 0.6, 1.15)
    aspect = tf.exp(tf.random.uniform([b], -0.1, 0.1))
    hh, ww = s * tf.sqrt(aspect), s / tf.sqrt(aspect)
    cy = 0.5 + tf.random.uniform([b], -0.06, 0.06)
    cx = 0.5 + tf.random.uniform([b], -0.06, 0.06)
    boxes = tf.stack([cy - hh / 2, cx - ww / 2, cy + hh / 2, cx + ww / 2], axis=1)
    both = tf.image.crop_and_resize(context, boxes, tf.range(b), (size, size))
    # Left-right only: depth runs down the image and posterior shadowing with it.
    flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
    both = tf.where(flip, tf.reverse(both, axis=[2]), both)
    img, msk = both[..., :1], tf.cast(both[..., 1:] > 0.5, tf.float32)
    mean = tf.reduce_mean(img, axis=[1, 2, 3], keepdims=True)
    img = (img - mean) * tf.random.uniform([b, 1, 1, 1], 0.75, 1.3) + mean
    # Gain both ways: multiplicative (a scanner's overall gain) and additive (an offset).
    img = img * tf.random.uniform([b, 1, 1, 1], 0.8, 1.2) + tf.random.uniform([b, 1, 1, 1],
                                                                           -0.06, 0.06)
    img = tf.clip_by_value(img, 0.0, 1.0) ** tf.exp(tf.random.uniform([b, 1, 1, 1], -0.3, 0.3))
    speckle = 1.0 + tf.random.normal(tf.shape(img)) * tf.random.uniform([b, 1, 1, 1], 0, 0.1)
    return tf.clip_by_value(img * speckle, 0.0, 1.0), msk


@reports_usage_errors
def main(argv=None):
    args = parse_args(argv)

    import keras
    import tensorflow as tf

    from ._crop_training import fit_and_save, start_run, warmup_cosine
    from .lesion_refine import (
        REFINE_CONTEXT_MARGIN,
        REFINE_CONTEXT_SIZE,
        REFINE_MARGIN,
        REFINE_SIZE,
    )
    from .metrics import overlap_scores
    from .networks import get_refiner
    from .training import make_losses

    size = args.crop_size or REFINE_SIZE
    # The context keeps the served square's resolution at the widest zoom drawn.
    context_size = REFINE_CONTEXT_SIZE * size // REFINE_SIZE
    out, train_s, val_s = start_run(args, size)
    ctx = load_squares(train_s, context_size, REFINE_CONTEXT_MARGIN,
                       progress=args.verbose > 0)
    validate = len(val_s) > 0
    if validate:
        va = load_squares(val_s, size, REFINE_MARGIN, progress=args.verbose > 0)
        xva, yva = va[..., :1], (va[..., 1:] > 0.5).astype(np.float32)
    zoom = (1.0 + 2.0 * REFINE_MARGIN) / (1.0 + 2.0 * REFINE_CONTEXT_MARGIN)

    train_ds = (tf.data.Dataset.from_tensor_slices(ctx)
                .shuffle(len(ctx), seed=args.seed, reshuffle_each_iteration=True).repeat()
                .batch(args.batch_size, drop_remainder=len(ctx) >= args.batch_size)
                .map(lambda x: augment_squares(x, size, zoom), num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(2))
    steps = args.steps_per_epoch or max(1, int(np.ceil(len(ctx) / args.batch_size)))
    # The per-image soft Dice: every lesion weighs the same, as in the mean Dice scored.
    seg_loss, _ = make_losses([1.0], seg="image-dice")
    model = get_refiner(size, tuple(args.filters))
    model.compile(optimizer=keras.optimizers.AdamW(warmup_cosine(args.lr, args.epochs, steps),
                                                   weight_decay=1e-4), loss=seg_loss)

    class Score(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is None or not validate:
                return
            pred = self.model.predict(xva, verbose=0)[..., 0] > 0.5
            logs["val_dice"] = float(np.mean([overlap_scores(p, t)["dice"]
                                              for p, t in zip(pred, yva[..., 0] > 0.5,
                                                              strict=True)]))

    fit_and_save(model, train_ds, args, out, steps, (xva, yva) if validate else None,
                 [Score()], ("val_dice",),
                 {"crop_size": size, "train_images": len(train_s), "val_images": len(val_s)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
