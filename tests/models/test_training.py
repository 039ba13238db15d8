"""Losses, augmentation, schedule and weight averaging of models.training, by hand."""

import csv

import keras
import numpy as np
import pytest

from models.training import (
    ResumedEarlyStopping,
    WeightAverage,
    augment,
    check_run_dir,
    make_dataset,
    make_losses,
    make_schedule,
    mixup,
    open_run_dir,
    recalibrate_batchnorm,
    resumed_best,
)


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


def test_soft_targets_weigh_each_class_by_its_share():
    weights = [1.0, 2.0, 4.0]
    _, cls_loss = make_losses(weights, label_smoothing=0.1)
    logits = np.array([[1.0, 0.5, -1.0], [0.0, 2.0, 0.5]], np.float32)
    labels = np.array([2, 1], np.int32)
    # A one-hot soft target is the class index it encodes.
    onehot = np.eye(3, dtype=np.float32)[labels]
    assert float(cls_loss(onehot, logits)) == pytest.approx(float(cls_loss(labels, logits)),
                                                            rel=1e-6)
    # A 70/30 blend of normal and malignant: smoothed blended target, weight 0.7*1 + 0.3*4.
    soft = np.array([[0.7, 0.0, 0.3]], np.float32)
    logp = logits[:1] - np.log(np.exp(logits[:1]).sum())
    target = soft[0] * 0.9 + 0.1 / 3
    expected = -(target * logp[0]).sum() * (0.7 * 1.0 + 0.3 * 4.0)
    assert float(cls_loss(soft, logits[:1])) == pytest.approx(expected, rel=1e-5)


def test_mixup_blends_image_mask_and_target_with_one_weight_per_sample():
    import tensorflow as tf

    tf.random.set_seed(3)
    b = 8
    # Sample i is a flat image of value i, a full or empty mask, and class i,
    # so each output says which two samples it blends and with what weight.
    image = np.broadcast_to(np.arange(b, dtype=np.float32)[:, None, None, None],
                            (b, 4, 4, 1)).copy()
    full = (np.arange(b) % 2).astype(np.float32)
    mask = np.broadcast_to(full[:, None, None, None], (b, 4, 4, 1)).copy()
    onehot = np.eye(b, dtype=np.float32)
    seen_blend = False
    for _ in range(5):
        img, msk, tgt = (t.numpy() for t in mixup(image, mask, onehot, alpha=0.4))
        np.testing.assert_allclose(tgt.sum(1), 1.0, atol=1e-6)
        for i in range(b):
            # Each sample keeps at least half of itself.
            assert tgt[i, i] >= 0.5 - 1e-6
            assert np.count_nonzero(tgt[i] > 1e-6) <= 2
            np.testing.assert_allclose(img[i], tgt[i] @ np.arange(b), atol=1e-5)
            np.testing.assert_allclose(msk[i], tgt[i] @ full, atol=1e-5)
            seen_blend |= tgt[i, i] < 0.99
    assert seen_blend


def test_mixup_can_let_a_visible_lesion_make_the_blend_a_lesion_image():
    import tensorflow as tf

    from models.training import MIXUP_VISIBLE

    labels = np.array([0, 0, 0, 1, 2, 1, 0, 2, 0, 1, 0, 2])
    onehot = np.eye(3, dtype=np.float32)[labels]
    image = np.random.default_rng(1).random((len(labels), 4, 4, 1)).astype(np.float32)
    moved = kept = 0
    for seed in range(6):
        tf.random.set_seed(seed)
        img_p, _, plain = (t.numpy() for t in mixup(image, image, onehot, 0.4))
        tf.random.set_seed(seed)
        img_l, _, lesion = (t.numpy() for t in mixup(image, image, onehot, 0.4,
                                                     lesion_wins=True))
        np.testing.assert_allclose(img_l, img_p)  # same draws, only the targets differ
        np.testing.assert_allclose(lesion.sum(1), 1.0, atol=1e-6)
        for row_p, row_l in zip(plain, lesion, strict=True):
            share = row_p[1:].sum()
            if share >= MIXUP_VISIBLE:
                # No normal share left; benign and malignant keep their ratio.
                assert row_l[0] == 0.0
                np.testing.assert_allclose(row_l[1:], row_p[1:] / share, rtol=1e-5)
                moved += row_p[0] > 0
            else:
                np.testing.assert_allclose(row_l, row_p)
                kept += share > 0
    assert moved > 0 and kept > 0


