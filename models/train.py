"""Train the multi-task U-Net (lesion segmentation + normal/benign/malignant).

Usage::

    python -m models.train --data ../shared/busi --out runs/main --epochs 100
    python -m models.train --data ../shared/busi --out runs/main --epochs 100 --resume
    python -m models.train --data ../shared/busi --out runs/ft1 --epochs 20 --lr 3e-4 \
        --split-seed 42 --init-from models/weights --init-member 1

``--init-from`` starts from one member of an export (a warm restart) instead of
random weights: runs directories do not outlive a session, the shipped weights do.
``--init-pretrained`` starts the encoder and decoder from a self-supervised
``models.pretrain`` run instead (both heads start from random weights).

Each epoch is backed up to ``OUT/backup`` so ``--resume`` continues where a
killed run stopped (weights, optimiser state and the learning-rate schedule).
The best epoch by validation score is kept as ``OUT/best.keras``; export it
with ``python -m models.export``. With ``--swa-start E`` the learning rate
decays to ``--swa-lr`` by epoch E and stays there, and the running mean of
the weights from epoch E on is kept as ``OUT/swa.keras`` (export it with
``--checkpoint swa.keras``). ``--val-fraction 0`` refits such a recipe on every
image: nothing is held out, so only ``swa.keras`` is kept, and the export takes
its settings and figures from the recipe's twin trained on the split
(``models.export --settings-from``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ._cli import UsageError, bounded, cli_parser, reports_usage_errors

log = logging.getLogger("models.train")


def parse_args(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--data", required=True, help="folder in BUSI layout")
    p.add_argument("--out", default="runs/main", help="run folder (checkpoints, logs, curves)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=bounded(float, 0, strict=True), default=2e-3)
    p.add_argument("--input-size", type=int, default=None, help="default: models INPUT_SIZE")
    p.add_argument("--base-filters", type=bounded(int, 1), default=16)
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of images held out by duplicate_group; 0 refits on every "
                        "image (needs --swa-start, as no epoch can be picked)")
    p.add_argument("--seed", type=int, default=42, help="weights, augmentation and data order")
    p.add_argument("--split-seed", type=int, default=None,
                   help="train/validation split (default: --seed); ensemble members share it "
                        "so no member has trained on another's validation images")
    p.add_argument("--patience", type=bounded(int, 0), default=30, help="early stopping, in epochs")
    p.add_argument("--cls-weight", type=float, default=0.5, help="classification loss weight")
    p.add_argument("--seg-loss", default="batch-dice",
                   choices=("batch-dice", "image-dice", "image-tversky"),
                   help="soft Dice over the batch, soft Dice per image, or a recall-weighted "
                        "Tversky index per image (see models.training.make_losses)")
    p.add_argument("--presence-weight", type=float, default=0.0,
                   help="weight of an image-level term: cross-entropy between 'this image "
                        "has a lesion' and the mean of its most probable pixels (0 = off)")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="label smoothing of the classification targets (0 = off)")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="blend training pairs (image, mask and class) with weights from "
                        "Beta(A, A) (mixup; 0 = off)")
    p.add_argument("--mixup-targets", choices=("blend", "lesion"), default="blend",
                   help="class target of a mixup blend: the blend of the two targets, or, "
                        "when a lesion image is in it, its lesion classes only (normal = no "
                        "lesion, and the lesion is still there)")
    p.add_argument("--mixup-pairs", choices=("any", "status"), default="any",
                   help="which samples mixup blends: any two, or only normal with normal and "
                        "lesion with lesion")
    p.add_argument("--augment", choices=("standard", "strong"), default="standard",
                   help="augmentation: flips, zoom, grey levels and speckle; 'strong' adds a "
                        "rotation of up to 12 degrees and a blur")
    p.add_argument("--swa-start", type=int, default=0,
                   help="average the weights from this epoch (1-based) on into OUT/swa.keras "
                        "(stochastic weight averaging; 0 = off)")
    p.add_argument("--swa-lr", type=bounded(float, 0, strict=True), default=None,
                   help="constant learning rate from --swa-start on (default: --lr / 2)")
    p.add_argument("--limit", type=bounded(int, 1), default=None,
                   help="use only N samples (smoke tests)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap steps (smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/backup")
    p.add_argument("--overwrite", action="store_true",
                   help="clear OUT first; without it (or --resume) OUT must be empty")
    p.add_argument("--init-from", default=None,
                   help="export folder (manifest.json + weights) to start from")
    p.add_argument("--init-member", type=int, default=0,
                   help="which ensemble member of --init-from to start from")
    p.add_argument("--init-pretrained", default=None,
                   help="models.pretrain run folder to start the encoder and decoder from "
                        "(its images must be among this run's training images)")
    p.add_argument("--verbose", type=int, default=1, help="keras progress bar: 0, 1 or 2")
    args = p.parse_args(argv)
    if args.input_size is not None:
        from .networks import check_side

        try:  # before the data is read, not at the network after it
            check_side("--input-size", args.input_size, levels=4)
        except ValueError as exc:
            p.error(str(exc))
    if args.mixup < 0:
        p.error("--mixup must be >= 0")
    if args.presence_weight < 0:
        p.error("--presence-weight must be >= 0")
    if args.init_from and args.init_pretrained:
        p.error("--init-from and --init-pretrained both give starting weights; pick one")
    for flag in ("epochs", "batch_size", "steps_per_epoch"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1")
    if not 0 <= args.val_fraction < 1:
        p.error("--val-fraction must be in [0, 1)")
    if args.val_fraction == 0 and not args.swa_start:
        p.error("--val-fraction 0 leaves no images to pick the best epoch on; "
                "add --swa-start to keep the weight average instead")
    return args


def check_init_from(folder, member, input_size, base_filters):
    """Refuse an ``--init-from`` export that cannot give this run its weights.

    Checked before the run folder is touched; :func:`exported_member_weights`
    then loads them.

    Raises
    ------
    UsageError
        No export there, no such member, or another network.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        arch = manifest["architecture"]
        weights = folder / manifest["files"]["keras"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"--init-from {folder}: no readable export there (manifest.json "
                         "with architecture and files)") from None
    n = int(arch.get("members", 1))
    if not 0 <= member < n:
        raise UsageError(f"--init-from {folder} has {n} member(s); --init-member {member} "
                         "does not exist")
    theirs = (arch.get("input_size"), arch.get("base_filters"))
    if theirs != (input_size, base_filters):
        raise UsageError(f"--init-from {folder} is a {theirs[0]} px, {theirs[1]}-filter network; "
                         f"this run is {input_size} px, {base_filters} filters "
                         "(--input-size, --base-filters)")
    if not weights.is_file():
        raise UsageError(f"--init-from {folder}: its weights {weights.name} are missing")


