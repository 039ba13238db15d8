"""Fixtures for the models tests: a synthetic folder with BUSI's quirks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def _blob_image(rng, h, w, lesion):
    """Speckled background with a dark ellipse where ``lesion`` is True."""
    img = rng.normal(120, 25, (h, w)).clip(0, 255)
    img[lesion] = rng.normal(40, 10, lesion.sum()).clip(0, 255)
    return img.astype(np.uint8)


def _ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


@pytest.fixture(scope="session")
def synthetic_busi(tmp_path_factory):
    """A small BUSI-layout folder with the published data's quirks.

    Names with spaces and parentheses; grey, RGB and RGBA images; 1-bit,
    8-bit RGB and RGBA masks; an image with two masks (merged with OR);
    normal images with all-black masks; an ``index.csv`` with duplicate groups.

    Returns ``(root, expected)`` where ``expected[(cls, name)]`` is the merged
    ``(H, W)`` bool mask.
    """
    root = tmp_path_factory.mktemp("busi")
    rng = np.random.default_rng(0)
    expected = {}
    rows = ["class,name,duplicate_group,masks"]
    group = 0
    for cls in ("benign", "malignant", "normal"):
        (root / cls).mkdir()
        for i in range(1, 7):
            name = f"{cls} ({i})"
            h, w = (90, 120) if i % 2 else (110, 100)
            if cls == "normal":
                lesions = [np.zeros((h, w), bool)]
            else:
                lesions = [_ellipse(h, w, h / 2, w / 2 + (i - 3) * 4, h / 5, w / 4)]
                if i == 2:
                    lesions.append(_ellipse(h, w, h / 5, w / 5, 6, 8))
            merged = np.logical_or.reduce(lesions)
            img = _blob_image(rng, h, w, merged)
            if i == 3:
                Image.fromarray(np.stack([img] * 3, -1), "RGB").save(root / cls / f"{name}.png")
            elif i == 4:
                rgba = np.dstack([img, img, img, np.full_like(img, 255)])
                Image.fromarray(rgba, "RGBA").save(root / cls / f"{name}.png")
            else:
                Image.fromarray(img, "L").save(root / cls / f"{name}.png")
            for k, m in enumerate(lesions):
                suffix = "_mask" if k == 0 else f"_mask_{k}"
                path = root / cls / f"{name}{suffix}.png"
                if i == 1:
                    Image.fromarray(m).convert("1").save(path)
                elif i == 3:
                    Image.fromarray(np.stack([m * 255] * 3, -1).astype(np.uint8), "RGB").save(path)
                elif i == 4:
                    a = (m * 255).astype(np.uint8)
                    Image.fromarray(np.dstack([a, a, a, np.full_like(a, 255)]), "RGBA").save(path)
                else:
                    Image.fromarray((m * 255).astype(np.uint8), "L").save(path)
            expected[(cls, name)] = merged
            # Pairs of images share a duplicate group, like BUSI's near-duplicates.
            if i % 2:
                group += 1
            rows.append(f"{cls},{name},{group},{len(lesions)}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root, expected


@pytest.fixture
def smooth_map():
    """``make(rng)`` -> a smooth ``(160, 160)`` float32 lesion probability map, blobs of
    random size and sharpness, like a network's output."""

    def make(rng, size=160):
        from scipy import ndimage

        z = ndimage.gaussian_filter(rng.normal(size=(size, size)), rng.uniform(3, 12))
        z = (z - z.mean()) / (z.std() + 1e-9)
        logits = z * rng.uniform(1, 6) - rng.uniform(0, 6)
        return (1 / (1 + np.exp(-logits))).astype(np.float32)

    return make


@pytest.fixture(scope="session")
def tiny_run(synthetic_busi, tmp_path_factory):
    """A two-epoch training run on :func:`synthetic_busi`: ``(root, run_dir)``."""
    from models import train

    root, _ = synthetic_busi
    out = tmp_path_factory.mktemp("run")
    rc = train.main([
        "--data", str(root), "--out", str(out), "--epochs", "2", "--steps-per-epoch", "2",
        "--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--val-fraction", "0.34",
    ])
    assert rc == 0
    return root, out


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    """:func:`tiny_run` exported for the Keras backend only: ``(weights_dir, split.json)``."""
    from models import export

    root, run = tiny_run
    weights = tmp_path_factory.mktemp("weights")
    card = tmp_path_factory.mktemp("card")
    rc = export.main(["--run", str(run), "--data", str(root), "--out", str(weights),
                      "--card-dir", str(card), "--version", "test", "--no-litert", "--tta", "off"])
    assert rc == 0
    return weights, run / "split.json"
