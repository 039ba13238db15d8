"""models.evaluate.evaluate with a stand-in runtime: the optional per-image transform."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import load_samples, read_image
from models.evaluate import evaluate


class DarkIsLesion:
    """A stand-in runtime: the lesion is every black pixel; it always says benign."""

    def __init__(self):
        self.seen = []

    def predict_mask(self, grey):
        self.seen.append(grey.copy())
        return grey == 0

    def classify(self, grey):
        return {"normal": 0.1, "benign": 0.8, "malignant": 0.1}


def _paint_truth(grey, mask):
    """The image made black exactly on the ground truth, white elsewhere."""
    return np.where(mask, 0, 255).astype(np.uint8), mask


def test_without_transform_the_images_are_scored_as_read(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)
    rt = DarkIsLesion()
    evaluate(rt, samples)
    assert len(rt.seen) == len(samples)
    for grey, s in zip(rt.seen, samples, strict=True):
        assert np.array_equal(grey, read_image(s.image_path))


def test_transform_changes_what_the_runtime_sees_and_the_truth_it_is_scored_on(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)
    result = evaluate(DarkIsLesion(), samples, transform=_paint_truth)
    seg = result["segmentation"]
    assert seg["mean_dice"] == 1.0 and seg["n_lesion_images"] == 12
    assert seg["normal_predicted_empty"] == 1.0

    rt = DarkIsLesion()
    crop = evaluate(rt, samples, transform=lambda g, m: _paint_truth(g[:40, :50], m[:40, :50]))
    assert {g.shape for g in rt.seen} == {(40, 50)}
    assert crop["segmentation"]["mean_dice"] == 1.0


def test_transform_must_keep_image_and_mask_the_same_size(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)[:1]
    with pytest.raises(ValueError, match="transform"):
        evaluate(DarkIsLesion(), samples, transform=lambda g, m: (g[:, :-1], m))
