"""Time segmentation + classification of BUSI images, Keras and LiteRT side by side.

Usage::

    python bench/models.py [--data ../shared/busi] [--n 50]

Prints the median and p90 per image of ``predict_mask`` + ``classify`` (the
work behind one /predict and one /classify; the runtime caches the network
output, so the pair costs one U-Net pass, plus the lesion classifier on the
outline's crop and the outline refiner on each outlined region when the export
has them), for each backend, and the ratio; then the refiner's own cost, as the
same LiteRT timing with the refiner switched off; then ``predict_mask`` inside a
box 25 % wider than each lesion image's true mask (the client's "Box re-segment"),
with and without the refiner.
Target: at most 100 ms per image in total on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data import load_samples, read_image, read_mask  # noqa: E402
from models.runtime import Runtime  # noqa: E402


def time_backend(backend, images, repeats=1, refine=True):
    rt = Runtime(backend=backend).load()
    if not refine:
        rt._refiner = None  # the first outline is served as it is
    for img in images[:3]:  # warm-up
        rt.predict_mask(img), rt.classify(img)
    times = []
    for img in images:
        for _ in range(repeats):
            # A new array object with new bytes defeats the per-image cache
            # between repeats, so every timing includes a forward pass.
            img = img.copy()
            img[0, 0] ^= 1
            t0 = time.perf_counter()
            rt.predict_mask(img)
            rt.classify(img)
            times.append((time.perf_counter() - t0) * 1000)
    return rt.backend_used, np.array(times)


def time_box(images, boxes, refine=True):
    """``predict_mask`` inside a user's box ("Box re-segment"), LiteRT, in ms."""
    rt = Runtime(backend="litert").load()
    if not refine:
        rt._refiner = None
    for img, box in list(zip(images, boxes, strict=True))[:3]:  # warm-up
        rt.predict_mask(img, box=box)
    times = []
    for img, box in zip(images, boxes, strict=True):
        # New bytes inside the box: the network's output on the crop is not cached.
        img = img.copy()
        img[int(max(0, box[1])), int(max(0, box[0]))] ^= 1
        t0 = time.perf_counter()
        rt.predict_mask(img, box=box)
        times.append((time.perf_counter() - t0) * 1000)
    return np.array(times)


def lesion_boxes(samples, images, margin=0.25):
    """A box around each lesion image's true mask, ``margin`` of its size wider on each side."""
    picked = []
    for s, img in zip(samples, images, strict=True):
        if not s.mask_paths:
            continue
        rows, cols = np.nonzero(read_mask(s.mask_paths, img.shape))
        if rows.size == 0:
            continue
        dx, dy = margin * (np.ptp(cols) + 1), margin * (np.ptp(rows) + 1)
        picked.append((img, (cols.min() - dx, rows.min() - dy, cols.max() + 1 + dx,
                             rows.max() + 1 + dy)))
    return [p[0] for p in picked], [p[1] for p in picked]


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__)
    default_data = os.environ.get("SONOTRACE_BUSI_DIR", ROOT.parent / "shared" / "busi")
    p.add_argument("--data", default=default_data)
    p.add_argument("--n", type=int, default=50)
    args = p.parse_args(argv)
    samples = load_samples(args.data)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(samples), size=min(args.n, len(samples)), replace=False)
    images = [read_image(samples[i].image_path) for i in pick]
    sizes = np.array([im.size for im in images])
    print(f"{len(images)} BUSI images, median {np.median(sizes) / 1e3:.0f} kpx, "
          f"{os.cpu_count()} CPUs")
    runtime = Runtime()
    manifest = runtime.load().manifest
    members = manifest.get("architecture", {}).get("members", 1)
    files = {k: runtime.weights_dir / v for k, v in manifest["files"].items()}
    lesion = manifest.get("lesion_classifier")
    if lesion:  # the second look at the lesion ships beside the U-Net and counts toward 20 MB
        files.update({f"lesion {k}": runtime.weights_dir / v for k, v in lesion["files"].items()})
    refiner = manifest.get("refiner")
    if refiner:
        files.update({f"refiner {k}": runtime.weights_dir / v
                      for k, v in refiner["files"].items()})
    total_mb = sum(f.stat().st_size for f in files.values()) / 1e6
    print(f"model {manifest['name']} {manifest['version']}: {members} network(s) averaged"
          + (" + lesion classifier" if lesion else "")
          + (" + outline refiner" if refiner else "") + "; "
          + ", ".join(f"{k} {f.stat().st_size / 1e6:.1f} MB" for k, f in files.items())
          + f"; {total_mb:.1f} MB in all "
          f"(target <= 20 MB: {'met' if total_mb <= 20 else 'NOT met'})")
    results = {}
    for backend in ("keras", "litert"):
        try:
            used, t = time_backend(backend, images)
        except ImportError as exc:
            print(f"{backend:>7}: unavailable ({exc})")
            continue
        results[used] = t
        print(f"{used:>7}: segment+classify median {np.median(t):6.1f} ms, "
              f"p90 {np.percentile(t, 90):6.1f} ms, mean {t.mean():6.1f} ms")
    if len(results) == 2:
        ratio = np.median(results["keras"]) / np.median(results["litert"])
        print(f"LiteRT is {ratio:.2f}x faster than Keras (median)")
    if refiner and "litert" in results:
        _, bare = time_backend("litert", images, refine=False)
        print(f"without the refiner, LiteRT: median {np.median(bare):6.1f} ms; the refiner "
              f"adds {np.median(results['litert']) - np.median(bare):+.1f} ms to the median "
              f"({np.median(results['litert'] - bare):+.1f} ms median per image)")
    if "litert" in results:
        box_images, boxes = lesion_boxes([samples[i] for i in pick], images)
        boxed = time_box(box_images, boxes)
        line = (f"box re-segment ({len(boxes)} lesion images, box 25 % wider than the lesion), "
                f"LiteRT: median {np.median(boxed):6.1f} ms, "
                f"p90 {np.percentile(boxed, 90):6.1f} ms")
        if refiner:
            plain = time_box(box_images, boxes, refine=False)
            line += f"; without the refiner {np.median(plain):6.1f} ms"
        print(line)
    best = min(np.median(t) for t in results.values())
    print(f"target <= 100 ms: {'met' if best <= 100 else 'NOT met'} ({best:.1f} ms)")


if __name__ == "__main__":
    main()
