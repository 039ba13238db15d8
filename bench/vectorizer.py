"""Benchmark of the vectorizer on every BUSI lesion mask.

Prints, for all non-empty ``*_mask*.png`` files under ``benign/`` and ``malignant/``:

- round trip: IoU of ``svg_to_mask(mask_to_svg(m))`` against ``m`` (mean, min), with
  potrace at the mask's own resolution as the naive reference;
- editable outlines: IoU of ``mask_to_paths(m, n)`` rasterised back, for n = 16 and 32,
  against Douglas-Peucker (shapely ``simplify`` on ``find_contours`` outlines, with the
  tolerance bisected to meet the same vertex budget per ring);
- speed, median over masks of the best of ``--repeats`` runs: ``mask_to_svg`` (trace),
  ``svg_to_mask`` (rasterise), ``mask_to_paths`` at 16 and 32 vertices and
  ``measure_regions`` (also their 95th percentile over masks), ``offset_mask`` by 2 px
  either way (the editor's Grow and Shrink), ``outline_mask`` (the server's answer)
  against the three functions in turn as the server called them before; the potrace
  command-line tool on the same masks as PBM files in the same run (one process per
  mask, as a script would run it, and all masks in one process);
  ``skimage.measure.find_contours`` plus shapely's ``simplify``;
- the cost of refusing a hostile mask: ``mask_to_paths`` on random noise (one region
  with about a thousand holes), seconds and peak scratch memory until its paths are
  refused for their length.

Usage: ``nice -n 19 python bench/vectorizer.py [--busi DIR] [--repeats N] [--limit N]
[--json OUT]``. The data folder is ``--busi``, else ``SONOTRACE_BUSI_DIR``, else
``../shared/busi`` beside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import shapely
from PIL import Image
from skimage.measure import find_contours

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from vectorizer import (  # noqa: E402
    mask_to_paths,
    mask_to_svg,
    measure_regions,
    offset_mask,
    outline_mask,
    svg_to_mask,
)
from vectorizer._svg import regions_to_svg  # noqa: E402
from vectorizer._trace import trace  # noqa: E402

POTRACE = shutil.which("potrace") or "/usr/bin/potrace"


def busi_masks(root: Path, limit: int | None) -> list[tuple[str, np.ndarray]]:
    files = sorted(root.glob("benign/*_mask*.png")) + sorted(root.glob("malignant/*_mask*.png"))
    out = []
    for f in files:
        m = np.asarray(Image.open(f).convert("L")) > 0
        if m.any():
            out.append((f.name, m))
        if limit and len(out) >= limit:
            break
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def best_of(repeats: int, fn, *args, **kwargs) -> tuple[float, object]:
    """Best wall-clock time in ms of ``repeats`` calls, and the result. The CPU time of
    the best-of calls is kept in ``CPU_MS`` for the same label, since other jobs on
    the two cores can stretch wall time but not CPU time."""
    best, result, cpu = float("inf"), None, float("inf")
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    LAST_CPU_MS[0] = cpu * 1000.0
    return best * 1000.0, result


LAST_CPU_MS = [0.0]


def contours(mask: np.ndarray) -> list[np.ndarray]:
    """find_contours outlines as (x, y) pixel coordinates (pixel centres at +0.5)."""
    padded = np.pad(mask, 1).astype(np.float32)
    return [np.stack([c[:, 1] - 0.5, c[:, 0] - 0.5], axis=1) for c in find_contours(padded, 0.5)]


def contours_simplified(mask: np.ndarray, tolerance: float) -> list[np.ndarray]:
    """The alternative a user might pick: find_contours, then shapely's simplify."""
    rings = []
    for c in contours(mask):
        if len(c) >= 4:
            simple = shapely.simplify(shapely.LinearRing(c), tolerance)
            rings.append(shapely.get_coordinates(simple))
    return rings


