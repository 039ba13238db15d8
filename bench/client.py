"""Benchmark the annotation client's server-side work per user action (no browser).

For BUSI images from ``../shared/busi`` (or ``SONOTRACE_BUSI_DIR``) it times the
Python work behind the annotate page's callbacks, in this process:

* open: decode the upload (data URL -> pixels, hash, display URI) and build the figure;
  also the size of the figure JSON the browser receives;
* edit: apply a vertex drag (``apply_relayout`` + undo-history push);
* signing: what each edit request adds for the signed page state
  (``annotation_client._signing``): the undo history, 50 states deep, checked as it
  comes in and signed as it goes out; also its size (``history_kb``);
* measure: rasterise the outline (``vectorizer.svg_to_mask``) and measure it, which
  runs after every edit;
* lesions: ``_lesions.find_lesions``, which every edit runs too (status line, panel,
  record, SR), on a 12-megapixel image (4000x3000) with the first image's outline near
  its far corner, then with every sample's (up to three); beside it the whole-image scan
  it replaced (label the whole mask, rasterise each outline over the whole image);
* density: re-vectorize the outline at another vertex budget;
* save: SVG + mask + record + atomic versioned write into a temporary folder;
* worklist: list a copy of every BUSI image (masks included, as a worklist folder may
  hold other PNGs) with its annotation status, first with no hash cached (every file
  read and hashed) and then again (only stat calls), as the page does on load and
  after each open and save; then, with every image saved by two readers, again for
  everyone and for one reader under blinded reading (each version's record read for
  its annotator the first time, remembered after);
* index: the database index of saved annotations (SQLite in the data directory): a
  save with and without it, the start-up sync of thousands of versions written
  without it (then again, when every version is known), the Saved page's query,
  the CSV export, reader agreement (every version's mask read and compared) and
  reading progress (the index's rows only);
  then the decoding of one BUSI-size saved mask, which reader agreement pays per read.

Outlines come from the images' own BUSI masks (vectorized with 32 vertices), so the
model server is not needed. The browser-side figure (upload to editable outline,
including the model server) is measured by the browser test
``tests/annotation_client/test_annotate_page.py``.

Usage: ``python bench/client.py [--images 20] [--versions 5000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import vectorizer  # noqa: E402
from annotation_client import (  # noqa: E402
    _agreement,
    _editing,
    _figure,
    _history,
    _lesions,
    _measurements,
    _progress,
    _shapes,
    _signing,
    _storage,
    _worklist,
)
from annotation_client._database import (  # noqa: E402
    MAX_LIMIT,
    AnnotationIndex,
    default_url,
    to_csv,
)
from annotation_client._imageio import decode_image, parse_data_url  # noqa: E402
from annotation_client._record import build_record  # noqa: E402
from annotation_client._storage import AnnotationStore  # noqa: E402


def _busi_dir() -> Path:
    configured = os.environ.get("SONOTRACE_BUSI_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "busi"


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - start) * 1000.0


def _samples(busi: Path, count: int) -> list[tuple[Path, np.ndarray]]:
    found = []
    for image in sorted((busi / "benign").glob("benign (*).png")):
        if image.name.endswith("_mask.png"):
            continue
        mask_path = image.with_name(image.stem + "_mask.png")
        if not mask_path.exists():
            continue
        mask = np.asarray(Image.open(mask_path).convert("L")) > 0
        if mask.any():
            found.append((image, mask))
        if len(found) == count:
            break
    return found


def _bench_worklist(busi: Path, repeats: int = 5) -> dict:
    """Time listing a copy of the BUSI folder, hash cache cold and then warm."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "worklist"
        shutil.copytree(busi, root, ignore=shutil.ignore_patterns("*.csv", "*.md", "*.txt"))
        store = AnnotationStore(Path(tmp) / "annotations")
        cold, warm = [], []
        for _ in range(repeats):
            cache = _worklist.HashCache()
            listing, ms = _timed(_worklist.list_images, root, store, cache=cache)
            cold.append(ms)
            _, ms = _timed(_worklist.list_images, root, store, cache=cache)
            warm.append(ms)
        size_mb = sum(e.size_bytes for e in listing.entries) / 2**20
        blinded = _bench_blinded(root, store, listing, cache, repeats)
    cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
    return {
        "files": len(listing.entries),
        "size_mb": round(size_mb, 1),
        "cold_ms": round(cold_ms, 1),
        "warm_ms": round(warm_ms, 1),
        "cold_over_warm": round(cold_ms / warm_ms, 1),
    } | blinded


