import numpy as np
import pytest
from PIL import Image

from models.data import (
    CLASS_NAMES,
    UnreadableFileError,
    load_arrays,
    load_samples,
    read_image,
    read_mask,
    split_by_group,
)


def test_loader_reads_quirky_layout(synthetic_busi):
    root, expected = synthetic_busi
    samples = load_samples(root)
    assert len(samples) == 18
    by_key = {(s.class_name, s.name): s for s in samples}
    assert set(by_key) == set(expected)
    two = by_key[("benign", "benign (2)")]
    assert [p.name for p in two.mask_paths] == ["benign (2)_mask.png", "benign (2)_mask_1.png"]
    for key, s in by_key.items():
        grey = read_image(s.image_path)
        assert grey.dtype == np.uint8 and grey.ndim == 2
        mask = read_mask(s.mask_paths, grey.shape)
        assert np.array_equal(mask, expected[key]), key
    assert by_key[("normal", "normal (1)")].label == CLASS_NAMES.index("normal")


def test_split_keeps_duplicate_groups_together(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)
    train, val = split_by_group(samples, 0.34, seed=3)
    assert len(train) + len(val) == len(samples)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert {s.label for s in val} == {0, 1, 2}
    again = split_by_group(samples, 0.34, seed=3)[1]
    assert [s.name for s in again] == [s.name for s in val]


def test_split_on_real_busi_has_no_leakage(busi_dir):
    samples = load_samples(busi_dir)
    assert len(samples) >= 600
    train, val = split_by_group(samples, 0.2, seed=42)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert 0.15 < len(val) / len(samples) < 0.25


def test_load_arrays_shapes(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)[:4]
    x, m, y = load_arrays(samples, 32)
    assert x.shape == (4, 32, 32, 1) and m.shape == (4, 32, 32, 1)
    assert 0 <= x.min() and x.max() <= 1
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert y.tolist() == [s.label for s in samples]


def test_load_samples_rejects_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="root"):
        load_samples(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        load_samples(tmp_path)


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40]
)
def test_unreadable_image_and_mask_name_the_file(tmp_path, content):
    bad = tmp_path / "benign (1).png"
    bad.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=r"benign \(1\)\.png: cannot read"):
        read_image(bad)
    with pytest.raises(UnreadableFileError, match=r"benign \(1\)\.png"):
        read_mask([bad], (4, 4))
    # Callers that already handle ValueError (the CLIs' bad-input paths) keep working.
    assert issubclass(UnreadableFileError, ValueError)


def test_truncated_and_missing_files_are_unreadable(tmp_path):
    good = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert read_image(good).shape == (64, 64)
    with pytest.raises(UnreadableFileError, match="cut.png"):
        read_image(cut)
    with pytest.raises(UnreadableFileError, match="gone.png"):
        read_image(tmp_path / "gone.png")


def test_image_past_the_pixel_limit_is_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("L", (100, 100)).save(path)
    # Pillow raises DecompressionBombError past twice MAX_IMAGE_PIXELS.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableFileError, match="huge.png"):
        read_image(path)
