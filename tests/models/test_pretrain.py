"""Self-supervised restoration pretraining: distortions, shared layers, CLI and split."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

TINY = ["--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--steps-per-epoch", "2", "--val-fraction", "0.34"]


@pytest.fixture(scope="module")
def tiny_pretrain(synthetic_busi, tmp_path_factory):
    """A two-epoch pretraining on the synthetic folder's training split: ``(root, run)``."""
    from models import pretrain

    root, _ = synthetic_busi
    run = tmp_path_factory.mktemp("ssl")
    assert pretrain.main(["--data", str(root), "--out", str(run), "--epochs", "2", *TINY]) == 0
    return root, run


def _history(run):
    with open(run / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_distort_changes_almost_every_image_and_stays_in_range():
    import keras

    from models.pretrain import distort

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, (64, 48, 48, 1)).astype(np.float32)
    out = np.asarray(distort(image))
    assert out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - image).max(axis=(1, 2, 3)) > 1e-3
    # Each image is left as it is with probability 0.1 * 0.1.
    assert changed.sum() >= 58
    # Holes and borders are noise over part of the image, not all of it.
    differing = (np.abs(out - image) > 1e-3).mean(axis=(1, 2, 3))
    assert 0.0 < np.median(differing) < 1.0


def test_distort_holes_are_uniform_noise_and_curves_keep_the_order_of_grey_levels():
    import keras

    from models.pretrain import distort

    keras.utils.set_random_seed(1)
    ramp = np.tile(np.linspace(0.05, 0.95, 64, dtype=np.float32), (64, 1))
    image = np.repeat(ramp[None, ..., None], 200, axis=0)
    out = np.asarray(distort(image))[..., 0]
    # Where a row is no longer increasing, noise was painted; elsewhere the curve is monotone.
    steps = np.diff(out, axis=2)
    clean_rows = (steps > 0).all(axis=2)
    assert clean_rows.mean() > 0.3
    assert (~clean_rows).mean() > 0.3
    # The painted pixels are uniform noise on [0, 1], unlike the ramp they cover.
    painted = out[~clean_rows]
    assert painted.min() < 0.05 and painted.max() > 0.95


def test_the_restorer_trains_the_unets_own_layers():
    import keras

    from models.networks import get_multitask_unet
    from models.pretrain import get_restorer

    keras.utils.set_random_seed(0)
    unet = get_multitask_unet(32, 4)
    restorer = get_restorer(unet)
    before = unet.get_layer("enc0_c1").get_weights()[0].copy()
    head_before = unet.get_layer("seg").get_weights()[0].copy()
    restorer.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = np.random.default_rng(0).uniform(size=(4, 32, 32, 1)).astype(np.float32)
    restorer.fit(x, x[::-1], epochs=1, verbose=0)
    assert not np.allclose(unet.get_layer("enc0_c1").get_weights()[0], before)
    # The lesion head is not part of the restorer, so it is left alone.
    np.testing.assert_array_equal(unet.get_layer("seg").get_weights()[0], head_before)
    assert restorer.output_shape == (None, 32, 32, 1)


def test_pretraining_sees_only_the_training_images_and_writes_its_products(tiny_pretrain):
    from models.data import load_samples, run_split
    from models.pretrain import PRODUCT, SEEN, file_hashes

    root, run = tiny_pretrain
    assert (run / PRODUCT).is_file()
    assert (run / "learning_curves.png").stat().st_size > 0
    assert [r["epoch"] for r in _history(run)] == ["0", "1"]
    seen = json.loads((run / SEEN).read_text())
    train, val = run_split(load_samples(root), 0.34, 42)
    assert seen == {"input_size": 32, "base_filters": 4, "sha256": file_hashes(train)}
    # The hashes are the files' own: a validation image's is not among them.
    assert len(seen["sha256"]) == len(train) > 0
    assert not set(seen["sha256"].values()) & set(file_hashes(val).values())


def test_pretraining_resumes_from_its_backup(tiny_pretrain, tmp_path):
    import shutil

    from models import pretrain

    root, run = tiny_pretrain
    copy = tmp_path / "ssl"
    shutil.copytree(run, copy)
    assert pretrain.main(["--data", str(root), "--out", str(copy), "--epochs", "3", "--resume",
                          *TINY]) == 0
    assert [r["epoch"] for r in _history(copy)] == ["0", "1", "2"]
    # Going on with another split would hide the images the weights have seen already.
    seen = (copy / "seen.json").read_text()
    assert pretrain.main(["--data", str(root), "--out", str(copy), "--epochs", "4", "--resume",
                          *TINY, "--split-seed", "3"]) == 2
    assert (copy / "seen.json").read_text() == seen
    assert len(_history(copy)) == 3


