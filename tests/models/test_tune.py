"""Choosing the temperature and post-processing (models.tune) on outputs built by hand."""

import json
import subprocess
import sys

import numpy as np
import pytest

from models import tune
from models._postprocess import PostProcess


def _disc(h, w, value):
    prob = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[:h, :w]
    inside = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (h / 4) ** 2
    prob[inside] = value
    return prob, inside


def _cases(copies=1):
    """Outputs that only a gate which keeps confident outlines can score perfectly.

    - normal images: a faint false blob (0.55), P(normal) 0.6;
    - lesions "A": a confident true outline (0.95), P(normal) 0.6 too;
    - lesions "B": a faint true outline (0.55), P(normal) 0.1.

    A gate that empties the mask loses the A outlines; a confidence floor
    applied everywhere loses the B outlines; keeping confident components when
    the gate fires scores Dice 1 with every normal image empty.
    """
    seg, truths, labels, p_normal = [], [], [], []
    for _ in range(copies):
        for label, value, pn, n in ((0, 0.55, 0.6, 10), (1, 0.95, 0.6, 5), (2, 0.55, 0.1, 5)):
            for _ in range(n):
                prob, inside = _disc(40, 48, value)
                seg.append(prob)
                truths.append(inside if label else np.zeros_like(inside))
                labels.append(label)
                p_normal.append(pn)
    p_normal = np.array(p_normal)
    # Logits whose softmax at temperature 1 gives P(normal) = p_normal.
    logits = np.log(np.stack([p_normal, (1 - p_normal) / 2, (1 - p_normal) / 2], axis=1))
    return tune.Outputs(seg, logits, truths, np.array(labels)), p_normal


def test_search_keeps_confident_outlines_when_the_gate_fires():
    out, p_normal = _cases()
    tables = tune._tables(out)
    idx = np.arange(len(out.labels))
    key, choice = tune._search(tables, p_normal, out.labels, idx)
    assert key[0] and key[2] == pytest.approx(1.0) and key[3] == 1.0
    settings = tune._settings(choice)
    assert settings.normal_gate <= 0.6 and 0.55 < settings.gate_keep_confidence <= 0.95
    assert settings.min_confidence < 0.55  # the faint B outlines survive outside the gate

    # The earlier rule (the gate empties the mask) cannot do as well.
    key_old, choice_old = tune._search(tables, p_normal, out.labels, idx, gate_keeps=(2.0,))
    assert key_old[2] <= 0.5 + 1e-9
    assert tune._settings(choice_old).gate_keep_confidence > 1


def test_choose_settings_and_crossfit_on_a_rule_that_generalises():
    out, _ = _cases(copies=2)
    temperature, settings, summary = tune.choose_settings(out)
    assert 0.25 <= temperature <= 8
    assert isinstance(settings, PostProcess)
    assert summary["dice"] == pytest.approx(1.0) and summary["normal_empty"] == 1.0
    # Every fold holds every kind of image, so the rule found on one half is right
    # on the other: cross-fitted figures equal the in-sample ones here.
    cf = tune.crossfit(out)
    assert cf["dice"] == pytest.approx(1.0) and cf["normal_empty"] == 1.0
    old = tune.crossfit(out, gate_keeps=(2.0,))
    assert old["dice"] < 0.75


def test_crossfit_exposes_a_rule_that_does_not_generalise():
    # Each lesion image holds the lesion and a look-alike at unrelated random
    # confidences: whatever threshold suits one half of the images is luck, so
    # settings tuned in sample score better there than on the other half.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :48]
    lesion = (yy - 20) ** 2 + (xx - 14) ** 2 <= 49
    blob = (yy - 20) ** 2 + (xx - 36) ** 2 <= 64
    seg, truths, labels = [], [], []
    for i in range(16):
        prob = np.zeros((40, 48), np.float32)
        prob[lesion] = rng.uniform(0.3, 0.95)
        prob[blob] = rng.uniform(0.3, 0.95)
        seg.append(prob)
        truths.append(lesion)
        labels.append(1 + i % 2)
    for _ in range(4):
        seg.append(np.zeros((40, 48), np.float32))
        truths.append(np.zeros((40, 48), bool))
        labels.append(0)
    labels = np.array(labels)
    p = np.where(labels == 0, 0.8, 0.1)
    out = tune.Outputs(seg, np.log(np.stack([p, (1 - p) / 2, (1 - p) / 2], 1)), truths, labels)
    _, _, summary = tune.choose_settings(out)
    cf = tune.crossfit(out)
    assert cf["dice"] < summary["dice"] - 0.02
    assert cf["dice_range"][0] <= cf["dice"] <= cf["dice_range"][1]


