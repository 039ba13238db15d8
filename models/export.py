"""Export a trained checkpoint for serving, tuned and calibrated on validation.

Usage::

    python -m models.export --run runs/r2 runs/r3 --data ../shared/busi --out runs/base

``--out`` is required, and the shipped folder (``models/weights``) is refused
unless ``--replace-shipped`` is given: an export aimed nowhere in particular
must not replace the release. The export is all or nothing: every file is
written into a staging folder beside ``--out``, loaded by
:class:`models.runtime.Runtime` as the server would, and only then swapped in;
a failure leaves ``--out`` as it was.

Steps: rebuild each run's network without optimiser state and re-estimate
its BatchNorm statistics; average several runs into one ensemble (they must
share the validation split); write ``sonotrace_unet.keras`` (a standard Keras file with float16
weights, :func:`models.networks.save_half_keras`), ``sonotrace_unet.tflite``
(LiteRT) and ``manifest.json``; choose the temperature and post-processing on the
validation split (:mod:`models.tune`); then score the exported files with
:mod:`models.evaluate` and record the figures.

A refit (runs trained with ``--val-fraction 0``, on every image) has no
validation images to tune or score on. Its settings and figures come from
``--settings-from``: the export of the same recipe trained on the split,
whose validation figures are the refit's best honest estimate::

    python -m models.export --run runs/fa0 runs/fa1 --checkpoint swa.keras \
        --data ../shared/busi --settings-from runs/twin
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ._cli import cli_parser
from ._postprocess import PostProcess
from ._preprocess import INPUT_SIZE, PREPROCESSING
from .data import CLASS_NAMES, load_arrays, load_samples
from .evaluate import select_samples, split_digest, strict_json
from .networks import SEG_FUSIONS, get_ensemble, save_half_keras, save_half_weights
from .training import recalibrate_batchnorm
from .tune import record_metrics, tune_export

log = logging.getLogger("models.export")
NAME = "sonotrace_unet"
# The release the model server loads by default; replaced only on purpose.
SHIPPED = Path(__file__).parent / "weights"


def clean_model(checkpoint, input_size, base_filters, name="sonotrace_unet"):
    """Load ``checkpoint`` and copy its weights into a fresh network (no optimiser)."""
    import keras

    from .networks import get_multitask_unet

    model = get_multitask_unet(input_size, base_filters, num_classes=len(CLASS_NAMES), name=name)
    if str(checkpoint).endswith(".weights.h5"):
        model.load_weights(checkpoint)
    else:
        trained = keras.models.load_model(checkpoint, compile=False)
        model.set_weights(trained.get_weights())
    return model


def _whole_keras(checkpoint):
    """Refuse a truncated ``.keras`` in one line that says so (Keras says "File not found")."""
    from ._cli import UsageError
    from .training import check_checkpoint

    if str(checkpoint).endswith(".keras"):
        try:
            check_checkpoint(checkpoint)
        except UsageError as exc:
            raise SystemExit(str(exc)) from None


def load_unet(checkpoint, input_size, base_filters, name="sonotrace_unet"):
    """:func:`clean_model`, with a checkpoint it cannot use refused in one line.

    Raises
    ------
    SystemExit
        If ``checkpoint`` cannot be read (truncated, not a Keras file) or holds
        another network (a lesion classifier or refiner run, another width).
    """
    _whole_keras(checkpoint)
    try:
        return clean_model(checkpoint, input_size, base_filters, name=name)
    except (ValueError, OSError) as exc:
        if "set_weights" in str(exc) or "not compatible" in str(exc):
            raise SystemExit(f"{checkpoint} is not a U-Net of {input_size} px and "
                             f"{base_filters} filters (a lesion classifier or refiner run, "
                             "or another --base-filters?)") from None
        raise SystemExit(f"{checkpoint}: cannot be read ({exc})") from None


def read_run_json(run, name):
    """``RUN/NAME`` parsed, or a one-line refusal that names the file."""
    path = Path(run) / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{run}: no {name}: not a training run folder") from None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: cannot be read ({exc})") from None


def _set_crop_weights(net, checkpoint, what):
    """Copy ``checkpoint``'s weights into ``net`` (a crop network), or refuse in one line."""
    import keras

    _whole_keras(checkpoint)
    try:
        trained = keras.models.load_model(checkpoint, compile=False)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"{checkpoint}: cannot be read ({exc})") from None
    try:
        net.set_weights(trained.get_weights())
    except ValueError:
        raise SystemExit(f"{checkpoint.parent} is not {what} run of that crop size and "
                         "those filters (was --lesion-run and --refine-run swapped?)") from None


