"""Self-supervised pretraining of the U-Net by image restoration (no labels).

Usage::

    python -m models.pretrain --data ../shared/busi --out runs/ssl0 --epochs 40 --split-seed 42
    python -m models.train --data ../shared/busi --out runs/ft --split-seed 42 \
        --init-pretrained runs/ssl0

No pretrained weights can be downloaded here, and BUSI has only a few hundred
outlined images. Restoration pretraining ("Models Genesis", Zhou et al.,
MICCAI 2019) teaches the whole encoder-decoder what breast tissue, fat,
shadowing and speckle look like before it is asked where the lesion is: the
network sees an image distorted by a grey-level curve, noise-filled holes
(in-painting) or a noise-filled border (out-painting), and must give back the
undistorted image. Its last decoder block then feeds a one-channel restoration
head instead of the lesion head; ``models.train --init-pretrained`` copies
every shared layer and leaves both heads to start from random weights.

Only the *training* images of the split are used (``--split-seed`` as in
``models.train``; ``--val-fraction 0`` takes every image, for a refit), so the
validation images stay unseen, pixels included. Each epoch is backed up for
``--resume`` (which refuses to go on with other images than the run began with);
the result is ``OUT/pretrained.weights.npz`` with ``seen.json`` beside it: the
SHA-256 of every image file the run has seen, and the network's size.
``models.train --init-pretrained`` refuses a run that has seen any image its
own training images do not include, by content, whatever the folder or names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from ._cli import bounded, cli_parser, reports_usage_errors

log = logging.getLogger("models.pretrain")

#: File of the finished pretraining in its run folder.
PRODUCT = "pretrained.weights.npz"

#: What a pretraining run has seen, beside ``PRODUCT``: image hashes and network size.
SEEN = "seen.json"

#: Layer whose output the restoration head reads: the U-Net's last decoder block.
LAST_DECODER = "dec0_out"

#: Name prefixes of the U-Net layers the pretraining trains: encoder, bottleneck, decoder.
SHARED_PREFIXES = ("enc", "bottleneck", "dec")


def parse_args(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--data", required=True, help="folder in BUSI layout (labels are not used)")
    p.add_argument("--out", default="runs/ssl", help="run folder (checkpoints, log, curve)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=bounded(float, 0, strict=True), default=2e-3)
    p.add_argument("--input-size", type=int, default=None, help="default: models INPUT_SIZE")
    p.add_argument("--base-filters", type=bounded(int, 1), default=16)
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share held out by duplicate_group, as in models.train: those images "
                        "are not used at all (0 = every image, for a refit)")
    p.add_argument("--seed", type=int, default=42, help="weights, distortions and data order")
    p.add_argument("--split-seed", type=int, default=None, help="default: --seed")
    p.add_argument("--limit", type=bounded(int, 1), default=None,
                   help="use only N images (smoke tests)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap steps (smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/backup")
    p.add_argument("--overwrite", action="store_true",
                   help="clear OUT first; without it (or --resume) OUT must be empty")
    p.add_argument("--verbose", type=int, default=1, help="keras progress bar: 0, 1 or 2")
    args = p.parse_args(argv)
    if not 0 <= args.val_fraction < 1:
        p.error("--val-fraction must be in [0, 1)")
    for flag in ("epochs", "batch_size", "steps_per_epoch"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.input_size is not None:
        from .networks import check_side

        try:  # before the data is read and the run folder touched
            check_side("--input-size", args.input_size, levels=4)
        except ValueError as exc:
            p.error(str(exc))
    return args


def distort(image):
    """The restoration task's input: ``image`` with a grey-level curve, holes or a border.

    Parameters
    ----------
    image : tf.Tensor
        ``(B, S, S, 1)`` float32 in [0, 1], already augmented; it is the target.

    Returns
    -------
    tf.Tensor
        ``(B, S, S, 1)`` float32 in [0, 1]. Each sample gets, independently:

        - with probability 0.9, a monotone grey-level curve (a gamma from
          ``exp(U(-0.8, 0.8))``), reversed (``1 - (1 - x) ** g``) half the time,
          so the network must learn tissue rather than brightness;
        - with probability 0.9, either (equally likely) one to four holes of
          10-30 % of the side filled with uniform noise (in-painting: guess the
          tissue from its surroundings), or everything outside a random box of
          45-80 % of the side filled so (out-painting: guess the surroundings
          from the middle).

        Rows and columns are as in the image: row 0 at the top (the skin).
    """
    import tensorflow as tf

    b = tf.shape(image)[0]
    s = tf.shape(image)[1]
    sf = tf.cast(s, tf.float32)

    gamma = tf.exp(tf.random.uniform([b, 1, 1, 1], -0.8, 0.8))
    curved = image ** gamma
    flipped = 1.0 - (1.0 - image) ** gamma
    x = tf.where(tf.random.uniform([b, 1, 1, 1]) < 0.5, curved, flipped)
    x = tf.where(tf.random.uniform([b, 1, 1, 1]) < 0.9, x, image)

    rows = tf.cast(tf.range(s), tf.float32)[None, :, None, None]
    cols = tf.cast(tf.range(s), tf.float32)[None, None, :, None]

    def box(lo, hi):
        """A random box per sample, as a ``(B, S, S, 1)`` 0/1 mask, sides from [lo, hi) of S."""
        h = tf.random.uniform([b, 1, 1, 1], lo, hi) * sf
        w = tf.random.uniform([b, 1, 1, 1], lo, hi) * sf
        r0 = tf.random.uniform([b, 1, 1, 1]) * (sf - h)
        c0 = tf.random.uniform([b, 1, 1, 1]) * (sf - w)
        inside = (rows >= r0) & (rows < r0 + h) & (cols >= c0) & (cols < c0 + w)
        return tf.cast(inside, tf.float32)

    holes = tf.zeros_like(image)
    n_holes = tf.random.uniform([b, 1, 1, 1], 1, 5, dtype=tf.int32)
    for k in range(4):
        holes = tf.maximum(holes, box(0.1, 0.3) * tf.cast(n_holes > k, tf.float32))
    border = 1.0 - box(0.45, 0.8)
    painting = tf.where(tf.random.uniform([b, 1, 1, 1]) < 0.5, holes, border)
    painting = painting * tf.cast(tf.random.uniform([b, 1, 1, 1]) < 0.9, tf.float32)
    noise = tf.random.uniform(tf.shape(image))
    return painting * noise + (1.0 - painting) * x


def get_restorer(unet):
    """The pretraining network: ``unet``'s encoder-decoder with a restoration head.

    Parameters
    ----------
    unet : keras.Model
        From ``models.networks.get_multitask_unet``; its layers are shared, not
        copied, so training the restorer trains them.

    Returns
    -------
    keras.Model
        Input ``image`` ``(B, S, S, 1)``, output ``(B, S, S, 1)`` in [0, 1].
    """
    import keras
    from keras import layers

    features = unet.get_layer(LAST_DECODER).output
    restored = layers.Conv2D(1, 1, activation="sigmoid", name="restore",
                             dtype="float32")(features)
    return keras.Model(unet.inputs[0], restored, name="restorer")


def file_hashes(samples) -> dict[str, str]:
    """SHA-256 of each sample's image file, ``{"class/name": hexdigest}``.

    Content rather than names: the same picture under another name or in another
    folder is the same image to a network.
    """
    return {f"{s.class_name}/{s.name}": hashlib.sha256(Path(s.image_path).read_bytes()).hexdigest()
            for s in samples}


def check_pretrained(run, train_samples, input_size, base_filters):
    """Refuse a pretraining that has seen an image outside ``train_samples``, or another size.

    Run before anything of the caller's run is written, so a refusal costs nothing.

    Parameters
    ----------
    run : str or Path
        A ``models.pretrain`` run folder holding ``PRODUCT`` and ``SEEN``.
    train_samples : list of models.data.Sample
        The images the caller trains on. Pretraining on any other image (a held-out
        one, under any name) would let its pixels into training.
    input_size, base_filters : int
        The caller's network: the pretraining must have used the same.

    Raises
    ------
    FileNotFoundError
        The run has not finished (no ``PRODUCT`` or ``SEEN``).
    ValueError
        The run saw other images, or trained another network.
    """
    run = Path(run)
    for name in (PRODUCT, SEEN):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run / name} does not exist: has the pretraining finished?")
    seen = json.loads((run / SEEN).read_text())
    size = (seen.get("input_size"), seen.get("base_filters"))
    if size != (input_size, base_filters):
        raise ValueError(f"{run} pretrained a {size[0]} px network of {size[1]} filters; this "
                         f"run trains {input_size} px with {base_filters} (--input-size, "
                         "--base-filters)")
    allowed = set(file_hashes(train_samples).values())
    outside = sorted(key for key, digest in seen["sha256"].items() if digest not in allowed)
    if outside:
        raise ValueError(f"{run} pretrained on {len(outside)} image(s) that are not among this "
                         f"run's training images (e.g. {outside[0]}); pretrain on the same "
                         "folder with the same --split-seed and --val-fraction")


def load_pretrained(unet, run):
    """Copy a pretraining run's shared layers into ``unet`` (both heads stay as they are).

    Call :func:`check_pretrained` first: this checks the layers' shapes only.

    Parameters
    ----------
    unet : keras.Model
        From ``get_multitask_unet``, of the run's input size and width.
    run : str or Path
        A ``models.pretrain`` run folder holding ``PRODUCT``.

    Returns
    -------
    int
        How many layers were copied.

    Raises
    ------
    ValueError
        A layer of ``unet`` is missing from the file or of another shape.
    """
    weights = Path(run) / PRODUCT
    with np.load(weights) as saved:
        stored = {key: saved[key] for key in saved.files}
    shared = [layer for layer in unet.layers if layer.weights
              and layer.name.startswith(SHARED_PREFIXES)]
    for layer in shared:
        current = layer.get_weights()
        new = [stored.get(f"{layer.name}/{k}") for k in range(len(current))]
        if any(w is None or w.shape != c.shape for w, c in zip(new, current, strict=True)):
            raise ValueError(f"{weights} does not fit this network at layer {layer.name} "
                             "(--base-filters)")
        layer.set_weights(new)
    return len(shared)


def save_pretrained(restorer, path):
    """Write every weighted layer of ``restorer`` to ``path`` (npz, keys ``"layer/k"``).

    By name rather than by position, so ``load_pretrained`` can pick the
    encoder and decoder out and say which layer does not fit.

    Parameters
    ----------
    restorer : keras.Model
        From :func:`get_restorer`.
    path : str or Path
        The ``.npz`` file to write.
    """
    arrays = {f"{layer.name}/{k}": w for layer in restorer.layers
              for k, w in enumerate(layer.get_weights())}
    path = Path(path)
    tmp = path.with_name(f"tmp-{path.name}")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)  # atomic: a kill mid-write leaves no truncated file


def make_restoration_dataset(images, batch_size, seed=0):
    """``(distorted, clean)`` training batches, augmented as for training, then distorted.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, S, S, 1)`` float32 in [0, 1].
    batch_size : int
    seed : int
        Order of the images.

    Returns
    -------
    tf.data.Dataset
        Endless batches of two ``(batch_size, S, S, 1)`` tensors: :func:`distort`'s
        output and its target.
    """
    import tensorflow as tf

    from .training import augment

    ds = tf.data.Dataset.from_tensor_slices(images)
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=True)

    def pair(img):
        clean, _ = augment(img, tf.zeros_like(img))
        return distort(clean), clean

    return ds.map(pair, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


@reports_usage_errors
def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    import keras
    import tensorflow as tf

    from ._preprocess import INPUT_SIZE
    from .data import CLASS_NAMES, load_arrays, run_split, training_samples
    from .networks import get_multitask_unet
    from .training import (
        HistoryLogger,
        align_history,
        check_backup,
        check_resume_settings,
        check_run_dir,
        make_schedule,
        open_run_dir,
        plot_learning_curves,
        record_run_start,
        run_backup,
        run_settings,
    )

    size = args.input_size or INPUT_SIZE
    split_seed = args.seed if args.split_seed is None else args.split_seed
    check_run_dir(args.out, args.resume, args.overwrite)
    settings = run_settings(args, input_size=size, split_seed=split_seed)
    if args.resume:
        check_resume_settings(args.out, settings)
        check_backup(args.out)
        align_history(args.out)
    samples = training_samples(args.data)
    train_s, _ = run_split(samples, args.val_fraction, split_seed, limit=args.limit,
                           seed=args.seed)
    # Only the training images are recorded: they are all this run has seen.
    seen = {"input_size": size, "base_filters": args.base_filters,
            "sha256": file_hashes(train_s)}
    earlier = Path(args.out) / SEEN
    if args.resume and earlier.is_file() and json.loads(earlier.read_text()) != seen:
        # The weights in backup/ have seen what the earlier images were: going on with
        # others would record only these and hide the first ones from models.train.
        log.error("%s began with other images or another network than these arguments give "
                  "(--data, --split-seed, --val-fraction, --limit, --input-size, "
                  "--base-filters); resume with the same ones", args.out)
        return 2
    out = open_run_dir(args.out, args.resume, args.overwrite)
    keras.utils.set_random_seed(args.seed)
    (out / SEEN).write_text(json.dumps(seen, indent=1))
    record_run_start(out, settings, None, args.resume)
    log.info("pretraining on %d images (split by duplicate_group, seed %d; labels unused)",
             len(train_s), split_seed)
    xtr, _, _ = load_arrays(train_s, size, progress=args.verbose > 0)

    batch = min(args.batch_size, len(xtr))
    steps = args.steps_per_epoch or max(1, len(xtr) // batch)
    restorer = get_restorer(get_multitask_unet(size, args.base_filters,
                                               num_classes=len(CLASS_NAMES)))
    restorer.compile(
        optimizer=keras.optimizers.AdamW(make_schedule(args.lr, args.epochs, steps),
                                         weight_decay=1e-4),
        loss="mse",
    )
    t0 = time.time()
    restorer.fit(
        make_restoration_dataset(xtr, batch, seed=args.seed),
        epochs=args.epochs,
        steps_per_epoch=steps,
        callbacks=[
            run_backup(out),
            HistoryLogger(str(out / "history.csv"), append=args.resume),
            keras.callbacks.TerminateOnNaN(),
        ],
        verbose=args.verbose,
    )
    minutes = (time.time() - t0) / 60
    if restorer.stop_training:  # TerminateOnNaN: weights that gave NaN are no start
        log.error("stopped: the loss became NaN; nothing saved")
        return 1
    save_pretrained(restorer, out / PRODUCT)
    plot_learning_curves(out / "history.csv", out / "learning_curves.png", losses=("loss",),
                         scores=())
    (out / "train_info.json").write_text(json.dumps({
        "args": vars(args), "input_size": size, "minutes_this_session": round(minutes, 1),
        "train_images": len(train_s), "tf_version": tf.__version__,
    }, indent=1))
    log.info("done in %.1f min; weights at %s", minutes, out / PRODUCT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