def _bench_blinded(root, store, listing, cache, repeats: int) -> dict:
    """Every listed image saved by two readers; list for all, then for one reader."""
    images = {e.sha256 for e in listing.entries if e.sha256}  # files of the same bytes: one
    for sha in images:
        for reader in ("Dr Ada", "Dr Bo"):
            store.save(sha, svg="<svg/>", mask_png=b"png", record={"annotator": reader})
    shared, first, again = [], [], []
    for _ in range(repeats):
        _, ms = _timed(_worklist.list_images, root, store, cache=cache)
        shared.append(ms)
        _storage._annotator_of.cache_clear()  # a client that just started
        mine, ms = _timed(_worklist.list_images, root, store, cache=cache, annotator="Dr Bo")
        first.append(ms)
        _, ms = _timed(_worklist.list_images, root, store, cache=cache, annotator="Dr Bo")
        again.append(ms)
    assert all(e.version == 2 for e in mine.entries if e.sha256)  # Dr Bo's are the v2s
    shared_ms = statistics.median(shared)
    return {
        "saved_versions": 2 * len(images),
        "saved_all_ms": round(shared_ms, 1),
        "blinded_first_ms": round(statistics.median(first), 1),
        "blinded_again_ms": round(statistics.median(again), 1),
        "blinded_first_over_all": round(statistics.median(first) / shared_ms, 2),
        "blinded_again_over_all": round(statistics.median(again) / shared_ms, 2),
    }


#: The large image ``lesions`` is timed on, (rows, cols): 12 megapixels.
LARGE_IMAGE = (3000, 4000)


def _placed_far(paths: list[str], right: int, bottom: int) -> list[str]:
    """``paths`` moved by whole pixels so that their box ends at x ``right``, y
    ``bottom``."""
    rings = [_shapes.parse_path(path) for path in paths]
    xs, ys = zip(*(xy for path in rings for ring in path for xy in ring), strict=True)
    dx, dy = right - max(xs), bottom - max(ys)
    return [_shapes.format_path([[(x + dx, y + dy) for x, y in ring] for ring in path],
                                exact=True) for path in rings]


def _whole_image_lesions(mask: np.ndarray, paths: list[str]) -> list:
    """What ``find_lesions`` scanned before: the whole mask labelled and boxed, and each
    outline rasterised over the whole image to read the labels it covers."""
    labels, _ = ndimage.label(mask, structure=_lesions.EIGHT)
    boxes = ndimage.find_objects(labels)
    return [boxes, *(np.unique(labels[_shapes.paths_to_mask([p], mask.shape)]) for p in paths)]


def _bench_lesions(samples, repeats: int = 10) -> dict:
    """Time ``find_lesions`` on a 12-megapixel image, one outline and a few."""
    height, width = LARGE_IMAGE
    placed = []
    for at, (_, truth) in enumerate(samples[:3]):
        # Side by side along the bottom edge, the first in the far corner.
        placed.append(_placed_far(_editing.mask_to_regions(truth, 32), width - 50 - 700 * at,
                                  height - 50))
    figures = {}
    for name, paths in (("one", placed[0]), ("few", [p for ps in placed for p in ps])):
        mask = _shapes.paths_to_mask(paths, LARGE_IMAGE)
        fast = [_timed(_lesions.find_lesions, mask, paths)[1] for _ in range(repeats)]
        whole = [_timed(_whole_image_lesions, mask, paths)[1] for _ in range(repeats)]
        figures[name] = {"outlines": len(paths), "p50": round(statistics.median(fast), 2),
                         "whole_image_ms": round(statistics.median(whole), 2),
                         "ratio": round(statistics.median(whole) / statistics.median(fast), 1)}
    return figures


