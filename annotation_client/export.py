"""``python -m annotation_client.export --out DIR``: saved annotations as a BUSI-layout data set.

The data and worklist folders default to ``SONOTRACE_DATA_DIR`` and
``SONOTRACE_WORKLIST_DIR``, as the client uses them. See
:func:`annotation_client._export.export_busi` for what is written and why an
image can be left out; each one left out is listed with its reason.

Exit status: 0 when the export ran (even if it wrote nothing), 2 for bad
arguments or an output folder that is not empty.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._config import ClientConfig
from ._export import export_busi


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m annotation_client.export",
        description="Export the latest labelled version of each saved annotation in BUSI's layout.",
    )
    parser.add_argument("--out", required=True, type=Path, help="new or empty folder")
    parser.add_argument("--data-dir", type=Path, help="default: $SONOTRACE_DATA_DIR")
    parser.add_argument("--worklist-dir", type=Path, help="default: $SONOTRACE_WORKLIST_DIR")
    parser.add_argument(
        "--with-paths",
        action="store_true",
        help="write each image's worklist path in index.csv (left empty by default: file "
        "names often name the patient)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = ClientConfig.load()
        data_dir = args.data_dir or settings.data_dir
        worklist_dir = args.worklist_dir or settings.worklist_dir
        report = export_busi(data_dir, worklist_dir, args.out, with_paths=args.with_paths)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {label}" for label, n in report.exported.items())
    print(f"exported {report.total} image(s) to {args.out}: {counts}")
    for where, reason in report.skipped:
        print(f"skipped {where}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