def test_mixup_by_status_blends_normal_with_normal_and_lesion_with_lesion():
    import tensorflow as tf

    tf.random.set_seed(7)
    # One normal image alone among lesions has no partner and stays as it is.
    lone_normal = np.array([1, 2, 0, 1, 2, 2, 1, 1])
    normal_first = np.array([0, 0, 0, 1, 2, 1, 2, 0, 1, 2])
    for labels in (lone_normal, normal_first):
        n = len(labels)
        # Normal images are dark (values 0-9), lesion images bright (100 and up),
        # so any normal-lesion blend lands outside both ranges.
        values = np.where(labels == 0, np.arange(n), 100 + np.arange(n)).astype(np.float32)
        image = np.broadcast_to(values[:, None, None, None], (n, 4, 4, 1)).copy()
        onehot = np.eye(3, dtype=np.float32)[labels]
        blended = False
        for _ in range(5):
            img, _, tgt = (t.numpy() for t in mixup(image, image, onehot, 0.4, pairs="status"))
            v = img[:, 0, 0, 0]
            normal = labels == 0
            assert np.all(v[normal] <= 9) and np.all(v[~normal] >= 100)
            np.testing.assert_array_equal(tgt[normal], onehot[normal])
            assert np.all(tgt[~normal, 0] == 0)
            blended |= bool(np.any(np.abs(v - values) > 0.01))
            if normal.sum() == 1:
                assert v[normal][0] == values[normal][0]
        assert blended
    with pytest.raises(ValueError, match="pairs"):
        mixup(image, image, onehot, 0.4, pairs="class")


def test_training_batches_carry_soft_targets_only_with_mixup():
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 1)).astype(np.float32)
    m = (rng.random((8, 16, 16, 1)) > 0.7).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0, 2, 1, 1], np.int32)
    plain = next(iter(make_dataset(x, m, y, 4, training=True)))[1]["cls"].numpy()
    assert plain.shape == (4,) and plain.dtype == np.int32
    inputs, targets = next(iter(make_dataset(x, m, y, 4, training=True, mixup_alpha=0.4,
                                             num_classes=3)))
    soft = targets["cls"].numpy()
    assert soft.shape == (4, 3)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
    seg = targets["seg"].numpy()
    assert seg.min() >= 0.0 and seg.max() <= 1.0
    # The hint is the (blended) mask where it is used, and empty elsewhere.
    use = inputs["use_hint"].numpy().reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(inputs["hint"].numpy(), seg * use)
    # Validation batches are never blended.
    val = next(iter(make_dataset(x, m, y, 4, training=False, mixup_alpha=0.4)))[1]["cls"]
    np.testing.assert_array_equal(val.numpy(), y[:4])


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


def test_image_tversky_loss_weighs_each_image_and_missed_pixels_more():
    seg_loss, _ = make_losses([1.0, 1.0, 1.0], seg="image-tversky")
    y = np.zeros((2, 4, 4, 1), np.float32)
    y[0, :2] = 1  # image 0: lesion in the top half; image 1: normal, empty mask
    pred = np.full_like(y, 0.25)
    pred[0, :2] = 0.75
    bce = -np.log(0.75)
    tp, fp, fn = 8 * 0.75, 8 * 0.25, 8 * 0.25
    lesion = 1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1)
    normal = 1 - 1 / (0.3 * 16 * 0.25 + 1)
    assert float(seg_loss(y, pred)) == pytest.approx(bce + (lesion + normal) / 2, rel=1e-5)

    # The same number of pixels wrong costs more when they are missed lesion.
    one = np.zeros((1, 4, 4, 1), np.float32)
    one[0, :2] = 1
    under, over = one.copy(), one.copy()
    under[0, 1] = 0  # four lesion pixels missed
    over[0, 2] = 1  # four background pixels added
    assert float(seg_loss(one, under)) > float(seg_loss(one, over))


def test_image_dice_loss_is_the_mean_of_each_images_soft_dice():
    seg_loss, _ = make_losses([1.0, 1.0, 1.0], seg="image-dice")
    y = np.zeros((2, 4, 4, 1), np.float32)
    y[0, :2] = 1
    pred = np.full_like(y, 0.25)
    pred[0, :2] = 0.75
    pred[1] = 0.5  # a normal image with a faint blob everywhere
    bce_lesion, bce_normal = -np.log(0.75), -np.log(0.5)
    # TP 6, FP 2, FN 2: (TP + 1) / (TP + FP/2 + FN/2 + 1) is the soft Dice
    # (2 TP + 2) / (2 TP + FP + FN + 2).
    lesion = 1 - (2 * 6 + 2) / (2 * 6 + 2 + 2 + 2)
    normal = 1 - 1 / (0.5 * 16 * 0.5 + 1)
    expected = (bce_lesion + bce_normal) / 2 + (lesion + normal) / 2
    assert float(seg_loss(y, pred)) == pytest.approx(expected, rel=1e-5)
    # Unlike the batch Dice, the normal image's blob costs as much as a whole lesion image.
    batch, _ = make_losses([1.0, 1.0, 1.0])
    assert float(seg_loss(y, pred)) > float(batch(y, pred))