def three_in_turn(mask: np.ndarray) -> tuple:
    """What the model server did before :func:`vectorizer.outline_mask`: the specks
    dropped by scikit-image, then measure_regions, mask_to_paths and mask_to_svg, each
    checking the mask's outlines again."""
    from skimage import morphology

    # Only the foreground's bounding box is labelled, with a ring of background, as there.
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    padded = np.pad(mask[box], 1)
    padded = morphology.remove_small_objects(padded, max_size=2, connectivity=2)
    padded = morphology.remove_small_holes(padded, max_size=2, connectivity=1)
    clean = np.zeros_like(mask)
    clean[box] = padded[1:-1, 1:-1]
    return measure_regions(clean), mask_to_paths(clean, 32), mask_to_svg(clean)


def douglas_peucker(mask: np.ndarray, budget: int) -> list[str]:
    """Every find_contours ring simplified by Douglas-Peucker to at most ``budget`` vertices,
    with the smallest tolerance that meets the budget (bisection)."""
    paths = []
    for c in contours(mask):
        if len(c) < 4:
            continue
        ring = shapely.LinearRing(c)
        lo, hi = 0.0, 1.0
        while len(shapely.get_coordinates(shapely.simplify(ring, hi))) - 1 > budget and hi < 1e4:
            hi *= 2
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            if len(shapely.get_coordinates(shapely.simplify(ring, mid))) - 1 > budget:
                lo = mid
            else:
                hi = mid
        pts = shapely.get_coordinates(shapely.simplify(ring, hi))[:-1]
        if len(pts) >= 3:
            paths.append("M " + " L ".join(f"{x:.3f},{y:.3f}" for x, y in pts.tolist()) + " Z")
    # All rings in one even-odd path, so holes stay holes.
    return [" ".join(paths)] if paths else []


def write_pbm(path: Path, mask: np.ndarray) -> None:
    h, w = mask.shape
    path.write_bytes(f"P4\n{w} {h}\n".encode() + np.packbits(mask, axis=1).tobytes())


def potrace_cli(masks, repeats: int) -> tuple[list[float], float]:
    """Per-mask time of one ``potrace -s`` process per mask, and the per-mask share of
    one process tracing them all."""
    per_mask = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pbms = []
        for i, (_, m) in enumerate(masks):
            pbm = tmp / f"{i}.pbm"
            write_pbm(pbm, m)
            pbms.append(pbm)
        for pbm in pbms:
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                subprocess.run([POTRACE, "-s", "-o", str(pbm.with_suffix(".svg")), str(pbm)],
                               check=True)
                best = min(best, time.perf_counter() - t)
            per_mask.append(best * 1000.0)
        t = time.perf_counter()
        subprocess.run([POTRACE, "-s", *map(str, pbms)], check=True)
        batch = (time.perf_counter() - t) * 1000.0 / len(pbms)
    return per_mask, batch


BIG_SIDE = 10_000


def largest_fill() -> tuple[float, float]:
    """Seconds and peak scratch memory (MB, traced) of the largest fill accepted.

    A quadrilateral over a 10000x10000 canvas, 100 megapixels: the fill's pixel
    budget. The mask itself (one byte a pixel) is not counted as scratch.
    """
    d = f"M 10 10 L {BIG_SIDE - 10} 20 L {BIG_SIDE - 20} {BIG_SIDE - 10} L 20 {BIG_SIDE - 20} Z"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{BIG_SIDE}" height="{BIG_SIDE}">'
           f'<path d="{d}"/></svg>')
    seconds, _ = best_of(2, svg_to_mask, svg)
    tracemalloc.start()
    mask = svg_to_mask(svg)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds / 1000, (peak - mask.nbytes) / 1e6


#: Run in a fresh process, so that its peak resident memory is this refusal's:
#: shapely's (GEOS) memory is C memory, which tracemalloc does not see.
NOISE_SCRIPT = """
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from vectorizer import mask_to_paths

def peak_mb():
    # VmHWM, not ru_maxrss: Linux keeps the parent's high-water mark in the
    # latter across fork and exec, so a large benchmark process would show as ours.
    with open("/proc/self/status") as status:
        line = next(l for l in status if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

side = int(sys.argv[2])
noise = np.random.default_rng(0).random((side, side)) < 0.5
before = peak_mb()
start = time.perf_counter()
try:
    mask_to_paths(noise)
except ValueError:
    pass
else:
    sys.exit("the noise mask was not refused")
seconds = time.perf_counter() - start
print(seconds, before, peak_mb())
"""


