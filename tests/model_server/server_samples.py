"""Small image files built in memory for the model server tests.

The builders shared with the other packages' tests live in ``tests/image_samples.py``
and are imported from here too, so the server tests keep one import line; what only
these tests use is defined here.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from image_samples import (
    deflated_dicom_bytes,
    dicom_bytes,
    huge_png_bytes,
    jpeg_bytes,
    palette_png_bytes,
    png16_bytes,
    png_bytes,
    recompressed_dicom_bytes,
    speckle_image,
)
from PIL import Image

__all__ = [
    "busi_image",
    "decode_png",
    "deflated_dicom_bytes",
    "dicom_bytes",
    "huge_png_bytes",
    "jpeg_bytes",
    "palette_png_bytes",
    "png16_bytes",
    "png_bytes",
    "recompressed_dicom_bytes",
    "speckle_image",
]


def busi_image(busi_dir: Path, name: str) -> tuple[bytes, np.ndarray]:
    """Bytes of BUSI image ``name`` (e.g. ``"benign (11)"``) and its pixels as decoded by Pillow."""
    kind = name.split(" ")[0]
    path = busi_dir / kind / f"{name}.png"
    data = path.read_bytes()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L") if image.mode != "RGB" else image)
    return data, pixels


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