def test_unknown_segmentation_loss_is_refused():
    with pytest.raises(ValueError, match="seg"):
        make_losses([1.0, 1.0, 1.0], seg="focal")


@pytest.mark.parametrize("strength", ["standard", "strong"])
def test_augment_keeps_masks_binary_and_aligned_with_the_image(strength):
    import tensorflow as tf

    img = np.zeros((4, 32, 32, 1), np.float32)
    mask = np.zeros_like(img)
    img[:, 8:24, 8:24] = 1.0
    mask[:, 8:24, 8:24] = 1.0
    out_img, out_mask = augment(tf.constant(img), tf.constant(mask), strength=strength)
    out_img, out_mask = out_img.numpy(), out_mask.numpy()
    assert out_img.shape == img.shape and out_mask.shape == mask.shape
    assert set(np.unique(out_mask)) <= {0.0, 1.0}
    assert 0.0 <= out_img.min() and out_img.max() <= 1.0
    # The bright square and the mask move together: inside the mask is brighter.
    for i in range(4):
        inside, outside = out_img[i][out_mask[i] > 0], out_img[i][out_mask[i] == 0]
        if inside.size and outside.size:
            assert inside.mean() > outside.mean()


def test_rotation_turns_image_and_mask_together_about_the_centre():
    import tensorflow as tf

    from models.training import _rotate

    # A bar along x through the centre of an odd-sized image: rotated, it stays centred,
    # keeps its area, and its ends move off the row.
    img = np.zeros((32, 33, 33, 2), np.float32)
    img[:, 16, 6:27] = 1.0
    tf.random.set_seed(3)
    out = _rotate(tf.constant(img), 12.0).numpy()
    assert np.array_equal(out[..., 0], out[..., 1])
    assert np.allclose(out[:, 16, 16], 1.0)
    assert np.allclose(out.sum(axis=(1, 2, 3)), img.sum(axis=(1, 2, 3)), rtol=0.05)
    tilted = out[:, :, 6, 0].argmax(axis=1)  # the row the bar's left end lands on
    assert (tilted != 16).sum() >= 16  # most of 32 angles in +-12 degrees move it
    assert np.all(np.abs(tilted - 16) <= 3)  # tan(12 degrees) x 10 px = 2.1 px
    assert np.array_equal(_rotate(tf.constant(img), 0.0).numpy(), img)


def test_blur_blends_towards_a_smoothed_copy_by_at_most_its_share():
    import tensorflow as tf

    from models.training import _blur

    board = (np.indices((16, 16)).sum(axis=0) % 2).astype(np.float32)
    img = np.repeat(board[None, :, :, None], 64, axis=0)
    assert np.array_equal(_blur(tf.constant(img), 0.0).numpy(), img)
    out = _blur(tf.constant(img), 1.0).numpy()
    inner = out[:, 2:-2, 2:-2, 0]
    spread = inner.max(axis=(1, 2)) - inner.min(axis=(1, 2))
    # A 3x3 binomial blur takes a checkerboard's 0/1 to 0.5 +- 0; a share s gives 1 - s.
    assert np.all(spread <= 1.0 + 1e-6) and spread.min() < 0.2 and spread.max() > 0.5


@pytest.mark.parametrize("strength", ["standard", "strong"])
def test_make_dataset_passes_the_augmentation_strength_on(monkeypatch, strength):
    from models import training

    seen = []

    def recording(img, msk, seed=None, strength="standard"):
        seen.append(strength)
        return img, msk

    monkeypatch.setattr(training, "augment", recording)
    x = np.zeros((4, 8, 8, 1), np.float32)
    ds = training.make_dataset(x, x, np.zeros(4, np.int32), 2, training=True,
                               augment_strength=strength)
    next(iter(ds))
    assert seen and set(seen) == {strength}


def test_unknown_augmentation_strength_is_refused():
    import tensorflow as tf

    x = tf.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError, match="strength"):
        augment(x, x, strength="extreme")


