"""Training pieces: augmentation, losses, validation scoring, learning curves.

Arrays are ``(N, S, S, 1)`` float32; images in [0, 1], masks in {0, 1}.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data import CLASS_NAMES
from .metrics import classification_report, overlap_scores, softmax

log = logging.getLogger(__name__)

NUM_CLASSES = len(CLASS_NAMES)


#: ``augment(strength="strong")``: the largest rotation, in degrees (a probe held
#: at a slant), and the largest share of a blurred copy blended in (a coarser
#: scanner or preset).
STRONG_ROTATION_DEG = 12.0
STRONG_BLUR = 1.0


def _rotate(both, max_deg):
    """Rotate each sample about its centre by an angle drawn from ``[-max_deg, max_deg]``.

    Parameters
    ----------
    both : tf.Tensor
        ``(B, H, W, C)`` float32, image and mask channels together, so they turn alike.
    max_deg : float
        Largest angle either way, in degrees.

    Returns
    -------
    tf.Tensor
        ``(B, H, W, C)``, bilinear; corners that come from outside the image are 0,
        as with the zoom. The centre is ``((W - 1) / 2, (H - 1) / 2)`` in (x, y)
        pixel coordinates, x along columns and y down the rows.
    """
    b = tf.shape(both)[0]
    h = tf.cast(tf.shape(both)[1], tf.float32)
    w = tf.cast(tf.shape(both)[2], tf.float32)
    theta = tf.random.uniform([b], -max_deg, max_deg) * (np.pi / 180.0)
    c, s = tf.cos(theta), tf.sin(theta)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    # Output pixel (x, y) reads input (c x - s y + a2, s x + c y + b2): a rotation about the centre.
    a2 = cx - c * cx + s * cy
    b2 = cy - s * cx - c * cy
    zeros = tf.zeros_like(c)
    transforms = tf.stack([c, -s, a2, s, c, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=both, transforms=transforms, output_shape=tf.shape(both)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")


def _blur(img, max_share):
    """Blend each sample with a 3x3 binomial blur of itself, by a share from ``[0, max_share)``.

    Parameters
    ----------
    img : tf.Tensor
        ``(B, H, W, 1)`` float32 images.
    max_share : float
        Largest weight of the blurred copy, in [0, 1].

    Returns
    -------
    tf.Tensor
        ``(B, H, W, 1)``. The blur pads with zeros, so the outermost pixel ring of a
        blurred sample darkens by up to a quarter (the corners by 7/16); ``twinG`` was
        trained so, and the ring is mostly the scanner's black margin anyway.
    """
    k = tf.constant([1.0, 2.0, 1.0]) / 4.0
    kernel = tf.reshape(k[:, None] * k[None, :], [3, 3, 1, 1])
    blurred = tf.nn.conv2d(img, kernel, strides=1, padding="SAME")
    share = tf.random.uniform([tf.shape(img)[0], 1, 1, 1], 0.0, max_share)
    return (1.0 - share) * img + share * blurred


#: ``models.train --augment`` choices.
AUGMENT_STRENGTHS = ("standard", "strong")


def augment(image, mask, seed=None, strength="standard"):
    """Ultrasound-plausible augmentation of a batch, applied jointly to image and mask.

    Left-right flips (laterality is arbitrary) but no up-down flips, because
    depth runs down the image; random zoom in/out, shift and mild aspect
    change; gain, contrast and gamma changes like those between scanners'
    presets; and speckle-like multiplicative noise. ``strength="strong"``
    adds a rotation of up to ``STRONG_ROTATION_DEG`` either way, before the
    zoom, and a blend with a blurred copy of up to ``STRONG_BLUR``, before the
    speckle; ``"standard"`` runs exactly the operations it always ran.

    Parameters
    ----------
    image, mask : tf.Tensor
        ``(B, S, S, 1)`` float32.
    strength : {"standard", "strong"}
    """
    if strength not in AUGMENT_STRENGTHS:
        raise ValueError(f"strength: expected one of {AUGMENT_STRENGTHS}, got {strength!r}")
    strong = strength == "strong"
    b = tf.shape(image)[0]
    size = tf.shape(image)[1:3]
    both = tf.concat([image, mask], axis=-1)
    flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
    both = tf.where(flip, tf.reverse(both, axis=[2]), both)
    if strong:
        both = _rotate(both, STRONG_ROTATION_DEG)

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
    if strong:
        img = _blur(img, STRONG_BLUR)
    speckle = 1.0 + tf.random.normal(tf.shape(img)) * tf.random.uniform([b, 1, 1, 1], 0, 0.12)
    img = tf.clip_by_value(img * speckle, 0.0, 1.0)
    return img, msk


#: A run's settings, written when it starts (``train_info.json`` only comes at the end).
RUN_SETTINGS = "run_settings.json"

#: Arguments a resumed run may change: they do not alter the split, the network or the
#: schedule so far (``--epochs`` extends a finished run).
MAY_CHANGE_ON_RESUME = frozenset({"epochs", "resume", "overwrite", "verbose", "out", "patience",
                                  "init_from", "init_member", "init_pretrained"})


def check_run_dir(out, resume, overwrite=False):
    """Refuse a run folder that cannot be used, before anything is read or written.

    A new run into a folder holding anything would leave an earlier run's
    ``best.keras`` or ``train_info.json`` beside its own split, to be exported
    as if they were its own; ``--overwrite`` clears the folder (when
    :func:`open_run_dir` opens it, after every other check). A resume needs the
    folder's ``backup/``: without it, the old history and best score would be
    mixed with a run started again. A resume into a folder that is missing or
    empty is refused as well: it is most likely a mistyped ``--out``.

    Raises
    ------
    UsageError
        Naming the folder and what to do.
    """
    from ._cli import UsageError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    busy = out.is_dir() and any(out.iterdir())
    if resume and overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite clears it; "
                         "pick one")
    if resume and not busy:
        # A mistyped --out would otherwise start the whole run again from random
        # weights (an hour at the shipped size) while the real run stays unresumed.
        what = "is empty" if out.is_dir() else "does not exist"
        raise UsageError(f"--resume: {out} {what}, so there is no run to continue (a "
                         "mistyped --out?); start a new run without --resume")
    if resume and not (out / "backup").is_dir():
        raise UsageError(f"--resume: {out} has no backup/ to continue from; start again "
                         "with --overwrite (clears the folder) or with another --out")
    if not resume and busy and not overwrite:
        raise UsageError(f"--out {out} is not empty (an earlier run?); add --resume to "
                         "continue it, --overwrite to clear it, or pick another --out")


def open_run_dir(out, resume, overwrite=False):
    """Make the run folder ``out``, cleared first with ``overwrite``.

    Call :func:`check_run_dir` first, and this only once every other input
    has been checked: a refused start leaves an earlier run as it was.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    UsageError
        If the folder cannot be made.
    """
    from ._cli import UsageError

    out = Path(out)
    if overwrite and not resume and out.is_dir():
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot make the folder ({exc.strerror or exc})") from None
    return out


def run_settings(args, **effective):
    """The settings that define a run: its arguments but those it may change on resume.

    Parameters
    ----------
    args : argparse.Namespace
        The script's arguments.
    **effective
        Values that replace a default (``input_size=160``, ``split_seed=42``).

    Returns
    -------
    dict
        JSON-ready; ``data`` as an absolute path.
    """
    settings = {k: v for k, v in vars(args).items() if k not in MAY_CHANGE_ON_RESUME}
    settings["data"] = str(Path(args.data).resolve())
    settings.update(effective)
    return json.loads(json.dumps(settings))


def _recorded_settings(out):
    """The run's settings: ``RUN_SETTINGS``, or a finished older run's ``train_info.json``."""
    out = Path(out)
    if (out / RUN_SETTINGS).is_file():
        return json.loads((out / RUN_SETTINGS).read_text())
    if not (out / "train_info.json").is_file():
        return None
    info = json.loads((out / "train_info.json").read_text())
    recorded = dict(info.get("args", {}))
    if recorded.get("split_seed") is None and "seed" in recorded:
        recorded["split_seed"] = recorded["seed"]
    if "data" in recorded:
        recorded["data"] = str(Path(recorded["data"]).resolve())
    recorded.update({k: info[k] for k in ("input_size", "crop_size") if k in info})
    return recorded


def check_resume_settings(out, settings):
    """Refuse to resume the run in ``out`` with settings other than its own.

    Another seed or split seed would draw another split, whose validation
    images the saved weights have trained on; another network does not load;
    another learning rate or batch size mixes two schedules, while the record
    says only one. Arguments in :data:`MAY_CHANGE_ON_RESUME` may change.

    Raises
    ------
    UsageError
        Naming each setting that differs, with the run's value and the new one.
    """
    from ._cli import UsageError

    recorded = _recorded_settings(out)
    if recorded is None:
        return
    differ = [f"--{k.replace('_', '-')} {recorded[k]!r} (now {v!r})"
              for k, v in settings.items() if k in recorded and recorded[k] != v]
    if differ:
        raise UsageError(f"--resume: {out} was started with other settings: "
                         f"{', '.join(differ)}; resume with the run's own")


def check_resumed_split(out, record):
    """Refuse to resume a run whose ``split.json`` is not the split drawn now.

    Catches what the settings cannot: a data folder whose files changed.

    Raises
    ------
    UsageError
        The validation images would differ from those the run has been scored on.
    """
    from ._cli import UsageError

    path = Path(out) / "split.json"
    if path.is_file() and json.loads(path.read_text()) != json.loads(json.dumps(record)):
        raise UsageError(f"--resume: the split drawn now differs from {path} (has --data "
                         "changed?); resume on the run's own images")


def record_run_start(out, settings, split, resume):
    """Write the run's settings and split when it starts; a resume keeps the run's own."""
    out = Path(out)
    for name, value in ((RUN_SETTINGS, settings), ("split.json", split)):
        if value is not None and not (resume and (out / name).is_file()):
            (out / name).write_text(json.dumps(value, indent=1))


def history_rows(history_csv):
    """The rows of a Keras ``CSVLogger`` file that can be read under its header.

    A row of another width than the header holds another run's keys (a run resumed,
    before :class:`HistoryLogger`, with other logged keys than the first): read by
    position it would put one key's values under another's name (a loss taken for the
    best score), so it is left out, with a warning.

    Returns
    -------
    list of dict
        ``{column: cell}`` per row, in the file's order.
    """
    with open(history_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return []
    header, kept = rows[0], []
    for row in rows[1:]:
        if len(row) == len(header):
            kept.append(dict(zip(header, row, strict=True)))
    if len(kept) < len(rows) - 1:
        log.warning("%s: %d row(s) of another width than its header left out: their "
                    "columns cannot be named", history_csv, len(rows) - 1 - len(kept))
    return kept


class HistoryLogger(keras.callbacks.CSVLogger):
    """``CSVLogger`` whose resumed run writes its rows under a header that names them.

    Keras appends a resumed run's rows in the order of *its* keys under the header the
    file already has: a run resumed with another key set (a metric added, a learning
    rate logged) had its values read under other names, by :func:`resumed_best` too.
    Here the file is rewritten once, before the first appended row, with a header of
    both runs' keys (the earlier rows keep their values; a key a run did not log is
    ``NA``, as Keras writes a missing one).
    """

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None and self.append and not self.append_header:
            self._widen(sorted((logs or {}).keys()))
        super().on_epoch_end(epoch, logs)

    def _widen(self, keys):
        if not any(k.startswith("val_") for k in keys) and keys:  # as CSVLogger does
            keys = keys + [f"val_{k}" for k in keys]
        with open(self.filename, newline="") as fh:
            header = next(csv.reader(fh), None)
        if not header or "epoch" not in header:
            return
        logged = [k for k in header if k != "epoch"]
        union = sorted(set(logged) | set(keys))
        self.keys = union  # the order of the file's columns, for every row appended
        if union == logged and header[0] == "epoch":
            return
        rows = history_rows(self.filename)
        self.csv_file.close()
        tmp = _temporary(self.filename)
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["epoch", *union], restval="NA")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.filename)
        self.csv_file = open(self.filename, "a", newline="")  # noqa: SIM115 (Keras closes it)
        log.info("%s: its header now names this run's keys too (%s)", self.filename,
                 ", ".join(sorted(set(keys) - set(logged))) or "reordered")


def resumed_best(out, monitor, resume):
    """The best ``monitor`` (higher is better) a resumed run reached, and epochs since.

    Keras's ``ModelCheckpoint`` and ``EarlyStopping`` start each ``fit`` with no best
    score: without this, the first epoch after ``--resume`` would overwrite
    ``best.keras`` however poor it is, and the patience would start again.

    Parameters
    ----------
    out : path
        The run folder, whose ``history.csv`` (Keras ``CSVLogger``) lists the epochs run.
    monitor : str
        Logged score, e.g. ``"val_score"``.
    resume : bool
        False for a new run, which has no best yet.

    Returns
    -------
    best : float or None
        None when nothing was scored before.
    wait : int
        Epochs logged since the best one.
    """
    history = Path(out) / "history.csv"
    if not resume or not history.is_file():
        return None, 0
    cells = [row.get(monitor) for row in history_rows(history)]
    values = [float(c) if c not in (None, "", "NA") else np.nan for c in cells]
    if not values or np.isnan(values).all():
        return None, 0
    best = int(np.nanargmax(values))
    return float(values[best]), len(values) - 1 - best


def patience_spent(out, monitor, patience, resume) -> bool:
    """Whether a resumed run has already waited out ``patience``, said in the log if so.

    Keras's ``EarlyStopping`` looks only at the end of an epoch: a run resumed with
    less patience than the epochs it has gone without beating its best trained one
    more epoch (an hour at the shipped size, for nothing) before stopping. Keras
    stops once ``wait`` non-improving epochs reach ``patience`` (1 for patience 0).

    Parameters
    ----------
    out : path
        The run folder.
    monitor : str
        Logged score, higher is better (see :func:`resumed_best`).
    patience : int
        The resumed run's ``--patience``.
    resume : bool
        False for a new run, whose patience is never spent.
    """
    best, wait = resumed_best(out, monitor, resume)
    if best is None or wait < max(patience, 1):
        return False
    log.warning("--resume: %s has not beaten its best %s, %.4f, for %d epoch(s), so "
                "--patience %d is already spent and no epoch is trained; give a larger "
                "--patience to go on", out, monitor, best, wait, patience)
    return True


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` (``mode="max"``) that goes on from a resumed run's best and wait.

    Parameters
    ----------
    best : float or None
        Best score before this ``fit`` (see :func:`resumed_best`); None for a new run.
    wait : int
        Epochs already run since that best.
    **kwargs
        For ``keras.callbacks.EarlyStopping``.
    """

    def __init__(self, best=None, wait=0, **kwargs):
        super().__init__(mode="max", **kwargs)
        self._resumed = (best, wait)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._resumed[0] is not None:
            self.best, self.wait = self._resumed

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.stopped_epoch > 0:  # Keras says so only with verbose=1
            log.info("early stopping after epoch %d: %s has not beaten %.4f for %d epochs",
                     self.stopped_epoch + 1, self.monitor, self.best, self.wait)


