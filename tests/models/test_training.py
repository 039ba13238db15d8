"""Losses and augmentation of models.training, against values worked out by hand."""

import numpy as np
import pytest

from models.training import augment, make_losses


def _ce(p):
    return -np.log(p)


def test_classification_loss_matches_hand_computed_cross_entropy():
    _, cls_loss = make_losses([1.0, 2.0, 1.0])
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    labels = np.array([0, 1], np.int32)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # Class weights multiply each image's loss: 1 for the normal image, 2 for the benign one.
    expected = (1.0 * _ce(p[0, 0]) + 2.0 * _ce(p[1, 1])) / 2
    assert float(cls_loss(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_targets_and_its_effect_on_confident_logits():
    smooth = 0.1
    _, plain = make_losses([1.0, 1.0, 1.0])
    _, smoothed = make_losses([1.0, 1.0, 1.0], label_smoothing=smooth)
    logits = np.array([[8.0, 0.0, 0.0]], np.float32)
    labels = np.array([0], np.int32)
    logp = logits[0] - np.log(np.exp(logits[0]).sum())
    target = np.array([1 - smooth + smooth / 3, smooth / 3, smooth / 3])
    assert float(smoothed(labels, logits)) == pytest.approx(-(target * logp).sum(), rel=1e-5)
    # An over-confident right answer costs more with smoothed targets than without.
    assert float(smoothed(labels, logits)) > float(plain(labels, logits)) + 0.1


def test_segmentation_loss_is_bce_plus_soft_dice():
    seg_loss, _ = make_losses([1.0, 1.0, 1.0])
    y = np.zeros((1, 4, 4, 1), np.float32)
    y[0, :2] = 1
    pred = np.full_like(y, 0.25)
    pred[0, :2] = 0.75
    bce = -np.log(0.75)  # every pixel is 0.75 right
    inter = 8 * 0.75
    dice = 1 - (2 * inter + 1) / (8 + pred.sum() + 1)
    assert float(seg_loss(y, pred)) == pytest.approx(bce + dice, rel=1e-5)


def test_augment_keeps_masks_binary_and_aligned_with_the_image():
    import tensorflow as tf

    img = np.zeros((4, 32, 32, 1), np.float32)
    mask = np.zeros_like(img)
    img[:, 8:24, 8:24] = 1.0
    mask[:, 8:24, 8:24] = 1.0
    out_img, out_mask = augment(tf.constant(img), tf.constant(mask))
    out_img, out_mask = out_img.numpy(), out_mask.numpy()
    assert out_img.shape == img.shape and out_mask.shape == mask.shape
    assert set(np.unique(out_mask)) <= {0.0, 1.0}
    assert 0.0 <= out_img.min() and out_img.max() <= 1.0
    # The bright square and the mask move together: inside the mask is brighter.
    for i in range(4):
        inside, outside = out_img[i][out_mask[i] > 0], out_img[i][out_mask[i] == 0]
        if inside.size and outside.size:
            assert inside.mean() > outside.mean()