def test_schedule_without_averaging_warms_up_then_decays_to_a_fiftieth():
    sched = make_schedule(1e-3, epochs=10, steps=5)
    assert float(sched(0)) == pytest.approx(1e-4)
    assert float(sched(15)) == pytest.approx(1e-3)  # end of the 3 warm-up epochs
    assert float(sched(50)) == pytest.approx(2e-5)
    lrs = [float(sched(s)) for s in range(15, 51)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_schedule_with_averaging_is_flat_from_the_first_averaged_epoch():
    sched = make_schedule(1e-3, epochs=20, steps=5, swa_start=6, swa_lr=3e-4)
    assert float(sched(15)) == pytest.approx(1e-3)
    assert float(sched(12)) < 1e-3
    # Epoch 6 (1-based) starts at step 25; from there on the rate is swa_lr.
    flat = [float(sched(s)) for s in range(25, 100)]
    assert flat == pytest.approx([3e-4] * len(flat))
    assert float(sched(20)) > 3e-4
    assert float(make_schedule(1e-3, 20, 5, swa_start=6)(60)) == pytest.approx(5e-4)


def _tiny_net():
    from models.networks import get_multitask_unet

    return get_multitask_unet(32, 4)


def _arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32, 1)).astype(np.float32)
    return x, (x > 0.6).astype(np.float32), np.arange(n) % 3


def test_weight_average_is_the_running_mean_from_its_start_and_survives_resume(tmp_path):
    import keras

    model = _tiny_net()
    x, m, y = _arrays(8)
    base = model.get_weights()
    cb = WeightAverage(tmp_path, start=2, val=(x[:4], m[:4], y[:4]), bn_images=x)
    cb.set_model(model)
    for epoch in range(4):
        # Epoch k ends with every weight shifted by k, so the average is known.
        weights = [w + epoch for w in base]
        model.set_weights(weights)
        logs = {}
        cb.on_epoch_end(epoch, logs)
        if epoch == 0:
            assert np.isnan(logs["val_swa_dice"])
            assert not (tmp_path / "swa.keras").exists()
        else:
            assert 0.0 <= logs["val_swa_acc"] <= 1.0
        # Training goes on with its own weights, not the average.
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights,
                                                         strict=True))
    assert cb.count == 3
    saved = keras.models.load_model(tmp_path / "swa.keras", compile=False)
    np.testing.assert_allclose(saved.get_weights()[0], base[0] + 2, rtol=1e-5, atol=1e-5)

    # A resumed run continues the average; an epoch already counted is not counted twice.
    again = WeightAverage(tmp_path, start=2, val=(x[:4], m[:4], y[:4]), bn_images=x, resume=True)
    again.set_model(model)
    assert again.count == 3
    model.set_weights([w + 3 for w in base])
    again.on_epoch_end(3, {})
    assert again.count == 3
    model.set_weights([w + 7 for w in base])
    again.on_epoch_end(4, {})
    assert again.count == 4
    np.testing.assert_allclose(again.average[0], base[0] + (1 + 2 + 3 + 7) / 4, rtol=1e-6)

    # A fresh run (no --resume) starts a new average.
    WeightAverage(tmp_path, start=2, val=(x[:4], m[:4], y[:4]), bn_images=x)
    assert not (tmp_path / "swa_state.npz").exists()


def test_batchnorm_recalibration_matches_the_statistics_of_the_images():
    import keras

    model = _tiny_net()
    x, _, _ = _arrays(64, seed=3)
    x = x * 0.5 + 0.25
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    recalibrate_batchnorm(model, x[:8], batch_size=16)  # less than a batch: left alone
    assert np.abs(bn.moving_mean.numpy()).max() == 0
    recalibrate_batchnorm(model, x, batch_size=16, passes=1)
    mean = bn.moving_mean.numpy()
    # The first BatchNorm follows conv1: its moving mean must now be the mean of
    # that convolution's output over the images (the init values are all zero).
    assert np.abs(mean).max() > 0
    conv_in = keras.Model(model.inputs, bn.input)
    feats = conv_in({"image": x, "hint": np.zeros_like(x),
                     "use_hint": np.zeros((len(x), 1), np.float32)}).numpy()
    np.testing.assert_allclose(mean, feats.reshape(-1, feats.shape[-1]).mean(0), atol=1e-4)
    # Momenta are put back for training.
    assert bn.momentum == pytest.approx(0.9)