def _temporary(path):
    """A name beside ``path`` keeping its suffixes (``.keras``, ``.weights.h5``), as Keras wants."""
    path = Path(path)
    return path.with_name(f"tmp-{path.name}")


def save_model_atomic(model, path):
    """``model.save(path)`` through a temporary file, so a kill mid-write leaves the old file."""
    tmp = _temporary(path)
    model.save(tmp)
    os.replace(tmp, path)


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the epoch of highest ``monitor`` as ``path``, written atomically.

    Keras's ``ModelCheckpoint`` writes in place: a run killed while it writes
    leaves a truncated ``best.keras`` and no model at all.

    Parameters
    ----------
    path : path-like
        The ``.keras`` file.
    monitor : str
        Logged score, higher is better; an epoch without it (or NaN) is skipped.
    best : float or None
        Score to beat (a resumed run's best so far).
    """

    def __init__(self, path, monitor, best=None):
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or np.isnan(value):
            return
        if self.best is None or value > self.best:
            self.best = float(value)
            save_model_atomic(self.model, self.path)


def best_checkpoint(path, monitor, best=None):
    """:class:`BestCheckpoint` keeping the epoch of highest ``monitor``, beating ``best`` if set."""
    return BestCheckpoint(path, monitor, best)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose per-epoch backup is replaced whole, never half-written.

    Keras writes ``backup/latest.weights.h5`` in place; a kill during that
    write left a file h5py cannot open, and the run could not be resumed.
    Here the weights and then the epoch go to temporary files first and are
    renamed over the old ones (a kill between the two renames replays one epoch).
    """

    def _save_model(self):
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        weights, meta = Path(self._weights_path), Path(self._training_metadata_path)
        self.model.save_weights(str(_temporary(weights)), overwrite=True)
        _temporary(meta).write_text(json.dumps({"epoch": self._current_epoch,
                                                "batch": self._last_batch_seen}))
        os.replace(_temporary(weights), weights)
        os.replace(_temporary(meta), meta)


def run_backup(out):
    """The per-epoch backup callback of the run in ``out`` (``out/backup``), kept at the end."""
    return AtomicBackupAndRestore(str(Path(out) / "backup"), delete_checkpoint=False)


def check_backup(out):
    """Refuse to resume from a backup that cannot be read, naming the file.

    Raises
    ------
    UsageError
        ``backup/latest.weights.h5`` or its epoch file is truncated or unreadable
        (left by a kill while an older version wrote it in place).
    """
    import h5py

    from ._cli import UsageError

    backup = Path(out) / "backup"
    weights, meta = backup / "latest.weights.h5", backup / "training_metadata.json"
    what = weights
    try:
        if weights.exists():
            with h5py.File(weights, "r") as f:
                f.visit(lambda name: None)
        what = meta
        if meta.exists():
            int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume: {what} is damaged ({str(exc).splitlines()[0][:80]}; a kill "
                         "while it was written?), so the run cannot go on from it; start again "
                         "with --overwrite, or resume from a copy of the folder") from None


def align_history(out):
    """Make ``history.csv`` list once each epoch the run's backup holds, before a resume.

    The backup and ``CSVLogger`` write at each epoch's end one after the other, and a
    kill can fall between them: the row of an epoch the backup does not hold would
    be logged again when the epoch is replayed, and a row cut short by the kill
    would run into the next one. Rows the backup does not hold (``epoch`` at or past
    its epoch count), a last row cut short (no line end), rows without an epoch, and
    all but the last row of an epoch are dropped, so the learning curve and
    :func:`resumed_best` read each epoch once. Nothing is done without both files.

    Parameters
    ----------
    out : path
        The run folder, with ``history.csv`` and ``backup/training_metadata.json``.

    Returns
    -------
    int
        The number of rows dropped.
    """
    history = Path(out) / "history.csv"
    meta = Path(out) / "backup" / "training_metadata.json"
    if not history.is_file() or not meta.is_file():
        return 0
    done = int(json.loads(meta.read_text())["epoch"])  # epochs completed (Keras's meaning)
    with open(history, newline="") as fh:
        text = fh.read()
    rows = list(csv.reader(text.splitlines()))
    if not rows or "epoch" not in rows[0]:
        return 0
    if not text.endswith("\n") and len(rows) > 1:
        rows[-1] = []  # cut short mid-write: even a whole-looking last cell may be truncated
    header, column = rows[0], rows[0].index("epoch")
    kept = {}
    for row in rows[1:]:
        try:
            # A row may hold other columns than the header (CSVLogger appends a resumed
            # run's keys under the old header): kept as it is, it is that epoch's.
            epoch = int(row[column]) if len(row) > column else None
        except ValueError:
            epoch = None
        if epoch is not None and 0 <= epoch < done:
            kept[epoch] = row
    dropped = len(rows) - 1 - len(kept)
    if dropped:
        tmp = _temporary(history)
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([header] + [kept[e] for e in sorted(kept)])
        os.replace(tmp, history)
        log.info("%s: dropped %d row(s) the backup does not hold (a kill between the "
                 "backup and the log?), so each of its %d epochs is listed once",
                 history, dropped, done)
    return dropped


def check_checkpoint(path):
    """Refuse a ``.keras`` file that exists but cannot be read (truncated), naming it.

    Keras says "File not found" of a truncated ``best.keras``; this says what it is.

    Raises
    ------
    UsageError
        ``path`` is missing, or is not a whole ``.keras`` archive.
    """
    import zipfile

    from ._cli import UsageError

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such checkpoint")
    try:
        with zipfile.ZipFile(path) as z:
            broken = z.testzip()
    except (OSError, zipfile.BadZipFile):
        broken = "archive"
    if broken is not None:
        raise UsageError(f"{path} is damaged (truncated or not a .keras file; a kill while it "
                         "was written?)")


#: Weight from which a lesion image blended into a normal one makes the blend a
#: lesion image (``mixup(lesion_wins=True)``): fainter, it hides in the speckle.
MIXUP_VISIBLE = 0.1


def mixup(image, mask, onehot, alpha, lesion_wins=False, pairs="any"):
    """Blend each sample of a batch with another sample of the same batch (mixup).

    Zhang et al. 2018: training on convex combinations of pairs of images,
    with the same combination of their targets, regularises a network that
    otherwise memorises its few hundred training images. ``lam`` is drawn
    from ``Beta(alpha, alpha)`` per sample and folded to ``max(lam, 1 - lam)``,
    so each blend stays closer to its own sample than to its partner.

    Parameters
    ----------
    image, mask : tf.Tensor
        ``(B, S, S, 1)`` float32; masks may come out soft, in [0, 1].
    onehot : tf.Tensor
        ``(B, K)`` float32 class targets, each row summing to 1.
    alpha : float
        Beta-distribution parameter, > 0; small values keep most blends faint.
    lesion_wins : bool
        Class 0 (normal) means "no lesion". A blend of a normal image with a
        lesion still shows that lesion, so with ``True`` the normal share of
        such a target goes to the lesion classes in proportion, once the
        lesion image weighs at least ``MIXUP_VISIBLE``; the plain blend
        instead teaches the head that a faint lesion is partly normal.
    pairs : {"any", "status"}
        ``"status"`` blends normal images only with normal images and lesion
        images only with lesion images (a sample with no such partner in the
        batch is left as it is): no blend then shows a faint lesion on a
        normal breast, and the share of normal targets stays that of the data.

    Returns
    -------
    tuple of tf.Tensor
        ``(image, mask, onehot)`` blended, same shapes.
    """
    b = tf.shape(image)[0]
    # Beta(a, a) as a ratio of two Gamma(a) draws (tf.random has no beta).
    g1 = tf.random.gamma([b], alpha)
    g2 = tf.random.gamma([b], alpha)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    lam = tf.maximum(lam, 1.0 - lam)
    if pairs == "status":
        normal = onehot[:, 0] > 0.5
        allowed = tf.logical_and(tf.equal(normal[:, None], normal[None, :]),
                                 tf.logical_not(tf.eye(b, dtype=tf.bool)))
        pick = tf.argmax(tf.where(allowed, tf.random.uniform([b, b]), -1.0), axis=1,
                         output_type=tf.int32)
        partner = tf.where(tf.reduce_any(allowed, axis=1), pick, tf.range(b))
    elif pairs == "any":
        partner = tf.random.shuffle(tf.range(b))
    else:
        raise ValueError(f"pairs: expected 'any' or 'status', got {pairs!r}")
    w = tf.reshape(lam, [-1, 1, 1, 1])

    def blend(x, weight):
        return weight * x + (1.0 - weight) * tf.gather(x, partner)

    target = blend(onehot, tf.reshape(lam, [-1, 1]))
    if lesion_wins:
        lesion = target[:, 1:]
        share = tf.reduce_sum(lesion, axis=1, keepdims=True)
        moved = tf.concat([tf.zeros_like(share), lesion / tf.maximum(share, 1e-12)], axis=1)
        target = tf.where(share >= MIXUP_VISIBLE, moved, target)
    return blend(image, w), blend(mask, w), target


def make_dataset(images, masks, labels, batch_size, training, seed=0, mixup_alpha=0.0,
                 num_classes=NUM_CLASSES, mixup_lesion_wins=False, mixup_pairs="any",
                 augment_strength="standard"):
    """A ``tf.data`` pipeline giving ``({image, hint, use_hint}, {seg, cls})`` batches.

    In training, half the batch sees its true mask as the classification
    hint, so the classifier learns to use a radiologist's outline as well as
    its own. With ``mixup_alpha > 0`` training batches are blended by
    ``mixup`` after augmentation, and ``cls`` holds ``(B, num_classes)`` soft
    targets instead of ``(B,)`` class indices (``make_losses`` takes both);
    ``mixup_lesion_wins`` and ``mixup_pairs`` are ``mixup``'s ``lesion_wins`` and
    ``pairs``; ``augment_strength`` is ``augment``'s ``strength``.
    """
    ds = tf.data.Dataset.from_tensor_slices((images, masks, labels))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    blend = training and mixup_alpha > 0

    def _to_inputs(img, msk, lab):
        if training:
            img, msk = augment(img, msk, strength=augment_strength)
            use = tf.cast(tf.random.uniform([tf.shape(img)[0], 1]) < 0.5, tf.float32)
        else:
            use = tf.zeros([tf.shape(img)[0], 1])
        if blend:
            onehot = tf.one_hot(tf.cast(tf.reshape(lab, [-1]), tf.int32), num_classes)
            img, msk, lab = mixup(img, msk, onehot, mixup_alpha, mixup_lesion_wins,
                                  mixup_pairs)
        hint = msk * tf.reshape(use, [-1, 1, 1, 1])
        return {"image": img, "hint": hint, "use_hint": use}, {"seg": msk, "cls": lab}

    return ds.map(_to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


#: Segmentation losses ``models.train --seg-loss`` accepts.
SEG_LOSSES = ("batch-dice", "image-dice", "image-tversky")

#: Weights of false positives and false negatives in the ``image-tversky`` loss
#: (Salehi et al. 2017). The networks' outlines are systematically too small
#: (precision about 0.86 against recall 0.69 on the split), so a missed lesion
#: pixel costs more than a spurious one.
TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7


#: Pixels whose mean probability is an image's "is there a lesion?" score in the
#: presence term of ``make_losses``: a soft maximum, about the smallest lesion the
#: post-processing keeps at 160x160 (``min_area_frac`` 0.001 is 26 pixels) twice over.
PRESENCE_TOP_K = 64


def make_losses(class_weights, label_smoothing=0.0, seg="batch-dice", presence_weight=0.0):
    """Return ``(seg_loss, cls_loss)``.

    Segmentation, binary cross-entropy plus one of:

    - ``"batch-dice"``: a soft Dice over the whole batch (so images of normal
      breasts, with empty masks, still count). Large lesions dominate it.
    - ``"image-tversky"``: one soft Tversky index per image,
      ``(TP + 1) / (TP + alpha FP + beta FN + 1)`` with
      ``alpha, beta = TVERSKY_ALPHA, TVERSKY_BETA``, averaged over the batch, so
      that every image weighs the same, as in the mean Dice the model is scored
      on. On an empty mask it is ``1 / (alpha * sum(p) + 1)``: any mass predicted
      on a normal image is penalised.
    - ``"image-dice"``: the same per image with ``alpha = beta = 0.5``, the soft
      Dice of each image, without the tilt towards recall.

    With ``presence_weight > 0`` the segmentation loss also scores each image as
    a whole: the binary cross-entropy between "the true mask has a lesion"
    (its maximum, soft under mixup) and the mean of the image's
    ``PRESENCE_TOP_K`` most probable pixels, times ``presence_weight``. The
    per-image Dice of an empty mask, ``1 / (0.5 * sum(p) + 1)``, saturates: once
    a network draws a confident blob on a normal breast it gets almost no
    gradient to remove it, and a lesion left empty costs the same whether its
    best pixel is at 0.1 or 0.45. The presence term is steepest exactly there.

    Classification: class-weighted softmax cross-entropy on logits, with optional
    label smoothing: the head memorises 495 training images within a few dozen
    epochs, and smoothed targets keep its logits from growing without bound.
    Its targets are ``(B,)`` class indices or ``(B, K)`` soft targets (mixup),
    whose class weight is the target-weighted mean of the classes' weights.

    Parameters
    ----------
    class_weights : sequence of float
        One weight per class.
    label_smoothing : float
        In [0, 1).
    seg : str
        One of ``SEG_LOSSES``.
    presence_weight : float
        Weight of the image-level presence term, >= 0 (0: off).

    Raises
    ------
    ValueError
        For an unknown ``seg`` or a negative ``presence_weight``.
    """
    if seg not in SEG_LOSSES:
        raise ValueError(f"seg: expected one of {SEG_LOSSES}, got {seg!r}")
    if not presence_weight >= 0:
        raise ValueError(f"presence_weight: expected >= 0, got {presence_weight!r}")
    alpha, beta = (TVERSKY_ALPHA, TVERSKY_BETA) if seg == "image-tversky" else (0.5, 0.5)
    cw = tf.constant(np.asarray(class_weights, np.float32))
    k = len(class_weights)

    def presence(y_true, y_pred):
        b = tf.shape(y_pred)[0]
        flat_true = tf.reshape(tf.cast(y_true, tf.float32), [b, -1])
        flat_pred = tf.reshape(y_pred, [b, -1])
        top = tf.minimum(PRESENCE_TOP_K, tf.shape(flat_pred)[1])
        score = tf.reduce_mean(tf.math.top_k(flat_pred, k=top).values, axis=1, keepdims=True)
        target = tf.reduce_max(flat_true, axis=1, keepdims=True)
        return tf.reduce_mean(keras.losses.binary_crossentropy(target, score))

    def seg_loss(y_true, y_pred):
        y_pred = tf.clip_by_value(y_pred, 1e-6, 1 - 1e-6)
        # Cross-entropy per pixel, plus per image with the presence term.
        ce = tf.reduce_mean(keras.losses.binary_crossentropy(y_true, y_pred))
        if presence_weight:
            ce += presence_weight * presence(y_true, y_pred)
        if seg != "batch-dice":
            axes = list(range(1, len(y_pred.shape)))
            tp = tf.reduce_sum(y_true * y_pred, axis=axes)
            fp = tf.reduce_sum((1.0 - y_true) * y_pred, axis=axes)
            fn = tf.reduce_sum(y_true * (1.0 - y_pred), axis=axes)
            index = (tp + 1.0) / (tp + alpha * fp + beta * fn + 1.0)
            return ce + tf.reduce_mean(1.0 - index)
        inter = tf.reduce_sum(y_true * y_pred)
        dice = 1.0 - (2.0 * inter + 1.0) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + 1.0)
        return ce + dice

    def cls_loss(y_true, y_pred):
        if len(y_true.shape) == 2 and y_true.shape[-1] == k:
            # Soft targets (mixup): each class weight in proportion to its share.
            soft = tf.cast(y_true, tf.float32)
        else:
            soft = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), k)
        target = soft * (1.0 - label_smoothing) + label_smoothing / k
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=y_pred)
        return tf.reduce_mean(ce * tf.reduce_sum(soft * cw, axis=-1))

    return seg_loss, cls_loss


