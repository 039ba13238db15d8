"""Unpack the U-Nets of an export trained on a split into run folders.

Usage::

    git show 9494401:models/weights/manifest.json > runs/base/manifest.json   # and its two
    python -m models.unpack --export runs/base --data ../shared/busi --out runs/b  # weight files
    python -m models.export --run runs/b0 runs/b1 --lesion-run runs/les0 --refine-run runs/ref0 \\
        --data ../shared/busi --out runs/twinB --no-recalibrate

Run folders do not survive between sessions, and the validated twin of the
shipped refit takes hours to retrain. An export trained on the split (one
with validation images, such as 2026-11-30.2, kept by git) is a validated
pair of U-Nets all the same: unpacked into one run folder per member
(``OUT{k}/best.keras``, ``OUT{k}/split.json``, ``OUT{k}/train_info.json``),
it can be exported again beside a lesion classifier or outline refiner
retrained on the same split in minutes, which gives a validated testbed for
ideas about those parts and about inference.

The split is drawn again from the export's recorded ``split_seed`` and
``val_fraction``, exactly as the training scripts draw it, and its size is
checked against the export's record; a refitted export (no validation
images) is refused, because every image would then be a training image.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ._cli import cli_parser

log = logging.getLogger("models.unpack")


def export_split(manifest, samples):
    """The split an export was trained on, drawn again from its record.

    Parameters
    ----------
    manifest : dict
        The export's ``manifest.json``.
    samples : list of models.data.Sample
        The images of the folder it was trained on.

    Returns
    -------
    dict
        ``{"train": [...], "val": [...]}`` as in a run's ``split.json``.

    Raises
    ------
    ValueError
        If the export was refitted on every image, records no split seed, or
        the split drawn again differs in size from the one it records.
    """
    from .data import run_split, split_record

    training = manifest.get("training", {})
    args = training.get("args", {})
    if not training.get("val_images") or not args.get("val_fraction"):
        raise ValueError("this export was refitted on every image: it has no validation split")
    # As the training scripts do: no --split-seed means the run's own seed.
    seed = args.get("split_seed")
    seed = args.get("seed") if seed is None else seed
    if seed is None:
        raise ValueError("this export records no split seed")
    train, val = run_split(samples, float(args["val_fraction"]), int(seed))
    if (len(train), len(val)) != (training.get("train_images"), training["val_images"]):
        raise ValueError(
            f"the split drawn again ({len(train)} train / {len(val)} val) is not the export's "
            f"({training.get('train_images')} / {training['val_images']}): another data folder?"
        )
    return split_record(train, val)


def unpack(export, data, out):
    """Write one run folder per member of ``export``: ``{out}0``, ``{out}1``, ...

    Returns
    -------
    list of pathlib.Path
        The run folders, member order.
    """
    from .data import load_samples
    from .networks import get_multitask_unet
    from .train import exported_member_weights

    export = Path(export)
    manifest = json.loads((export / "manifest.json").read_text())
    split = export_split(manifest, load_samples(data))
    arch = manifest["architecture"]
    size, filters = int(arch["input_size"]), int(arch["base_filters"])
    runs = []
    for k in range(int(arch.get("members", 1))):
        run = Path(f"{out}{k}")
        run.mkdir(parents=True, exist_ok=True)
        model = get_multitask_unet(size, filters, num_classes=int(arch["num_classes"]))
        model.set_weights(exported_member_weights(export, k, model))
        model.save(run / "best.keras")
        (run / "split.json").write_text(json.dumps(split, indent=1))
        (run / "train_info.json").write_text(json.dumps({
            "input_size": size,
            "args": {"base_filters": filters, "unpacked_from": str(export), "member": k,
                     "version": manifest.get("version")},
            "train_images": len(split["train"]), "val_images": len(split["val"]),
        }, indent=1))
        runs.append(run)
    log.info("unpacked %d member(s) of %s %s into %s", len(runs), export,
             manifest.get("version"), ", ".join(map(str, runs)))
    return runs


def main(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--export", required=True, help="exported weights folder trained on a split")
    p.add_argument("--data", required=True, help="the BUSI folder it was trained on")
    p.add_argument("--out", required=True, help="prefix of the run folders: OUT0, OUT1, ...")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        unpack(args.export, args.data, args.out)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise SystemExit(f"models.unpack: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