def test_the_training_script_offers_every_segmentation_loss():
    from models import train
    from models.training import SEG_LOSSES

    for name in SEG_LOSSES:
        assert train.parse_args(["--data", "x", "--seg-loss", name]).seg_loss == name
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--seg-loss", "focal"])
    assert train.parse_args(["--data", "x"]).mixup == 0.0
    assert train.parse_args(["--data", "x"]).mixup_targets == "blend"
    assert train.parse_args(["--data", "x", "--mixup-pairs", "status"]).mixup_pairs == "status"
    assert train.parse_args(["--data", "x", "--mixup-targets", "lesion"]).mixup_targets == "lesion"
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--mixup", "-0.2"])
    assert train.parse_args(["--data", "x"]).presence_weight == 0.0
    assert train.parse_args(["--data", "x", "--presence-weight", "0.5"]).presence_weight == 0.5
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--presence-weight", "-1"])


def test_presence_term_is_cross_entropy_of_the_top_pixels_mean():
    from models.training import PRESENCE_TOP_K

    side = 16  # 256 pixels, more than PRESENCE_TOP_K
    assert side * side > PRESENCE_TOP_K
    y = np.zeros((2, side, side, 1), np.float32)
    y[0, :4, :4] = 1  # a lesion image; image 1 is a normal breast
    pred = np.full_like(y, 0.1)
    pred[0, :4, :4] = 0.3  # the lesion: 16 pixels at 0.3, the rest 0.1
    pred[1, 0, :8] = 0.9  # a false blob of 8 pixels on the normal image
    seg_plain, _ = make_losses([1.0, 1.0, 1.0], seg="image-dice")
    seg_presence, _ = make_losses([1.0, 1.0, 1.0], seg="image-dice", presence_weight=0.5)
    k = PRESENCE_TOP_K
    score0 = (16 * 0.3 + (k - 16) * 0.1) / k
    score1 = (8 * 0.9 + (k - 8) * 0.1) / k
    term = (-np.log(score0) - np.log(1 - score1)) / 2
    extra = float(seg_presence(y, pred)) - float(seg_plain(y, pred))
    assert extra == pytest.approx(0.5 * term, rel=1e-4)


def test_presence_term_pushes_where_the_image_dice_saturates():
    import tensorflow as tf

    # A normal breast, 64x64 so that per-pixel terms are diluted as on a real image.
    y = np.zeros((1, 64, 64, 1), np.float32)
    pred = np.full_like(y, 0.02)
    pred[0, :8, :8] = 0.95  # a confident false outline of 64 pixels

    def grad_on_blob(loss):
        p = tf.Variable(pred)
        with tf.GradientTape() as tape:
            value = loss(y, p)
        return float(tf.reduce_mean(tape.gradient(value, p)[0, :8, :8]))

    plain, _ = make_losses([1.0, 1.0, 1.0], seg="image-dice")
    presence, _ = make_losses([1.0, 1.0, 1.0], seg="image-dice", presence_weight=1.0)
    # Both push the blob down; the presence term pushes many times harder.
    assert grad_on_blob(plain) > 0
    assert grad_on_blob(presence) > 20 * grad_on_blob(plain)
    with pytest.raises(ValueError, match="presence_weight"):
        make_losses([1.0, 1.0, 1.0], presence_weight=-0.1)


def test_a_run_folder_is_refused_unless_empty_resumed_or_overwritten(tmp_path):
    from models._cli import UsageError

    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "ckpt").write_text("epoch 7")
    (out / "best.keras").write_text("old model")
    with pytest.raises(UsageError, match="not empty.*--resume.*--overwrite"):
        check_run_dir(out, resume=False)
    check_run_dir(out, resume=True)
    assert open_run_dir(out, resume=True) == out
    assert (out / "backup" / "ckpt").exists() and (out / "best.keras").exists()
    check_run_dir(out, resume=False, overwrite=True)
    assert (out / "best.keras").exists()  # the check itself clears nothing
    assert open_run_dir(str(out), resume=False, overwrite=True) == out
    assert out.is_dir() and not any(out.iterdir())
    fresh = open_run_dir(tmp_path / "a" / "b", resume=False)
    assert fresh.is_dir()


