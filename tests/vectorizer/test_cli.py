"""``python -m vectorizer``: real subprocesses, files with awkward names, exit codes."""

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vectorizer import mask_to_png, png_to_mask

REPO = Path(__file__).resolve().parents[2]


def _run(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vectorizer", *map(str, args)],
        cwd=REPO, input=stdin, capture_output=True, timeout=60,
    )


def _mask():
    yy, xx = np.mgrid[:40, :60]
    mask = np.hypot(xx - 20, yy - 18) < 12
    mask[30:36, 40:55] = True
    return mask


def test_trace_then_rasterize_round_trip(tmp_path):
    mask = _mask()
    src = tmp_path / "benign (1)_mask.png"
    src.write_bytes(mask_to_png(mask))
    svg = tmp_path / "out put.svg"
    png = tmp_path / "back.png"
    done = _run("trace", src, "-o", svg)
    assert done.returncode == 0, done.stderr
    text = svg.read_text()
    assert 'width="60"' in text and 'height="40"' in text and text.count("<path") == 2
    done = _run("rasterize", svg, "-o", png)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(png_to_mask(png.read_bytes()), mask)


def test_trace_options_and_stdout(tmp_path):
    src = tmp_path / "m.png"
    src.write_bytes(mask_to_png(_mask()))
    polygon = _run("trace", src, "--alphamax", "0", "--opttolerance", "0.5")
    assert polygon.returncode == 0
    assert b"<svg" in polygon.stdout and b"C" not in polygon.stdout.split(b"<path", 1)[1]
    # A turdsize above the small rectangle's area (90 px) drops it.
    dropped = _run("trace", src, "--turdsize", "100")
    assert dropped.stdout.count(b"<path") == 1


def test_rasterize_with_shape_for_a_document_without_size(tmp_path):
    svg = tmp_path / "nosize.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><rect x="1" y="1" width="2" height="3"/></svg>'
    )
    out = tmp_path / "o.png"
    done = _run("rasterize", svg, "-o", out, "--shape", "5", "4")
    assert done.returncode == 0, done.stderr
    expected = np.zeros((5, 4), dtype=bool)
    expected[1:4, 1:3] = True
    np.testing.assert_array_equal(png_to_mask(out.read_bytes()), expected)


@pytest.mark.parametrize(
    ("command", "content", "word"),
    [
        ("trace", None, "cannot read"),
        ("trace", b"this is not a png", "PNG"),
        ("rasterize", None, "cannot read"),
        ("rasterize", b"<svg><path d='M 0 0 L", "SVG"),
        ("rasterize", b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="2" height="2"/></svg>',
         "shape"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, command, content, word):
    path = tmp_path / "input file"
    if content is not None:
        path.write_bytes(content)
    done = _run(command, path, "-o", tmp_path / "out")
    assert done.returncode == 2
    err = done.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and word in err, err
    assert not (tmp_path / "out").exists()


def _at_most_a_gigabyte():
    resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))


@pytest.mark.parametrize(("command", "limit", "verb"), [
    ("rasterize", 4_000_000, "rasterised"),
    ("trace", 256 * 2**20, "traced"),
])
def test_a_huge_input_is_refused_without_reading_it_whole(tmp_path, command, limit, verb):
    # Read whole first, /dev/zero took 22.8 GB before the OOM killer (audit 502, finding
    # 7). A sparse 3 GB file, in a process that may not map more than 1 GB, would fail
    # with a MemoryError traceback if it were read whole.
    path = tmp_path / "huge"
    with path.open("wb") as f:
        f.truncate(3 * 2**30)
    done = subprocess.run(
        [sys.executable, "-m", "vectorizer", command, str(path), "-o", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, timeout=60, preexec_fn=_at_most_a_gigabyte,
    )
    err = done.stderr.decode().strip()
    assert done.returncode == 2, err
    assert err == f"error: {path} is more than {limit} bytes long; at most {limit} can be {verb}"
    assert not (tmp_path / "out").exists()


def test_shape_mismatch_exits_2(tmp_path):
    svg = tmp_path / "a.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="5"/>')
    done = _run("rasterize", svg, "--shape", "4", "4")
    assert done.returncode == 2 and b"shape" in done.stderr


def test_usage_errors_exit_2():
    assert _run().returncode == 2
    assert _run("trace").returncode == 2
    assert _run("trace", "x.png", "--turdsize", "many").returncode == 2


def test_an_unreadable_png_is_reported_without_object_reprs(tmp_path):
    # A PNG signature followed by garbage: Pillow's message names its BytesIO object.
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not the rest of a png")
    done = _run("trace", path, "-o", tmp_path / "out.svg")
    err = done.stderr.decode().strip()
    assert done.returncode == 2
    # Named by the file given, not the library's parameter ("data", "svg_or_paths").
    assert err == f"error: {path} is not a readable PNG image: cannot identify image file", err
    svg = tmp_path / "scan.png"
    svg.write_bytes(b"\x89PNG\r\n\x1a\n")
    err = _run("rasterize", svg, "-o", tmp_path / "out.png").stderr.decode().strip()
    assert err == f"error: {svg} is not an SVG document (no <svg> element)", err
