"""What the two crop models' training scripts share: the lesion classifier
(:mod:`models.train_lesion`) and the outline refiner (:mod:`models.train_refine`).

Both train on lesion images only, split as :mod:`models.train` splits every
image, with a warm-up then cosine schedule of fixed length, keep the last
epoch as ``OUT/final.keras``, and back up each epoch for ``--resume``.
"""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger(__name__)


def add_run_args(p, *, out, epochs, batch_size, lr, crop_help, filters):
    """The command-line options both scripts take, with each script's defaults."""
    from ._cli import bounded

    p.add_argument("--data", required=True, help="folder in BUSI layout")
    p.add_argument("--out", default=out, help="run folder (checkpoints, logs, curves)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=bounded(float, 0, strict=True), default=lr,
                   help="peak learning rate (after warm-up)")
    p.add_argument("--crop-size", type=int, default=None, help=crop_help)
    p.add_argument("--filters", type=bounded(int, 1), nargs="+", default=list(filters))
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of images held out by duplicate_group; 0 refits on every lesion")
    p.add_argument("--seed", type=int, default=0, help="weights, augmentation and data order")
    p.add_argument("--split-seed", type=int, default=None,
                   help="train/validation split (default: --seed); use the U-Net's")
    p.add_argument("--limit", type=bounded(int, 1), default=None,
                   help="use only N samples (smoke tests)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap steps (smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/backup")
    p.add_argument("--overwrite", action="store_true",
                   help="clear OUT first; without it (or --resume) OUT must be empty")
    p.add_argument("--verbose", type=int, default=1, help="keras progress bar: 0, 1 or 2")


def start_run(args, crop_size):
    """Log setup, a clean (or resumed) run folder, the seed, and the lesions of the split.

    Every check (the folder, a resume's settings and split, ``--data``) comes
    before the folder is touched; a resume keeps the run's ``split.json``.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`add_run_args`.
    crop_size : int
        The side in effect (``--crop-size`` or the script's default), recorded
        with the settings.

    Returns
    -------
    out : Path
        The run folder, holding ``split.json``.
    train, val : list of models.data.Sample
        Lesion images only; the duplicate groups held out are those
        :mod:`models.train` holds out with the same ``--split-seed``.
    """
    import keras

    from ._cli import UsageError
    from .data import check_lesion_masks, run_split, split_record, training_samples
    from .training import (
        align_history,
        check_backup,
        check_resume_settings,
        check_resumed_split,
        check_run_dir,
        open_run_dir,
        record_run_start,
        run_settings,
    )

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    check_run_dir(args.out, args.resume, args.overwrite)
    split_seed = args.seed if args.split_seed is None else args.split_seed
    settings = run_settings(args, crop_size=crop_size, split_seed=split_seed)
    if args.resume:
        check_resume_settings(args.out, settings)
        check_backup(args.out)
        align_history(args.out)
    # Split all images, as models.train does, then keep the lesions: same groups held out.
    # Both before the run folder is touched: a typo in --data must not clear a finished run.
    for flag in ("epochs", "batch_size", "steps_per_epoch"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1")
    if not 0 <= args.val_fraction < 1:
        raise UsageError("--val-fraction must be in [0, 1)")
    samples = training_samples(args.data)
    check_lesion_masks(samples, args.data)
    train, val = run_split(samples, args.val_fraction, split_seed,
                           keep=lambda s: s.class_name != "normal" and bool(s.mask_paths),
                           limit=args.limit, seed=args.seed)
    if not train:
        raise UsageError(f"--data {args.data}: no outlined lesion among the training images "
                         "of this split")
    split = split_record(train, val)
    if args.resume:
        check_resumed_split(args.out, split)
    out = open_run_dir(args.out, args.resume, args.overwrite)
    keras.utils.set_random_seed(args.seed)
    record_run_start(out, settings, split, args.resume)
    log.info("train %d, val %d lesions (split by duplicate_group, seed %d)",
             len(train), len(val), split_seed)
    return out, train, val


def warmup_cosine(lr, epochs, steps):
    """Three warm-up epochs from ``lr / 10`` to ``lr``, then cosine decay to ``lr / 50``."""
    import keras

    warmup = min(3, max(epochs - 1, 0)) * steps
    return keras.optimizers.schedules.CosineDecay(
        lr / 10, decay_steps=max(1, epochs * steps - warmup), alpha=0.02,
        warmup_target=lr, warmup_steps=warmup,
    )


def fit_and_save(model, train_ds, args, out, steps, validation, callbacks, scores, info):
    """Fit with per-epoch backups, keep the last epoch, plot the curves, record the run.

    Parameters
    ----------
    validation : tuple or None
        ``(x, y)`` for Keras's validation loss.
    callbacks : list
        The script's own callbacks (scores), run before the backup.
    scores : tuple of str
        Logged scores to plot beside the losses.
    info : dict
        Written to ``OUT/train_info.json`` with the arguments and timing.
    """
    import keras
    import tensorflow as tf

    from .training import (
        HistoryLogger,
        plot_learning_curves,
        run_backup,
        save_model_atomic,
    )

    callbacks = [*callbacks,
                 run_backup(out),
                 HistoryLogger(str(out / "history.csv"), append=args.resume),
                 keras.callbacks.TerminateOnNaN()]
    t0 = time.time()
    model.fit(train_ds, epochs=args.epochs, steps_per_epoch=steps, validation_data=validation,
              callbacks=callbacks, verbose=args.verbose)
    minutes = (time.time() - t0) / 60
    save_model_atomic(model, out / "final.keras")
    plot_learning_curves(out / "history.csv", out / "learning_curves.png",
                         losses=("loss", "val_loss"), scores=scores)
    (out / "train_info.json").write_text(json.dumps({
        "args": vars(args), "filters": list(args.filters),
        "minutes_this_session": round(minutes, 1), "tf_version": tf.__version__, **info,
    }, indent=1))
    log.info("done in %.1f min; model at %s", minutes, out / "final.keras")
