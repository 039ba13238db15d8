"""models.evaluate.evaluate with a stand-in runtime: the per-image transform, bad files, means."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from models.data import load_samples, read_image
from models.evaluate import evaluate, format_table


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


class RefusesWide(DarkIsLesion):
    """Refuses images wider than tall, as the runtime refuses ones it cannot take."""

    def predict_mask(self, grey):
        if grey.shape[1] > grey.shape[0]:
            raise ValueError("image: too wide for this stand-in")
        return super().predict_mask(grey)


@pytest.fixture
def busi_copy(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    return Path(shutil.copytree(root, tmp_path / "busi"))


def test_unreadable_files_are_skipped_and_reported_not_fatal(busi_copy):
    (busi_copy / "benign" / "benign (2).png").write_bytes(b"corrupt")
    (busi_copy / "malignant" / "malignant (5)_mask.png").write_bytes(b"\x89PNG truncated")
    samples = load_samples(busi_copy)
    result = evaluate(DarkIsLesion(), samples, transform=_paint_truth)
    skipped = {item["image"]: item["reason"] for item in result["skipped"]}
    assert set(skipped) == {"benign/benign (2)", "malignant/malignant (5)"}
    assert "cannot read" in skipped["benign/benign (2)"]
    assert "malignant (5)_mask.png" in skipped["malignant/malignant (5)"]
    assert result["n_images"] == len(samples) - 2
    assert {r["image"] for r in result["per_image"]}.isdisjoint(skipped)
    # The rest are scored exactly as without the bad files.
    assert result["segmentation"]["n_lesion_images"] == 10
    assert result["segmentation"]["mean_dice"] == 1.0
    assert result["classification"]["n"] == len(samples) - 2
    assert "skipped benign/benign (2)" in format_table(result)
    # Every figure in one column, the AUCs too.
    rows = [line for line in format_table(result).splitlines()
            if line.startswith(("  accuracy ", "  AUC ", "  recall ", "  mean Dice "))]
    assert len(rows) == 8
    assert len({line.index(next(w for w in line.split() if w[0].isdigit()))
                for line in rows}) == 1


def test_lesion_image_without_mask_counts_for_classification_only(busi_copy):
    (busi_copy / "benign" / "benign (6)_mask.png").unlink()
    samples = load_samples(busi_copy)
    result = evaluate(DarkIsLesion(), samples, transform=_paint_truth)
    assert result["lesion_class_without_mask"] == ["benign/benign (6)"]
    assert result["segmentation"]["n_lesion_images"] == 11
    assert result["classification"]["n"] == len(samples)
    assert result["skipped"] == []
    assert "count for classification only: benign/benign (6)" in format_table(result)
    # Its overlap scores are null, not a Dice of 0 that an average of the rows counts;
    # the header's counts add up.
    row = next(r for r in result["per_image"] if r["image"] == "benign/benign (6)")
    assert [row[k] for k in ("dice", "iou", "precision", "recall")] == [None] * 4
    assert all(r["dice"] is not None for r in result["per_image"] if r["lesion"])
    normal = result["segmentation"]["n_normal_images"]
    assert format_table(result).splitlines()[0] == (
        f"images: {len(samples)}  (lesion 11, normal {normal}, lesion class without mask 1)")
    assert len(samples) == 11 + normal + 1


def test_a_normal_image_with_an_outline_counts_once_as_normal(busi_copy):
    # Audit 818 F3: an exported "normal" reading with an outline was counted as a lesion
    # image and as a normal one (images: 13 (lesion 9, normal 5)).
    from PIL import Image

    mask_path = next(p for p in sorted((busi_copy / "normal").glob("*_mask.png")))
    mask = np.zeros(np.asarray(Image.open(mask_path)).shape[:2], np.uint8)
    mask[10:30, 10:30] = 255
    Image.fromarray(mask).save(mask_path)
    name = "normal/" + mask_path.name.removesuffix("_mask.png")
    samples = load_samples(busi_copy)
    result = evaluate(DarkIsLesion(), samples, transform=_paint_truth)
    assert result["normal_class_with_mask"] == [name]
    seg = result["segmentation"]
    assert seg["n_lesion_images"] + seg["n_normal_images"] == len(samples)
    row = next(r for r in result["per_image"] if r["image"] == name)
    assert row["lesion"] is False and row["pred_empty"] is False
    # It counts among the normal images, as one not predicted empty.
    assert seg["normal_predicted_empty"] == (seg["n_normal_images"] - 1) / seg["n_normal_images"]
    assert "count as normal, not as lesion images: " + name in format_table(result)


def test_runtime_refusals_are_skipped(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)
    result = evaluate(RefusesWide(), samples)
    wide = {f"{s.class_name}/{s.name}" for s in samples if read_image(s.image_path).shape[1]
            > read_image(s.image_path).shape[0]}
    assert wide and {item["image"] for item in result["skipped"]} == wide
    assert all("too wide" in item["reason"] for item in result["skipped"])
    assert result["n_images"] == len(samples) - len(wide)


def test_nothing_scorable_is_an_error(busi_copy):
    for p in busi_copy.glob("*/*.png"):
        p.write_bytes(b"junk")
    with pytest.raises(ValueError, match="no image could be scored"):
        evaluate(DarkIsLesion(), load_samples(busi_copy))


def test_a_resized_mask_is_scored_and_reported(busi_copy):
    from PIL import Image

    path = busi_copy / "benign" / "benign (1)_mask.png"
    mask = np.asarray(Image.open(path).convert("L")) > 0
    Image.fromarray(np.kron(mask, np.ones((2, 2), bool))).save(path)  # twice the size
    result = evaluate(DarkIsLesion(), load_samples(busi_copy), transform=_paint_truth)
    assert [item["image"] for item in result["notes"]] == ["benign/benign (1)"]
    assert "resized" in result["notes"][0]["note"]
    assert "note on benign/benign (1)" in format_table(result)
    assert result["skipped"] == []


def test_a_mask_file_index_csv_counts_but_the_folder_lacks_is_noted(busi_copy):
    (busi_copy / "benign" / "benign (2)_mask_1.png").unlink()  # index.csv counts 2
    result = evaluate(DarkIsLesion(), load_samples(busi_copy), transform=_paint_truth)
    assert result["notes"] == [{"image": "benign/benign (2)", "note": (
        "index.csv counts 2 mask file(s), the folder has 1: scored against those found")}]
    assert "note on benign/benign (2): index.csv counts 2" in format_table(result)


def test_an_image_too_small_for_the_models_is_skipped_not_fatal(busi_copy):
    from PIL import Image

    # A float TIFF goes through the shared preprocessing when it is read, which
    # refuses it: that used to end the whole run.
    (busi_copy / "benign" / "benign (3).png").unlink()
    small = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    Image.fromarray(small).save(busi_copy / "benign" / "benign (3).tif")
    samples = load_samples(busi_copy)
    result = evaluate(DarkIsLesion(), samples)
    assert [item["image"] for item in result["skipped"]] == ["benign/benign (3)"]
    assert "too small" in result["skipped"][0]["reason"]
    assert result["n_images"] == len(samples) - 1



class PartOfTruth:
    """A transform giving each lesion image a hand-made 20x20 truth (400 pixels) and
    a dark region, the stand-in's prediction, overlapping it by a known amount; the
    lesion images take the three cases in turn. Normal images become all white."""

    def __init__(self):
        self.lesions = 0

    def __call__(self, grey, mask):
        if not mask.any():
            return np.full_like(grey, 255), mask
        truth = np.zeros(grey.shape, bool)
        truth[10:30, 10:30] = True
        dark = np.zeros(grey.shape, bool)
        case = self.lesions % 3
        self.lesions += 1
        if case == 0:
            dark[10:30, 10:20] = True  # the truth's left half: 200 pixels, all inside
        elif case == 1:
            dark[10:30, 20:40] = True  # shifted half a width: 400 pixels, 200 inside
        else:
            dark[10:30, 10:30] = True  # exactly the truth
        return np.where(dark, 0, 255).astype(np.uint8), truth


def test_segmentation_means_are_the_per_image_scores_averaged(synthetic_busi):
    root, _ = synthetic_busi
    transform = PartOfTruth()
    result = evaluate(DarkIsLesion(), load_samples(root), transform=transform)
    seg = result["segmentation"]
    assert seg["n_lesion_images"] == transform.lesions == 12  # four of each case
    # Left half:  overlap 200, predicted 200, true 400, union 400:
    #   IoU 200/400 = 1/2, precision 200/200 = 1, recall 200/400 = 1/2, Dice 400/600 = 2/3.
    # Shifted:    overlap 200, predicted 400, true 400, union 600:
    #   IoU 200/600 = 1/3, precision 200/400 = 1/2, recall 1/2, Dice 400/800 = 1/2.
    # Exact:      IoU, precision, recall and Dice all 1.
    # Four of each, so each mean is the average of the three, of the exact scores
    # (the rows are rounded to 4 places, the means are not); the medians are the
    # middle case's.
    assert seg["mean_iou"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3, abs=1e-12)  # 0.6111
    assert seg["mean_precision"] == pytest.approx((1 + 1 / 2 + 1) / 3, abs=1e-12)  # 0.8333
    assert seg["mean_recall"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3, abs=1e-12)  # 0.6667
    assert seg["mean_dice"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3, abs=1e-12)  # 0.7222
    assert seg["median_dice"] == pytest.approx(2 / 3, abs=1e-12)
    assert {r["iou"] for r in result["per_image"] if r["lesion"]} == {0.5, 0.3333, 1.0}
    # The normal images are predicted empty (all white) and do not enter the means.
    assert seg["normal_predicted_empty"] == 1.0