def network_of(checkpoint):
    """The input size and base filters of the U-Net saved in a run's ``checkpoint``.

    For a run without ``train_info.json`` (one killed before it ended). A bare
    ``.weights.h5`` does not record its input size (the U-Net's weights are the
    same at every size), so the run's ``best.keras`` or ``swa.keras`` is read
    in its place.

    Returns
    -------
    (int, int)

    Raises
    ------
    SystemExit
        If no full model file says what the network is, or the one there is
        not a U-Net of :func:`models.networks.get_multitask_unet`.
    """
    import keras

    from . import networks  # noqa: F401  (registers the custom layers load_model needs)

    checkpoint = Path(checkpoint)
    run = checkpoint.parent.parent if checkpoint.parent.name == "backup" else checkpoint.parent
    if checkpoint.name.endswith(".weights.h5"):
        full = [run / n for n in ("best.keras", "swa.keras") if (run / n).exists()]
        if not full:
            raise SystemExit(f"{run}: no train_info.json, and {checkpoint.name} does not say "
                             "the network's input size; a run without its record needs a "
                             "best.keras or swa.keras beside it")
        checkpoint = full[0]
    _whole_keras(checkpoint)
    try:
        model = keras.models.load_model(checkpoint, compile=False)
    except Exception as exc:  # truncated, not a Keras file, ...: say which file
        raise SystemExit(f"{checkpoint}: cannot be read ({exc})") from None
    shape = model.input_shape
    if isinstance(shape, list):  # the image first, then the training-only inputs
        shape = shape[0]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    names = {layer.name for layer in model.layers}
    if (not isinstance(shape, tuple) or len(shape) != 4 or shape[1] != shape[2]
            or shape[3] != 1 or not convs or "seg" not in names):
        raise SystemExit(f"{checkpoint} is not a U-Net of models.train (is it a lesion "
                         "classifier or refiner run?)")
    return int(shape[1]), int(convs[0].filters)


def to_litert(model, path, weights="float16") -> bool:
    """Convert to a LiteRT flatbuffer; returns False if conversion fails.

    ``weights`` is how the file stores them: ``"float16"`` (half the file;
    XNNPACK expands them to float32 at load, so inference runs at float32
    speed and precision of activations), ``"int8"`` (dynamic-range
    quantisation: a quarter of the file, kernels int8 with one scale per
    output channel, activations quantised on the fly) or ``"float32"``.
    """
    import tensorflow as tf

    try:
        with tempfile.TemporaryDirectory() as tmp:
            model.export(tmp, format="tf_saved_model", verbose=False)
            conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if weights in ("float16", "int8"):
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
            if weights == "float16":
                conv.target_spec.supported_types = [tf.float16]
            Path(path).write_bytes(conv.convert())
        return True
    except Exception:  # converter failures are many and varied; Keras still serves
        log.exception("LiteRT conversion failed; shipping Keras only")
        return False


# What a refit takes over from its validated twin: everything chosen or measured on validation.
TWIN_KEYS = (
    "temperature", "blend_temperature", "tta_flip", "postprocess", "tuning", "metrics",
)


def read_twin(folder, input_size, base_filters, members, seg_fusion="mean"):
    """The manifest of a refit's validated twin, checked to be the same network.

    Raises
    ------
    SystemExit
        If ``folder`` has no tuned manifest, or its network differs in input
        size, width, member count or how the members' maps are fused (its
        temperature and thresholds would not carry over).
    """
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise SystemExit(f"--settings-from: no manifest.json in {folder}")
    twin = json.loads(path.read_text())
    arch = twin.get("architecture", {})
    ours = (input_size, base_filters, members, seg_fusion)
    if (arch.get("input_size"), arch.get("base_filters"), arch.get("members", 1),
            arch.get("seg_fusion", "mean")) != ours:
        raise SystemExit(f"--settings-from: {folder} is a different network ({arch}); the "
                         f"refit has input {input_size}, {base_filters} filters, {members} "
                         f"member(s), {seg_fusion} fusion")
    if "metrics" not in twin or "tuning" not in twin:
        raise SystemExit(f"--settings-from: {folder} was not tuned and scored on validation")
    return twin