def test_a_resumed_run_goes_on_from_its_best_score_and_patience(tmp_path):
    assert resumed_best(tmp_path, "val_score", resume=True) == (None, 0)
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_score\n0,1.0,0.5\n1,0.9,0.8\n2,0.8,NA\n3,0.7,0.6\n")
    assert resumed_best(tmp_path, "val_score", resume=True) == (0.8, 2)
    assert resumed_best(tmp_path, "val_score", resume=False) == (None, 0)
    assert resumed_best(tmp_path, "val_auc", resume=True) == (None, 0)

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stop = ResumedEarlyStopping(0.8, 2, monitor="val_score", patience=3)
    stop.set_model(model)
    stop.on_train_begin()
    stop.on_epoch_end(4, {"val_score": 0.7})  # the third epoch without beating 0.8
    assert model.stop_training
    fresh = ResumedEarlyStopping(None, 0, monitor="val_score", patience=3)
    model.stop_training = False
    fresh.set_model(model)
    fresh.on_train_begin()
    fresh.on_epoch_end(4, {"val_score": 0.7})
    assert not model.stop_training and fresh.best == 0.7


def test_resume_without_a_backup_is_refused_when_the_folder_holds_a_run(tmp_path):
    from models._cli import UsageError

    # Audit 803 F1: a missing or empty --out (a typo) started a whole new run.
    with pytest.raises(UsageError, match="does not exist.*no run to continue"):
        check_run_dir(tmp_path / "run", resume=True)
    (tmp_path / "run").mkdir()
    with pytest.raises(UsageError, match="is empty.*no run to continue"):
        check_run_dir(tmp_path / "run", resume=True)
    (tmp_path / "run" / "history.csv").write_text("epoch,val_score\n0,0.9\n")
    with pytest.raises(UsageError, match="no backup/"):
        check_run_dir(tmp_path / "run", resume=True)


def test_a_row_of_another_width_is_not_read_under_the_header(tmp_path):
    # Audit 805 F7: a resumed run's row "2,0.0001,0.70,0.75" (its keys: loss,
    # learning_rate, val_score... sorted) under "epoch,loss,val_score" put 0.70 under
    # val_score, and the best 0.75 was lost to a worse one.
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_score\n0,1.0,0.5\n1,0.9,0.6\n2,0.0001,0.70,0.75\n")
    assert resumed_best(tmp_path, "val_score", resume=True) == (0.6, 0)


def test_a_resumed_run_logging_other_keys_widens_the_header(tmp_path):
    from models.training import HistoryLogger

    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_score\n0,1.0,0.5\n1,0.9,0.8\n")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x = np.zeros((4, 1), "float32")

    class Score(keras.callbacks.Callback):  # the score a validation callback adds
        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = 0.7

    model.fit(x, x, initial_epoch=2, epochs=3, verbose=0,
              callbacks=[Score(), HistoryLogger(str(history), append=True)])
    rows = list(csv.DictReader(history.open(newline="")))
    assert list(rows[0]) == ["epoch", "loss", "mae", "val_score"]
    assert [r["val_score"] for r in rows] == ["0.5", "0.8", "0.7"]
    assert [r["mae"] for r in rows][:2] == ["NA", "NA"] and rows[2]["mae"] not in ("", "NA")
    assert resumed_best(tmp_path, "val_score", resume=True) == (0.8, 1)

    # The same keys again: the file is appended to as it is.
    before = history.read_text()
    model.fit(x, x, initial_epoch=3, epochs=4, verbose=0,
              callbacks=[Score(), HistoryLogger(str(history), append=True)])
    after = history.read_text()
    assert after.startswith(before) and after.count("\n") == before.count("\n") + 1


def test_a_resumed_run_whose_patience_is_spent_trains_no_epoch(tmp_path, caplog):
    # Audit 803 F7: Keras checks patience at the end of an epoch only, so a resume with
    # less patience than the epochs already run without a gain trained one more.
    from models.training import patience_spent

    assert not patience_spent(tmp_path, "val_score", 1, resume=True)  # no history yet
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_score\n0,1.0,0.5\n1,0.9,0.8\n2,0.8,0.7\n3,0.7,0.6\n")
    assert not patience_spent(tmp_path, "val_score", 3, resume=True)
    assert not patience_spent(tmp_path, "val_score", 1, resume=False)
    with caplog.at_level("WARNING"):
        assert patience_spent(tmp_path, "val_score", 2, resume=True)
    assert "--patience 2 is already spent" in caplog.text
    assert patience_spent(tmp_path, "val_score", 0, resume=True)
    # Patience 0 stops at the first epoch without a gain: after a best one it is not spent.
    (tmp_path / "history.csv").write_text("epoch,loss,val_score\n0,1.0,0.5\n1,0.9,0.8\n")
    assert not patience_spent(tmp_path, "val_score", 0, resume=True)
