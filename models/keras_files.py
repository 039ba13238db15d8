"""Write an export's networks as standard Keras ``.keras`` files.

Usage::

    python -m models.keras_files --weights models/weights --out /tmp/sonotrace-keras

``models.export`` ships each network's weights as a float16 ``.weights.npz`` (rebuilt
from the manifest's ``architecture`` by the runtime) beside its LiteRT file: a float32
``.keras`` of the two U-Nets alone is 17 MB, which with the LiteRT files would not fit
the 20 MB the repository ships. This writes, from any export, one ``.keras`` a network
(``sonotrace_unet.keras``, and ``lesion_classifier.keras`` and ``lesion_refiner.keras``
when the export has them), each the network with the export's very weights, that
``keras.models.load_model`` opens once ``models.networks`` is imported (it registers the
few custom layers), plus the LiteRT files and a ``manifest.json`` naming the ``.keras``
files. The folder is an export like any other: ``SONOTRACE_WEIGHTS_DIR=OUT
SONOTRACE_RUNTIME_BACKEND=keras`` serves it, with the same answers as the ``.npz``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ._cli import cli_parser

log = logging.getLogger("models.keras_files")

#: The manifest entries holding a network's files besides the U-Nets' own
#: (``manifest["files"]``), each rebuilt by its ``networks`` builder.
PARTS = ("lesion_classifier", "refiner")


def write_keras_files(weights_dir, out) -> dict:
    """Write ``weights_dir``'s networks as ``.keras`` files into ``out``.

    Parameters
    ----------
    weights_dir : str or Path
        An export: ``manifest.json`` and the files it names.
    out : str or Path
        A folder that does not exist or is empty.

    Returns
    -------
    dict
        The manifest written to ``out/manifest.json``: the export's, with each
        ``files["keras"]`` naming the ``.keras`` file written.

    Raises
    ------
    ValueError
        If ``out`` holds files, or ``weights_dir`` has no manifest, or a network's file
        is not a ``.weights.npz`` (an export already in ``.keras`` is copied as it is).
    """
    from . import networks

    weights_dir, out = Path(weights_dir), Path(out)
    manifest_path = weights_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"{weights_dir}: no manifest.json, not a folder models.export wrote")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    jobs = [(manifest, networks.build_from_architecture, manifest.get("architecture"))]
    builders = {"lesion_classifier": networks.build_lesion_from_architecture,
                "refiner": networks.build_refiner_from_architecture}
    jobs += [(manifest[part], builders[part], manifest[part]) for part in PARTS
             if isinstance(manifest.get(part), dict)]
    out.mkdir(parents=True, exist_ok=True)
    for entry, build, spec in jobs:
        files = entry["files"]
        source = weights_dir / files["keras"]
        if not source.name.endswith(".weights.npz"):
            raise ValueError(f"{source}: not a .weights.npz file")
        model = build(spec)
        networks.load_half_weights(model, source)
        target = source.name.removesuffix(".weights.npz") + ".keras"
        model.save(out / target)
        log.info("wrote %s (%d parameters)", out / target, model.count_params())
        files["keras"] = target
        if files.get("litert"):
            shutil.copy2(weights_dir / files["litert"], out / files["litert"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv=None) -> int:
    p = cli_parser(__spec__, __doc__)
    p.add_argument("--weights", default=str(Path(__file__).resolve().parent / "weights"),
                   help="the export to convert (default: the shipped models/weights)")
    p.add_argument("--out", required=True, help="a new or empty folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        write_keras_files(args.weights, args.out)
    except ValueError as exc:
        p.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
