"""``python -m annotation_client.export --out DIR``: saved annotations as a BUSI-layout data set.

The data and worklist folders default to ``SONOTRACE_DATA_DIR`` and
``SONOTRACE_WORKLIST_DIR``, as the client uses them. See
:func:`annotation_client._export.export_busi` for what is written and why an
image can be left out; each one left out is listed with its reason.

A latest record found damaged is also marked so in the client's index, when the
export reads the folder that index covers, so the Saved page lists it as damaged.

Exit status: 0 when the export ran (even if it wrote nothing); 2 when what was asked
is refused before anything is written: bad arguments (a data or worklist folder that
is not one), or an output folder that is not empty, that another export is writing
into or that cannot be written in (read-only, not the user's, under a file); 1 when the
run failed while writing (a full disk), in which case nothing is left behind. Either
is one ``error:`` line on stderr.
An export killed outright (SIGKILL, out of memory) leaves its hidden staging folder,
and, killed while it moved the finished set up, the entries it had moved already; the
next export into the same folder removes them (and says so).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .__main__ import UMASK
from ._config import ClientConfig
from ._database import AnnotationIndex, default_url
from ._export import export_busi


def _client_index(settings: ClientConfig, data_dir: Path) -> AnnotationIndex | None:
    """The client's index of ``data_dir``, for the export to mark damaged records in.

    None when there is none to tell: ``SONOTRACE_DATABASE_URL`` indexes the configured
    data folder, not another one given by ``--data-dir``; and a folder whose default
    SQLite index does not exist yet was never served, so the export does not create one.
    """
    if settings.database_url:
        here, served = (Path(p).expanduser().resolve() for p in (data_dir, settings.data_dir))
        return AnnotationIndex(settings.database_url) if here == served else None
    url = default_url(data_dir)
    return AnnotationIndex(url) if Path(url.database).is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False,
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
    parser.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write each image opened from a DICOM file as a DICOM SEG of its outline, "
        "in OUT/dicom_seg/ (it carries the DICOM's patient and study, for a PACS)",
    )
    parser.add_argument(
        "--dicom-sr",
        action="store_true",
        help="also write, for each image opened from a DICOM file whose version states a "
        "pixel spacing, its outline's measurements as a DICOM SR (TID 1500), in "
        "OUT/dicom_sr/ (it carries the DICOM's patient and study, for a PACS)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The images, masks and DICOM files (the patient's name and ID) are its user's only,
    # as the data folder they come from; share them on purpose (chmod), not by default.
    umask = os.umask(UMASK)
    os.umask(umask | UMASK)
    try:
        return _export(args)
    finally:
        os.umask(umask)  # main() is called in-process by tests and scripts too


def _export(args) -> int:
    try:
        settings = ClientConfig.load()
        data_dir = args.data_dir or settings.data_dir
        worklist_dir = args.worklist_dir or settings.worklist_dir
        report = export_busi(data_dir, worklist_dir, args.out, with_paths=args.with_paths,
                             index=_client_index(settings, data_dir),
                             dicom_seg=args.dicom_seg, dicom_sr=args.dicom_sr)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only target: nothing is left behind
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: the export could not be written: {exc.strerror or exc}{where}; "
              "nothing was written", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {label}" for label, n in report.exported.items())
    print(f"exported {report.total} image(s) to {args.out}: {counts}")
    for case, what in report.fallbacks:
        print(f"older version of {case}: {what}")
    for name, what in report.unoutlined:
        print(f"no mask for {name}: {what}")
    for where, reason in report.skipped:
        # The case as the coordinator knows it (the folder is only the image's hash).
        case = report.cases.get(where)
        print(f"skipped {case} ({where}): {reason}" if case else f"skipped {where}: {reason}")
    if args.dicom_seg:
        print(f"wrote {report.segs} DICOM SEG file(s) to {args.out / 'dicom_seg'}")
        for name, reason in report.no_seg:
            print(f"no DICOM SEG for {name}: {reason}")
    if args.dicom_sr:
        print(f"wrote {report.srs} DICOM SR file(s) to {args.out / 'dicom_sr'}")
        for name, reason in report.no_sr:
            print(f"no DICOM SR for {name}: {reason}")
    if report.disagreed:
        print(f"readers disagree on the label of {len(report.disagreed)} exported image(s) "
              "that no version adjudicated: each is exported with its latest reader's label "
              "(see reader_labels in index.csv)")
        for name, labels in report.disagreed:
            print(f"disagreed {name}: {labels}")
    if report.skipped:  # last, so that the count is seen however long the list above
        whys = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped_why.items()))
        print(f"left out {len(report.skipped)} image(s), each listed above: {whys}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
