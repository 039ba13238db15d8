"""Average the weights of runs fine-tuned from one starting point (a "model soup").

Usage::

    python -m models.soup --run runs/td0 runs/td2 --checkpoint swa.keras --out runs/td02
    python -m models.export --run runs/td02 runs/td1 --checkpoint swa.keras ...

Runs that start from the same member of an export (``models.train --init-from
EXPORT --init-member K``) and differ only in their seed stay in the same basin of
the loss, so the mean of their weights is a network, often better than either,
at the run-time cost of one (whether it is must be checked on the twin: for
``td0`` and ``td2`` it was not; see the model card). An ensemble of the same runs costs one network
per run, which the 100 ms budget cannot pay for a third U-Net. Runs from
different starts have unrelated weights whose mean is no network at all, so
the ingredients must share their start, split, input size and width.

The soup is written as a run folder (``OUT/CHECKPOINT``, ``OUT/split.json``,
``OUT/train_info.json`` with the ingredients listed under ``soup``) that
``models.export`` takes like any other run; the export re-estimates the
BatchNorm statistics, which an average of weights does not give.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ._cli import cli_parser

log = logging.getLogger("models.soup")


def average_weights(weight_lists):
    """Element-wise mean of several networks' weights.

    Parameters
    ----------
    weight_lists : list of list of ndarray
        One ``model.get_weights()`` list per network, all of the same shapes.

    Returns
    -------
    list of ndarray
        The mean of each weight, in the dtype of the first network's.

    Raises
    ------
    ValueError
        If fewer than two networks are given or their weights differ in shape.
    """
    if len(weight_lists) < 2:
        raise ValueError("a soup needs at least two networks")
    first = weight_lists[0]
    for other in weight_lists[1:]:
        if len(other) != len(first) or any(
            a.shape != b.shape for a, b in zip(first, other, strict=True)
        ):
            raise ValueError("the networks differ in shape: only one network's runs average")
    return [
        np.mean([np.asarray(w[i], np.float64) for w in weight_lists], axis=0).astype(first[i].dtype)
        for i in range(len(first))
    ]


def check_ingredients(infos, splits):
    """Refuse runs that cannot be averaged, and say why.

    Parameters
    ----------
    infos : list of dict
        Each run's ``train_info.json``.
    splits : list of dict
        Each run's ``split.json`` (``train`` and ``val`` image lists).

    Returns
    -------
    (int, int)
        The input size and base filters the runs share.

    Raises
    ------
    ValueError
        If the runs differ in split, input size, width or starting member, or
        one of them did not start from an export.
    """
    from .export import check_same_network

    size, filters = check_same_network(infos, splits)  # as for an ensemble
    starts = [i.get("args", {}).get("init_from") for i in infos]
    if not all(starts):
        raise ValueError("every run must start from an export (--init-from): "
                         "runs from random starts do not share a basin to average in")
    members = {i["args"].get("init_member", 0) for i in infos}
    if len(members) != 1:
        raise ValueError(f"runs start from different members {sorted(members)}; "
                         "their weights are unrelated")
    if len(set(starts)) != 1:
        # The export a path names can change between sessions (models/weights does),
        # so differing paths are allowed when they held the same export; say so.
        log.warning("runs start from different paths %s: make sure they held the same export",
                    sorted(set(starts)))
    return size, filters


# What a training run leaves in its folder.
RUN_FILES = ("split.json", "train_info.json", "best.keras", "swa.keras", "final.keras", "backup")


def check_soup_out(out, runs):
    """Refuse an ``--out`` that is one of the ingredients or holds another run.

    An earlier soup in ``out`` (its ``train_info.json`` lists its ingredients)
    is replaced; anything else would be overwritten or mixed with the soup.

    Raises
    ------
    SystemExit
        If ``out`` is one of ``runs`` or holds a run that is not a soup.
    """
    if any(out.resolve() == r.resolve() for r in runs):
        raise SystemExit(f"--out {out} is one of the --run folders: the soup would "
                         "overwrite its own ingredient; give a new folder")
    if not out.is_dir() or not any((out / n).exists() for n in RUN_FILES):
        return
    info = out / "train_info.json"
    try:
        earlier_soup = "soup" in json.loads(info.read_text())
    except (OSError, ValueError):
        earlier_soup = False
    if not earlier_soup:
        raise SystemExit(f"--out {out} holds a training run; give a new folder")


def main(argv=None):
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--run", nargs="+", required=True,
                   help="training run folders fine-tuned from one member of one export")
    p.add_argument("--checkpoint", default="swa.keras",
                   help="file in each run folder to average (swa.keras, best.keras)")
    p.add_argument("--out", required=True, help="run folder to write the soup into")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from .export import load_unet, read_run_json

    runs = [Path(r) for r in args.run]
    if len(runs) < 2:
        raise SystemExit("a soup needs at least two runs")
    check_soup_out(Path(args.out), runs)
    missing = [str(r / args.checkpoint) for r in runs if not (r / args.checkpoint).exists()]
    if missing:
        raise SystemExit(f"no such checkpoint: {', '.join(missing)}")
    infos = [read_run_json(r, "train_info.json") for r in runs]
    splits = [read_run_json(r, "split.json") for r in runs]
    try:
        size, filters = check_ingredients(infos, splits)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    nets = [load_unet(r / args.checkpoint, size, filters) for r in runs]
    soup = nets[0]
    soup.set_weights(average_weights([n.get_weights() for n in nets]))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    soup.save(out / args.checkpoint)
    (out / "split.json").write_text(json.dumps(splits[0], indent=1))
    info = dict(infos[0])
    info["soup"] = {"runs": [str(r) for r in runs], "checkpoint": args.checkpoint,
                    "seeds": [i.get("args", {}).get("seed") for i in infos]}
    info["minutes_this_session"] = round(sum(i.get("minutes_this_session", 0) for i in infos), 1)
    (out / "train_info.json").write_text(json.dumps(info, indent=1))
    log.info("averaged %d runs into %s", len(runs), out / args.checkpoint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
