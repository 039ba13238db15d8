"""``python -m annotation_client.prune_uploads --older-than-days N``: a retention rule.

The client keeps a copy of each uploaded image beside its saved annotations
(``SONOTRACE_KEEP_UPLOADS``), so the Saved page can open it again. A site whose
rules limit how long images are stored runs this from cron: it removes the copies
of images that no save has touched for N days, and keeps every annotation. See
:meth:`annotation_client._storage.AnnotationStore.prune_sources`. It also removes the
hidden temporary copies (``.source.png.XXXX.tmp``, ``.v001.svg.XXXX.tmp``) that a save
killed mid-write left, once over an hour old
(:meth:`~annotation_client._storage.AnnotationStore.prune_temps`).

Exit status: 0 when it ran (even if nothing was old enough), 2 for bad arguments
or a data folder that does not exist.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from ._config import ClientConfig
from ._storage import AnnotationStore

DAY_S = 86400.0


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not math.isfinite(days) or days < 0:
        raise argparse.ArgumentTypeError(f"must be a number of days >= 0, not {text!r}")
    return days


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False,
        prog="python -m annotation_client.prune_uploads",
        description="Remove the kept copies of uploaded images not saved for N days; "
        "the annotations stay.",
    )
    parser.add_argument("--older-than-days", required=True, type=_days, metavar="N")
    parser.add_argument("--data-dir", type=Path, help="default: $SONOTRACE_DATA_DIR")
    parser.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        data_dir = args.data_dir or ClientConfig.load().data_dir
        if not data_dir.is_dir():
            # A mistyped path or an unmounted volume: "removed 0" would read as success.
            raise ValueError(f"data_dir: {data_dir} is not a folder")
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = AnnotationStore(data_dir)
    removed = store.prune_sources(args.older_than_days * DAY_S, dry_run=args.dry_run)
    temps = store.prune_temps(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed + temps:
        print(f"{verb} {path}")
    if temps:
        print(f"{verb} {len(temps)} temporary file(s) left by interrupted saves")
    print(f"{verb} {len(removed)} kept image copy(ies) not saved for {args.older_than_days:g} "
          f"day(s) under {data_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