def test_tune_cli(synthetic_busi, tiny_export, tmp_path):
    root, _ = synthetic_busi
    weights, split = tiny_export
    before = (weights / "manifest.json").read_text()
    cmd = [sys.executable, "-m", "models.tune", "--data", str(root), "--split", str(split),
           "--weights", str(weights), "--tta", "off"]
    proc = subprocess.run(cmd + ["--dry-run"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert {"temperature", "tta_flip", "postprocess", "tuning"} <= set(printed)
    assert (weights / "manifest.json").read_text() == before

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["postprocess"] == printed["postprocess"]
    assert manifest["tuning"]["crossfit"]["seeds"] == 5
    assert "gate_empties_rule" in manifest["tuning"]
    ece = manifest["metrics"]["classification"]["ece_crossfit_2fold"]
    assert isinstance(ece, float) and 0.0 <= ece <= 1.0  # an ECE is a mean |gap| of rates
    # Without a lesion classifier what is served is the U-Net head, whose cross-fitted
    # ECE tuning measured: the metrics report that figure, not another (such as the
    # in-sample ECE beside it).
    assert "lesion_classifier" not in manifest
    assert ece == manifest["tuning"]["ece_crossfit_2fold"]

    empty_split = tmp_path / "split.json"
    empty_split.write_text(json.dumps({"train": [], "val": []}))
    proc = subprocess.run(
        [sys.executable, "-m", "models.tune", "--data", str(root), "--split", str(empty_split),
         "--weights", str(weights)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no validation images" in proc.stderr


def _blend_cases(n=600, seed=0):
    """Head logits and lesion odds whose blend is under-confident (the odds are halved)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), labels] += 3.0
    # Sharp, correct odds of malignant against benign; none for a third of the images.
    odds = [None if i % 3 == 0 else (4.0 if y == 2 else -4.0) * 0.5
            for i, y in enumerate(labels)]
    return logits, odds, labels


def test_served_probabilities_are_the_runtime_blend():
    from models.runtime import mix_malignant_odds, recalibrate

    logits, odds, labels = _blend_cases(9)
    names = ["normal", "benign", "malignant"]
    got = tune.served_probabilities(logits, odds, names, 1.5, 0.5, 0.8)
    for row, z, o in zip(got, logits, odds, strict=True):
        p = np.exp(z / 1.5) / np.exp(z / 1.5).sum()
        probs = dict(zip(names, p, strict=True))
        if o is not None:
            probs = mix_malignant_odds(probs, o, 0.5)
        assert row == pytest.approx([recalibrate(probs, 0.8)[c] for c in names])


def test_blend_temperature_sharpens_an_underconfident_blend():
    from models.metrics import expected_calibration_error

    logits, odds, labels = _blend_cases()
    names = ["normal", "benign", "malignant"]
    t = tune.fit_temperature(logits, labels)
    s = tune.fit_blend_temperature(logits, odds, labels, names, t, 0.5)
    before = tune.served_probabilities(logits, odds, names, t, 0.5)
    after = tune.served_probabilities(logits, odds, names, t, 0.5, s)

    def nll(p):
        return -np.log(p[np.arange(len(labels)), labels]).mean()

    assert s < 1.0 and nll(after) < nll(before)
    # Tempering changes no image's most likely class.
    assert (after.argmax(1) == before.argmax(1)).all()
    # Odds that were right all along want no tempering of the blend's head side.
    sure = [None] * len(labels)
    assert tune.fit_blend_temperature(logits, sure, labels, names, t, 0.5) == pytest.approx(
        1.0, abs=0.03)
    assert expected_calibration_error(after, labels) <= expected_calibration_error(before, labels)