LESION_FILES = {"keras": "lesion_classifier.keras", "litert": "lesion_classifier.tflite"}
REFINER_FILES = {"keras": "lesion_refiner.keras", "litert": "lesion_refiner.tflite"}


def write_keras(model, out, stem, int8=False) -> str:
    """Write ``model`` into ``out`` for the Keras backend; return the file's name.

    ``STEM.keras`` (:func:`~models.networks.save_half_keras`: float16 weights), or with
    ``int8`` ``STEM.weights.npz`` (:func:`~models.networks.save_half_weights`: a
    ``.keras`` cannot hold int8 kernels with their scales). The other form, left by an
    earlier export into the same folder, is removed, so the folder holds what its
    manifest names.
    """
    names = (f"{stem}.weights.npz", f"{stem}.keras")
    name, stale = names if int8 else names[::-1]
    (out / stale).unlink(missing_ok=True)
    if int8:
        save_half_weights(model, out / name, int8=True)
    else:
        save_half_keras(model, out / name)
    return name


def check_same_network(infos, splits):
    """Refuse U-Net runs that cannot be combined (averaged or souped): say why.

    Parameters
    ----------
    infos : list of dict
        Each run's ``train_info.json`` (``{}`` when it has none).
    splits : list of dict
        Each run's ``split.json`` (``train`` and ``val`` image lists).

    Returns
    -------
    (int, int)
        The input size and base filters the runs share.

    Raises
    ------
    ValueError
        If the runs differ in split, input size or base filters.
    """
    if any(sp["val"] != splits[0]["val"] or sp["train"] != splits[0]["train"] for sp in splits):
        # A member trained on another's validation images would inflate every figure.
        raise ValueError("runs do not share one train/validation split; use the same --split-seed")
    shapes = {(i.get("input_size", INPUT_SIZE), i.get("args", {}).get("base_filters", 16))
              for i in infos}
    if len(shapes) != 1:
        raise ValueError(f"runs must share input size and base filters, not {sorted(shapes)}")
    return shapes.pop()


def check_lesion_runs(runs, split, twin, weight, key="lesion_classifier", what="lesion classifier",
                      flag="--lesion-weight"):
    """Refuse lesion classifier (or refiner) runs that do not belong with the U-Net runs.

    ``key`` is the runs' manifest entry, ``what`` their name in messages and
    ``flag`` the option that set ``weight``.

    Raises
    ------
    SystemExit
        If a run is missing its ``final.keras``; if its split is not the
        lesion part of the U-Net's (a lesion classifier trained on validation
        images would inflate every figure); or, for a refit, if the twin's
        lesion classifier (present or not, and its weight) differs.
    """
    if not 0.0 <= weight <= 1.0:
        raise SystemExit(f"{flag} must be in [0, 1], got {weight}")
    if twin is not None:
        spec = twin.get(key)
        if bool(spec) != bool(runs):
            raise SystemExit(f"--settings-from: the twin and the refit must both have a {what} "
                             "or both lack one, or the twin's figures do not carry over")
        if spec and abs(float(spec["weight"]) - weight) > 1e-9:
            raise SystemExit(f"{flag} {weight} differs from the twin's {spec['weight']}")
    for r in runs:
        if not (r / "final.keras").exists():
            raise SystemExit(f"no such checkpoint: {r / 'final.keras'}")
        own = read_run_json(r, "split.json")
        for part in ("train", "val"):
            lesions = {n for n in split[part] if not n.startswith("normal/")}
            if not set(own[part]) <= lesions or (part == "val" and set(own[part]) != lesions):
                raise SystemExit(f"{r}: its {part} images are not the lesions of the U-Net's "
                                 f"{part} split; train it with the same --split-seed and "
                                 "--val-fraction")


def _crop_runs(runs, what):
    """The runs' ``train_info.json``, crop size and filters, which they must share."""
    infos = [read_run_json(r, "train_info.json") for r in runs]
    if any("crop_size" not in i or "filters" not in i for i in infos):
        raise SystemExit(f"{what} runs must be crop runs (models.train_lesion or "
                         "models.train_refine); one has no crop size in its train_info.json")
    size, filters = infos[0]["crop_size"], infos[0]["filters"]
    if any(i["crop_size"] != size or i["filters"] != filters for i in infos):
        raise SystemExit(f"{what} runs must share crop size and filters")
    return infos, size, filters