def noise_refusal(side: int = 562) -> tuple[float, float, float]:
    """Seconds until ``mask_to_paths`` refuses a ``side`` x ``side`` mask of random 0/1
    pixels for the length of its paths, and the peak resident memory (MB) of a fresh
    process before and after it."""
    out = subprocess.run([sys.executable, "-c", NOISE_SCRIPT, str(REPO), str(side)],
                         capture_output=True, text=True, check=True).stdout
    seconds, before, after = (float(v) for v in out.split())
    return seconds, before, after


def summary(values) -> str:
    return f"mean {statistics.fmean(values):.5f}  min {min(values):.5f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    ap.add_argument("--busi", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="timing runs per mask (best kept)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N masks")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if not Path(POTRACE).is_file():
        # Checked first: the comparison with the CLI is one of the figures this prints.
        print(f"error: the potrace command-line tool is not installed ({POTRACE}); "
              "`make install-all` installs Debian's potrace package", file=sys.stderr)
        return 2
    root = args.busi or Path(os.environ.get("SONOTRACE_BUSI_DIR", REPO.parent / "shared" / "busi"))
    if not (root / "benign").is_dir():
        print(f"BUSI data not found at {root} (set SONOTRACE_BUSI_DIR or --busi)", file=sys.stderr)
        return 2
    masks = busi_masks(root, args.limit)
    shapes = np.array([m.shape for _, m in masks])
    print(f"{len(masks)} lesion masks from {root}, median size "
          f"{int(np.median(shapes[:, 1]))}x{int(np.median(shapes[:, 0]))} (W x H)")

    rows = {k: [] for k in (
        "rt", "rt_1x", "p16", "p32", "dp16", "dp32",
        "t_trace", "t_raster", "t_paths16", "t_paths32", "t_measure", "t_contours",
        "t_contours_dp32", "t_grow", "t_shrink", "t_outline", "t_three",
        "cpu_trace", "cpu_raster",
    )}
    measure_regions(masks[0][1])  # the first call imports scikit-image; keep that out of timings
    for _, m in masks:
        t, svg = best_of(args.repeats, mask_to_svg, m)
        rows["t_trace"].append(t)
        rows["cpu_trace"].append(LAST_CPU_MS[0])
        t, back = best_of(args.repeats, svg_to_mask, svg)
        rows["t_raster"].append(t)
        rows["cpu_raster"].append(LAST_CPU_MS[0])
        rows["rt"].append(iou(back, m))
        rows["rt_1x"].append(iou(svg_to_mask(regions_to_svg(trace(m, scale=1), m.shape)), m))
        t, p16 = best_of(args.repeats, mask_to_paths, m, 16)
        rows["t_paths16"].append(t)
        rows["p16"].append(iou(svg_to_mask(p16, shape=m.shape), m))
        t, p32 = best_of(args.repeats, mask_to_paths, m, 32)
        rows["t_paths32"].append(t)
        rows["p32"].append(iou(svg_to_mask(p32, shape=m.shape), m))
        rows["t_measure"].append(best_of(args.repeats, measure_regions, m)[0])
        rows["dp16"].append(iou(svg_to_mask(douglas_peucker(m, 16), shape=m.shape), m))
        rows["dp32"].append(iou(svg_to_mask(douglas_peucker(m, 32), shape=m.shape), m))
        rows["t_contours"].append(best_of(args.repeats, contours_simplified, m, 1.0)[0])
        rows["t_contours_dp32"].append(best_of(args.repeats, douglas_peucker, m, 32)[0])
        # The server's answer: one outline_mask call against the three functions in turn
        # on the mask without its specks (what the server did before outline_mask).
        rows["t_outline"].append(best_of(args.repeats, outline_mask, m, 32)[0])
        rows["t_three"].append(best_of(args.repeats, three_in_turn, m)[0])
        rows["t_grow"].append(best_of(args.repeats, offset_mask, m, 2)[0])
        rows["t_shrink"].append(best_of(args.repeats, offset_mask, m, -2)[0])

    cli, cli_batch = potrace_cli(masks, args.repeats)
    med = {k: statistics.median(v) for k, v in rows.items() if k.startswith(("t_", "cpu_"))}
    p95 = {k: float(np.percentile(rows[k], 95)) for k in ("t_paths16", "t_paths32", "t_measure")}
    med["t_potrace_cli"] = statistics.median(cli)
    med["t_potrace_cli_batch"] = cli_batch

    print("\nAccuracy (IoU against the mask, rasterised at pixel centres)")
    print(f"  round trip svg_to_mask(mask_to_svg(m))     {summary(rows['rt'])}")
    print(f"    naive: potrace at 1x, same rasteriser    {summary(rows['rt_1x'])}")
    print(f"  mask_to_paths(m, 16)                       {summary(rows['p16'])}")
    print(f"    Douglas-Peucker, 16 vertices per ring    {summary(rows['dp16'])}")
    print(f"  mask_to_paths(m, 32)                       {summary(rows['p32'])}")
    print(f"    Douglas-Peucker, 32 vertices per ring    {summary(rows['dp32'])}")
    print(f"\nSpeed (ms per mask, median of best-of-{args.repeats})")
    print(f"  trace      mask_to_svg                     {med['t_trace']:.2f}"
          f"   (CPU time {med['cpu_trace']:.2f})")
    print(f"  rasterise  svg_to_mask                     {med['t_raster']:.2f}"
          f"   (CPU time {med['cpu_raster']:.2f})")
    for n in (16, 32):
        print(f"  mask_to_paths(m, {n})                       {med[f't_paths{n}']:.2f}"
              f"   p95 {p95[f't_paths{n}']:.2f}")
    print(f"  offset_mask(m, 2) / (m, -2), Grow / Shrink {med['t_grow']:.2f} / "
          f"{med['t_shrink']:.2f}   ratio to mask_to_paths(m, 32) "
          f"{med['t_grow'] / med['t_paths32']:.2f}x")
    print(f"  measure_regions                            {med['t_measure']:.2f}"
          f"   p95 {p95['t_measure']:.2f}")
    print(f"  outline_mask(m, 32), the server's answer  {med['t_outline']:.2f}"
          f"   ratio to the three in turn ({med['t_three']:.2f}) "
          f"{med['t_outline'] / med['t_three']:.2f}x")
    print(f"  potrace CLI, one process per mask          {med['t_potrace_cli']:.2f}"
          f"   ratio to trace {med['t_potrace_cli'] / med['t_trace']:.1f}x")
    print(f"  potrace CLI, all masks in one process      {med['t_potrace_cli_batch']:.2f}"
          f"   ratio to trace {med['t_potrace_cli_batch'] / med['t_trace']:.1f}x")
    print(f"  find_contours + simplify(1.0)              {med['t_contours']:.2f}"
          f"   ratio to trace {med['t_contours'] / med['t_trace']:.1f}x")
    print(f"  find_contours + simplify to 32 vertices    {med['t_contours_dp32']:.2f}"
          f"   ratio to mask_to_paths {med['t_contours_dp32'] / med['t_paths32']:.2f}x")

    big_s, big_mb = largest_fill()
    print(f"\nLargest accepted fill: one shape over {BIG_SIDE}x{BIG_SIDE} pixels "
          f"(the fill's whole pixel budget)\n  svg_to_mask {big_s:.2f} s, "
          f"peak memory beyond the {BIG_SIDE * BIG_SIDE / 1e6:.0f} MB mask {big_mb:.0f} MB")

    noise_s, noise_before, noise_after = noise_refusal()
    print(f"\nA hostile mask: 562x562 random noise, refused by mask_to_paths for its paths' "
          f"length\n  {noise_s:.2f} s, peak resident memory of a fresh process "
          f"{noise_before:.0f} MB before, {noise_after:.0f} MB after")

    if args.json:
        figures = {k: {"mean": statistics.fmean(v), "min": min(v)}
                   for k, v in rows.items() if not k.startswith(("t_", "cpu_"))}
        figures.update({k: v for k, v in med.items()})
        figures.update({f"{k}_p95": v for k, v in p95.items()})
        figures["masks"] = len(masks)
        figures["largest_fill_s"], figures["largest_fill_scratch_mb"] = big_s, big_mb
        figures["noise_refusal_s"] = noise_s
        figures["noise_refusal_rss_mb"] = [noise_before, noise_after]
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