def _bench_index(versions: int, saves: int = 100) -> dict:
    """Time the annotation index: saves with and without it, sync, query, CSV."""
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 80), bool)
    mask[10:40, 20:60] = True
    svg, png = "<svg/>", vectorizer.mask_to_png(mask)
    measurements = _measurements.summarize(mask)  # the index copies the largest region's

    def record(i: int) -> tuple[str, dict]:
        sha = f"{i // 2:064x}"  # two versions per image
        return sha, build_record(
            image={"sha256": sha, "name": f"case {i}.png", "width": 80, "height": 64},
            annotator=f"reader {i % 7}",
            final_mask=mask,
            ai_mask=mask if i % 3 else np.roll(mask, 3, axis=1),
            final_label=("benign", "malignant", "normal", None)[int(rng.integers(4))],
            measurements=measurements,
        )

    with tempfile.TemporaryDirectory() as tmp:
        plain = AnnotationStore(Path(tmp) / "plain")
        indexed_dir = Path(tmp) / "indexed"
        indexed = AnnotationStore(indexed_dir, index=AnnotationIndex(default_url(indexed_dir)))
        without, with_index = [], []
        for i in range(saves):
            sha, rec = record(i)
            _, ms = _timed(plain.save, sha, svg=svg, mask_png=png, record=rec)
            without.append(ms)
            _, ms = _timed(indexed.save, sha, svg=svg, mask_png=png, record=rec)
            with_index.append(ms)

        data = Path(tmp) / "data"
        store = AnnotationStore(data)
        for i in range(versions):
            sha, rec = record(i)
            store.save(sha, svg=svg, mask_png=png, record=rec)
        index = AnnotationIndex(default_url(data))
        result, sync_ms = _timed(index.sync, data)
        assert result["added"] == versions, result
        _, resync_ms = _timed(index.sync, data)
        rows, query_ms = _timed(index.query, latest_only=True, limit=2000)
        _, filtered_ms = _timed(index.query, annotator="reader 3", final_label="malignant")
        every, _ = _timed(index.query, limit=MAX_LIMIT)
        _, csv_ms = _timed(to_csv, every)
        _agreement._PAIRS.clear()  # a client that just started
        agreement, agreement_ms = _timed(_agreement.index_agreement, index, store)
        assert agreement["dice_pairs"] == agreement["images"] and not agreement["unreadable"]
        _, agreement_again_ms = _timed(_agreement.index_agreement, index, store)
        progress, progress_ms = _timed(_progress.index_progress, index, store)
        assert progress["images"] == (versions + 1) // 2, progress
        index.dispose()
    save_plain, save_indexed = statistics.median(without), statistics.median(with_index)
    return {
        "versions": versions,
        "save_ms": round(save_plain, 2),
        "save_indexed_ms": round(save_indexed, 2),
        "save_ratio": round(save_indexed / save_plain, 2),
        "sync_ms": round(sync_ms, 1),
        "sync_per_version_ms": round(sync_ms / versions, 3),
        "resync_ms": round(resync_ms, 1),
        "query_latest_ms": round(query_ms, 1),
        "query_latest_rows": len(rows),
        "query_filtered_ms": round(filtered_ms, 1),
        "csv_ms": round(csv_ms, 1),
        "csv_rows": len(every),
        "agreement_ms": round(agreement_ms, 1),
        "agreement_again_ms": round(agreement_again_ms, 1),
        "agreement_images": agreement["images"],
        "progress_ms": round(progress_ms, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--versions", type=int, default=5000, help="saved versions to index")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    busi = _busi_dir()
    if not busi.is_dir():
        print(f"BUSI folder not found at {busi} (set SONOTRACE_BUSI_DIR)", file=sys.stderr)
        return 2
    samples = _samples(busi, args.images)
    times: dict[str, list[float]] = {
        k: [] for k in ("open", "figure_kb", "edit", "signing", "history_kb", "measure",
                        "density", "save")
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = AnnotationStore(tmp)
        for path, truth in samples:
            data = path.read_bytes()
            url = "data:image/png;base64," + base64.b64encode(data).decode()

            def open_image(url=url, name=path.name):
                image = decode_image(parse_data_url(url), name)
                figure = _figure.image_figure(
                    image.display_uri, image.width, image.height, image.sha256
                )
                return image, figure.to_json()

            (image, figure_json), ms = _timed(open_image)
            times["open"].append(ms)
            times["figure_kb"].append(len(figure_json) / 1024)
            shape = (image.height, image.width)

            paths = _editing.mask_to_regions(truth, 32)
            history = _history.push(
                _history.new_history(_editing.empty_state(), image=image.sha256),
                _editing.make_state(paths, "ai", base="ai", density=32),
            )
            ring = _shapes.parse_path(paths[0])
            ring[0][0] = (ring[0][0][0] + 5, ring[0][0][1] + 3)
            moved = _shapes.format_path(ring)

            def edit(history=history, moved=moved):
                change = _shapes.apply_relayout(
                    history["present"]["paths"], {"shapes[0].path": moved}
                )
                return _history.push(history, _editing.make_state(change.paths, "edit"))

            history, ms = _timed(edit)
            times["edit"].append(ms)
            deep = history
            for _ in range(49):  # 49 more drags of the first vertex, each its own state
                ring[0][0] = (ring[0][0][0] + 0.5, ring[0][0][1])
                dragged = [_shapes.format_path(ring), *deep["present"]["paths"][1:]]
                deep = _history.push(deep, _editing.make_state(dragged, "edit"))
            key, name = b"k" * 32, "outline-history"
            signed = _signing.sign(deep, key, name)

            def check_and_sign(signed=signed, key=key, name=name):
                assert _signing.verify(signed, key, name)
                return _signing.sign(signed, key, name)

            _, ms = _timed(check_and_sign)
            times["signing"].append(ms)
            times["history_kb"].append(len(json.dumps(signed)) / 1024)
            present = history["present"]["paths"]

            def measure(present=present, shape=shape):
                mask = _shapes.paths_to_mask(present, shape)
                return _measurements.summarize(mask, None, outlines=present)

            summary, ms = _timed(measure)
            times["measure"].append(ms)
            _, ms = _timed(_editing.revectorize, history["present"], 64, shape, truth)
            times["density"].append(ms)

            def save(present=present, image=image, truth=truth, summary=summary):
                svg = _shapes.paths_to_svg(present, image.width, image.height)
                mask = vectorizer.svg_to_mask(svg)
                record = build_record(
                    image=image.meta(),
                    annotator="bench",
                    final_mask=mask,
                    ai_mask=truth,
                    measurements=summary,
                )
                return store.save(
                    image.sha256,
                    svg=svg,
                    mask_png=vectorizer.mask_to_png(mask),
                    ai_mask_png=vectorizer.mask_to_png(truth),
                    record=record,
                )

            _, ms = _timed(save)
            times["save"].append(ms)

    report = {
        key: {
            "p50": round(statistics.median(values), 2),
            "p95": round(float(np.percentile(values, 95)), 2),
        }
        for key, values in times.items()
    }
    print(f"annotation client, {len(samples)} BUSI images (ms unless noted):")
    for key, figures in report.items():
        unit = "KB" if key.endswith("_kb") else "ms"
        print(f"  {key:10s} p50 {figures['p50']:8.1f} {unit}   p95 {figures['p95']:8.1f} {unit}")
    lesions = _bench_lesions(samples)
    report["lesions"] = lesions
    print(f"  lesions    find_lesions on {LARGE_IMAGE[1]}x{LARGE_IMAGE[0]} (12 MP): "
          + "; ".join(f"{f['outlines']} outline(s) p50 {f['p50']:.1f} ms, the whole-image "
                      f"scan {f['whole_image_ms']:.1f} ms ({f['ratio']}x)"
                      for f in lesions.values()))
    worklist = _bench_worklist(busi)
    report["worklist"] = worklist
    print(
        f"  worklist   {worklist['files']} files ({worklist['size_mb']} MB): first listing "
        f"{worklist['cold_ms']:.0f} ms (every file hashed), again {worklist['warm_ms']:.0f} ms "
        f"(cached), {worklist['cold_over_warm']}x; with {worklist['saved_versions']} versions "
        f"saved, for everyone {worklist['saved_all_ms']:.0f} ms, for one reader (blinded) "
        f"{worklist['blinded_first_ms']:.0f} ms first ({worklist['blinded_first_over_all']}x), "
        f"{worklist['blinded_again_ms']:.0f} ms again ({worklist['blinded_again_over_all']}x)"
    )
    index = _bench_index(args.versions)
    report["index"] = index
    print(
        f"  index      save {index['save_ms']:.1f} ms without, {index['save_indexed_ms']:.1f} ms "
        f"with ({index['save_ratio']}x); start-up sync of {index['versions']} versions "
        f"{index['sync_ms']:.0f} ms ({index['sync_per_version_ms']} ms each), again "
        f"{index['resync_ms']:.0f} ms; Saved page query {index['query_latest_ms']:.0f} ms "
        f"({index['query_latest_rows']} rows), filtered {index['query_filtered_ms']:.0f} ms; "
        f"CSV of {index['csv_rows']} rows {index['csv_ms']:.0f} ms; reader agreement over "
        f"{index['agreement_images']} images read twice (80x64 masks) "
        f"{index['agreement_ms']:.0f} ms, again {index['agreement_again_ms']:.0f} ms; "
        f"reading progress over the {index['versions']} versions {index['progress_ms']:.0f} ms"
    )
    pngs = [vectorizer.mask_to_png(truth) for _, truth in samples]
    decode = [_timed(vectorizer.png_to_mask, png)[1] for png in pngs]
    report["mask_decode"] = {"p50": round(statistics.median(decode), 2),
                             "p95": round(float(np.percentile(decode, 95)), 2)}
    print(f"  mask_decode p50 {statistics.median(decode):.2f} ms (a BUSI-size saved mask, "
          "as reader agreement reads each)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