def _write_crop_model(model, out, names, litert):
    """Write a crop model's float16 Keras file and, if asked, its LiteRT file.

    Returns the manifest's ``files`` entry.
    """
    files = {"keras": write_keras(model, out, names["keras"].removesuffix(".keras"))}
    if litert and to_litert(model, out / names["litert"]):
        files["litert"] = names["litert"]
    return files


def _run_records(runs, infos):
    return [{"run": r.name, "seed": i["args"].get("seed"), "epochs": i["args"].get("epochs"),
             "train_images": i.get("train_images"), "val_images": i.get("val_images")}
            for r, i in zip(runs, infos, strict=True)]


def export_lesion(runs, out, weight, litert=True):
    """Average the lesion classifier runs and write them beside the U-Net.

    Returns
    -------
    dict
        The manifest's ``lesion_classifier`` entry.
    """

    from .lesion_crop import CROP_PREPROCESSING, MARGIN
    from .networks import get_lesion_classifier, get_lesion_ensemble

    infos, size, filters = _crop_runs(runs, "lesion classifier")
    members = []
    for i, r in enumerate(runs):
        net = get_lesion_classifier(size, tuple(filters),
                                    name="lesion_classifier" if len(runs) == 1 else f"lesion{i}")
        _set_crop_weights(net, r / "final.keras", "a lesion classifier")
        members.append(net)
    model = get_lesion_ensemble(members)
    return {
        "task": "malignant vs benign log-odds on a crop around the lesion outline",
        "files": _write_crop_model(model, out, LESION_FILES, litert),
        "crop_size": size, "margin": MARGIN, "filters": filters,
        "members": len(runs), "weight": weight, "preprocessing": CROP_PREPROCESSING,
        "parameters": int(model.count_params()), "runs": _run_records(runs, infos),
    }


def export_refiner(runs, out, weight, litert=True):
    """Write the outline refiner run beside the U-Net.

    Returns
    -------
    dict
        The manifest's ``refiner`` entry.
    """

    from .lesion_refine import REFINE_MARGIN, REFINE_PREPROCESSING
    from .networks import get_refiner

    # The runtime runs one refiner; several would need an ensemble of their maps.
    if len(runs) != 1:
        raise SystemExit("one refiner run at a time")
    infos, size, filters = _crop_runs(runs, "refiner")
    model = get_refiner(size, tuple(filters))
    _set_crop_weights(model, runs[0] / "final.keras", "an outline refiner")
    return {
        "task": "lesion probability per pixel of a square around the first outline",
        "files": _write_crop_model(model, out, REFINER_FILES, litert),
        "crop_size": size, "margin": REFINE_MARGIN, "filters": filters,
        "weight": weight, "preprocessing": REFINE_PREPROCESSING,
        "parameters": int(model.count_params()), "runs": _run_records(runs, infos),
    }


# Every file an export writes into its folder; anything else there is carried over.
OWNED_FILES = (
    "manifest.json", f"{NAME}.keras", f"{NAME}.weights.npz", f"{NAME}.tflite",
    *LESION_FILES.values(), *REFINER_FILES.values(),
)


def run_info(run, checkpoint):
    """A run's ``train_info.json``, or for a run killed before writing it, its network.

    Without the record the network is read from the saved model
    (:func:`network_of`), never assumed: a run at another size or width would
    otherwise be rebuilt wrongly, or not at all.
    """
    path = Path(run) / "train_info.json"
    if path.exists():
        return json.loads(path.read_text())
    size, filters = network_of(checkpoint)
    log.warning("%s has no train_info.json (killed before it ended?): input %d, %d filters "
                "read from %s; its training arguments are not recorded", run, size, filters,
                Path(checkpoint).name)
    return {"input_size": size, "args": {"base_filters": filters}}


def data_record(data, samples):
    """The data folder's name and image count, for the manifest's ``training``."""
    return {"folder": Path(data).resolve().name, "images": len(samples)}