def make_schedule(lr, epochs, steps, swa_start=0, swa_lr=None, warmup_epochs=3):
    """The learning-rate schedule: linear warm-up from ``lr / 10``, then cosine decay.

    Without weight averaging the cosine runs to ``lr / 50`` at the last
    epoch. With ``swa_start`` (1-based epoch) it reaches ``swa_lr``
    (default ``lr / 2``) at the start of that epoch and stays flat (Keras'
    ``CosineDecay`` holds ``alpha`` after ``decay_steps``): SWA wants the
    weights to keep moving so that the average spans a wide basin.

    Returns
    -------
    keras.optimizers.schedules.LearningRateSchedule
        Indexed by optimiser step; ``steps`` steps per epoch.
    """
    warmup = steps * warmup_epochs
    if swa_start:
        decay_steps, alpha = (swa_start - 1) * steps - warmup, (swa_lr or lr / 2) / lr
    else:
        decay_steps, alpha = epochs * steps - warmup, 0.02
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10,
        decay_steps=max(1, decay_steps),
        alpha=alpha,
        warmup_target=lr,
        warmup_steps=warmup,
    )


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


SCORE_KEYS = ("dice", "acc", "macro_f1", "normal_empty", "malignant_recall", "score")


def validation_logs(model, images, masks, labels, prefix="val_"):
    """Score ``model`` on validation arrays: ``{prefix}{key}`` for each of :data:`SCORE_KEYS`.

    ``score = dice + macro_f1``: one number for checkpointing that rewards
    both heads.
    """
    seg, logits = predict_arrays(model, images)
    s = score_predictions(seg, logits, masks, labels)
    values = (s["dice"], s["accuracy"], s["macro_f1"], s["normal_empty"], s["malignant_recall"],
              np.nan_to_num(s["dice"]) + s["macro_f1"])
    return {prefix + k: v for k, v in zip(SCORE_KEYS, values, strict=True)}