def test_load_pretrained_copies_the_shared_layers_and_leaves_the_heads(tiny_pretrain):
    import keras

    from models.networks import get_multitask_unet
    from models.pretrain import PRODUCT, load_pretrained

    _, run = tiny_pretrain
    with np.load(run / PRODUCT) as f:
        saved = {key: f[key] for key in f.files}

    keras.utils.set_random_seed(5)
    unet = get_multitask_unet(32, 4)
    cls_before = unet.get_layer("cls").get_weights()[0].copy()
    # Four levels of two convs, a BatchNorm each and a shortcut, down and up, plus the
    # bottleneck's five.
    assert load_pretrained(unet, run) == 8 * 5 + 5
    for name in ("enc0_c1", "bottleneck_c2", "dec0_c2", "dec0_bn2"):
        for k, got in enumerate(unet.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, saved[f"{name}/{k}"])
    assert "restore/0" in saved
    np.testing.assert_array_equal(unet.get_layer("cls").get_weights()[0], cls_before)
    with pytest.raises(ValueError, match="does not fit this network at layer enc0"):
        load_pretrained(get_multitask_unet(32, 8), run)


def test_check_pretrained_refuses_other_images_a_missing_run_and_another_network(
        tiny_pretrain, synthetic_busi, tmp_path):
    import shutil

    from models.data import load_samples, run_split
    from models.pretrain import check_pretrained

    root, run = tiny_pretrain
    train, val = run_split(load_samples(root), 0.34, 42)
    check_pretrained(run, train, 32, 4)  # its own split: fine
    with pytest.raises(ValueError, match="1 image.s. that are not among this run's training"):
        check_pretrained(run, train[1:], 32, 4)
    # The same pictures renamed in another folder are still the same images.
    renamed = tmp_path / "renamed"
    shutil.copytree(root, renamed)
    for sample in val:
        stem = sample.image_path.stem
        for path in (renamed / sample.class_name).glob(f"{stem}*"):
            path.rename(path.with_name(path.name.replace(stem, f"{stem} copy")))
    moved = [s for s in load_samples(renamed) if s.name.endswith("copy")]
    assert len(moved) == len(val)
    with pytest.raises(ValueError, match="not among this run's training"):
        check_pretrained(run, moved + train[1:], 32, 4)
    check_pretrained(run, moved + train, 32, 4)  # a superset is fine
    with pytest.raises(ValueError, match="pretrained a 32 px network of 4 filters"):
        check_pretrained(run, train, 48, 4)
    with pytest.raises(ValueError, match="of 4 filters; this run trains 32 px with 8"):
        check_pretrained(run, train, 32, 8)
    with pytest.raises(FileNotFoundError, match="has the pretraining finished"):
        check_pretrained(tmp_path, train, 32, 4)


def test_train_starts_from_a_pretraining_on_its_own_split_only(tiny_pretrain, tmp_path, caplog,
                                                                 capsys):
    from models import train

    root, run = tiny_pretrain
    args = ["--data", str(root), "--epochs", "1", *TINY, "--init-pretrained", str(run)]
    with caplog.at_level("INFO", logger="models.train"):
        assert train.main([*args, "--out", str(tmp_path / "ok")]) == 0
    assert "encoder and decoder (45 layers) from the pretraining" in caplog.text
    # Another split would train on a pretraining that has seen its validation images;
    # refused before the run folder is touched, so an earlier run there is kept.
    other = tmp_path / "other"
    (other / "backup").mkdir(parents=True)
    assert train.main([*args, "--out", str(other), "--split-seed", "3", "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init-pretrained" in err[0]
    assert "not among this run's training images" in err[0]
    assert (other / "backup").is_dir()


def test_train_refuses_two_starting_points(tiny_pretrain, tmp_path, capsys):
    from models import train

    root, run = tiny_pretrain
    with pytest.raises(SystemExit):
        train.parse_args(["--data", str(root), "--init-pretrained", str(run),
                          "--init-from", str(tmp_path)])
    assert "pick one" in capsys.readouterr().err