def check_data_holds_split(data, samples, split, run, parts=("val", "train")):
    """Refuse a ``--data`` that lacks images of the run's own split.

    The export tunes its temperature and post-processing on the run's validation
    images and records its figures on them (and re-estimates BatchNorm on its
    training images): taken from another folder (a small test set, a typo), the
    export was tuned on whatever images happen to match, while the manifest
    gives the split's count.

    Raises
    ------
    SystemExit
        Naming how many of the split's images of each part ``data`` lacks, a few of
        them, and the data folder the run recorded.
    """
    have = {f"{s.class_name}/{s.name}" for s in samples}
    lacking = []
    for part in parts:
        names = list(split.get(part, []))
        gone = [n for n in names if n not in have]
        if gone:
            shown = ", ".join(gone[:3]) + (", ..." if len(gone) > 3 else "")
            word = "validation" if part == "val" else "training"
            lacking.append(f"{len(gone)} of the run's {len(names)} {word} images ({shown})")
    if not lacking:
        return
    recorded = None
    settings = Path(run) / "run_settings.json"
    if settings.is_file():
        try:
            recorded = json.loads(settings.read_text()).get("data")
        except (ValueError, OSError, AttributeError):
            recorded = None
    hint = f" (the run recorded --data {recorded})" if recorded else ""
    raise SystemExit(f"--data {data} lacks {' and '.join(lacking)}: it is not the folder "
                     f"{Path(run).name} was trained on{hint}, and the export would be tuned "
                     "and scored on other images than its split's; give the run's own --data")


def release_folder(out) -> Path:
    """The folder an export into ``out`` replaces: ``out``, or the one a link there names.

    A link to the live release (``releases/current -> releases/2026-12-03``) keeps
    pointing at it: the release it names is replaced, never the link (renamed
    away and replaced by a folder, then ``rmtree`` refused it with a traceback and
    left ``.current.replaced-PID`` behind).

    Raises
    ------
    SystemExit
        If ``out`` is a link that loops.
    """
    out = Path(out)
    if not out.is_symlink():
        return out
    try:
        return out.resolve()
    except (RuntimeError, OSError) as exc:  # a loop: Python 3.11 raises RuntimeError
        raise SystemExit(f"--out {out} is a link that cannot be followed ({exc}); "
                         "nothing was written") from None


def check_out(out, replace_shipped):
    """Refuse the shipped folder as ``--out`` unless ``--replace-shipped`` is given, and
    an ``--out`` the export could not replace (a file, a mount point).

    Raises
    ------
    SystemExit
        If ``out`` is :data:`SHIPPED` (however it is spelled) without the flag, a file,
        or a mount point.
    """
    release_folder(out)  # a link that loops
    if Path(out).resolve() == SHIPPED.resolve() and not replace_shipped:
        raise SystemExit(f"--out {out} is the shipped release; give --replace-shipped to "
                         "replace it on purpose, or export into another folder")
    if Path(out).exists() and not Path(out).is_dir():
        raise SystemExit(f"--out {out} is a file, not a folder; nothing was written")
    if Path(out).is_dir() and os.path.ismount(Path(out).resolve()):
        # Replaced by a rename, which a mount point refuses (a Docker volume, say).
        raise SystemExit(f"--out {out} is a mount point, which cannot be replaced whole; "
                         "export into a folder inside it")


def open_stage(out):
    """A new, empty staging folder beside ``out``, holding ``out``'s foreign files.

    Files in ``out`` that no export writes (notes, PNGs) are copied in, so the
    swap keeps them; the export's own files are written afresh. A link ``out`` is
    staged beside the folder it names (:func:`release_folder`).
    """
    out = release_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    # mkdtemp makes it private (0700); swapped in, it must be readable as the folder it
    # replaces was (a server that runs as another user), or as a new folder would be.
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(out.stat().st_mode & 0o7777 if out.is_dir() else 0o777 & ~umask)
    if out.is_dir():
        for entry in out.iterdir():
            if entry.name in OWNED_FILES:
                continue
            if entry.is_dir():
                shutil.copytree(entry, stage / entry.name)
            else:
                shutil.copy2(entry, stage / entry.name)
    return stage


def check_loads(folder, manifest):
    """Load ``folder`` with every backend its manifest names, as the server would.

    Raises
    ------
    SystemExit
        If the runtime cannot load it.
    """
    from .runtime import Runtime

    backends = ["keras"] + (["litert"] if "litert" in manifest["files"] else [])
    for backend in backends:
        try:
            Runtime(folder, backend=backend).load()
        except Exception as exc:  # whatever it is, the export must not be swapped in
            raise SystemExit(f"the export does not load ({backend}): {exc}") from exc


#: ``renameat2`` flag that swaps two paths in one step (Linux 3.15+, most local filesystems).
_RENAME_EXCHANGE = 2