def exported_member_weights(folder, member, model):
    """Weights of one member of the export in ``folder``, shaped for ``model``.

    Raises
    ------
    ValueError
        If the export has no such member or its network differs from ``model``
        (input size, width or class count).
    """
    from .networks import build_from_architecture, load_half_weights

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    arch = manifest["architecture"]
    n = int(arch.get("members", 1))
    if not 0 <= member < n:
        raise ValueError(f"{folder} has {n} member(s); --init-member {member} does not exist")
    exported = build_from_architecture(arch)
    load_half_weights(exported, folder / manifest["files"]["keras"])
    net = exported if n == 1 else exported.get_layer(f"member{member}")
    weights = net.get_weights()
    current = model.get_weights()
    if len(weights) != len(current) or any(
        w.shape != c.shape for w, c in zip(weights, current, strict=True)
    ):
        raise ValueError(f"member {member} of {folder} does not match the network being trained "
                         "(check --input-size and --base-filters)")
    return [np.asarray(w, c.dtype) for w, c in zip(weights, current, strict=True)]


@reports_usage_errors
def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    import keras
    import tensorflow as tf

    from ._preprocess import INPUT_SIZE
    from .data import (
        CLASS_NAMES,
        check_lesion_masks,
        has_usable_mask,
        load_arrays,
        run_split,
        split_record,
        training_samples,
    )
    from .networks import get_multitask_unet
    from .training import (
        HistoryLogger,
        ResumedEarlyStopping,
        ValidationScore,
        WeightAverage,
        align_history,
        best_checkpoint,
        check_backup,
        check_resume_settings,
        check_resumed_split,
        check_run_dir,
        make_dataset,
        make_losses,
        make_schedule,
        open_run_dir,
        patience_spent,
        plot_learning_curves,
        record_run_start,
        resumed_best,
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
        # Early stopping would end the run after one more epoch: end it before.
        if not args.swa_start and patience_spent(args.out, "val_score", args.patience, True):
            return 0
    samples = training_samples(args.data)
    check_lesion_masks(samples, args.data)
    # A lesion without its mask would train as "no lesion"; left out after the split,
    # so the duplicate groups held out stay those of the other scripts.
    train_s, val_s = run_split(samples, args.val_fraction, split_seed, keep=has_usable_mask,
                               limit=args.limit, seed=args.seed)
    split = split_record(train_s, val_s)
    if args.resume:
        check_resumed_split(args.out, split)
    if args.init_pretrained and not args.resume:
        from .pretrain import check_pretrained

        # Before the run folder is touched: a refused start leaves an earlier run as it was.
        try:
            check_pretrained(args.init_pretrained, train_s, size, args.base_filters)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--init-pretrained: {exc}") from None
    if args.init_from and not args.resume:
        check_init_from(args.init_from, args.init_member, size, args.base_filters)
    out = open_run_dir(args.out, args.resume, args.overwrite)
    keras.utils.set_random_seed(args.seed)
    record_run_start(out, settings, split, args.resume)
    log.info("train %d, val %d images (split by duplicate_group, seed %d)",
             len(train_s), len(val_s), split_seed)

    xtr, mtr, ytr = load_arrays(train_s, size, progress=args.verbose > 0)
    validate = len(val_s) > 0
    xva, mva, yva = load_arrays(val_s, size, progress=args.verbose > 0) if validate else (None,) * 3

    steps = args.steps_per_epoch or max(1, int(np.ceil(len(xtr) / args.batch_size)))
    train_ds = make_dataset(xtr, mtr, ytr, args.batch_size, training=True, seed=args.seed,
                            mixup_alpha=args.mixup, num_classes=len(CLASS_NAMES),
                            mixup_lesion_wins=args.mixup_targets == "lesion",
                            mixup_pairs=args.mixup_pairs, augment_strength=args.augment)
    model = get_multitask_unet(size, args.base_filters, num_classes=len(CLASS_NAMES))
    if args.init_from and not args.resume:
        model.set_weights(exported_member_weights(args.init_from, args.init_member, model))
        log.info("starting from member %d of %s", args.init_member, args.init_from)
    if args.init_pretrained and not args.resume:
        from .pretrain import load_pretrained

        copied = load_pretrained(model, args.init_pretrained)
        log.info("encoder and decoder (%d layers) from the pretraining in %s", copied,
                 args.init_pretrained)
    schedule = make_schedule(args.lr, args.epochs, steps, args.swa_start, args.swa_lr)
    counts = np.bincount(ytr, minlength=len(CLASS_NAMES)).astype(float)
    # Square-root inverse frequency: helps malignant recall without
    # distorting the probabilities as much as full inverse weights would.
    class_weights = np.sqrt(counts.sum() / np.maximum(counts, 1) / len(CLASS_NAMES))
    seg_loss, cls_loss = make_losses(class_weights, args.label_smoothing, args.seg_loss,
                                     args.presence_weight)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss={"seg": seg_loss, "cls": cls_loss},
        loss_weights={"seg": 1.0, "cls": args.cls_weight},
    )
    callbacks = [ValidationScore(xva, mva, yva)] if validate else []
    if args.swa_start:
        # A subset keeps the per-epoch BatchNorm pass short; export redoes it on all.
        bn_subset = np.random.default_rng(args.seed).permutation(len(xtr))[:160]
        callbacks.append(WeightAverage(out, args.swa_start, (xva, mva, yva) if validate else None,
                                       xtr[bn_subset], resume=args.resume))
    # Kept after a finished run too, so --resume with more --epochs extends it.
    callbacks.append(run_backup(out))
    # Read before CSVLogger appends to it.
    best, wait = resumed_best(out, "val_score", args.resume)
    if validate:
        callbacks.append(best_checkpoint(out / "best.keras", "val_score", best))
    callbacks += [
        HistoryLogger(str(out / "history.csv"), append=args.resume),
        keras.callbacks.TerminateOnNaN(),
    ]
    if not args.swa_start:  # an average wants the whole schedule
        callbacks.append(ResumedEarlyStopping(best, wait, monitor="val_score",
                                              patience=args.patience))
    t0 = time.time()
    model.fit(
        train_ds,
        epochs=args.epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    minutes = (time.time() - t0) / 60
    plot_learning_curves(out / "history.csv", out / "learning_curves.png")
    (out / "train_info.json").write_text(json.dumps({
        "args": vars(args), "input_size": size, "minutes_this_session": round(minutes, 1),
        "train_images": len(train_s), "val_images": len(val_s),
        "class_weights": class_weights.tolist(), "tf_version": tf.__version__,
    }, indent=1))
    product = out / ("best.keras" if validate else "swa.keras")
    if not product.exists():
        log.error("done in %.1f min, but no epoch was kept: %s was not written "
                  "(no epoch scored, or none beat the run's best)", minutes, product)
        return 1
    log.info("done in %.1f min; model at %s", minutes, product)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