class ValidationScore(keras.callbacks.Callback):
    """Adds ``val_dice``, ``val_acc``, ``val_normal_empty`` and ``val_score`` to the logs.

    Place it first in the callback list so that the checkpoint and early
    stopping see these keys.
    """

    def __init__(self, images, masks, labels):
        super().__init__()
        self.images, self.masks, self.labels = images, masks, labels

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs.update(validation_logs(self.model, self.images, self.masks, self.labels))
        log.info("epoch %d: val dice %.3f acc %.3f f1 %.3f normal-empty %.2f", epoch + 1,
                 logs["val_dice"], logs["val_acc"], logs["val_macro_f1"], logs["val_normal_empty"])


class WeightAverage(keras.callbacks.Callback):
    """Stochastic weight averaging (Izmailov et al., 2018) from epoch ``start`` on.

    Keeps the running mean of the weights at the end of every epoch from
    ``start`` (1-based), re-estimates its BatchNorm statistics on clean
    training images, scores it on validation (``val_swa_*`` keys) and saves
    it as ``out/swa.keras``. On 495 training images the best single epoch,
    picked on 127 validation images, is a noisy choice; the average of the
    late epochs does not depend on that choice and sits in a flatter part
    of the loss surface, which is what carries over to unseen scanners.

    The average lives in ``out/swa_state.npz`` so ``--resume`` continues
    it; an epoch already averaged (a run killed between the state and the
    Keras backup) is not counted twice.

    Parameters
    ----------
    out : path-like
        The run folder.
    start : int
        First epoch (1-based) in the average.
    val : tuple of numpy.ndarray or None
        ``(images (N, S, S, 1), masks (N, S, S, 1), labels (N,))``; None for a
        refit on every image, where the average is kept but not scored.
    bn_images : numpy.ndarray
        ``(M, S, S, 1)`` un-augmented training images for the BatchNorm pass.
    resume : bool
        Continue the average in ``out/swa_state.npz``; otherwise start afresh.
    """

    def __init__(self, out, start, val, bn_images, resume=False):
        super().__init__()
        self.out, self.start, self.val, self.bn_images = Path(out), int(start), val, bn_images
        self.state_path = self.out / "swa_state.npz"
        self.average, self.count, self.last_epoch = None, 0, -1
        if resume and self.state_path.exists():
            with np.load(self.state_path) as z:
                self.count, self.last_epoch = int(z["count"]), int(z["last_epoch"])
                self.average = [z[f"w{i}"] for i in range(len(z.files) - 2)]
            log.info("continuing the weight average of %d epoch(s)", self.count)
        elif not resume:
            self.state_path.unlink(missing_ok=True)

    def _save_state(self):
        tmp = self.state_path.with_suffix(".tmp.npz")
        np.savez(tmp, count=self.count, last_epoch=self.last_epoch,
                 **{f"w{i}": w for i, w in enumerate(self.average)})
        tmp.replace(self.state_path)  # atomic: a kill mid-write leaves the old state

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        # CSVLogger fixes its columns at the first epoch, so the keys are always there.
        if self.val is not None:
            logs.update({f"val_swa_{k}": np.nan for k in SCORE_KEYS})
        if epoch + 1 < self.start:
            return
        current = self.model.get_weights()
        if epoch > self.last_epoch:
            if self.average is None:
                self.average = [np.array(w, np.float64) for w in current]
            else:
                for a, w in zip(self.average, current, strict=True):
                    a += (w - a) / (self.count + 1)
            self.count, self.last_epoch = self.count + 1, epoch
            self._save_state()
        try:
            self.model.set_weights([a.astype(w.dtype) for a, w in zip(self.average, current,
                                                                       strict=True)])
            recalibrate_batchnorm(self.model, self.bn_images, passes=1)
            if self.val is not None:
                logs.update(validation_logs(self.model, *self.val, prefix="val_swa_"))
            save_model_atomic(self.model, self.out / "swa.keras")
        finally:
            self.model.set_weights(current)
        if self.val is None:
            log.info("epoch %d: average of %d epochs saved", epoch + 1, self.count)
            return
        log.info("epoch %d: average of %d epochs: val dice %.3f acc %.3f f1 %.3f", epoch + 1,
                 self.count, logs["val_swa_dice"], logs["val_swa_acc"], logs["val_swa_macro_f1"])