def _exchange(a, b) -> bool:
    """Swap the folders ``a`` and ``b`` in one atomic step, if the system can.

    Returns
    -------
    bool
        False when ``renameat2`` or its exchange flag is not available here (another
        C library or kernel, a filesystem without it); then nothing was changed.

    Raises
    ------
    OSError
        The exchange is supported but failed (permissions, another device).
    """
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def swap_in(stage, out):
    """Replace ``out`` by ``stage``; ``stage`` is gone afterwards, and so is the old ``out``.

    An existing folder is exchanged with the stage in one step, so a server starting
    at any moment, or a kill, finds either the whole old release or the whole new
    one. Where the system cannot exchange, two renames are used: a kill between them
    leaves the old release renamed beside ``out`` (``.NAME.replaced-PID``). A link
    ``out`` stays a link: the folder it names is replaced (:func:`release_folder`).
    """
    out = release_folder(out)
    if out.is_dir() and not out.is_symlink() and _exchange(stage, out):
        shutil.rmtree(stage)  # it holds the old release now
        return
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        out.rename(old)
    try:
        stage.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old)


def main(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--run", nargs="+", default=["runs/main"],
                   help="training run folder(s); several are averaged into an ensemble")
    p.add_argument("--data", required=True, help="the BUSI folder the run was trained on")
    p.add_argument("--out", required=True,
                   help="folder to export into; written all or nothing (staged, loaded, "
                   "then swapped in)")
    p.add_argument("--replace-shipped", action="store_true",
                   help="allow --out to be the shipped models/weights")
    p.add_argument("--version", default=None,
                   help="default: UTC date and time of export (2026-12-06T171802Z)")
    p.add_argument("--tta", choices=["auto", "on", "off"], default="auto",
                   help="average with a left-right flip (auto: if it helps on validation)")
    p.add_argument("--checkpoint", nargs="+", default=["best.keras"],
                   help="file in the run folder: best.keras (best validation epoch), "
                   "swa.keras (weight average) or backup/latest.weights.h5 (last epoch); "
                   "one for all runs or one per run")
    p.add_argument("--settings-from", default=None,
                   help="for runs refitted on every image: an export of the same recipe "
                   "trained on the split, whose temperature, post-processing and "
                   "validation figures are taken over")
    p.add_argument("--lesion-run", nargs="*", default=[],
                   help="lesion classifier run folder(s) (models.train_lesion, final.keras), "
                   "trained on the same split; several are averaged")
    p.add_argument("--lesion-weight", type=float, default=0.5,
                   help="weight of the lesion classifier's log-odds of malignant against "
                   "benign, beside the U-Net head's (fixed, not tuned: see the model card)")
    p.add_argument("--refine-run", nargs="*", default=[],
                   help="outline refiner run folder (models.train_refine, final.keras), "
                   "trained on the same split")
    p.add_argument("--refine-weight", type=float, default=0.5,
                   help="weight of the refiner's map inside the square around the first "
                   "outline, beside the U-Net's")
    p.add_argument("--seg-fusion", choices=SEG_FUSIONS, default="mean",
                   help="how the members' lesion maps are combined: their mean, or the "
                   "pixel-wise maximum (a lesion one member sees is kept)")
    p.add_argument("--no-litert", action="store_true")
    p.add_argument("--int8", action="store_true",
                   help="store the U-Net's kernels as int8 with per-channel scales in both "
                   "files (about half the size; see the model card for what it costs)")
    p.add_argument("--no-recalibrate", action="store_true",
                   help="keep the training-time BatchNorm statistics")
    p.add_argument(
        "--card-dir", default=None,
        help="where the model card's PNGs go (confusion matrix, calibration, curves); "
        "default: --out itself (the shipped card's are models/: give --card-dir models)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    check_out(args.out, args.replace_shipped)
    runs = [Path(r) for r in args.run]
    if len(args.checkpoint) not in (1, len(runs)):
        raise SystemExit(f"--checkpoint takes one file or one per run ({len(runs)})")
    names = args.checkpoint * len(runs) if len(args.checkpoint) == 1 else args.checkpoint
    checkpoints = [r / c for r, c in zip(runs, names, strict=True)]
    missing = [str(c) for c in checkpoints if not c.exists()]
    if missing:
        raise SystemExit(f"no such checkpoint: {', '.join(missing)}")
    splits = [read_run_json(r, "split.json") for r in runs]
    infos = [run_info(r, c) for r, c in zip(runs, checkpoints, strict=True)]
    try:
        size, base_filters = check_same_network(infos, splits)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    run = runs[0]
    twin = None
    refit = not splits[0]["val"]
    if refit and not args.settings_from:
        raise SystemExit("these runs were refitted on every image (no validation split): "
                         "give --settings-from, the export of the same recipe on the split")
    if args.settings_from:
        if not refit:
            # Tuning on the run's own validation images is better than borrowing settings.
            raise SystemExit("--settings-from is for refitted runs; these have a validation split")
        twin = read_twin(args.settings_from, size, base_filters, len(runs), args.seg_fusion)
    lesion_runs = [Path(r) for r in args.lesion_run]
    check_lesion_runs(lesion_runs, splits[0], twin, args.lesion_weight)
    refine_runs = [Path(r) for r in args.refine_run]
    check_lesion_runs(refine_runs, splits[0], twin, args.refine_weight, "refiner",
                      "outline refiner", "--refine-weight")
    try:
        samples = load_samples(args.data)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"--data {args.data}: {exc}") from None
    check_data_holds_split(args.data, samples, splits[0], run,
                           parts=("val",) if args.no_recalibrate else ("val", "train"))
    val = select_samples(samples, run / "split.json", "val")
    train_images = None
    if not args.no_recalibrate:
        train_images, _, _ = load_arrays(select_samples(samples, run / "split.json", "train"), size)
    members = []
    for i, checkpoint in enumerate(checkpoints):
        name = "sonotrace_unet" if len(runs) == 1 else f"member{i}"
        member = load_unet(checkpoint, size, base_filters, name=name)
        if train_images is not None:
            recalibrate_batchnorm(member, train_images)
        members.append(member)
    model = get_ensemble(members, seg_fusion=args.seg_fusion)

    # A link to the live release (releases/current -> releases/2026-12-03): the
    # release it names is replaced, and the link is kept, still pointing at it.
    out = release_folder(args.out)
    # A --card-dir that is --out or in it: the figures go into the staging folder that
    # becomes --out. Written into --out itself, they went with the old folder the swap
    # replaced.
    card = Path(args.card_dir).resolve() if args.card_dir else None
    inside = (card.relative_to(out.resolve())
              if card is not None and card.is_relative_to(out.resolve()) else None)
    stage = open_stage(out)
    try:
        if inside is not None:
            args.card_dir = stage / inside
        result = _write_export(stage, args, model, members, runs, checkpoints, infos, twin,
                               lesion_runs, refine_runs, val, size, base_filters,
                               splits[0], data_record(args.data, samples))
        if inside is not None:
            args.card_dir = out / inside
        swap_in(stage, out)
    except BaseException:
        # All or nothing: --out stays as it was.
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if result is not None:
        (run / "val_metrics.json").write_text(strict_json(result))
    _copy_curves(args.card_dir or out, runs, lesion_runs, refine_runs)
    log.info("exported to %s", out)
    return 0


