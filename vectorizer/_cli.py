"""Command-line interface.

::

    python -m vectorizer trace MASK.png -o OUT.svg [--turdsize N --alphamax A --opttolerance T]
    python -m vectorizer rasterize IN.svg -o OUT.png [--shape H W]

``-o -`` (the default) writes to standard output. Unreadable or invalid input
exits with status 2 and a one-line message on standard error, as does an input file
over the size limit (4,000,000 bytes of SVG, 256 MiB of PNG), which is refused
after reading one byte past it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._io import mask_to_png, png_to_mask
from ._rasterize import MAX_SVG_BYTES, svg_to_mask
from ._svg import mask_to_svg

log = logging.getLogger("vectorizer")

MAX_PNG_BYTES = 256 * 2**20
"""The largest PNG file ``trace`` reads: a mask of the largest size ``png_to_mask``
accepts (100 megapixels) takes 100 MB stored uncompressed in 8-bit grey."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(allow_abbrev=False,
        prog="python -m vectorizer",
        description="Binary masks to SVG outlines (potrace) and back.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("trace", allow_abbrev=False, help="trace a PNG mask into an SVG document")
    t.add_argument("mask", type=Path, help="PNG mask (foreground = grey value above 0)")
    t.add_argument("-o", "--output", default="-", help="SVG file to write ('-': stdout)")
    t.add_argument("--turdsize", type=int, default=2,
                   help="drop regions and holes of at most this many pixels (default 2)")
    t.add_argument("--alphamax", type=float, default=1.0,
                   help="corner threshold, 0 (polygon) to 1.3334 (smooth) (default 1.0)")
    t.add_argument("--opttolerance", type=float, default=0.2,
                   help="curve-joining tolerance in pixels (default 0.2)")

    r = sub.add_parser("rasterize", allow_abbrev=False,
                       help="rasterise an SVG document into a 0/255 PNG mask")
    r.add_argument("svg", type=Path, help="SVG document")
    r.add_argument("-o", "--output", default="-", help="PNG file to write ('-': stdout)")
    r.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"),
                   help="mask size; required when the SVG has no width/height or viewBox")
    return p


def _write(output: str, data: bytes) -> None:
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(output).write_bytes(data)


def _read(path: Path, limit: int, verb: str) -> bytes:
    """The contents of ``path``, refused past ``limit`` bytes without reading further:
    ``/dev/zero`` or a huge file read whole drove the process into the OOM killer."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is more than {limit} bytes long; at most {limit} can be "
                         f"{verb}")
    return data


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "trace":
            mask = png_to_mask(_read(args.mask, MAX_PNG_BYTES, "traced"))
            svg = mask_to_svg(mask, turdsize=args.turdsize, alphamax=args.alphamax,
                              opttolerance=args.opttolerance)
            _write(args.output, svg.encode("utf-8"))
        else:
            mask = svg_to_mask(_read(args.svg, MAX_SVG_BYTES, "rasterised"),
                               shape=tuple(args.shape) if args.shape else None)
            _write(args.output, mask_to_png(mask))
    except (ValueError, TypeError) as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the message held
        # The library names its parameter; the command line user gave a file.
        given = str(args.mask if args.command == "trace" else args.svg)
        for parameter in ("svg_or_paths ", "data "):
            if msg.startswith(parameter):
                msg = given + " " + msg.removeprefix(parameter)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