def recalibrate_batchnorm(model, images, batch_size=32, passes=2):
    """Re-estimate BatchNorm population statistics on un-augmented images.

    Training saw augmented batches and its moving averages lag the last
    weight updates; averaging the batch statistics of the final weights
    over clean training images (as SWA's ``update_bn`` does) removes the
    gap between training-mode and inference-mode outputs.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, S, S, 1)`` float32 in [0, 1]. Fewer than ``batch_size`` images
        leave the statistics as they are.
    """
    if len(images) < batch_size:
        # A handful of images gives worse statistics than training's (on a tiny
        # test network they broke Keras/LiteRT float16 agreement), so keep those.
        log.warning("%d images are fewer than one batch of %d; BatchNorm statistics kept",
                    len(images), batch_size)
        return
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in model.layers if isinstance(layer, (keras.layers.Dropout,
                                                                    keras.layers.SpatialDropout2D))]
    saved = [(layer, layer.rate) for layer in drops]
    momenta = [layer.momentum for layer in bns]
    for layer in drops:
        layer.rate = 0.0
    rng = np.random.default_rng(0)
    step = 0
    try:
        for _ in range(passes):
            order = rng.permutation(len(images))
            for start in range(0, len(images) - batch_size + 1, batch_size):
                x = images[order[start:start + batch_size]]
                # Cumulative average: step k weighs the new batch 1/(k+1).
                for layer in bns:
                    layer.momentum = step / (step + 1)
                model({"image": x, "hint": np.zeros_like(x),
                       "use_hint": np.zeros((len(x), 1), np.float32)}, training=True)
                step += 1
    finally:
        for layer, momentum in zip(bns, momenta, strict=True):
            layer.momentum = momentum
        for layer, rate in saved:
            layer.rate = rate
    log.info("recalibrated %d BatchNorm layers over %d batches", len(bns), step)


