"""Training refuses data it cannot learn from, and says when it stops or keeps nothing.

Audit 506, findings 6, 8 and 11: lesion images without masks trained as "no lesion";
a folder of normal images only trained silently (the crop trainers crashed in
``np.stack``); ``--epochs 0`` and ``--batch-size 0`` were accepted; early stopping
was silent.
"""

from __future__ import annotations

import json
import shutil

import keras
import pytest

TINY = ["--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--val-fraction", "0.34", "--epochs", "1", "--steps-per-epoch", "1"]
CROP = ["--batch-size", "4", "--crop-size", "32", "--filters", "4", "8", "--verbose", "0",
        "--val-fraction", "0.34", "--epochs", "1", "--steps-per-epoch", "1"]


def _copy(root, dest, drop):
    shutil.copytree(root, dest)
    for path in list(dest.rglob("*.png")):
        if drop(path):
            path.unlink()
    return dest


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("tool, flags", [("train", TINY), ("train_lesion", CROP),
                                         ("train_refine", CROP)])
def test_data_without_an_outlined_lesion_is_refused(tool, flags, synthetic_busi, tmp_path,
                                                    capsys):
    import importlib

    module = importlib.import_module(f"models.{tool}")
    root, _ = synthetic_busi
    nomasks = _copy(root, tmp_path / "nomasks",
                    lambda p: "_mask" in p.name and p.parent.name != "normal")
    onlynormal = _copy(root, tmp_path / "onlynormal", lambda p: p.parent.name != "normal")
    assert module.main(["--data", str(nomasks), "--out", str(tmp_path / "a"), *flags]) == 2
    assert "none of its 12 benign/malignant images has a mask" in _one_line(capsys)
    assert module.main(["--data", str(onlynormal), "--out", str(tmp_path / "b"), *flags]) == 2
    assert "no benign or malignant image" in _one_line(capsys)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_lesion_without_its_mask_is_left_out_and_said(synthetic_busi, tmp_path, caplog):
    from models import train

    root, _ = synthetic_busi
    partial = _copy(root, tmp_path / "partial", lambda p: p.name.startswith("benign (5)_mask"))
    out = tmp_path / "run"
    with caplog.at_level("WARNING"):
        assert train.main(["--data", str(partial), "--out", str(out), *TINY]) == 0
    assert "1 of 12 benign/malignant images" in caplog.text and "benign (5).png" in caplog.text
    split = json.loads((out / "split.json").read_text())
    names = split["train"] + split["val"]
    assert len(names) == 17 and not any("benign (5)" in n for n in names)


@pytest.mark.parametrize("flag", ["--epochs", "--batch-size", "--steps-per-epoch"])
def test_counts_below_one_are_refused(flag, synthetic_busi, tmp_path, capsys):
    from models import pretrain, train, train_lesion

    root, _ = synthetic_busi
    args = ["--data", str(root), "--out", str(tmp_path / "x"), flag, "0"]
    for parse in (train.parse_args, pretrain.parse_args):
        with pytest.raises(SystemExit):
            parse(args)
        assert f"{flag} must be >= 1" in capsys.readouterr().err
    assert train_lesion.main(args) == 2
    assert f"{flag} must be >= 1" in _one_line(capsys)


def test_train_refuses_a_validation_share_of_one(synthetic_busi, capsys):
    from models import train

    root, _ = synthetic_busi
    with pytest.raises(SystemExit):
        train.parse_args(["--data", str(root), "--val-fraction", "1"])
    assert "--val-fraction must be in [0, 1)" in capsys.readouterr().err


def test_early_stopping_says_when_it_stops(caplog):
    from models.training import ResumedEarlyStopping

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stop = ResumedEarlyStopping(0.8, 1, monitor="val_score", patience=2)
    stop.set_model(model)
    stop.on_train_begin()
    stop.on_epoch_end(5, {"val_score": 0.7})
    assert model.stop_training
    with caplog.at_level("INFO"):
        stop.on_train_end()
    assert "early stopping after epoch 6: val_score has not beaten 0.8000 for 2 epochs" \
        in caplog.text
