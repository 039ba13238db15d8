"""What README "Input handling" says of a JPEG damaged inside its scan data: read, not
refused (audit helper-501, finding 7). Pillow silences libjpeg's "Corrupt JPEG data"
warning, so the reader has nothing to go on; if that changes, so must the README."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import numpy as np
from image_samples import speckle_image
from PIL import Image

from vectorizer import CorruptImage, read_image_file

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_jpeg_damaged_inside_its_scan_data_is_read_garbled_as_the_readme_says():
    yy, xx = np.mgrid[0:192, 0:256]
    pixels = ((speckle_image(192, 256, seed=7).astype(int) // 2 + (xx + yy) // 4) % 256
              ).astype(np.uint8)
    data = _jpeg(pixels)
    intact = read_image_file(data, max_pixels=10**6).pixels.astype(int)
    scan = data.index(b"\xff\xda")
    rng = random.Random(4)
    served = []
    for _ in range(10):
        at = rng.randrange(scan + (len(data) - scan) // 3, len(data) - 1000)
        # Bytes without 0xFF: no stray marker that would stop the decoder early. Some
        # damage still runs the decoder out of data, which the cut check refuses.
        junk = bytes(rng.randrange(0, 255) for _ in range(200))
        try:
            read = read_image_file(data[:at] + junk + data[at + len(junk):], max_pixels=10**6)
        except CorruptImage:
            continue
        served.append(np.abs(read.pixels.astype(int) - intact) > 20)
    assert len(served) >= 5
    for garbled in served:
        assert garbled[-16:].mean() > 0.2  # up to the end: the file has no restart markers
        assert not garbled[:16].any()  # before the damage, the picture is the file's
    said = re.sub(r"\s+", " ", README)
    assert ("**Not detected:** bytes changed inside a JPEG's scan data (damaged, not cut "
            "off).") in said