SCORE_CURVES = ("val_dice", "val_acc", "val_macro_f1", "val_normal_empty",
                "val_swa_dice", "val_swa_acc")


def plot_learning_curves(history_csv, out_png, losses=("loss", "seg_loss", "cls_loss"),
                         scores=SCORE_CURVES):
    """Plot losses (left) and validation scores (right) from a Keras ``CSVLogger`` file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = history_rows(history_csv)
    if not rows:
        return None
    ep = [int(r["epoch"]) + 1 for r in rows]

    def col(k):
        # CSVLogger writes "NA" for a key an epoch lacked (val_loss in a refit).
        return [float(r[k]) if r.get(k) not in (None, "", "NA") else np.nan for r in rows]

    if not scores:  # pretraining: losses only
        fig, a = plt.subplots(1, 1, figsize=(6, 4))
        b = None
    else:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k in losses:
        if k in rows[0]:
            a.plot(ep, col(k), label=k if k.startswith("val_") else f"train {k}")
    a.set_xlabel("epoch"), a.set_title("loss"), a.legend()
    for k in scores:
        if k in rows[0] and not np.isnan(col(k)).all():
            b.plot(ep, col(k), label=k)
    if b is not None:
        b.set_xlabel("epoch"), b.set_ylim(0, 1)
        if b.lines:
            b.set_title("validation"), b.legend()
        else:  # a refit on every image has nothing held out
            b.set_title("validation: none (refit on every image)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