def _write_export(out, args, model, members, runs, checkpoints, infos, twin, lesion_runs,
                  refine_runs, val, size, base_filters, split, data):
    """Write, tune and score the export in ``out`` (the staging folder), then load it.

    Returns the validation result, or None for a refit (its figures are its twin's).
    """
    info, targs = infos[0], infos[0].get("args", {})
    # The figures belong with the export unless asked for elsewhere: a candidate's must not
    # replace the shipped model card's.
    card_dir = args.card_dir or out
    files = {"keras": write_keras(model, out, NAME, int8=args.int8)}
    if not args.no_litert and to_litert(
        model, out / f"{NAME}.tflite", weights="int8" if args.int8 else "float16"
    ):
        files["litert"] = f"{NAME}.tflite"
    elif (out / f"{NAME}.tflite").exists():
        (out / f"{NAME}.tflite").unlink()
    manifest = {
        "name": NAME,
        # To the second: two exports of one day are two versions.
        "version": args.version or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ"),
        "task": "lesion segmentation + normal/benign/malignant classification",
        "files": files,
        "architecture": {"input_size": size, "base_filters": base_filters,
                         "num_classes": len(CLASS_NAMES), "members": len(members),
                         "seg_fusion": args.seg_fusion},
        "input_size": size,
        "input_channels": 1,
        "preprocessing": PREPROCESSING,
        "class_names": list(CLASS_NAMES),
        # Placeholders until tune_export chooses them on the exported files.
        "temperature": 1.0,
        "tta_flip": False,
        "postprocess": PostProcess().to_dict(),
        "parameters": int(model.count_params()),
        "weights": "int8 kernels, per-channel scales" if args.int8 else "float16",
        "training": {
            # What was used, not what is hoped: a 22-image test folder says so.
            "data": f"{data['folder']}: {data['images']} images",
            "data_folder": data["folder"],
            "data_images": data["images"],
            "train_images": info.get("train_images"),
            "val_images": info.get("val_images"),
            "split": "seeded, whole duplicate_group on one side",
            # What tune, evaluate and robustness check a --split against.
            "split_sha256": split_digest(split),
            "args": targs,
            "runs": [{"run": r.name, "checkpoint": c.name,
                      "seed": i.get("args", {}).get("seed"),
                      "epochs": i.get("args", {}).get("epochs"),
                      "swa_start": i.get("args", {}).get("swa_start") or None,
                      # Runs from before the option trained with the batch Dice.
                      "seg_loss": i.get("args", {}).get("seg_loss") or "batch-dice",
                      # Likewise without these terms.
                      "presence_weight": i.get("args", {}).get("presence_weight") or 0.0,
                      "mixup": i.get("args", {}).get("mixup") or 0.0,
                      "init_from": i.get("args", {}).get("init_from")}
                     for r, c, i in zip(runs, checkpoints, infos, strict=True)],
        },
    }
    if twin is not None:
        manifest.update({k: twin[k] for k in TWIN_KEYS if k in twin})
        manifest["training"]["split"] = (
            "none: refitted on every image; tuning and metrics are those of the "
            f"validated twin {twin['version']}, trained on the split by duplicate_group"
        )
        manifest["training"]["validated_twin"] = {
            "version": twin["version"], "runs": twin["training"]["runs"],
            "train_images": twin["training"].get("train_images"),
            "val_images": twin["training"].get("val_images"),
        }
    for stale in LESION_FILES.values():
        (out / stale).unlink(missing_ok=True)
    if lesion_runs:
        manifest["lesion_classifier"] = export_lesion(lesion_runs, out, args.lesion_weight,
                                                      litert=not args.no_litert)
    for stale in REFINER_FILES.values():
        (out / stale).unlink(missing_ok=True)
    if refine_runs:
        manifest["refiner"] = export_refiner(refine_runs, out, args.refine_weight,
                                             litert=not args.no_litert)
    (out / "manifest.json").write_text(strict_json(manifest))
    result = None
    if twin is None:
        # Tuned and scored through the runtime the server uses, on the files just written.
        tune_export(out, val, args.tta)
        result = record_metrics(out, val, card_dir)
    else:
        Path(card_dir).mkdir(parents=True, exist_ok=True)
        for png in ("confusion_matrix.png", "calibration.png"):
            if (Path(args.settings_from) / png).exists():
                shutil.copy(Path(args.settings_from) / png, Path(card_dir) / png)
            else:
                # An earlier model's figure left there would pass for this one's.
                (Path(card_dir) / png).unlink(missing_ok=True)
                log.warning("%s has no %s: the refit's figures are its twin's, so there is "
                            "none in %s", args.settings_from, png, card_dir)
    check_loads(out, json.loads((out / "manifest.json").read_text()))
    return result


def _copy_curves(card_dir, runs, lesion_runs, refine_runs):
    """Copy each run's learning curves into ``card_dir`` (one PNG per member)."""
    Path(card_dir).mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(runs):
        # One curve per member: learning_curves.png, learning_curves_2.png, ...
        name = "learning_curves.png" if i == 0 else f"learning_curves_{i + 1}.png"
        if (r / "learning_curves.png").exists():
            shutil.copy(r / "learning_curves.png", Path(card_dir) / name)
    for i, r in enumerate(lesion_runs):
        name = "learning_curves_lesion.png" if i == 0 else f"learning_curves_lesion_{i + 1}.png"
        if (r / "learning_curves.png").exists():
            shutil.copy(r / "learning_curves.png", Path(card_dir) / name)
    for r in refine_runs:
        if (r / "learning_curves.png").exists():
            shutil.copy(r / "learning_curves.png",
                        Path(card_dir) / "learning_curves_refiner.png")


if __name__ == "__main__":
    raise SystemExit(main())
